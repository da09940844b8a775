//! The gateway's routes in-process, without a cluster: auth, validation, 404s, the catalogue.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use serrano_datastore::{EmbeddedStore, KvStore};
use serrano_hpc_gateway::{Config, Gateway, router};
use serrano_service::Secret;
use tower::ServiceExt;

const TOKEN: &str = "gateway-token";

fn app() -> axum::Router {
    let kv: Arc<dyn KvStore> = Arc::new(EmbeddedStore::in_memory());
    let gateway = Arc::new(Gateway::new(kv.clone(), &Config::default()));
    router(gateway, kv, vec![Secret::new(TOKEN)], 1 << 20)
}

async fn call(
    app: &axum::Router,
    method: Method,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    };
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn infra(name: &str) -> Value {
    json!({"name": name, "host": "127.0.0.1", "port": 1, "username": "hpc", "scheduler": "slurm",
        "ssh_key": {"path": "/nonexistent/key"}})
}

#[tokio::test]
async fn every_route_needs_the_token() {
    let app = app();
    for (method, path) in [
        (Method::GET, "/services"),
        (Method::GET, "/infrastructure"),
        (Method::POST, "/infrastructure"),
        (Method::GET, "/infrastructure/x"),
        (Method::DELETE, "/infrastructure/x"),
        (Method::GET, "/infrastructure/x/telemetry"),
        (Method::GET, "/job"),
        (Method::POST, "/job"),
        (Method::GET, "/job/fdf45855-1299-47f1-8ea6-98be8d89030b"),
        (Method::DELETE, "/job/fdf45855-1299-47f1-8ea6-98be8d89030b"),
        (
            Method::GET,
            "/job/fdf45855-1299-47f1-8ea6-98be8d89030b/output",
        ),
    ] {
        for token in [None, Some("wrong")] {
            let (status, body) = call(&app, method.clone(), path, Some(json!({})), token).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            assert_eq!(body["error"]["code"], "unauthorized");
        }
    }
}

#[tokio::test]
async fn the_catalogue_lists_the_original_kernels() {
    let app = app();
    let (status, body) = call(&app, Method::GET, "/services", None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for name in [
        "kalman",
        "fft",
        "min_max",
        "savitzky_golay",
        "black_scholes",
        "wavelet",
        "kmean",
        "knn",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
}

#[tokio::test]
async fn bad_registrations_and_unknown_ids_are_refused() {
    let app = app();
    let mut bad_name = infra("bad name");
    let (status, body) = call(
        &app,
        Method::POST,
        "/infrastructure",
        Some(bad_name.clone()),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("name"));
    bad_name["name"] = json!("ok");
    bad_name["ssh_key"]["password"] = json!("secret");
    let (status, body) = call(
        &app,
        Method::POST,
        "/infrastructure",
        Some(bad_name),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ssh-agent")
    );
    let mut unknown_field = infra("ok");
    unknown_field["surprise"] = json!(1);
    assert_eq!(
        call(
            &app,
            Method::POST,
            "/infrastructure",
            Some(unknown_field),
            Some(TOKEN)
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    let mut bad_scheduler = infra("ok");
    bad_scheduler["scheduler"] = json!("lsf");
    assert_eq!(
        call(
            &app,
            Method::POST,
            "/infrastructure",
            Some(bad_scheduler),
            Some(TOKEN)
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    // An unreachable cluster is not registered.
    let (status, body) = call(
        &app,
        Method::POST,
        "/infrastructure",
        Some(infra("unreachable")),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(
        call(
            &app,
            Method::GET,
            "/infrastructure/unreachable",
            None,
            Some(TOKEN)
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );

    let (status, body) = call(
        &app,
        Method::POST,
        "/job",
        Some(json!({"infrastructure": "nowhere", "script": "true"})),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(
        call(&app, Method::GET, "/job/not-a-uuid", None, Some(TOKEN))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(
            &app,
            Method::GET,
            "/job/fdf45855-1299-47f1-8ea6-98be8d89030b",
            None,
            Some(TOKEN)
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, Method::GET, "/job?status=exploded", None, Some(TOKEN))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    let (status, body) = call(&app, Method::GET, "/job", None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["jobs"], json!([]));
}

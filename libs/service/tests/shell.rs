//! `ServiceShell::into_router`: probes, auth, metrics, docs, request ids, JSON errors.

// Test code: a failed unwrap is a failed test (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use axum::body::Body;
use futures::FutureExt;
use http::{Request, StatusCode, header};
use serde_json::{Value, json};
use serrano_service::{ReadinessCheck, ServiceShell};
use uuid::Uuid;

use common::{assert_error, request, send, send_json, shell, test_api};

#[tokio::test]
async fn auth_is_required_except_on_probes() {
    let no_token = Request::get("/widgets/x").body(Body::empty()).unwrap();
    let (status, headers, body) = send(shell(None), no_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers.get(header::WWW_AUTHENTICATE).unwrap(), "Bearer");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_error(&body, "unauthorized", &["missing bearer token"]);

    let wrong = Request::get("/metrics")
        .header(header::AUTHORIZATION, "Bearer s3cret-tokeN")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send_json(shell(None), wrong).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, "unauthorized", &["invalid bearer token"]);

    let basic = Request::get("/metrics")
        .header(header::AUTHORIZATION, "Basic czNjcmV0")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send_json(shell(None), basic).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, "unauthorized", &["missing bearer token"]);

    // Unknown routes are no way around auth either.
    let unknown = Request::get("/nowhere").body(Body::empty()).unwrap();
    let (status, _) = send_json(shell(None), unknown).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let health = Request::get("/health").body(Body::empty()).unwrap();
    let (status, body) = send_json(shell(None), health).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok", "service": "test-service"}));

    let ready = Request::get("/ready").body(Body::empty()).unwrap();
    let (status, body) = send_json(shell(None), ready).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ready"}));
}

#[tokio::test]
async fn empty_token_list_lets_nobody_in() {
    let app =
        ServiceShell::new("locked", utoipa::openapi::OpenApi::default()).into_router(test_api());
    for auth in ["Bearer ", "Bearer x", "Bearer s3cret-token"] {
        let req = Request::get("/metrics")
            .header(header::AUTHORIZATION, auth)
            .body(Body::empty())
            .unwrap();
        let (status, _) = send_json(app.clone(), req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth}");
    }
}

#[tokio::test]
async fn ready_answers_503_when_the_check_fails() {
    let check: ReadinessCheck = Arc::new(|| async { Err("etcd unreachable".to_owned()) }.boxed());
    let ready = Request::get("/ready").body(Body::empty()).unwrap();
    let (status, body) = send_json(shell(Some(check)), ready).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_error(&body, "unavailable", &["etcd unreachable"]);
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let app = shell(None);
    let id = Uuid::new_v4();
    let req = request("GET", &format!("/widgets/{id}"))
        .body(Body::empty())
        .unwrap();
    let (status, body) = send_json(app.clone(), req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "id": id }));
    let unknown = request("GET", "/no/such/path").body(Body::empty()).unwrap();
    send(app.clone(), unknown).await;

    let scrape = request("GET", "/metrics").body(Body::empty()).unwrap();
    let (status, headers, text) = send(app, scrape).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        String::from_utf8_lossy(&text).contains("\ntest_widgets 7\n"),
        "the service's own metrics are appended: {text:?}"
    );
    assert!(
        headers
            .get(header::CONTENT_TYPE)
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = String::from_utf8(text.to_vec()).unwrap();
    assert!(
        text.contains(
            r#"http_requests_total{method="GET",route="/widgets/{id}",service="test-service",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="unmatched",service="test-service",status="404"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        !text.contains(&id.to_string()),
        "raw path leaked into labels"
    );
    assert!(
        !text.contains("/no/such/path"),
        "raw path leaked into labels"
    );
}

#[tokio::test]
async fn openapi_document_and_docs_page() {
    let req = request("GET", "/openapi.json").body(Body::empty()).unwrap();
    let (status, body) = send_json(shell(None), req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["components"]["securitySchemes"]["bearerAuth"],
        json!({"type": "http", "scheme": "bearer"})
    );
    assert_eq!(body["security"], json!([{"bearerAuth": []}]));

    let req = request("GET", "/docs").body(Body::empty()).unwrap();
    let (status, headers, _) = send(shell(None), req).await;
    assert!(status.is_redirection(), "{status}");
    assert_eq!(headers.get(header::LOCATION).unwrap(), "/docs/");

    let req = request("GET", "/docs/").body(Body::empty()).unwrap();
    let (status, headers, body) = send(shell(None), req).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers
            .get(header::CONTENT_TYPE)
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(String::from_utf8_lossy(&body).contains("swagger-ui"));

    // The vendored assets are served too (offline).
    let req = request("GET", "/docs/swagger-initializer.js")
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = send(shell(None), req).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains("/openapi.json"));
}

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let req = request("GET", "/whoami")
        .header("x-request-id", "abc-123")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = send(shell(None), req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get("x-request-id").unwrap(), "abc-123");
    assert_eq!(&body[..], b"abc-123");

    // Absent, or unsafe to log: a fresh UUID.
    for given in [None, Some("evil\tid with spaces")] {
        let mut builder = request("GET", "/whoami");
        if let Some(given) = given {
            builder = builder.header("x-request-id", given);
        }
        let (_, headers, body) = send(shell(None), builder.body(Body::empty()).unwrap()).await;
        let id = headers.get("x-request-id").unwrap().to_str().unwrap();
        assert!(Uuid::parse_str(id).is_ok(), "{id}");
        assert_eq!(id.as_bytes(), &body[..]);
    }

    // Error answers carry it too.
    let req = Request::get("/whoami")
        .header("x-request-id", "on-401")
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = send(shell(None), req).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers.get("x-request-id").unwrap(), "on-401");
}

#[tokio::test]
async fn unknown_route_wrong_method_panic_and_bare_status_are_json() {
    let req = request("GET", "/nowhere").body(Body::empty()).unwrap();
    let (status, body) = send_json(shell(None), req).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found", &["/nowhere"]);

    let req = request("DELETE", "/widgets").body(Body::empty()).unwrap();
    let (status, body) = send_json(shell(None), req).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&body, "method_not_allowed", &["DELETE", "/widgets"]);

    let req = request("GET", "/boom").body(Body::empty()).unwrap();
    let (status, body) = send_json(shell(None), req).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body,
        json!({"error": {"code": "internal", "message": "internal error"}})
    );

    let req = request("GET", "/bare").body(Body::empty()).unwrap();
    let (status, body) = send_json(shell(None), req).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_error(&body, "conflict", &["conflict"]);
}

//! Helpers shared by the probe's integration tests: in-process calls, ephemeral servers, a
//! probe configuration per kind.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use serrano_probe::{Config, Probe, router};
use serrano_service::Secret;
use tower::ServiceExt;

pub const TOKEN: &str = "probe-token";
pub const PREFIX: &str = "/api/v1/telemetry/probe";

/// The probe of `config` and its router (the probe's token is [`TOKEN`]).
pub fn app(config: &Config) -> (Arc<Probe>, axum::Router) {
    let probe = Arc::new(Probe::new(config).expect("valid probe config"));
    let app = router(probe.clone(), vec![Secret::new(TOKEN)], 1 << 20);
    (probe, app)
}

/// Calls `app` in-process; the body decoded as JSON (or a JSON string of the text).
pub async fn call(
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
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// GET with the probe's token.
pub async fn get(app: &axum::Router, path: &str) -> (StatusCode, Value) {
    call(app, Method::GET, path, None, Some(TOKEN)).await
}

/// POST JSON with the probe's token.
pub async fn post(app: &axum::Router, path: &str, body: Value) -> (StatusCode, Value) {
    call(app, Method::POST, path, Some(body), Some(TOKEN)).await
}

/// Serves `app` on an ephemeral port of `ip`; returns its base URL.
pub async fn serve_on(ip: &str, app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind(format!("{ip}:0"))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

/// Serves `app` on 127.0.0.1.
pub async fn serve(app: axum::Router) -> String {
    serve_on("127.0.0.1", app).await
}

/// A URL nothing listens on.
pub fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// Waits until `check` holds (or fails the test after `limit`).
pub async fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The message of an error answer.
pub fn message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

//! Helpers shared by the router tests: a tiny API wrapped in a `ServiceShell`.

// Test code: a failed unwrap is a failed test (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Extension;
use axum::routing::{get, post};
use http::{HeaderMap, Request, StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use serrano_service::{
    ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ReadinessCheck, RequestId, Secret,
    ServiceShell,
};
use tower::ServiceExt;
use uuid::Uuid;

pub const TOKEN: &str = "s3cret-token";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Widget {
    name: String,
    count: u32,
    inner: Option<Inner>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Inner {
    size: u32,
}

#[derive(Debug, Deserialize)]
struct Search {
    limit: u32,
}

async fn create(ApiJson(widget): ApiJson<Widget>) -> ApiResult<ApiJson<Widget>> {
    if widget.name.is_empty() {
        return Err(ApiError::validation("name must not be empty"));
    }
    Ok(ApiJson(widget))
}

async fn fetch(ApiPath(id): ApiPath<Uuid>) -> ApiJson<Value> {
    ApiJson(json!({ "id": id }))
}

async fn search(ApiQuery(query): ApiQuery<Search>) -> ApiJson<Value> {
    ApiJson(json!({ "limit": query.limit }))
}

async fn boom() -> &'static str {
    panic!("boom")
}

async fn bare_status() -> StatusCode {
    StatusCode::CONFLICT
}

async fn whoami(Extension(RequestId(id)): Extension<RequestId>) -> String {
    id
}

pub fn test_api() -> Router {
    Router::new()
        .route("/widgets", post(create))
        .route("/widgets/{id}", get(fetch))
        .route("/search", get(search))
        .route("/boom", get(boom))
        .route("/bare", get(bare_status))
        .route("/whoami", get(whoami))
}

pub fn shell(readiness: Option<ReadinessCheck>) -> Router {
    let openapi = utoipa::openapi::OpenApiBuilder::new()
        .info(utoipa::openapi::Info::new("test-service", "0.1.0"))
        .build();
    ServiceShell {
        name: "test-service",
        tokens: vec![Secret::new("other-token"), Secret::new(TOKEN)],
        readiness,
        openapi,
        max_body_bytes: 1024,
        extra_metrics: Some(std::sync::Arc::new(|| {
            Box::pin(async { "# TYPE test_widgets gauge\ntest_widgets 7\n".to_owned() })
        })),
    }
    .into_router(test_api())
}

pub fn request(method: &str, uri: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
}

pub async fn send(app: Router, request: Request<Body>) -> (StatusCode, HeaderMap, Bytes) {
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, headers, body)
}

/// Sends a request and returns the status and the JSON body.
pub async fn send_json(app: Router, request: Request<Body>) -> (StatusCode, Value) {
    let (status, headers, body) = send(app, request).await;
    assert_eq!(
        headers.get(header::CONTENT_TYPE).unwrap(),
        "application/json",
        "status {status}, body {body:?}"
    );
    (status, serde_json::from_slice(&body).unwrap())
}

/// Asserts the error shape, and that the message contains every one of `needles`.
pub fn assert_error(body: &Value, code: &str, needles: &[&str]) {
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    for needle in needles {
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    }
}

pub fn post_json(body: &str) -> Request<Body> {
    request("POST", "/widgets")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

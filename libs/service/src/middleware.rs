//! The layers [`ServiceShell`](crate::app::ServiceShell) puts around every service: request id
//! and metrics, bearer auth, body limit, JSON error normalisation, panic catching.

use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, Method, header};
use subtle::ConstantTimeEq;
use tracing::Instrument;
use tracing::field::Empty;

use crate::config::Secret;
use crate::error::ApiError;
use crate::metrics::HttpMetrics;

/// Header carrying the request id, in both directions.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Paths answered without a bearer token: liveness and readiness probes carry no secrets.
const PUBLIC_PATHS: [&str; 2] = ["/health", "/ready"];

/// Largest error body read back when normalising a plain-text error into JSON.
const MAX_NORMALISED_BODY: usize = 4096;

/// The id of the current request, as a request extension (`Extension<RequestId>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// A client-supplied id is kept only when short and made of safe characters, so that it cannot
/// forge log lines or blow up the span.
fn acceptable_request_id(value: &HeaderValue) -> Option<&str> {
    let bytes = value.as_bytes();
    let safe = |byte: &u8| byte.is_ascii_alphanumeric() || b"-_.:".contains(byte);
    if bytes.is_empty() || bytes.len() > 128 || !bytes.iter().all(safe) {
        return None;
    }
    value.to_str().ok()
}

/// Method label for metrics: extension methods collapse into `OTHER` to bound cardinality.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Assigns the request id, opens the request span, records metrics.
///
/// Runs inside routing (added with `Router::layer`) so that `MatchedPath` is known: the route
/// template, never the raw path, labels metrics and logs.
pub(crate) async fn observe(
    State(metrics): State<HttpMetrics>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(acceptable_request_id)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    request
        .extensions_mut()
        .insert(RequestId(request_id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method,
        route = %route,
        status = Empty,
        latency_ms = Empty,
    );
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    span.record("status", status);
    span.record(
        "latency_ms",
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
    );
    span.in_scope(|| tracing::info!("request answered"));
    metrics.observe(method, &route, status, elapsed);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// Lets a request through only with one of `tokens` as its bearer token.
pub(crate) async fn require_bearer(
    State(tokens): State<Arc<[Secret]>>,
    request: Request,
    next: Next,
) -> Response {
    if PUBLIC_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let Some(presented) = presented else {
        return ApiError::unauthorized("missing bearer token").into_response();
    };
    // Compare against every token without stopping early, so timing says nothing about which
    // (if any) token matched; an empty list lets nobody in.
    let matched = tokens
        .iter()
        .fold(subtle::Choice::from(0), |matched, token| {
            matched | token.expose().as_bytes().ct_eq(presented.as_bytes())
        });
    if bool::from(matched) && !presented.is_empty() {
        next.run(request).await
    } else {
        ApiError::unauthorized("invalid bearer token").into_response()
    }
}

/// Refuses bodies over `max` bytes: at once when `Content-Length` says so, while reading for
/// chunked bodies (the `Limited` error becomes a 413 in axum's extractors and in [`ApiJson`]).
///
/// [`ApiJson`]: crate::extract::ApiJson
pub(crate) async fn limit_body(State(max): State<usize>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max as u64) {
        return too_large(max);
    }
    let (parts, body) = request.into_parts();
    let body = Body::new(http_body_util::Limited::new(body, max));
    next.run(Request::from_parts(parts, body)).await
}

fn too_large(max: usize) -> Response {
    ApiError::payload_too_large(format!("request body is larger than {max} bytes")).into_response()
}

/// Rewrites error answers without a body or with a plain-text one (axum's rejections, a bare
/// `StatusCode` from a handler) into the JSON error shape; other bodies (JSON, XML) pass as is.
pub(crate) async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|value| value.as_bytes().starts_with(b"text/plain"));
    if !plain {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_NORMALISED_BODY)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
    } else {
        text
    };
    let json = ApiError::from_status(status, message).into_response();
    let (json_parts, json_body) = json.into_parts();
    // Keep the original headers (Allow, WWW-Authenticate, Retry-After), but not those that
    // described the old body.
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in &json_parts.headers {
        parts.headers.insert(name, value.clone());
    }
    Response::from_parts(parts, json_body)
}

/// Answers a handler panic as a 500 in the error shape (the panic message is logged only).
pub(crate) fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    ApiError::internal(format!("handler panicked: {detail}")).into_response()
}

/// Fallback for unknown routes.
pub(crate) async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!("no route for {}", request.uri().path()))
}

/// Fallback for a known route with a method it does not serve.
pub(crate) async fn method_not_allowed(method: Method, request: Request) -> ApiError {
    ApiError::method_not_allowed(format!(
        "method {method} not allowed on {}",
        request.uri().path()
    ))
}

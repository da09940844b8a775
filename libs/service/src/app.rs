//! Wrapping a service's API router with everything common: probes, metrics, OpenAPI document
//! and docs page, bearer auth, body limit, request ids, JSON errors, panic catching.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;
use http::{HeaderValue, header};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa_swagger_ui::SwaggerUi;

use crate::config::{DEFAULT_MAX_BODY_BYTES, Secret};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::metrics::HttpMetrics;
use crate::middleware;

/// Checks a service's dependencies for `/ready`; `Err` carries the reason it is not ready.
pub type ReadinessCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Name of the security scheme added to every service's OpenAPI document.
pub const BEARER_SCHEME: &str = "bearerAuth";

/// Everything common to a service, ready to wrap its API router.
pub struct ServiceShell {
    /// Service name (`ro-api`), in `/health` and in metric labels.
    pub name: &'static str,
    /// Accepted bearer tokens; an empty list lets nobody in.
    pub tokens: Vec<Secret>,
    /// Dependency check behind `/ready`; `None` means always ready.
    pub readiness: Option<ReadinessCheck>,
    /// The service's OpenAPI document, served at `/openapi.json`.
    pub openapi: OpenApi,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// The service's own metrics in Prometheus text format, appended to `/metrics`.
    pub extra_metrics: Option<MetricsSource>,
}

/// Produces a service's own Prometheus text (gauges read at scrape time).
pub type MetricsSource = Arc<dyn Fn() -> BoxFuture<'static, String> + Send + Sync>;

impl ServiceShell {
    /// A shell with no tokens, no readiness check and the default body limit.
    pub fn new(name: &'static str, openapi: OpenApi) -> Self {
        Self {
            name,
            tokens: Vec::new(),
            readiness: None,
            openapi,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            extra_metrics: None,
        }
    }

    /// Serves `api` plus `/health`, `/ready`, `/metrics`, `/openapi.json` and `/docs`, behind
    /// the common layers. `api` must not define those paths itself (axum panics on overlapping
    /// routes at startup, not at request time).
    pub fn into_router(self, api: Router) -> Router {
        let metrics = HttpMetrics::new(self.name);
        let mut openapi = self.openapi;
        with_bearer_security(&mut openapi);
        let name = self.name;
        let readiness = self.readiness;
        let scrape = metrics.clone();
        let extra = self.extra_metrics;

        let probes = Router::new()
            .route(
                "/health",
                get(move || async move { ApiJson(json!({"status": "ok", "service": name})) }),
            )
            .route("/ready", get(move || ready(readiness.clone())))
            .route(
                "/metrics",
                get(move || render_metrics(scrape.clone(), extra.clone())),
            );
        let docs: Router = SwaggerUi::new("/docs").url("/openapi.json", openapi).into();
        let tokens: Arc<[Secret]> = self.tokens.into();

        // `Router::layer` applies only to routes and fallbacks that already exist, so those come
        // first. Each `.layer` wraps the previous ones: the last one added runs first.
        api.merge(probes)
            .merge(docs)
            .fallback(middleware::not_found)
            .method_not_allowed_fallback(middleware::method_not_allowed)
            .layer(CatchPanicLayer::custom(middleware::panic_response))
            .layer(from_fn(middleware::json_errors))
            .layer(DefaultBodyLimit::max(self.max_body_bytes))
            .layer(from_fn_with_state(
                self.max_body_bytes,
                middleware::limit_body,
            ))
            .layer(from_fn_with_state(tokens, middleware::require_bearer))
            .layer(from_fn_with_state(metrics, middleware::observe))
    }
}

async fn ready(readiness: Option<ReadinessCheck>) -> Response {
    let outcome = match readiness {
        Some(check) => check().await,
        None => Ok(()),
    };
    match outcome {
        Ok(()) => ApiJson(json!({"status": "ready"})).into_response(),
        Err(reason) => ApiError::unavailable(format!("not ready: {reason}")).into_response(),
    }
}

async fn render_metrics(metrics: HttpMetrics, extra: Option<MetricsSource>) -> Response {
    match metrics.render() {
        Ok(mut text) => {
            if let Some(extra) = extra {
                text.push_str(&extra().await);
            }
            let mut response = text.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        Err(error) => ApiError::internal(format!("cannot render metrics: {error}")).into_response(),
    }
}

/// Adds the `bearerAuth` HTTP bearer scheme to `doc` and requires it on every operation
/// (idempotent).
pub fn with_bearer_security(doc: &mut OpenApi) {
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            BEARER_SCHEME,
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    let requirement = SecurityRequirement::new(BEARER_SCHEME, Vec::<String>::new());
    let security = doc.security.get_or_insert_with(Vec::new);
    if !security.contains(&requirement) {
        security.push(requirement);
    }
}

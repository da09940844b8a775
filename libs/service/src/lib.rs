//! What every SERRANO service needs, in one place.
//!
//! # Layout
//!
//! - [`error`] holds [`ApiError`], the one error type and its JSON wire shape.
//! - [`extract`] holds [`ApiJson`], [`ApiPath`], [`ApiQuery`], extractors that reject in that shape.
//! - [`config`] holds [`load_config`] (defaults, TOML file, `SERRANO_<SERVICE>_*` overlay),
//!   [`HttpConfig`] and [`Secret`].
//! - [`telemetry`] holds [`init_tracing`].
//! - [`app`] holds [`ServiceShell`], wrapping a service's router with probes, metrics, OpenAPI, docs,
//!   bearer auth, body limit, request ids and JSON errors.
//! - [`serve`] holds [`serve()`] over plain HTTP or TLS with graceful shutdown, [`shutdown_signal`].
//!
//! A service starts here: load its config, `init_tracing`, build its router, wrap it with
//! `ServiceShell::into_router`, bind, and `serve(app, listener, tls, shutdown_signal())`.

pub mod app;
pub mod config;
pub mod error;
pub mod extract;
pub mod metrics;
mod middleware;
pub mod serve;
pub mod telemetry;

pub use app::{MetricsSource, ReadinessCheck, ServiceShell, with_bearer_security};
pub use config::{
    ConfigError, HttpConfig, LogFormat, Secret, hostname, load_config, load_config_from,
};
pub use error::{ApiError, ApiResult, ErrorBody, ErrorDetail, error_chain};
pub use extract::{ApiJson, ApiPath, ApiQuery};
pub use middleware::{REQUEST_ID_HEADER, RequestId};
pub use serve::{TlsFiles, serve, serve_with_drain, shutdown_signal};
pub use telemetry::init_tracing;

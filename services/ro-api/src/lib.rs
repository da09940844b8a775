//! The Orchestration API server of the SERRANO Resource Orchestrator (D6.7 4.2).
//!
//! Layout: [`api`] holds one module of thin handlers per resource; [`store`] the datastore
//! access with the optimistic-concurrency discipline; [`validate`] the checks serde cannot do;
//! [`feedback`] the pure rule that rolls driver reports up into a deployment's status.
//! [`router`] builds the whole service (for `serrano up` and tests), [`run`] serves it.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use serde::{Deserialize, Serialize};
use serrano_datastore::{DatastoreConfig, KvStore, open_store};
use serrano_service::{HttpConfig, Secret, ServiceShell};

pub mod api;
pub mod feedback;
pub mod store;
pub mod validate;

pub use api::openapi;

/// The service's name in logs, metrics and its `SERRANO_RO_API_*` configuration.
pub const SERVICE: &str = "ro-api";
/// Fixed default port (ARCHITECTURE.md "Ports").
pub const DEFAULT_PORT: u16 = 7102;

/// Configuration: `SERRANO_RO_API_<KEY>` variables or the TOML file in `SERRANO_RO_API_CONFIG`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub http: HttpConfig,
    pub datastore: DatastoreConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: HttpConfig::with_port(DEFAULT_PORT),
            datastore: DatastoreConfig::default(),
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: store::OrchestratorStore,
}

/// The complete service: the API under `/api/v1/orchestrator` plus health, readiness (the
/// datastore answers), metrics, auth and the OpenAPI document.
pub fn router(kv: Arc<dyn KvStore>, tokens: Vec<Secret>, max_body_bytes: usize) -> Router {
    let state = AppState {
        store: store::OrchestratorStore::new(kv.clone()),
    };
    let readiness: serrano_service::ReadinessCheck = Arc::new(move || {
        let kv = kv.clone();
        Box::pin(async move { kv.health().await.map_err(|err| err.to_string()) })
    });
    let api = Router::new().nest(api::PREFIX, api::routes().with_state(state));
    ServiceShell {
        name: SERVICE,
        tokens,
        readiness: Some(readiness),
        openapi: openapi(),
        max_body_bytes,
        extra_metrics: None,
    }
    .into_router(api)
}

/// Opens the configured datastore and serves until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let tokens = config.http.required_tokens(SERVICE)?;
    let kv = open_store(&config.datastore).await?;
    let app = router(kv, tokens, config.http.max_body_bytes);
    let tls = config.http.tls_files()?;
    tracing::info!(address = %listener.local_addr()?, tls = tls.is_some(), "ro-api listening");
    serrano_service::serve(app, listener, tls, shutdown).await?;
    Ok(())
}

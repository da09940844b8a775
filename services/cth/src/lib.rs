//! Central Telemetry Handler, the root of the SERRANO telemetry hierarchy (D6.7 4.4.1, 4.4.2):
//! the platform-level view over what the Enhanced Telemetry Agents collect, for the
//! orchestration (AISO, ROT, RO) and service-assurance services.
//!
//! Layout: [`store`] names the operational-DB collections (docs/telemetry.md, the contract with
//! the agents); [`infrastructure`], [`deployments`] and [`kernels`] are pure shaping and
//! validation; [`agents`] resolves a cluster's agent and forwards calls to it;
//! [`storage_locations`] copies the storage gateway's location lists; [`streaming`] starts
//! sessions and stores the samples the agents stream over gRPC; [`api`] holds the thin handlers.
//!
//! The handler reads what the agents write and writes only its own collections, so any number of
//! agents (and handler instances) can share one operational DB.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use serde::{Deserialize, Serialize};
use serrano_bus::{StreamConfig, StreamHandler, open_stream_handler};
use serrano_datastore::{DatastoreConfig, open_store};
use serrano_docstore::config::{DocStoreConfig, open_docstore};
use serrano_docstore::{DocStore, Filter};
use serrano_service::{HttpConfig, Secret, ServiceShell};
use tokio::sync::watch;
use utoipa::ToSchema;

pub mod agents;
pub mod api;
pub mod deployments;
pub mod infrastructure;
pub mod kernels;
pub mod storage_locations;
pub mod store;
pub mod streaming;

use agents::AgentClient;
use storage_locations::{GatewayClient, StorageLocations};
use streaming::LatestSampleSink;

pub const SERVICE: &str = "cth";
/// Fixed default ports (ARCHITECTURE.md "Ports").
pub const DEFAULT_PORT: u16 = 7108;
pub const DEFAULT_GRPC_PORT: u16 = 7118;
/// Where the embedded operational DB keeps its documents in the datastore (shared with the
/// agents, docs/telemetry.md).
pub const DOCS_PREFIX: &str = "/serrano/telemetry/docs/";
/// Path prefix of every route (D6.7 4.4.3, Figure 26).
pub const API_PREFIX: &str = "/api/v1/telemetry/central";
/// Bounds of `query_interval` and `query_timeout`, in seconds.
pub const MIN_SECONDS: u64 = 1;
pub const MAX_SECONDS: u64 = 86_400;

/// Where the storage gateway's location catalogues are (originals 3.2 `cloud_storage_locations`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageGatewayConfig {
    /// Base URL, e.g. `http://127.0.0.1:7113`; empty turns the location copies off.
    pub url: String,
    /// The gateway's bearer token (`serrano up` passes its admin token).
    #[serde(default)]
    pub token: Option<Secret>,
}

/// A uuid that stays the same across restarts on one host (derived from the host name and the
/// default port), so what refers to this handler keeps pointing at it.
fn default_uuid() -> String {
    let name = format!("serrano-cth:{}:{DEFAULT_PORT}", serrano_service::hostname());
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string()
}

/// Configuration: `SERRANO_CTH_<KEY>` variables or the TOML file in `SERRANO_CTH_CONFIG`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub http: HttpConfig,
    /// Where agents stream samples to (gRPC client-streaming).
    pub grpc_bind: SocketAddr,
    /// Token the agents' gRPC streams must carry; any of the HTTP tokens when unset.
    pub grpc_token: Option<Secret>,
    /// This handler's id; default: derived from the host name and port, stable across restarts.
    pub uuid: String,
    /// The URL clients reach this handler at (`exposed_service` of `GET`); the bound address
    /// when unset.
    pub exposed_service: Option<String>,
    /// Seconds between two refreshes of the storage-location copies (1 to 86400).
    pub query_interval: u64,
    /// Seconds an agent or the storage gateway has to answer (1 to 86400).
    pub query_timeout: u64,
    /// Whether the periodic collector runs.
    pub active_monitoring: bool,
    /// The datastore the embedded operational DB lives in.
    pub datastore: DatastoreConfig,
    /// The operational DB shared with the agents (embedded, or MongoDB).
    pub operational_db: DocStoreConfig,
    /// Where configuration-change notifications go (`serrano_notification_messages`).
    pub notifications: StreamConfig,
    /// The storage gateway whose location catalogues `/storage_locations` serves.
    pub storage_gateway: Option<StorageGatewayConfig>,
    /// Bearer token sent to the agents.
    pub agent_token: Option<Secret>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: HttpConfig::with_port(DEFAULT_PORT),
            grpc_bind: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_GRPC_PORT)),
            grpc_token: None,
            uuid: default_uuid(),
            exposed_service: None,
            query_interval: 60,
            query_timeout: 5,
            active_monitoring: true,
            datastore: DatastoreConfig::default(),
            operational_db: DocStoreConfig::default(),
            notifications: StreamConfig::default(),
            storage_gateway: Some(StorageGatewayConfig {
                url: "http://127.0.0.1:7113".to_owned(),
                token: None,
            }),
            agent_token: None,
        }
    }
}

impl Config {
    /// Checks what serde cannot: ranges and URLs.
    pub fn validate(&self) -> anyhow::Result<()> {
        check_seconds("query_interval", self.query_interval).map_err(anyhow::Error::msg)?;
        check_seconds("query_timeout", self.query_timeout).map_err(anyhow::Error::msg)?;
        if self.uuid.trim().is_empty() {
            anyhow::bail!("uuid must not be empty");
        }
        if let Some(gateway) = &self.storage_gateway
            && !gateway.url.is_empty()
        {
            let url = reqwest::Url::parse(&gateway.url)
                .with_context(|| format!("storage_gateway.url {:?}", gateway.url))?;
            if !matches!(url.scheme(), "http" | "https") {
                anyhow::bail!("storage_gateway.url must be an http(s) URL");
            }
        }
        Ok(())
    }
}

/// Checks a `query_interval` / `query_timeout` value.
pub fn check_seconds(name: &str, value: u64) -> Result<(), String> {
    if (MIN_SECONDS..=MAX_SECONDS).contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{name} must be {MIN_SECONDS} to {MAX_SECONDS} seconds, got {value}"
        ))
    }
}

/// What `PUT /api/v1/telemetry/central` changes at run time (kept in memory: a restart goes back
/// to the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Settings {
    pub query_interval: u64,
    pub query_timeout: u64,
    pub active_monitoring: bool,
}

/// Who this handler is, for `GET /api/v1/telemetry/central`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uuid: String,
    pub address: String,
    pub port: u16,
    pub exposed_service: String,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    pub agent_calls: AtomicU64,
    pub agent_failures: AtomicU64,
    pub location_refreshes: AtomicU64,
    pub location_refresh_failures: AtomicU64,
}

/// What the handlers, the collector and the gRPC sink share.
pub struct Cth {
    pub docs: Arc<dyn DocStore>,
    pub bus: Arc<dyn StreamHandler>,
    pub identity: Identity,
    pub agents: AgentClient,
    pub locations: StorageLocations,
    pub sink: Arc<LatestSampleSink>,
    pub stats: Stats,
    settings: watch::Sender<Settings>,
}

impl Cth {
    /// The handler state for `config`, serving HTTP at `address` (TLS decides the scheme of the
    /// default `exposed_service`).
    pub fn new(
        config: &Config,
        docs: Arc<dyn DocStore>,
        bus: Arc<dyn StreamHandler>,
        address: SocketAddr,
    ) -> anyhow::Result<Self> {
        config.validate()?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(config.query_timeout))
            .build()
            .context("building the HTTP client")?;
        let scheme = if config.http.tls_files()?.is_some() {
            "https"
        } else {
            "http"
        };
        let identity = Identity {
            uuid: config.uuid.clone(),
            address: address.ip().to_string(),
            port: address.port(),
            exposed_service: config
                .exposed_service
                .clone()
                .unwrap_or_else(|| format!("{scheme}://{address}")),
        };
        let gateway = config
            .storage_gateway
            .as_ref()
            .filter(|g| !g.url.is_empty())
            .map(|g| GatewayClient::new(http.clone(), &g.url, g.token.clone()));
        let settings = Settings {
            query_interval: config.query_interval,
            query_timeout: config.query_timeout,
            active_monitoring: config.active_monitoring,
        };
        Ok(Self {
            locations: StorageLocations::new(docs.clone(), gateway),
            sink: Arc::new(LatestSampleSink::new(docs.clone())),
            agents: AgentClient::new(http, config.agent_token.clone()),
            docs,
            bus,
            identity,
            stats: Stats::default(),
            settings: watch::channel(settings).0,
        })
    }

    /// The current run-time settings.
    pub fn settings(&self) -> Settings {
        *self.settings.borrow()
    }

    /// Replaces the run-time settings (the collector picks them up at once).
    pub fn set_settings(&self, settings: Settings) {
        self.settings.send_replace(settings);
    }

    pub fn subscribe_settings(&self) -> watch::Receiver<Settings> {
        self.settings.subscribe()
    }

    /// How long an agent or the storage gateway may take.
    pub fn query_timeout(&self) -> Duration {
        Duration::from_secs(self.settings().query_timeout)
    }

    /// Refreshes the storage-location copies once, counting the outcome.
    pub async fn refresh_locations(&self) -> Result<storage_locations::LocationLists, String> {
        let outcome = self.locations.refresh(self.query_timeout()).await;
        self.stats
            .location_refreshes
            .fetch_add(1, Ordering::Relaxed);
        if outcome.is_err() {
            self.stats
                .location_refresh_failures
                .fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }
}

/// The periodic collector (the original's timer, which pointed at a missing method): refreshes
/// the storage-location copies every `query_interval` while `active_monitoring` is on, and at
/// once when the settings change.
pub async fn run_collector(cth: Arc<Cth>, mut stop: watch::Receiver<bool>) {
    let mut settings = cth.subscribe_settings();
    loop {
        let current = *settings.borrow_and_update();
        if current.active_monitoring && cth.locations.gateway().is_some() {
            tokio::select! {
                outcome = cth.refresh_locations() => {
                    if let Err(reason) = outcome {
                        tracing::warn!(%reason, "storage locations not refreshed");
                    }
                }
                _ = stop.changed() => return,
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(current.query_interval)) => {}
            changed = settings.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// The complete service around `cth`.
pub fn router(cth: Arc<Cth>, tokens: Vec<Secret>, max_body_bytes: usize) -> Router {
    let docs = cth.docs.clone();
    let readiness: serrano_service::ReadinessCheck = Arc::new(move || {
        let docs = docs.clone();
        Box::pin(async move {
            docs.find_one(store::ENTITIES, &Filter::all())
                .await
                .map(|_| ())
                .map_err(|err| err.to_string())
        })
    });
    ServiceShell {
        name: SERVICE,
        tokens,
        readiness: Some(readiness),
        openapi: api::openapi(),
        max_body_bytes,
        extra_metrics: Some(metrics_source(cth.clone())),
    }
    .into_router(api::routes().with_state(cth))
}

/// Opens the configured operational DB and notification stream, binds the gRPC receiver and
/// serves until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    let tokens = config.http.required_tokens(SERVICE)?;
    // Only the embedded operational DB lives in the datastore; MongoDB needs none.
    let kv: Arc<dyn serrano_datastore::KvStore> = match config.operational_db {
        DocStoreConfig::Embedded => open_store(&config.datastore)
            .await
            .context("opening the datastore")?,
        DocStoreConfig::Mongodb { .. } => Arc::new(serrano_datastore::EmbeddedStore::in_memory()),
    };
    let docs = open_docstore(&config.operational_db, kv, DOCS_PREFIX)
        .await
        .context("opening the operational DB")?;
    let bus = open_stream_handler(&config.notifications)
        .await
        .context("opening the notification stream")?;
    let grpc = tokio::net::TcpListener::bind(config.grpc_bind)
        .await
        .with_context(|| format!("binding the gRPC receiver to {}", config.grpc_bind))?;
    serve_with(config, docs, bus, tokens, listener, Some(grpc), shutdown).await
}

/// Serves on an already opened operational DB and stream handler (for `serrano up`, which shares
/// them). The gRPC receiver runs on `grpc_listener` when given; `None` runs none.
pub async fn serve_with(
    config: Config,
    docs: Arc<dyn DocStore>,
    bus: Arc<dyn StreamHandler>,
    tokens: Vec<Secret>,
    listener: tokio::net::TcpListener,
    grpc_listener: Option<tokio::net::TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let address = listener.local_addr()?;
    let cth = Arc::new(Cth::new(&config, docs, bus, address)?);
    let (stop, stopped) = watch::channel(false);
    let collector = tokio::spawn(run_collector(cth.clone(), stopped.clone()));
    let grpc = match grpc_listener {
        Some(grpc_listener) => {
            // The gRPC token when one is configured, else the REST tokens (the receiver
            // accepts any of a list).
            let grpc_tokens: Vec<String> = match &config.grpc_token {
                Some(token) => vec![token.expose().to_owned()],
                None => tokens.iter().map(|t| t.expose().to_owned()).collect(),
            };
            let options = serrano_telemetry_stream::ReceiverOptions {
                tokens: grpc_tokens,
                ..serrano_telemetry_stream::ReceiverOptions::default()
            };
            let grpc_address = grpc_listener.local_addr()?;
            tracing::info!(address = %grpc_address, "cth gRPC receiver listening");
            let mut grpc_stopped = stopped.clone();
            let sink: Arc<dyn serrano_telemetry_stream::BatchSink> = cth.sink.clone();
            Some(tokio::spawn(serrano_telemetry_stream::serve(
                grpc_listener,
                sink,
                options,
                async move {
                    let _ = grpc_stopped.wait_for(|s| *s).await;
                },
            )))
        }
        None => None,
    };
    let app = router(cth, tokens, config.http.max_body_bytes);
    let tls = config.http.tls_files()?;
    tracing::info!(%address, tls = tls.is_some(), "cth listening");
    let served = serrano_service::serve(app, listener, tls, shutdown).await;
    let _ = stop.send(true);
    let _ = collector.await;
    if let Some(grpc) = grpc {
        match grpc.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "gRPC receiver failed"),
            Err(err) => tracing::warn!(error = %err, "gRPC receiver task failed"),
        }
    }
    served?;
    Ok(())
}

/// The handler's own metrics for `/metrics`.
pub fn metrics_source(cth: Arc<Cth>) -> serrano_service::MetricsSource {
    Arc::new(move || {
        let cth = cth.clone();
        Box::pin(async move { render_metrics(&cth) })
    })
}

fn render_metrics(cth: &Cth) -> String {
    use std::fmt::Write;
    let mut text = String::new();
    let counters = [
        (
            "cth_agent_calls_total",
            "Calls forwarded to Enhanced Telemetry Agents",
            cth.stats.agent_calls.load(Ordering::Relaxed),
        ),
        (
            "cth_agent_call_failures_total",
            "Forwarded calls that failed (unreachable, timeout, error answer)",
            cth.stats.agent_failures.load(Ordering::Relaxed),
        ),
        (
            "cth_location_refreshes_total",
            "Refreshes of the storage-location copies",
            cth.stats.location_refreshes.load(Ordering::Relaxed),
        ),
        (
            "cth_location_refresh_failures_total",
            "Refreshes of the storage-location copies that failed",
            cth.stats.location_refresh_failures.load(Ordering::Relaxed),
        ),
        (
            "cth_streamed_samples_stored_total",
            "Streamed samples stored as the latest of their series",
            cth.sink.stored(),
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(text, "# HELP {name} {help}");
        let _ = writeln!(text, "# TYPE {name} counter");
        let _ = writeln!(text, "{name} {value}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_uuid_is_stable_and_well_formed() {
        let first = Config::default().uuid;
        assert_eq!(first, Config::default().uuid);
        assert!(uuid::Uuid::parse_str(&first).is_ok());
    }

    #[test]
    fn defaults_and_environment() {
        let env = std::collections::HashMap::from([
            ("SERRANO_CTH_QUERY_INTERVAL".to_owned(), "30".to_owned()),
            ("SERRANO_CTH_UUID".to_owned(), "cth-1".to_owned()),
            (
                "SERRANO_CTH_AGENT_TOKEN".to_owned(),
                "agent-secret".to_owned(),
            ),
            (
                "SERRANO_CTH_STORAGE_GATEWAY_TOKEN".to_owned(),
                "gw-secret".to_owned(),
            ),
        ]);
        let config: Config = serrano_service::load_config_from(SERVICE, &env).unwrap();
        assert_eq!(config.query_interval, 30);
        assert_eq!(config.query_timeout, 5);
        assert!(config.active_monitoring);
        assert_eq!(config.uuid, "cth-1");
        assert_eq!(config.http.bind.port(), DEFAULT_PORT);
        assert_eq!(config.grpc_bind.port(), 7118);
        assert_eq!(
            config.agent_token.as_ref().map(Secret::expose),
            Some("agent-secret")
        );
        let gateway = config.storage_gateway.as_ref().unwrap();
        assert_eq!(gateway.url, "http://127.0.0.1:7113");
        assert_eq!(
            gateway.token.as_ref().map(Secret::expose),
            Some("gw-secret")
        );
        config.validate().unwrap();

        let bad = std::collections::HashMap::from([(
            "SERRANO_CTH_QUERY_INTERVALL".to_owned(),
            "1".to_owned(),
        )]);
        assert!(serrano_service::load_config_from::<Config>(SERVICE, &bad).is_err());
    }

    #[test]
    fn validation() {
        let mut config = Config {
            query_interval: 0,
            ..Config::default()
        };
        assert!(config.validate().is_err());
        config.query_interval = 86_401;
        assert!(config.validate().is_err());
        config.query_interval = 60;
        config.storage_gateway = Some(StorageGatewayConfig {
            url: "ftp://x".into(),
            token: None,
        });
        assert!(config.validate().is_err());
        config.storage_gateway = Some(StorageGatewayConfig {
            url: String::new(),
            token: None,
        });
        config.validate().unwrap();
    }
}

//! Enhanced Telemetry Agent (D6.7 4.4.2, originals.md 3.3): one per site. Monitoring probes
//! register with it; it polls them every `query_interval` (concurrently, each call bounded by
//! `query_timeout`), keeps their recent state in the operational DB (pruned after
//! `retain_data_period`), writes the history to the time-series store in one batch per round,
//! emits probe UP/DOWN notifications on the Stream Handler, and receives streaming telemetry
//! from probes over gRPC (forwarding it to the Central Telemetry Handler when configured).
//!
//! Layout: [`convert`] (pure: monitor documents → points and records), [`agent`] (the domain:
//! registry, polling, persistence, notifications), [`streaming`] (gRPC sink and sessions),
//! [`api`] (thin handlers). The shared-DB layout is docs/telemetry.md.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use serde::{Deserialize, Serialize};
use serrano_bus::StreamHandler;
use serrano_bus::config::{StreamConfig, open_stream_handler};
use serrano_datastore::{DatastoreConfig, open_store};
use serrano_docstore::DocStore;
use serrano_docstore::config::{DocStoreConfig, open_docstore};
use serrano_service::{HttpConfig, Secret, ServiceShell};
use serrano_timeseries::TimeSeriesStore;
use serrano_timeseries::config::{TimeSeriesConfig, open_timeseries};

pub mod agent;
pub mod api;
pub mod convert;
pub mod streaming;

pub use agent::{Agent, Settings};

pub const SERVICE: &str = "eta";
/// Fixed default ports (ARCHITECTURE.md "Ports").
pub const DEFAULT_PORT: u16 = 7109;
pub const DEFAULT_GRPC_PORT: u16 = 7119;
/// Where the embedded operational DB keeps its documents in the datastore.
pub const DOCS_PREFIX: &str = "/serrano/telemetry/docs/";

/// Link to the Central Telemetry Handler for streamed samples (gRPC client-streaming upwards).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CentralLink {
    /// The CTH's gRPC endpoint, e.g. `http://127.0.0.1:7118`.
    pub grpc_url: String,
    #[serde(default)]
    pub token: Option<Secret>,
}

/// Configuration: `SERRANO_ETA_<KEY>` variables or the TOML file in `SERRANO_ETA_CONFIG`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub http: HttpConfig,
    /// gRPC listener for streaming telemetry from probes.
    pub grpc_bind: SocketAddr,
    /// This agent's uuid; default: derived from the host name and REST port, so it is stable
    /// across restarts (registrations and sessions are owned by it).
    pub agent_uuid: Option<String>,
    /// The REST URL probes and the CTH use to reach this agent (default `http://<http.bind>`).
    pub exposed_url: Option<String>,
    /// The gRPC URL probes stream to (default `http://<grpc_bind>`).
    pub grpc_exposed_url: Option<String>,
    /// Seconds between two polls of every probe.
    pub query_interval: u64,
    /// Seconds one probe call may take.
    pub query_timeout: u64,
    /// Seconds the operational DB keeps monitoring samples (the original's `retain_data_period`).
    #[serde(alias = "data_retain_period")]
    pub retain_data_period: u64,
    pub active_monitoring: bool,
    pub active_notifications: bool,
    pub active_application: bool,
    /// Probe calls in flight at once.
    pub max_concurrent_polls: usize,
    pub datastore: DatastoreConfig,
    pub operational_db: DocStoreConfig,
    pub timeseries: TimeSeriesConfig,
    pub notifications: StreamConfig,
    /// Bearer token the agent presents to probes.
    pub probe_token: Option<Secret>,
    pub central: Option<CentralLink>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: HttpConfig::with_port(DEFAULT_PORT),
            grpc_bind: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_GRPC_PORT)),
            agent_uuid: None,
            exposed_url: None,
            grpc_exposed_url: None,
            query_interval: 60,
            query_timeout: 5,
            retain_data_period: 1800,
            active_monitoring: true,
            active_notifications: true,
            active_application: true,
            max_concurrent_polls: 64,
            datastore: DatastoreConfig::default(),
            operational_db: DocStoreConfig::default(),
            timeseries: TimeSeriesConfig::default(),
            notifications: StreamConfig::default(),
            probe_token: None,
            central: None,
        }
    }
}

impl Config {
    /// The configured uuid, or one derived from the host name and REST port.
    pub fn resolved_agent_uuid(&self) -> String {
        if let Some(uuid) = &self.agent_uuid {
            return uuid.clone();
        }
        let name = format!(
            "serrano-eta:{}:{}",
            serrano_service::hostname(),
            self.http.bind.port()
        );
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string()
    }

    /// Checks the values a handler would also check on `PUT`.
    pub fn validate(&self) -> anyhow::Result<()> {
        Settings::from_config(self)
            .validate()
            .map_err(|message| anyhow::anyhow!("eta configuration: {message}"))
    }
}

/// The backends an agent runs on (`serrano up` passes shared ones).
pub struct Backends {
    pub docs: Arc<dyn DocStore>,
    pub series: Arc<dyn TimeSeriesStore>,
    pub bus: Arc<dyn StreamHandler>,
}

impl Backends {
    /// Opens the configured backends.
    pub async fn open(config: &Config) -> anyhow::Result<Backends> {
        let kv = open_store(&config.datastore).await?;
        let docs = open_docstore(&config.operational_db, kv, DOCS_PREFIX).await?;
        let series = open_timeseries(&config.timeseries).await?;
        let bus = open_stream_handler(&config.notifications).await?;
        Ok(Backends { docs, series, bus })
    }
}

/// The complete REST service around `agent`.
pub fn router(agent: Arc<Agent>, tokens: Vec<Secret>, max_body_bytes: usize) -> Router {
    let readiness: serrano_service::ReadinessCheck = {
        let agent = agent.clone();
        Arc::new(move || {
            let agent = agent.clone();
            Box::pin(async move { agent.ready().await })
        })
    };
    let metrics: serrano_service::MetricsSource = {
        let agent = agent.clone();
        Arc::new(move || {
            let agent = agent.clone();
            Box::pin(async move { agent.render_metrics() })
        })
    };
    ServiceShell {
        name: SERVICE,
        tokens,
        readiness: Some(readiness),
        openapi: api::openapi(),
        max_body_bytes,
        extra_metrics: Some(metrics),
    }
    .into_router(api::routes().with_state(agent))
}

/// Opens the configured backends and serves until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    grpc_listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    let tokens = config.http.required_tokens(SERVICE)?;
    let backends = Backends::open(&config).await?;
    serve_with(config, backends, tokens, listener, grpc_listener, shutdown).await
}

/// Serves on already opened backends: REST on `listener`, streaming gRPC on `grpc_listener`,
/// the poller in the background.
pub async fn serve_with(
    config: Config,
    backends: Backends,
    tokens: Vec<Secret>,
    listener: tokio::net::TcpListener,
    grpc_listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    let rest_address = listener.local_addr()?;
    let grpc_address = grpc_listener.local_addr()?;
    let agent = Arc::new(Agent::new(&config, backends, rest_address, grpc_address).await?);
    agent.announce().await;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let poller = tokio::spawn(agent::run_poller(agent.clone(), stop_rx.clone()));
    let grpc = {
        let sink = Arc::new(streaming::AgentSink::new(agent.clone()));
        let mut stop = stop_rx.clone();
        let options = streaming::receiver_options(&tokens);
        tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            serrano_telemetry_stream::serve(grpc_listener, sink, options, stopped).await
        })
    };

    let app = router(agent.clone(), tokens, config.http.max_body_bytes);
    let tls = config.http.tls_files()?;
    tracing::info!(address = %rest_address, grpc = %grpc_address, agent_uuid = %agent.uuid, tls = tls.is_some(), "eta listening");
    let served = serrano_service::serve(app, listener, tls, shutdown).await;
    let _ = stop_tx.send(true);
    let _ = poller.await;
    match grpc.await {
        Ok(Err(err)) => tracing::warn!(error = %err, "streaming receiver ended with an error"),
        Err(err) => tracing::warn!(error = %err, "streaming receiver task failed"),
        Ok(Ok(())) => {}
    }
    agent.shutdown().await;
    served?;
    Ok(())
}

//! SERRANO monitoring probes (D6.7 4.4.2, 4.4.3; originals.md 3.5): one service, four kinds.
//!
//! A probe describes and measures one set of resources for its Enhanced Telemetry Agent, which
//! it registers at on start ([`registration`]), and which then polls it (`GET /monitor`,
//! `GET /inventory`), tunes it (`POST /collection`) and asks it for streaming telemetry
//! (`POST /streaming`, [`streaming`]).
//!
//! Kinds ([`ProbeKind`]), each a [`source::Source`]:
//! - [`host`]: this machine, from procfs and `statvfs`;
//! - [`k8s`]: a Kubernetes cluster, from its REST API and each node's node-exporter;
//! - [`hpc`]: an HPC infrastructure, through the HPC gateway;
//! - [`edge_storage`]: storage devices (MinIO or the SERRANO storage gateway), from their
//!   Prometheus text ([`prom`]).
//!
//! The wire shapes are in [`model`] and [`nodes`]; [`api`] holds the thin handlers;
//! [`collection`] the settings and the background reading behind `/ready`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use serde::{Deserialize, Serialize};
use serrano_service::{HttpConfig, Secret, ServiceShell};
use serrano_telemetry_stream::SenderOptions;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use utoipa::ToSchema;
use uuid::Uuid;

pub mod api;
pub mod collection;
pub mod edge_storage;
pub mod host;
pub mod hpc;
pub mod k8s;
pub mod model;
pub mod nodes;
pub mod prom;
pub use serrano_model::quantity;
pub mod registration;
pub mod source;
pub mod streaming;

use collection::{CollectionSettings, CollectionStats};
use edge_storage::EdgeStorageConfig;
use host::HostConfig;
use hpc::HpcConfig;
use k8s::K8sConfig;
pub use registration::AgentLink;
use registration::RegistrationState;
use source::{Http, Source};
use streaming::Sessions;

pub const SERVICE: &str = "probe";
/// Fixed default port (ARCHITECTURE.md "Ports").
pub const DEFAULT_PORT: u16 = 7110;

/// Which resources a probe describes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    /// This machine.
    #[default]
    Host,
    /// An HPC infrastructure behind the HPC gateway.
    Hpc,
    /// Edge storage devices.
    EdgeStorage,
    /// A Kubernetes cluster.
    K8s,
}

impl ProbeKind {
    /// The `type` the agent knows the probe by.
    pub fn type_name(self) -> &'static str {
        match self {
            Self::Host => "Probe.Host",
            Self::Hpc => "Probe.HPC",
            Self::EdgeStorage => "Probe.EdgeStorage",
            Self::K8s => "Probe.k8s",
        }
    }

    fn config_name(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Hpc => "hpc",
            Self::EdgeStorage => "edge_storage",
            Self::K8s => "k8s",
        }
    }
}

/// Configuration: `SERRANO_PROBE_<KEY>` variables or the TOML file in `SERRANO_PROBE_CONFIG`.
///
/// `probe_uuid` and `cluster_uuid` default to UUIDs derived from the kind, the machine's host
/// name and `name`, so a probe keeps its identity across restarts without configuration; set
/// them explicitly when the cluster is registered elsewhere (the Resource Orchestrator's
/// cluster registry) or when the probe moves between machines.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub http: HttpConfig,
    pub kind: ProbeKind,
    pub probe_uuid: Option<Uuid>,
    pub cluster_uuid: Option<Uuid>,
    /// Name given to the agent; defaults to the host name (host), the infrastructure (hpc),
    /// `edge-storage` or `k8s`.
    pub name: String,
    /// The agent to register at; none: the probe runs unregistered (polled by whoever knows it).
    /// Only settable from the TOML file (it is a table).
    pub agent: Option<AgentLink>,
    /// The URL the agent calls the probe back at.
    pub exposed_url: String,
    /// First wait after a failed registration; doubles up to `registration_retry_max_ms`.
    pub registration_retry_ms: u64,
    pub registration_retry_max_ms: u64,
    /// Initial collection settings (changed at run time by `POST /collection`).
    pub collection: CollectionSettings,
    /// Most streaming sessions at once.
    pub max_streaming_sessions: usize,
    pub host: HostConfig,
    pub hpc: HpcConfig,
    pub edge_storage: EdgeStorageConfig,
    pub k8s: K8sConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: HttpConfig::with_port(DEFAULT_PORT),
            kind: ProbeKind::Host,
            probe_uuid: None,
            cluster_uuid: None,
            name: String::new(),
            agent: None,
            exposed_url: format!("http://127.0.0.1:{DEFAULT_PORT}"),
            registration_retry_ms: 1000,
            registration_retry_max_ms: 60_000,
            collection: CollectionSettings::default(),
            max_streaming_sessions: 16,
            host: HostConfig::default(),
            hpc: HpcConfig::default(),
            edge_storage: EdgeStorageConfig::default(),
            k8s: K8sConfig::default(),
        }
    }
}

impl Config {
    /// Checks what serde cannot, for the configured kind only.
    pub fn validate(&self) -> Result<(), String> {
        self.collection
            .validate()
            .map_err(|err| format!("collection.{err}"))?;
        if self.max_streaming_sessions == 0 {
            return Err("max_streaming_sessions: at least 1".to_owned());
        }
        if !(self.exposed_url.starts_with("http://") || self.exposed_url.starts_with("https://")) {
            return Err("exposed_url: an http:// or https:// URL".to_owned());
        }
        if let Some(agent) = &self.agent
            && !(agent.url.starts_with("http://") || agent.url.starts_with("https://"))
        {
            return Err("agent.url: an http:// or https:// URL".to_owned());
        }
        match self.kind {
            ProbeKind::Host => Ok(()),
            ProbeKind::Hpc => self.hpc.validate(),
            ProbeKind::EdgeStorage => self.edge_storage.validate(),
            ProbeKind::K8s => self.k8s.validate(),
        }
    }
}

/// Who the probe is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub kind: ProbeKind,
    pub probe_uuid: Uuid,
    pub cluster_uuid: Uuid,
    pub name: String,
}

pub use serrano_service::hostname;

/// A stable UUID (version 8: SHA-256 based) of `parts`.
pub fn derived_uuid(parts: &[&str]) -> Uuid {
    let mut hasher = Sha256::new();
    hasher.update(b"serrano-probe");
    for part in parts {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

impl Identity {
    /// The identity `config` describes (derived UUIDs where none are set).
    pub fn from_config(config: &Config, hostname: &str) -> Self {
        let name = if config.name.is_empty() {
            match config.kind {
                ProbeKind::Host => hostname.to_owned(),
                ProbeKind::Hpc => config.hpc.infrastructure.clone(),
                ProbeKind::EdgeStorage => "edge-storage".to_owned(),
                ProbeKind::K8s => "k8s".to_owned(),
            }
        } else {
            config.name.clone()
        };
        let kind = config.kind.config_name();
        Self {
            kind: config.kind,
            probe_uuid: config
                .probe_uuid
                .unwrap_or_else(|| derived_uuid(&["probe", kind, hostname, &name])),
            cluster_uuid: config
                .cluster_uuid
                .unwrap_or_else(|| derived_uuid(&["cluster", kind, hostname, &name])),
            name,
        }
    }
}

/// What the handlers and the background tasks share.
pub struct Probe {
    pub identity: Identity,
    pub source: Arc<dyn Source>,
    pub exposed_url: String,
    settings: watch::Sender<CollectionSettings>,
    pub stats: Arc<CollectionStats>,
    pub registration: RegistrationState,
    pub streams: Sessions,
    /// Options of the streaming senders (tests shorten the timings).
    pub sender_options: SenderOptions,
    /// How long stopping a streaming session waits for the agent's acknowledgement.
    pub stream_close_deadline: Duration,
}

impl Probe {
    /// Validates `config` and builds the probe of its kind.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        config
            .validate()
            .map_err(|err| anyhow::anyhow!("invalid probe configuration: {err}"))?;
        let identity = Identity::from_config(config, &hostname());
        let connect_timeout = Duration::from_secs(5);
        let source: Arc<dyn Source> = match config.kind {
            ProbeKind::Host => Arc::new(host::HostSource::new(config.host.clone())),
            ProbeKind::Hpc => Arc::new(hpc::HpcSource::new(
                config.hpc.clone(),
                Http::plain().map_err(anyhow::Error::msg)?,
            )),
            ProbeKind::EdgeStorage => Arc::new(edge_storage::EdgeStorageSource::new(
                config.edge_storage.clone(),
                identity.cluster_uuid,
                Http::plain().map_err(anyhow::Error::msg)?,
            )),
            ProbeKind::K8s => Arc::new(k8s::K8sSource::new(
                config.k8s.clone(),
                Http::new(
                    config
                        .k8s
                        .client(connect_timeout)
                        .map_err(anyhow::Error::msg)?,
                ),
            )),
        };
        Ok(Self::with_source(config, identity, source))
    }

    /// A probe over any source (tests, embedding).
    pub fn with_source(config: &Config, identity: Identity, source: Arc<dyn Source>) -> Self {
        let token = config
            .agent
            .as_ref()
            .map(|agent| agent.token.expose().to_owned())
            .filter(|token| !token.is_empty());
        Self {
            identity,
            source,
            exposed_url: config.exposed_url.clone(),
            settings: watch::Sender::new(config.collection),
            stats: Arc::new(CollectionStats::default()),
            registration: RegistrationState::default(),
            streams: Sessions::new(config.max_streaming_sessions, token),
            sender_options: SenderOptions::default(),
            stream_close_deadline: streaming::CLOSE_DEADLINE,
        }
    }

    /// The current collection settings.
    pub fn settings(&self) -> CollectionSettings {
        *self.settings.borrow()
    }

    /// Replaces the collection settings (already validated).
    pub fn set_settings(&self, settings: CollectionSettings) {
        self.settings.send_replace(settings);
    }

    pub fn settings_watch(&self) -> watch::Receiver<CollectionSettings> {
        self.settings.subscribe()
    }
}

pub use serrano_model::common::unix_now;

/// The complete service around `probe`. `/ready` fails while the last background reading of the
/// source failed.
pub fn router(probe: Arc<Probe>, tokens: Vec<Secret>, max_body_bytes: usize) -> Router {
    let ready_probe = probe.clone();
    let readiness: serrano_service::ReadinessCheck = Arc::new(move || {
        let probe = ready_probe.clone();
        Box::pin(async move {
            match probe.stats.last_error() {
                Some(reason) if probe.settings().active_monitoring => {
                    Err(format!("source: {reason}"))
                }
                _ => Ok(()),
            }
        })
    });
    ServiceShell {
        name: SERVICE,
        tokens,
        readiness: Some(readiness),
        openapi: api::openapi(),
        max_body_bytes,
        extra_metrics: Some(metrics_source(probe.clone())),
    }
    .into_router(api::routes().with_state(probe))
}

/// Serves until `shutdown` resolves (the probe binary).
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let tokens = config.http.required_tokens(SERVICE)?;
    serve_with(config, tokens, listener, shutdown).await
}

/// Serves with the given bearer tokens (for `serrano up`, which adds its own): registers at the
/// agent in the background, runs the background reading, and on shutdown stops the streaming
/// sessions.
pub async fn serve_with(
    config: Config,
    tokens: Vec<Secret>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let probe = Arc::new(Probe::new(&config)?);
    serve_probe(probe, &config, tokens, listener, shutdown).await
}

/// [`serve_with`] on an already built probe.
pub async fn serve_probe(
    probe: Arc<Probe>,
    config: &Config,
    tokens: Vec<Secret>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let collector = tokio::spawn(collection::run(
        probe.source.clone(),
        probe.settings_watch(),
        probe.stats.clone(),
        stopped.clone(),
    ));
    let registrar = config.agent.clone().map(|agent| {
        tokio::spawn(registration::run(
            probe.clone(),
            agent,
            Duration::from_millis(config.registration_retry_ms),
            Duration::from_millis(config.registration_retry_max_ms),
            stopped,
        ))
    });
    let app = router(probe.clone(), tokens, config.http.max_body_bytes);
    let tls = config.http.tls_files()?;
    tracing::info!(address = %listener.local_addr()?, tls = tls.is_some(),
        kind = probe.identity.kind.type_name(), probe_uuid = %probe.identity.probe_uuid,
        cluster_uuid = %probe.identity.cluster_uuid, "probe listening");
    let served = serrano_service::serve(app, listener, tls, shutdown).await;
    let _ = stop.send(true);
    let _ = collector.await;
    if let Some(registrar) = registrar {
        let _ = registrar.await;
    }
    probe.streams.stop_all().await;
    served?;
    Ok(())
}

/// The probe's own metrics for `/metrics`.
pub fn metrics_source(probe: Arc<Probe>) -> serrano_service::MetricsSource {
    Arc::new(move || {
        let probe = probe.clone();
        Box::pin(async move { render_metrics(&probe) })
    })
}

fn render_metrics(probe: &Probe) -> String {
    use std::fmt::Write;
    let stats = &probe.stats;
    let mut text = String::new();
    let gauges: [(&str, &str, &str, f64); 7] = [
        (
            "probe_source_up",
            "gauge",
            "Whether the last background reading of the source succeeded",
            if stats.last_error().is_none() {
                1.0
            } else {
                0.0
            },
        ),
        (
            "probe_source_readings_total",
            "counter",
            "Background readings of the source that succeeded",
            stats.succeeded.load(Ordering::Relaxed) as f64,
        ),
        (
            "probe_source_failures_total",
            "counter",
            "Background readings of the source that failed",
            stats.failed.load(Ordering::Relaxed) as f64,
        ),
        (
            "probe_source_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last successful background reading",
            stats.last_success.load(Ordering::Relaxed) as f64,
        ),
        (
            "probe_source_last_duration_seconds",
            "gauge",
            "Duration of the last background reading",
            stats.last_duration_us.load(Ordering::Relaxed) as f64 / 1e6,
        ),
        (
            "probe_registered",
            "gauge",
            "Whether the probe is registered at its telemetry agent",
            if probe.registration.registered.load(Ordering::Relaxed) {
                1.0
            } else {
                0.0
            },
        ),
        (
            "probe_streaming_sessions",
            "gauge",
            "Streaming telemetry sessions running",
            probe.streams.len() as f64,
        ),
    ];
    for (name, kind, help, value) in gauges {
        let _ = writeln!(text, "# HELP {name} {help}");
        let _ = writeln!(text, "# TYPE {name} {kind}");
        let _ = writeln!(text, "{name} {value}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_identities_are_stable_and_distinct() {
        let config = Config::default();
        let a = Identity::from_config(&config, "node-1");
        let b = Identity::from_config(&config, "node-1");
        assert_eq!(a, b);
        assert_eq!(a.name, "node-1");
        assert_ne!(a.probe_uuid, a.cluster_uuid);
        assert_eq!(a.probe_uuid.get_version_num(), 8);
        let other_host = Identity::from_config(&config, "node-2");
        assert_ne!(a.probe_uuid, other_host.probe_uuid);
        let hpc = Config {
            kind: ProbeKind::Hpc,
            ..Config::default()
        };
        assert_ne!(
            Identity::from_config(&hpc, "node-1").probe_uuid,
            a.probe_uuid
        );
        assert_ne!(derived_uuid(&["ab", "c"]), derived_uuid(&["a", "bc"]));
        let fixed = Uuid::new_v4();
        let explicit = Config {
            probe_uuid: Some(fixed),
            name: "x".to_owned(),
            ..Config::default()
        };
        let identity = Identity::from_config(&explicit, "node-1");
        assert_eq!(identity.probe_uuid, fixed);
        assert_eq!(identity.name, "x");
    }

    #[test]
    fn validation_checks_the_configured_kind_only() {
        let mut config = Config::default();
        assert_eq!(config.validate(), Ok(()));
        config.kind = ProbeKind::Hpc;
        assert!(
            config
                .validate()
                .unwrap_err()
                .contains("hpc.infrastructure")
        );
        config.kind = ProbeKind::EdgeStorage;
        assert!(
            config
                .validate()
                .unwrap_err()
                .contains("edge_storage.targets")
        );
        config.kind = ProbeKind::K8s;
        assert_eq!(config.validate(), Ok(()));
        config.collection.query_interval = 0;
        assert!(
            config
                .validate()
                .unwrap_err()
                .contains("collection.query_interval")
        );
        config.collection = CollectionSettings::default();
        config.agent = Some(AgentLink {
            url: "agent:7109".to_owned(),
            token: Secret::new("t"),
        });
        assert!(config.validate().unwrap_err().contains("agent.url"));
    }

    #[test]
    fn config_from_environment() {
        let env: std::collections::HashMap<String, String> = [
            ("SERRANO_PROBE_KIND", "edge_storage"),
            ("SERRANO_PROBE_HTTP_BIND", "127.0.0.1:7999"),
            (
                "SERRANO_PROBE_EDGE_STORAGE_TARGETS",
                r#"[{"name":"d0","node":"w1","url":"http://127.0.0.1:7113/metrics","token":"t"}]"#,
            ),
            ("SERRANO_PROBE_EDGE_STORAGE_LOCATION_LAT", "45.75"),
            ("SERRANO_PROBE_COLLECTION_QUERY_INTERVAL", "30"),
            (
                "SERRANO_PROBE_CLUSTER_UUID",
                "7628b895-3a91-4f0c-b0b7-033eab309891",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let config: Config = serrano_service::load_config_from(SERVICE, &env).unwrap_or_default();
        assert_eq!(config.kind, ProbeKind::EdgeStorage);
        assert_eq!(config.http.bind.port(), 7999);
        assert_eq!(config.edge_storage.targets.len(), 1);
        assert_eq!(config.edge_storage.targets[0].node, "w1");
        assert_eq!(config.edge_storage.location.lat, 45.75);
        assert_eq!(config.collection.query_interval, 30);
        assert_eq!(
            config.cluster_uuid.map(|u| u.to_string()).as_deref(),
            Some("7628b895-3a91-4f0c-b0b7-033eab309891")
        );
        assert_eq!(config.validate(), Ok(()));
        let typo: std::collections::HashMap<String, String> =
            [("SERRANO_PROBE_KIDN".to_owned(), "host".to_owned())].into();
        assert!(serrano_service::load_config_from::<Config>(SERVICE, &typo).is_err());
    }
}

//! HPC System Hardware Interface, the HPC gateway (D6.7 4.6): runs SERRANO kernels and users'
//! batch jobs on Slurm and PBS clusters over SSH.
//!
//! Layout: [`scheduler`] is pure (commands, scripts, parsers per scheduler dialect); [`jobs`]
//! turns requests into submissions; [`ssh`] is the transport (one multiplexed connection per
//! infrastructure); [`watcher`] refreshes job states in batches; [`api`] the thin handlers.
//! Infrastructures and jobs live in the shared datastore, so they survive a restart.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use serde::{Deserialize, Serialize};
use serrano_datastore::{DatastoreConfig, KvStore, TypedStore, open_store};
use serrano_service::{HttpConfig, Secret, ServiceShell};

pub mod api;
pub mod infrastructure;
pub mod jobs;
pub mod scheduler;
pub mod ssh;
pub mod transfers;
pub mod watcher;

use infrastructure::Infrastructure;
use jobs::Job;
use scheduler::script::ServiceTemplate;

pub const SERVICE: &str = "hpc-gateway";
/// Fixed default port (ARCHITECTURE.md "Ports").
pub const DEFAULT_PORT: u16 = 7112;
/// Datastore prefixes of the gateway's own objects.
pub const INFRASTRUCTURES: &str = "/serrano/hpc/infrastructures/";
pub const JOBS: &str = "/serrano/hpc/jobs/";
pub const TRANSFERS: &str = "/serrano/hpc/transfers/";

/// Configuration: `SERRANO_HPC_GATEWAY_<KEY>` variables or the TOML file in
/// `SERRANO_HPC_GATEWAY_CONFIG`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub http: HttpConfig,
    pub datastore: DatastoreConfig,
    /// Infrastructures registered at start (in addition to those registered through the API).
    pub infrastructures: Vec<Infrastructure>,
    /// Extra service templates for `POST /job` with `services` (next to the built-in kernels).
    pub services: Vec<ServiceTemplate>,
    /// How often every unfinished job is refreshed.
    pub watch_interval_ms: u64,
    pub ssh_connect_timeout_ms: u64,
    pub ssh_command_timeout_ms: u64,
    /// Where the SSH control sockets live (a short path: sockets have a length limit).
    pub ssh_control_dir: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: HttpConfig::with_port(DEFAULT_PORT),
            datastore: DatastoreConfig::default(),
            infrastructures: Vec::new(),
            services: Vec::new(),
            watch_interval_ms: 1000,
            ssh_connect_timeout_ms: 10_000,
            ssh_command_timeout_ms: 120_000,
            ssh_control_dir: std::env::temp_dir().join("serrano-hpc-ssh"),
        }
    }
}

/// What the handlers and the watcher share.
pub struct Gateway {
    pub infrastructures: TypedStore<Infrastructure>,
    pub jobs: TypedStore<Job>,
    pub transfers: TypedStore<transfers::Transfer>,
    pub ssh: ssh::SshPool,
    pub catalogue: Vec<ServiceTemplate>,
}

impl Gateway {
    pub fn new(kv: Arc<dyn KvStore>, config: &Config) -> Self {
        let mut catalogue = scheduler::script::builtin_catalogue();
        catalogue.extend(config.services.iter().cloned());
        Self {
            infrastructures: TypedStore::new(kv.clone(), INFRASTRUCTURES),
            jobs: TypedStore::new(kv.clone(), JOBS),
            transfers: TypedStore::new(kv, TRANSFERS),
            ssh: ssh::SshPool::new(
                config.ssh_control_dir.clone(),
                Duration::from_millis(config.ssh_connect_timeout_ms),
                Duration::from_millis(config.ssh_command_timeout_ms),
            ),
            catalogue,
        }
    }
}

pub use serrano_model::common::unix_now;

/// The complete service around `gateway`.
pub fn router(
    gateway: Arc<Gateway>,
    kv: Arc<dyn KvStore>,
    tokens: Vec<Secret>,
    max_body_bytes: usize,
) -> Router {
    let extra_metrics = Some(metrics_source(gateway.clone()));
    let readiness: serrano_service::ReadinessCheck = Arc::new(move || {
        let kv = kv.clone();
        Box::pin(async move { kv.health().await.map_err(|err| err.to_string()) })
    });
    ServiceShell {
        name: SERVICE,
        tokens,
        readiness: Some(readiness),
        openapi: api::openapi(),
        max_body_bytes,
        extra_metrics,
    }
    .into_router(api::routes().with_state(gateway))
}

/// Registers the configured infrastructures (replacing stored ones of the same name).
pub async fn register_configured(gateway: &Gateway, config: &Config) -> anyhow::Result<()> {
    for infra in &config.infrastructures {
        infra
            .validate()
            .map_err(|err| anyhow::anyhow!("infrastructure {}: {err}", infra.name))?;
        gateway.infrastructures.put(&infra.name, infra).await?;
    }
    Ok(())
}

/// Starts the watcher and serves until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let tokens = config.http.required_tokens(SERVICE)?;
    let kv = open_store(&config.datastore).await?;
    serve_with(config, kv, tokens, listener, shutdown).await
}

/// Serves on an already opened datastore (for `serrano up`, which shares one).
pub async fn serve_with(
    config: Config,
    kv: Arc<dyn KvStore>,
    tokens: Vec<Secret>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let gateway = Arc::new(Gateway::new(kv.clone(), &config));
    register_configured(&gateway, &config).await?;
    transfers::fail_interrupted(&gateway)
        .await
        .map_err(|err| anyhow::anyhow!(err))?;
    let (stop_watcher, watcher_stopped) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(watcher::run(
        gateway.clone(),
        Duration::from_millis(config.watch_interval_ms.max(100)),
        watcher_stopped,
    ));
    let app = router(gateway, kv, tokens, config.http.max_body_bytes);
    let tls = config.http.tls_files()?;
    tracing::info!(address = %listener.local_addr()?, tls = tls.is_some(), "hpc-gateway listening");
    let served = serrano_service::serve(app, listener, tls, shutdown).await;
    let _ = stop_watcher.send(true);
    let _ = watcher.await;
    served?;
    Ok(())
}

/// The gateway's own metrics for `/metrics`: jobs by state and the SSH reconnects, read at
/// scrape time; transfer bytes by kind and status.
pub fn metrics_source(gateway: Arc<Gateway>) -> serrano_service::MetricsSource {
    Arc::new(move || {
        let gateway = gateway.clone();
        Box::pin(async move { render_metrics(&gateway).await })
    })
}

async fn render_metrics(gateway: &Gateway) -> String {
    use std::collections::BTreeMap;
    use std::fmt::Write;
    let mut text = String::new();
    let mut jobs: BTreeMap<(String, String), u64> = BTreeMap::new();
    if let Ok(list) = gateway.jobs.list().await {
        for job in list {
            let state = serde_json::to_value(job.value.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            *jobs.entry((job.value.infrastructure, state)).or_default() += 1;
        }
    }
    let _ = writeln!(
        text,
        "# HELP hpc_gateway_jobs Jobs known to the gateway by infrastructure and state"
    );
    let _ = writeln!(text, "# TYPE hpc_gateway_jobs gauge");
    for ((infrastructure, state), count) in jobs {
        let _ = writeln!(
            text,
            "hpc_gateway_jobs{{infrastructure=\"{}\",state=\"{state}\"}} {count}",
            label(&infrastructure)
        );
    }
    let mut bytes: BTreeMap<(String, String), u64> = BTreeMap::new();
    if let Ok(list) = gateway.transfers.list().await {
        for transfer in list {
            let kind = serde_json::to_value(transfer.value.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let status = serde_json::to_value(transfer.value.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            *bytes.entry((kind, status)).or_default() += transfer.value.bytes_done;
        }
    }
    let _ = writeln!(
        text,
        "# HELP hpc_gateway_transfer_bytes Bytes moved by transfers, by kind and status"
    );
    let _ = writeln!(text, "# TYPE hpc_gateway_transfer_bytes gauge");
    for ((kind, status), total) in bytes {
        let _ = writeln!(
            text,
            "hpc_gateway_transfer_bytes{{kind=\"{kind}\",status=\"{status}\"}} {total}"
        );
    }
    let _ = writeln!(
        text,
        "# HELP hpc_gateway_ssh_reconnects_total SSH connections replaced after a failure"
    );
    let _ = writeln!(text, "# TYPE hpc_gateway_ssh_reconnects_total counter");
    let _ = writeln!(
        text,
        "hpc_gateway_ssh_reconnects_total {}",
        gateway.ssh.reconnects()
    );
    text
}

/// Escapes a Prometheus label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

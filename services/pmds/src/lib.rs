//! Persistent Monitoring Data Storage, PMDS (D6.7 4.4; originals.md 3.6): the long-term history
//! of the telemetry framework.
//!
//! - Ingest: `POST /api/v2/write` (InfluxDB 2) and `POST /write` (InfluxDB 1), line protocol,
//!   gzip allowed, so the Enhanced Telemetry Agent, Telegraf and influx clients write here.
//! - Reads: `GET /api/v1/pmds/...` as the original PMDS REST API (`pmds_rest_v1.yaml` v1.1.0):
//!   nodes, persistent volumes, deployments, pods, edge storage devices, HPC partitions, SERRANO
//!   deployments and their specific metrics, as `raw` records or `compact` per entity.
//! - Storage: any [`TimeSeriesStore`] (embedded, VictoriaMetrics, InfluxDB 2), chosen by
//!   `[timeseries]` in the configuration or passed in by `serrano up`.
//!
//! Layout: [`layout`] is the data contract with the ETA (buckets, measurements, tags);
//! [`window`] parses time ranges; [`shape`] turns rows into the two answer formats (all three
//! pure); [`api`] holds the thin handlers.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serrano_service::{HttpConfig, Secret, ServiceShell};
use serrano_timeseries::{TimeSeriesConfig, TimeSeriesStore, open_timeseries};

pub mod api;
pub mod layout;
pub mod shape;
pub mod window;

pub const SERVICE: &str = "pmds";
/// Fixed default port (ARCHITECTURE.md "Ports").
pub const DEFAULT_PORT: u16 = 7111;
/// Streaming-telemetry ingest (gRPC): the REST port + 10, as the agent's 7109/7119.
pub const DEFAULT_GRPC_PORT: u16 = 7121;
/// Default largest request body: room for big line-protocol batches.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Configuration: `SERRANO_PMDS_<KEY>` variables or the TOML file in `SERRANO_PMDS_CONFIG`.
/// The backend is chosen in the file (`[timeseries] type = "victoriametrics"`, see
/// `serrano_timeseries::config`); without one the history is kept in memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub http: HttpConfig,
    pub timeseries: TimeSeriesConfig,
    /// Rows a read returns at most when the request names no `limit`.
    pub default_limit: usize,
    /// Largest `limit` a request may ask for.
    pub max_limit: usize,
    /// Largest write body once decompressed (a gzip body is inflated up to this).
    pub max_write_bytes: usize,
    /// gRPC listener of the streaming-telemetry ingest (`proto/telemetry.proto`, `Push`).
    pub grpc_bind: std::net::SocketAddr,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: HttpConfig {
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
                ..HttpConfig::with_port(DEFAULT_PORT)
            },
            timeseries: TimeSeriesConfig::default(),
            default_limit: 100_000,
            max_limit: 1_000_000,
            max_write_bytes: 256 * 1024 * 1024,
            grpc_bind: std::net::SocketAddr::from((
                std::net::Ipv4Addr::LOCALHOST,
                DEFAULT_GRPC_PORT,
            )),
        }
    }
}

/// Limits of reads and writes (from [`Config`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub default_limit: usize,
    pub max_limit: usize,
    pub max_write_bytes: usize,
}

impl From<&Config> for Limits {
    fn from(config: &Config) -> Self {
        Self {
            default_limit: config.default_limit.max(1),
            max_limit: config.max_limit.max(config.default_limit).max(1),
            max_write_bytes: config.max_write_bytes,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::from(&Config::default())
    }
}

/// Counters of the write path, for `/metrics`.
#[derive(Debug, Default)]
pub struct IngestStats {
    pub lines: AtomicU64,
    pub samples: AtomicU64,
    pub accepted: AtomicU64,
    pub invalid: AtomicU64,
    pub too_large: AtomicU64,
    pub failed: AtomicU64,
}

/// What the handlers share.
pub struct Pmds {
    pub store: Arc<dyn TimeSeriesStore>,
    pub limits: Limits,
    pub stats: IngestStats,
    /// Scopes (`cluster:<uuid>`, `deployment:<uuid>`) known to have data: once seen, a scope
    /// is not looked up again (see `api::query`).
    known: Mutex<HashSet<String>>,
}

impl Pmds {
    pub fn new(store: Arc<dyn TimeSeriesStore>, limits: Limits) -> Self {
        Self {
            store,
            limits,
            stats: IngestStats::default(),
            known: Mutex::new(HashSet::new()),
        }
    }

    pub(crate) fn is_known(&self, scope: &str) -> bool {
        self.known
            .lock()
            .map(|known| known.contains(scope))
            .unwrap_or(false)
    }

    pub(crate) fn remember(&self, scope: String) {
        if let Ok(mut known) = self.known.lock() {
            known.insert(scope);
        }
    }
}

/// The complete service around `pmds`.
pub fn router(pmds: Arc<Pmds>, tokens: Vec<Secret>, max_body_bytes: usize) -> Router {
    let store = pmds.store.clone();
    let readiness: serrano_service::ReadinessCheck = Arc::new(move || {
        let store = store.clone();
        Box::pin(async move { probe_store(store.as_ref()).await })
    });
    ServiceShell {
        name: SERVICE,
        tokens,
        readiness: Some(readiness),
        openapi: api::openapi(),
        max_body_bytes,
        extra_metrics: Some(metrics_source(pmds.clone())),
    }
    .into_router(api::routes().with_state(pmds))
    // Outermost: runs before the shell's bearer check.
    .layer(from_fn(influx_token_scheme))
}

/// A read that touches the backend (a bucket nobody writes to), for `/ready`.
async fn probe_store(store: &dyn TimeSeriesStore) -> Result<(), String> {
    let query = serrano_timeseries::Query {
        bucket: "_pmds_ready".into(),
        measurement: "ready".into(),
        start_ns: 0,
        stop_ns: 1_000_000,
        limit: Some(1),
        ..serrano_timeseries::Query::default()
    };
    store
        .query(&query)
        .await
        .map(drop)
        .map_err(|err| format!("{} store: {err}", store.kind()))
}

/// InfluxDB clients authenticate with `Authorization: Token <t>`; on the two write routes only,
/// that scheme is read as `Bearer <t>`, so the shell checks the same tokens and every other route
/// keeps accepting bearer tokens alone.
async fn influx_token_scheme(mut request: Request, next: Next) -> Response {
    if matches!(request.uri().path(), "/api/v2/write" | "/write") {
        let rewritten = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("token")
                    .then(|| format!("Bearer {}", token.trim()))
            })
            .and_then(|value| http::HeaderValue::from_str(&value).ok());
        if let Some(value) = rewritten {
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, value);
        }
    }
    next.run(request).await
}

/// Opens the configured store and serves until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let tokens = config.http.required_tokens(SERVICE)?;
    if matches!(
        config.timeseries,
        TimeSeriesConfig::Embedded { path: None, .. }
    ) {
        tracing::warn!(
            "timeseries: embedded store in memory, the history is lost on restart (set [timeseries] path)"
        );
    }
    let store = open_timeseries(&config.timeseries).await?;
    let grpc_listener = tokio::net::TcpListener::bind(config.grpc_bind).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let grpc = tokio::spawn(serve_grpc(
        store.clone(),
        tokens.clone(),
        grpc_listener,
        async move {
            let mut stopped = stopped;
            let _ = stopped.wait_for(|s| *s).await;
        },
    ));
    let served = serve_with(config, store, tokens, listener, shutdown).await;
    let _ = stop.send(true);
    grpc.await??;
    served
}

/// Serves the streaming-telemetry ingest (gRPC client-streaming, the same `Push` RPC probes and
/// agents use): each batch is stored in bucket `cluster_uuid` with its samples' measurement and
/// tags. The REST tokens guard it.
pub async fn serve_grpc(
    store: Arc<dyn TimeSeriesStore>,
    tokens: Vec<Secret>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let options = serrano_telemetry_stream::ReceiverOptions {
        tokens: tokens.iter().map(|t| t.expose().to_owned()).collect(),
        ..serrano_telemetry_stream::ReceiverOptions::default()
    };
    tracing::info!(address = %listener.local_addr()?, "pmds streaming ingest listening");
    let sink = Arc::new(StreamSink { store });
    serrano_telemetry_stream::serve(listener, sink, options, shutdown).await?;
    Ok(())
}

/// Stores streamed batches.
struct StreamSink {
    store: Arc<dyn TimeSeriesStore>,
}

#[async_trait::async_trait]
impl serrano_telemetry_stream::BatchSink for StreamSink {
    async fn accept(
        &self,
        batch: serrano_telemetry_stream::pb::MetricBatch,
    ) -> Result<(), serrano_telemetry_stream::SinkError> {
        let bucket = &batch.cluster_uuid;
        let valid = !bucket.is_empty()
            && bucket.len() <= 128
            && bucket
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            // Refusing would make the sender retry it forever: drop it loudly instead.
            tracing::warn!(
                source = %batch.source_uuid,
                "streamed batch without a usable cluster_uuid dropped"
            );
            return Ok(());
        }
        let points = serrano_telemetry_stream::points::batch_points(&batch);
        self.store.write(bucket, &points).await.map_err(|err| {
            serrano_telemetry_stream::SinkError::with_source("storing a streamed batch", err)
        })
    }
}

/// Serves on an already opened store (for `serrano up`, which shares one).
pub async fn serve_with(
    config: Config,
    store: Arc<dyn TimeSeriesStore>,
    tokens: Vec<Secret>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let pmds = Arc::new(Pmds::new(store.clone(), Limits::from(&config)));
    let app = router(pmds, tokens, config.http.max_body_bytes);
    let tls = config.http.tls_files()?;
    tracing::info!(
        address = %listener.local_addr()?,
        tls = tls.is_some(),
        backend = store.kind(),
        "pmds listening"
    );
    let served = serrano_service::serve(app, listener, tls, shutdown).await;
    // Whatever was accepted before shutdown is made durable.
    if let Err(err) = store.flush().await {
        tracing::error!(error = %err, "flushing the time-series store at shutdown failed");
    }
    served?;
    Ok(())
}

/// The service's own metrics for `/metrics`: what the write path accepted and refused.
pub fn metrics_source(pmds: Arc<Pmds>) -> serrano_service::MetricsSource {
    Arc::new(move || {
        let pmds = pmds.clone();
        Box::pin(async move { render_metrics(&pmds.stats, pmds.store.kind()) })
    })
}

fn render_metrics(stats: &IngestStats, backend: &str) -> String {
    use std::fmt::Write;
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# HELP pmds_ingested_lines_total Line-protocol lines stored\n# TYPE pmds_ingested_lines_total counter\npmds_ingested_lines_total {}",
        load(&stats.lines)
    );
    let _ = writeln!(
        text,
        "# HELP pmds_ingested_samples_total Field values stored\n# TYPE pmds_ingested_samples_total counter\npmds_ingested_samples_total {}",
        load(&stats.samples)
    );
    let _ = writeln!(
        text,
        "# HELP pmds_write_requests_total Write requests by outcome\n# TYPE pmds_write_requests_total counter"
    );
    for (outcome, counter) in [
        ("accepted", &stats.accepted),
        ("invalid", &stats.invalid),
        ("too_large", &stats.too_large),
        ("failed", &stats.failed),
    ] {
        let _ = writeln!(
            text,
            "pmds_write_requests_total{{outcome=\"{outcome}\"}} {}",
            load(counter)
        );
    }
    let _ = writeln!(
        text,
        "# HELP pmds_backend_info The time-series backend in use\n# TYPE pmds_backend_info gauge\npmds_backend_info{{backend=\"{backend}\"}} 1"
    );
    text
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(toml: Option<&str>, vars: &[(&str, &str)]) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let mut env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if let Some(toml) = toml {
            let path = dir.path().join("pmds.toml");
            std::fs::write(&path, toml).unwrap();
            env.insert(
                "SERRANO_PMDS_CONFIG".into(),
                path.to_string_lossy().into_owned(),
            );
        }
        serrano_service::load_config_from(SERVICE, &env).map_err(|err| err.to_string())
    }

    #[test]
    fn defaults_and_backend_choice_in_the_file() {
        let config = load(None, &[]).unwrap();
        assert_eq!(config.http.bind.port(), DEFAULT_PORT);
        assert_eq!(config.http.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(config.timeseries, TimeSeriesConfig::default());
        assert_eq!(Limits::from(&config).default_limit, 100_000);

        let config = load(
            Some("[timeseries]\ntype = \"victoriametrics\"\nurl = \"http://127.0.0.1:8428\"\n"),
            &[("SERRANO_PMDS_MAX_LIMIT", "5000")],
        )
        .unwrap();
        assert_eq!(
            config.timeseries,
            TimeSeriesConfig::Victoriametrics {
                url: "http://127.0.0.1:8428".into()
            }
        );
        assert_eq!(config.max_limit, 5000);

        let err = load(
            Some("[timeseries]\ntype = \"victoriametrics\"\nurl = \"u\"\npath = \"/x\"\n"),
            &[],
        )
        .unwrap_err();
        assert!(err.contains("path"), "{err}");
        let err = load(None, &[("SERRANO_PMDS_NOPE", "1")]).unwrap_err();
        assert!(err.contains("SERRANO_PMDS_NOPE"), "{err}");
    }

    #[test]
    fn limits_never_go_below_one() {
        let config = Config {
            default_limit: 0,
            max_limit: 0,
            ..Config::default()
        };
        let limits = Limits::from(&config);
        assert_eq!((limits.default_limit, limits.max_limit), (1, 1));
    }
}

//! Assembling the gateway: configuration, first-start secrets, the one port that serves both
//! the S3 API and the JSON API, and the background passes (reclaimer, repair, abandoned
//! uploads, location measurements).

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serrano_codec::MasterKey;
use serrano_datastore::{DatastoreConfig, KvStore, open_store};
use serrano_service::{HttpConfig, Secret, ServiceShell};
use tower::ServiceExt;

use crate::api::PolicyApi;
use crate::locations::{LocationConfig, LocationKind, Locations};
use crate::meta::{KvMetadata, MetadataStore, Placement};
use crate::objects::{Backends, ObjectStore, Tuning};
use crate::policy::{
    BlockMode, Encryption, EncryptionScheme, PolicyError, PolicyStore, Redundancy, StoragePolicy,
};
use crate::s3_http::{AccessKeyConfig, PolicyLookup, S3Service, is_s3_request};
use crate::{DEFAULT_PORT, SERVICE};

/// Where object and bucket metadata live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum MetadataConfig {
    /// The project datastore (`datastore` section: embedded on one node, or etcd).
    Datastore,
    /// MongoDB, so that several gateways behind a load balancer share one namespace.
    Mongodb { uri: Secret, database: String },
}

/// Configuration: `SERRANO_STORAGE_GATEWAY_<KEY>` variables or the TOML file in
/// `SERRANO_STORAGE_GATEWAY_CONFIG`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub http: HttpConfig,
    pub datastore: DatastoreConfig,
    pub metadata: MetadataConfig,
    /// Home of the embedded defaults: the four local edge locations when `locations` is
    /// empty, the generated master key and the generated S3 credentials.
    pub data_dir: PathBuf,
    /// Storage locations (cloud buckets and edge devices); empty = four local directories
    /// under `data_dir` modelling edge devices 1 to 4.
    pub locations: Vec<LocationConfig>,
    /// Policies written at start (replacing stored ones of the same name).
    pub policies: Vec<StoragePolicy>,
    /// Policy of buckets created without a LocationConstraint; created over every location
    /// (RLNC with one redundant packet, AES-256-GCM) when it does not exist.
    pub default_policy: String,
    /// S3 access keys; when empty an admin key pair is generated on first start and written
    /// to `credentials_file` (AWS shared-credentials format, profile `serrano`).
    pub access_keys: Vec<AccessKeyConfig>,
    /// Where the generated admin key pair lives (default `data_dir/s3.credentials`).
    pub credentials_file: Option<PathBuf>,
    /// AES-256 master key (64 hex digits) wrapping every data key; when absent it is read
    /// from, or generated into, `data_dir/master.key`.
    pub master_key: Option<Secret>,
    /// Plain bytes per stripe (the unit of coding and of range reads).
    pub stripe_bytes: u32,
    pub stripes_in_flight: usize,
    /// Fragments of overwritten or deleted objects are kept this long for reads in flight.
    pub reclaim_grace_ms: i64,
    /// Multipart uploads not completed after this long are aborted.
    pub multipart_expiry_hours: u64,
    /// How often locations are measured (1 B / 1 MB probes).
    pub measure_interval_secs: u64,
    /// How often the reclaimer, repair and expiry passes run.
    pub maintenance_interval_secs: u64,
    /// This gateway's name among several sharing one metadata store.
    pub node_id: String,
    /// Bytes of decoded stripes kept in memory for hot objects (the edge cache); 0 = off.
    pub cache_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: HttpConfig::with_port(DEFAULT_PORT),
            datastore: DatastoreConfig::default(),
            metadata: MetadataConfig::Datastore,
            data_dir: PathBuf::from("serrano-data/storage"),
            locations: Vec::new(),
            policies: Vec::new(),
            default_policy: "default".to_owned(),
            access_keys: Vec::new(),
            credentials_file: None,
            master_key: None,
            stripe_bytes: u32::try_from(serrano_codec::DEFAULT_STRIPE_BYTES).unwrap_or(1 << 20),
            stripes_in_flight: 4,
            reclaim_grace_ms: 5 * 60 * 1000,
            multipart_expiry_hours: 7 * 24,
            measure_interval_secs: 300,
            maintenance_interval_secs: 30,
            node_id: "gateway-1".to_owned(),
            cache_bytes: 64 << 20,
        }
    }
}

impl Config {
    /// The file of the generated admin key pair.
    pub fn credentials_path(&self) -> PathBuf {
        self.credentials_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("s3.credentials"))
    }
}

/// The first segment of every JSON API path (everything else on the port is S3).
pub const JSON_PATHS: [&str; 8] = [
    "storage_policy",
    "cloud_locations",
    "edge_locations",
    "health",
    "ready",
    "metrics",
    "openapi.json",
    "docs",
];

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, text)
    }
}

fn random_token(bytes: usize, alphabet: &[u8]) -> anyhow::Result<String> {
    let mut raw = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut raw).map_err(|_| anyhow::anyhow!("no system randomness"))?;
    Ok(raw
        .iter()
        .map(|b| char::from(alphabet[usize::from(*b) % alphabet.len()]))
        .collect())
}

/// The master key: from configuration, else from `data_dir/master.key` (generated once).
pub fn master_key(config: &Config) -> anyhow::Result<MasterKey> {
    if let Some(secret) = &config.master_key {
        return MasterKey::from_hex(secret.expose().trim())
            .map_err(|err| anyhow::anyhow!("master_key: {err}"));
    }
    let path = config.data_dir.join("master.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return MasterKey::from_hex(text.trim())
            .map_err(|err| anyhow::anyhow!("{}: {err}", path.display()));
    }
    let hex = MasterKey::generate_hex().map_err(|err| anyhow::anyhow!("{err}"))?;
    write_private(&path, &format!("{hex}\n"))
        .with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated the storage master key (back it up: without it no encrypted object can be read)");
    MasterKey::from_hex(&hex).map_err(|err| anyhow::anyhow!("{err}"))
}

/// Reads the admin key pair of `path` (profile `serrano`), or generates one and writes it.
pub fn admin_credentials(path: &Path) -> anyhow::Result<AccessKeyConfig> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let mut in_profile = false;
        let (mut access, mut secret) = (None, None);
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                in_profile = line == "[serrano]";
            } else if in_profile && let Some((name, value)) = line.split_once('=') {
                match name.trim() {
                    "aws_access_key_id" => access = Some(value.trim().to_owned()),
                    "aws_secret_access_key" => secret = Some(value.trim().to_owned()),
                    _ => {}
                }
            }
        }
        if let (Some(access_key), Some(secret)) = (access, secret) {
            return Ok(AccessKeyConfig {
                access_key,
                secret_key: Secret::new(secret),
                buckets: vec!["*".to_owned()],
            });
        }
        anyhow::bail!(
            "{} has no [serrano] profile with both keys: fix or remove it",
            path.display()
        );
    }
    let access_key = format!(
        "SRN{}",
        random_token(17, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")?
    );
    let secret = random_token(
        40,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    )?;
    write_private(
        path,
        &format!("[serrano]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret}\n"),
    )
    .with_context(|| format!("writing {}", path.display()))?;
    Ok(AccessKeyConfig {
        access_key,
        secret_key: Secret::new(secret),
        buckets: vec!["*".to_owned()],
    })
}

/// The embedded default locations: four local directories modelling edge devices 1 to 4.
pub fn default_locations(data_dir: &Path) -> Vec<LocationConfig> {
    (1..=4)
        .map(|id| {
            LocationConfig::local(
                id,
                &format!("edge-{id}"),
                LocationKind::Edge,
                data_dir.join(format!("edge-{id}")),
            )
        })
        .collect()
}

/// The default policy over every location: RLNC with one redundant packet (two when there
/// are more than eight locations), AES-256-GCM.
pub fn default_policy(name: &str, locations: &[LocationConfig]) -> StoragePolicy {
    let ids = |kind| {
        locations
            .iter()
            .filter(|l| l.kind == kind)
            .map(|l| l.id)
            .collect::<Vec<_>>()
    };
    let count = locations.len();
    StoragePolicy {
        id: None,
        name: name.to_owned(),
        description: "Default policy: every location, RLNC erasure coding, AES-256-GCM".to_owned(),
        team_id: None,
        backends: ids(LocationKind::Cloud),
        edge_devices: ids(LocationKind::Edge),
        redundancy: Redundancy {
            scheme: serrano_codec::Scheme::Rlnc,
            redundant_packets: match count {
                0 | 1 => 0,
                2..=8 => 1,
                _ => 2,
            },
        },
        compression: None,
        encryption: Some(Encryption {
            scheme: EncryptionScheme::Aes,
            key_size: 256,
            block_mode: BlockMode::Gcm,
        }),
    }
}

/// Storage policies as the S3 layer needs them: placements for new data, cached for a second
/// (every PUT asks; a policy edit reaches new writes within that second, also on other
/// gateways sharing the datastore).
struct PolicyPlacements {
    policies: PolicyStore,
    default: String,
    stripe_bytes: u32,
    cache: std::sync::Mutex<HashMap<String, (std::time::Instant, Option<Placement>)>>,
}

const PLACEMENT_CACHE_TTL: Duration = Duration::from_secs(1);

#[async_trait]
impl PolicyLookup for PolicyPlacements {
    async fn placement(&self, name: &str) -> Result<Option<Placement>, String> {
        if let Ok(cache) = self.cache.lock()
            && let Some((at, placement)) = cache.get(name)
            && at.elapsed() < PLACEMENT_CACHE_TTL
        {
            return Ok(placement.clone());
        }
        let placement = self.resolve(name).await?;
        // Only hits are cached: a policy created a moment ago is usable at once.
        if placement.is_some()
            && let Ok(mut cache) = self.cache.lock()
        {
            cache.insert(
                name.to_owned(),
                (std::time::Instant::now(), placement.clone()),
            );
        }
        Ok(placement)
    }

    fn default_policy(&self) -> String {
        self.default.clone()
    }
}

impl PolicyPlacements {
    async fn resolve(&self, name: &str) -> Result<Option<Placement>, String> {
        match self.policies.resolve(name).await {
            Ok(resolved) => Ok(Some(Placement {
                locations: resolved.locations,
                scheme: resolved.scheme,
                data: resolved.data,
                parity: resolved.parity,
                compression: resolved.compression,
                stripe_bytes: self.stripe_bytes,
                encrypted: resolved.encrypted,
            })),
            Err(PolicyError::NotFound(_)) => Ok(None),
            Err(err) => Err(err.to_string()),
        }
    }
}

/// The running gateway's parts.
pub struct Gateway {
    pub s3: Arc<S3Service>,
    pub policy_api: Arc<PolicyApi>,
    pub locations: Arc<Locations>,
    pub store: Arc<ObjectStore>,
}

async fn open_metadata(
    config: &Config,
    kv: &Arc<dyn KvStore>,
) -> anyhow::Result<Arc<dyn MetadataStore>> {
    Ok(match &config.metadata {
        MetadataConfig::Datastore => Arc::new(KvMetadata::new(kv.clone())),
        MetadataConfig::Mongodb { uri, database } => Arc::new(
            crate::mongo::MongoMetadata::connect(uri.expose(), database)
                .await
                .map_err(|err| anyhow::anyhow!("MongoDB metadata store: {err}"))?,
        ),
    })
}

impl Gateway {
    /// Opens everything `config` names on the datastore `kv`.
    pub async fn open(config: &Config, kv: Arc<dyn KvStore>) -> anyhow::Result<Self> {
        let location_configs = if config.locations.is_empty() {
            default_locations(&config.data_dir)
        } else {
            config.locations.clone()
        };
        let locations = Arc::new(Locations::open(&location_configs).await?);
        let meta = open_metadata(config, &kv).await?;
        let policies = PolicyStore::new(kv.clone(), locations.clone());
        for policy in &config.policies {
            policies
                .ensure(policy.clone())
                .await
                .map_err(|err| anyhow::anyhow!("policy {}: {err}", policy.name))?;
        }
        if policies
            .get(&config.default_policy)
            .await
            .map_err(|err| anyhow::anyhow!("{err}"))?
            .is_none()
        {
            policies
                .ensure(default_policy(&config.default_policy, &location_configs))
                .await
                .map_err(|err| anyhow::anyhow!("default policy: {err}"))?;
        }
        let master = master_key(config)?;
        let backends: Backends = locations
            .all()
            .iter()
            .filter_map(|location| {
                locations
                    .backend(location.name())
                    .map(|backend| (location.name().to_owned(), backend))
            })
            .collect();
        let store = Arc::new(ObjectStore::new(
            meta.clone(),
            backends,
            Some(master),
            config.node_id.clone(),
            Tuning {
                stripes_in_flight: config.stripes_in_flight.max(1),
                reclaim_grace_ms: config.reclaim_grace_ms.max(0),
                cache_bytes: config.cache_bytes,
                ..Tuning::default()
            },
        ));
        let mut keys = config.access_keys.clone();
        if keys.is_empty() {
            keys.push(admin_credentials(&config.credentials_path())?);
        }
        let lookup = Arc::new(PolicyPlacements {
            policies: policies.clone(),
            default: config.default_policy.clone(),
            stripe_bytes: config.stripe_bytes.clamp(
                4096,
                u32::try_from(serrano_codec::MAX_STRIPE_BYTES).unwrap_or(u32::MAX),
            ),
            cache: std::sync::Mutex::new(HashMap::new()),
        });
        let s3 = Arc::new(S3Service::new(store.clone(), lookup, keys));
        let policy_api = Arc::new(PolicyApi {
            policies,
            locations: locations.clone(),
            meta,
        });
        Ok(Self {
            s3,
            policy_api,
            locations,
            store,
        })
    }

    /// One maintenance round: reclaim unreferenced fragments, repair degraded segments,
    /// abort abandoned uploads.
    pub async fn maintain(&self, multipart_expiry: Duration) {
        if let Err(err) = self.store.reclaim_pass().await {
            tracing::warn!(error = %err.message, "reclaim pass failed");
        }
        let repaired = self.store.repair_pending().await;
        if repaired > 0 {
            tracing::info!(fragments = repaired, "repaired fragments");
        }
        let cutoff = crate::objects::now_ms()
            .saturating_sub(i64::try_from(multipart_expiry.as_millis()).unwrap_or(i64::MAX));
        match crate::s3_http::multipart::expire_uploads(&self.s3, cutoff).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "aborted abandoned multipart uploads"),
            Err(err) => tracing::warn!(error = %err.message, "upload expiry failed"),
        }
    }

    /// The whole service on one port: the JSON API and probes behind bearer auth, and the S3
    /// API (SigV4) at `/s3` and path-style at the root.
    pub fn router(&self, kv: Arc<dyn KvStore>, tokens: Vec<Secret>, max_body: usize) -> Router {
        let readiness: serrano_service::ReadinessCheck = Arc::new(move || {
            let kv = kv.clone();
            Box::pin(async move { kv.health().await.map_err(|err| err.to_string()) })
        });
        let metrics_locations = self.locations.clone();
        let metrics_s3 = self.s3.clone();
        let metrics_store = self.store.clone();
        let extra_metrics: serrano_service::MetricsSource = Arc::new(move || {
            let locations = metrics_locations.clone();
            let s3 = metrics_s3.clone();
            let store = metrics_store.clone();
            Box::pin(async move {
                let mut text = s3.metrics.render();
                text.push_str(&pipeline_metrics(&store));
                text.push_str(&locations.render_metrics().await);
                text
            })
        });
        let json = ServiceShell {
            name: SERVICE,
            tokens,
            readiness: Some(readiness),
            openapi: crate::api::openapi(),
            max_body_bytes: max_body,
            extra_metrics: Some(extra_metrics),
        }
        .into_router(crate::api::routes().with_state(self.policy_api.clone()));
        let s3 = self.s3.clone();
        Router::new().fallback(move |request: Request| {
            let json = json.clone();
            let s3 = s3.clone();
            async move { dispatch(json, s3, request).await }
        })
    }
}

async fn dispatch(json: Router, s3: Arc<S3Service>, request: Request<Body>) -> Response {
    if is_s3_request(&request, &JSON_PATHS) {
        return s3.handle(request).await;
    }
    match json.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

fn pipeline_metrics(store: &ObjectStore) -> String {
    use std::fmt::Write;
    use std::sync::atomic::Ordering;
    let stats = &store.stats;
    let mut text = String::new();
    for (name, help, value) in [
        (
            "storage_gateway_object_bytes_written_total",
            "Object bytes stored through the pipeline",
            &stats.bytes_written,
        ),
        (
            "storage_gateway_object_bytes_read_total",
            "Object bytes decoded by the pipeline",
            &stats.bytes_read,
        ),
        (
            "storage_gateway_degraded_stripes_total",
            "Stripes read with missing or damaged fragments",
            &stats.degraded_stripes,
        ),
        (
            "storage_gateway_repaired_fragments_total",
            "Fragments rebuilt by the repair pass",
            &stats.repaired_fragments,
        ),
        (
            "storage_gateway_reclaimed_segments_total",
            "Unreferenced segments whose fragments were deleted",
            &stats.reclaimed_segments,
        ),
        (
            "storage_gateway_cache_hits_total",
            "Stripes served from the edge cache",
            &stats.cache_hits,
        ),
    ] {
        let _ = writeln!(text, "# HELP {name} {help}");
        let _ = writeln!(text, "# TYPE {name} counter");
        let _ = writeln!(text, "{name} {}", value.load(Ordering::Relaxed));
    }
    text
}

/// Opens the datastore and serves until `shutdown` resolves.
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
    let gateway = Arc::new(Gateway::open(&config, kv.clone()).await?);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let measurements = gateway.locations.spawn_measurements(
        Duration::from_secs(config.measure_interval_secs.max(1)),
        stopped.clone(),
    );
    let maintenance = {
        let gateway = gateway.clone();
        let interval = Duration::from_secs(config.maintenance_interval_secs.max(1));
        let expiry = Duration::from_secs(config.multipart_expiry_hours.saturating_mul(3600));
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            loop {
                gateway.maintain(expiry).await;
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = stopped.wait_for(|s| *s) => break,
                }
            }
        })
    };
    let app = gateway.router(kv, tokens, config.http.max_body_bytes);
    let tls = config.http.tls_files()?;
    tracing::info!(address = %listener.local_addr()?, tls = tls.is_some(), "storage-gateway listening");
    let served = serrano_service::serve(app, listener, tls, shutdown).await;
    let _ = stop.send(true);
    let _ = maintenance.await;
    let _ = measurements.await;
    served?;
    Ok(())
}

//! Storage locations (D6.7 4.10.1): the cloud buckets and SERRANO edge devices fragments go to,
//! with their static characteristics from the configuration and the parameters the gateway
//! measures itself (upload and download times of a 1 B and a 1 MB probe object, upload and
//! download errors over the last 12 months).
//!
//! Every backend is wrapped in [`Instrumented`], which counts requests, errors and bytes for
//! `/metrics`; the probe traffic goes through it too, so a failing location shows in both.

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use utoipa::ToSchema;

use crate::backend::{Backend, BackendError, LocalDir, S3Bucket, S3Location, Usage};

/// Samples kept per measured series (the newest last).
pub const SAMPLES_KEPT: usize = 24;
/// Key of the 1-byte probe object on every backend.
pub const PROBE_1B_KEY: &str = "_serrano_probe/1B";
/// Key of the 1 MB probe object on every backend.
pub const PROBE_1MB_KEY: &str = "_serrano_probe/1MB";
/// Size of the larger probe (1 MB, decimal, as the published SkyFlok measurements).
pub const PROBE_1MB_BYTES: usize = 1_000_000;
/// How long one probe request may take before it counts as an error.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long creating an S3 location's bucket may delay the start.
const ENSURE_BUCKET_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a scrape waits for a backend's usage before it reports the last known one.
const USAGE_TIMEOUT: Duration = Duration::from_secs(2);
/// Errors are counted over this window ("in the last 12 months").
const ERROR_WINDOW_MS: i64 = 365 * 24 * 3600 * 1000;
/// Errors are kept per hour, so a year of failures stays small.
const ERROR_BUCKET_MS: i64 = 3600 * 1000;

/// Whether a location is a cloud bucket (a policy's `backends`) or a SERRANO edge device (its
/// `edge_devices`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LocationKind {
    Cloud,
    Edge,
}

/// Where a location keeps its fragments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StoreConfig {
    /// Files under a local directory (the embedded default; also an edge device's disk).
    LocalDir {
        path: PathBuf,
        /// Make every fragment durable before the write returns.
        #[serde(default)]
        fsync: bool,
    },
    /// Objects in a bucket of any S3 endpoint (a cloud bucket, an edge device's MinIO).
    S3(S3Location),
}

/// One storage location of the gateway's configuration: how to reach it and its static
/// characteristics (D6.7 4.10.1), which `GET /cloud_locations` and `GET /edge_locations` list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationConfig {
    /// The number storage policies name the location by (`backends` / `edge_devices`).
    pub id: u32,
    /// Unique, `[a-z0-9-]`: the stable name object placements record fragments under.
    pub name: String,
    pub kind: LocationKind,
    pub store: StoreConfig,
    #[serde(default)]
    pub description: Option<String>,
    /// Provider name (Google Cloud Platform, Amazon Web Services, ...).
    #[serde(default)]
    pub cloud_provider_name: Option<String>,
    /// Jurisdiction the provider answers to.
    #[serde(default)]
    pub cloud_provider_jurisdiction: Option<String>,
    #[serde(default)]
    pub cloud_provider_url: Option<String>,
    /// City or region name, e.g. "Iowa".
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    #[serde(default)]
    pub countrycode: Option<String>,
    /// Whether the location is GDPR compliant.
    #[serde(default)]
    pub is_gdpr: Option<bool>,
    /// Storage cost in $ / GB / month.
    #[serde(default)]
    pub storage_price: Option<f64>,
    /// Ingress cost in $ / GB.
    #[serde(default)]
    pub upload_price: Option<f64>,
    /// Egress cost in $ / GB.
    #[serde(default)]
    pub download_price: Option<f64>,
    /// Latitude of the location (GPS).
    #[serde(default)]
    pub lat: Option<f64>,
    /// Longitude of the location (GPS).
    #[serde(default)]
    pub lng: Option<f64>,
    /// Edge devices: the cluster they are deployed in.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Edge devices: the S3 region (defaults to the S3 store's region).
    #[serde(default)]
    pub region: Option<String>,
    /// Edge devices: the team they belong to.
    #[serde(default)]
    pub team_id: Option<u64>,
    /// Edge devices: the storage URL of their S3 endpoint (defaults to the S3 store's endpoint).
    #[serde(default)]
    pub s3_url: Option<String>,
}

impl LocationConfig {
    /// A location on a local directory with no characteristics (tests, the embedded default).
    pub fn local(id: u32, name: &str, kind: LocationKind, path: impl Into<PathBuf>) -> Self {
        Self {
            id,
            name: name.to_owned(),
            kind,
            store: StoreConfig::LocalDir {
                path: path.into(),
                fsync: false,
            },
            description: None,
            cloud_provider_name: None,
            cloud_provider_jurisdiction: None,
            cloud_provider_url: None,
            location: None,
            country: None,
            countrycode: None,
            is_gdpr: None,
            storage_price: None,
            upload_price: None,
            download_price: None,
            lat: None,
            lng: None,
            cluster: None,
            region: None,
            team_id: None,
            s3_url: None,
        }
    }

    /// The rules `Locations::open` enforces on one location.
    pub fn validate(&self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 63
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return Err(format!(
                "location name {:?}: 1 to 63 characters of a-z, 0-9 and -",
                self.name
            ));
        }
        match &self.store {
            StoreConfig::LocalDir { path, .. } if path.as_os_str().is_empty() => Err(format!(
                "location {}: store.path must not be empty",
                self.name
            )),
            StoreConfig::S3(s3) if s3.endpoint.is_empty() || s3.bucket.is_empty() => Err(format!(
                "location {}: store.endpoint and store.bucket must not be empty",
                self.name
            )),
            _ => Ok(()),
        }
    }
}

/// Request, error and byte counters of one backend.
#[derive(Debug, Default)]
pub struct BackendCounters {
    requests: AtomicU64,
    errors: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

/// A snapshot of [`BackendCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterValues {
    pub requests: u64,
    pub errors: u64,
    /// Bytes sent to the backend (puts).
    pub bytes_in: u64,
    /// Bytes received from the backend (gets).
    pub bytes_out: u64,
}

impl BackendCounters {
    pub fn values(&self) -> CounterValues {
        CounterValues {
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
        }
    }

    fn count<T>(&self, result: &Result<T, BackendError>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if result.is_err() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A backend that counts what goes through it.
#[derive(Debug)]
pub struct Instrumented {
    inner: Arc<dyn Backend>,
    counters: BackendCounters,
}

impl Instrumented {
    pub fn new(inner: Arc<dyn Backend>) -> Self {
        Self {
            inner,
            counters: BackendCounters::default(),
        }
    }

    pub fn counters(&self) -> CounterValues {
        self.counters.values()
    }
}

fn byte_count(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

#[async_trait]
impl Backend for Instrumented {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), BackendError> {
        let len = byte_count(data.len());
        let result = self.inner.put(key, data).await;
        self.counters.count(&result);
        if result.is_ok() {
            self.counters.bytes_in.fetch_add(len, Ordering::Relaxed);
        }
        result
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BackendError> {
        let result = self.inner.get(key).await;
        self.counters.count(&result);
        if let Ok(Some(data)) = &result {
            self.counters
                .bytes_out
                .fetch_add(byte_count(data.len()), Ordering::Relaxed);
        }
        result
    }

    async fn delete(&self, key: &str) -> Result<(), BackendError> {
        let result = self.inner.delete(key).await;
        self.counters.count(&result);
        result
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        let result = self.inner.list(prefix).await;
        self.counters.count(&result);
        result
    }

    async fn usage(&self) -> Result<Usage, BackendError> {
        let result = self.inner.usage().await;
        self.counters.count(&result);
        result
    }
}

/// Errors per hour over the last year.
#[derive(Debug, Default)]
struct ErrorLog {
    /// (start of the hour in ms since the epoch, errors in it), oldest first.
    hours: VecDeque<(i64, u64)>,
}

impl ErrorLog {
    fn record(&mut self, now_ms: i64) {
        let hour = now_ms - now_ms.rem_euclid(ERROR_BUCKET_MS);
        match self.hours.back_mut() {
            Some((last, count)) if *last == hour => *count += 1,
            _ => self.hours.push_back((hour, 1)),
        }
        self.prune(now_ms);
    }

    fn prune(&mut self, now_ms: i64) {
        while let Some((hour, _)) = self.hours.front() {
            if *hour + ERROR_BUCKET_MS <= now_ms - ERROR_WINDOW_MS {
                self.hours.pop_front();
            } else {
                break;
            }
        }
    }

    /// Errors in the hours that overlap the last 365 days.
    fn within_window(&self, now_ms: i64) -> u64 {
        self.hours
            .iter()
            .filter(|(hour, _)| *hour + ERROR_BUCKET_MS > now_ms - ERROR_WINDOW_MS)
            .map(|(_, count)| count)
            .sum()
    }
}

fn push_sample(series: &mut VecDeque<f64>, value: f64) {
    if series.len() == SAMPLES_KEPT {
        series.pop_front();
    }
    series.push_back(value);
}

/// What the probes of one location found.
#[derive(Debug, Default)]
struct Measurements {
    upload_1b: VecDeque<f64>,
    upload_1mb: VecDeque<f64>,
    download_1b: VecDeque<f64>,
    download_1mb: VecDeque<f64>,
    upload_errors: ErrorLog,
    download_errors: ErrorLog,
    last_measured_ms: Option<i64>,
    /// Whether the last probe succeeded (None before the first).
    available: Option<bool>,
    /// Last known usage (reported when a scrape's usage call times out).
    usage: Option<Usage>,
}

/// The measured parameters of one location, as the location views show them.
#[derive(Debug, Clone, PartialEq)]
struct MeasuredValues {
    upload_errors: u64,
    download_errors: u64,
    upload_1b: Vec<f64>,
    upload_1mb: Vec<f64>,
    download_1b: Vec<f64>,
    download_1mb: Vec<f64>,
    last_measured_ms: Option<i64>,
    available: bool,
}

/// One configured location and its backend (wrapped in [`Instrumented`]).
#[derive(Debug)]
pub struct Location {
    pub config: LocationConfig,
    /// The instrumented backend; fragments go through it.
    pub backend: Arc<dyn Backend>,
    instrumented: Arc<Instrumented>,
    measurements: Mutex<Measurements>,
}

impl Location {
    fn new(config: LocationConfig, backend: Arc<dyn Backend>) -> Self {
        let instrumented = Arc::new(Instrumented::new(backend));
        Self {
            config,
            backend: instrumented.clone(),
            instrumented,
            measurements: Mutex::new(Measurements::default()),
        }
    }

    pub fn id(&self) -> u32 {
        self.config.id
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn kind(&self) -> LocationKind {
        self.config.kind
    }

    /// Requests, errors and bytes through this location's backend so far.
    pub fn counters(&self) -> CounterValues {
        self.instrumented.counters()
    }

    /// Whether the last probe succeeded (None before the first).
    pub fn available(&self) -> Option<bool> {
        self.state().available
    }

    fn state(&self) -> MutexGuard<'_, Measurements> {
        // The data stays consistent even if a holder panicked: every update is one field.
        self.measurements
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn measured(&self, now_ms: i64) -> MeasuredValues {
        let state = self.state();
        MeasuredValues {
            upload_errors: state.upload_errors.within_window(now_ms),
            download_errors: state.download_errors.within_window(now_ms),
            upload_1b: state.upload_1b.iter().copied().collect(),
            upload_1mb: state.upload_1mb.iter().copied().collect(),
            download_1b: state.download_1b.iter().copied().collect(),
            download_1mb: state.download_1mb.iter().copied().collect(),
            last_measured_ms: state.last_measured_ms,
            available: state.available.unwrap_or(false),
        }
    }

    /// One probe round: upload, download and verify, then delete, a 1 B and a 1 MB object.
    async fn measure(&self) {
        let mut large = vec![0u8; PROBE_1MB_BYTES];
        if aws_lc_rs::rand::fill(&mut large).is_err() {
            // Random content only defeats caches and deduplication; a pattern still measures.
            for (i, byte) in large.iter_mut().enumerate() {
                *byte = (i % 251) as u8;
            }
        }
        let probes = [
            (PROBE_1B_KEY, Bytes::from_static(b"s")),
            (PROBE_1MB_KEY, Bytes::from(large)),
        ];
        let mut failure: Option<String> = None;
        let mut uploads = [Probe::Skipped, Probe::Skipped];
        for (outcome, (key, data)) in uploads.iter_mut().zip(&probes) {
            let started = Instant::now();
            *outcome = match within_timeout(self.backend.put(key, data.clone())).await {
                Ok(()) => Probe::Took(elapsed_ms(started)),
                Err(err) => Probe::Failed(format!("upload of {key}: {err}")),
            };
        }
        let mut downloads = [Probe::Skipped, Probe::Skipped];
        for ((outcome, uploaded), (key, data)) in downloads.iter_mut().zip(&uploads).zip(&probes) {
            if !matches!(uploaded, Probe::Took(_)) {
                // Nothing to download: the upload error is counted already.
                continue;
            }
            let started = Instant::now();
            *outcome = match within_timeout(self.backend.get(key)).await {
                Ok(Some(found)) if found == *data => Probe::Took(elapsed_ms(started)),
                Ok(Some(found)) => Probe::Failed(format!(
                    "download of {key}: {} bytes that differ from the {} uploaded",
                    found.len(),
                    data.len()
                )),
                Ok(None) => Probe::Failed(format!("download of {key}: the object is missing")),
                Err(err) => Probe::Failed(format!("download of {key}: {err}")),
            };
        }
        for (key, _) in &probes {
            if let Err(err) = within_timeout(self.backend.delete(key)).await {
                tracing::debug!(location = %self.config.name, %key, error = %err, "probe cleanup failed");
            }
        }

        let now = now_ms();
        let mut guard = self.state();
        let state = &mut *guard;
        let [up_1b, up_1mb] = uploads;
        let [down_1b, down_1mb] = downloads;
        let recorded = [
            (up_1b, &mut state.upload_1b, true),
            (up_1mb, &mut state.upload_1mb, true),
            (down_1b, &mut state.download_1b, false),
            (down_1mb, &mut state.download_1mb, false),
        ];
        let (mut upload_errors, mut download_errors) = (0, 0);
        for (outcome, series, upload) in recorded {
            match outcome {
                Probe::Took(ms) => push_sample(series, ms),
                Probe::Failed(message) => {
                    if upload {
                        upload_errors += 1;
                    } else {
                        download_errors += 1;
                    }
                    failure.get_or_insert(message);
                }
                Probe::Skipped => {}
            }
        }
        for _ in 0..upload_errors {
            state.upload_errors.record(now);
        }
        for _ in 0..download_errors {
            state.download_errors.record(now);
        }
        state.last_measured_ms = Some(now);
        state.available = Some(failure.is_none());
        drop(guard);
        if let Some(message) = failure {
            tracing::warn!(location = %self.config.name, error = %message, "storage location probe failed");
        }
    }
}

/// What one probe request did.
#[derive(Debug)]
enum Probe {
    Took(f64),
    Failed(String),
    /// Not tried (a download after a failed upload).
    Skipped,
}

async fn within_timeout<T>(
    request: impl Future<Output = Result<T, BackendError>>,
) -> Result<T, String> {
    match tokio::time::timeout(PROBE_TIMEOUT, request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(err.message),
        Err(_) => Err(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
    }
}

fn elapsed_ms(started: Instant) -> f64 {
    (started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0
}

pub use crate::now_ms;

/// The measured fields every location view carries (the names of D6.7 4.10.1.1).
macro_rules! measured_fields {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$field_meta:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        pub struct $name {
            $($(#[$field_meta])* pub $field: $ty,)*
            /// Upload errors in the last 12 months.
            pub upload_errors_in_last_12_months: u64,
            /// Download errors in the last 12 months.
            pub download_errors_in_last_12_months: u64,
            /// Time to upload 1 B (write latency), ms, oldest first.
            #[serde(rename = "rtt_upload_1B_ms")]
            pub rtt_upload_1b_ms: Vec<f64>,
            /// Time to upload 1 MB (write throughput), ms, oldest first.
            #[serde(rename = "rtt_upload_1MB_ms")]
            pub rtt_upload_1mb_ms: Vec<f64>,
            /// Time to download 1 B (read latency), ms, oldest first.
            #[serde(rename = "rtt_download_1B_ms")]
            pub rtt_download_1b_ms: Vec<f64>,
            /// Time to download 1 MB (read throughput), ms, oldest first.
            #[serde(rename = "rtt_download_1MB_ms")]
            pub rtt_download_1mb_ms: Vec<f64>,
            /// When the last probe ran, ms since the Unix epoch (null before the first).
            pub last_measured_ms: Option<i64>,
            /// Whether the last probe uploaded and downloaded both objects.
            pub available: bool,
        }
    };
}

measured_fields! {
    /// A cloud storage location (`GET /cloud_locations`).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
    pub struct CloudLocationView {
        /// The id storage policies list in `backends`.
        pub id: u32,
        pub name: String,
        /// City or region, e.g. "Iowa".
        pub location: Option<String>,
        pub country: Option<String>,
        pub countrycode: Option<String>,
        pub is_gdpr: Option<bool>,
        /// $ / GB / month.
        pub storage_price: Option<f64>,
        /// Egress, $ / GB.
        pub download_price: Option<f64>,
        /// Ingress, $ / GB.
        pub upload_price: Option<f64>,
        pub lat: Option<f64>,
        pub lng: Option<f64>,
        pub cloud_provider_name: Option<String>,
        pub cloud_provider_jurisdiction: Option<String>,
        pub cloud_provider_url: Option<String>,
    }
}

measured_fields! {
    /// A SERRANO edge device (`GET /edge_locations`).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
    pub struct EdgeLocationView {
        /// The id storage policies list in `edge_devices`.
        pub id: u32,
        pub name: String,
        pub description: Option<String>,
        /// The cluster the device is deployed in.
        pub cluster: Option<String>,
        /// The storage URL of its S3 endpoint.
        pub s3_url: Option<String>,
        pub team_id: Option<u64>,
        /// Its S3 region.
        pub region: Option<String>,
        pub lat: Option<f64>,
        pub lng: Option<f64>,
    }
}

/// The configured locations, by id and by name.
#[derive(Debug)]
pub struct Locations {
    locations: Vec<Location>,
}

impl Locations {
    /// Validates the configuration and opens every backend: creates local directories (and
    /// clears their leftover temporaries); creates S3 buckets where missing, but only warns when
    /// an endpoint does not answer (the location then shows as unavailable once probed).
    pub async fn open(configs: &[LocationConfig]) -> anyhow::Result<Self> {
        check_configs(configs.iter())?;
        let mut backends: Vec<(LocationConfig, Arc<dyn Backend>)> = Vec::new();
        for config in configs {
            let backend: Arc<dyn Backend> = match &config.store {
                StoreConfig::LocalDir { path, fsync } => {
                    let dir = LocalDir::open(&config.name, path, *fsync)?;
                    match dir.clear_temporaries() {
                        Ok(0) => {}
                        Ok(removed) => {
                            tracing::info!(location = %config.name, removed, "removed leftover temporary fragments");
                        }
                        Err(err) => {
                            tracing::warn!(location = %config.name, error = %err, "cannot clear temporary fragments");
                        }
                    }
                    Arc::new(dir)
                }
                StoreConfig::S3(s3) => {
                    let bucket = S3Bucket::new(&config.name, s3);
                    match tokio::time::timeout(ENSURE_BUCKET_TIMEOUT, bucket.ensure_bucket()).await
                    {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => {
                            tracing::warn!(location = %config.name, endpoint = %s3.endpoint, error = %err, "cannot check or create the bucket of a storage location; continuing");
                        }
                        Err(_) => {
                            tracing::warn!(location = %config.name, endpoint = %s3.endpoint, "storage location did not answer; continuing");
                        }
                    }
                    Arc::new(bucket)
                }
            };
            backends.push((config.clone(), backend));
        }
        Self::with_backends(backends)
    }

    /// Locations over backends built elsewhere (in-memory or failing ones in tests); the
    /// configs' `store` is not used.
    pub fn with_backends(
        backends: Vec<(LocationConfig, Arc<dyn Backend>)>,
    ) -> anyhow::Result<Self> {
        check_configs(backends.iter().map(|(config, _)| config))?;
        Ok(Self {
            locations: backends
                .into_iter()
                .map(|(config, backend)| Location::new(config, backend))
                .collect(),
        })
    }

    pub fn by_id(&self, id: u32) -> Option<&Location> {
        self.locations.iter().find(|l| l.config.id == id)
    }

    pub fn by_name(&self, name: &str) -> Option<&Location> {
        self.locations.iter().find(|l| l.config.name == name)
    }

    /// The instrumented backend of the location named `name`.
    pub fn backend(&self, name: &str) -> Option<Arc<dyn Backend>> {
        self.by_name(name).map(|l| l.backend.clone())
    }

    /// Every location, in configuration order.
    pub fn all(&self) -> &[Location] {
        &self.locations
    }

    /// Probes every location once, all at the same time.
    pub async fn measure_once(&self) {
        futures::future::join_all(self.locations.iter().map(Location::measure)).await;
    }

    /// Probes every location now and then every `interval`, until `stop` turns true (or its
    /// sender is dropped). A round still running when asked to stop is abandoned.
    pub fn spawn_measurements(
        self: &Arc<Self>,
        interval: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let locations = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                if *stop.borrow_and_update() {
                    return;
                }
                tokio::select! {
                    _ = ticks.tick() => {}
                    changed = stop.changed() => {
                        if changed.is_err() { return; }
                        continue;
                    }
                }
                tokio::select! {
                    () = locations.measure_once() => {}
                    changed = stop.changed() => {
                        if changed.is_err() { return; }
                    }
                }
            }
        })
    }

    /// `GET /cloud_locations`: the cloud locations, in configuration order.
    pub fn cloud_locations(&self) -> Vec<CloudLocationView> {
        let now = now_ms();
        self.locations
            .iter()
            .filter(|l| l.config.kind == LocationKind::Cloud)
            .map(|l| {
                let c = &l.config;
                let m = l.measured(now);
                CloudLocationView {
                    id: c.id,
                    name: c.name.clone(),
                    location: c.location.clone(),
                    country: c.country.clone(),
                    countrycode: c.countrycode.clone(),
                    is_gdpr: c.is_gdpr,
                    storage_price: c.storage_price,
                    download_price: c.download_price,
                    upload_price: c.upload_price,
                    lat: c.lat,
                    lng: c.lng,
                    cloud_provider_name: c.cloud_provider_name.clone(),
                    cloud_provider_jurisdiction: c.cloud_provider_jurisdiction.clone(),
                    cloud_provider_url: c.cloud_provider_url.clone(),
                    upload_errors_in_last_12_months: m.upload_errors,
                    download_errors_in_last_12_months: m.download_errors,
                    rtt_upload_1b_ms: m.upload_1b,
                    rtt_upload_1mb_ms: m.upload_1mb,
                    rtt_download_1b_ms: m.download_1b,
                    rtt_download_1mb_ms: m.download_1mb,
                    last_measured_ms: m.last_measured_ms,
                    available: m.available,
                }
            })
            .collect()
    }

    /// `GET /edge_locations`: the edge devices, in configuration order. `s3_url` and `region`
    /// default to the S3 store's endpoint and region.
    pub fn edge_locations(&self) -> Vec<EdgeLocationView> {
        let now = now_ms();
        self.locations
            .iter()
            .filter(|l| l.config.kind == LocationKind::Edge)
            .map(|l| {
                let c = &l.config;
                let m = l.measured(now);
                let s3 = match &c.store {
                    StoreConfig::S3(s3) => Some(s3),
                    StoreConfig::LocalDir { .. } => None,
                };
                EdgeLocationView {
                    id: c.id,
                    name: c.name.clone(),
                    description: c.description.clone(),
                    cluster: c.cluster.clone(),
                    s3_url: c
                        .s3_url
                        .clone()
                        .or_else(|| s3.map(|s3| s3.endpoint.clone())),
                    team_id: c.team_id,
                    region: c.region.clone().or_else(|| s3.map(|s3| s3.region.clone())),
                    lat: c.lat,
                    lng: c.lng,
                    upload_errors_in_last_12_months: m.upload_errors,
                    download_errors_in_last_12_months: m.download_errors,
                    rtt_upload_1b_ms: m.upload_1b,
                    rtt_upload_1mb_ms: m.upload_1mb,
                    rtt_download_1b_ms: m.download_1b,
                    rtt_download_1mb_ms: m.download_1mb,
                    last_measured_ms: m.last_measured_ms,
                    available: m.available,
                }
            })
            .collect()
    }

    /// The locations' metrics in the Prometheus text format: request, error and byte counters,
    /// used and free bytes (asked of every backend at once, with a short timeout, falling back
    /// to the last known value), and whether the last probe succeeded.
    pub async fn render_metrics(&self) -> String {
        use std::fmt::Write;
        let usages = futures::future::join_all(self.locations.iter().map(|l| async move {
            match tokio::time::timeout(USAGE_TIMEOUT, l.backend.usage()).await {
                Ok(Ok(usage)) => {
                    l.state().usage = Some(usage);
                    Some(usage)
                }
                _ => l.state().usage,
            }
        }))
        .await;

        let mut text = String::new();
        let counters: Vec<(String, CounterValues)> = self
            .locations
            .iter()
            .map(|l| (label(&l.config.name), l.counters()))
            .collect();
        type Pick = fn(&CounterValues) -> u64;
        let families: [(&str, &str, Pick); 4] = [
            (
                "storage_gateway_backend_requests_total",
                "Requests made to a storage location's backend",
                |c| c.requests,
            ),
            (
                "storage_gateway_backend_errors_total",
                "Requests to a storage location's backend that failed",
                |c| c.errors,
            ),
            (
                "storage_gateway_backend_bytes_in_total",
                "Bytes written to a storage location's backend",
                |c| c.bytes_in,
            ),
            (
                "storage_gateway_backend_bytes_out_total",
                "Bytes read from a storage location's backend",
                |c| c.bytes_out,
            ),
        ];
        for (name, help, pick) in families {
            let _ = writeln!(text, "# HELP {name} {help}");
            let _ = writeln!(text, "# TYPE {name} counter");
            for (location, values) in &counters {
                let _ = writeln!(text, "{name}{{location=\"{location}\"}} {}", pick(values));
            }
        }

        let _ = writeln!(
            text,
            "# HELP storage_gateway_backend_used_bytes Bytes stored on a storage location's backend"
        );
        let _ = writeln!(text, "# TYPE storage_gateway_backend_used_bytes gauge");
        for ((location, _), usage) in counters.iter().zip(&usages) {
            if let Some(usage) = usage {
                let _ = writeln!(
                    text,
                    "storage_gateway_backend_used_bytes{{location=\"{location}\"}} {}",
                    usage.used_bytes
                );
            }
        }
        let _ = writeln!(
            text,
            "# HELP storage_gateway_backend_free_bytes Bytes still free on a storage location's backend, where known"
        );
        let _ = writeln!(text, "# TYPE storage_gateway_backend_free_bytes gauge");
        for ((location, _), usage) in counters.iter().zip(&usages) {
            if let Some(free) = usage.and_then(|u| u.free_bytes) {
                let _ = writeln!(
                    text,
                    "storage_gateway_backend_free_bytes{{location=\"{location}\"}} {free}"
                );
            }
        }
        let _ = writeln!(
            text,
            "# HELP storage_gateway_backend_up Whether the last probe of a storage location succeeded"
        );
        let _ = writeln!(text, "# TYPE storage_gateway_backend_up gauge");
        for (l, (location, _)) in self.locations.iter().zip(&counters) {
            if let Some(up) = l.available() {
                let _ = writeln!(
                    text,
                    "storage_gateway_backend_up{{location=\"{location}\"}} {}",
                    u8::from(up)
                );
            }
        }
        text
    }
}

fn check_configs<'a>(configs: impl Iterator<Item = &'a LocationConfig>) -> anyhow::Result<()> {
    let mut ids = HashSet::new();
    let mut names = HashSet::new();
    let mut count = 0usize;
    for config in configs {
        count += 1;
        config
            .validate()
            .map_err(|message| anyhow::anyhow!(message))?;
        if !ids.insert(config.id) {
            anyhow::bail!("location id {} is used twice", config.id);
        }
        if !names.insert(config.name.as_str()) {
            anyhow::bail!("location name {} is used twice", config.name);
        }
    }
    if count == 0 {
        anyhow::bail!("no storage location configured: at least one is needed");
    }
    Ok(())
}

/// Escapes a Prometheus label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A backend whose every call fails, or only its downloads.
    #[derive(Debug)]
    struct Failing {
        name: String,
        uploads_work: bool,
        stored: Mutex<Option<Bytes>>,
    }

    #[async_trait]
    impl Backend for Failing {
        fn name(&self) -> &str {
            &self.name
        }
        async fn put(&self, _key: &str, data: Bytes) -> Result<(), BackendError> {
            if self.uploads_work {
                *self.stored.lock().unwrap() = Some(data);
                Ok(())
            } else {
                Err(BackendError {
                    backend: self.name.clone(),
                    message: "connection refused".into(),
                })
            }
        }
        async fn get(&self, _key: &str) -> Result<Option<Bytes>, BackendError> {
            if self.uploads_work {
                // Answers something else than what was stored: a corrupting backend.
                Ok(Some(Bytes::from_static(b"garbage")))
            } else {
                Err(BackendError {
                    backend: self.name.clone(),
                    message: "connection refused".into(),
                })
            }
        }
        async fn delete(&self, _key: &str) -> Result<(), BackendError> {
            Ok(())
        }
        async fn list(&self, _prefix: &str) -> Result<Vec<String>, BackendError> {
            Ok(Vec::new())
        }
        async fn usage(&self) -> Result<Usage, BackendError> {
            Ok(Usage {
                used_bytes: 7,
                free_bytes: Some(1000),
            })
        }
    }

    fn failing(name: &str, uploads_work: bool) -> Arc<dyn Backend> {
        Arc::new(Failing {
            name: name.into(),
            uploads_work,
            stored: Mutex::new(None),
        })
    }

    async fn error(configs: &[LocationConfig]) -> String {
        Locations::open(configs).await.unwrap_err().to_string()
    }

    #[tokio::test]
    async fn opening_checks_ids_names_and_creates_directories() {
        let dir = tempfile::tempdir().unwrap();
        let a = LocationConfig::local(1, "edge-a", LocationKind::Edge, dir.path().join("a"));
        let b = LocationConfig::local(2, "cloud-b", LocationKind::Cloud, dir.path().join("b"));
        let locations = Locations::open(&[a.clone(), b.clone()]).await.unwrap();
        assert!(dir.path().join("a").is_dir() && dir.path().join("b").is_dir());
        assert_eq!(locations.by_id(2).unwrap().name(), "cloud-b");
        assert_eq!(locations.by_name("edge-a").unwrap().id(), 1);
        assert!(locations.by_id(3).is_none() && locations.by_name("x").is_none());
        assert_eq!(locations.backend("cloud-b").unwrap().name(), "cloud-b");
        assert_eq!(locations.all().len(), 2);

        assert!(error(&[]).await.contains("at least one"));
        let same_id = LocationConfig { id: 1, ..b.clone() };
        assert!(error(&[a.clone(), same_id]).await.contains("id 1"));
        let same_name = LocationConfig {
            name: "edge-a".into(),
            ..b.clone()
        };
        assert!(error(&[a.clone(), same_name]).await.contains("name edge-a"));
        for bad in ["", "Upper", "a_b", "a/b", &"x".repeat(64)] {
            let named = LocationConfig {
                name: bad.to_owned(),
                ..a.clone()
            };
            assert!(error(&[named]).await.contains("location name"), "{bad}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_s3_location_does_not_stop_the_start() {
        let config = LocationConfig {
            store: StoreConfig::S3(S3Location {
                endpoint: "http://127.0.0.1:9".into(),
                region: "us-east-1".into(),
                bucket: "fragments".into(),
                prefix: String::new(),
                access_key: "ak".into(),
                secret_key: serrano_service::Secret::new("sk"),
            }),
            ..LocationConfig::local(5, "cloud-down", LocationKind::Cloud, "unused")
        };
        let locations = Locations::open(&[config]).await.unwrap();
        assert_eq!(locations.edge_locations().len(), 0);
        assert_eq!(locations.cloud_locations()[0].name, "cloud-down");
    }

    #[test]
    fn configuration_parses_from_toml_and_refuses_unknown_fields() {
        let text = r#"
            id = 144
            name = "gcp-iowa"
            kind = "cloud"
            location = "Iowa"
            countrycode = "US"
            is_gdpr = false
            storage_price = 20.0
            lat = 41.8780025
            lng = -93.097702
            cloud_provider_name = "Google Cloud Platform"
            [store]
            type = "s3"
            endpoint = "https://storage.googleapis.com"
            bucket = "serrano"
            access_key = "ak"
            secret_key = "sk"
        "#;
        let config: LocationConfig = toml::from_str(text).unwrap();
        assert_eq!(config.kind, LocationKind::Cloud);
        let StoreConfig::S3(s3) = &config.store else {
            panic!("s3 store expected");
        };
        assert_eq!(s3.region, "us-east-1");
        assert_eq!(config.storage_price, Some(20.0));

        let local = r#"
            id = 1
            name = "edge-1"
            kind = "edge"
            cluster = "uvt-k8s"
            store = { type = "local_dir", path = "/var/lib/edge-1" }
        "#;
        let config: LocationConfig = toml::from_str(local).unwrap();
        assert_eq!(
            config.store,
            StoreConfig::LocalDir {
                path: "/var/lib/edge-1".into(),
                fsync: false
            }
        );
        let unknown = format!("{local}\ncolour = \"red\"");
        assert!(toml::from_str::<LocationConfig>(&unknown).is_err());
    }

    #[test]
    fn errors_are_counted_over_the_last_year_only() {
        let mut log = ErrorLog::default();
        let day = 24 * 3600 * 1000;
        let start = 1_700_000_000_000;
        log.record(start);
        log.record(start + 1);
        log.record(start + 100 * day);
        assert_eq!(log.within_window(start + 100 * day), 3);
        assert_eq!(log.hours.len(), 2);
        assert_eq!(log.within_window(start + 366 * day), 1);
        log.record(start + 400 * day);
        assert_eq!(log.hours.len(), 2, "the old hour is pruned");
        assert_eq!(log.within_window(start + 400 * day), 2);
    }

    #[tokio::test]
    async fn probes_record_samples_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let configs = [
            LocationConfig::local(1, "edge-a", LocationKind::Edge, dir.path().join("a")),
            LocationConfig::local(2, "cloud-b", LocationKind::Cloud, dir.path().join("b")),
        ];
        let locations = Locations::open(&configs).await.unwrap();
        for _ in 0..(SAMPLES_KEPT + 2) {
            locations.measure_once().await;
        }
        let edge = &locations.edge_locations()[0];
        assert_eq!(edge.name, "edge-a");
        assert!(edge.available);
        assert!(edge.last_measured_ms.is_some());
        for series in [
            &edge.rtt_upload_1b_ms,
            &edge.rtt_upload_1mb_ms,
            &edge.rtt_download_1b_ms,
            &edge.rtt_download_1mb_ms,
        ] {
            assert_eq!(series.len(), SAMPLES_KEPT);
            assert!(series.iter().all(|ms| *ms >= 0.0));
        }
        assert_eq!(edge.upload_errors_in_last_12_months, 0);
        // The probes clean up after themselves.
        let backend = locations.backend("cloud-b").unwrap();
        assert!(backend.list("").await.unwrap().is_empty());
        let counters = locations.by_name("cloud-b").unwrap().counters();
        let rounds = (SAMPLES_KEPT + 2) as u64;
        assert_eq!(counters.bytes_in, rounds * (1 + PROBE_1MB_BYTES as u64));
        assert_eq!(counters.bytes_out, counters.bytes_in);
        assert_eq!(counters.errors, 0);
        assert_eq!(counters.requests, rounds * 6 + 1);

        let json = serde_json::to_value(&locations.cloud_locations()[0]).unwrap();
        for field in [
            "id",
            "location",
            "is_gdpr",
            "cloud_provider_name",
            "rtt_upload_1B_ms",
            "rtt_upload_1MB_ms",
            "rtt_download_1B_ms",
            "rtt_download_1MB_ms",
            "upload_errors_in_last_12_months",
            "download_errors_in_last_12_months",
            "available",
        ] {
            assert!(json.get(field).is_some(), "{field} in {json}");
        }
    }

    #[tokio::test]
    async fn failing_locations_count_upload_and_download_errors() {
        let dir = tempfile::tempdir().unwrap();
        let good = LocalDir::open("edge-ok", dir.path(), false).unwrap();
        let locations = Locations::with_backends(vec![
            (
                LocationConfig::local(1, "edge-ok", LocationKind::Edge, "unused"),
                Arc::new(good),
            ),
            (
                LocationConfig::local(2, "cloud-down", LocationKind::Cloud, "unused"),
                failing("cloud-down", false),
            ),
            (
                LocationConfig::local(3, "cloud-corrupt", LocationKind::Cloud, "unused"),
                failing("cloud-corrupt", true),
            ),
        ])
        .unwrap();
        locations.measure_once().await;
        locations.measure_once().await;

        let cloud = locations.cloud_locations();
        let down = &cloud[0];
        assert!(!down.available);
        assert_eq!(down.upload_errors_in_last_12_months, 4);
        // Nothing was uploaded, so nothing was downloaded: no download errors on top.
        assert_eq!(down.download_errors_in_last_12_months, 0);
        assert!(down.rtt_upload_1b_ms.is_empty() && down.rtt_download_1mb_ms.is_empty());
        assert!(down.last_measured_ms.is_some());

        let corrupt = &cloud[1];
        assert!(!corrupt.available);
        assert_eq!(corrupt.upload_errors_in_last_12_months, 0);
        assert_eq!(corrupt.download_errors_in_last_12_months, 4);
        assert_eq!(corrupt.rtt_upload_1mb_ms.len(), 2);
        assert!(corrupt.rtt_download_1b_ms.is_empty());

        let edge = &locations.edge_locations()[0];
        assert!(edge.available);
        assert_eq!(edge.rtt_download_1mb_ms.len(), 2);

        let counters = locations.by_name("cloud-down").unwrap().counters();
        assert_eq!(counters.errors, 4);
        assert_eq!(counters.bytes_in, 0);
    }

    #[tokio::test]
    async fn metrics_name_every_location() {
        let dir = tempfile::tempdir().unwrap();
        let good = LocalDir::open("edge-ok", dir.path(), false).unwrap();
        good.put("x/1", Bytes::from_static(b"12345")).await.unwrap();
        let locations = Locations::with_backends(vec![
            (
                LocationConfig::local(1, "edge-ok", LocationKind::Edge, "unused"),
                Arc::new(good),
            ),
            (
                LocationConfig::local(2, "cloud-down", LocationKind::Cloud, "unused"),
                failing("cloud-down", false),
            ),
        ])
        .unwrap();
        let before = locations.render_metrics().await;
        assert!(!before.contains("storage_gateway_backend_up{"), "{before}");
        locations.measure_once().await;
        let text = locations.render_metrics().await;
        for line in [
            "# TYPE storage_gateway_backend_requests_total counter",
            "storage_gateway_backend_requests_total{location=\"cloud-down\"} 6",
            "storage_gateway_backend_errors_total{location=\"cloud-down\"} 2",
            "storage_gateway_backend_errors_total{location=\"edge-ok\"} 0",
            "storage_gateway_backend_bytes_in_total{location=\"edge-ok\"} 1000001",
            "storage_gateway_backend_bytes_out_total{location=\"edge-ok\"} 1000001",
            "storage_gateway_backend_used_bytes{location=\"edge-ok\"} 5",
            "storage_gateway_backend_used_bytes{location=\"cloud-down\"} 7",
            "storage_gateway_backend_free_bytes{location=\"cloud-down\"} 1000",
            "# TYPE storage_gateway_backend_up gauge",
            "storage_gateway_backend_up{location=\"edge-ok\"} 1",
            "storage_gateway_backend_up{location=\"cloud-down\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert!(!text.contains("storage_gateway_backend_free_bytes{location=\"edge-ok\"}"));
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[tokio::test]
    async fn measurements_run_periodically_until_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let locations = Arc::new(
            Locations::open(&[LocationConfig::local(
                1,
                "edge-a",
                LocationKind::Edge,
                dir.path(),
            )])
            .await
            .unwrap(),
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = locations.spawn_measurements(Duration::from_millis(20), stopped);
        let deadline = Instant::now() + Duration::from_secs(20);
        while locations.edge_locations()[0].rtt_upload_1b_ms.len() < 2 {
            assert!(Instant::now() < deadline, "no second measurement");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap();
    }
}

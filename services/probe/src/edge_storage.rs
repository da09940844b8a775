//! The edge storage probe (`Probe.EdgeStorage`, originals.md 3.5, D6.7 4.4.3.2): scrapes the
//! Prometheus text of each configured storage device and reports the MinIO metric families the
//! Enhanced Telemetry Agent stores.
//!
//! A device is either a MinIO server (`/minio/v2/metrics/cluster`), whose `minio_*` families are
//! summed over their label sets, or a SERRANO storage gateway (`/metrics`, D6.7 4.8), whose own
//! families are mapped onto the MinIO names:
//!
//! | MinIO name | storage gateway families |
//! |---|---|
//! | `minio_node_disk_used_bytes` | Σ `storage_gateway_backend_used_bytes` |
//! | `minio_node_disk_free_bytes` | Σ `storage_gateway_backend_free_bytes` |
//! | `minio_node_disk_total_bytes` | Σ used + free over the locations reporting both |
//! | `minio_s3_requests_total` | Σ `storage_gateway_s3_requests_total` |
//! | `minio_s3_requests_errors_total` | Σ of the same with `status` ≥ 400 (MinIO counts 4xx and 5xx) |
//! | `minio_s3_traffic_received_bytes` | `storage_gateway_s3_bytes_in_total` |
//! | `minio_s3_traffic_sent_bytes` | `storage_gateway_s3_bytes_out_total` |
//!
//! The gateway exposes no bucket usage, so `minio_bucket_usage_*` appear for MinIO devices
//! only. A device's optional `location` restricts the `storage_gateway_backend_*` families to
//! that storage location (the S3 request and traffic figures are always the whole gateway's). A
//! device that does not answer is reported with `"up": false` and the reason; the others still
//! are.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serrano_service::Secret;
use uuid::Uuid;

use crate::model::{EdgeDeviceInventory, EdgeDeviceMetrics, Inventory, MonitoringData};
use crate::prom::{self, Sample, Scrape};
use crate::source::{Http, Source, SourceError, Target};

/// One device to scrape.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EdgeTarget {
    /// Device name (`edge-storage-devices-0`).
    pub name: String,
    /// The node the device runs on.
    pub node: String,
    /// Its Prometheus text URL: a storage gateway's `http://127.0.0.1:7113/metrics` or a MinIO
    /// server's `.../minio/v2/metrics/cluster`.
    pub url: String,
    /// Bearer token of that URL, if it needs one (the storage gateway's does).
    #[serde(default)]
    pub token: Option<Secret>,
    /// Storage gateway only: report the backend figures of this one storage location.
    #[serde(default)]
    pub location: Option<String>,
}

/// Geographic position of the devices (ROT placement uses it).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GeoLocation {
    pub lat: f64,
    pub lng: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeStorageConfig {
    pub targets: Vec<EdgeTarget>,
    pub location: GeoLocation,
}

impl EdgeStorageConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.targets.is_empty() {
            return Err("edge_storage.targets: at least one device to scrape".to_owned());
        }
        let mut names = std::collections::BTreeSet::new();
        for target in &self.targets {
            if target.name.is_empty() {
                return Err("edge_storage.targets: every device needs a name".to_owned());
            }
            if !names.insert(target.name.as_str()) {
                return Err(format!(
                    "edge_storage.targets: device {} listed twice",
                    target.name
                ));
            }
            if !(target.url.starts_with("http://") || target.url.starts_with("https://")) {
                return Err(format!(
                    "edge_storage.targets: url of {} is not an http:// or https:// URL",
                    target.name
                ));
            }
        }
        let GeoLocation { lat, lng } = self.location;
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lng) {
            return Err("edge_storage.location: lat within ±90, lng within ±180".to_owned());
        }
        Ok(())
    }
}

/// MinIO families reported as they are (summed over label sets), originals.md 3.5.
pub const MINIO_FAMILIES: [&str; 14] = [
    "minio_bucket_usage_object_total",
    "minio_bucket_usage_total_bytes",
    "minio_node_disk_free_bytes",
    "minio_node_disk_total_bytes",
    "minio_node_disk_used_bytes",
    "minio_node_process_cpu_total_seconds",
    "minio_node_process_resident_memory_bytes",
    "minio_node_process_uptime_seconds",
    "minio_s3_requests_errors_total",
    "minio_s3_requests_rejected_invalid_total",
    "minio_s3_requests_total",
    "minio_s3_requests_waiting_total",
    "minio_s3_traffic_received_bytes",
    "minio_s3_traffic_sent_bytes",
];

/// The device metrics of one scrape (see the module table).
pub fn device_metrics(scrape: &Scrape, location: Option<&str>) -> BTreeMap<String, f64> {
    let mut metrics = BTreeMap::new();
    for family in MINIO_FAMILIES {
        if let Some(sum) = scrape.sum(family) {
            metrics.insert(family.to_owned(), sum);
        }
    }
    let at_location = |s: &Sample| location.is_none_or(|l| s.label("location") == Some(l));

    let mut gateway = BTreeMap::new();
    if let Some(used) = scrape.sum_where("storage_gateway_backend_used_bytes", at_location) {
        gateway.insert("minio_node_disk_used_bytes", used);
    }
    if let Some(free) = scrape.sum_where("storage_gateway_backend_free_bytes", at_location) {
        gateway.insert("minio_node_disk_free_bytes", free);
    }
    // Total only over the locations that report both figures.
    let mut total = None;
    for free in scrape
        .series("storage_gateway_backend_free_bytes")
        .filter(|s| at_location(s))
    {
        let used = scrape.sum_where("storage_gateway_backend_used_bytes", |s| {
            s.label("location") == free.label("location")
        });
        if let Some(used) = used {
            total = Some(total.unwrap_or(0.0) + used + free.value);
        }
    }
    if let Some(total) = total {
        gateway.insert("minio_node_disk_total_bytes", total);
    }
    if let Some(requests) = scrape.sum("storage_gateway_s3_requests_total") {
        gateway.insert("minio_s3_requests_total", requests);
        let errors = scrape
            .sum_where("storage_gateway_s3_requests_total", |s| {
                s.label("status")
                    .and_then(|status| status.parse::<u16>().ok())
                    .is_some_and(|status| status >= 400)
            })
            .unwrap_or(0.0);
        gateway.insert("minio_s3_requests_errors_total", errors);
    }
    if let Some(bytes) = scrape.sum("storage_gateway_s3_bytes_in_total") {
        gateway.insert("minio_s3_traffic_received_bytes", bytes);
    }
    if let Some(bytes) = scrape.sum("storage_gateway_s3_bytes_out_total") {
        gateway.insert("minio_s3_traffic_sent_bytes", bytes);
    }
    // A MinIO family that is present wins over a mapped one.
    for (name, value) in gateway {
        metrics.entry(name.to_owned()).or_insert(value);
    }
    metrics
}

/// The edge storage probe's source.
pub struct EdgeStorageSource {
    config: EdgeStorageConfig,
    cluster_uuid: Uuid,
    http: Http,
}

/// One device's scrape: its metrics, or why there are none.
type DeviceReading = Result<BTreeMap<String, f64>, String>;

impl EdgeStorageSource {
    pub fn new(config: EdgeStorageConfig, cluster_uuid: Uuid, http: Http) -> Self {
        Self {
            config,
            cluster_uuid,
            http,
        }
    }

    async fn scrape_one(&self, target: &EdgeTarget, timeout: Duration) -> DeviceReading {
        let what = format!("edge storage device {}", target.name);
        let text = self
            .http
            .get_text(&what, &target.url, target.token.as_ref(), timeout)
            .await
            .map_err(|err| err.to_string())?;
        let scrape = prom::parse(&text).map_err(|err| format!("{what}: {err}"))?;
        Ok(device_metrics(&scrape, target.location.as_deref()))
    }

    async fn scrape_all(&self, timeout: Duration) -> Vec<(&EdgeTarget, DeviceReading)> {
        let readings = futures::future::join_all(
            self.config
                .targets
                .iter()
                .map(|target| self.scrape_one(target, timeout)),
        )
        .await;
        self.config.targets.iter().zip(readings).collect()
    }
}

#[async_trait]
impl Source for EdgeStorageSource {
    async fn inventory(&self, timeout: Duration) -> Result<Inventory, SourceError> {
        let location = self.config.location;
        let devices = self
            .scrape_all(timeout)
            .await
            .into_iter()
            .map(|(target, reading)| {
                let (total, error) = match reading {
                    Ok(metrics) => (metrics.get("minio_node_disk_total_bytes").copied(), None),
                    Err(reason) => (None, Some(reason)),
                };
                EdgeDeviceInventory {
                    name: target.name.clone(),
                    node: target.node.clone(),
                    cluster_uuid: self.cluster_uuid,
                    lat: location.lat,
                    lng: location.lng,
                    minio_node_disk_total_bytes: total,
                    up: error.is_none(),
                    error,
                }
            })
            .collect();
        Ok(Inventory::EdgeStorage {
            edge_storage_devices: devices,
        })
    }

    /// Every device, whatever the target (devices are resources).
    async fn monitor(
        &self,
        timeout: Duration,
        _target: Target,
    ) -> Result<MonitoringData, SourceError> {
        let devices = self
            .scrape_all(timeout)
            .await
            .into_iter()
            .map(|(target, reading)| {
                let (metrics, error) = match reading {
                    Ok(metrics) => (metrics, None),
                    Err(reason) => (BTreeMap::new(), Some(reason)),
                };
                EdgeDeviceMetrics {
                    cluster_uuid: self.cluster_uuid,
                    name: target.name.clone(),
                    node: target.node.clone(),
                    metrics,
                    up: error.is_none(),
                    error,
                }
            })
            .collect();
        Ok(MonitoringData::EdgeStorage(devices))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const MINIO: &str = "# HELP minio_node_disk_total_bytes Total storage on a disk.\n\
        # TYPE minio_node_disk_total_bytes gauge\n\
        minio_node_disk_total_bytes{disk=\"/data1\",server=\"edge-0:9000\"} 1.5754807296e+10\n\
        minio_node_disk_total_bytes{disk=\"/data2\",server=\"edge-0:9000\"} 1.5754807296e+10\n\
        minio_node_disk_used_bytes{disk=\"/data1\",server=\"edge-0:9000\"} 6.286999552e+09\n\
        minio_node_disk_used_bytes{disk=\"/data2\",server=\"edge-0:9000\"} 6.286999552e+09\n\
        minio_node_disk_free_bytes{disk=\"/data1\",server=\"edge-0:9000\"} 9.467807744e+09\n\
        minio_node_disk_free_bytes{disk=\"/data2\",server=\"edge-0:9000\"} 9.467807744e+09\n\
        minio_bucket_usage_object_total{bucket=\"a\",server=\"edge-0:9000\"} 150\n\
        minio_bucket_usage_object_total{bucket=\"b\",server=\"edge-0:9000\"} 49\n\
        minio_bucket_usage_total_bytes{bucket=\"a\",server=\"edge-0:9000\"} 3186080021\n\
        minio_s3_requests_total{api=\"getobject\",server=\"edge-0:9000\"} 10\n\
        minio_s3_requests_total{api=\"putobject\",server=\"edge-0:9000\"} 5\n\
        minio_s3_requests_waiting_total{server=\"edge-0:9000\"} 0\n\
        minio_s3_traffic_received_bytes{server=\"edge-0:9000\"} 3436003534\n\
        minio_s3_traffic_sent_bytes{server=\"edge-0:9000\"} 16726678916\n\
        minio_node_process_uptime_seconds{server=\"edge-0:9000\"} 3113825.842905024\n\
        go_goroutines 42\n";

    const GATEWAY: &str = "# TYPE storage_gateway_s3_requests_total counter\n\
        storage_gateway_s3_requests_total{operation=\"PutObject\",status=\"200\"} 7\n\
        storage_gateway_s3_requests_total{operation=\"GetObject\",status=\"200\"} 4\n\
        storage_gateway_s3_requests_total{operation=\"GetObject\",status=\"404\"} 2\n\
        storage_gateway_s3_requests_total{operation=\"PutObject\",status=\"503\"} 1\n\
        storage_gateway_s3_bytes_in_total 70000\n\
        storage_gateway_s3_bytes_out_total 40000\n\
        storage_gateway_backend_used_bytes{location=\"edge-1\"} 1000\n\
        storage_gateway_backend_used_bytes{location=\"edge-2\"} 3000\n\
        storage_gateway_backend_used_bytes{location=\"cloud-s3\"} 500\n\
        storage_gateway_backend_free_bytes{location=\"edge-1\"} 9000\n\
        storage_gateway_backend_free_bytes{location=\"edge-2\"} 7000\n\
        storage_gateway_backend_up{location=\"edge-1\"} 1\n";

    #[test]
    fn minio_families_are_summed() {
        let metrics = device_metrics(&prom::parse(MINIO).unwrap(), None);
        assert_eq!(metrics["minio_node_disk_total_bytes"], 31_509_614_592.0);
        assert_eq!(metrics["minio_node_disk_used_bytes"], 12_573_999_104.0);
        assert_eq!(metrics["minio_node_disk_free_bytes"], 18_935_615_488.0);
        assert_eq!(metrics["minio_bucket_usage_object_total"], 199.0);
        assert_eq!(metrics["minio_bucket_usage_total_bytes"], 3_186_080_021.0);
        assert_eq!(metrics["minio_s3_requests_total"], 15.0);
        assert_eq!(metrics["minio_s3_requests_waiting_total"], 0.0);
        assert_eq!(metrics["minio_s3_traffic_sent_bytes"], 16_726_678_916.0);
        assert_eq!(
            metrics["minio_node_process_uptime_seconds"],
            3_113_825.842905024
        );
        assert!(!metrics.contains_key("go_goroutines"));
        assert!(!metrics.contains_key("minio_s3_requests_errors_total"));
    }

    #[test]
    fn storage_gateway_families_are_mapped() {
        let scrape = prom::parse(GATEWAY).unwrap();
        let metrics = device_metrics(&scrape, None);
        assert_eq!(metrics["minio_node_disk_used_bytes"], 4500.0);
        assert_eq!(metrics["minio_node_disk_free_bytes"], 16000.0);
        // cloud-s3 reports no free bytes: its used bytes are not part of a known total.
        assert_eq!(metrics["minio_node_disk_total_bytes"], 20000.0);
        assert_eq!(metrics["minio_s3_requests_total"], 14.0);
        assert_eq!(metrics["minio_s3_requests_errors_total"], 3.0);
        assert_eq!(metrics["minio_s3_traffic_received_bytes"], 70000.0);
        assert_eq!(metrics["minio_s3_traffic_sent_bytes"], 40000.0);
        assert_eq!(metrics.len(), 7);

        let one = device_metrics(&scrape, Some("edge-2"));
        assert_eq!(one["minio_node_disk_used_bytes"], 3000.0);
        assert_eq!(one["minio_node_disk_free_bytes"], 7000.0);
        assert_eq!(one["minio_node_disk_total_bytes"], 10000.0);
        assert_eq!(one["minio_s3_requests_total"], 14.0);
        let unknown = device_metrics(&scrape, Some("nowhere"));
        assert!(!unknown.contains_key("minio_node_disk_used_bytes"));
        assert!(device_metrics(&Scrape::default(), None).is_empty());
    }

    #[test]
    fn config_rules() {
        let target = |name: &str, url: &str| EdgeTarget {
            name: name.to_owned(),
            node: "n".to_owned(),
            url: url.to_owned(),
            token: None,
            location: None,
        };
        let mut config = EdgeStorageConfig::default();
        assert!(config.validate().unwrap_err().contains("at least one"));
        config.targets = vec![target("a", "http://x/metrics")];
        assert_eq!(config.validate(), Ok(()));
        config.targets.push(target("a", "http://y/metrics"));
        assert!(config.validate().unwrap_err().contains("twice"));
        config.targets = vec![target("a", "x/metrics")];
        assert!(config.validate().unwrap_err().contains("URL"));
        config.targets = vec![target("", "http://x")];
        assert!(config.validate().is_err());
        config.targets = vec![target("a", "http://x")];
        config.location.lat = 91.0;
        assert!(config.validate().unwrap_err().contains("lat"));
    }
}

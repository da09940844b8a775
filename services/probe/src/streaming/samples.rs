//! The samples of one reading: InfluxDB points in the layout the agent stores (originals.md
//! 3.4), filtered by the session's `nodes` and `metrics`.

use std::collections::{BTreeSet, HashMap};

use serrano_telemetry_stream::pb;

use crate::edge_storage::MINIO_FAMILIES;
use crate::model::MonitoringData;
use crate::nodes::GROUPS;

/// Fields of an `hpc_partitions` sample.
pub const PARTITION_FIELDS: [&str; 6] = [
    "avail_cpus",
    "avail_nodes",
    "queued_jobs",
    "running_jobs",
    "total_cpus",
    "total_nodes",
];

/// What one session reads and where it sends.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub nodes: BTreeSet<String>,
    pub metrics: BTreeSet<String>,
}

impl Filter {
    pub fn node(&self, name: &str) -> bool {
        self.nodes.is_empty() || self.nodes.contains(name)
    }

    pub fn metric(&self, name: &str) -> bool {
        self.metrics.is_empty() || self.metrics.contains(name)
    }
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn tags(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The names a request may use in `nodes` and `metrics` for this reading.
pub fn known_names(data: &MonitoringData) -> (BTreeSet<String>, BTreeSet<String>) {
    let owned = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
    match data {
        MonitoringData::Host(host) => (
            host.nodes
                .iter()
                .flatten()
                .map(|n| n.node_name.clone())
                .collect(),
            owned(&GROUPS),
        ),
        MonitoringData::Kubernetes(k8s) => (
            k8s.nodes
                .iter()
                .flatten()
                .map(|n| n.node_name.clone())
                .collect(),
            owned(&GROUPS),
        ),
        MonitoringData::Hpc(hpc) => (
            hpc.partitions.iter().map(|p| p.name.clone()).collect(),
            owned(&PARTITION_FIELDS),
        ),
        MonitoringData::EdgeStorage(devices) => (
            devices.iter().map(|d| d.name.clone()).collect(),
            owned(&MINIO_FAMILIES),
        ),
    }
}

/// The samples of one reading that pass `filter`.
pub fn samples(data: &MonitoringData, filter: &Filter, time_ns: i64) -> Vec<pb::Sample> {
    let finite = |fields: &mut HashMap<String, f64>| fields.retain(|_, v| v.is_finite());
    let mut out = Vec::new();
    match data {
        MonitoringData::Host(host) => {
            node_samples(host.nodes.as_deref(), filter, time_ns, &mut out)
        }
        MonitoringData::Kubernetes(k8s) => {
            node_samples(k8s.nodes.as_deref(), filter, time_ns, &mut out);
        }
        MonitoringData::Hpc(hpc) => {
            for partition in hpc.partitions.iter().filter(|p| filter.node(&p.name)) {
                let values = [
                    partition.avail_cpus,
                    partition.avail_nodes,
                    partition.queued_jobs,
                    partition.running_jobs,
                    partition.total_cpus,
                    partition.total_nodes,
                ];
                let fields: HashMap<String, f64> = PARTITION_FIELDS
                    .iter()
                    .zip(values)
                    .filter(|(name, _)| filter.metric(name))
                    .map(|(name, value)| ((*name).to_owned(), value as f64))
                    .collect();
                if !fields.is_empty() {
                    out.push(pb::Sample {
                        measurement: "hpc_partitions".to_owned(),
                        tags: tags(&[
                            ("infrastructure_name", &hpc.name),
                            ("partition_name", &partition.name),
                        ]),
                        fields,
                        time_ns,
                    });
                }
            }
        }
        MonitoringData::EdgeStorage(devices) => {
            for device in devices.iter().filter(|d| d.up && filter.node(&d.name)) {
                let mut fields: HashMap<String, f64> = device
                    .metrics
                    .iter()
                    .filter(|(name, _)| filter.metric(name))
                    .map(|(name, value)| (name.clone(), *value))
                    .collect();
                finite(&mut fields);
                if !fields.is_empty() {
                    let cluster = device.cluster_uuid.to_string();
                    out.push(pb::Sample {
                        measurement: "edge_storage".to_owned(),
                        tags: tags(&[
                            ("cluster_uuid", &cluster),
                            ("node", &device.node),
                            ("name", &device.name),
                        ]),
                        fields,
                        time_ns,
                    });
                }
            }
        }
    }
    out
}

fn node_samples(
    nodes: Option<&[crate::nodes::NodeMetrics]>,
    filter: &Filter,
    time_ns: i64,
    out: &mut Vec<pb::Sample>,
) {
    for node in nodes
        .unwrap_or_default()
        .iter()
        .filter(|n| n.up && filter.node(&n.node_name))
    {
        for group in GROUPS.iter().filter(|g| filter.metric(g)) {
            let Some(values) = node.group(group) else {
                continue;
            };
            let fields: HashMap<String, f64> = values
                .iter()
                .filter(|(_, v)| v.is_finite())
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            if fields.is_empty() {
                continue;
            }
            out.push(pb::Sample {
                measurement: "nodes".to_owned(),
                tags: tags(&[("node_name", &node.node_name), ("group", group)]),
                fields,
                time_ns,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use uuid::Uuid;

    use super::*;
    use crate::model::{EdgeDeviceMetrics, HostMonitoring, HpcMonitoring, PartitionTelemetry};
    use crate::nodes::NodeMetrics;

    fn node(name: &str) -> NodeMetrics {
        NodeMetrics {
            node_name: name.to_owned(),
            timestamp: 1,
            general: BTreeMap::from([("node_boot_time_seconds".to_owned(), 5.0)]),
            cpu: BTreeMap::from([
                ("cpu_0_idle".to_owned(), 1.0),
                ("node_cpus".to_owned(), 1.0),
            ]),
            memory: BTreeMap::from([("node_memory_MemTotal_bytes".to_owned(), f64::NAN)]),
            storage: BTreeMap::new(),
            network: BTreeMap::new(),
            up: true,
            error: None,
        }
    }

    fn filter(nodes: &[&str], metrics: &[&str]) -> Filter {
        Filter {
            nodes: nodes.iter().map(|s| (*s).to_owned()).collect(),
            metrics: metrics.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn node_samples_per_group_skip_empty_and_non_finite() {
        let data = MonitoringData::Host(HostMonitoring {
            nodes: Some(vec![
                node("a"),
                node("b"),
                NodeMetrics::down("c", 1, "x".to_owned()),
            ]),
        });
        let all = samples(&data, &filter(&[], &[]), 9);
        // a and b: general and cpu; memory holds only NaN; storage and network are empty.
        assert_eq!(all.len(), 4);
        assert!(
            all.iter()
                .all(|s| s.measurement == "nodes" && s.time_ns == 9)
        );
        let one = samples(&data, &filter(&["b"], &["cpu"]), 9);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].tags["node_name"], "b");
        assert_eq!(one[0].tags["group"], "cpu");
        assert_eq!(one[0].fields["node_cpus"], 1.0);
        assert_eq!(one[0].fields.len(), 2);
        let (nodes, metrics) = known_names(&data);
        assert!(nodes.contains("c") && metrics.contains("network"));
    }

    #[test]
    fn hpc_and_edge_samples() {
        let hpc = MonitoringData::Hpc(HpcMonitoring {
            name: "hawk".to_owned(),
            scheduler: "slurm".to_owned(),
            partitions: vec![PartitionTelemetry {
                name: "debug".to_owned(),
                total_nodes: 4,
                avail_nodes: 1,
                total_cpus: 128,
                avail_cpus: 32,
                running_jobs: 3,
                queued_jobs: 2,
            }],
        });
        let out = samples(&hpc, &filter(&[], &["avail_cpus", "queued_jobs"]), 1);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].measurement, "hpc_partitions");
        assert_eq!(out[0].tags["infrastructure_name"], "hawk");
        assert_eq!(out[0].tags["partition_name"], "debug");
        assert_eq!(out[0].fields.len(), 2);
        assert_eq!(out[0].fields["avail_cpus"], 32.0);
        assert!(samples(&hpc, &filter(&["other"], &[]), 1).is_empty());

        let device = |name: &str, up: bool| EdgeDeviceMetrics {
            cluster_uuid: Uuid::nil(),
            name: name.to_owned(),
            node: "w1".to_owned(),
            metrics: if up {
                BTreeMap::from([("minio_s3_requests_total".to_owned(), 7.0)])
            } else {
                BTreeMap::new()
            },
            up,
            error: None,
        };
        let edge = MonitoringData::EdgeStorage(vec![device("d0", true), device("d1", false)]);
        let out = samples(&edge, &filter(&[], &[]), 1);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].measurement, "edge_storage");
        assert_eq!(out[0].tags["name"], "d0");
        assert_eq!(out[0].tags["cluster_uuid"], Uuid::nil().to_string());
        assert_eq!(out[0].fields["minio_s3_requests_total"], 7.0);
    }
}

//! The node metrics object shared by the host and Kubernetes probes (originals.md 3.4 and 3.5:
//! the groups and field names the Enhanced Telemetry Agent stores as InfluxDB measurement
//! `nodes`), built from raw counters by one pure function so both probes agree on every
//! definition:
//!
//! - `cpu_<n>_idle` is idle + iowait seconds, `cpu_<n>_used` user + nice + system + irq +
//!   softirq + steal seconds (guest time is already inside user and nice), both counters;
//! - `node_memory_MemUsed_bytes` is MemTotal − MemAvailable: what programs hold, page cache
//!   excluded (the original used MemTotal − MemFree, which counts reclaimable cache as used);
//! - filesystem figures are those of `/`; used = size − free and the usage percentage is
//!   used / (used + avail), as `df` shows it;
//! - network counters are summed over every interface but loopback.
//!
//! A value the source does not provide is left out rather than reported as 0.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The metric groups of a node, in the order of the wire object (`group` tag of the samples).
pub const GROUPS: [&str; 5] = ["general", "cpu", "memory", "storage", "network"];

/// Metrics of one node at one instant. Every value is a number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeMetrics {
    pub node_name: String,
    /// Unix seconds of the reading.
    pub timestamp: i64,
    /// `node_boot_time_seconds`, and `node_total_running_pods` on Kubernetes nodes.
    pub general: BTreeMap<String, f64>,
    /// `cpu_<n>_idle`, `cpu_<n>_used` (seconds since boot) and `node_cpus`.
    pub cpu: BTreeMap<String, f64>,
    /// `node_memory_{Buffers,Cached,MemAvailable,MemFree,MemTotal,MemUsed}_bytes` and
    /// `node_memory_usage_percentage`.
    pub memory: BTreeMap<String, f64>,
    /// `node_filesystem_{avail,free,size,used}_bytes` and `node_filesystem_usage_percentage`.
    pub storage: BTreeMap<String, f64>,
    /// `node_network_{receive,transmit}_{bytes,drop,errs,packets}_total`.
    pub network: BTreeMap<String, f64>,
    /// Present (and false) only when the node could not be read; its groups are then empty.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub up: bool,
    /// Why the node could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

impl NodeMetrics {
    /// A node whose metrics could not be read.
    pub fn down(node_name: &str, timestamp: i64, reason: String) -> Self {
        Self {
            node_name: node_name.to_owned(),
            timestamp,
            general: BTreeMap::new(),
            cpu: BTreeMap::new(),
            memory: BTreeMap::new(),
            storage: BTreeMap::new(),
            network: BTreeMap::new(),
            up: false,
            error: Some(reason),
        }
    }

    /// The fields of group `name` (one of [`GROUPS`]).
    pub fn group(&self, name: &str) -> Option<&BTreeMap<String, f64>> {
        match name {
            "general" => Some(&self.general),
            "cpu" => Some(&self.cpu),
            "memory" => Some(&self.memory),
            "storage" => Some(&self.storage),
            "network" => Some(&self.network),
            _ => None,
        }
    }
}

/// CPU time of one CPU, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    pub idle: f64,
    pub used: f64,
}

/// Memory figures in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Memory {
    pub total: Option<f64>,
    pub free: Option<f64>,
    pub available: Option<f64>,
    pub buffers: Option<f64>,
    pub cached: Option<f64>,
}

/// Filesystem figures in bytes (`statvfs` or node-exporter's `node_filesystem_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Filesystem {
    pub size: f64,
    pub free: f64,
    pub avail: f64,
}

/// Network counters summed over the non-loopback interfaces.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Network {
    pub receive_bytes: f64,
    pub receive_packets: f64,
    pub receive_errs: f64,
    pub receive_drop: f64,
    pub transmit_bytes: f64,
    pub transmit_packets: f64,
    pub transmit_errs: f64,
    pub transmit_drop: f64,
}

/// Raw readings of one node, before the wire names are applied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeCounters {
    pub boot_time_seconds: Option<f64>,
    /// Kubernetes only.
    pub running_pods: Option<u64>,
    /// Per CPU label (`"0"`, `"1"`, ...).
    pub cpus: BTreeMap<String, CpuTimes>,
    pub memory: Memory,
    pub filesystem: Option<Filesystem>,
    pub network: Option<Network>,
}

impl NodeCounters {
    /// The wire object of these readings.
    pub fn into_metrics(self, node_name: &str, timestamp: i64) -> NodeMetrics {
        let mut general = BTreeMap::new();
        if let Some(boot) = self.boot_time_seconds {
            general.insert("node_boot_time_seconds".to_owned(), boot);
        }
        if let Some(pods) = self.running_pods {
            general.insert("node_total_running_pods".to_owned(), pods as f64);
        }

        let mut cpu = BTreeMap::new();
        for (label, times) in &self.cpus {
            cpu.insert(format!("cpu_{label}_idle"), times.idle);
            cpu.insert(format!("cpu_{label}_used"), times.used);
        }
        if !self.cpus.is_empty() {
            cpu.insert("node_cpus".to_owned(), self.cpus.len() as f64);
        }

        let mut memory = BTreeMap::new();
        let m = self.memory;
        for (name, value) in [
            ("node_memory_Buffers_bytes", m.buffers),
            ("node_memory_Cached_bytes", m.cached),
            ("node_memory_MemAvailable_bytes", m.available),
            ("node_memory_MemFree_bytes", m.free),
            ("node_memory_MemTotal_bytes", m.total),
        ] {
            if let Some(value) = value {
                memory.insert(name.to_owned(), value);
            }
        }
        if let (Some(total), Some(available)) = (m.total, m.available) {
            let used = (total - available).max(0.0);
            memory.insert("node_memory_MemUsed_bytes".to_owned(), used);
            if total > 0.0 {
                memory.insert(
                    "node_memory_usage_percentage".to_owned(),
                    round2(used / total * 100.0),
                );
            }
        }

        let mut storage = BTreeMap::new();
        if let Some(fs) = self.filesystem {
            let used = (fs.size - fs.free).max(0.0);
            storage.insert("node_filesystem_avail_bytes".to_owned(), fs.avail);
            storage.insert("node_filesystem_free_bytes".to_owned(), fs.free);
            storage.insert("node_filesystem_size_bytes".to_owned(), fs.size);
            storage.insert("node_filesystem_used_bytes".to_owned(), used);
            let visible = used + fs.avail;
            if visible > 0.0 {
                storage.insert(
                    "node_filesystem_usage_percentage".to_owned(),
                    round2(used / visible * 100.0),
                );
            }
        }

        let mut network = BTreeMap::new();
        if let Some(n) = self.network {
            for (name, value) in [
                ("node_network_receive_bytes_total", n.receive_bytes),
                ("node_network_receive_drop_total", n.receive_drop),
                ("node_network_receive_errs_total", n.receive_errs),
                ("node_network_receive_packets_total", n.receive_packets),
                ("node_network_transmit_bytes_total", n.transmit_bytes),
                ("node_network_transmit_drop_total", n.transmit_drop),
                ("node_network_transmit_errs_total", n.transmit_errs),
                ("node_network_transmit_packets_total", n.transmit_packets),
            ] {
                network.insert(name.to_owned(), value);
            }
        }

        NodeMetrics {
            node_name: node_name.to_owned(),
            timestamp,
            general,
            cpu,
            memory,
            storage,
            network,
            up: true,
            error: None,
        }
    }
}

/// Percentages with two decimals: finer digits are noise and bloat every stored sample.
fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_used_and_percentages() {
        let mut cpus = BTreeMap::new();
        cpus.insert(
            "0".to_owned(),
            CpuTimes {
                idle: 100.0,
                used: 20.0,
            },
        );
        cpus.insert(
            "1".to_owned(),
            CpuTimes {
                idle: 90.0,
                used: 30.5,
            },
        );
        let counters = NodeCounters {
            boot_time_seconds: Some(1_700_000_000.0),
            running_pods: Some(3),
            cpus,
            memory: Memory {
                total: Some(8000.0),
                free: Some(1000.0),
                available: Some(6000.0),
                buffers: Some(100.0),
                cached: Some(4000.0),
            },
            filesystem: Some(Filesystem {
                size: 1000.0,
                free: 300.0,
                avail: 200.0,
            }),
            network: Some(Network {
                receive_bytes: 1.0,
                receive_packets: 2.0,
                receive_errs: 3.0,
                receive_drop: 4.0,
                transmit_bytes: 5.0,
                transmit_packets: 6.0,
                transmit_errs: 7.0,
                transmit_drop: 8.0,
            }),
        };
        let metrics = counters.into_metrics("n1", 42);
        let json = serde_json::to_value(&metrics).unwrap_or_default();
        assert_eq!(json["node_name"], "n1");
        assert_eq!(json["timestamp"], 42);
        assert!(json.get("up").is_none(), "up is only written when false");
        assert_eq!(json["general"]["node_boot_time_seconds"], 1.7e9);
        assert_eq!(json["general"]["node_total_running_pods"], 3.0);
        assert_eq!(json["cpu"]["cpu_0_idle"], 100.0);
        assert_eq!(json["cpu"]["cpu_1_used"], 30.5);
        assert_eq!(json["cpu"]["node_cpus"], 2.0);
        assert_eq!(json["memory"]["node_memory_MemUsed_bytes"], 2000.0);
        assert_eq!(json["memory"]["node_memory_usage_percentage"], 25.0);
        assert_eq!(json["memory"]["node_memory_Cached_bytes"], 4000.0);
        assert_eq!(json["storage"]["node_filesystem_used_bytes"], 700.0);
        // 700 / (700 + 200)
        assert_eq!(json["storage"]["node_filesystem_usage_percentage"], 77.78);
        assert_eq!(json["network"]["node_network_transmit_drop_total"], 8.0);
        assert_eq!(json["network"].as_object().map(|m| m.len()), Some(8));
        assert_eq!(json["memory"].as_object().map(|m| m.len()), Some(7));
        assert_eq!(json["storage"].as_object().map(|m| m.len()), Some(5));
    }

    #[test]
    fn missing_readings_are_left_out_and_down_nodes_say_why() {
        let metrics = NodeCounters::default().into_metrics("n", 1);
        assert!(metrics.general.is_empty() && metrics.cpu.is_empty());
        assert!(metrics.memory.is_empty() && metrics.storage.is_empty());
        assert!(metrics.network.is_empty());
        let down = NodeMetrics::down("n2", 5, "connection refused".to_owned());
        let json = serde_json::to_value(&down).unwrap_or_default();
        assert_eq!(json["up"], false);
        assert_eq!(json["error"], "connection refused");
        assert_eq!(down.group("cpu").map(BTreeMap::len), Some(0));
        assert!(down.group("gpu").is_none());
    }
}

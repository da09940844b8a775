//! The parts of the Kubernetes API documents the probe reads (unknown fields are ignored), and
//! the pure conversions from them (and from node-exporter text) to the probe's wire shapes.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::model::{NodeCapacity, NodeInfo, NodeInventory, NodeLabels, Pod, PodUsage};
use crate::nodes::{CpuTimes, Filesystem, Memory, Network, NodeCounters};
use crate::prom::{self, Scrape};
use serrano_model::quantity;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct List<T> {
    pub items: Vec<T>,
    pub metadata: ListMeta,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListMeta {
    #[serde(rename = "continue")]
    pub continue_token: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ObjectMeta {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub creation_timestamp: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NodeObject {
    pub metadata: ObjectMeta,
    pub status: NodeStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NodeStatus {
    pub capacity: BTreeMap<String, String>,
    pub node_info: NodeSystemInfo,
    pub addresses: Vec<NodeAddress>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NodeSystemInfo {
    pub architecture: String,
    pub kernel_version: String,
    pub os_image: String,
    pub operating_system: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NodeAddress {
    #[serde(rename = "type")]
    pub kind: String,
    pub address: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PodObject {
    pub metadata: ObjectMeta,
    pub spec: PodSpec,
    pub status: PodStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSpec {
    pub node_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodStatus {
    pub phase: Option<String>,
    pub start_time: Option<String>,
    #[serde(rename = "podIP")]
    pub pod_ip: Option<String>,
    #[serde(rename = "hostIP")]
    pub host_ip: Option<String>,
    pub container_statuses: Vec<ContainerStatus>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerStatus {
    pub restart_count: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeploymentObject {
    pub metadata: ObjectMeta,
    pub spec: DeploymentSpec,
    pub status: DeploymentStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeploymentSpec {
    pub replicas: Option<u64>,
    pub selector: Option<LabelSelector>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DeploymentStatus {
    pub ready_replicas: u64,
    pub available_replicas: u64,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LabelSelector {
    pub match_labels: BTreeMap<String, String>,
    pub match_expressions: Vec<SelectorRequirement>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct SelectorRequirement {
    pub key: String,
    pub operator: String,
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Kubernetes label selector semantics; an unknown operator matches nothing.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value))
            && self.match_expressions.iter().all(|req| {
                let value = labels.get(&req.key);
                match req.operator.as_str() {
                    "In" => value.is_some_and(|v| req.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !req.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PersistentVolumeObject {
    pub metadata: ObjectMeta,
    pub spec: PersistentVolumeSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PersistentVolumeSpec {
    pub capacity: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PodMetricsObject {
    pub metadata: ObjectMeta,
    pub containers: Vec<ContainerMetrics>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ContainerMetrics {
    pub usage: BTreeMap<String, String>,
}

pub fn is_control_plane(node: &NodeObject) -> bool {
    let labels = &node.metadata.labels;
    labels.contains_key("node-role.kubernetes.io/control-plane")
        || labels.contains_key("node-role.kubernetes.io/master")
}

/// Sum of the capacity entries whose key starts with `prefix` (`nvidia.com/gpu`, ...).
pub fn capacity_sum(capacity: &BTreeMap<String, String>, prefix: &str) -> u64 {
    capacity
        .iter()
        .filter(|(key, _)| key.starts_with(prefix))
        .filter_map(|(_, value)| quantity::bytes(value).ok())
        .sum()
}

pub fn node_inventory(node: &NodeObject) -> NodeInventory {
    let labels = &node.metadata.labels;
    let capacity = &node.status.capacity;
    let info = &node.status.node_info;
    let bytes_of = |key: &str| {
        capacity
            .get(key)
            .and_then(|v| quantity::bytes(v).ok())
            .unwrap_or(0)
            .to_string()
    };
    NodeInventory {
        node_name: node.metadata.name.clone(),
        node_role: "worker".to_owned(),
        node_labels: NodeLabels {
            vaccel: labels
                .get("vaccel")
                .cloned()
                .unwrap_or_else(|| "false".to_owned()),
            security_tier: labels
                .get("security-tier")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
        },
        node_capacity: NodeCapacity {
            cpu: capacity
                .get("cpu")
                .and_then(|v| quantity::parse_quantity(v).ok())
                .unwrap_or(0.0),
            memory: bytes_of("memory"),
            total_gpu: capacity_sum(capacity, "nvidia.com/gpu"),
            total_fpga: capacity_sum(capacity, "xilinx.com/fpga-xilinx"),
            node_storage: bytes_of("ephemeral-storage"),
        },
        node_info: NodeInfo {
            architecture: info.architecture.clone(),
            kernel_version: info.kernel_version.clone(),
            os_image: info.os_image.clone(),
            operating_system: info.operating_system.clone(),
        },
    }
}

/// The node counters of a node-exporter scrape.
pub fn node_counters(scrape: &Scrape) -> NodeCounters {
    let mut cpus: BTreeMap<String, CpuTimes> = BTreeMap::new();
    for sample in scrape.series("node_cpu_seconds_total") {
        let (Some(cpu), Some(mode)) = (sample.label("cpu"), sample.label("mode")) else {
            continue;
        };
        let times = cpus.entry(cpu.to_owned()).or_default();
        match mode {
            "idle" | "iowait" => times.idle += sample.value,
            "user" | "nice" | "system" | "irq" | "softirq" | "steal" => times.used += sample.value,
            _ => {}
        }
    }
    let memory = Memory {
        total: scrape.sum("node_memory_MemTotal_bytes"),
        free: scrape.sum("node_memory_MemFree_bytes"),
        available: scrape.sum("node_memory_MemAvailable_bytes"),
        buffers: scrape.sum("node_memory_Buffers_bytes"),
        cached: scrape.sum("node_memory_Cached_bytes"),
    };
    let root = |name: &str| {
        scrape
            .series(name)
            .find(|s| s.label("mountpoint") == Some("/"))
            .map(|s| s.value)
    };
    let filesystem = match (
        root("node_filesystem_size_bytes"),
        root("node_filesystem_free_bytes"),
        root("node_filesystem_avail_bytes"),
    ) {
        (Some(size), Some(free), Some(avail)) => Some(Filesystem { size, free, avail }),
        _ => None,
    };
    let not_loopback = |s: &prom::Sample| s.label("device") != Some("lo");
    let net = |name: &str| scrape.sum_where(name, not_loopback);
    let network = net("node_network_receive_bytes_total").map(|receive_bytes| Network {
        receive_bytes,
        receive_packets: net("node_network_receive_packets_total").unwrap_or(0.0),
        receive_errs: net("node_network_receive_errs_total").unwrap_or(0.0),
        receive_drop: net("node_network_receive_drop_total").unwrap_or(0.0),
        transmit_bytes: net("node_network_transmit_bytes_total").unwrap_or(0.0),
        transmit_packets: net("node_network_transmit_packets_total").unwrap_or(0.0),
        transmit_errs: net("node_network_transmit_errs_total").unwrap_or(0.0),
        transmit_drop: net("node_network_transmit_drop_total").unwrap_or(0.0),
    });
    NodeCounters {
        boot_time_seconds: scrape.sum("node_boot_time_seconds"),
        running_pods: None,
        cpus,
        memory,
        filesystem,
        network,
    }
}

/// Usage summed over a pod's containers; `None` when a quantity cannot be read.
pub fn pod_usage(metrics: &PodMetricsObject) -> Option<(u64, u64)> {
    let mut cpu = 0u64;
    let mut memory = 0u64;
    for container in &metrics.containers {
        cpu = cpu.saturating_add(quantity::nanocores(container.usage.get("cpu")?).ok()?);
        memory = memory.saturating_add(quantity::bytes(container.usage.get("memory")?).ok()?);
    }
    Some((cpu, memory))
}

pub fn pod_view(pod: &PodObject, usage: Option<(u64, u64)>) -> Pod {
    let labels = &pod.metadata.labels;
    Pod {
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        creation_timestamp: pod.metadata.creation_timestamp.clone(),
        phase: pod.status.phase.clone(),
        node: pod.spec.node_name.clone(),
        serrano_deployment_uuid: labels.get("serrano_deployment_uuid").cloned(),
        group_id: labels.get("group_id").cloned(),
        start_time: pod.status.start_time.clone(),
        pod_ip: pod.status.pod_ip.clone(),
        host_ip: pod.status.host_ip.clone(),
        restarts: pod
            .status
            .container_statuses
            .iter()
            .map(|c| c.restart_count)
            .sum(),
        usage: usage.map(|(cpu, memory)| PodUsage {
            cpu: quantity::format_nanocores(cpu),
            memory: quantity::format_bytes(memory),
        }),
        cpu_usage_nanocores: usage.map(|(cpu, _)| cpu),
        memory_usage_bytes: usage.map(|(_, memory)| memory),
    }
}

/// `namespace/name` → (nanocores, bytes).
pub type UsageIndex = BTreeMap<(String, String), (u64, u64)>;

pub fn pod_views(pods: &[PodObject], usage: &UsageIndex) -> Vec<Pod> {
    pods.iter()
        .map(|pod| {
            let key = (pod.metadata.namespace.clone(), pod.metadata.name.clone());
            pod_view(pod, usage.get(&key).copied())
        })
        .collect()
}

pub fn running_pods_on(pods: &[PodObject], node: &str) -> u64 {
    pods.iter()
        .filter(|p| p.spec.node_name.as_deref() == Some(node))
        .filter(|p| p.status.phase.as_deref() == Some("Running"))
        .count() as u64
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn selectors_follow_kubernetes_semantics() {
        let labels: BTreeMap<String, String> = [("app", "web"), ("tier", "front")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let requirement = |key: &str, operator: &str, values: &[&str]| SelectorRequirement {
            key: key.to_owned(),
            operator: operator.to_owned(),
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        };
        let mut selector = LabelSelector::default();
        selector
            .match_labels
            .insert("app".to_owned(), "web".to_owned());
        assert!(selector.matches(&labels));
        selector.match_expressions = vec![
            requirement("tier", "In", &["front", "back"]),
            requirement("env", "NotIn", &["prod"]),
            requirement("app", "Exists", &[]),
            requirement("gone", "DoesNotExist", &[]),
        ];
        assert!(selector.matches(&labels));
        selector.match_expressions = vec![requirement("tier", "NotIn", &["front"])];
        assert!(!selector.matches(&labels));
        selector.match_expressions = vec![requirement("tier", "Gt", &["1"])];
        assert!(!selector.matches(&labels));
        selector.match_expressions.clear();
        selector
            .match_labels
            .insert("app".to_owned(), "db".to_owned());
        assert!(!selector.matches(&labels));
    }

    #[test]
    fn node_exporter_counters() {
        let text = "node_boot_time_seconds 1.7e9\n\
            node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 100\n\
            node_cpu_seconds_total{cpu=\"0\",mode=\"iowait\"} 5\n\
            node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 10\n\
            node_cpu_seconds_total{cpu=\"0\",mode=\"system\"} 4\n\
            node_cpu_seconds_total{cpu=\"0\",mode=\"steal\"} 1\n\
            node_cpu_seconds_total{cpu=\"1\",mode=\"idle\"} 90\n\
            node_cpu_seconds_total{cpu=\"1\",mode=\"nice\"} 2\n\
            node_cpu_seconds_total{cpu=\"1\",mode=\"unknown\"} 1000\n\
            node_memory_MemTotal_bytes 8e9\n\
            node_memory_MemAvailable_bytes 6e9\n\
            node_filesystem_size_bytes{mountpoint=\"/boot\"} 1\n\
            node_filesystem_size_bytes{mountpoint=\"/\"} 1000\n\
            node_filesystem_free_bytes{mountpoint=\"/\"} 400\n\
            node_filesystem_avail_bytes{mountpoint=\"/\"} 300\n\
            node_network_receive_bytes_total{device=\"lo\"} 999\n\
            node_network_receive_bytes_total{device=\"eth0\"} 10\n\
            node_network_receive_bytes_total{device=\"cni0\"} 5\n\
            node_network_transmit_errs_total{device=\"eth0\"} 2\n";
        let counters = node_counters(&prom::parse(text).unwrap());
        assert_eq!(counters.boot_time_seconds, Some(1.7e9));
        assert_eq!(
            counters.cpus["0"],
            CpuTimes {
                idle: 105.0,
                used: 15.0
            }
        );
        assert_eq!(
            counters.cpus["1"],
            CpuTimes {
                idle: 90.0,
                used: 2.0
            }
        );
        assert_eq!(counters.memory.total, Some(8e9));
        assert_eq!(counters.memory.free, None);
        assert_eq!(
            counters.filesystem,
            Some(Filesystem {
                size: 1000.0,
                free: 400.0,
                avail: 300.0
            })
        );
        let network = counters.network.unwrap();
        assert_eq!(network.receive_bytes, 15.0);
        assert_eq!(network.transmit_errs, 2.0);
        assert_eq!(network.transmit_bytes, 0.0);
        // Nothing scraped, nothing reported.
        let empty = node_counters(&Scrape::default());
        assert!(empty.cpus.is_empty() && empty.filesystem.is_none() && empty.network.is_none());
    }

    #[test]
    fn inventory_of_a_gpu_worker() {
        let node: NodeObject = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "w1", "labels": {"vaccel": "true", "security-tier": "3"}},
            "status": {
                "capacity": {"cpu": "8", "memory": "32780328Ki", "ephemeral-storage": "102626232Ki",
                    "nvidia.com/gpu": "2", "nvidia.com/gpu.shared": "1", "xilinx.com/fpga-xilinx_u200": "1",
                    "pods": "110"},
                "nodeInfo": {"architecture": "amd64", "kernelVersion": "5.15.0", "osImage": "Ubuntu 22.04.3 LTS",
                    "operatingSystem": "linux", "kubeletVersion": "v1.28.2"}
            }
        }))
        .unwrap();
        let inventory = node_inventory(&node);
        assert_eq!(inventory.node_labels.vaccel, "true");
        assert_eq!(inventory.node_labels.security_tier, 3);
        assert_eq!(inventory.node_capacity.cpu, 8.0);
        assert_eq!(
            inventory.node_capacity.memory,
            (32_780_328u64 * 1024).to_string()
        );
        assert_eq!(
            inventory.node_capacity.node_storage,
            (102_626_232u64 * 1024).to_string()
        );
        assert_eq!(inventory.node_capacity.total_gpu, 3);
        assert_eq!(inventory.node_capacity.total_fpga, 1);
        assert_eq!(inventory.node_info.os_image, "Ubuntu 22.04.3 LTS");
        let bare: NodeObject =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "w2",
            "labels": {"security-tier": "high"}}}))
            .unwrap();
        let inventory = node_inventory(&bare);
        assert_eq!(inventory.node_labels.vaccel, "false");
        assert_eq!(inventory.node_labels.security_tier, 0);
        assert_eq!(inventory.node_capacity.memory, "0");
        assert_eq!(inventory.node_capacity.total_gpu, 0);
    }
}

//! The wire shapes of the probes' inventory and monitoring answers (originals.md 3.5, D6.7
//! 4.4.3.2). The Enhanced Telemetry Agent parses these: field names and nesting are a contract.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::nodes::NodeMetrics;

/// Writes a whole number without a fraction (`4`, not `4.0`): counts of CPUs read better so.
fn whole_if_integral<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        serializer.serialize_i64(*value as i64)
    } else {
        serializer.serialize_f64(*value)
    }
}

/// The two labels SERRANO schedules on (ROT security tiers, vAccel availability).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeLabels {
    /// `"true"` when the node offers vAccel; `"false"` by default.
    pub vaccel: String,
    /// Security tier of the node; 0 by default.
    #[serde(rename = "security-tier")]
    pub security_tier: i64,
}

impl Default for NodeLabels {
    fn default() -> Self {
        Self {
            vaccel: "false".to_owned(),
            security_tier: 0,
        }
    }
}

/// Capacity of a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeCapacity {
    /// CPU cores.
    #[serde(serialize_with = "whole_if_integral")]
    pub cpu: f64,
    /// Memory in bytes, as a decimal string.
    pub memory: String,
    pub total_gpu: u64,
    pub total_fpga: u64,
    /// Size of the node's root (or ephemeral) storage in bytes, as a decimal string.
    pub node_storage: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeInfo {
    /// `amd64`, `arm64`, ...
    pub architecture: String,
    pub kernel_version: String,
    pub os_image: String,
    pub operating_system: String,
}

/// One node of a host or Kubernetes inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeInventory {
    pub node_name: String,
    /// Always `worker`: control-plane nodes are not offered to applications.
    pub node_role: String,
    pub node_labels: NodeLabels,
    pub node_capacity: NodeCapacity,
    pub node_info: NodeInfo,
}

/// A partition as the HPC inventory lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PartitionSummary {
    pub name: String,
    pub total_nodes: u64,
    pub total_cpus: u64,
}

/// A partition's live state (the HPC gateway's `PartitionTelemetry`, originals.md 6.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PartitionTelemetry {
    pub name: String,
    pub total_nodes: u64,
    pub avail_nodes: u64,
    pub total_cpus: u64,
    pub avail_cpus: u64,
    pub running_jobs: u64,
    pub queued_jobs: u64,
}

/// A service (job template) the HPC gateway runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HpcService {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// Inventory of an HPC infrastructure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HpcInventory {
    pub name: String,
    /// `slurm` or `pbs`.
    pub scheduler: String,
    pub services: Vec<HpcService>,
    pub partitions: Vec<PartitionSummary>,
}

/// Monitoring data of an HPC infrastructure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HpcMonitoring {
    pub name: String,
    pub scheduler: String,
    pub partitions: Vec<PartitionTelemetry>,
}

/// One edge storage device of the inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EdgeDeviceInventory {
    pub name: String,
    pub node: String,
    pub cluster_uuid: Uuid,
    pub lat: f64,
    pub lng: f64,
    /// Absent when the device did not answer or reports no disk size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minio_node_disk_total_bytes: Option<f64>,
    /// Present (and false) only when the device did not answer.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub up: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One edge storage device's metrics (D6.7 4.4.3.2 example): `minio_*` fields next to the
/// identity fields, only those the device reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EdgeDeviceMetrics {
    pub cluster_uuid: Uuid,
    pub name: String,
    pub node: String,
    /// `minio_node_disk_total_bytes`, `minio_s3_requests_total`, ...
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub metrics: BTreeMap<String, f64>,
    /// Present (and false) only when the device did not answer; no metrics then.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub up: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

/// A persistent volume of a Kubernetes cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PersistentVolume {
    pub name: String,
    /// The quantity as Kubernetes wrote it (`10Gi`).
    pub capacity_storage: String,
    /// The same in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_storage_bytes: Option<u64>,
}

/// A Kubernetes Deployment's replica counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Deployment {
    pub name: String,
    pub namespace: String,
    pub replicas: u64,
    pub ready_replicas: u64,
    pub available_replicas: u64,
}

/// Current usage of a pod, summed over its containers, as quantities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PodUsage {
    /// Nanocores (`1880507280n`).
    pub cpu: String,
    /// Bytes (`621636Ki`).
    pub memory: String,
}

/// A pod of a Kubernetes cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Pod {
    pub name: String,
    pub namespace: String,
    pub creation_timestamp: Option<String>,
    pub phase: Option<String>,
    pub node: Option<String>,
    /// Label set by the SERRANO Kubernetes driver on the pods of a deployment.
    pub serrano_deployment_uuid: Option<String>,
    pub group_id: Option<String>,
    pub start_time: Option<String>,
    pub pod_ip: Option<String>,
    pub host_ip: Option<String>,
    /// Restarts summed over the containers.
    pub restarts: u64,
    /// From `metrics.k8s.io`; absent when the cluster has no metrics server or no sample yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<PodUsage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_usage_nanocores: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_usage_bytes: Option<u64>,
}

/// Kubernetes monitoring data; which members are present depends on `target`
/// (`resources`: Nodes + PersistentVolumes, `applications`: Deployments + Pods, `all`: all four).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KubernetesMonitoring {
    #[serde(rename = "Nodes", default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<NodeMetrics>>,
    #[serde(
        rename = "PersistentVolumes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub persistent_volumes: Option<Vec<PersistentVolume>>,
    #[serde(
        rename = "Deployments",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub deployments: Option<Vec<Deployment>>,
    #[serde(rename = "Pods", default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<Vec<Pod>>,
}

/// Host monitoring data: this one machine (absent with `target=applications`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HostMonitoring {
    #[serde(rename = "Nodes", default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<NodeMetrics>>,
}

/// What `GET /monitor` answers besides `uuid` and `type`: one member named after the kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub enum MonitoringData {
    #[serde(rename = "host_monitoring_data")]
    Host(HostMonitoring),
    #[serde(rename = "kubernetes_monitoring_data")]
    Kubernetes(KubernetesMonitoring),
    #[serde(rename = "hpc_monitoring_data")]
    Hpc(HpcMonitoring),
    #[serde(rename = "edge_storage_devices")]
    EdgeStorage(Vec<EdgeDeviceMetrics>),
}

/// `GET /monitor`: `{"uuid", "type", "<kind>_monitoring_data" | "edge_storage_devices"}`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MonitorResponse {
    pub uuid: Uuid,
    /// `Probe.Host`, `Probe.HPC`, `Probe.EdgeStorage` or `Probe.k8s`.
    #[serde(rename = "type")]
    pub probe_type: String,
    #[serde(flatten)]
    pub data: MonitoringData,
}

/// `GET /inventory`, by kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Inventory {
    /// Host and Kubernetes probes: the worker nodes.
    Nodes { nodes: Vec<NodeInventory> },
    /// HPC probe: the infrastructure.
    Hpc(HpcInventory),
    /// Edge storage probe: the devices.
    EdgeStorage {
        edge_storage_devices: Vec<EdgeDeviceInventory>,
    },
}

/// `GET /application?deployment=`: the pods of one Kubernetes Deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApplicationResponse {
    pub uuid: Uuid,
    #[serde(rename = "type")]
    pub probe_type: String,
    pub deployment: String,
    #[serde(rename = "Pods")]
    pub pods: Vec<Pod>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn monitor_envelope_names_the_member_after_the_kind() {
        let uuid = Uuid::nil();
        let response = MonitorResponse {
            uuid,
            probe_type: "Probe.EdgeStorage".to_owned(),
            data: MonitoringData::EdgeStorage(vec![EdgeDeviceMetrics {
                cluster_uuid: uuid,
                name: "edge-storage-devices-0".to_owned(),
                node: "worker-02".to_owned(),
                metrics: BTreeMap::from([("minio_s3_requests_total".to_owned(), 3.0)]),
                up: true,
                error: None,
            }]),
        };
        assert_eq!(
            serde_json::to_value(&response).unwrap_or_default(),
            json!({"uuid": uuid, "type": "Probe.EdgeStorage", "edge_storage_devices": [
                {"cluster_uuid": uuid, "name": "edge-storage-devices-0", "node": "worker-02",
                 "minio_s3_requests_total": 3.0}]})
        );
        let host = MonitorResponse {
            uuid,
            probe_type: "Probe.Host".to_owned(),
            data: MonitoringData::Host(HostMonitoring::default()),
        };
        assert_eq!(
            serde_json::to_value(&host).unwrap_or_default(),
            json!({"uuid": uuid, "type": "Probe.Host", "host_monitoring_data": {}})
        );
    }

    #[test]
    fn capacity_writes_whole_cpus_without_fraction() {
        let capacity = NodeCapacity {
            cpu: 4.0,
            memory: "1024".to_owned(),
            total_gpu: 1,
            total_fpga: 0,
            node_storage: "0".to_owned(),
        };
        let text = serde_json::to_string(&capacity).unwrap_or_default();
        assert!(text.contains("\"cpu\":4,"), "{text}");
        let half = NodeCapacity {
            cpu: 0.5,
            ..capacity
        };
        let text = serde_json::to_string(&half).unwrap_or_default();
        assert!(text.contains("\"cpu\":0.5,"), "{text}");
        let labels = serde_json::to_value(NodeLabels::default()).unwrap_or_default();
        assert_eq!(labels, json!({"vaccel": "false", "security-tier": 0}));
    }
}

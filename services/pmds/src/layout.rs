//! Where the telemetry lives: the data contract between the Enhanced Telemetry Agent (writer)
//! and PMDS (reader), after originals.md 3.4.
//!
//! - Cluster data: bucket = the cluster UUID (canonical lowercase text); measurements `nodes`
//!   (tags `node_name`, `group`), `persistentVolumes` (`name`), `pods` (`name`, `namespace`,
//!   `node`, `phase`), `deployments` (`name`, `namespace`), `hpc_partitions`
//!   (`infrastructure_name`, `partition_name`), `edge_storage` (`cluster_uuid`, `node`, `name`).
//! - Bucket `SERRANO_Deployments`, measurement `serrano_deployments` (tags `cluster_uuid`, `node`,
//!   `name`, `deployment_uuid`, `group_id`, `namespace`, `phase`).
//! - Bucket `SERRANO_Deployments_Specific_Metrics`, measurement
//!   `serrano_deployments_specific_metrics` (tags `cluster_uuid`, `deployment_uuid`,
//!   `service_id`; fields = the user's metrics).
//!
//! Numeric fields are numbers (`cpu_usage` in nanocores, `memory_usage` in bytes); `phase` is a
//! tag rather than a string field, so that PromQL backends keep it.

use serde::Deserialize;
use utoipa::ToSchema;

/// Bucket of the per-pod metrics of SERRANO deployments.
pub const DEPLOYMENTS_BUCKET: &str = "SERRANO_Deployments";
/// Bucket of the metrics that deployed services push themselves.
pub const SPECIFIC_METRICS_BUCKET: &str = "SERRANO_Deployments_Specific_Metrics";

/// One kind of monitored entity: its measurement, the tag that names an entity (the key of the
/// `compact` format) and the tags `compact` shows next to the fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entity {
    pub measurement: &'static str,
    pub key_tag: &'static str,
    /// As the original answered: fields, these tags, `time` (D6.7 4.4.3.2 examples).
    pub compact_labels: &'static [&'static str],
}

pub const NODES: Entity = Entity {
    measurement: "nodes",
    key_tag: "node_name",
    compact_labels: &[],
};
pub const PERSISTENT_VOLUMES: Entity = Entity {
    measurement: "persistentVolumes",
    key_tag: "name",
    compact_labels: &[],
};
pub const DEPLOYMENTS: Entity = Entity {
    measurement: "deployments",
    key_tag: "name",
    compact_labels: &[],
};
/// `phase` was a field of the original's compact pods; it is a tag now and shown the same way.
pub const PODS: Entity = Entity {
    measurement: "pods",
    key_tag: "name",
    compact_labels: &["phase"],
};
pub const EDGE_STORAGE: Entity = Entity {
    measurement: "edge_storage",
    key_tag: "name",
    compact_labels: &[],
};
pub const HPC_PARTITIONS: Entity = Entity {
    measurement: "hpc_partitions",
    key_tag: "partition_name",
    compact_labels: &[],
};
pub const SERRANO_DEPLOYMENTS: Entity = Entity {
    measurement: "serrano_deployments",
    key_tag: "name",
    compact_labels: &["group_id", "phase"],
};
pub const SPECIFIC_METRICS: Entity = Entity {
    measurement: "serrano_deployments_specific_metrics",
    key_tag: "service_id",
    compact_labels: &[],
};

/// The measurements of a cluster bucket (any of them makes a cluster known).
pub const CLUSTER_ENTITIES: [Entity; 6] = [
    NODES,
    PODS,
    DEPLOYMENTS,
    PERSISTENT_VOLUMES,
    EDGE_STORAGE,
    HPC_PARTITIONS,
];

/// The `group` tag of `nodes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeGroup {
    /// node_boot_time_seconds, node_total_running_pods
    General,
    /// cpu_<n>_idle, cpu_<n>_used (tag node_cpus)
    Cpu,
    /// node_memory_{Buffers,Cached,MemAvailable,MemFree,MemTotal,MemUsed}_bytes,
    /// node_memory_usage_percentage
    Memory,
    /// node_filesystem_{avail,free,size,used}_bytes, node_filesystem_usage_percentage
    Storage,
    /// node_network_{receive,transmit}_{bytes,drop,errs,packets}_total
    Network,
}

impl NodeGroup {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeGroup::General => "general",
            NodeGroup::Cpu => "cpu",
            NodeGroup::Memory => "memory",
            NodeGroup::Storage => "storage",
            NodeGroup::Network => "network",
        }
    }
}

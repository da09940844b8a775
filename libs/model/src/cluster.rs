//! Clusters (Kubernetes and HPC platforms) registered by their Orchestration Drivers
//! (D6.7 4.2.3.2.1).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::common::JsonObject;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClusterType {
    K8s,
    Hpc,
}

/// Stored at `/serrano/orchestrator/clusters/cluster/{cluster_uuid}`; also the body of
/// `POST /clusters` (register) and `PUT /clusters` (update). `info` is the driver's resource
/// summary: `{nodes: [{name, labels}]}` for Kubernetes, `{name, scheduler, partitions, services}`
/// for HPC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    pub cluster_uuid: Uuid,
    #[serde(rename = "type")]
    pub cluster_type: ClusterType,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub info: JsonObject,
}

/// One row of `GET /clusters` (D6.7 4.2.3.2.1): `last_seen` is the last heartbeat as a string of
/// unix seconds, exactly as the spec's example shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterSummary {
    pub cluster_uuid: Uuid,
    #[serde(rename = "type")]
    pub cluster_type: ClusterType,
    pub last_seen: String,
}

//! Assignment and Bundle objects: the Orchestration Manager's instructions to the drivers
//! (D6.7 4.2.3.2.3 and 4.2.3.2.4).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::common::{LogEntry, UpdatedBy};
use crate::status::{AssignmentStatus, BundleStatus};

/// What an assignment deploys: an application's microservices or a FaaS kernel execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum AssignmentKind {
    Deployment,
    FaaS,
}

/// Stored at `/serrano/orchestrator/assignments/{cluster_uuid}/assignment/{uuid}`; the driver of
/// `cluster_uuid` watches that prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    pub uuid: Uuid,
    pub kind: AssignmentKind,
    pub cluster_uuid: Uuid,
    /// The deployment, or for FaaS the kernel request, this assignment serves.
    pub deployment_uuid: Uuid,
    #[serde(default)]
    pub bundles: Vec<Uuid>,
    pub status: AssignmentStatus,
    pub updated_by: UpdatedBy,
    #[serde(default)]
    pub logs: Vec<LogEntry>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Stored at `/serrano/orchestrator/bundles/bundle/{uuid}`. `description` is the list of
/// Kubernetes documents of one group (Deployment) or `{kind, request_uuid, kernel_name,
/// data_description}` (FaaS).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub uuid: Uuid,
    /// The assignment that lists this bundle. Not in the original objects (they are found through
    /// the assignment's `bundles`); kept so that a bundle watch can filter without a lookup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_uuid: Option<Uuid>,
    pub description: serde_json::Value,
    pub status: BundleStatus,
    pub updated_by: UpdatedBy,
    #[serde(default)]
    pub logs: Vec<LogEntry>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Body of `POST /assignments` and `PUT /assignments` (written by the Orchestration Manager).
/// Server-owned fields (timestamps) are set by the API; `event` is appended to `logs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentWrite {
    /// Required on PUT; generated on POST when left out.
    #[serde(default)]
    pub uuid: Option<Uuid>,
    pub kind: AssignmentKind,
    pub cluster_uuid: Uuid,
    pub deployment_uuid: Uuid,
    /// Left out on PUT: the stored list stays.
    #[serde(default)]
    pub bundles: Option<Vec<Uuid>>,
    #[serde(default)]
    pub status: Option<AssignmentStatus>,
    #[serde(default)]
    pub updated_by: Option<UpdatedBy>,
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub revision: Option<i64>,
}

/// Body of `POST /bundles` and `PUT /bundles`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BundleWrite {
    /// Required on PUT; generated on POST when left out.
    #[serde(default)]
    pub uuid: Option<Uuid>,
    #[serde(default)]
    pub assignment_uuid: Option<Uuid>,
    /// Required on POST; left out on PUT, the stored description stays.
    #[serde(default)]
    pub description: Option<serde_json::Value>,
    #[serde(default)]
    pub status: Option<BundleStatus>,
    #[serde(default)]
    pub updated_by: Option<UpdatedBy>,
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub revision: Option<i64>,
}

//! Deployment objects (D6.7 4.2.3.2.3) and the request bodies that create and update them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::common::{JsonObject, LogEntry, UpdatedBy, unix_now};
use crate::status::{AssignmentStatus, DeploymentStatus};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum DeploymentKind {
    #[default]
    Deployment,
}

/// A cloud-native application deployment as stored at
/// `/serrano/orchestrator/deployments/deployment/{deployment_uuid}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    #[serde(default)]
    pub kind: DeploymentKind,
    pub name: String,
    pub deployment_uuid: Uuid,
    /// Multi-document Kubernetes YAML of the application's microservices.
    pub deployment_description: String,
    /// The application owner's token, passed on to the drivers (not the API's bearer token).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_token: String,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub deployment_objectives: Vec<JsonObject>,
    #[serde(default)]
    pub assignments: Vec<Uuid>,
    /// Parallel to `assignments`.
    #[serde(default)]
    pub assignments_status: Vec<AssignmentStatus>,
    #[serde(default)]
    pub logs: Vec<LogEntry>,
    pub status: DeploymentStatus,
    pub updated_by: UpdatedBy,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Deployment {
    /// A freshly submitted deployment (status SUBMITTED, written by the API).
    pub fn submitted(uuid: Uuid, request: DeploymentRequest) -> Self {
        let now = unix_now();
        Self {
            kind: DeploymentKind::Deployment,
            name: request.name.unwrap_or_else(|| uuid.to_string()),
            deployment_uuid: uuid,
            // The original stripped carriage returns so that YAML written on Windows parses alike.
            deployment_description: request.deployment_description.replace('\r', ""),
            user_token: request.user_token.unwrap_or_default(),
            deployment_objectives: request.deployment_objectives,
            assignments: Vec::new(),
            assignments_status: Vec::new(),
            logs: vec![LogEntry {
                timestamp: now,
                event: "Deployment description received.".to_owned(),
            }],
            status: DeploymentStatus::Submitted,
            updated_by: UpdatedBy::Api,
            created_at: now,
            updated_at: now,
        }
    }

    /// Appends a log entry and moves `updated_at`.
    pub fn push_log(&mut self, event: impl Into<String>) {
        let entry = LogEntry::now(event);
        self.updated_at = entry.timestamp;
        self.logs.push(entry);
    }
}

/// Body of `POST /deployments` (the original's `Deployment` request model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploymentRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub user_token: Option<String>,
    /// Multi-document Kubernetes YAML.
    pub deployment_description: String,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub deployment_objectives: Vec<JsonObject>,
}

/// Body of `PUT /deployments`: re-optimisation of an existing deployment. Fields left out keep
/// their stored value. `revision` (or an `If-Match` header) makes the update conditional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploymentUpdate {
    pub deployment_uuid: Uuid,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub user_token: Option<String>,
    #[serde(default)]
    pub deployment_description: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub deployment_objectives: Option<Vec<JsonObject>>,
    /// The `mod_revision` the client last read; a stale one answers 409.
    #[serde(default)]
    pub revision: Option<i64>,
}

//! Secure storage policies (D6.7 4.2.3.2.2).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::common::{JsonObject, LogEntry, UpdatedBy, unix_now};
use crate::status::PolicyStatus;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum StoragePolicyKind {
    #[default]
    StoragePolicy,
}

/// The ROT's decision: which cloud backends and edge devices hold the data, and how many
/// redundant packets are added. `{}` until the ROT answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyDecision {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backends: Option<Vec<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_devices: Option<Vec<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redundant_packets: Option<u32>,
}

/// Stored at `/serrano/orchestrator/storage_policies/policy/{policy_uuid}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StoragePolicy {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[schema(value_type = Object)]
    pub policy_parameters: JsonObject,
    pub policy_uuid: Uuid,
    #[serde(default)]
    pub kind: StoragePolicyKind,
    #[serde(default)]
    pub decision: PolicyDecision,
    /// The policy's id in the storage gateway; 0 until it is created there.
    #[serde(default)]
    pub cc_policy_id: u64,
    pub status: PolicyStatus,
    #[serde(default)]
    pub logs: Vec<LogEntry>,
    pub updated_by: UpdatedBy,
    pub created_at: i64,
    pub updated_at: i64,
}

impl StoragePolicy {
    pub fn submitted(uuid: Uuid, request: StoragePolicyRequest) -> Self {
        let now = unix_now();
        Self {
            name: request.name.unwrap_or_else(|| uuid.to_string()),
            description: request.description.unwrap_or_default(),
            policy_parameters: request.policy_parameters,
            policy_uuid: uuid,
            kind: StoragePolicyKind::StoragePolicy,
            decision: PolicyDecision::default(),
            cc_policy_id: 0,
            status: PolicyStatus::Submitted,
            logs: vec![LogEntry {
                timestamp: now,
                event: "Storage Policy description received.".to_owned(),
            }],
            updated_by: UpdatedBy::Api,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Body of `POST /storage_policies`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StoragePolicyRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[schema(value_type = Object)]
    pub policy_parameters: JsonObject,
}

/// Body of `PUT /storage_policies` (re-optimisation); fields left out keep their value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StoragePolicyUpdate {
    pub policy_uuid: Uuid,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub policy_parameters: Option<JsonObject>,
    #[serde(default)]
    pub revision: Option<i64>,
}

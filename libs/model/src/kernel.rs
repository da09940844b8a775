//! FaaS and Serverless kernel execution requests (D6.7 4.2.3.2.4).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::common::{JsonObject, LogEntry, UpdatedBy, unix_now};
use crate::status::KernelStatus;

/// "FaaS" for `/faas` requests, "Kernel" for `/kernel(s)` requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum KernelKind {
    FaaS,
    Kernel,
}

/// A kernel execution request as stored at `/serrano/orchestrator/kernels/kernel/{request_uuid}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KernelRequest {
    pub kind: KernelKind,
    pub request_uuid: Uuid,
    pub kernel_name: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub deployment_objectives: JsonObject,
    /// Where the input is (`bucket_id`, `queue_id`, `arguments`, `storage`, `total_size_MB`,
    /// kernel parameters); left open by the spec.
    #[schema(value_type = Object)]
    pub data_description: JsonObject,
    /// The assignment running it; the spec's objects carry `""` until one exists.
    #[serde(
        default,
        serialize_with = "serialize_optional_uuid",
        deserialize_with = "deserialize_optional_uuid"
    )]
    #[schema(value_type = String)]
    pub assignment_uuid: Option<Uuid>,
    #[serde(default)]
    pub logs: Vec<LogEntry>,
    pub status: KernelStatus,
    pub updated_by: UpdatedBy,
    pub created_at: i64,
    pub updated_at: i64,
}

impl KernelRequest {
    pub fn submitted(kind: KernelKind, request_uuid: Uuid, submission: KernelSubmission) -> Self {
        let now = unix_now();
        Self {
            kind,
            request_uuid,
            kernel_name: submission.kernel_name,
            deployment_objectives: submission.deployment_objectives,
            data_description: submission.data_description,
            assignment_uuid: None,
            logs: vec![LogEntry {
                timestamp: now,
                event: "Kernel description received.".to_owned(),
            }],
            status: KernelStatus::Submitted,
            updated_by: UpdatedBy::Api,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Body of `POST /faas` and `POST /kernel(s)` (the original's `Kernel` model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KernelSubmission {
    /// Client-chosen id (the SDK's request uuid). Required for FaaS; for Kernel requests the
    /// `data_description.bucket_id` is used when it is left out, as the original did.
    #[serde(default)]
    pub request_uuid: Option<Uuid>,
    pub kernel_name: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub deployment_objectives: JsonObject,
    #[schema(value_type = Object)]
    pub data_description: JsonObject,
}

fn serialize_optional_uuid<S: Serializer>(value: &Option<Uuid>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(uuid) => s.collect_str(uuid),
        None => s.serialize_str(""),
    }
}

fn deserialize_optional_uuid<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Uuid>, D::Error> {
    let text = Option::<String>::deserialize(d)?;
    match text.as_deref() {
        None | Some("") => Ok(None),
        Some(text) => Uuid::parse_str(text)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

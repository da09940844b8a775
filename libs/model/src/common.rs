//! Pieces shared by every orchestration object.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A free-form JSON object (the parts of the objects the spec leaves open).
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

/// One entry of an object's `logs` list (D6.7 4.2.3.2.2: `{"timestamp": ..., "event": ...}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogEntry {
    /// Unix seconds.
    pub timestamp: i64,
    pub event: String,
}

impl LogEntry {
    pub fn now(event: impl Into<String>) -> Self {
        Self {
            timestamp: unix_now(),
            event: event.into(),
        }
    }
}

/// Which component wrote an object last. The manager and the drivers react only to writes of
/// the component before them in the chain (originals.md 1.3, loop avoidance), so the value is
/// part of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum UpdatedBy {
    #[serde(rename = "Orchestration.API")]
    Api,
    #[serde(rename = "Orchestration.Manager")]
    Manager,
    #[serde(rename = "Orchestration.Driver")]
    Driver,
}

/// Seconds since the Unix epoch (0 if the clock is before it, which only a broken clock does).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

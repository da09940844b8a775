//! The operational-DB collections the handler reads and writes (docs/telemetry.md, "Operational
//! DB"), and the small helpers every handler needs around them.

use serrano_docstore::DocError;
use serrano_service::ApiError;

/// Agents and probes (written by the agents).
pub const ENTITIES: &str = "entities";
/// One document per cluster with its inventory and owning agent (written by the agents).
pub const CLUSTERS: &str = "clusters";
/// `{cluster_uuid, timestamp, state}` per poll (written by the agents).
pub const CLUSTER_STATE_METRICS: &str = "cluster_state_metrics";
/// One document per monitored pod per poll (written by the agents).
pub const CLUSTER_DEPLOYMENT_METRICS: &str = "cluster_deployment_metrics";
/// Users' application metrics pushed through the agents.
pub const DEPLOYMENTS_SPECIFIC_METRICS: &str = "deployments_specific_metrics";
/// The Resource Orchestrator's monitoring entities (written here).
pub const SERRANO_DEPLOYMENTS: &str = "serrano_deployments";
/// Kernel deployment counters per cluster and deployment mode (written here).
pub const SERRANO_KERNEL_DEPLOYMENTS: &str = "serrano_kernel_deployments";
/// KernelMetrics records (written here).
pub const SERRANO_KERNEL_METRICS: &str = "serrano_kernel_metrics";
/// Copy of the storage gateway's `/cloud_locations` (written here).
pub const CLOUD_STORAGE_LOCATIONS: &str = "cloud_storage_locations";
/// Copy of the storage gateway's `/edge_locations` (written here).
pub const EDGE_STORAGE: &str = "edge_storage";
/// Latest streamed sample per (cluster, measurement, tags) (written here).
pub const STREAMING_TELEMETRY: &str = "streaming_telemetry";

/// Entity `type` of an agent.
pub const AGENT_TYPE: &str = "Agent";

/// Maps an operational-DB failure to the wire.
pub fn doc_error(err: DocError) -> ApiError {
    match err {
        DocError::Invalid(message) => ApiError::validation(message),
        DocError::Unavailable(message) => {
            ApiError::unavailable(format!("operational database unavailable: {message}"))
        }
    }
}

pub use serrano_model::common::unix_now;

/// Milliseconds since the Unix epoch.
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Whether `value` can serve as an id (cluster, deployment, probe): 1 to 128 characters out of
/// letters, digits, `.`, `_`, `-` and `:`. Ids end up in agents' URLs, so nothing else is let
/// through.
pub fn is_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

/// Checks an id taken from a request, naming `what` in the error.
pub fn check_id(what: &str, value: &str) -> Result<(), ApiError> {
    if is_id(value) {
        Ok(())
    } else {
        Err(ApiError::validation(format!(
            "invalid {what} {value:?}: expected 1 to 128 letters, digits, '.', '_', '-' or ':'"
        )))
    }
}

/// The string member `field` of a document.
pub fn str_field<'a>(doc: &'a serde_json::Value, field: &str) -> Option<&'a str> {
    doc.get(field).and_then(serde_json::Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(is_id("7628b895-3a91-4f0c-b0b7-033eab309891"));
        assert!(is_id("cluster_a.1:x"));
        assert!(!is_id(""));
        assert!(!is_id("a/b"));
        assert!(!is_id("a b"));
        assert!(!is_id("$where"));
        assert!(!is_id(&"a".repeat(129)));
        assert_eq!(
            check_id("cluster", "../x").unwrap_err().status,
            http::StatusCode::BAD_REQUEST
        );
    }
}

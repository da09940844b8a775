//! The datastore key layout of the original orchestrator (originals.md 1.3; D6.7 4.2.3.2.3 shows
//! the assignment keys). Other components watch these prefixes, so they are part of the contract.

pub const CLUSTERS: &str = "/serrano/orchestrator/clusters/cluster/";
/// Values are plain unix seconds (not JSON), as the original wrote them.
pub const CLUSTER_HEALTH: &str = "/serrano/orchestrator/health/clusters/";
pub const DEPLOYMENTS: &str = "/serrano/orchestrator/deployments/deployment/";
/// Followed by `{cluster_uuid}/assignment/{assignment_uuid}`.
pub const ASSIGNMENTS: &str = "/serrano/orchestrator/assignments/";
pub const BUNDLES: &str = "/serrano/orchestrator/bundles/bundle/";
pub const KERNELS: &str = "/serrano/orchestrator/kernels/kernel/";
pub const STORAGE_POLICIES: &str = "/serrano/orchestrator/storage_policies/policy/";
pub const MONITORING: &str = "/serrano/orchestrator/monitoring/";

/// The id of an assignment under [`ASSIGNMENTS`]: `{cluster_uuid}/assignment/{assignment_uuid}`.
pub fn assignment_id(cluster_uuid: &uuid::Uuid, assignment_uuid: &uuid::Uuid) -> String {
    format!("{cluster_uuid}/assignment/{assignment_uuid}")
}

/// The prefix (under [`ASSIGNMENTS`]) a cluster's driver watches, with the trailing slash so
/// that one cluster never sees another's keys.
pub fn cluster_assignments(cluster_uuid: &uuid::Uuid) -> String {
    format!("{cluster_uuid}/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_key_matches_the_spec_example() {
        let cluster = uuid::Uuid::parse_str("5a075716-7d7d-4b40-9566-bc1a33ee70c2").unwrap();
        let assignment = uuid::Uuid::parse_str("4aae522e-3d56-42a2-b5f7-56d1cc4bef2b").unwrap();
        assert_eq!(
            format!("{ASSIGNMENTS}{}", assignment_id(&cluster, &assignment)),
            "/serrano/orchestrator/assignments/5a075716-7d7d-4b40-9566-bc1a33ee70c2/assignment/4aae522e-3d56-42a2-b5f7-56d1cc4bef2b"
        );
    }
}

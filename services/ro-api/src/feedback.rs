//! How driver reports move a deployment along (originals.md 1.5): a deployment is DEPLOYED once
//! every one of its assignments is, FAILED as soon as one fails, IN_DEPLOYMENT while a driver is
//! working on one. Pure so that the rule is tested on its own.

use serrano_model::{AssignmentStatus, DeploymentStatus};

/// The deployment status implied by its assignments' statuses, or None to keep the current one.
pub fn deployment_status(assignments: &[AssignmentStatus]) -> Option<DeploymentStatus> {
    if assignments.is_empty() {
        return None;
    }
    if assignments.contains(&AssignmentStatus::Failed) {
        return Some(DeploymentStatus::Failed);
    }
    if assignments.iter().all(|s| *s == AssignmentStatus::Deployed) {
        return Some(DeploymentStatus::Deployed);
    }
    if assignments
        .iter()
        .all(|s| *s == AssignmentStatus::Terminated)
    {
        return Some(DeploymentStatus::Terminated);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use AssignmentStatus::{Created, Deployed, Failed, Scheduled, Terminated};

    #[test]
    fn all_deployed_means_deployed() {
        assert_eq!(
            deployment_status(&[Deployed, Deployed]),
            Some(DeploymentStatus::Deployed)
        );
        assert_eq!(deployment_status(&[Deployed, Scheduled]), None);
    }

    #[test]
    fn one_failure_fails_the_deployment() {
        assert_eq!(
            deployment_status(&[Deployed, Failed, Created]),
            Some(DeploymentStatus::Failed)
        );
    }

    #[test]
    fn nothing_to_say_without_assignments() {
        assert_eq!(deployment_status(&[]), None);
        assert_eq!(
            deployment_status(&[Terminated, Terminated]),
            Some(DeploymentStatus::Terminated)
        );
    }
}

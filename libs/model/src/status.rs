//! Status integers of the orchestration objects (originals.md 1.5, the values of the original
//! `status.py`). They travel as integers; `name()` gives the `status_str` form.

use serde_repr::{Deserialize_repr, Serialize_repr};
use utoipa::ToSchema;

macro_rules! status_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $value:literal => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize_repr, Deserialize_repr, ToSchema)]
        #[repr(u8)]
        pub enum $name {
            $($variant = $value),+
        }

        impl $name {
            /// Every value, in integer order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The upper-case name the original used for `status_str`.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn from_int(value: i64) -> Option<Self> {
                match value {
                    $($value => Some($name::$variant),)+
                    _ => None,
                }
            }

            pub fn as_int(self) -> u8 {
                self as u8
            }
        }
    };
}

status_enum!(
    /// Status of a Deployment.
    DeploymentStatus {
        Unknown = 0 => "UNKNOWN",
        Submitted = 1 => "SUBMITTED",
        Pending = 2 => "PENDING",
        Scheduled = 3 => "SCHEDULED",
        Assigned = 4 => "ASSIGNED",
        InDeployment = 5 => "IN_DEPLOYMENT",
        Deployed = 6 => "DEPLOYED",
        Failed = 7 => "FAILED",
        Redeployed = 8 => "REDEPLOYED",
        Terminated = 9 => "TERMINATED",
    }
);

status_enum!(
    /// Status of a StoragePolicy.
    PolicyStatus {
        Unknown = 0 => "UNKNOWN",
        Submitted = 1 => "SUBMITTED",
        Pending = 2 => "PENDING",
        Scheduled = 3 => "SCHEDULED",
        InDeployment = 4 => "IN_DEPLOYMENT",
        Created = 5 => "CREATED",
        Failed = 6 => "FAILED",
        Updated = 7 => "UPDATED",
        Terminated = 8 => "TERMINATED",
    }
);

status_enum!(
    /// Status of a FaaS/Kernel request.
    KernelStatus {
        Unknown = 0 => "UNKNOWN",
        Submitted = 1 => "SUBMITTED",
        Pending = 2 => "PENDING",
        Scheduled = 3 => "SCHEDULED",
        Assigned = 4 => "ASSIGNED",
        InDeployment = 5 => "IN_DEPLOYMENT",
        Deployed = 6 => "DEPLOYED",
        Failed = 7 => "FAILED",
        Finished = 8 => "FINISHED",
    }
);

status_enum!(
    /// Status of an Assignment.
    AssignmentStatus {
        Unknown = 0 => "UNKNOWN",
        Created = 1 => "CREATED",
        Scheduled = 2 => "SCHEDULED",
        Deployed = 3 => "DEPLOYED",
        Failed = 4 => "FAILED",
        Terminated = 5 => "TERMINATED",
    }
);

status_enum!(
    /// Status of a Bundle, including the HPC data-staging and execution steps.
    BundleStatus {
        Unknown = 0 => "UNKNOWN",
        Created = 1 => "CREATED",
        Successful = 2 => "SUCCESSFUL",
        Failed = 3 => "FAILED",
        Terminated = 4 => "TERMINATED",
        HpcDataToGatewayRequested = 5 => "HPC_DATA_TO_GATEWAY_REQUESTED",
        HpcDataToGatewayCompleted = 6 => "HPC_DATA_TO_GATEWAY_COMPLETED",
        HpcDataToGatewayFailed = 7 => "HPC_DATA_TO_GATEWAY_FAILED",
        HpcExecutionRequesting = 8 => "HPC_EXECUTION_REQUESTING",
        HpcExecutionSubmitted = 9 => "HPC_EXECUTION_SUBMITTED",
        HpcExecutionCompleted = 10 => "HPC_EXECUTION_COMPLETED",
        HpcExecutionFailed = 11 => "HPC_EXECUTION_FAILED",
        HpcResultsTransferCompleted = 12 => "HPC_RESULTS_TRANSFER_COMPLETED",
        HpcResultsTransferFailed = 13 => "HPC_RESULTS_TRANSFER_FAILED",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_travel_as_their_integers() {
        assert_eq!(
            serde_json::to_string(&DeploymentStatus::Deployed).unwrap(),
            "6"
        );
        assert_eq!(
            serde_json::from_str::<BundleStatus>("13").unwrap(),
            BundleStatus::HpcResultsTransferFailed
        );
        assert_eq!(serde_json::to_string(&PolicyStatus::Created).unwrap(), "5");
        assert_eq!(KernelStatus::Finished.as_int(), 8);
        assert_eq!(
            AssignmentStatus::from_int(4),
            Some(AssignmentStatus::Failed)
        );
        assert_eq!(AssignmentStatus::from_int(6), None);
        assert_eq!(DeploymentStatus::InDeployment.name(), "IN_DEPLOYMENT");
    }

    #[test]
    fn unknown_integers_are_rejected() {
        assert!(serde_json::from_str::<DeploymentStatus>("10").is_err());
        assert!(serde_json::from_str::<PolicyStatus>("\"CREATED\"").is_err());
        assert!(serde_json::from_str::<BundleStatus>("-1").is_err());
    }

    #[test]
    fn every_value_round_trips() {
        for s in DeploymentStatus::ALL {
            assert_eq!(DeploymentStatus::from_int(i64::from(s.as_int())), Some(*s));
        }
        assert_eq!(BundleStatus::ALL.len(), 14);
        assert_eq!(KernelStatus::ALL.len(), 9);
    }
}

//! The orchestration objects of the SERRANO Resource Orchestrator (D6.7 4.2.3) as they are
//! stored in the datastore and exchanged over REST: [`Deployment`], [`StoragePolicy`],
//! [`KernelRequest`] (FaaS/Kernel), [`Assignment`], [`Bundle`] and [`Cluster`], with their status
//! integers ([`status`]), logs and timestamps.
//!
//! Stored objects reject unknown fields: their shape is fixed by the spec. Free-form parts that
//! the spec leaves open (`policy_parameters`, `data_description`, cluster `info`, bundle
//! `description`) are JSON objects.

pub mod assignment;
pub mod cluster;
pub mod common;
pub mod deployment;
pub mod etcd_keys;
pub mod kernel;
pub mod quantity;
pub mod status;
pub mod storage_policy;

pub use assignment::{Assignment, AssignmentKind, AssignmentWrite, Bundle, BundleWrite};
pub use cluster::{Cluster, ClusterSummary, ClusterType};
pub use common::{JsonObject, LogEntry, UpdatedBy, unix_now};
pub use deployment::{Deployment, DeploymentKind, DeploymentRequest, DeploymentUpdate};
pub use kernel::{KernelKind, KernelRequest, KernelSubmission};
pub use status::{AssignmentStatus, BundleStatus, DeploymentStatus, KernelStatus, PolicyStatus};
pub use storage_policy::{
    PolicyDecision, StoragePolicy, StoragePolicyKind, StoragePolicyRequest, StoragePolicyUpdate,
};

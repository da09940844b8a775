//! HPC infrastructures (clusters reachable over SSH), as registered through `POST /infrastructure`
//! (the original's `Infrastructure` body, originals.md 6.1) or listed in the configuration.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::scheduler::{PartitionTelemetry, SchedulerKind};

/// How the server's host key is checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyCheck {
    /// The key must already be in `known_hosts` (default).
    #[default]
    Strict,
    /// First use pins the key into `known_hosts`; a changed key is refused afterwards.
    AcceptNew,
}

/// The SSH key of an infrastructure: a path on the gateway's machine, never the key itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SshKey {
    /// `ssh-rsa` or `ssh-ed25519` (informational; the file says what it is).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
    #[schema(value_type = String)]
    pub path: PathBuf,
    /// Accepted for compatibility with the original body but must be empty: passphrase-protected
    /// keys need an ssh-agent (`SSH_AUTH_SOCK`), the gateway never stores passphrases.
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
}

/// A registered infrastructure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Infrastructure {
    pub name: String,
    /// Address the gateway connects to.
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub username: String,
    /// The cluster's own name for its login node (informational).
    #[serde(default)]
    pub hostname: String,
    pub scheduler: SchedulerKind,
    pub ssh_key: SshKey,
    /// known_hosts file to check the host key against (default: the user's).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub known_hosts: Option<PathBuf>,
    #[serde(default)]
    pub host_key_check: HostKeyCheck,
    /// Directory on the cluster (relative to the login directory, or absolute) where job scripts
    /// and outputs go.
    #[serde(default = "default_work_dir")]
    pub work_dir: String,
}

fn default_port() -> u16 {
    22
}

fn default_work_dir() -> String {
    "serrano-jobs".to_owned()
}

impl Infrastructure {
    /// Checks what serde cannot: names usable in keys and paths, no passphrase.
    pub fn validate(&self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err("name: 1-64 characters of A-Z a-z 0-9 . _ -".to_owned());
        }
        if self.host.is_empty() || self.host.chars().any(|c| c.is_whitespace() || c == '@') {
            return Err("host: a host name or address".to_owned());
        }
        if self.username.is_empty() || self.username.chars().any(|c| c.is_whitespace() || c == '@')
        {
            return Err("username: a login name".to_owned());
        }
        if self
            .ssh_key
            .password
            .as_deref()
            .is_some_and(|p| !p.is_empty())
        {
            return Err(
                "ssh_key.password: passphrase-protected keys need an ssh-agent (SSH_AUTH_SOCK); the gateway stores no passphrases"
                    .to_owned(),
            );
        }
        if self.work_dir.is_empty() || self.work_dir.contains(['\n', '\0']) {
            return Err("work_dir: a directory path".to_owned());
        }
        Ok(())
    }

    pub fn summary(&self) -> InfrastructureSummary {
        InfrastructureSummary {
            name: self.name.clone(),
            host: self.host.clone(),
            hostname: self.hostname.clone(),
            scheduler: self.scheduler,
        }
    }
}

/// The original's `InfrastructureSummary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InfrastructureSummary {
    pub name: String,
    pub host: String,
    pub hostname: String,
    pub scheduler: SchedulerKind,
}

/// The original's `InfrastructureTelemetry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InfrastructureTelemetry {
    pub name: String,
    pub host: String,
    pub hostname: String,
    pub scheduler: SchedulerKind,
    pub partitions: Vec<PartitionTelemetry>,
}

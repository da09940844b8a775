//! SSH to the clusters: one multiplexed connection (an OpenSSH ControlMaster through the
//! `openssh` crate) per infrastructure, shared by every command, re-established when it breaks.
//! Host keys are checked strictly against the infrastructure's known_hosts file unless the
//! operator configured first-use pinning. Key paths are logged, key contents never.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use openssh::{KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use crate::infrastructure::{HostKeyCheck, Infrastructure};

/// What a remote command printed and how it ended.
#[derive(Debug, Clone)]
pub struct RemoteOutput {
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl RemoteOutput {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The connection could not be made (unreachable, auth refused, host key mismatch).
    #[error("cannot connect to {infrastructure}: {message}")]
    Connect {
        infrastructure: String,
        message: String,
    },
    /// The command could not be started (typically a stale connection).
    #[error("ssh to {infrastructure} failed before the command started: {message}")]
    NotStarted {
        infrastructure: String,
        message: String,
    },
    /// The command's connection broke while it ran.
    #[error("ssh to {infrastructure} failed: {message}")]
    Transport {
        infrastructure: String,
        message: String,
    },
    #[error("command on {infrastructure} timed out after {seconds} s")]
    Timeout {
        infrastructure: String,
        seconds: u64,
    },
}

/// One infrastructure's connection slot: its own lock, so that connecting to one cluster
/// (up to the connect timeout) never holds up commands to the others.
type Slot = Arc<Mutex<Option<Arc<Session>>>>;

/// The pool of connections, one per infrastructure name.
pub struct SshPool {
    sessions: std::sync::Mutex<HashMap<String, Slot>>,
    control_dir: PathBuf,
    connect_timeout: Duration,
    command_timeout: Duration,
    reconnects: AtomicU64,
}

impl SshPool {
    pub fn new(control_dir: PathBuf, connect_timeout: Duration, command_timeout: Duration) -> Self {
        Self {
            sessions: std::sync::Mutex::new(HashMap::new()),
            control_dir,
            connect_timeout,
            command_timeout,
            reconnects: AtomicU64::new(0),
        }
    }

    /// How often a broken connection was replaced (for `/metrics`).
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    async fn connect(&self, infra: &Infrastructure) -> Result<Session, SshError> {
        std::fs::create_dir_all(&self.control_dir).map_err(|err| SshError::Connect {
            infrastructure: infra.name.clone(),
            message: format!("control directory {}: {err}", self.control_dir.display()),
        })?;
        let mut builder = SessionBuilder::default();
        builder
            .user(infra.username.clone())
            .port(infra.port)
            .keyfile(&infra.ssh_key.path)
            .connect_timeout(self.connect_timeout)
            .server_alive_interval(Duration::from_secs(15))
            .control_directory(&self.control_dir)
            .known_hosts_check(match infra.host_key_check {
                HostKeyCheck::Strict => KnownHosts::Strict,
                HostKeyCheck::AcceptNew => KnownHosts::Add,
            });
        if let Some(known_hosts) = &infra.known_hosts {
            builder.user_known_hosts_file(known_hosts);
        }
        let connecting = builder.connect_mux(&infra.host);
        match tokio::time::timeout(self.connect_timeout + Duration::from_secs(5), connecting).await
        {
            Ok(Ok(session)) => Ok(session),
            Ok(Err(err)) => Err(SshError::Connect {
                infrastructure: infra.name.clone(),
                message: serrano_service::error_chain(&err),
            }),
            Err(_) => Err(SshError::Connect {
                infrastructure: infra.name.clone(),
                message: "connection timed out".to_owned(),
            }),
        }
    }

    fn slot(&self, name: &str) -> Slot {
        // A std mutex, held only to look up or insert the slot, never across an await.
        let mut sessions = self
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sessions.entry(name.to_owned()).or_default().clone()
    }

    async fn session(&self, infra: &Infrastructure) -> Result<Arc<Session>, SshError> {
        let slot = self.slot(&infra.name);
        let mut session = slot.lock().await;
        if let Some(existing) = session.as_ref() {
            return Ok(existing.clone());
        }
        let connected = Arc::new(self.connect(infra).await?);
        *session = Some(connected.clone());
        Ok(connected)
    }

    /// Drops a connection (after a failure or when the infrastructure is removed).
    pub async fn forget(&self, name: &str) {
        let slot = {
            let mut sessions = self
                .sessions
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            sessions.remove(name)
        };
        if let Some(slot) = slot {
            slot.lock().await.take();
        }
    }

    /// Runs `command` through the remote login shell, feeding `stdin` if given. A broken
    /// connection is replaced and the command tried once more, so a restarted sshd costs one
    /// reconnect rather than a failed request.
    pub async fn run(
        &self,
        infra: &Infrastructure,
        command: &str,
        stdin: Option<&[u8]>,
    ) -> Result<RemoteOutput, SshError> {
        match self.run_once(infra, command, stdin).await {
            Err(SshError::Transport { .. }) => {
                self.forget(&infra.name).await;
                self.reconnects.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(infrastructure = %infra.name, "ssh connection broken; reconnecting");
                self.run_once(infra, command, stdin).await
            }
            other => other,
        }
    }

    async fn run_once(
        &self,
        infra: &Infrastructure,
        command: &str,
        stdin: Option<&[u8]>,
    ) -> Result<RemoteOutput, SshError> {
        let session = self.session(infra).await?;
        let transport = |message: String| SshError::Transport {
            infrastructure: infra.name.clone(),
            message,
        };
        let work = async {
            let mut remote = session.command("bash");
            remote
                .arg("-lc")
                // `arg` escapes for the remote shell, so the command arrives as one word.
                .arg(command)
                .stdin(if stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = remote
                .spawn()
                .await
                .map_err(|err| transport(serrano_service::error_chain(&err)))?;
            if let Some(bytes) = stdin
                && let Some(mut pipe) = child.stdin().take()
            {
                pipe.write_all(bytes)
                    .await
                    .map_err(|err| transport(err.to_string()))?;
                pipe.shutdown()
                    .await
                    .map_err(|err| transport(err.to_string()))?;
            }
            let output = child
                .wait_with_output()
                .await
                .map_err(|err| transport(serrano_service::error_chain(&err)))?;
            Ok(RemoteOutput {
                exit_code: output.status.code(),
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            })
        };
        match tokio::time::timeout(self.command_timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(SshError::Timeout {
                infrastructure: infra.name.clone(),
                seconds: self.command_timeout.as_secs(),
            }),
        }
    }
}

/// A remote process with piped stdin and stdout, owning its connection (for streaming
/// transfers: the bytes go through the SSH channel, never through a local file).
pub type RemoteChild = openssh::Child<Arc<Session>>;

impl SshPool {
    /// Starts `command` through the remote login shell with stdin and stdout piped. No command
    /// timeout applies: transfers take as long as their data does.
    pub async fn spawn(
        &self,
        infra: &Infrastructure,
        command: &str,
    ) -> Result<RemoteChild, SshError> {
        let session = self.session(infra).await?;
        let spawned = Session::arc_command(session, "bash")
            .arg("-lc")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .await;
        match spawned {
            Ok(child) => Ok(child),
            Err(err) => {
                // The connection may be stale: drop it so that the next call reconnects.
                self.forget(&infra.name).await;
                Err(SshError::Transport {
                    infrastructure: infra.name.clone(),
                    message: serrano_service::error_chain(&err),
                })
            }
        }
    }
}

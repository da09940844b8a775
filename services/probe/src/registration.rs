//! Registration at the Enhanced Telemetry Agent (originals.md 3.1, D6.7 4.4.3):
//! `POST {agent}/api/v1/telemetry/agent/register` with the probe's identity, its callback URL and
//! its inventory. Retried with exponential backoff until the agent accepts it (200/201) or says
//! it already knows the probe (409); the original tried once and gave up.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serrano_service::{Secret, error_chain};
use tokio::sync::watch;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::Probe;
use crate::model::Inventory;
use crate::source::join_url;

/// The agent a probe registers at.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentLink {
    /// Base URL of the Enhanced Telemetry Agent's REST API, e.g. `http://127.0.0.1:7109`.
    pub url: String,
    /// Bearer token of the agent (also sent to its streaming receiver).
    pub token: Secret,
}

/// The registration body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegistrationBody {
    pub cluster_uuid: Uuid,
    pub probe_uuid: Uuid,
    /// 1: the probe can stream (`POST /streaming`).
    pub streaming_telemetry: u8,
    /// Where the agent reaches the probe.
    pub url: String,
    #[serde(rename = "type")]
    pub probe_type: String,
    pub name: String,
    pub inventory: Inventory,
}

/// Registration progress, for `/metrics` and the tests.
#[derive(Debug, Default)]
pub struct RegistrationState {
    pub registered: AtomicBool,
    pub attempts: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

impl RegistrationState {
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// One attempt: the inventory, then the POST.
async fn register_once(
    probe: &Probe,
    agent: &AgentLink,
    client: &reqwest::Client,
) -> Result<u16, String> {
    let timeout = probe.settings().timeout();
    let inventory = probe
        .source
        .inventory(timeout)
        .await
        .map_err(|err| format!("inventory: {err}"))?;
    let body = RegistrationBody {
        cluster_uuid: probe.identity.cluster_uuid,
        probe_uuid: probe.identity.probe_uuid,
        streaming_telemetry: 1,
        url: probe.exposed_url.clone(),
        probe_type: probe.identity.kind.type_name().to_owned(),
        name: probe.identity.name.clone(),
        inventory,
    };
    let url = join_url(&agent.url, "/api/v1/telemetry/agent/register");
    let response = client
        .post(&url)
        .timeout(timeout.max(Duration::from_secs(1)))
        .bearer_auth(agent.token.expose())
        .json(&body)
        .send()
        .await
        .map_err(|err| format!("POST {url}: {}", error_chain(&err)))?;
    let status = response.status().as_u16();
    match status {
        200 | 201 | 409 => Ok(status),
        _ => {
            let text = response.text().await.unwrap_or_default();
            let quoted: String = text.trim().chars().take(300).collect();
            Err(format!("POST {url} answered {status}: {quoted}"))
        }
    }
}

/// Registers until it succeeds or `stop` turns true; waits `first_retry`, doubling up to
/// `max_retry`, between attempts.
pub async fn run(
    probe: Arc<Probe>,
    agent: AgentLink,
    first_retry: Duration,
    max_retry: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let client = reqwest::Client::new();
    let state = &probe.registration;
    let mut wait = first_retry.max(Duration::from_millis(1));
    loop {
        state.attempts.fetch_add(1, Ordering::Relaxed);
        let attempt = tokio::select! {
            outcome = register_once(&probe, &agent, &client) => outcome,
            _ = stop.wait_for(|stopped| *stopped) => return,
        };
        match attempt {
            Ok(status) => {
                state.registered.store(true, Ordering::Relaxed);
                *state
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = None;
                tracing::info!(agent = %agent.url, status, probe_uuid = %probe.identity.probe_uuid,
                    "registered at the telemetry agent");
                return;
            }
            Err(reason) => {
                tracing::warn!(agent = %agent.url, error = %reason,
                    retry_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "registration failed");
                *state
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(reason);
            }
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        wait = (wait * 2).min(max_retry.max(first_retry));
    }
}

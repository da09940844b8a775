//! What every probe kind implements ([`Source`]), its errors, and the HTTP helper the remote
//! kinds share (every call bounded by the collection's `query_timeout`).

use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serrano_service::{Secret, error_chain};
use utoipa::ToSchema;

use crate::model::{Inventory, MonitoringData, Pod};

/// Which part of the monitoring data `GET /monitor` returns (originals.md 3.5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    #[default]
    All,
    /// Nodes (and persistent volumes).
    Resources,
    /// Deployments and pods.
    Applications,
}

impl Target {
    pub fn resources(self) -> bool {
        matches!(self, Self::All | Self::Resources)
    }

    pub fn applications(self) -> bool {
        matches!(self, Self::All | Self::Applications)
    }
}

/// Why a source could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The source (Kubernetes API, HPC gateway, procfs, ...) failed or did not answer in time.
    #[error("{0}")]
    Unavailable(String),
    /// The thing asked about does not exist at the source.
    #[error("{0}")]
    NotFound(String),
    /// This kind of probe has no such data.
    #[error("{0}")]
    Unsupported(String),
}

impl SourceError {
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable(message.into())
    }
}

/// A probe kind: where inventory and monitoring data come from.
#[async_trait]
pub trait Source: Send + Sync {
    /// The resources this probe describes.
    async fn inventory(&self, timeout: Duration) -> Result<Inventory, SourceError>;

    /// Monitoring data now.
    async fn monitor(
        &self,
        timeout: Duration,
        target: Target,
    ) -> Result<MonitoringData, SourceError>;

    /// The pods of one application (Kubernetes Deployment); Kubernetes probes only.
    async fn application(
        &self,
        _timeout: Duration,
        _deployment: &str,
        _namespace: Option<&str>,
    ) -> Result<Vec<Pod>, SourceError> {
        Err(SourceError::Unsupported(
            "applications are monitored by Kubernetes probes only".to_owned(),
        ))
    }
}

/// An HTTP client for the remote sources: bearer tokens, per-call timeouts, errors that say
/// which call failed and why (never the token).
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
}

/// Longest error body quoted in a message.
const QUOTED_BODY: usize = 300;

impl Http {
    pub fn new(client: reqwest::Client) -> Self {
        Self { client }
    }

    /// A plain client (no custom TLS).
    pub fn plain() -> Result<Self, String> {
        reqwest::Client::builder()
            .build()
            .map(Self::new)
            .map_err(|err| error_chain(&err))
    }

    async fn send(
        &self,
        what: &str,
        url: &str,
        token: Option<&Secret>,
        timeout: Duration,
        accept: &'static str,
    ) -> Result<reqwest::Response, SourceError> {
        let mut request = self
            .client
            .get(url)
            .timeout(timeout)
            .header(reqwest::header::ACCEPT, accept);
        if let Some(token) = token.filter(|t| !t.expose().is_empty()) {
            request = request.bearer_auth(token.expose());
        }
        let response = request.send().await.map_err(|err| {
            let reason = if err.is_timeout() {
                format!("no answer within {} ms", timeout.as_millis())
            } else {
                error_chain(&err)
            };
            SourceError::unavailable(format!("{what}: GET {url}: {reason}"))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let quoted: String = body.trim().chars().take(QUOTED_BODY).collect();
        let message = format!("{what}: GET {url} answered {status}: {quoted}");
        if status == reqwest::StatusCode::NOT_FOUND {
            Err(SourceError::NotFound(message))
        } else {
            Err(SourceError::Unavailable(message))
        }
    }

    /// GETs and decodes a JSON document.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        what: &str,
        url: &str,
        token: Option<&Secret>,
        timeout: Duration,
    ) -> Result<T, SourceError> {
        let response = self
            .send(what, url, token, timeout, "application/json")
            .await?;
        let bytes = response.bytes().await.map_err(|err| {
            SourceError::unavailable(format!("{what}: GET {url}: {}", error_chain(&err)))
        })?;
        serde_json::from_slice(&bytes).map_err(|err| {
            SourceError::unavailable(format!("{what}: GET {url}: unexpected answer: {err}"))
        })
    }

    /// GETs a text document (Prometheus metrics).
    pub async fn get_text(
        &self,
        what: &str,
        url: &str,
        token: Option<&Secret>,
        timeout: Duration,
    ) -> Result<String, SourceError> {
        let response = self
            .send(
                what,
                url,
                token,
                timeout,
                "text/plain;version=0.0.4;q=1,*/*;q=0.1",
            )
            .await?;
        response.text().await.map_err(|err| {
            SourceError::unavailable(format!("{what}: GET {url}: {}", error_chain(&err)))
        })
    }
}

/// `base` and `path` joined with exactly one slash.
pub fn join_url(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_urls_and_reads_targets() {
        assert_eq!(join_url("http://a:1/", "/x/y"), "http://a:1/x/y");
        assert_eq!(join_url("http://a:1", "x"), "http://a:1/x");
        assert!(Target::All.resources() && Target::All.applications());
        assert!(Target::Resources.resources() && !Target::Resources.applications());
        assert!(!Target::Applications.resources() && Target::Applications.applications());
    }
}

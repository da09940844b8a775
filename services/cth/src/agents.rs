//! Talking to the Enhanced Telemetry Agents: which agent owns a cluster (from the operational DB)
//! and the HTTP calls the handler forwards to it (D6.7 4.4.2: the handler "manages multiple
//! instances of Enhanced Telemetry Agents").
//!
//! A cluster document names its agent (`agent_uuid`) and probe (`probe_uuid`); the agent's entity
//! document gives its `url`. Older documents without `agent_uuid` are resolved through the probe
//! entity or the agent whose `probes` list holds the probe, as the original did.

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::Value;
use serrano_docstore::{DocStore, Filter, FindOptions};
use serrano_service::{ApiError, Secret};

use crate::store::{self, AGENT_TYPE, CLUSTERS, ENTITIES, doc_error, str_field};

/// Path prefix of every agent route.
pub const AGENT_API: &str = "/api/v1/telemetry/agent";

/// The agent that serves one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRoute {
    pub cluster_uuid: String,
    pub agent_uuid: String,
    /// Base URL, without a trailing slash.
    pub url: String,
    /// The probe of the cluster, when known.
    pub probe_uuid: Option<String>,
}

/// Why a call to an agent failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AgentError {
    /// No registered agent serves the cluster (or its entity has no usable URL).
    #[error("no agent serves cluster {cluster}: {reason}")]
    NoAgent { cluster: String, reason: String },
    /// Connection refused, reset, DNS failure, TLS failure.
    #[error("agent {agent} at {url} is unreachable: {message}")]
    Unreachable {
        agent: String,
        url: String,
        message: String,
    },
    /// No answer within the query timeout.
    #[error("agent {agent} did not answer within {seconds} s")]
    Timeout { agent: String, seconds: u64 },
    /// The agent answered with an error status.
    #[error("agent {agent} answered {status}: {message}")]
    Status {
        agent: String,
        status: u16,
        message: String,
    },
    /// The agent answered 2xx with something that is not JSON.
    #[error("agent {agent} answered an invalid document: {message}")]
    Invalid { agent: String, message: String },
}

impl AgentError {
    /// The answer a client gets: 503 when no agent can be reached, 504 on a timeout, 502 when
    /// the agent answered but failed.
    pub fn to_api(&self) -> ApiError {
        let message = self.to_string();
        match self {
            AgentError::NoAgent { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_agent", message)
            }
            AgentError::Unreachable { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "agent_unreachable",
                message,
            ),
            AgentError::Timeout { .. } => {
                ApiError::new(StatusCode::GATEWAY_TIMEOUT, "agent_timeout", message)
            }
            AgentError::Status { .. } | AgentError::Invalid { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "agent_error", message)
            }
        }
    }
}

/// The cluster document of `cluster_uuid`, or 404.
pub async fn cluster_doc(docs: &dyn DocStore, cluster_uuid: &str) -> Result<Value, ApiError> {
    store::check_id("cluster uuid", cluster_uuid)?;
    docs.find_one(CLUSTERS, &Filter::all().eq("uuid", cluster_uuid))
        .await
        .map_err(doc_error)?
        .ok_or_else(|| ApiError::not_found(format!("cluster {cluster_uuid} not found")))
}

/// Finds the agent that owns `cluster` (a cluster document). `Ok(Err(_))` when the cluster has
/// no reachable owner; the outer error is the operational DB's.
pub async fn route_for(
    docs: &dyn DocStore,
    cluster: &Value,
) -> Result<Result<AgentRoute, AgentError>, ApiError> {
    let cluster_uuid = str_field(cluster, "uuid").unwrap_or_default().to_owned();
    let no_agent = |reason: &str| AgentError::NoAgent {
        cluster: cluster_uuid.clone(),
        reason: reason.to_owned(),
    };
    let mut probe_uuid = str_field(cluster, "probe_uuid").map(str::to_owned);
    let probe = match &probe_uuid {
        Some(uuid) => docs
            .find_one(ENTITIES, &Filter::all().eq("uuid", uuid.as_str()))
            .await
            .map_err(doc_error)?,
        None if !cluster_uuid.is_empty() => {
            let found = docs
                .find(
                    ENTITIES,
                    &Filter::all().eq("cluster_uuid", cluster_uuid.as_str()),
                    &FindOptions::default(),
                )
                .await
                .map_err(doc_error)?
                .into_iter()
                .find(|doc| str_field(doc, "type").is_some_and(|t| t.starts_with("Probe")));
            probe_uuid = found
                .as_ref()
                .and_then(|p| str_field(p, "uuid"))
                .map(str::to_owned);
            found
        }
        None => None,
    };
    let agent_uuid = str_field(cluster, "agent_uuid")
        .or_else(|| probe.as_ref().and_then(|p| str_field(p, "agent_uuid")))
        .map(str::to_owned);
    let agents = docs
        .find(
            ENTITIES,
            &Filter::all().eq("type", AGENT_TYPE),
            &FindOptions::default(),
        )
        .await
        .map_err(doc_error)?;
    let agent = match &agent_uuid {
        Some(uuid) => agents
            .into_iter()
            .find(|a| str_field(a, "uuid") == Some(uuid.as_str())),
        None => probe_uuid.as_ref().and_then(|probe| {
            agents.into_iter().find(|a| {
                a.get("probes")
                    .and_then(Value::as_array)
                    .is_some_and(|list| list.iter().any(|p| p.as_str() == Some(probe.as_str())))
            })
        }),
    };
    let Some(agent) = agent else {
        return Ok(Err(no_agent(match agent_uuid {
            Some(_) => "its agent is not registered",
            None => "the cluster names no agent",
        })));
    };
    let Some(url) = str_field(&agent, "url").and_then(base_url) else {
        return Ok(Err(no_agent("its agent has no http(s) url")));
    };
    Ok(Ok(AgentRoute {
        cluster_uuid,
        agent_uuid: str_field(&agent, "uuid").unwrap_or_default().to_owned(),
        url,
        probe_uuid,
    }))
}

/// `url` without trailing slashes when it is an absolute http(s) URL.
fn base_url(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return None;
    }
    Some(url.trim_end_matches('/').to_owned())
}

/// HTTP client of the agents' REST API.
#[derive(Debug, Clone)]
pub struct AgentClient {
    http: reqwest::Client,
    token: Option<Secret>,
}

impl AgentClient {
    pub fn new(http: reqwest::Client, token: Option<Secret>) -> Self {
        Self { http, token }
    }

    /// Calls `method {agent}{AGENT_API}{path}` with an optional JSON body and query, within
    /// `timeout`; a 2xx answer's JSON (an empty body reads as `{}`).
    pub async fn call(
        &self,
        route: &AgentRoute,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Value, AgentError> {
        let url = format!("{}{AGENT_API}{path}", route.url);
        let mut request = self.http.request(method, &url).timeout(timeout);
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let agent = route.agent_uuid.clone();
        let failed = |err: reqwest::Error| {
            if err.is_timeout() {
                AgentError::Timeout {
                    agent: agent.clone(),
                    seconds: timeout.as_secs(),
                }
            } else {
                AgentError::Unreachable {
                    agent: agent.clone(),
                    url: route.url.clone(),
                    message: serrano_service::error_chain(&err),
                }
            }
        };
        let response = request.send().await.map_err(failed)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(failed)?;
        if !status.is_success() {
            return Err(AgentError::Status {
                agent,
                status: status.as_u16(),
                message: error_message(&bytes),
            });
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Object(serde_json::Map::new()));
        }
        serde_json::from_slice(&bytes).map_err(|err| AgentError::Invalid {
            agent,
            message: err.to_string(),
        })
    }
}

/// The message of an error answer: `{"error": {"message"}}`, `{"error": "..."}`, or the start of
/// the text.
pub fn error_message(bytes: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
        let error = value.get("error");
        if let Some(message) = error
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .or_else(|| error.and_then(Value::as_str))
        {
            return message.to_owned();
        }
    }
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        return "no details".to_owned();
    }
    text.chars().take(300).collect()
}

/// Percent-encodes one path segment (ids are checked already; this keeps a bad stored one
/// from changing the path).
pub fn segment(value: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(value, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages() {
        assert_eq!(
            error_message(br#"{"error":{"code":"not_found","message":"no probe x"}}"#),
            "no probe x"
        );
        assert_eq!(
            error_message(br#"{"error":"Unauthorized access"}"#),
            "Unauthorized access"
        );
        assert_eq!(error_message(b"  "), "no details");
        assert_eq!(error_message(b"boom"), "boom");
    }

    #[test]
    fn base_urls() {
        assert_eq!(
            base_url("http://127.0.0.1:7109/").as_deref(),
            Some("http://127.0.0.1:7109")
        );
        assert_eq!(base_url("ftp://x"), None);
        assert_eq!(base_url("not a url"), None);
    }

    #[test]
    fn statuses() {
        let status = |e: AgentError| e.to_api().status;
        assert_eq!(
            status(AgentError::Timeout {
                agent: "a".into(),
                seconds: 5
            }),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            status(AgentError::Unreachable {
                agent: "a".into(),
                url: "u".into(),
                message: "m".into()
            }),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(AgentError::Status {
                agent: "a".into(),
                status: 500,
                message: "m".into()
            }),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(segment("7628b895-3a91_x.y"), "7628b895-3a91_x.y");
    }
}

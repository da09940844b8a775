//! Streaming telemetry at the agent (D6.7 4.4.3.2 "Streaming telemetry"): sessions opened on a
//! probe through `POST /streaming`, the gRPC sink that stores what probes stream (bucket =
//! cluster_uuid, the sample's measurement and tags) and forwards it to the CTH when configured.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use serrano_docstore::{Filter, FindOptions};
use serrano_service::Secret;
use serrano_telemetry_stream::{
    BatchSink, ReceiverOptions, SenderOptions, SinkError, StreamIdentity, StreamSender, pb,
};
use serrano_timeseries::Point;
use utoipa::ToSchema;

use crate::agent::{Agent, AgentError, STREAMING_SESSIONS, unix_now, valid_id};

/// `POST /streaming` body (the D6.7 4.4.3.2 example).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamingRequest {
    pub cluster_uuid: String,
    /// `start` or `stop`.
    pub action: String,
    /// Seconds between two samples (start).
    #[serde(default)]
    pub reporting_rate: Option<u64>,
    #[serde(default)]
    pub nodes: Vec<String>,
    #[serde(default)]
    pub metrics: Vec<String>,
    /// The session to stop, or a chosen id for a new one.
    #[serde(default)]
    pub session_id: Option<String>,
}

/// The receiver options of the agent's gRPC listener: the REST tokens also guard the stream.
pub fn receiver_options(tokens: &[Secret]) -> ReceiverOptions {
    ReceiverOptions {
        tokens: tokens.iter().map(|t| t.expose().to_owned()).collect(),
        ..ReceiverOptions::default()
    }
}

impl Agent {
    async fn cluster_probe(
        &self,
        cluster_uuid: &str,
    ) -> Result<crate::agent::ProbeEntity, AgentError> {
        valid_id("cluster_uuid", cluster_uuid)?;
        self.probes()
            .await?
            .into_iter()
            .find(|p| p.cluster_uuid == cluster_uuid)
            .ok_or_else(|| {
                AgentError::NotFound(format!(
                    "no probe of cluster {cluster_uuid} is registered here"
                ))
            })
    }

    /// Starts or stops a streaming session on the cluster's probe.
    pub async fn streaming(&self, request: StreamingRequest) -> Result<Value, AgentError> {
        match request.action.as_str() {
            "start" => self.start_streaming(request).await,
            "stop" => {
                let Some(session_id) = request.session_id.clone() else {
                    return Err(AgentError::Invalid("stop needs session_id".into()));
                };
                self.stop_streaming(&session_id).await
            }
            other => Err(AgentError::Invalid(format!(
                "action must be start or stop, not '{other}'"
            ))),
        }
    }

    async fn start_streaming(&self, request: StreamingRequest) -> Result<Value, AgentError> {
        let probe = self.cluster_probe(&request.cluster_uuid).await?;
        let rate = request.reporting_rate.unwrap_or(5);
        if !(1..=3600).contains(&rate) {
            return Err(AgentError::Invalid(
                "reporting_rate must be 1..=3600 seconds".into(),
            ));
        }
        let session_id = request
            .session_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        valid_id("session_id", &session_id)?;
        let body = json!({
            "cluster_uuid": request.cluster_uuid, "action": "start", "reporting_rate": rate,
            "nodes": request.nodes, "metrics": request.metrics, "receiver": self.grpc_url,
            "session_id": session_id,
        });
        let answer = self.post_probe(&probe, "streaming", &body).await?;
        let session = json!({
            "session_id": session_id, "agent_uuid": self.uuid, "cluster_uuid": request.cluster_uuid,
            "probe_uuid": probe.uuid, "reporting_rate": rate, "nodes": request.nodes,
            "metrics": request.metrics, "started_at": unix_now(), "probe_answer": answer,
        });
        self.docs
            .upsert(
                STREAMING_SESSIONS,
                &Filter::all().eq("session_id", session_id.clone()),
                session.clone(),
            )
            .await?;
        Ok(session)
    }

    async fn stop_streaming(&self, session_id: &str) -> Result<Value, AgentError> {
        valid_id("session_id", session_id)?;
        let filter = Filter::all()
            .eq("session_id", session_id.to_owned())
            .eq("agent_uuid", self.uuid.clone());
        let Some(session) = self.docs.find_one(STREAMING_SESSIONS, &filter).await? else {
            return Err(AgentError::NotFound(format!(
                "streaming session {session_id} not found"
            )));
        };
        let probe_uuid = session
            .get("probe_uuid")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Ok(probe) = self.probe(probe_uuid).await {
            let url = format!(
                "{}/api/v1/telemetry/probe/streaming/{session_id}",
                probe.url
            );
            let request = self
                .http
                .delete(url)
                .timeout(Duration::from_secs(self.settings().query_timeout.max(1)));
            let request = match self.probe_token() {
                Some(token) => request.bearer_auth(token),
                None => request,
            };
            // A probe that forgot the session (restarted) has nothing to stop.
            match request.send().await {
                Ok(r)
                    if r.status().is_success() || r.status() == reqwest::StatusCode::NOT_FOUND => {}
                Ok(r) => {
                    return Err(AgentError::Probe(format!(
                        "probe {probe_uuid} answered {}",
                        r.status()
                    )));
                }
                Err(err) => {
                    return Err(AgentError::Probe(format!(
                        "probe {probe_uuid} unreachable: {err}"
                    )));
                }
            }
        }
        self.docs.delete_many(STREAMING_SESSIONS, &filter).await?;
        Ok(json!({"session_id": session_id, "status": "stopped"}))
    }

    pub async fn streaming_sessions(&self) -> Result<Vec<Value>, AgentError> {
        let filter = Filter::all().eq("agent_uuid", self.uuid.clone());
        Ok(self
            .docs
            .find(STREAMING_SESSIONS, &filter, &FindOptions::default())
            .await?)
    }

    async fn post_probe(
        &self,
        probe: &crate::agent::ProbeEntity,
        path: &str,
        body: &Value,
    ) -> Result<Value, AgentError> {
        let url = format!("{}/api/v1/telemetry/probe/{path}", probe.url);
        let request = self
            .http
            .post(url)
            .timeout(Duration::from_secs(self.settings().query_timeout.max(1)))
            .json(body);
        let request = match self.probe_token() {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request
            .send()
            .await
            .map_err(|err| AgentError::Probe(format!("probe {} unreachable: {err}", probe.uuid)))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(AgentError::Probe(format!(
                "probe {} answered {status}: {answer}",
                probe.uuid
            )));
        }
        Ok(answer)
    }

    /// Stores one streamed batch and forwards it upwards.
    async fn accept_batch(&self, batch: pb::MetricBatch) -> Result<(), AgentError> {
        valid_id("cluster_uuid", &batch.cluster_uuid)?;
        let points: Vec<Point> = serrano_telemetry_stream::points::batch_points(&batch);
        if !points.is_empty() {
            self.write_points(&batch.cluster_uuid, &points).await?;
        }
        self.count_streamed(batch.samples.len() as u64);
        if let Some(central) = &self.central {
            let mut upstream = self.upstream.lock().await;
            if !upstream.contains_key(&batch.cluster_uuid) {
                let sender = StreamSender::start(
                    central.grpc_url.clone(),
                    StreamIdentity {
                        source_uuid: self.uuid.clone(),
                        cluster_uuid: batch.cluster_uuid.clone(),
                        session_id: format!("agent-{}", self.uuid),
                    },
                    SenderOptions {
                        token: central.token.as_ref().map(|t| t.expose().to_owned()),
                        ..SenderOptions::default()
                    },
                )
                .map_err(|err| AgentError::Probe(format!("cannot stream to the CTH: {err}")))?;
                upstream.insert(batch.cluster_uuid.clone(), sender);
            }
            if let Some(sender) = upstream.get(&batch.cluster_uuid) {
                // The sender buffers and drops the oldest when the CTH is away; a rejected
                // batch (over its limits) is only logged: the samples are stored here already.
                if let Err(err) = sender.send(batch.samples) {
                    tracing::warn!(error = %err, "samples not forwarded to the CTH");
                }
            }
        }
        Ok(())
    }
}

/// The agent as a gRPC batch sink.
pub struct AgentSink {
    agent: Arc<Agent>,
}

impl AgentSink {
    pub fn new(agent: Arc<Agent>) -> AgentSink {
        AgentSink { agent }
    }
}

#[async_trait]
impl BatchSink for AgentSink {
    async fn accept(&self, batch: pb::MetricBatch) -> Result<(), SinkError> {
        self.agent
            .accept_batch(batch)
            .await
            .map_err(|err| SinkError::new(err.to_string()))
    }
}

//! The agent's domain: probe registry, polling, persistence of state and history, notifications
//! (originals.md 3.3 with its bugs fixed: probes are called with credentials, polls run
//! concurrently with a timeout each, history is written in one batch per round).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use serrano_bus::{NOTIFICATION_MESSAGES_TOPIC, StreamHandler, TELEMETRY_NOTIFICATIONS_TOPIC};
use serrano_docstore::{DocError, DocStore, Filter, FindOptions};
use serrano_service::Secret;
use serrano_timeseries::{Point, TimeSeriesStore, TsError};
use utoipa::ToSchema;

use crate::convert::{self, DEPLOYMENTS_BUCKET, SPECIFIC_METRICS_BUCKET};
use crate::{Backends, CentralLink, Config};

/// Operational-DB collections (docs/telemetry.md).
pub const ENTITIES: &str = "entities";
pub const CLUSTERS: &str = "clusters";
pub const CLUSTER_STATE_METRICS: &str = "cluster_state_metrics";
pub const CLUSTER_DEPLOYMENT_METRICS: &str = "cluster_deployment_metrics";
pub const AGENT_DEPLOYMENTS: &str = "agent_deployments";
pub const SPECIFIC_METRICS: &str = "deployments_specific_metrics";
pub const STREAMING_SESSIONS: &str = "streaming_sessions";

/// Probe types of the registration body (originals.md 3.1; `Probe.Host` is this project's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ProbeType {
    #[serde(rename = "Probe.k8s")]
    K8s,
    #[serde(rename = "Probe.HPC")]
    Hpc,
    #[serde(rename = "Probe.EdgeStorage")]
    EdgeStorage,
    #[serde(rename = "Probe.Host")]
    Host,
}

impl ProbeType {
    /// The `type` of the cluster the probe watches.
    pub fn cluster_type(self) -> &'static str {
        match self {
            ProbeType::K8s => "k8s",
            ProbeType::Hpc => "hpc",
            ProbeType::EdgeStorage => "edge_storage",
            ProbeType::Host => "host",
        }
    }
}

/// `POST /register` body (originals.md 3.1).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeRegistration {
    pub cluster_uuid: String,
    pub probe_uuid: String,
    /// 1 when the probe can stream (gRPC), else 0.
    #[serde(default)]
    pub streaming_telemetry: u8,
    /// The probe's REST base URL.
    pub url: String,
    #[serde(rename = "type")]
    pub probe_type: ProbeType,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub inventory: Value,
}

/// `PUT /register/{uuid}` body: the fields a probe may change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeUpdate {
    pub url: Option<String>,
    pub name: Option<String>,
    pub streaming_telemetry: Option<u8>,
    #[schema(value_type = Option<Object>)]
    pub inventory: Option<Value>,
}

/// A registered probe as stored in `entities`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProbeEntity {
    pub uuid: String,
    #[serde(rename = "type")]
    pub probe_type: ProbeType,
    pub url: String,
    pub cluster_uuid: String,
    pub agent_uuid: String,
    pub name: String,
    pub streaming_telemetry: u8,
    /// "UP" or "DOWN" as last seen by the agent.
    pub status: String,
    pub registered_at: i64,
    pub last_seen: Option<i64>,
}

/// The runtime settings `GET|PUT|POST /api/v1/telemetry/agent` shows and changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Settings {
    pub query_interval: u64,
    pub query_timeout: u64,
    pub retain_data_period: u64,
    pub active_monitoring: bool,
    pub active_notifications: bool,
    pub active_application: bool,
}

/// A partial settings change; `data_retain_period` is the D6.7 4.4.3.2 example's name.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    pub query_interval: Option<u64>,
    pub query_timeout: Option<u64>,
    #[serde(alias = "data_retain_period")]
    pub retain_data_period: Option<u64>,
    pub active_monitoring: Option<bool>,
    pub active_notifications: Option<bool>,
    pub active_application: Option<bool>,
}

impl Settings {
    pub fn from_config(config: &Config) -> Settings {
        Settings {
            query_interval: config.query_interval,
            query_timeout: config.query_timeout,
            retain_data_period: config.retain_data_period,
            active_monitoring: config.active_monitoring,
            active_notifications: config.active_notifications,
            active_application: config.active_application,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(1..=86_400).contains(&self.query_interval) {
            return Err("query_interval must be 1..=86400 seconds".into());
        }
        if !(1..=300).contains(&self.query_timeout) {
            return Err("query_timeout must be 1..=300 seconds".into());
        }
        if self.query_timeout > self.query_interval.max(1) * 10 {
            return Err("query_timeout must not exceed 10 query intervals".into());
        }
        if !(1..=31_536_000).contains(&self.retain_data_period) {
            return Err("retain_data_period must be 1..=31536000 seconds".into());
        }
        Ok(())
    }

    fn apply(&self, patch: &SettingsPatch) -> Settings {
        Settings {
            query_interval: patch.query_interval.unwrap_or(self.query_interval),
            query_timeout: patch.query_timeout.unwrap_or(self.query_timeout),
            retain_data_period: patch.retain_data_period.unwrap_or(self.retain_data_period),
            active_monitoring: patch.active_monitoring.unwrap_or(self.active_monitoring),
            active_notifications: patch
                .active_notifications
                .unwrap_or(self.active_notifications),
            active_application: patch.active_application.unwrap_or(self.active_application),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The probe failed or answered badly.
    #[error("{0}")]
    Probe(String),
    /// The probe did not answer within query_timeout.
    #[error("{0}")]
    ProbeTimeout(String),
    #[error("operational database: {0}")]
    Docs(#[from] DocError),
    #[error("time-series store: {0}")]
    Series(#[from] TsError),
}

#[derive(Default)]
struct Counters {
    polls_ok: AtomicU64,
    polls_failed: AtomicU64,
    rounds: AtomicU64,
    points_written: AtomicU64,
    series_write_errors: AtomicU64,
    notifications: AtomicU64,
    notification_errors: AtomicU64,
    streamed_samples: AtomicU64,
}

/// What the handlers, the poller and the gRPC sink share.
pub struct Agent {
    pub uuid: String,
    pub url: String,
    pub grpc_url: String,
    pub docs: Arc<dyn DocStore>,
    pub series: Arc<dyn TimeSeriesStore>,
    pub bus: Arc<dyn StreamHandler>,
    pub http: reqwest::Client,
    probe_token: Option<Secret>,
    pub(crate) central: Option<CentralLink>,
    settings: RwLock<Settings>,
    /// Last known status per probe uuid (true = UP), to notify on transitions only.
    health: Mutex<HashMap<String, bool>>,
    counters: Counters,
    /// Wakes the poller early (settings changed).
    pub(crate) wake: tokio::sync::Notify,
    max_concurrent_polls: usize,
    /// Serialises read-modify-writes of the agent's own entity.
    entity_lock: tokio::sync::Mutex<()>,
    pub(crate) upstream:
        tokio::sync::Mutex<HashMap<String, serrano_telemetry_stream::StreamSender>>,
}

pub use serrano_model::common::unix_now;

/// Identifiers used as keys and tags: non-empty, bounded, no control or path characters.
pub fn valid_id(kind: &str, id: &str) -> Result<(), AgentError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        Err(AgentError::Invalid(format!(
            "{kind} must be 1-128 characters of letters, digits, '-', '_', '.', ':'"
        )))
    }
}

fn valid_url(url: &str) -> Result<(), AgentError> {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => {
            Ok(())
        }
        _ => Err(AgentError::Invalid(format!(
            "url '{url}' is not an http(s) URL"
        ))),
    }
}

fn from_doc<T: serde::de::DeserializeOwned>(doc: Value) -> Option<T> {
    match serde_json::from_value(doc) {
        Ok(v) => Some(v),
        Err(err) => {
            tracing::warn!(error = %err, "skipping a malformed document in the operational DB");
            None
        }
    }
}

fn to_doc<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

impl Agent {
    pub async fn new(
        config: &Config,
        backends: Backends,
        rest: SocketAddr,
        grpc: SocketAddr,
    ) -> anyhow::Result<Agent> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(config.query_timeout.max(1)))
            .build()?;
        let agent = Agent {
            uuid: config.resolved_agent_uuid(),
            url: config
                .exposed_url
                .clone()
                .unwrap_or_else(|| format!("http://{rest}")),
            grpc_url: config
                .grpc_exposed_url
                .clone()
                .unwrap_or_else(|| format!("http://{grpc}")),
            docs: backends.docs,
            series: backends.series,
            bus: backends.bus,
            http,
            probe_token: config.probe_token.clone(),
            central: config.central.clone(),
            settings: RwLock::new(Settings::from_config(config)),
            health: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            wake: tokio::sync::Notify::new(),
            max_concurrent_polls: config.max_concurrent_polls.max(1),
            entity_lock: tokio::sync::Mutex::new(()),
            upstream: tokio::sync::Mutex::new(HashMap::new()),
        };
        // Known probe states survive a restart: no duplicate DOWN for a probe still down.
        for probe in agent.probes().await? {
            agent.set_health_quiet(&probe.uuid, probe.status == "UP");
        }
        Ok(agent)
    }

    pub fn settings(&self) -> Settings {
        self.settings
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    pub fn update_settings(&self, patch: &SettingsPatch) -> Result<Settings, AgentError> {
        let next = self.settings().apply(patch);
        next.validate().map_err(AgentError::Invalid)?;
        match self.settings.write() {
            Ok(mut s) => *s = next.clone(),
            Err(poisoned) => *poisoned.into_inner() = next.clone(),
        }
        self.wake.notify_one();
        Ok(next)
    }

    /// Records this agent in `entities` and says it is UP.
    pub async fn announce(&self) {
        let doc = json!({
            "uuid": self.uuid, "type": "Agent", "url": self.url, "grpc_url": self.grpc_url,
            "probes": [], "timestamp": unix_now(),
        });
        if let Err(err) = self.refresh_agent_entity(Some(doc)).await {
            tracing::warn!(error = %err, "could not record the agent entity");
        }
        self.notify_entity(&self.uuid.clone(), "UP", "Agent").await;
    }

    pub async fn shutdown(&self) {
        self.notify_entity(&self.uuid.clone(), "DOWN", "Agent")
            .await;
        let senders: Vec<_> = self.upstream.lock().await.drain().collect();
        for (_, sender) in senders {
            sender.close(Duration::from_secs(2)).await;
        }
    }

    /// Upserts the agent's entity with its current probe list.
    async fn refresh_agent_entity(&self, base: Option<Value>) -> Result<(), AgentError> {
        let _serialised = self.entity_lock.lock().await;
        let filter = Filter::all()
            .eq("uuid", self.uuid.clone())
            .eq("type", "Agent");
        let mut doc = match base {
            Some(doc) => doc,
            None => self.docs.find_one(ENTITIES, &filter).await?.unwrap_or_else(|| {
                json!({"uuid": self.uuid, "type": "Agent", "url": self.url, "grpc_url": self.grpc_url})
            }),
        };
        let probes: Vec<String> = self.probes().await?.into_iter().map(|p| p.uuid).collect();
        doc["probes"] = json!(probes);
        doc["timestamp"] = json!(unix_now());
        self.docs.upsert(ENTITIES, &filter, doc).await?;
        Ok(())
    }

    /// Adds or removes one probe in the agent entity's list (a full rebuild per registration
    /// would make registering N probes cost N²).
    async fn update_agent_probes(&self, probe_uuid: &str, present: bool) -> Result<(), AgentError> {
        let _serialised = self.entity_lock.lock().await;
        let filter = Filter::all()
            .eq("uuid", self.uuid.clone())
            .eq("type", "Agent");
        let mut doc = self.docs.find_one(ENTITIES, &filter).await?.unwrap_or_else(|| {
            json!({"uuid": self.uuid, "type": "Agent", "url": self.url, "grpc_url": self.grpc_url, "probes": []})
        });
        let mut probes: Vec<String> = doc
            .get("probes")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let known = probes.iter().any(|p| p == probe_uuid);
        match (present, known) {
            (true, false) => probes.push(probe_uuid.to_owned()),
            (false, true) => probes.retain(|p| p != probe_uuid),
            _ => return Ok(()),
        }
        doc["probes"] = json!(probes);
        doc["timestamp"] = json!(unix_now());
        self.docs.upsert(ENTITIES, &filter, doc).await?;
        Ok(())
    }

    pub async fn ready(&self) -> Result<(), String> {
        self.docs
            .find(
                ENTITIES,
                &Filter::all().eq("uuid", self.uuid.clone()),
                &FindOptions::default(),
            )
            .await
            .map(|_| ())
            .map_err(|err| err.to_string())
    }

    // ---- registry

    fn probe_filter(&self, uuid: &str) -> Filter {
        Filter::all()
            .eq("uuid", uuid.to_owned())
            .eq("agent_uuid", self.uuid.clone())
    }

    /// Probes registered with this agent.
    pub async fn probes(&self) -> Result<Vec<ProbeEntity>, AgentError> {
        let filter = Filter::all().eq("agent_uuid", self.uuid.clone());
        let docs = self
            .docs
            .find(ENTITIES, &filter, &FindOptions::default())
            .await?;
        Ok(docs
            .into_iter()
            .filter(|d| {
                d.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.starts_with("Probe."))
            })
            .filter_map(from_doc)
            .collect())
    }

    pub async fn probe(&self, uuid: &str) -> Result<ProbeEntity, AgentError> {
        valid_id("probe uuid", uuid)?;
        self.docs
            .find_one(ENTITIES, &self.probe_filter(uuid))
            .await?
            .and_then(from_doc)
            .ok_or_else(|| AgentError::NotFound(format!("probe {uuid} is not registered")))
    }

    /// Registers (or re-registers) a probe and its cluster; notifies UP.
    pub async fn register(
        &self,
        registration: ProbeRegistration,
    ) -> Result<ProbeEntity, AgentError> {
        valid_id("probe_uuid", &registration.probe_uuid)?;
        valid_id("cluster_uuid", &registration.cluster_uuid)?;
        valid_url(&registration.url)?;
        if registration.streaming_telemetry > 1 {
            return Err(AgentError::Invalid(
                "streaming_telemetry must be 0 or 1".into(),
            ));
        }
        // One probe per cluster: the CTH reaches a cluster through its probe.
        let cluster_filter = Filter::all().eq("uuid", registration.cluster_uuid.clone());
        if let Some(cluster) = self.docs.find_one(CLUSTERS, &cluster_filter).await? {
            let owner = cluster
                .get("probe_uuid")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if owner != registration.probe_uuid {
                let owner_alive = self
                    .docs
                    .find_one(ENTITIES, &Filter::all().eq("uuid", owner.to_owned()))
                    .await?
                    .is_some();
                if owner_alive {
                    return Err(AgentError::Conflict(format!(
                        "cluster {} is already monitored by probe {owner}",
                        registration.cluster_uuid
                    )));
                }
            }
        }
        let now = unix_now();
        let previous = self
            .docs
            .find_one(
                ENTITIES,
                &Filter::all().eq("uuid", registration.probe_uuid.clone()),
            )
            .await?
            .and_then(from_doc::<ProbeEntity>);
        let entity = ProbeEntity {
            uuid: registration.probe_uuid.clone(),
            probe_type: registration.probe_type,
            url: registration.url.trim_end_matches('/').to_owned(),
            cluster_uuid: registration.cluster_uuid.clone(),
            agent_uuid: self.uuid.clone(),
            name: registration
                .name
                .clone()
                .unwrap_or_else(|| registration.cluster_uuid.clone()),
            streaming_telemetry: registration.streaming_telemetry,
            status: "UP".into(),
            registered_at: previous.as_ref().map_or(now, |p| p.registered_at),
            last_seen: Some(now),
        };
        self.docs
            .upsert(
                ENTITIES,
                &Filter::all().eq("uuid", entity.uuid.clone()),
                to_doc(&entity),
            )
            .await?;
        self.store_cluster(&entity, registration.inventory).await?;
        self.update_agent_probes(&entity.uuid, true).await?;
        self.set_health(&entity.uuid, true).await;
        // Poll it now rather than a query_interval later: data appears at once.
        self.wake.notify_one();
        Ok(entity)
    }

    async fn store_cluster(&self, probe: &ProbeEntity, inventory: Value) -> Result<(), AgentError> {
        let doc = json!({
            "uuid": probe.cluster_uuid,
            "type": probe.probe_type.cluster_type(),
            "name": probe.name,
            "agent_uuid": self.uuid,
            "probe_uuid": probe.uuid,
            "inventory": inventory,
            "timestamp": unix_now(),
        });
        self.docs
            .upsert(
                CLUSTERS,
                &Filter::all().eq("uuid", probe.cluster_uuid.clone()),
                doc,
            )
            .await?;
        Ok(())
    }

    pub async fn update_probe(
        &self,
        uuid: &str,
        update: ProbeUpdate,
    ) -> Result<ProbeEntity, AgentError> {
        let mut probe = self.probe(uuid).await?;
        if let Some(url) = update.url {
            valid_url(&url)?;
            probe.url = url.trim_end_matches('/').to_owned();
        }
        if let Some(name) = update.name {
            probe.name = name;
        }
        if let Some(streaming) = update.streaming_telemetry {
            if streaming > 1 {
                return Err(AgentError::Invalid(
                    "streaming_telemetry must be 0 or 1".into(),
                ));
            }
            probe.streaming_telemetry = streaming;
        }
        self.docs
            .upsert(ENTITIES, &self.probe_filter(uuid), to_doc(&probe))
            .await?;
        if let Some(inventory) = update.inventory {
            self.store_cluster(&probe, inventory).await?;
        }
        Ok(probe)
    }

    /// Removes a probe (its cluster's history stays); notifies DOWN.
    pub async fn deregister(&self, uuid: &str) -> Result<ProbeEntity, AgentError> {
        let probe = self.probe(uuid).await?;
        self.docs
            .delete_many(ENTITIES, &self.probe_filter(uuid))
            .await?;
        self.docs
            .delete_many(
                CLUSTERS,
                &Filter::all()
                    .eq("uuid", probe.cluster_uuid.clone())
                    .eq("probe_uuid", uuid.to_owned()),
            )
            .await?;
        self.update_agent_probes(uuid, false).await?;
        if let Ok(mut health) = self.health.lock() {
            health.remove(uuid);
        }
        self.notify_entity(uuid, "DOWN", "Probe").await;
        Ok(probe)
    }

    // ---- probe calls

    pub(crate) fn probe_token(&self) -> Option<&str> {
        self.probe_token.as_ref().map(Secret::expose)
    }

    fn probe_request(&self, url: String) -> reqwest::RequestBuilder {
        let timeout = Duration::from_secs(self.settings().query_timeout.max(1));
        let request = self.http.get(url).timeout(timeout);
        match &self.probe_token {
            Some(token) => request.bearer_auth(token.expose()),
            None => request,
        }
    }

    async fn call_probe(
        &self,
        probe: &ProbeEntity,
        path_and_query: &str,
    ) -> Result<Value, AgentError> {
        let url = format!("{}/api/v1/telemetry/probe/{path_and_query}", probe.url);
        let response = self.probe_request(url).send().await.map_err(|err| {
            if err.is_timeout() {
                AgentError::ProbeTimeout(format!("probe {} did not answer in time", probe.uuid))
            } else {
                AgentError::Probe(format!("probe {} unreachable: {err}", probe.uuid))
            }
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(AgentError::Probe(format!(
                "probe {} answered {status}",
                probe.uuid
            )));
        }
        response.json::<Value>().await.map_err(|err| {
            AgentError::Probe(format!(
                "probe {} sent an unreadable answer: {err}",
                probe.uuid
            ))
        })
    }

    /// `GET /monitor` of one probe, persisted like a poll when it is the full picture.
    pub async fn monitor(
        &self,
        probe: &ProbeEntity,
        target: Option<&str>,
    ) -> Result<Value, AgentError> {
        let path = match target {
            Some(t) => format!("monitor?target={t}"),
            None => "monitor".to_owned(),
        };
        let result = self.call_probe(probe, &path).await;
        self.after_poll(probe, result.is_ok()).await;
        let state = result?;
        if matches!(target, None | Some("all")) {
            let round = self.collect(&[(probe.clone(), state.clone())]).await;
            self.persist(round).await?;
        }
        Ok(state)
    }

    /// `GET /inventory` of one probe; the cluster's stored inventory is refreshed.
    pub async fn inventory(&self, probe: &ProbeEntity) -> Result<Value, AgentError> {
        let result = self.call_probe(probe, "inventory").await;
        self.after_poll(probe, result.is_ok()).await;
        let inventory = result?;
        self.store_cluster(probe, inventory.clone()).await?;
        Ok(inventory)
    }

    // ---- polling

    /// One round: every probe concurrently, then one batched write per store.
    pub async fn poll_round(&self) -> Result<(), AgentError> {
        self.counters.rounds.fetch_add(1, Ordering::Relaxed);
        let probes = self.probes().await?;
        let results: Vec<(ProbeEntity, Result<Value, AgentError>)> = futures::stream::iter(probes)
            .map(|probe| async move {
                let result = self.call_probe(&probe, "monitor").await;
                (probe, result)
            })
            .buffer_unordered(self.max_concurrent_polls)
            .collect()
            .await;
        let mut good = Vec::new();
        for (probe, result) in results {
            self.after_poll(&probe, result.is_ok()).await;
            match result {
                Ok(state) => good.push((probe, state)),
                Err(err) => tracing::warn!(probe = %probe.uuid, error = %err, "poll failed"),
            }
        }
        let round = self.collect(&good).await;
        self.persist(round).await?;
        self.prune().await
    }

    async fn after_poll(&self, probe: &ProbeEntity, ok: bool) {
        if ok {
            self.counters.polls_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.counters.polls_failed.fetch_add(1, Ordering::Relaxed);
        }
        let changed = self.set_health(&probe.uuid, ok).await;
        if changed || ok {
            let mut updated = probe.clone();
            updated.status = if ok { "UP" } else { "DOWN" }.to_owned();
            if ok {
                updated.last_seen = Some(unix_now());
            }
            if let Err(err) = self
                .docs
                .upsert(ENTITIES, &self.probe_filter(&probe.uuid), to_doc(&updated))
                .await
            {
                tracing::warn!(probe = %probe.uuid, error = %err, "could not record the probe status");
            }
        }
    }

    async fn monitored_deployments(&self) -> HashSet<String> {
        let filter = Filter::all().eq("agent_uuid", self.uuid.clone());
        match self
            .docs
            .find(AGENT_DEPLOYMENTS, &filter, &FindOptions::default())
            .await
        {
            Ok(docs) => docs
                .iter()
                .filter_map(|d| {
                    d.get("deployment_uuid")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .collect(),
            Err(err) => {
                tracing::warn!(error = %err, "could not read monitored deployments");
                HashSet::new()
            }
        }
    }

    async fn collect(&self, states: &[(ProbeEntity, Value)]) -> Round {
        let monitored = if self.settings().active_application {
            self.monitored_deployments().await
        } else {
            HashSet::new()
        };
        let now = unix_now();
        let mut round = Round::default();
        for (probe, state) in states {
            let converted = convert::monitor_to_points(&probe.cluster_uuid, state, &monitored, now);
            round
                .points
                .entry(probe.cluster_uuid.clone())
                .or_default()
                .extend(converted.cluster_points);
            round
                .points
                .entry(DEPLOYMENTS_BUCKET.to_owned())
                .or_default()
                .extend(converted.deployment_points);
            round.deployment_docs.extend(converted.deployment_docs);
            round.state_docs.push(json!({
                "cluster_uuid": probe.cluster_uuid,
                "probe_uuid": probe.uuid,
                "timestamp": now,
                "state": state,
            }));
        }
        round
    }

    async fn persist(&self, round: Round) -> Result<(), AgentError> {
        if !round.state_docs.is_empty() {
            self.docs
                .insert_many(CLUSTER_STATE_METRICS, round.state_docs)
                .await?;
        }
        if !round.deployment_docs.is_empty() {
            self.docs
                .insert_many(CLUSTER_DEPLOYMENT_METRICS, round.deployment_docs)
                .await?;
        }
        for (bucket, points) in round.points {
            if points.is_empty() {
                continue;
            }
            self.write_points(&bucket, &points).await?;
        }
        Ok(())
    }

    pub(crate) async fn write_points(
        &self,
        bucket: &str,
        points: &[Point],
    ) -> Result<(), AgentError> {
        match self.series.write(bucket, points).await {
            Ok(()) => {
                self.counters
                    .points_written
                    .fetch_add(points.len() as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(err) => {
                self.counters
                    .series_write_errors
                    .fetch_add(1, Ordering::Relaxed);
                Err(err.into())
            }
        }
    }

    /// Drops operational samples older than `retain_data_period`.
    async fn prune(&self) -> Result<(), AgentError> {
        let cutoff = (unix_now() - self.settings().retain_data_period as i64) as f64;
        for collection in [CLUSTER_STATE_METRICS, CLUSTER_DEPLOYMENT_METRICS] {
            self.docs
                .delete_many(collection, &Filter::all().lt("timestamp", cutoff))
                .await?;
        }
        Ok(())
    }

    // ---- health and notifications

    fn set_health_quiet(&self, uuid: &str, up: bool) -> bool {
        match self.health.lock() {
            Ok(mut health) => health.insert(uuid.to_owned(), up) != Some(up),
            Err(_) => false,
        }
    }

    /// Records a probe's status; notifies when it changed. Returns whether it changed.
    async fn set_health(&self, uuid: &str, up: bool) -> bool {
        let changed = self.set_health_quiet(uuid, up);
        if changed {
            self.notify_entity(uuid, if up { "UP" } else { "DOWN" }, "Probe")
                .await;
        }
        changed
    }

    /// Table 7 "Telemetry" notification on `serrano_telemetry_notifications`.
    pub async fn notify_entity(&self, entity_id: &str, status: &str, kind: &str) {
        let message = json!({"entity_id": entity_id, "status": status, "type": kind, "timestamp": unix_now()});
        self.publish(TELEMETRY_NOTIFICATIONS_TOPIC, entity_id, &message)
            .await;
    }

    /// Table 7 "General / Information" on `serrano_notification_messages`.
    pub async fn notify_message(&self, text: &str) {
        let message = json!({"message": text, "timestamp": unix_now()});
        self.publish(NOTIFICATION_MESSAGES_TOPIC, &self.uuid.clone(), &message)
            .await;
    }

    async fn publish(&self, topic: &str, key: &str, message: &Value) {
        if !self.settings().active_notifications {
            return;
        }
        let payload = message.to_string();
        match self
            .bus
            .publish(topic, Some(key.as_bytes()), payload.as_bytes())
            .await
        {
            Ok(()) => {
                self.counters.notifications.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => {
                self.counters
                    .notification_errors
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(topic, error = %err, "could not publish a notification");
            }
        }
    }

    // ---- deployments and application metrics

    pub async fn add_deployment(&self, deployment: &MonitoredDeployment) -> Result<(), AgentError> {
        valid_id("deployment_uuid", &deployment.deployment_uuid)?;
        let doc = json!({
            "agent_uuid": self.uuid,
            "deployment_uuid": deployment.deployment_uuid,
            "k8s_deployments": deployment.k8s_deployments,
            "timestamp": unix_now(),
        });
        let filter = Filter::all()
            .eq("agent_uuid", self.uuid.clone())
            .eq("deployment_uuid", deployment.deployment_uuid.clone());
        self.docs.upsert(AGENT_DEPLOYMENTS, &filter, doc).await?;
        Ok(())
    }

    pub async fn deployments(&self) -> Result<Vec<Value>, AgentError> {
        let filter = Filter::all().eq("agent_uuid", self.uuid.clone());
        Ok(self
            .docs
            .find(AGENT_DEPLOYMENTS, &filter, &FindOptions::default())
            .await?)
    }

    pub async fn deployment(&self, uuid: &str) -> Result<Value, AgentError> {
        valid_id("deployment uuid", uuid)?;
        let filter = Filter::all()
            .eq("agent_uuid", self.uuid.clone())
            .eq("deployment_uuid", uuid.to_owned());
        self.docs
            .find_one(AGENT_DEPLOYMENTS, &filter)
            .await?
            .ok_or_else(|| AgentError::NotFound(format!("deployment {uuid} is not monitored here")))
    }

    pub async fn remove_deployment(&self, uuid: &str) -> Result<(), AgentError> {
        self.deployment(uuid).await?;
        let filter = Filter::all()
            .eq("agent_uuid", self.uuid.clone())
            .eq("deployment_uuid", uuid.to_owned());
        self.docs.delete_many(AGENT_DEPLOYMENTS, &filter).await?;
        Ok(())
    }

    /// A user's sidecar push (originals.md 3.3): kept in the operational DB and as history.
    pub async fn record_specific_metrics(&self, push: &SpecificMetrics) -> Result<(), AgentError> {
        valid_id("deployment_uuid", &push.deployment_uuid)?;
        valid_id("cluster_uuid", &push.cluster_uuid)?;
        valid_id("service_id", &push.service_id)?;
        let Some(metrics) = push.metrics.as_object() else {
            return Err(AgentError::Invalid(
                "metrics must be an object of numbers".into(),
            ));
        };
        if metrics.is_empty() {
            return Err(AgentError::Invalid("metrics must not be empty".into()));
        }
        let mut fields = Vec::with_capacity(metrics.len());
        for (name, value) in metrics {
            if name.is_empty() || name.len() > 128 {
                return Err(AgentError::Invalid(
                    "metric names must be 1-128 characters".into(),
                ));
            }
            match value.as_f64().filter(|v| v.is_finite()) {
                Some(v) => fields.push((name.clone(), serrano_timeseries::FieldValue::Float(v))),
                None => {
                    return Err(AgentError::Invalid(format!(
                        "metric '{name}' is not a finite number"
                    )));
                }
            }
        }
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        let timestamp = push.timestamp.unwrap_or_else(unix_now);
        let point = Point {
            measurement: "serrano_deployments_specific_metrics".into(),
            tags: vec![
                ("cluster_uuid".into(), push.cluster_uuid.clone()),
                ("deployment_uuid".into(), push.deployment_uuid.clone()),
                ("service_id".into(), push.service_id.clone()),
            ],
            fields,
            time_ns: timestamp.saturating_mul(1_000_000_000),
        };
        self.write_points(SPECIFIC_METRICS_BUCKET, &[point]).await?;
        self.docs
            .insert(
                SPECIFIC_METRICS,
                json!({
                    "deployment_uuid": push.deployment_uuid, "cluster_uuid": push.cluster_uuid,
                    "service_id": push.service_id, "metrics": push.metrics, "timestamp": timestamp,
                }),
            )
            .await?;
        Ok(())
    }

    pub(crate) fn count_streamed(&self, samples: u64) {
        self.counters
            .streamed_samples
            .fetch_add(samples, Ordering::Relaxed);
    }

    /// The agent's own `/metrics` families.
    pub fn render_metrics(&self) -> String {
        let c = &self.counters;
        let probes_up = self
            .health
            .lock()
            .map(|h| h.values().filter(|up| **up).count())
            .unwrap_or(0);
        let probes_down = self
            .health
            .lock()
            .map(|h| h.values().filter(|up| !**up).count())
            .unwrap_or(0);
        let mut text = String::new();
        let mut family = |name: &str, kind: &str, help: &str, value: String| {
            text.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        };
        family(
            "serrano_eta_poll_rounds_total",
            "counter",
            "Polling rounds run.",
            c.rounds.load(Ordering::Relaxed).to_string(),
        );
        family(
            "serrano_eta_probe_polls_ok_total",
            "counter",
            "Probe calls that succeeded.",
            c.polls_ok.load(Ordering::Relaxed).to_string(),
        );
        family(
            "serrano_eta_probe_polls_failed_total",
            "counter",
            "Probe calls that failed or timed out.",
            c.polls_failed.load(Ordering::Relaxed).to_string(),
        );
        family(
            "serrano_eta_points_written_total",
            "counter",
            "Points written to the time-series store.",
            c.points_written.load(Ordering::Relaxed).to_string(),
        );
        family(
            "serrano_eta_series_write_errors_total",
            "counter",
            "Failed time-series writes.",
            c.series_write_errors.load(Ordering::Relaxed).to_string(),
        );
        family(
            "serrano_eta_notifications_total",
            "counter",
            "Notifications published.",
            c.notifications.load(Ordering::Relaxed).to_string(),
        );
        family(
            "serrano_eta_notification_errors_total",
            "counter",
            "Notifications the broker refused.",
            c.notification_errors.load(Ordering::Relaxed).to_string(),
        );
        family(
            "serrano_eta_streamed_samples_total",
            "counter",
            "Samples received over streaming telemetry.",
            c.streamed_samples.load(Ordering::Relaxed).to_string(),
        );
        family(
            "serrano_eta_probes_up",
            "gauge",
            "Registered probes last seen up.",
            probes_up.to_string(),
        );
        family(
            "serrano_eta_probes_down",
            "gauge",
            "Registered probes last seen down.",
            probes_down.to_string(),
        );
        text
    }
}

/// What one polling round writes.
#[derive(Default)]
struct Round {
    points: HashMap<String, Vec<Point>>,
    state_docs: Vec<Value>,
    deployment_docs: Vec<Value>,
}

/// `POST /deployments` body (originals.md 3.2: the CTH forwards `{deployment_uuid, k8s_deployments}`).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitoredDeployment {
    pub deployment_uuid: String,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub k8s_deployments: Vec<Value>,
}

/// `POST /deployment_specific_metrics` body (originals.md 3.3).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpecificMetrics {
    pub deployment_uuid: String,
    pub cluster_uuid: String,
    pub service_id: String,
    #[schema(value_type = Object)]
    pub metrics: Value,
    /// Unix seconds; default now.
    #[serde(default)]
    pub timestamp: Option<i64>,
}

/// Runs polling rounds every `query_interval` until `stop` turns true.
pub async fn run_poller(agent: Arc<Agent>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let settings = agent.settings();
        if settings.active_monitoring
            && let Err(err) = agent.poll_round().await
        {
            tracing::warn!(error = %err, "polling round failed");
        }
        let interval = Duration::from_secs(agent.settings().query_interval.max(1));
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = agent.wake.notified() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

//! Streaming telemetry sessions (D6.7 4.4.3.2 "Streaming telemetry"): on request the probe
//! reads its source every `reporting_rate` seconds and pushes the readings to the agent's gRPC
//! receiver (client-streaming, `serrano-telemetry-stream`).
//!
//! Samples are InfluxDB points in the layout the agent stores (originals.md 3.4):
//! - host and Kubernetes probes: measurement `nodes`, tags `node_name` and `group` (general,
//!   cpu, memory, storage, network), fields the group's members; `nodes` filters node names,
//!   `metrics` the groups;
//! - HPC probe: measurement `hpc_partitions`, tags `infrastructure_name` and `partition_name`,
//!   fields the partition counters; `nodes` filters partitions, `metrics` the fields;
//! - edge storage probe: measurement `edge_storage`, tags `cluster_uuid`, `node`, `name`,
//!   fields the `minio_*` figures; `nodes` filters devices, `metrics` the fields.
//!
//! Unreadable nodes or devices are skipped in a tick; a tick that yields nothing sends nothing.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serrano_telemetry_stream::{SenderOptions, SenderStats, StreamIdentity, StreamSender};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use utoipa::ToSchema;
use uuid::Uuid;

mod samples;

pub use samples::{Filter, PARTITION_FIELDS, samples};
use samples::{known_names, now_ns};

use crate::collection::CollectionSettings;
use crate::source::{Source, SourceError, Target};

/// Limits of `reporting_rate`, in seconds.
pub const REPORTING_RATE_RANGE: (f64, f64) = (0.1, 3600.0);
/// How long stopping a session waits by default for the agent to acknowledge what is buffered.
pub const CLOSE_DEADLINE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StreamingAction {
    Start,
    Stop,
}

/// `POST /streaming`, the body the agent sends (D6.7 4.4.3.2).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamingRequest {
    /// Must be this probe's cluster when given.
    #[serde(default)]
    pub cluster_uuid: Option<Uuid>,
    pub action: StreamingAction,
    /// Seconds between two readings (0.1 to 3600); required to start.
    #[serde(default)]
    pub reporting_rate: Option<f64>,
    /// Nodes (partitions, devices) to report; all when empty.
    #[serde(default)]
    pub nodes: Vec<String>,
    /// Groups (host, Kubernetes) or fields (HPC, edge storage) to report; all when empty.
    #[serde(default)]
    pub metrics: Vec<String>,
    /// The agent's gRPC endpoint, `http://host:port`; required to start.
    #[serde(default)]
    pub receiver: Option<String>,
    /// Chosen by the caller, or generated; required to stop.
    #[serde(default)]
    pub session_id: Option<String>,
    /// The original agent sends `"request": "streaming"`; accepted for compatibility.
    #[serde(default)]
    pub request: Option<String>,
}

/// `201` of a start.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StreamingStarted {
    pub session_id: String,
}

/// A session as `GET /streaming` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    pub session_id: String,
    pub cluster_uuid: Uuid,
    pub reporting_rate: f64,
    pub nodes: Vec<String>,
    pub metrics: Vec<String>,
    pub receiver: String,
    /// Unix seconds.
    pub started_at: i64,
    /// Readings taken.
    pub ticks: u64,
    /// Samples handed to the sender.
    pub samples: u64,
    /// Batches sent, acknowledged, dropped (buffer full), still queued.
    pub batches_sent: u64,
    pub batches_acked: u64,
    pub batches_dropped: u64,
    pub batches_queued: u64,
    /// The last reading's or sending's error, cleared by the next success.
    pub last_error: Option<String>,
}

/// `GET /streaming`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

/// Why a streaming request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamingError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Source(SourceError),
}

#[derive(Debug, Default)]
struct Counters {
    ticks: u64,
    samples: u64,
    sender: SenderStats,
    last_error: Option<String>,
}

struct Session {
    view: SessionView,
    close_deadline: Duration,
    counters: Arc<Mutex<Counters>>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<SenderStats>,
}

impl Session {
    fn view(&self) -> SessionView {
        let mut view = self.view.clone();
        let counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        fill(&mut view, &counters);
        view
    }
}

fn fill(view: &mut SessionView, counters: &Counters) {
    view.ticks = counters.ticks;
    view.samples = counters.samples;
    view.batches_sent = counters.sender.sent;
    view.batches_acked = counters.sender.acked;
    view.batches_dropped = counters.sender.dropped;
    view.batches_queued = counters.sender.queued as u64;
    view.last_error = counters.last_error.clone();
}

/// The probe's streaming sessions.
pub struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
    /// Session ids used since start: a reused id would restart seqs at 1 and the agent would
    /// drop them as duplicates.
    used: Mutex<BTreeSet<String>>,
    max_sessions: usize,
    /// Bearer token for the agent's receiver.
    token: Option<String>,
}

fn valid_session_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Everything a start needs besides the request.
pub struct StartContext<'a> {
    pub source: Arc<dyn Source>,
    pub settings: watch::Receiver<CollectionSettings>,
    pub probe_uuid: Uuid,
    pub cluster_uuid: Uuid,
    pub sender_options: &'a SenderOptions,
    /// How long stopping the session waits for the agent's acknowledgement.
    pub close_deadline: Duration,
}

impl Sessions {
    pub fn new(max_sessions: usize, token: Option<String>) -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            used: Mutex::new(BTreeSet::new()),
            max_sessions,
            token,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn list(&self) -> Vec<SessionView> {
        let mut views: Vec<SessionView> = self.lock().values().map(Session::view).collect();
        views.sort_by(|a, b| a.session_id.cmp(&b.session_id));
        views
    }

    /// Validates `request` (an `action: start`), checks it against a first reading and starts
    /// the session.
    pub async fn start(
        &self,
        request: StreamingRequest,
        context: StartContext<'_>,
    ) -> Result<StreamingStarted, StreamingError> {
        let invalid = |m: String| Err(StreamingError::Invalid(m));
        if let Some(request) = request.request.as_deref().filter(|r| *r != "streaming") {
            return invalid(format!(
                "request: only \"streaming\" is known, got {request:?}"
            ));
        }
        if let Some(cluster) = request.cluster_uuid.filter(|c| *c != context.cluster_uuid) {
            return invalid(format!(
                "cluster_uuid {cluster} is not this probe's cluster {}",
                context.cluster_uuid
            ));
        }
        let Some(rate) = request.reporting_rate else {
            return invalid("reporting_rate: required to start (seconds)".to_owned());
        };
        let (min, max) = REPORTING_RATE_RANGE;
        if !(rate.is_finite() && (min..=max).contains(&rate)) {
            return invalid(format!("reporting_rate: {min} to {max} seconds"));
        }
        let Some(receiver) = request.receiver.clone().filter(|r| !r.is_empty()) else {
            return invalid(
                "receiver: required to start (the agent's http://host:port)".to_owned(),
            );
        };
        let session_id = match request.session_id.clone() {
            Some(id) if valid_session_id(&id) => id,
            Some(_) => {
                return invalid("session_id: 1-128 characters of A-Z a-z 0-9 . _ -".to_owned());
            }
            None => Uuid::new_v4().to_string(),
        };
        if self.lock().len() >= self.max_sessions {
            return Err(StreamingError::Conflict(format!(
                "{} streaming sessions already run; stop one first",
                self.max_sessions
            )));
        }
        if self
            .used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&session_id)
        {
            return Err(StreamingError::Conflict(format!(
                "session {session_id} was already used; choose a fresh session_id"
            )));
        }

        // A first reading checks the names asked for and that the source answers at all.
        let timeout = context.settings.borrow().timeout();
        let first = context
            .source
            .monitor(timeout, Target::Resources)
            .await
            .map_err(StreamingError::Source)?;
        let (known_nodes, known_metrics) = known_names(&first);
        let filter = Filter {
            nodes: request.nodes.iter().cloned().collect(),
            metrics: request.metrics.iter().cloned().collect(),
        };
        if let Some(unknown) = filter.nodes.iter().find(|n| !known_nodes.contains(*n)) {
            return invalid(format!(
                "nodes: {unknown} is not known to this probe (known: {})",
                known_nodes.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if let Some(unknown) = filter.metrics.iter().find(|m| !known_metrics.contains(*m)) {
            return invalid(format!(
                "metrics: {unknown} is not one of {}",
                known_metrics.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }

        let mut options = context.sender_options.clone();
        if options.token.is_none() {
            options.token = self.token.clone();
        }
        let sender = StreamSender::start(
            receiver.clone(),
            StreamIdentity {
                source_uuid: context.probe_uuid.to_string(),
                cluster_uuid: context.cluster_uuid.to_string(),
                session_id: session_id.clone(),
            },
            options,
        )
        .map_err(|err| StreamingError::Invalid(format!("receiver: {err}")))?;

        let mut sessions = self.lock();
        // Checked again under the lock: two starts may have raced through the first reading.
        if sessions.len() >= self.max_sessions {
            return Err(StreamingError::Conflict(format!(
                "{} streaming sessions already run; stop one first",
                self.max_sessions
            )));
        }
        if !self
            .used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(session_id.clone())
        {
            return Err(StreamingError::Conflict(format!(
                "session {session_id} was already used; choose a fresh session_id"
            )));
        }
        let counters = Arc::new(Mutex::new(Counters::default()));
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run_session(
            context.source,
            context.settings,
            filter,
            Duration::from_secs_f64(rate),
            (sender, context.close_deadline),
            counters.clone(),
            stopped,
        ));
        tracing::info!(
            session_id,
            receiver,
            reporting_rate = rate,
            "streaming telemetry started"
        );
        sessions.insert(
            session_id.clone(),
            Session {
                close_deadline: context.close_deadline,
                view: SessionView {
                    session_id: session_id.clone(),
                    cluster_uuid: context.cluster_uuid,
                    reporting_rate: rate,
                    nodes: request.nodes,
                    metrics: request.metrics,
                    receiver,
                    started_at: crate::unix_now(),
                    ticks: 0,
                    samples: 0,
                    batches_sent: 0,
                    batches_acked: 0,
                    batches_dropped: 0,
                    batches_queued: 0,
                    last_error: None,
                },
                counters,
                stop: Some(stop),
                task,
            },
        );
        Ok(StreamingStarted { session_id })
    }

    /// Stops a session, waiting at most its close deadline for the agent to acknowledge what is
    /// buffered; returns its final view.
    pub async fn stop(&self, session_id: &str) -> Result<SessionView, StreamingError> {
        let session = self.lock().remove(session_id).ok_or_else(|| {
            StreamingError::NotFound(format!("no streaming session {session_id}"))
        })?;
        Ok(finish(session).await)
    }

    /// Stops every session (at shutdown).
    pub async fn stop_all(&self) {
        let sessions: Vec<Session> = self.lock().drain().map(|(_, s)| s).collect();
        futures::future::join_all(sessions.into_iter().map(finish)).await;
    }
}

async fn finish(mut session: Session) -> SessionView {
    if let Some(stop) = session.stop.take() {
        let _ = stop.send(());
    }
    let mut view = session.view();
    // The task closes its sender within the deadline; the margin covers a reading in flight.
    let limit = session.close_deadline * 2 + Duration::from_secs(1);
    match tokio::time::timeout(limit, &mut session.task).await {
        Ok(Ok(stats)) => {
            let mut counters = session
                .counters
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            counters.sender = stats;
            fill(&mut view, &counters);
        }
        Ok(Err(join)) => view.last_error = Some(format!("session task failed: {join}")),
        Err(_) => {
            session.task.abort();
            view.last_error = Some("session did not stop in time".to_owned());
        }
    }
    tracing::info!(session_id = %view.session_id, batches_acked = view.batches_acked,
        batches_queued = view.batches_queued, "streaming telemetry stopped");
    view
}

async fn run_session(
    source: Arc<dyn Source>,
    settings: watch::Receiver<CollectionSettings>,
    filter: Filter,
    rate: Duration,
    (sender, close_deadline): (StreamSender, Duration),
    counters: Arc<Mutex<Counters>>,
    mut stopped: oneshot::Receiver<()>,
) -> SenderStats {
    let mut ticker = tokio::time::interval(rate);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = &mut stopped => break,
        }
        let timeout = settings.borrow().timeout();
        let reading = source.monitor(timeout, Target::Resources).await;
        let outcome = match reading {
            Ok(data) => {
                let batch = samples(&data, &filter, now_ns());
                let count = batch.len() as u64;
                if batch.is_empty() {
                    Ok(0)
                } else {
                    sender
                        .send(batch)
                        .map(|_| count)
                        .map_err(|err| format!("cannot send: {err}"))
                }
            }
            Err(err) => Err(err.to_string()),
        };
        let mut counters = counters.lock().unwrap_or_else(PoisonError::into_inner);
        counters.ticks += 1;
        match outcome {
            Ok(count) => {
                counters.samples += count;
                counters.last_error = None;
            }
            Err(reason) => counters.last_error = Some(reason),
        }
        counters.sender = sender.stats();
    }
    sender.close(close_deadline).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids() {
        assert!(valid_session_id("a-1_b.2"));
        assert!(!valid_session_id(""));
        assert!(!valid_session_id("a/b"));
        assert!(!valid_session_id(&"x".repeat(129)));
    }
}

//! Receiving side of streaming telemetry (D6.7 4.4.3.2): the Enhanced Telemetry Agent receives
//! from its probes and the Central Telemetry Handler from its agents.
//!
//! Each `Push` stream is validated batch by batch; batches whose seq is not above the highest seq
//! already stored for their (source_uuid, session_id) are counted as duplicates and dropped, the
//! others go to the [`BatchSink`] in order. The acknowledgement is sent when the client ends the
//! stream (or early, when the receiver shuts down, so that the sender learns what was stored).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::watch;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::{Code, Request, Response, Status, Streaming};

use crate::error::{BatchError, SinkError, StreamError};
use crate::pb;
use crate::pb::streaming_telemetry_server::{StreamingTelemetry, StreamingTelemetryServer};
use crate::validate::check_batch;

/// Status metadata key naming the seq of a rejected batch, so that the sender can drop exactly
/// that batch instead of resending it forever.
pub const REJECTED_SEQ_METADATA: &str = "x-serrano-rejected-seq";

/// Where accepted batches go (a time-series writer, a forwarder to the CTH, a test collector).
#[async_trait]
pub trait BatchSink: Send + Sync + 'static {
    /// Stores one batch. Called in seq order, at most once per seq of a (source, session) while
    /// the receiver runs. An error aborts the stream with `unavailable`; the sender resends.
    async fn accept(&self, batch: pb::MetricBatch) -> Result<(), SinkError>;

    /// The highest seq already stored for a (source, session), asked once when the receiver first
    /// sees that pair. A durable sink that answers makes deduplication survive a receiver crash;
    /// the default (`None`) keeps it in memory only.
    async fn last_seq(
        &self,
        _source_uuid: &str,
        _session_id: &str,
    ) -> Result<Option<u64>, SinkError> {
        Ok(None)
    }
}

/// Receiver limits and authentication.
#[derive(Debug, Clone)]
pub struct ReceiverOptions {
    /// When not empty, every call must carry `authorization: Bearer <token>` with one of these
    /// (a service accepts its configured tokens plus the platform's admin token).
    pub tokens: Vec<String>,
    /// Largest encoded batch accepted; larger ones end the stream with `resource_exhausted`.
    pub max_message_bytes: usize,
    /// Most samples in one batch; more end the stream with `resource_exhausted`.
    pub max_samples_per_batch: usize,
    /// A (source, session) idle for this long is forgotten, bounding the dedup table.
    pub session_ttl: Duration,
}

impl Default for ReceiverOptions {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_samples_per_batch: DEFAULT_MAX_SAMPLES_PER_BATCH,
            session_ttl: Duration::from_secs(3600),
        }
    }
}

/// Default message size limit; the same as tonic's default receive limit.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Default sample count limit per batch.
pub const DEFAULT_MAX_SAMPLES_PER_BATCH: usize = 10_000;

/// The tonic service that [`service`] returns: the receiver behind the token check.
pub type TelemetryService =
    InterceptedService<StreamingTelemetryServer<TelemetryReceiver>, TokenCheck>;

/// Builds the receiver service, to be added to a tonic router next to other services.
pub fn service(sink: Arc<dyn BatchSink>, options: ReceiverOptions) -> TelemetryService {
    build(sink, options, None)
}

/// Serves the receiver on `listener` until `shutdown` completes. On shutdown the open streams are
/// acknowledged with what was stored so far, then the connections are drained.
pub async fn serve(
    listener: tokio::net::TcpListener,
    sink: Arc<dyn BatchSink>,
    options: ReceiverOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StreamError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let svc = build(sink, options, Some(stop_rx));
    // Small frames (acks, batches) must not wait for Nagle's algorithm.
    let incoming = TcpListenerStream::new(listener).map(|conn| {
        conn.inspect(|stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
        })
    });
    let signal = async move {
        shutdown.await;
        stop_tx.send_replace(true);
    };
    tonic::transport::Server::builder()
        .add_service(svc)
        .serve_with_incoming_shutdown(incoming, signal)
        .await?;
    Ok(())
}

fn build(
    sink: Arc<dyn BatchSink>,
    options: ReceiverOptions,
    stop: Option<watch::Receiver<bool>>,
) -> TelemetryService {
    let check = TokenCheck::new(&options.tokens);
    let max_message_bytes = options.max_message_bytes;
    let receiver = TelemetryReceiver {
        sink,
        max_samples: options.max_samples_per_batch,
        sessions: Arc::new(Sessions::new(options.session_ttl)),
        stop,
    };
    InterceptedService::new(
        StreamingTelemetryServer::new(receiver).max_decoding_message_size(max_message_bytes),
        check,
    )
}

/// Checks the bearer token of each call before the stream is read.
#[derive(Clone)]
pub struct TokenCheck {
    /// Accepted `authorization` values; empty = no check.
    expected: Arc<[Vec<u8>]>,
}

impl TokenCheck {
    fn new<S: AsRef<str>>(tokens: &[S]) -> Self {
        Self {
            expected: tokens
                .iter()
                .map(|token| format!("Bearer {}", token.as_ref()).into_bytes())
                .collect(),
        }
    }
}

impl std::fmt::Debug for TokenCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("TokenCheck")
            .field("enabled", &!self.expected.is_empty())
            .finish()
    }
}

impl Interceptor for TokenCheck {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        if self.expected.is_empty() {
            return Ok(request);
        }
        let given = request
            .metadata()
            .get("authorization")
            .map(|value| value.as_bytes())
            .unwrap_or_default();
        // Every candidate is compared, so the time taken does not say which one matched.
        let matched = self.expected.iter().fold(false, |found, expected| {
            constant_time_eq(given, expected) | found
        });
        if matched {
            Ok(request)
        } else {
            Err(Status::unauthenticated("missing or wrong bearer token"))
        }
    }
}

/// Compares without an early exit, so the time taken does not reveal a matching prefix.
fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    left.iter()
        .zip(right)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// The `StreamingTelemetry` implementation behind [`service`].
pub struct TelemetryReceiver {
    sink: Arc<dyn BatchSink>,
    max_samples: usize,
    sessions: Arc<Sessions>,
    stop: Option<watch::Receiver<bool>>,
}

impl std::fmt::Debug for TelemetryReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryReceiver")
            .field("max_samples", &self.max_samples)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl StreamingTelemetry for TelemetryReceiver {
    async fn push(
        &self,
        request: Request<Streaming<pb::MetricBatch>>,
    ) -> Result<Response<pb::PushAck>, Status> {
        let mut stream = request.into_inner();
        let mut stop = self.stop.clone();
        let mut session: Option<StreamSession> = None;
        let mut accepted = 0u64;
        let mut duplicates = 0u64;
        loop {
            // `biased` so that a stopping receiver answers before reading more.
            let next = tokio::select! {
                biased;
                () = stopped(&mut stop) => break,
                next = stream.message() => next,
            };
            let batch = match next {
                Ok(Some(batch)) => batch,
                Ok(None) => break,
                Err(status) => return Err(stream_error(status)),
            };
            let seq = batch.seq;
            check_batch(&batch, self.max_samples).map_err(|error| rejected(seq, &error))?;
            let current = match &session {
                Some(current) => {
                    if current.source_uuid != batch.source_uuid
                        || current.session_id != batch.session_id
                    {
                        return Err(rejected(seq, &BatchError::MixedSession));
                    }
                    current
                }
                None => &*session.insert(StreamSession {
                    state: self.sessions.get(&batch.source_uuid, &batch.session_id),
                    source_uuid: batch.source_uuid.clone(),
                    session_id: batch.session_id.clone(),
                }),
            };
            // Held across the sink call: batches of one (source, session) are stored one at a
            // time and in order, even when an old stream of the same sender is still open.
            let mut state = current.state.lock().await;
            let last = match state.last_seq {
                Some(last) => last,
                None => {
                    let stored = self
                        .sink
                        .last_seq(&current.source_uuid, &current.session_id)
                        .await
                        .map_err(sink_unavailable)?
                        .unwrap_or(0);
                    state.last_seq = Some(stored);
                    stored
                }
            };
            if seq <= last {
                duplicates += 1;
                continue;
            }
            self.sink.accept(batch).await.map_err(sink_unavailable)?;
            state.last_seq = Some(seq);
            accepted += 1;
        }
        let last_seq = match &session {
            Some(current) => current.state.lock().await.last_seq.unwrap_or(0),
            None => 0,
        };
        if let Some(current) = &session {
            tracing::debug!(
                source_uuid = %current.source_uuid,
                session_id = %current.session_id,
                last_seq,
                accepted,
                duplicates,
                "telemetry stream acknowledged"
            );
        }
        Ok(Response::new(pb::PushAck {
            last_seq,
            accepted,
            duplicates,
        }))
    }
}

/// Completes when the receiver is asked to stop; never for a receiver built by [`service`].
async fn stopped(stop: &mut Option<watch::Receiver<bool>>) {
    match stop {
        Some(rx) => {
            if rx.wait_for(|stopping| *stopping).await.is_err() {
                // The stop sender is gone without a stop: nothing can stop us any more.
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// tonic reports an over-limit message as `out_of_range`; the wire contract says
/// `resource_exhausted` for every size limit.
fn stream_error(status: Status) -> Status {
    if status.code() == Code::OutOfRange {
        Status::resource_exhausted(status.message().to_owned())
    } else {
        status
    }
}

fn rejected(seq: u64, error: &BatchError) -> Status {
    let mut metadata = MetadataMap::new();
    metadata.insert(REJECTED_SEQ_METADATA, MetadataValue::from(seq));
    Status::with_metadata(error.code(), format!("batch seq {seq}: {error}"), metadata)
}

fn sink_unavailable(error: SinkError) -> Status {
    tracing::warn!(%error, "telemetry sink failed; the sender will resend");
    Status::unavailable(error.to_string())
}

struct StreamSession {
    state: Arc<tokio::sync::Mutex<SessionState>>,
    source_uuid: String,
    session_id: String,
}

#[derive(Default)]
struct SessionState {
    /// `None` until the sink has been asked.
    last_seq: Option<u64>,
}

struct Slot {
    state: Arc<tokio::sync::Mutex<SessionState>>,
    last_used: Instant,
}

/// Highest stored seq per (source, session). A std mutex: held only for a map lookup.
struct Sessions {
    ttl: Duration,
    inner: Mutex<SessionMap>,
}

struct SessionMap {
    slots: HashMap<(String, String), Slot>,
    last_sweep: Instant,
}

impl Sessions {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            inner: Mutex::new(SessionMap {
                slots: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    fn get(&self, source_uuid: &str, session_id: &str) -> Arc<tokio::sync::Mutex<SessionState>> {
        let now = Instant::now();
        // A panic elsewhere cannot leave the map inconsistent (single inserts/removes).
        let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if now.duration_since(map.last_sweep) >= self.ttl / 4 {
            let ttl = self.ttl;
            // Keep sessions in use by an open stream even when idle.
            map.slots.retain(|_, slot| {
                now.duration_since(slot.last_used) < ttl || Arc::strong_count(&slot.state) > 1
            });
            map.last_sweep = now;
        }
        let slot = map
            .slots
            .entry((source_uuid.to_owned(), session_id.to_owned()))
            .or_insert_with(|| Slot {
                state: Arc::default(),
                last_used: now,
            });
        slot.last_used = now;
        Arc::clone(&slot.state)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .slots
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_check_accepts_only_the_configured_bearer() {
        let mut check = TokenCheck::new(&["other", "s3cret"]);
        let mut good = Request::new(());
        good.metadata_mut()
            .insert("authorization", MetadataValue::from_static("Bearer s3cret"));
        assert!(check.call(good).is_ok());

        let mut wrong = Request::new(());
        wrong
            .metadata_mut()
            .insert("authorization", MetadataValue::from_static("Bearer nope"));
        let status = check.call(wrong).err().map(|s| s.code());
        assert_eq!(status, Some(Code::Unauthenticated));

        let status = check.call(Request::new(())).err().map(|s| s.code());
        assert_eq!(status, Some(Code::Unauthenticated));

        let mut open = TokenCheck::new::<&str>(&[]);
        assert!(open.call(Request::new(())).is_ok());
    }

    #[test]
    fn constant_time_eq_compares_bytes() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn out_of_range_becomes_resource_exhausted() {
        assert_eq!(
            stream_error(Status::out_of_range("too large")).code(),
            Code::ResourceExhausted
        );
        assert_eq!(
            stream_error(Status::cancelled("gone")).code(),
            Code::Cancelled
        );
    }

    #[test]
    fn rejection_names_the_seq() {
        let status = rejected(42, &BatchError::ZeroSeq);
        assert_eq!(status.code(), Code::InvalidArgument);
        let seq = status
            .metadata()
            .get(REJECTED_SEQ_METADATA)
            .and_then(|value| value.to_str().ok());
        assert_eq!(seq, Some("42"));
    }

    #[test]
    fn idle_sessions_are_forgotten_unless_in_use() {
        let sessions = Sessions::new(Duration::ZERO);
        let held = sessions.get("a", "1");
        drop(sessions.get("b", "1"));
        // TTL zero: the next lookup sweeps every idle slot, but "a" is still held.
        drop(sessions.get("c", "1"));
        assert_eq!(sessions.len(), 2);
        drop(held);
        drop(sessions.get("d", "1"));
        assert_eq!(sessions.len(), 1);
    }
}

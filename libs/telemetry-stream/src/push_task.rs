//! The sender's background task (D6.7 4.4.3.2): connect, stream the buffer from the oldest
//! unacknowledged batch, end the stream when due, apply the acknowledgement; on failure back off,
//! reconnect and resend.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prost::bytes::Bytes;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

use crate::codec::PreEncoded;
use crate::pb;
use crate::receiver::REJECTED_SEQ_METADATA;
use crate::sender::Shared;

const PUSH_PATH: &str = "/serrano.telemetry.v1.StreamingTelemetry/Push";

pub(crate) struct RunConfig {
    pub(crate) rotate_every: Duration,
    pub(crate) per_stream_limit: usize,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) ack_timeout: Duration,
    pub(crate) authorization: Option<AsciiMetadataValue>,
}

enum Failure {
    /// The receiver rejected this batch as invalid; resending it cannot succeed.
    Rejected(u64),
    /// Anything else: reconnect and resend.
    Other(Status),
}

/// The background task: connect, stream, collect acknowledgements, repeat.
pub(crate) async fn run(shared: Arc<Shared>, endpoint: Endpoint, config: RunConfig) {
    let mut backoff = Backoff::new(config.backoff_min, config.backoff_max);
    let mut wake = shared.wake.subscribe();
    let mut connected_before = false;
    loop {
        if !wait_for_work(&shared, &mut wake).await {
            return;
        }
        let channel = match endpoint.connect().await {
            Ok(channel) => channel,
            Err(error) => {
                tracing::debug!(%error, endpoint = %endpoint.uri(), "telemetry connect failed");
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        if connected_before {
            shared.lock().stats.reconnects += 1;
        }
        connected_before = true;
        loop {
            if !wait_for_work(&shared, &mut wake).await {
                return;
            }
            match push_once(&shared, channel.clone(), &config).await {
                Ok(ack) => {
                    backoff.reset();
                    apply_ack(&shared, &ack);
                }
                Err(Failure::Rejected(seq)) => {
                    if drop_rejected(&shared, seq) {
                        tracing::warn!(seq, "receiver rejected a telemetry batch; dropped");
                    } else {
                        // Not ours (or already gone): back off as for any other failure.
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                }
                Err(Failure::Other(status)) => {
                    tracing::debug!(
                        code = ?status.code(),
                        message = status.message(),
                        "telemetry stream failed; reconnecting"
                    );
                    if matches!(
                        status.code(),
                        Code::Unauthenticated | Code::PermissionDenied
                    ) {
                        tracing::warn!("telemetry receiver refused the bearer token");
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                    break;
                }
            }
        }
    }
}

/// Waits until something is buffered (`true`), or the sender is closing with nothing left
/// (`false`).
async fn wait_for_work(shared: &Shared, wake: &mut watch::Receiver<u64>) -> bool {
    loop {
        // Mark the version seen before looking, so a change made after the look wakes us.
        wake.borrow_and_update();
        {
            let state = shared.lock();
            if !state.queue.is_empty() {
                return true;
            }
            if state.closing {
                return false;
            }
        }
        if wake.changed().await.is_err() {
            return false;
        }
    }
}

/// Removes a batch the receiver rejected; `false` when it is not buffered.
fn drop_rejected(shared: &Shared, seq: u64) -> bool {
    let mut state = shared.lock();
    match state.queue.binary_search_by_key(&seq, |queued| queued.seq) {
        Ok(index) => {
            state.queue.remove(index);
            state.stats.rejected += 1;
            true
        }
        Err(_) => false,
    }
}

fn apply_ack(shared: &Shared, ack: &pb::PushAck) {
    let mut state = shared.lock();
    let mut freed = 0u64;
    while state
        .queue
        .front()
        .is_some_and(|queued| queued.seq <= ack.last_seq)
    {
        state.queue.pop_front();
        freed += 1;
    }
    state.stats.acked += freed;
    if ack.last_seq >= state.next_seq {
        tracing::warn!(
            last_seq = ack.last_seq,
            next_seq = state.next_seq,
            "receiver holds seqs this sender never assigned; is the session_id reused?"
        );
    }
}

/// One `Push` stream: sends the unacknowledged batches from the oldest, then new ones as they
/// come, ends the stream when due and returns the acknowledgement.
async fn push_once(
    shared: &Arc<Shared>,
    channel: Channel,
    config: &RunConfig,
) -> Result<pb::PushAck, Failure> {
    let (ended_tx, ended_rx) = oneshot::channel();
    let live = Arc::new(AtomicBool::new(true));
    // The body may still be polled by the connection after this call returns (an early answer
    // from a stopping receiver); the guard makes such a stale feed end at once.
    let _live_guard = LiveGuard(Arc::clone(&live));
    let feed = Feed {
        shared: Arc::clone(shared),
        wake: shared.wake.subscribe(),
        cursor: 0,
        sent: 0,
        limit: config.per_stream_limit,
        deadline: Instant::now() + config.rotate_every,
        ended: Some(ended_tx),
        live,
    };
    let body = futures::stream::unfold(feed, |mut feed| async move {
        let bytes = feed.next().await?;
        Some((bytes, feed))
    });
    let mut request = Request::new(body);
    if let Some(authorization) = &config.authorization {
        request
            .metadata_mut()
            .insert("authorization", authorization.clone());
    }
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|error| Failure::Other(Status::unavailable(error.to_string())))?;
    let call = grpc.client_streaming(request, PathAndQuery::from_static(PUSH_PATH), PreEncoded);
    // The ack must come within `ack_timeout` of the end of the stream; before that, a slow
    // receiver legitimately holds the stream back.
    let ack_deadline = async {
        if ended_rx.await.is_ok() {
            tokio::time::sleep(config.ack_timeout).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let result = tokio::select! {
        result = call => result,
        () = ack_deadline => Err(Status::deadline_exceeded("no acknowledgement in time")),
    };
    match result {
        Ok(response) => Ok(response.into_inner()),
        Err(status) => Err(classify(status)),
    }
}

fn classify(status: Status) -> Failure {
    if matches!(
        status.code(),
        Code::InvalidArgument | Code::ResourceExhausted
    ) {
        let seq = status
            .metadata()
            .get(REJECTED_SEQ_METADATA)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if let Some(seq) = seq {
            return Failure::Rejected(seq);
        }
    }
    Failure::Other(status)
}

struct LiveGuard(Arc<AtomicBool>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The request body of one stream, reading the shared buffer through a cursor.
struct Feed {
    shared: Arc<Shared>,
    wake: watch::Receiver<u64>,
    /// Next seq to send in this stream.
    cursor: u64,
    sent: usize,
    limit: usize,
    deadline: Instant,
    ended: Option<oneshot::Sender<()>>,
    live: Arc<AtomicBool>,
}

impl Feed {
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if !self.live.load(Ordering::Acquire) {
                return None;
            }
            if self.sent >= self.limit || Instant::now() >= self.deadline {
                return self.end();
            }
            self.wake.borrow_and_update();
            {
                let mut state = self.shared.lock();
                let index = state
                    .queue
                    .partition_point(|queued| queued.seq < self.cursor);
                if let Some(queued) = state.queue.get(index) {
                    let bytes = queued.bytes.clone();
                    self.cursor = queued.seq + 1;
                    self.sent += 1;
                    state.stats.sent += 1;
                    return Some(bytes);
                }
                if state.closing {
                    drop(state);
                    return self.end();
                }
            }
            tokio::select! {
                changed = self.wake.changed() => {
                    if changed.is_err() {
                        return self.end();
                    }
                }
                () = tokio::time::sleep_until(self.deadline) => {}
            }
        }
    }

    fn end(&mut self) -> Option<Bytes> {
        if let Some(ended) = self.ended.take() {
            // The caller may be gone already; then nobody waits for the signal.
            let _ = ended.send(());
        }
        None
    }
}

/// Exponential backoff with jitter, so that many senders do not reconnect in lockstep after a
/// receiver restart.
struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            current: min,
        }
    }

    fn next_delay(&mut self) -> Duration {
        let base = self.current;
        self.current = self.current.saturating_mul(2).min(self.max);
        // Between half and all of the base delay.
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let fraction = 0.5 + (random % 1000) as f64 / 2000.0;
        base.mul_f64(fraction)
    }

    fn reset(&mut self) {
        self.current = self.min;
    }
}

#[cfg(test)]
mod tests {
    use tonic::metadata::MetadataValue;

    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let delays: Vec<Duration> = (0..4).map(|_| backoff.next_delay()).collect();
        let bases = [100u64, 200, 350, 350];
        for (delay, base) in delays.iter().zip(bases) {
            assert!(
                *delay >= Duration::from_millis(base / 2),
                "{delay:?} < half {base}"
            );
            assert!(*delay <= Duration::from_millis(base), "{delay:?} > {base}");
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn rejection_with_seq_is_told_apart() {
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert(REJECTED_SEQ_METADATA, MetadataValue::from(7u64));
        let status = Status::with_metadata(Code::InvalidArgument, "bad", metadata);
        assert!(matches!(classify(status), Failure::Rejected(7)));
        assert!(matches!(
            classify(Status::invalid_argument("no seq")),
            Failure::Other(_)
        ));
        assert!(matches!(
            classify(Status::unavailable("sink down")),
            Failure::Other(_)
        ));
    }
}

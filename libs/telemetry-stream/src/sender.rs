//! Sending side of streaming telemetry (D6.7 4.4.3.2): a probe pushing to its Enhanced Telemetry
//! Agent, or an agent pushing to the Central Telemetry Handler.
//!
//! Buffer policy: `send` encodes the batch, gives it the next seq and appends it to a bounded
//! buffer; it never waits for the network. When the buffer is full the OLDEST batch not yet
//! acknowledged is dropped and counted in [`SenderStats::dropped`]. A background task streams the
//! buffer, ends the stream every `rotate_every` (or after `max_batches_per_stream` batches, or
//! when half the buffer is in flight) to collect the acknowledgement, and frees what it covers.
//! After any error it reconnects with backoff and resends everything unacknowledged; the receiver
//! drops what it already has. So nothing is lost while the buffer does not overflow.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use prost::Message as _;
use prost::bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::metadata::MetadataValue;
use tonic::transport::Endpoint;

use crate::error::{BatchError, StreamError};
use crate::pb;
use crate::push_task::{RunConfig, run};
use crate::receiver::{DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_SAMPLES_PER_BATCH};
use crate::validate::check_samples;

/// Upper bound of the encoded `seq` field (tag byte plus a 10-byte varint).
const SEQ_FIELD_MAX_BYTES: usize = 11;

/// Who is sending: stamped on every batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamIdentity {
    /// The probe or agent UUID; must not be empty.
    pub source_uuid: String,
    /// The cluster the source belongs to.
    pub cluster_uuid: String,
    /// The streaming session (POST .../streaming). Use a fresh value per sender instance: seqs
    /// restart at 1, and the receiver drops seqs it already stored for this session.
    pub session_id: String,
}

/// Sender buffer, stream rotation, connection and retry settings.
#[derive(Debug, Clone)]
pub struct SenderOptions {
    /// Most batches kept unacknowledged (queued or in flight); beyond it the oldest is dropped.
    pub capacity_batches: usize,
    /// How long one stream stays open before the sender ends it and reads the acknowledgement.
    pub rotate_every: Duration,
    /// Most batches in one stream before it is ended early.
    pub max_batches_per_stream: usize,
    /// Limit on establishing a connection.
    pub connect_timeout: Duration,
    /// First wait after a failure; doubles up to `backoff_max` (with jitter).
    pub backoff_min: Duration,
    /// Longest wait between attempts.
    pub backoff_max: Duration,
    /// Sent as `authorization: Bearer <token>` when set.
    pub token: Option<String>,
    /// How long to wait for the acknowledgement once a stream has been ended.
    pub ack_timeout: Duration,
    /// Largest encoded batch `send` accepts (keep it at or below the receiver's limit).
    pub max_batch_bytes: usize,
    /// Most samples per batch `send` accepts (keep it at or below the receiver's limit).
    pub max_samples_per_batch: usize,
}

impl Default for SenderOptions {
    fn default() -> Self {
        Self {
            capacity_batches: 1024,
            rotate_every: Duration::from_secs(5),
            max_batches_per_stream: 256,
            connect_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            token: None,
            ack_timeout: Duration::from_secs(10),
            max_batch_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_samples_per_batch: DEFAULT_MAX_SAMPLES_PER_BATCH,
        }
    }
}

/// Counters of a sender since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderStats {
    /// Batches in the buffer now, not yet acknowledged (queued or in flight).
    pub queued: usize,
    /// Batches written to a stream, resends included.
    pub sent: u64,
    /// Batches freed by an acknowledgement.
    pub acked: u64,
    /// Batches dropped unacknowledged because the buffer was full (the oldest first).
    pub dropped: u64,
    /// Connections established after the first one (each follows a failure).
    pub reconnects: u64,
    /// Batches the receiver rejected as invalid; dropped so they are not resent forever.
    pub rejected: u64,
}

/// A bounded, reconnecting client-streaming sender. Dropping it without [`StreamSender::close`]
/// stops the background task and discards what is unacknowledged.
#[derive(Debug)]
pub struct StreamSender {
    shared: Arc<Shared>,
    identity: StreamIdentity,
    max_samples: usize,
    max_batch_bytes: usize,
    task: Option<JoinHandle<()>>,
}

impl StreamSender {
    /// Validates the settings and starts the background task (must run inside a Tokio runtime).
    /// No connection is made until there is something to send.
    pub fn start(
        endpoint: String,
        identity: StreamIdentity,
        options: SenderOptions,
    ) -> Result<Self, StreamError> {
        validate_options(&options)?;
        if identity.source_uuid.is_empty() {
            return Err(StreamError::EmptySourceUuid);
        }
        let channel_endpoint =
            Endpoint::from_shared(endpoint.clone()).map_err(|_| StreamError::InvalidEndpoint {
                endpoint: endpoint.clone(),
                reason: "not a valid URI",
            })?;
        // The transport is built without TLS; https would only fail later, at connect time.
        if channel_endpoint.uri().scheme_str() != Some("http") {
            return Err(StreamError::InvalidEndpoint {
                endpoint,
                reason: "only http://host:port endpoints are supported",
            });
        }
        let channel_endpoint = channel_endpoint
            .connect_timeout(options.connect_timeout)
            .tcp_nodelay(true)
            // Detects a receiver that vanished without closing the connection.
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10));
        let authorization = options
            .token
            .as_deref()
            .map(|token| {
                MetadataValue::try_from(format!("Bearer {token}"))
                    .map_err(|_| StreamError::InvalidToken)
            })
            .transpose()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| StreamError::NoRuntime)?;

        let (wake, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::with_capacity(options.capacity_batches.min(4096)),
                next_seq: 1,
                closing: false,
                stats: SenderStats::default(),
            }),
            wake,
            capacity: options.capacity_batches,
        });
        let config = RunConfig {
            rotate_every: options.rotate_every,
            // Ending the stream when half the buffer is in flight lets the acknowledgement free
            // space before a steady producer fills the rest.
            per_stream_limit: options
                .max_batches_per_stream
                .min((options.capacity_batches / 2).max(1)),
            backoff_min: options.backoff_min,
            backoff_max: options.backoff_max,
            ack_timeout: options.ack_timeout,
            authorization,
        };
        let task = runtime.spawn(run(Arc::clone(&shared), channel_endpoint, config));
        Ok(Self {
            shared,
            identity,
            max_samples: options.max_samples_per_batch,
            max_batch_bytes: options.max_batch_bytes,
            task: Some(task),
        })
    }

    /// Validates and enqueues one batch, returning its seq. Never waits for the network; when the
    /// buffer is full the oldest unacknowledged batch is dropped (counted in `dropped`). The batch
    /// is encoded here, on the caller's thread.
    pub fn send(&self, samples: Vec<pb::Sample>) -> Result<u64, BatchError> {
        check_samples(&samples, self.max_samples)?;
        let batch = pb::MetricBatch {
            source_uuid: self.identity.source_uuid.clone(),
            cluster_uuid: self.identity.cluster_uuid.clone(),
            session_id: self.identity.session_id.clone(),
            // Appended below once assigned (protobuf fields may come in any order), so that the
            // expensive encoding stays outside the lock.
            seq: 0,
            samples,
        };
        let len = batch.encoded_len() + SEQ_FIELD_MAX_BYTES;
        if len > self.max_batch_bytes {
            return Err(BatchError::TooLarge {
                bytes: len,
                limit: self.max_batch_bytes,
            });
        }
        let mut buf = Vec::with_capacity(len);
        // A Vec grows as needed, so this cannot run out of room.
        batch.encode(&mut buf).map_err(|_| BatchError::TooLarge {
            bytes: len,
            limit: self.max_batch_bytes,
        })?;
        // Seq assignment and append happen under one lock, so the buffer is always in seq order
        // even with concurrent callers.
        let seq = {
            let mut state = self.shared.lock();
            let seq = state.next_seq;
            state.next_seq += 1;
            append_seq_field(seq, &mut buf);
            if state.queue.len() >= self.shared.capacity {
                state.queue.pop_front();
                state.stats.dropped += 1;
            }
            state.queue.push_back(Queued {
                seq,
                bytes: Bytes::from(buf),
            });
            seq
        };
        self.shared.notify();
        Ok(seq)
    }

    /// Current counters.
    pub fn stats(&self) -> SenderStats {
        self.shared.lock().snapshot()
    }

    /// Sends what is buffered and waits for its acknowledgement, for at most `deadline`; then
    /// stops the background task and returns the final counters (`queued` > 0 means some batches
    /// could not be delivered in time).
    pub async fn close(mut self, deadline: Duration) -> SenderStats {
        self.shared.lock().closing = true;
        self.shared.notify();
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(deadline, &mut task).await.is_err()
        {
            tracing::warn!(
                queued = self.shared.lock().queue.len(),
                "telemetry sender closed before everything was acknowledged"
            );
            task.abort();
        }
        self.stats()
    }
}

impl Drop for StreamSender {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn validate_options(options: &SenderOptions) -> Result<(), StreamError> {
    let invalid = |name, reason| Err(StreamError::InvalidOption { name, reason });
    if options.capacity_batches == 0 {
        return invalid("capacity_batches", "must be at least 1");
    }
    if options.rotate_every.is_zero() {
        return invalid("rotate_every", "must be positive");
    }
    if options.max_batches_per_stream == 0 {
        return invalid("max_batches_per_stream", "must be at least 1");
    }
    if options.backoff_min.is_zero() {
        return invalid("backoff_min", "must be positive");
    }
    if options.backoff_min > options.backoff_max {
        return invalid("backoff_min", "must not exceed backoff_max");
    }
    if options.ack_timeout.is_zero() {
        return invalid("ack_timeout", "must be positive");
    }
    if options.max_samples_per_batch == 0 {
        return invalid("max_samples_per_batch", "must be at least 1");
    }
    if options.max_batch_bytes == 0 {
        return invalid("max_batch_bytes", "must be at least 1");
    }
    Ok(())
}

/// Appends `MetricBatch` field 4 (`seq`, varint wire type) to an encoded batch.
fn append_seq_field(seq: u64, buf: &mut Vec<u8>) {
    buf.push(4 << 3);
    let mut value = seq;
    while value >= 0x80 {
        buf.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

#[derive(Debug)]
pub(crate) struct Queued {
    pub(crate) seq: u64,
    /// The encoded `MetricBatch`, kept encoded so resending costs no re-encoding.
    pub(crate) bytes: Bytes,
}

#[derive(Debug)]
pub(crate) struct State {
    /// Unacknowledged batches, in seq order.
    pub(crate) queue: VecDeque<Queued>,
    pub(crate) next_seq: u64,
    pub(crate) closing: bool,
    pub(crate) stats: SenderStats,
}

impl State {
    pub(crate) fn snapshot(&self) -> SenderStats {
        SenderStats {
            queued: self.queue.len(),
            ..self.stats
        }
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    /// A std mutex: never held across an await, only for queue operations.
    state: Mutex<State>,
    /// Bumped on every change a waiting task may care about; every waiter sees it.
    pub(crate) wake: watch::Sender<u64>,
    capacity: usize,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // Queue operations do not panic half-way, so a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn notify(&self) {
        self.wake
            .send_modify(|version| *version = version.wrapping_add(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_validated() {
        let bad = [
            SenderOptions {
                capacity_batches: 0,
                ..Default::default()
            },
            SenderOptions {
                rotate_every: Duration::ZERO,
                ..Default::default()
            },
            SenderOptions {
                backoff_min: Duration::from_secs(20),
                ..Default::default()
            },
            SenderOptions {
                max_batches_per_stream: 0,
                ..Default::default()
            },
        ];
        for options in bad {
            assert!(matches!(
                validate_options(&options),
                Err(StreamError::InvalidOption { .. })
            ));
        }
        assert!(validate_options(&SenderOptions::default()).is_ok());
    }

    #[test]
    fn appended_seq_decodes_as_the_batch_seq() {
        let batch = pb::MetricBatch {
            source_uuid: "p".into(),
            samples: vec![pb::Sample {
                measurement: "cpu".into(),
                fields: [("used".to_string(), 1.0)].into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        for seq in [1u64, 127, 128, 300, u64::MAX] {
            let mut buf = batch.encode_to_vec();
            append_seq_field(seq, &mut buf);
            let decoded = pb::MetricBatch::decode(buf.as_slice()).ok();
            let expected = pb::MetricBatch {
                seq,
                ..batch.clone()
            };
            assert_eq!(decoded, Some(expected));
            assert!(buf.len() <= batch.encoded_len() + SEQ_FIELD_MAX_BYTES);
        }
    }
}

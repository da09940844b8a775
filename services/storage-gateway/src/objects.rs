//! The object pipeline (D6.7 4.8): request bodies in, stripes coded by `serrano-codec` out to
//! the placement's backends, and back again for reads, streaming with bounded memory.
//!
//! Writes: the body is cut into stripes of `placement.stripe_bytes`; up to
//! `stripes_in_flight` stripes are encoded (on the blocking pool) and written (to all
//! backends at once) while the next ones arrive, and a separate thread hashes the body (MD5
//! for the ETag, SHA-256 when the request signed it), so hashing, coding and I/O overlap.
//! Every write first records a [`Reclaim`] intent: a crash, a failed upload or a failed
//! commit leaves fragments that the reclaimer deletes, never a visible torn object.
//!
//! Reads fetch the `k` data fragments of each stripe first (systematic codes need no
//! arithmetic then), fall back to the redundant ones when a fragment is missing or damaged
//! (degraded read), and queue the stripe's segment for repair.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use md5::Digest;
use serrano_codec::{DataKey, Erasure, Fragment, MasterKey, ObjectCodec};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::backend::Backend;
use crate::meta::{InFlight, MetadataStore, ObjectMeta, Placement, Reclaim, Segment};
use crate::s3::error::{S3Error, S3ErrorCode};

/// Backends by location name.
pub type Backends = HashMap<String, Arc<dyn Backend>>;

/// A request or response body as the pipeline sees it.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, S3Error>> + Send>>;

/// Knobs of the pipeline (from the gateway configuration).
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Stripes being coded or transferred at once, per request (memory per request is about
    /// `stripes_in_flight * stripe_bytes * (1 + n/k)`).
    pub stripes_in_flight: usize,
    /// How long the fragments of a replaced or deleted object stay, so reads in flight finish.
    pub reclaim_grace_ms: i64,
    /// A write of another gateway that has not committed after this long is abandoned.
    pub in_flight_grace_ms: i64,
    /// Limit on one fragment transfer.
    pub fragment_timeout: Duration,
    /// Bytes of decoded stripes kept for hot objects (the edge cache); 0 disables it.
    pub cache_bytes: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            stripes_in_flight: 4,
            reclaim_grace_ms: 5 * 60 * 1000,
            in_flight_grace_ms: 24 * 3600 * 1000,
            fragment_timeout: Duration::from_secs(60),
            cache_bytes: 64 << 20,
        }
    }
}

/// What a request promised about its body.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    /// `Content-MD5`.
    pub md5: Option<[u8; 16]>,
    /// `x-amz-content-sha256` of a signed payload.
    pub sha256: Option<[u8; 32]>,
    /// The decoded length (`Content-Length`, or `x-amz-decoded-content-length`).
    pub length: Option<u64>,
}

/// A stored, not yet committed, segment.
#[derive(Debug, Clone)]
pub struct Written {
    pub segment: Segment,
    pub md5: [u8; 16],
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct PipelineStats {
    pub bytes_written: AtomicU64,
    pub bytes_read: AtomicU64,
    pub degraded_stripes: AtomicU64,
    pub repaired_fragments: AtomicU64,
    pub reclaimed_segments: AtomicU64,
    pub cache_hits: AtomicU64,
}

/// Where a segment's fragments can be found again (for repair).
#[derive(Debug, Clone)]
struct RepairItem {
    placement: Placement,
    segment: Segment,
}

/// The edge cache: decoded stripes by (segment, stripe), least recently used out first.
/// Segments never change once written (a new write gets a new data id), so entries never go
/// stale; a deleted object's stripes just age out.
struct StripeCache {
    capacity: usize,
    /// The entries and their total size in bytes.
    state: std::sync::Mutex<(StripeLru, usize)>,
}

type StripeLru = lru::LruCache<(Uuid, u64), Bytes>;

impl StripeCache {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            state: std::sync::Mutex::new((lru::LruCache::unbounded(), 0)),
        }
    }

    fn get(&self, key: &(Uuid, u64)) -> Option<Bytes> {
        if self.capacity == 0 {
            return None;
        }
        self.state.lock().ok()?.0.get(key).cloned()
    }

    fn insert(&self, key: (Uuid, u64), value: Bytes) {
        // A stripe larger than an eighth of the cache would only push hot ones out.
        if value.len() > self.capacity / 8 {
            return;
        }
        if let Ok(mut state) = self.state.lock() {
            let (cache, used) = &mut *state;
            *used += value.len();
            if let Some(old) = cache.put(key, value) {
                *used -= old.len();
            }
            while *used > self.capacity {
                match cache.pop_lru() {
                    Some((_, evicted)) => *used -= evicted.len(),
                    None => break,
                }
            }
        }
    }
}

pub struct ObjectStore {
    pub meta: Arc<dyn MetadataStore>,
    backends: Arc<Backends>,
    master: Option<Arc<MasterKey>>,
    node: InFlight,
    tuning: Tuning,
    pub stats: Arc<PipelineStats>,
    repairs: Mutex<VecDeque<RepairItem>>,
    cache: StripeCache,
}

impl std::fmt::Debug for ObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStore")
            .field("backends", &self.backends.keys().collect::<Vec<_>>())
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// Name of fragment `index` of stripe `stripe` of segment `data_id` on its backend.
pub fn fragment_key(data_id: Uuid, stripe: u64, index: usize) -> String {
    format!("{data_id}/{stripe:08x}.{index}")
}

pub use crate::now_ms;

fn internal(message: impl Into<String>) -> S3Error {
    S3Error::new(S3ErrorCode::InternalError, message)
}

fn unavailable(message: impl Into<String>) -> S3Error {
    S3Error::new(S3ErrorCode::ServiceUnavailable, message)
}

fn meta_error(err: crate::meta::MetaError) -> S3Error {
    unavailable(err.to_string())
}

/// One stripe's share of a read: `take` bytes from offset `skip` of the decoded stripe.
#[derive(Debug, Clone)]
struct Piece {
    codec: Arc<ObjectCodec>,
    data_id: Uuid,
    stripe: u64,
    stripe_len: usize,
    skip: usize,
    take: usize,
    segment: usize,
}

/// Bodies up to this size are hashed on the request task (a thread hand-off costs more).
const INLINE_HASH_BYTES: u64 = 256 * 1024;
/// Chunks queued for a hashing thread; the body is read no further ahead than this.
const HASH_QUEUE_CHUNKS: usize = 8;

/// The hashes of a body: MD5 for the ETag and, for signed payloads, SHA-256. Large bodies are
/// hashed on a thread per digest (MD5 alone runs at ~0.7 GB/s, the ceiling of a single PUT
/// stream), small ones inline.
enum Hasher {
    Inline {
        md5: Box<md5::Md5>,
        sha: Option<aws_lc_rs::digest::Context>,
    },
    Threaded {
        md5_queue: Option<tokio::sync::mpsc::Sender<Bytes>>,
        sha_queue: Option<tokio::sync::mpsc::Sender<Bytes>>,
        md5: tokio::task::JoinHandle<[u8; 16]>,
        sha: Option<tokio::task::JoinHandle<Option<[u8; 32]>>>,
    },
}

impl Hasher {
    fn start(sha256: bool, length: Option<u64>) -> Self {
        if length.is_some_and(|len| len <= INLINE_HASH_BYTES) {
            return Self::Inline {
                md5: Box::new(md5::Md5::new()),
                sha: sha256.then(|| aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256)),
            };
        }
        let (md5_queue, mut md5_chunks) = tokio::sync::mpsc::channel::<Bytes>(HASH_QUEUE_CHUNKS);
        let md5 = tokio::task::spawn_blocking(move || {
            let mut md5 = md5::Md5::new();
            while let Some(chunk) = md5_chunks.blocking_recv() {
                md5.update(&chunk);
            }
            md5.finalize().into()
        });
        let (sha_queue, sha) = if sha256 {
            let (queue, mut chunks) = tokio::sync::mpsc::channel::<Bytes>(HASH_QUEUE_CHUNKS);
            let handle = tokio::task::spawn_blocking(move || {
                let mut sha = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
                while let Some(chunk) = chunks.blocking_recv() {
                    sha.update(&chunk);
                }
                sha.finish().as_ref().try_into().ok()
            });
            (Some(queue), Some(handle))
        } else {
            (None, None)
        };
        Self::Threaded {
            md5_queue: Some(md5_queue),
            sha_queue,
            md5,
            sha,
        }
    }

    /// Hashes a chunk, or hands it over (waiting while a hashing thread is behind).
    async fn feed(&mut self, chunk: Bytes) {
        match self {
            Self::Inline { md5, sha } => {
                md5.update(&chunk);
                if let Some(sha) = sha.as_mut() {
                    sha.update(&chunk);
                }
            }
            Self::Threaded {
                md5_queue,
                sha_queue,
                ..
            } => {
                if let Some(queue) = sha_queue {
                    let _ = queue.send(chunk.clone()).await;
                }
                if let Some(queue) = md5_queue {
                    let _ = queue.send(chunk).await;
                }
            }
        }
    }

    async fn finish(self) -> Result<([u8; 16], Option<[u8; 32]>), S3Error> {
        match self {
            Self::Inline { md5, sha } => Ok((
                md5.finalize().into(),
                sha.and_then(|sha| sha.finish().as_ref().try_into().ok()),
            )),
            Self::Threaded {
                md5_queue,
                sha_queue,
                md5,
                sha,
            } => {
                drop(md5_queue);
                drop(sha_queue);
                let failed =
                    |err: tokio::task::JoinError| internal(format!("hashing thread failed: {err}"));
                let md5 = md5.await.map_err(failed)?;
                let sha = match sha {
                    Some(handle) => handle.await.map_err(failed)?,
                    None => None,
                };
                Ok((md5, sha))
            }
        }
    }
}

impl ObjectStore {
    pub fn new(
        meta: Arc<dyn MetadataStore>,
        backends: Backends,
        master: Option<MasterKey>,
        node: String,
        tuning: Tuning,
    ) -> Self {
        Self {
            meta,
            backends: Arc::new(backends),
            master: master.map(Arc::new),
            node: InFlight {
                node,
                boot: Uuid::new_v4(),
            },
            cache: StripeCache::new(tuning.cache_bytes),
            tuning,
            stats: Arc::new(PipelineStats::default()),
            repairs: Mutex::new(VecDeque::new()),
        }
    }

    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    fn backend(&self, name: &str) -> Result<Arc<dyn Backend>, S3Error> {
        self.backends
            .get(name)
            .cloned()
            .ok_or_else(|| internal(format!("storage location {name:?} is not configured")))
    }

    fn erasure(placement: &Placement) -> Result<Erasure, S3Error> {
        Erasure::new(
            placement.scheme,
            usize::from(placement.data),
            usize::from(placement.parity),
        )
        .map_err(|err| internal(format!("placement cannot be coded: {err}")))
    }

    /// The codec of a stored segment.
    fn codec_for(&self, placement: &Placement, segment: &Segment) -> Result<ObjectCodec, S3Error> {
        let key = match &segment.wrapped_key {
            Some(wrapped) => {
                let master = self.master.as_ref().ok_or_else(|| {
                    internal("object is encrypted but no master key is configured")
                })?;
                Some(master.unwrap_key(wrapped).map_err(|err| {
                    internal(format!(
                        "data key cannot be unwrapped (wrong master key?): {err}"
                    ))
                })?)
            }
            None => None,
        };
        ObjectCodec::new(
            Self::erasure(placement)?,
            placement.compression,
            key,
            *segment.data_id.as_bytes(),
        )
        .map_err(|err| internal(err.to_string()))
    }

    /// Fragments needed to accept a stripe: `k`, plus one when parity equals data (MinIO's
    /// write quorum), so that one more failure never loses an acknowledged write.
    fn write_quorum(placement: &Placement) -> usize {
        let k = usize::from(placement.data);
        if placement.data == placement.parity {
            k + 1
        } else {
            k
        }
    }

    /// Stores `body` as a new segment under `placement`. The caller commits it (writes the
    /// metadata that references it, then calls [`ObjectStore::committed`]) or drops it
    /// ([`ObjectStore::abandon`]).
    pub async fn write(
        &self,
        placement: &Placement,
        bucket: &str,
        key: &str,
        upload_id: Option<&str>,
        body: ByteStream,
        expect: Expectations,
    ) -> Result<Written, S3Error> {
        let data_id = Uuid::new_v4();
        let (data_key, wrapped_key) = if placement.encrypted {
            let master = self
                .master
                .as_ref()
                .ok_or_else(|| internal("the policy encrypts but no master key is configured"))?;
            let data_key = DataKey::generate().map_err(|err| internal(err.to_string()))?;
            let wrapped = master
                .wrap(&data_key)
                .map_err(|err| internal(err.to_string()))?;
            (Some(data_key), Some(wrapped))
        } else {
            (None, None)
        };
        let codec = Arc::new(
            ObjectCodec::new(
                Self::erasure(placement)?,
                placement.compression,
                data_key,
                *data_id.as_bytes(),
            )
            .map_err(|err| internal(err.to_string()))?,
        );
        let reclaim = Reclaim {
            data_id,
            locations: placement.locations.clone(),
            not_before_ms: now_ms().saturating_add(self.tuning.in_flight_grace_ms),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            upload_id: upload_id.map(str::to_owned),
            in_flight: Some(self.node.clone()),
        };
        self.meta.put_reclaim(&reclaim).await.map_err(meta_error)?;
        match self
            .write_stripes(placement, codec, data_id, body, &expect)
            .await
        {
            Ok((size, md5, degraded)) => {
                self.stats.bytes_written.fetch_add(size, Ordering::Relaxed);
                let segment = Segment {
                    data_id,
                    size,
                    wrapped_key,
                };
                if degraded {
                    self.queue_repair(placement, &segment).await;
                }
                Ok(Written { segment, md5 })
            }
            Err(err) => {
                self.reclaim_now(reclaim).await;
                Err(err)
            }
        }
    }

    async fn write_stripes(
        &self,
        placement: &Placement,
        codec: Arc<ObjectCodec>,
        data_id: Uuid,
        mut body: ByteStream,
        expect: &Expectations,
    ) -> Result<(u64, [u8; 16], bool), S3Error> {
        let stripe_bytes = usize::try_from(placement.stripe_bytes.max(1)).unwrap_or(1 << 20);
        let targets = placement
            .locations
            .iter()
            .map(|name| self.backend(name))
            .collect::<Result<Vec<_>, _>>()?;
        let targets = Arc::new(targets);
        let quorum = Self::write_quorum(placement);
        let mut hasher = Hasher::start(expect.sha256.is_some(), expect.length);
        let mut pending: VecDeque<tokio::task::JoinHandle<Result<bool, S3Error>>> = VecDeque::new();
        let mut buffer = BytesMut::new();
        let mut stripe = 0u64;
        let mut total = 0u64;
        let mut degraded = false;

        let launch = |plain: Bytes, stripe: u64| {
            let codec = codec.clone();
            let targets = targets.clone();
            let timeout = self.tuning.fragment_timeout;
            tokio::spawn(store_stripe(
                codec, targets, data_id, stripe, plain, quorum, timeout,
            ))
        };

        let outcome: Result<(), S3Error> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                total += chunk.len() as u64;
                if let Some(length) = expect.length
                    && total > length
                {
                    return Err(S3Error::new(
                        S3ErrorCode::InvalidRequest,
                        "the body is longer than its declared length",
                    ));
                }
                hasher.feed(chunk.clone()).await;
                buffer.extend_from_slice(&chunk);
                while buffer.len() >= stripe_bytes {
                    let plain = buffer.split_to(stripe_bytes).freeze();
                    pending.push_back(launch(plain, stripe));
                    stripe += 1;
                    while pending.len() >= self.tuning.stripes_in_flight.max(1) {
                        if let Some(task) = pending.pop_front() {
                            degraded |= join_stripe(task).await?;
                        }
                    }
                }
            }
            if !buffer.is_empty() {
                let plain = std::mem::take(&mut buffer).freeze();
                pending.push_back(launch(plain, stripe));
            }
            while let Some(task) = pending.pop_front() {
                degraded |= join_stripe(task).await?;
            }
            Ok(())
        }
        .await;
        if let Err(err) = outcome {
            // Let stripes in flight land (or fail) before the caller reclaims the segment,
            // so no fragment is written after the reclaimer listed what to delete.
            for task in pending {
                let _ = task.await;
            }
            return Err(err);
        }
        let (md5, sha256) = hasher.finish().await?;
        if let Some(length) = expect.length
            && total != length
        {
            return Err(S3Error::new(
                S3ErrorCode::IncompleteBody,
                format!("received {total} of the {length} bytes declared"),
            ));
        }
        if let Some(expected) = expect.md5
            && expected != md5
        {
            return Err(S3Error::new(
                S3ErrorCode::BadDigest,
                "the Content-MD5 you specified did not match what was received",
            ));
        }
        if let Some(expected) = expect.sha256
            && Some(expected) != sha256
        {
            return Err(S3Error::new(
                S3ErrorCode::XAmzContentSHA256Mismatch,
                "the provided x-amz-content-sha256 header does not match what was computed",
            ));
        }
        Ok((total, md5, degraded))
    }

    /// Queues a segment whose fragments are not all in place (a degraded write or read).
    async fn queue_repair(&self, placement: &Placement, segment: &Segment) {
        let mut queue = self.repairs.lock().await;
        if !queue
            .iter()
            .any(|item| item.segment.data_id == segment.data_id)
        {
            queue.push_back(RepairItem {
                placement: placement.clone(),
                segment: segment.clone(),
            });
        }
    }

    /// The segment is referenced by committed metadata: its intent record goes.
    pub async fn committed(&self, data_id: Uuid) {
        if let Err(err) = self.meta.delete_reclaim(data_id).await {
            // Harmless: the reclaimer finds the segment referenced and drops the record.
            tracing::warn!(%data_id, error = %err, "cannot drop the intent of a committed write");
        }
    }

    /// Fragments no longer referenced (an overwrite, a delete, an abort, a failed commit):
    /// deleted after the grace period (`delay`) or at once.
    pub async fn abandon(
        &self,
        placement: &Placement,
        segments: &[Segment],
        bucket: &str,
        key: &str,
        upload_id: Option<&str>,
        delay: bool,
    ) {
        let not_before_ms = if delay {
            now_ms().saturating_add(self.tuning.reclaim_grace_ms)
        } else {
            now_ms()
        };
        for segment in segments {
            let reclaim = Reclaim {
                data_id: segment.data_id,
                locations: placement.locations.clone(),
                not_before_ms,
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                upload_id: upload_id.map(str::to_owned),
                in_flight: None,
            };
            if delay {
                if let Err(err) = self.meta.put_reclaim(&reclaim).await {
                    tracing::warn!(data_id = %segment.data_id, error = %err, "cannot record fragments to reclaim");
                }
            } else {
                self.reclaim_now(reclaim).await;
            }
        }
    }

    /// Marks a segment's fragments due and deletes them now (the record stays if that fails,
    /// so the periodic pass retries).
    async fn reclaim_now(&self, mut reclaim: Reclaim) {
        reclaim.in_flight = None;
        reclaim.not_before_ms = now_ms();
        if let Err(err) = self.meta.put_reclaim(&reclaim).await {
            tracing::warn!(data_id = %reclaim.data_id, error = %err, "cannot record fragments to reclaim");
            return;
        }
        if self.delete_fragments(&reclaim).await {
            let _ = self.meta.delete_reclaim(reclaim.data_id).await;
        }
    }

    /// Deletes every fragment of a segment on its locations; true when all went.
    async fn delete_fragments(&self, reclaim: &Reclaim) -> bool {
        let prefix = format!("{}/", reclaim.data_id);
        let mut all_gone = true;
        for name in &reclaim.locations {
            let Ok(backend) = self.backend(name) else {
                continue;
            };
            match backend.list(&prefix).await {
                Ok(keys) => {
                    for key in keys {
                        if backend.delete(&key).await.is_err() {
                            all_gone = false;
                        }
                    }
                }
                Err(_) => all_gone = false,
            }
        }
        if all_gone {
            self.stats
                .reclaimed_segments
                .fetch_add(1, Ordering::Relaxed);
        }
        all_gone
    }

    /// Whether committed metadata still references the segment of a reclaim record.
    async fn referenced(&self, reclaim: &Reclaim) -> Result<bool, S3Error> {
        if let Some(upload_id) = &reclaim.upload_id
            && self
                .meta
                .upload(&reclaim.bucket, upload_id)
                .await
                .map_err(meta_error)?
                .is_some()
            && self
                .meta
                .parts(upload_id)
                .await
                .map_err(meta_error)?
                .iter()
                .any(|part| part.data_id == reclaim.data_id)
        {
            return Ok(true);
        }
        Ok(self
            .meta
            .object(&reclaim.bucket, &reclaim.key)
            .await
            .map_err(meta_error)?
            .is_some_and(|object| {
                object
                    .segments
                    .iter()
                    .any(|segment| segment.data_id == reclaim.data_id)
            }))
    }

    /// One pass of the reclaimer: deletes the fragments of every due, unreferenced record.
    /// Unfinished writes of this node's earlier runs are due at once (their writer is gone).
    pub async fn reclaim_pass(&self) -> Result<u64, S3Error> {
        let now = now_ms();
        let mut after = None;
        let mut reclaimed = 0;
        loop {
            let batch = self.meta.reclaims(after, 256).await.map_err(meta_error)?;
            let Some(last) = batch.last() else {
                break;
            };
            after = Some(last.data_id);
            for reclaim in batch {
                let due = match &reclaim.in_flight {
                    Some(writer) if writer.node == self.node.node => {
                        writer.boot != self.node.boot || reclaim.not_before_ms <= now
                    }
                    _ => reclaim.not_before_ms <= now,
                };
                if !due {
                    continue;
                }
                if self.referenced(&reclaim).await? {
                    self.meta
                        .delete_reclaim(reclaim.data_id)
                        .await
                        .map_err(meta_error)?;
                    continue;
                }
                if self.delete_fragments(&reclaim).await {
                    self.meta
                        .delete_reclaim(reclaim.data_id)
                        .await
                        .map_err(meta_error)?;
                    reclaimed += 1;
                }
            }
        }
        Ok(reclaimed)
    }

    /// The bytes `range` of `object` (already checked against its size), decoded stripe by
    /// stripe with up to `stripes_in_flight` stripes fetched ahead.
    pub fn read(self: &Arc<Self>, object: &ObjectMeta, range: Range<u64>) -> ByteStream {
        let pieces = match self.plan(object, range) {
            Ok(pieces) => pieces,
            Err(err) => return futures::stream::once(async move { Err(err) }).boxed(),
        };
        let store = self.clone();
        let placement = Arc::new(object.placement.clone());
        let segments = Arc::new(object.segments.clone());
        futures::stream::iter(pieces)
            .map(move |piece| {
                let store = store.clone();
                let placement = placement.clone();
                let segments = segments.clone();
                async move { store.read_piece(&placement, &segments, piece).await }
            })
            .buffered(self.tuning.stripes_in_flight.max(1))
            .boxed()
    }

    fn plan(&self, object: &ObjectMeta, range: Range<u64>) -> Result<Vec<Piece>, S3Error> {
        let stripe_bytes = u64::from(object.placement.stripe_bytes.max(1));
        let mut pieces = Vec::new();
        let mut segment_start = 0u64;
        for (index, segment) in object.segments.iter().enumerate() {
            let segment_end = segment_start + segment.size;
            let from = range.start.max(segment_start);
            let to = range.end.min(segment_end);
            if from < to {
                let codec = Arc::new(self.codec_for(&object.placement, segment)?);
                let mut offset = from - segment_start;
                let end = to - segment_start;
                while offset < end {
                    let stripe = offset / stripe_bytes;
                    let stripe_start = stripe * stripe_bytes;
                    let stripe_len = stripe_bytes.min(segment.size - stripe_start);
                    let take = (stripe_start + stripe_len).min(end) - offset;
                    pieces.push(Piece {
                        codec: codec.clone(),
                        data_id: segment.data_id,
                        stripe,
                        stripe_len: usize::try_from(stripe_len).unwrap_or(usize::MAX),
                        skip: usize::try_from(offset - stripe_start).unwrap_or(usize::MAX),
                        take: usize::try_from(take).unwrap_or(usize::MAX),
                        segment: index,
                    });
                    offset += take;
                }
            }
            segment_start = segment_end;
        }
        Ok(pieces)
    }

    async fn fetch(
        &self,
        placement: &Placement,
        data_id: Uuid,
        stripe: u64,
        index: usize,
    ) -> Option<Fragment> {
        let backend = self.backend(placement.locations.get(index)?).ok()?;
        let key = fragment_key(data_id, stripe, index);
        match tokio::time::timeout(self.tuning.fragment_timeout, backend.get(&key)).await {
            Ok(Ok(Some(bytes))) => Fragment::from_bytes(&bytes).ok(),
            Ok(Ok(None)) => None,
            Ok(Err(err)) => {
                tracing::debug!(error = %err, key, "fragment read failed");
                None
            }
            Err(_) => {
                tracing::debug!(key, backend = backend.name(), "fragment read timed out");
                None
            }
        }
    }

    /// Fragments `indices` of a stripe, fetched concurrently.
    async fn fetch_many(
        &self,
        placement: &Placement,
        data_id: Uuid,
        stripe: u64,
        indices: Range<usize>,
        into: &mut [Option<Fragment>],
    ) {
        let fetched = futures::future::join_all(
            indices
                .clone()
                .map(|index| self.fetch(placement, data_id, stripe, index)),
        )
        .await;
        for (index, fragment) in indices.zip(fetched) {
            if let Some(slot) = into.get_mut(index) {
                *slot = fragment;
            }
        }
    }

    async fn read_piece(
        &self,
        placement: &Placement,
        segments: &[Segment],
        piece: Piece,
    ) -> Result<Bytes, S3Error> {
        if let Some(plain) = self.cache.get(&(piece.data_id, piece.stripe)) {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            self.stats
                .bytes_read
                .fetch_add(piece.take as u64, Ordering::Relaxed);
            return Ok(plain.slice(piece.skip..piece.skip + piece.take));
        }
        let k = usize::from(placement.data);
        let n = k + usize::from(placement.parity);
        let mut fragments: Vec<Option<Fragment>> = (0..n).map(|_| None).collect();
        self.fetch_many(placement, piece.data_id, piece.stripe, 0..k, &mut fragments)
            .await;
        let mut missing = fragments.iter().take(k).filter(|f| f.is_none()).count();
        if missing > 0 {
            self.fetch_many(placement, piece.data_id, piece.stripe, k..n, &mut fragments)
                .await;
        }
        let fetched_all = missing > 0 || k == n;
        let mut decoded = decode(piece.codec.clone(), piece.stripe, fragments).await;
        if decoded.is_err() && !fetched_all {
            // The data fragments were all there but one was damaged (rare): read all n again
            // rather than keep a copy of every stripe's fragments for this case.
            let mut all: Vec<Option<Fragment>> = (0..n).map(|_| None).collect();
            self.fetch_many(placement, piece.data_id, piece.stripe, 0..n, &mut all)
                .await;
            missing = all.iter().take(k).filter(|f| f.is_none()).count();
            decoded = decode(piece.codec.clone(), piece.stripe, all).await;
        }
        let decoded = decoded.map_err(|err| {
            unavailable(format!(
                "stripe {} of segment {} cannot be read: {err}",
                piece.stripe, piece.data_id
            ))
        })?;
        if missing > 0 || !decoded.damaged.is_empty() {
            self.stats.degraded_stripes.fetch_add(1, Ordering::Relaxed);
            if let Some(segment) = segments.get(piece.segment) {
                self.queue_repair(placement, segment).await;
            }
        }
        if decoded.plain.len() != piece.stripe_len {
            return Err(internal(format!(
                "stripe {} of segment {} decoded to {} bytes, expected {}",
                piece.stripe,
                piece.data_id,
                decoded.plain.len(),
                piece.stripe_len
            )));
        }
        self.stats
            .bytes_read
            .fetch_add(piece.take as u64, Ordering::Relaxed);
        let plain = Bytes::from(decoded.plain);
        self.cache
            .insert((piece.data_id, piece.stripe), plain.clone());
        Ok(plain.slice(piece.skip..piece.skip + piece.take))
    }

    /// Rebuilds the missing or damaged fragments of every stripe of a segment; returns how
    /// many fragments were written back.
    pub async fn repair_segment(
        &self,
        placement: &Placement,
        segment: &Segment,
    ) -> Result<u64, S3Error> {
        let codec = Arc::new(self.codec_for(placement, segment)?);
        let stripe_bytes = u64::from(placement.stripe_bytes.max(1));
        let stripes = segment.size.div_ceil(stripe_bytes);
        let n = usize::from(placement.data) + usize::from(placement.parity);
        let mut written = 0;
        for stripe in 0..stripes {
            let mut fragments: Vec<Option<Fragment>> = (0..n).map(|_| None).collect();
            self.fetch_many(placement, segment.data_id, stripe, 0..n, &mut fragments)
                .await;
            let codec = codec.clone();
            let rebuilt =
                tokio::task::spawn_blocking(move || codec.repair_stripe(stripe, fragments))
                    .await
                    .map_err(|err| internal(err.to_string()))?
                    .map_err(|err| {
                        unavailable(format!("stripe {stripe} cannot be repaired: {err}"))
                    })?;
            for (index, bytes) in rebuilt {
                let Some(name) = placement.locations.get(index) else {
                    continue;
                };
                let backend = self.backend(name)?;
                backend
                    .put(
                        &fragment_key(segment.data_id, stripe, index),
                        Bytes::from(bytes),
                    )
                    .await
                    .map_err(|err| unavailable(err.to_string()))?;
                written += 1;
            }
        }
        self.stats
            .repaired_fragments
            .fetch_add(written, Ordering::Relaxed);
        Ok(written)
    }

    /// Repairs the segments that degraded reads and writes queued; the ones that fail stay
    /// queued for the next pass.
    pub async fn repair_pending(&self) -> u64 {
        let items: Vec<RepairItem> = self.repairs.lock().await.drain(..).collect();
        let mut repaired = 0;
        let mut failed = Vec::new();
        for item in items {
            match self.repair_segment(&item.placement, &item.segment).await {
                Ok(count) => repaired += count,
                Err(err) => {
                    tracing::debug!(data_id = %item.segment.data_id, error = %err.message, "repair postponed");
                    failed.push(item);
                }
            }
        }
        self.repairs.lock().await.extend(failed);
        repaired
    }

    pub async fn pending_repairs(&self) -> usize {
        self.repairs.lock().await.len()
    }
}

async fn decode(
    codec: Arc<ObjectCodec>,
    stripe: u64,
    fragments: Vec<Option<Fragment>>,
) -> Result<serrano_codec::DecodedStripe, String> {
    tokio::task::spawn_blocking(move || codec.decode_stripe(stripe, fragments))
        .await
        .map_err(|err| err.to_string())?
        .map_err(|err| err.to_string())
}

/// Encodes one stripe and writes its fragments to every location at once. `Ok(true)` when
/// the write quorum was met but some location failed (the segment needs repair).
async fn store_stripe(
    codec: Arc<ObjectCodec>,
    targets: Arc<Vec<Arc<dyn Backend>>>,
    data_id: Uuid,
    stripe: u64,
    plain: Bytes,
    quorum: usize,
    timeout: Duration,
) -> Result<bool, S3Error> {
    let encoded = tokio::task::spawn_blocking(move || codec.encode_stripe(stripe, &plain))
        .await
        .map_err(|err| internal(err.to_string()))?
        .map_err(|err| internal(err.to_string()))?;
    let writes = targets.iter().enumerate().map(|(index, backend)| {
        let fragment = encoded.fragment_vec(index).map(Bytes::from);
        let key = fragment_key(data_id, stripe, index);
        async move {
            let fragment = fragment.ok_or_else(|| format!("fragment {index} missing"))?;
            match tokio::time::timeout(timeout, backend.put(&key, fragment)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(err)) => Err(err.to_string()),
                Err(_) => Err(format!("backend {} timed out", backend.name())),
            }
        }
    });
    let results = futures::future::join_all(writes).await;
    let stored = results.iter().filter(|r| r.is_ok()).count();
    if stored < quorum {
        let errors: Vec<String> = results.into_iter().filter_map(Result::err).collect();
        return Err(unavailable(format!(
            "only {stored} of {} storage locations accepted stripe {stripe} (need {quorum}): {}",
            targets.len(),
            errors.join("; ")
        )));
    }
    Ok(stored < targets.len())
}

async fn join_stripe(
    task: tokio::task::JoinHandle<Result<bool, S3Error>>,
) -> Result<bool, S3Error> {
    task.await
        .map_err(|err| internal(format!("stripe task failed: {err}")))?
}

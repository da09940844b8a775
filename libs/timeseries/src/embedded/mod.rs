//! The embedded time-series store, the default backend of PMDS (D6.7 4.4.2: "Persistent
//! Monitoring Data Storage ... long-term storage for the collected telemetry data").
//!
//! Layout, after Prometheus / VictoriaMetrics / Gorilla:
//!
//! - A series is (bucket, measurement, sorted tags); each field of a series is a column of a
//!   single type (a field keeps the type it was first written with, per bucket and measurement,
//!   as in InfluxDB; a body that conflicts is rejected whole).
//! - A column appends into a head chunk encoded as samples arrive (see `codec`: delta-of-delta
//!   times, nothing at all for regular times, decimal-aware deltas or Gorilla XOR for floats,
//!   zigzag deltas for integers, bits for bools, "same as before" bits for strings). A head is
//!   sealed after 120 samples into an immutable chunk with its min/max time for range pruning.
//! - An inverted index (measurement → series, tag pair → series) answers queries.
//! - Series live in 64 shards, each behind its own mutex; the hot path hashes the raw series-key
//!   bytes of a line to find the series without allocating.
//!
//! Durability (`dir` set): every body is appended to a write-ahead log before it is applied
//! (group commit: concurrent writers share one fsync). A checkpoint (periodic, when the WAL is
//! big, or [`EmbeddedTsdb::checkpoint`]) writes the chunks sealed since the last one into a new
//! segment file, then a checkpoint file with the series table and every head (temp + rename),
//! then drops the WAL files it covers. Sealed chunks that are on disk are read back from their
//! segment on query, so memory holds the heads and chunk descriptors, not the history. With
//! more than 8 segments, the two adjacent (in time) segments that are smallest together are
//! merged, small chunks of a column joined into chunks of up to 2048 samples (each byte is
//! rewritten O(log n) times). `open` loads the latest checkpoint and its segments and replays
//! the WAL, ignoring a torn last record; a damaged checkpoint or segment fails `open` (or the
//! query that reads the chunk) rather than being dropped silently.
//!
//! Writes are validated whole before anything is stored: the body is parsed and every value
//! resolved to its series and column (type checked) first; the types of new fields are then
//! registered all at once, the body appended to the WAL and applied.
//!
//! Retention drops whole chunks whose newest sample is older than the retention, at checkpoint
//! time.

mod bits;
mod codec;
mod files;
mod wal;

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::hash::Hasher;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtOrd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};

use crate::line_protocol::{
    self, Lines, RawLine, RawValue, encode_series_key, owned_tags, unescape_measurement,
    unescape_name, unescape_string,
};
use crate::{
    Capabilities, FieldValue, Point, Precision, Query, Row, TimeSeriesStore, TsError, WriteSummary,
    now_ns,
};

use codec::{ColType, Head, Samples, decode_chunk, value_bits};
use files::{Checkpoint, ChunkIn, ChunkMeta, Segment};
use wal::Wal;

const SHARD_BITS: u32 = 6;
const SHARDS: usize = 1 << SHARD_BITS;
const SHARD_MASK: usize = SHARDS - 1;
/// Samples per head before it is sealed (Prometheus uses 120 too: ~1 KiB of head per column at
/// most, chunk metadata amortised over many samples).
const SEAL_SAMPLES: u32 = 120;
/// More live segments than this are merged (pairwise) at the next checkpoint.
const MAX_SEGMENTS: usize = 8;
/// Adjacent chunks of a column are merged up to this many samples when segments are merged.
const MERGED_CHUNK_SAMPLES: u32 = 2048;
/// Marks a column that a body creates (index into `Plan::new_cols`).
const PENDING: u32 = 1 << 31;

/// When a write is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// After its WAL record is fsynced; concurrent writers share one fsync (group commit).
    #[default]
    GroupCommit,
    /// After its WAL record is written to the OS (survives a process crash, not a power loss);
    /// [`TimeSeriesStore::flush`] fsyncs.
    None,
}

/// Options of [`EmbeddedTsdb::open`].
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Data directory; `None` keeps everything in memory (nothing survives the process).
    pub dir: Option<PathBuf>,
    /// Samples older than this are dropped (whole chunks) at checkpoint time; `None` keeps all.
    pub retention: Option<Duration>,
    pub sync: SyncMode,
    /// Time between background checkpoints (also the retention period in memory-only mode).
    pub checkpoint_interval: Duration,
    /// A checkpoint also starts when the active WAL file grows past this (1 GiB: replaying it
    /// at open takes a few seconds; checkpoints cost CPU while writers run).
    pub checkpoint_wal_bytes: u64,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            dir: None,
            retention: None,
            sync: SyncMode::GroupCommit,
            checkpoint_interval: Duration::from_secs(300),
            checkpoint_wal_bytes: 1 << 30,
        }
    }
}

/// Counters of the store ([`EmbeddedTsdb::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EmbeddedStats {
    pub buckets: u64,
    pub series: u64,
    /// Series × fields.
    pub columns: u64,
    /// Samples stored (heads and sealed chunks).
    pub samples: u64,
    /// Samples in head chunks (in memory, in the WAL until the next checkpoint).
    pub head_samples: u64,
    pub sealed_chunks: u64,
    pub segments: u64,
    pub wal_bytes: u64,
    /// Every file of the data directory (segments, checkpoint, WAL).
    pub bytes_on_disk: u64,
    /// Estimated heap held for series, indexes, heads and not yet persisted chunks.
    pub bytes_in_memory: u64,
    pub checkpoints: u64,
}

type SeriesId = u32;

fn shard_of(id: SeriesId) -> usize {
    id as usize & SHARD_MASK
}

fn local_of(id: SeriesId) -> usize {
    (id >> SHARD_BITS) as usize
}

fn make_id(shard: usize, local: usize) -> Option<SeriesId> {
    let l = u32::try_from(local)
        .ok()
        .filter(|&l| l < (1 << (32 - SHARD_BITS)))?;
    Some((l << SHARD_BITS) | shard as u32)
}

fn key_hash(bucket: u32, key: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write_u32(bucket);
    h.write(key);
    h.finish()
}

fn shard_for(hash: u64) -> usize {
    (hash >> (64 - SHARD_BITS)) as usize
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|p| p.into_inner())
}

fn io_err(e: io::Error) -> TsError {
    TsError::Io(e)
}

#[derive(Debug)]
struct SeriesDef {
    bucket: u32,
    measurement: Arc<str>,
    tags: Box<[(Arc<str>, Arc<str>)]>,
}

#[derive(Debug, Clone)]
enum ChunkData {
    Mem(Arc<[u8]>),
    Disk {
        seg: Arc<Segment>,
        offset: u64,
        len: u32,
        crc: u32,
    },
}

#[derive(Debug, Clone)]
struct Chunk {
    min_t: i64,
    max_t: i64,
    count: u32,
    data: ChunkData,
}

impl Chunk {
    fn overlaps(&self, start: i64, stop: i64) -> bool {
        self.max_t >= start && self.min_t < stop
    }

    fn bytes(&self) -> Result<Cow<'_, [u8]>, TsError> {
        match &self.data {
            ChunkData::Mem(b) => Ok(Cow::Borrowed(b)),
            ChunkData::Disk {
                seg,
                offset,
                len,
                crc,
            } => files::read_chunk(seg, *offset, *len, *crc)
                .map(Cow::Owned)
                .map_err(io_err),
        }
    }

    /// Sealed chunks store their first time relative to their `min_t` (a byte, not nine).
    fn samples(&self) -> Result<Samples, TsError> {
        let b = self.bytes()?;
        decode_chunk(&b, self.min_t)
            .map(|(_, s)| s)
            .ok_or_else(|| TsError::Unavailable("a stored chunk cannot be decoded".into()))
    }
}

#[derive(Debug)]
struct Column {
    name: Arc<str>,
    /// The escaped spelling first written, when it differs from `name`.
    raw: Option<Box<[u8]>>,
    ty: ColType,
    head: Option<Head>,
    /// Sealed chunks, oldest first: on disk, then in memory not yet persisted.
    chunks: Vec<Chunk>,
}

impl Column {
    fn new(name: Arc<str>, raw: &[u8], ty: ColType) -> Column {
        let raw = (raw != name.as_bytes()).then(|| raw.into());
        Column {
            name,
            raw,
            ty,
            head: None,
            chunks: Vec::new(),
        }
    }

    #[inline]
    fn raw_eq(&self, key: &[u8]) -> bool {
        match &self.raw {
            Some(r) => **r == *key,
            None => self.name.as_bytes() == key,
        }
    }

    fn append(&mut self, t: i64, v: &RawValue<'_>) {
        let bits = value_bits(v);
        let s: Cow<'_, str> = match v {
            RawValue::Str(raw) => unescape_string(raw).unwrap_or_default(),
            _ => Cow::Borrowed(""),
        };
        let ty = self.ty;
        let h = self.head.get_or_insert_with(|| Head::for_first(ty, bits));
        h.append(t, bits, s.as_bytes());
        if h.count >= SEAL_SAMPLES {
            self.seal();
        }
    }

    fn seal(&mut self) {
        if let Some(h) = self.head.take()
            && h.count > 0
        {
            self.chunks.push(Chunk {
                min_t: h.min_t,
                max_t: h.max_t,
                count: h.count,
                data: ChunkData::Mem(h.to_chunk(h.min_t).into()),
            });
        }
    }

    /// Drops chunks (and the head) whose newest sample is before `cutoff`.
    fn retain_after(&mut self, cutoff: i64) {
        self.chunks.retain(|c| c.max_t >= cutoff);
        if self.head.as_ref().is_some_and(|h| h.max_t < cutoff) {
            self.head = None;
        }
    }

    fn samples(&self) -> u64 {
        self.chunks.iter().map(|c| u64::from(c.count)).sum::<u64>()
            + self.head.as_ref().map_or(0, |h| u64::from(h.count))
    }
}

#[derive(Debug)]
struct Series {
    def: Arc<SeriesDef>,
    cols: Vec<Column>,
    /// One buffer (one cache miss on the hot path): the canonical series key (`key_len`
    /// bytes), then the raw keys and types of `cols` in order, `[len][key][type]` per column
    /// (`[0][type]` for keys over 255 bytes). Lines repeat their field order, so a write
    /// checks its keys against this without touching the columns.
    layout: Vec<u8>,
    key_len: u32,
}

impl Series {
    fn new(def: Arc<SeriesDef>, key: &[u8]) -> Series {
        let mut layout = Vec::with_capacity(key.len() + 64);
        layout.extend_from_slice(key);
        Series {
            def,
            cols: Vec::new(),
            key_len: key.len() as u32,
            layout,
        }
    }

    #[inline]
    fn key(&self) -> &[u8] {
        self.layout.get(..self.key_len as usize).unwrap_or_default()
    }

    #[inline]
    fn col_layout(&self) -> &[u8] {
        self.layout.get(self.key_len as usize..).unwrap_or_default()
    }

    fn add_column(&mut self, col: Column) {
        let raw = col.raw.as_deref().unwrap_or(col.name.as_bytes());
        match u8::try_from(raw.len()) {
            Ok(n) => {
                self.layout.push(n);
                self.layout.extend_from_slice(raw);
            }
            Err(_) => self.layout.push(0),
        }
        self.layout.push(col.ty as u8);
        self.cols.push(col);
    }
}

#[derive(Default)]
struct Shard {
    /// Hash of (bucket, canonical key) → series of this shard (verified against the key).
    fast: FxHashMap<u64, SeriesId>,
    /// Per bucket: other spellings (tag order, escapes, hash collisions) → series, which may
    /// live in another shard.
    aliases: Vec<FxHashMap<Box<[u8]>, SeriesId>>,
    series: Vec<Series>,
}

impl Shard {
    /// The series of a raw key whose [`key_hash`] is `h`.
    #[inline]
    fn find(&self, bucket: u32, key: &[u8], h: u64) -> Option<SeriesId> {
        if let Some(&sid) = self.fast.get(&h)
            && let Some(s) = self.series.get(local_of(sid))
            && s.def.bucket == bucket
            && s.key() == key
        {
            return Some(sid);
        }
        self.aliases.get(bucket as usize)?.get(key).copied()
    }

    fn add_alias(&mut self, bucket: u32, key: &[u8], id: SeriesId) {
        let b = bucket as usize;
        if self.aliases.len() <= b {
            self.aliases.resize_with(b + 1, FxHashMap::default);
        }
        self.aliases[b].insert(key.into(), id);
    }
}

#[derive(Default)]
struct MeasIndex {
    all: Vec<SeriesId>,
    tags: FxHashMap<Arc<str>, FxHashMap<Arc<str>, Vec<SeriesId>>>,
}

#[derive(Default)]
struct Buckets {
    ids: FxHashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
}

struct DiskState {
    dir: PathBuf,
    segments: BTreeMap<u64, Arc<Segment>>,
    /// Live segments, oldest data first (a column's chunks follow this order).
    order: Vec<u64>,
    next_seg: u64,
    ckpt_seq: u64,
}

#[derive(Default)]
struct BgFlags {
    wake: bool,
    shutdown: bool,
}

/// A value of a body about to be stored.
struct Op<'a> {
    sid: SeriesId,
    col: u32,
    time: i64,
    value: RawValue<'a>,
}

/// A column a body creates.
struct NewCol {
    name: Arc<str>,
    raw: Box<[u8]>,
    ty: ColType,
    measurement: Arc<str>,
    line: usize,
}

/// A validated body: every value resolved to its series and column.
struct Plan<'a> {
    lines: u64,
    /// Per shard, in body order.
    ops: Vec<Vec<Op<'a>>>,
    samples: u64,
    new_cols: Vec<NewCol>,
}

fn conflict(line: usize, field: &str, was: ColType, now: ColType) -> TsError {
    TsError::Invalid(format!(
        "line {line}: field {field:?} is {}, but it was first written as {}",
        now.name(),
        was.name()
    ))
}

/// (bucket, measurement, field).
type SchemaKey = (u32, Arc<str>, Arc<str>);

/// What a query copies out of a column under the shard lock.
struct QueryCol {
    name: Arc<str>,
    ty: ColType,
    chunks: Vec<Chunk>,
    head: Option<Samples>,
}

struct Inner {
    opts: EmbeddedOptions,
    shards: Box<[Mutex<Shard>]>,
    buckets: RwLock<Buckets>,
    /// Canonical key (bucket id + canonical series spelling) → series.
    canon: Mutex<FxHashMap<Box<[u8]>, SeriesId>>,
    /// (bucket, measurement, field) → type.
    schema: Mutex<FxHashMap<SchemaKey, ColType>>,
    /// Per bucket: measurement → index.
    index: RwLock<Vec<FxHashMap<Arc<str>, MeasIndex>>>,
    interner: Mutex<FxHashSet<Arc<str>>>,
    /// Writers hold it shared from WAL append to the end of apply; a checkpoint's cut holds it
    /// exclusively, so the WAL files before the cut hold exactly what the cut saw.
    barrier: RwLock<()>,
    wal: Option<Wal>,
    disk: Mutex<Option<DiskState>>,
    ckpt_lock: Mutex<()>,
    /// Set when the WAL could not be written or synced: later writes fail (the log may end in
    /// a partial record, so nothing after it could be replayed).
    failed: Mutex<Option<String>>,
    bg: Mutex<BgFlags>,
    bg_cv: Condvar,
    checkpoints: AtomicU64,
    segment_count: AtomicU64,
    /// Holds the directory's lock file open (another process opening the directory fails).
    _lock_file: Option<fs::File>,
}

/// The embedded store; see the module documentation. Cheap to share behind an `Arc`.
pub struct EmbeddedTsdb {
    inner: Arc<Inner>,
    bg: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for EmbeddedTsdb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedTsdb")
            .field("dir", &self.inner.opts.dir)
            .finish_non_exhaustive()
    }
}

impl EmbeddedTsdb {
    /// Opens (or creates) a store. Blocking: with a directory it loads the latest checkpoint,
    /// its segments and replays the WAL (call it at startup or from `spawn_blocking`). Starts a
    /// background thread for checkpoints and retention, stopped when the store is dropped.
    pub fn open(options: EmbeddedOptions) -> Result<EmbeddedTsdb, TsError> {
        let (wal, disk, lock_file, replay) = match &options.dir {
            None => (None, None, None, Vec::new()),
            Some(dir) => {
                let o = open_dir(dir)?;
                (
                    Some(o.wal),
                    Some((o.disk, o.ckpt)),
                    Some(o.lock_file),
                    o.replay,
                )
            }
        };
        let inner = Arc::new(Inner {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            buckets: RwLock::new(Buckets::default()),
            canon: Mutex::new(FxHashMap::default()),
            schema: Mutex::new(FxHashMap::default()),
            index: RwLock::new(Vec::new()),
            interner: Mutex::new(FxHashSet::default()),
            barrier: RwLock::new(()),
            wal,
            disk: Mutex::new(None),
            ckpt_lock: Mutex::new(()),
            failed: Mutex::new(None),
            bg: Mutex::new(BgFlags::default()),
            bg_cv: Condvar::new(),
            checkpoints: AtomicU64::new(0),
            segment_count: AtomicU64::new(0),
            _lock_file: lock_file,
            opts: options,
        });
        if let Some((mut disk, ckpt)) = disk {
            if let Some(c) = &ckpt {
                inner.load(c)?;
                for &id in &c.segments {
                    let (seg, metas) = files::read_segment(&disk.dir, id).map_err(io_err)?;
                    let seg = Arc::new(seg);
                    inner.attach_segment(&seg, &metas)?;
                    disk.segments.insert(id, seg);
                    disk.order.push(id);
                }
            }
            inner
                .segment_count
                .store(disk.segments.len() as u64, AtOrd::Relaxed);
            *lock(&inner.disk) = Some(disk);
            let mut replayed = 0u64;
            for path in &replay {
                let info = wal::replay_file(path, |rec| {
                    match inner.write_body(
                        &rec.bucket,
                        &rec.body,
                        rec.precision,
                        rec.default_time_ns,
                        false,
                    ) {
                        Ok(_) => replayed += 1,
                        Err(e) => tracing::warn!(error = %e, "WAL record not replayed"),
                    }
                })
                .map_err(io_err)?;
                if info.torn {
                    tracing::warn!(
                        file = %path.display(),
                        valid_bytes = info.valid_bytes,
                        "WAL ends in a torn or corrupt record; later bytes ignored"
                    );
                }
            }
            if replayed > 0 {
                inner.checkpoint()?;
            }
        }
        let bg_inner = inner.clone();
        let bg = std::thread::Builder::new()
            .name("tsdb-checkpoint".into())
            .spawn(move || bg_loop(&bg_inner))
            .map_err(io_err)?;
        Ok(EmbeddedTsdb {
            inner,
            bg: Some(bg),
        })
    }

    /// Stores a line-protocol body now (blocking; the trait method runs this on the blocking
    /// pool). Lines without a time get `default_time_ns`.
    pub fn write_lp(
        &self,
        bucket: &str,
        body: &[u8],
        precision: Precision,
        default_time_ns: i64,
    ) -> Result<WriteSummary, TsError> {
        self.inner
            .write_body(bucket, body, precision, default_time_ns, true)
    }

    /// Runs a query now (blocking).
    pub fn query_blocking(&self, q: &Query) -> Result<Vec<Row>, TsError> {
        self.inner.query(q)
    }

    /// Writes a checkpoint now (blocking): sealed chunks into a segment, heads and series into
    /// the checkpoint file, WAL truncated; applies the retention.
    pub fn checkpoint(&self) -> Result<(), TsError> {
        self.inner.checkpoint()
    }

    pub fn stats(&self) -> EmbeddedStats {
        self.inner.stats()
    }
}

impl Drop for EmbeddedTsdb {
    fn drop(&mut self) {
        lock(&self.inner.bg).shutdown = true;
        self.inner.bg_cv.notify_all();
        if let Some(h) = self.bg.take() {
            let _ = h.join();
        }
    }
}

fn bg_loop(inner: &Inner) {
    let interval = inner
        .opts
        .checkpoint_interval
        .max(Duration::from_millis(10));
    let mut last = Instant::now();
    loop {
        let mut f = lock(&inner.bg);
        while !f.shutdown && !f.wake && last.elapsed() < interval {
            let left = interval.saturating_sub(last.elapsed());
            f = inner
                .bg_cv
                .wait_timeout(f, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        if f.shutdown {
            return;
        }
        f.wake = false;
        drop(f);
        if let Err(e) = inner.checkpoint() {
            tracing::warn!(error = %e, "background checkpoint failed");
        }
        last = Instant::now();
    }
}

struct OpenedDir {
    wal: Wal,
    disk: DiskState,
    ckpt: Option<Checkpoint>,
    lock_file: fs::File,
    replay: Vec<PathBuf>,
}

/// Scans the directory: lock file, latest checkpoint, segments to load, WAL files to replay;
/// removes leftovers (temp files, files older than the checkpoint, unlisted segments).
fn open_dir(dir: &Path) -> Result<OpenedDir, TsError> {
    fs::create_dir_all(dir)?;
    let lock_file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("LOCK"))?;
    lock_file.try_lock().map_err(|_| {
        TsError::Unavailable(format!("{} is in use by another process", dir.display()))
    })?;
    let mut ckpts = Vec::new();
    let mut segs = Vec::new();
    let mut wals = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".tmp") {
            let _ = fs::remove_file(entry.path());
        } else if let Some(s) = files::parse_ckpt_name(name) {
            ckpts.push(s);
        } else if let Some(s) = files::parse_seg_name(name) {
            segs.push(s);
        } else if let Some(s) = wal::parse_wal_name(name) {
            wals.push(s);
        }
    }
    ckpts.sort_unstable();
    wals.sort_unstable();
    let mut ckpt = None;
    let mut ckpt_seq = 0;
    for &seq in ckpts.iter().rev() {
        match files::read_checkpoint(dir, seq) {
            Ok(c) => {
                ckpt = Some(c);
                ckpt_seq = seq;
                break;
            }
            Err(e) => tracing::error!(error = %e, "unreadable checkpoint skipped"),
        }
    }
    let wal_from = ckpt.as_ref().map_or(0, |c| c.wal_seq);
    let listed: BTreeSet<u64> = ckpt
        .as_ref()
        .map(|c| c.segments.iter().copied().collect())
        .unwrap_or_default();
    for s in segs {
        if !listed.contains(&s) {
            let _ = fs::remove_file(files::seg_path(dir, s));
        }
    }
    for &seq in &ckpts {
        if seq < ckpt_seq {
            let _ = fs::remove_file(files::ckpt_path(dir, seq));
        }
    }
    let mut replay = Vec::new();
    for &w in &wals {
        if w < wal_from {
            let _ = fs::remove_file(wal::wal_path(dir, w));
        } else {
            replay.push(wal::wal_path(dir, w));
        }
    }
    let next_wal = wals
        .last()
        .map_or(wal_from, |&w| w + 1)
        .max(wal_from)
        .max(1);
    let wal = Wal::create(dir, next_wal).map_err(io_err)?;
    let next_seg = ckpt.as_ref().map_or(1, |c| c.next_seg).max(1);
    let disk = DiskState {
        dir: dir.to_path_buf(),
        segments: BTreeMap::new(),
        order: Vec::new(),
        next_seg,
        ckpt_seq,
    };
    Ok(OpenedDir {
        wal,
        disk,
        ckpt,
        lock_file,
        replay,
    })
}

fn cmp_tags(a: &[(Arc<str>, Arc<str>)], b: &[(Arc<str>, Arc<str>)]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = x.0.cmp(&y.0).then_with(|| x.1.cmp(&y.1));
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

fn field_value(ty: ColType, s: &Samples, i: usize) -> FieldValue {
    let bits = s.vals.get(i).copied().unwrap_or(0);
    match ty {
        ColType::Float => FieldValue::Float(f64::from_bits(bits)),
        ColType::Int => FieldValue::Int(bits as i64),
        ColType::UInt => FieldValue::UInt(bits),
        ColType::Bool => FieldValue::Bool(bits != 0),
        ColType::Str => FieldValue::Str(s.strs.get(i).cloned().unwrap_or_default()),
    }
}

impl Inner {
    fn intern(&self, s: &str) -> Arc<str> {
        let mut i = lock(&self.interner);
        if let Some(a) = i.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        i.insert(a.clone());
        a
    }

    fn check_failed(&self) -> Result<(), TsError> {
        match &*lock(&self.failed) {
            Some(m) => Err(TsError::Unavailable(format!(
                "the write-ahead log failed earlier ({m}); reopen the store"
            ))),
            None => Ok(()),
        }
    }

    fn fail(&self, e: io::Error) -> TsError {
        let mut f = lock(&self.failed);
        if f.is_none() {
            *f = Some(e.to_string());
        }
        tracing::error!(error = %e, "write-ahead log failed; writes refused until reopened");
        TsError::Io(e)
    }

    fn bucket_id(&self, name: &str, create: bool) -> Result<Option<u32>, TsError> {
        if let Some(&id) = read(&self.buckets).ids.get(name) {
            return Ok(Some(id));
        }
        if !create {
            return Ok(None);
        }
        if name.is_empty() {
            return Err(TsError::Invalid("empty bucket name".into()));
        }
        let mut b = write(&self.buckets);
        if let Some(&id) = b.ids.get(name) {
            return Ok(Some(id));
        }
        let id = b.names.len() as u32;
        let a: Arc<str> = Arc::from(name);
        b.ids.insert(a.clone(), id);
        b.names.push(a);
        Ok(Some(id))
    }

    /// Finds or creates the series of a line whose raw key is not known yet.
    fn resolve_series(
        &self,
        bucket: u32,
        line: &RawLine<'_>,
        raw_hash: u64,
    ) -> Result<SeriesId, TsError> {
        let n = line.line;
        let (raw_measurement, _) = line.split_key()?;
        let measurement = unescape_measurement(raw_measurement)
            .ok_or_else(|| TsError::Invalid(format!("line {n}: measurement is not UTF-8")))?;
        let tags = owned_tags(line)?;
        let mut spelling = String::with_capacity(line.series_key.len() + 8);
        encode_series_key(&measurement, &tags, &mut spelling);
        let sid = self.series_for(bucket, &measurement, &tags, &spelling)?;
        if line.series_key != spelling.as_bytes() {
            lock(&self.shards[shard_for(raw_hash)]).add_alias(bucket, line.series_key, sid);
        }
        Ok(sid)
    }

    /// The series of a canonical key, created (with its canonical alias and index entries) if
    /// new.
    fn series_for(
        &self,
        bucket: u32,
        measurement: &str,
        tags: &[(impl AsRef<str>, impl AsRef<str>)],
        spelling: &str,
    ) -> Result<SeriesId, TsError> {
        let mut key = Vec::with_capacity(spelling.len() + 4);
        key.extend_from_slice(&bucket.to_le_bytes());
        key.extend_from_slice(spelling.as_bytes());
        let mut canon = lock(&self.canon);
        if let Some(&sid) = canon.get(&key[..]) {
            return Ok(sid);
        }
        let def = Arc::new(SeriesDef {
            bucket,
            measurement: self.intern(measurement),
            tags: tags
                .iter()
                .map(|(k, v)| (self.intern(k.as_ref()), self.intern(v.as_ref())))
                .collect(),
        });
        let si = shard_for(key_hash(bucket, spelling.as_bytes()));
        let sid = {
            let mut sh = lock(&self.shards[si]);
            let sid = make_id(si, sh.series.len())
                .ok_or_else(|| TsError::Unavailable("too many series".into()))?;
            sh.series
                .push(Series::new(def.clone(), spelling.as_bytes()));
            let h = key_hash(bucket, spelling.as_bytes());
            match sh.fast.entry(h) {
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(sid);
                }
                // A hash collision with another series: this one goes by its full key.
                std::collections::hash_map::Entry::Occupied(_) => {
                    sh.add_alias(bucket, spelling.as_bytes(), sid)
                }
            }
            sid
        };
        canon.insert(key.into(), sid);
        self.index_add(&def, sid);
        Ok(sid)
    }

    fn index_add(&self, def: &SeriesDef, sid: SeriesId) {
        let mut idx = write(&self.index);
        let b = def.bucket as usize;
        if idx.len() <= b {
            idx.resize_with(b + 1, FxHashMap::default);
        }
        let mi = idx[b].entry(def.measurement.clone()).or_default();
        mi.all.push(sid);
        for (k, v) in def.tags.iter() {
            mi.tags
                .entry(k.clone())
                .or_default()
                .entry(v.clone())
                .or_default()
                .push(sid);
        }
    }

    /// Phase 1 of a write: parse and validate the whole body, resolving every value to its
    /// series and column (creating series, not columns). Nothing is stored.
    fn plan<'a>(
        &self,
        bucket: u32,
        body: &'a [u8],
        precision: Precision,
        default_time_ns: i64,
    ) -> Result<Plan<'a>, TsError> {
        let mut lines = Lines::new(body, precision, default_time_ns);
        let mut fields = Vec::with_capacity(16);
        // Series → its entries in `plan.new_cols`.
        let mut new_of_series: FxHashMap<SeriesId, Vec<u32>> = FxHashMap::default();
        let mut plan = Plan {
            lines: 0,
            ops: (0..SHARDS)
                .map(|_| Vec::with_capacity(body.len() / 24 / SHARDS + 8))
                .collect(),
            samples: 0,
            new_cols: Vec::new(),
        };
        while let Some(line) = lines.next_line(&mut fields) {
            let line = line?;
            let n = line.line;
            plan.lines += 1;
            let h = key_hash(bucket, line.series_key);
            let mut si = shard_for(h);
            let mut guard = lock(&self.shards[si]);
            let sid = match guard.find(bucket, line.series_key, h) {
                Some(sid) => sid,
                None => {
                    drop(guard);
                    let sid = self.resolve_series(bucket, &line, h)?;
                    guard = lock(&self.shards[si]);
                    sid
                }
            };
            if shard_of(sid) != si {
                drop(guard);
                si = shard_of(sid);
                guard = lock(&self.shards[si]);
            }
            let series = guard
                .series
                .get(local_of(sid))
                .ok_or_else(|| TsError::Unavailable("series table out of step".into()))?;
            // Position in `series.layout` of the entry of field j while fields match it in
            // order; `usize::MAX` once one does not.
            let mut lp = 0usize;
            let layout = series.col_layout();
            for (j, f) in fields.iter().enumerate() {
                let ty = ColType::of(&f.value);
                if let RawValue::Str(s) = f.value
                    && std::str::from_utf8(s).is_err()
                {
                    return Err(TsError::Invalid(format!(
                        "line {n}: string value is not UTF-8"
                    )));
                }
                if let Some(&len) = layout.get(lp) {
                    let k_end = lp + 1 + usize::from(len);
                    if usize::from(len) == f.key.len()
                        && layout.get(lp + 1..k_end) == Some(f.key)
                        && let Some(&t) = layout.get(k_end)
                    {
                        lp = k_end + 1;
                        if t != ty as u8 {
                            let was = ColType::from_u8(t).unwrap_or(ty);
                            let name = unescape_name(f.key).unwrap_or_default();
                            return Err(conflict(n, &name, was, ty));
                        }
                        plan.samples += 1;
                        plan.ops[si].push(Op {
                            sid,
                            col: j as u32,
                            time: line.time_ns,
                            value: f.value,
                        });
                        continue;
                    }
                }
                lp = usize::MAX;
                let cols = &series.cols;
                let found = match cols.get(j) {
                    Some(c) if c.raw_eq(f.key) => Some(j),
                    _ => cols.iter().position(|c| c.raw_eq(f.key)),
                };
                let col = match found {
                    Some(c) => {
                        if cols[c].ty != ty {
                            return Err(conflict(n, &cols[c].name, cols[c].ty, ty));
                        }
                        c as u32
                    }
                    None => {
                        let name = unescape_name(f.key).ok_or_else(|| {
                            TsError::Invalid(format!("line {n}: field key is not UTF-8"))
                        })?;
                        if let Some(c) = cols.iter().position(|c| *c.name == *name) {
                            if cols[c].ty != ty {
                                return Err(conflict(n, &name, cols[c].ty, ty));
                            }
                            c as u32
                        } else if let Some(&k) = new_of_series.get(&sid).and_then(|ks| {
                            ks.iter()
                                .find(|&&k| *plan.new_cols[k as usize].name == *name)
                        }) {
                            let k = k as usize;
                            if plan.new_cols[k].ty != ty {
                                return Err(conflict(n, &name, plan.new_cols[k].ty, ty));
                            }
                            PENDING | k as u32
                        } else {
                            new_of_series
                                .entry(sid)
                                .or_default()
                                .push(plan.new_cols.len() as u32);
                            plan.new_cols.push(NewCol {
                                name: self.intern(&name),
                                raw: f.key.into(),
                                ty,
                                measurement: series.def.measurement.clone(),
                                line: n,
                            });
                            PENDING | (plan.new_cols.len() - 1) as u32
                        }
                    }
                };
                plan.samples += 1;
                plan.ops[si].push(Op {
                    sid,
                    col,
                    time: line.time_ns,
                    value: f.value,
                });
            }
        }
        Ok(plan)
    }

    /// Registers the types of new columns, all or nothing.
    fn commit_schema(&self, bucket: u32, plan: &Plan<'_>) -> Result<(), TsError> {
        if plan.new_cols.is_empty() {
            return Ok(());
        }
        let mut schema = lock(&self.schema);
        for nc in &plan.new_cols {
            let key = (bucket, nc.measurement.clone(), nc.name.clone());
            if let Some(&t) = schema.get(&key)
                && t != nc.ty
            {
                return Err(conflict(nc.line, &nc.name, t, nc.ty));
            }
        }
        for nc in &plan.new_cols {
            schema.insert((bucket, nc.measurement.clone(), nc.name.clone()), nc.ty);
        }
        Ok(())
    }

    /// Phase 2: appends every value, one shard lock per shard touched.
    fn apply(&self, plan: &Plan<'_>) {
        let mut resolved = vec![u32::MAX; plan.new_cols.len()];
        for (s, ops) in plan.ops.iter().enumerate() {
            if ops.is_empty() {
                continue;
            }
            let mut g = lock(&self.shards[s]);
            for op in ops {
                let Some(series) = g.series.get_mut(local_of(op.sid)) else {
                    continue;
                };
                let col = if op.col & PENDING != 0 {
                    let k = (op.col & !PENDING) as usize;
                    let Some(nc) = plan.new_cols.get(k) else {
                        continue;
                    };
                    if resolved[k] == u32::MAX {
                        resolved[k] = match series.cols.iter().position(|c| c.name == nc.name) {
                            Some(c) => c as u32,
                            None => {
                                series.add_column(Column::new(nc.name.clone(), &nc.raw, nc.ty));
                                (series.cols.len() - 1) as u32
                            }
                        };
                    }
                    resolved[k]
                } else {
                    op.col
                };
                if let Some(c) = series.cols.get_mut(col as usize) {
                    c.append(op.time, &op.value);
                }
            }
        }
    }

    fn write_body(
        &self,
        bucket: &str,
        body: &[u8],
        precision: Precision,
        default_time_ns: i64,
        log: bool,
    ) -> Result<WriteSummary, TsError> {
        if log {
            self.check_failed()?;
        }
        let b = self
            .bucket_id(bucket, true)?
            .ok_or_else(|| TsError::Invalid("empty bucket name".into()))?;
        let plan = self.plan(b, body, precision, default_time_ns)?;
        let summary = WriteSummary {
            lines: plan.lines,
            samples: plan.samples,
        };
        if plan.samples == 0 {
            return Ok(summary);
        }
        self.commit_schema(b, &plan)?;
        let logged = {
            let _shared = read(&self.barrier);
            let logged = match (&self.wal, log) {
                (Some(w), true) => {
                    let (ticket, bytes) = w
                        .append(bucket, precision, default_time_ns, body)
                        .map_err(|e| self.fail(e))?;
                    // The fsync runs while this body is applied.
                    if self.opts.sync == SyncMode::GroupCommit {
                        w.request_sync(ticket);
                    }
                    Some((ticket, bytes))
                }
                _ => None,
            };
            self.apply(&plan);
            logged
        };
        if let (Some(w), Some((ticket, wal_bytes))) = (&self.wal, logged) {
            if wal_bytes > self.opts.checkpoint_wal_bytes {
                lock(&self.bg).wake = true;
                self.bg_cv.notify_all();
            }
            if self.opts.sync == SyncMode::GroupCommit {
                w.sync(ticket).map_err(|e| self.fail(e))?;
            }
        }
        Ok(summary)
    }

    fn flush(&self) -> Result<(), TsError> {
        self.check_failed()?;
        if let Some(w) = &self.wal {
            w.sync_all().map_err(|e| self.fail(e))?;
        }
        Ok(())
    }

    fn query(&self, q: &Query) -> Result<Vec<Row>, TsError> {
        if q.bucket.is_empty() || q.measurement.is_empty() {
            return Err(TsError::Invalid(
                "a query needs a bucket and a measurement".into(),
            ));
        }
        let limit = q.limit.unwrap_or(usize::MAX);
        if limit == 0 || q.start_ns >= q.stop_ns {
            return Ok(Vec::new());
        }
        let Some(b) = self.bucket_id(&q.bucket, false)? else {
            return Ok(Vec::new());
        };
        let candidates: Vec<SeriesId> = {
            let idx = read(&self.index);
            let Some(mi) = idx
                .get(b as usize)
                .and_then(|m| m.get(q.measurement.as_str()))
            else {
                return Ok(Vec::new());
            };
            let mut best = &mi.all;
            for (k, v) in &q.tags {
                match mi
                    .tags
                    .get(k.as_str())
                    .and_then(|vals| vals.get(v.as_str()))
                {
                    Some(list) if list.len() < best.len() => best = list,
                    Some(_) => {}
                    None => return Ok(Vec::new()),
                }
            }
            best.clone()
        };
        let mut series: Vec<(Arc<SeriesDef>, SeriesId)> = Vec::with_capacity(candidates.len());
        for sid in candidates {
            let g = lock(&self.shards[shard_of(sid)]);
            let Some(s) = g.series.get(local_of(sid)) else {
                continue;
            };
            let matches = q
                .tags
                .iter()
                .all(|(k, v)| s.def.tags.iter().any(|(sk, sv)| **sk == **k && **sv == **v));
            if matches {
                series.push((s.def.clone(), sid));
            }
        }
        series.sort_by(|a, b| cmp_tags(&a.0.tags, &b.0.tags));
        let mut rows = Vec::new();
        for (def, sid) in series {
            // Copy what the series holds in range under its lock, decode outside it.
            let mut cols: Vec<QueryCol> = {
                let g = lock(&self.shards[shard_of(sid)]);
                let Some(s) = g.series.get(local_of(sid)) else {
                    continue;
                };
                s.cols
                    .iter()
                    .filter(|c| q.fields.is_empty() || q.fields.iter().any(|f| **f == *c.name))
                    .map(|c| {
                        let chunks = c
                            .chunks
                            .iter()
                            .filter(|ch| ch.overlaps(q.start_ns, q.stop_ns))
                            .cloned()
                            .collect();
                        let head = c
                            .head
                            .as_ref()
                            .filter(|h| h.count > 0 && h.max_t >= q.start_ns && h.min_t < q.stop_ns)
                            .and_then(|h| h.samples());
                        QueryCol {
                            name: c.name.clone(),
                            ty: c.ty,
                            chunks,
                            head,
                        }
                    })
                    .collect()
            };
            cols.sort_by(|a, b| a.name.cmp(&b.name));
            let tags: Vec<(String, String)> = def
                .tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            for QueryCol {
                name,
                ty,
                chunks,
                head,
            } in cols
            {
                let mut parts = Vec::with_capacity(chunks.len() + 1);
                for ch in &chunks {
                    parts.push(ch.samples()?);
                }
                parts.extend(head);
                // (time, part, index), stable by time so the later write of a time wins.
                let mut picks: Vec<(i64, u32, u32)> = Vec::new();
                for (p, s) in parts.iter().enumerate() {
                    for (i, &t) in s.times.iter().enumerate() {
                        if t >= q.start_ns && t < q.stop_ns {
                            picks.push((t, p as u32, i as u32));
                        }
                    }
                }
                picks.sort_by_key(|x| x.0);
                let mut kept: Vec<(i64, u32, u32)> = Vec::with_capacity(picks.len());
                for x in picks {
                    match kept.last_mut() {
                        Some(last) if last.0 == x.0 => *last = x,
                        _ => kept.push(x),
                    }
                }
                for (t, p, i) in kept {
                    rows.push(Row {
                        measurement: q.measurement.clone(),
                        tags: tags.clone(),
                        field: name.to_string(),
                        value: field_value(ty, &parts[p as usize], i as usize),
                        time_ns: t,
                    });
                    if rows.len() >= limit {
                        return Ok(rows);
                    }
                }
            }
        }
        Ok(rows)
    }

    fn stats(&self) -> EmbeddedStats {
        let mut st = EmbeddedStats {
            buckets: read(&self.buckets).names.len() as u64,
            checkpoints: self.checkpoints.load(AtOrd::Relaxed),
            ..Default::default()
        };
        let mut mem = 0usize;
        for sh in self.shards.iter() {
            let g = lock(sh);
            st.series += g.series.len() as u64;
            mem += g.series.capacity() * std::mem::size_of::<Series>();
            for m in &g.aliases {
                mem += m.capacity() * (std::mem::size_of::<(Box<[u8]>, SeriesId)>() + 1);
                mem += m.keys().map(|k| k.len()).sum::<usize>();
            }
            for s in &g.series {
                mem += std::mem::size_of::<SeriesDef>() + s.def.tags.len() * 32;
                mem += s.cols.capacity() * std::mem::size_of::<Column>();
                for c in &s.cols {
                    st.columns += 1;
                    st.samples += c.samples();
                    st.sealed_chunks += c.chunks.len() as u64;
                    mem += c.chunks.capacity() * std::mem::size_of::<Chunk>();
                    mem += c.raw.as_ref().map_or(0, |r| r.len());
                    for ch in &c.chunks {
                        if let ChunkData::Mem(b) = &ch.data {
                            mem += b.len();
                        }
                    }
                    if let Some(h) = &c.head {
                        st.head_samples += u64::from(h.count);
                        mem += h.heap_bytes();
                    }
                }
            }
        }
        mem += lock(&self.canon)
            .keys()
            .map(|k| k.len() + 32)
            .sum::<usize>();
        mem += lock(&self.interner)
            .iter()
            .map(|s| s.len() + 32)
            .sum::<usize>();
        for per_bucket in read(&self.index).iter() {
            for mi in per_bucket.values() {
                mem += mi.all.capacity() * 4;
                for vals in mi.tags.values() {
                    for list in vals.values() {
                        mem += list.capacity() * 4 + 48;
                    }
                }
            }
        }
        st.bytes_in_memory = mem as u64;
        st.segments = self.segment_count.load(AtOrd::Relaxed);
        if let Some(dir) = &self.opts.dir
            && let Ok(rd) = fs::read_dir(dir)
        {
            for e in rd.flatten() {
                let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                st.bytes_on_disk += len;
                if e.file_name()
                    .to_str()
                    .and_then(wal::parse_wal_name)
                    .is_some()
                {
                    st.wal_bytes += len;
                }
            }
        }
        st
    }

    /// Rebuilds the in-memory state from a checkpoint and its segments (at open).
    fn load(&self, c: &Checkpoint) -> Result<(), TsError> {
        let bad = |m: &str| TsError::Unavailable(format!("checkpoint does not load: {m}"));
        for name in &c.buckets {
            self.bucket_id(name, true)?;
        }
        let walked = c.for_each_series(|cs| -> Result<(), TsError> {
            let mut spelling = String::new();
            encode_series_key(cs.measurement, &cs.tags, &mut spelling);
            let sid = self.series_for(cs.bucket, cs.measurement, &cs.tags, &spelling)?;
            if sid != cs.id {
                return Err(bad("series ids out of order"));
            }
            let mut g = lock(&self.shards[shard_of(sid)]);
            let series = g
                .series
                .get_mut(local_of(sid))
                .ok_or_else(|| bad("series missing"))?;
            let mut schema = lock(&self.schema);
            for &(name, ty, head) in &cs.cols {
                let ty = ColType::from_u8(ty).ok_or_else(|| bad("column type"))?;
                let name = self.intern(name);
                let mut col = Column::new(name.clone(), name.as_bytes(), ty);
                if !head.is_empty() {
                    let h = Head::restore(head, cs.base_t)
                        .filter(|h| h.ty == ty)
                        .ok_or_else(|| bad("head"))?;
                    col.head = Some(h);
                }
                schema.insert((cs.bucket, series.def.measurement.clone(), name), ty);
                series.add_column(col);
            }
            Ok(())
        });
        walked.ok_or_else(|| bad("series table"))??;
        Ok(())
    }

    /// Attaches the chunks of a loaded segment to their columns.
    fn attach_segment(&self, seg: &Arc<Segment>, metas: &[ChunkMeta]) -> Result<(), TsError> {
        for m in metas {
            let mut g = lock(&self.shards[shard_of(m.series)]);
            let col = g
                .series
                .get_mut(local_of(m.series))
                .and_then(|s| s.cols.get_mut(m.col as usize))
                .ok_or_else(|| {
                    TsError::Unavailable(format!(
                        "segment {} names a column the checkpoint lacks",
                        seg.id
                    ))
                })?;
            col.chunks.push(Chunk {
                min_t: m.min_t,
                max_t: m.max_t,
                count: m.count,
                data: ChunkData::Disk {
                    seg: seg.clone(),
                    offset: m.offset,
                    len: m.len,
                    crc: m.crc,
                },
            });
        }
        Ok(())
    }

    fn checkpoint(&self) -> Result<(), TsError> {
        let _one = lock(&self.ckpt_lock);
        let cutoff = self
            .opts
            .retention
            .map(|r| now_ns().saturating_sub(i64::try_from(r.as_nanos()).unwrap_or(i64::MAX)));
        let Some(wal) = &self.wal else {
            // Memory only: retention is all there is to do.
            if let Some(cutoff) = cutoff {
                for sh in self.shards.iter() {
                    for s in lock(sh).series.iter_mut() {
                        for c in s.cols.iter_mut() {
                            c.retain_after(cutoff);
                        }
                    }
                }
            }
            self.checkpoints.fetch_add(1, AtOrd::Relaxed);
            return Ok(());
        };
        self.check_failed()?;

        // 1. The cut: no writer is between its WAL append and its apply. The series table and
        // the heads are serialised right here (a memory copy); sealed chunks not yet on disk
        // are collected for the segment.
        let file_base = now_ns();
        let mut ckpt = files::CkptWriter::new(file_base);
        let mut new_chunks: Vec<(SeriesId, u32, Chunk, Arc<[u8]>)> = Vec::new();
        let mut live: BTreeSet<u64> = BTreeSet::new();
        let wal_seq = {
            let _excl = write(&self.barrier);
            let wal_seq = wal.rotate().map_err(|e| self.fail(e))?;
            for (si, sh) in self.shards.iter().enumerate() {
                let mut g = lock(sh);
                for (li, s) in g.series.iter_mut().enumerate() {
                    let sid = make_id(si, li).unwrap_or(0);
                    if let Some(cutoff) = cutoff {
                        for c in s.cols.iter_mut() {
                            c.retain_after(cutoff);
                        }
                    }
                    let base = s
                        .cols
                        .iter()
                        .find_map(|c| c.head.as_ref().filter(|h| h.count > 0).map(|h| h.t0))
                        .unwrap_or(file_base);
                    ckpt.series(
                        sid,
                        s.def.bucket,
                        &s.def.measurement,
                        &s.def.tags,
                        base,
                        s.cols.len(),
                    );
                    for (ci, c) in s.cols.iter().enumerate() {
                        for ch in &c.chunks {
                            match &ch.data {
                                ChunkData::Mem(b) => {
                                    new_chunks.push((sid, ci as u32, ch.clone(), b.clone()))
                                }
                                ChunkData::Disk { seg, .. } => {
                                    live.insert(seg.id);
                                }
                            }
                        }
                        ckpt.column(&c.name, c.ty as u8, c.head.as_ref());
                    }
                }
            }
            wal_seq
        };

        let mut disk_g = lock(&self.disk);
        let disk = disk_g
            .as_mut()
            .ok_or_else(|| TsError::Unavailable("store directory state missing".into()))?;

        // 2. Chunks sealed since the last checkpoint go into a new segment.
        if !new_chunks.is_empty() {
            let id = disk.next_seg;
            disk.next_seg += 1;
            let ins: Vec<ChunkIn<'_>> = new_chunks
                .iter()
                .map(|(sid, col, ch, b)| ChunkIn {
                    series: *sid,
                    col: *col,
                    min_t: ch.min_t,
                    max_t: ch.max_t,
                    count: ch.count,
                    bytes: b,
                })
                .collect();
            let (seg, metas) = files::write_segment(&disk.dir, id, &ins).map_err(io_err)?;
            let seg = Arc::new(seg);
            disk.segments.insert(id, seg.clone());
            disk.order.push(id);
            live.insert(id);
            // The same bytes, now read from the segment.
            for ((sid, col, _, b), m) in new_chunks.iter().zip(&metas) {
                let mut g = lock(&self.shards[shard_of(*sid)]);
                if let Some(c) = g
                    .series
                    .get_mut(local_of(*sid))
                    .and_then(|s| s.cols.get_mut(*col as usize))
                    && let Some(ch) = c
                        .chunks
                        .iter_mut()
                        .rev()
                        .find(|ch| matches!(&ch.data, ChunkData::Mem(x) if Arc::ptr_eq(x, b)))
                {
                    ch.data = ChunkData::Disk {
                        seg: seg.clone(),
                        offset: m.offset,
                        len: m.len,
                        crc: m.crc,
                    };
                }
            }
        }
        drop(new_chunks);

        // Segments whose chunks all expired are dropped.
        disk.order.retain(|id| live.contains(id));

        // 3. Too many segments: merge the adjacent (in time) pair that is smallest together,
        // until few enough are left (each byte is rewritten O(log n) times).
        while disk.order.len() > MAX_SEGMENTS {
            let size = |id: &u64| disk.segments.get(id).map_or(0, |s| s.size);
            let Some(i) = (0..disk.order.len() - 1)
                .min_by_key(|&i| size(&disk.order[i]) + size(&disk.order[i + 1]))
            else {
                break;
            };
            let id = disk.next_seg;
            disk.next_seg += 1;
            let run = [disk.order[i], disk.order[i + 1]];
            let merged = self.merge_run(&disk.dir, id, &run)?;
            disk.segments.insert(id, merged);
            disk.order.splice(i..i + 2, [id]);
        }

        // 4. The commit point: the checkpoint file.
        let buckets: Vec<Arc<str>> = read(&self.buckets).names.clone();
        let seq = disk.ckpt_seq + 1;
        ckpt.finish(
            &disk.dir,
            seq,
            wal_seq,
            disk.next_seg,
            &disk.order,
            &buckets,
        )
        .map_err(io_err)?;
        wal::sync_dir(&disk.dir).map_err(io_err)?;
        let old_seq = disk.ckpt_seq;
        disk.ckpt_seq = seq;

        // 5. What the checkpoint covers is no longer needed.
        let order: BTreeSet<u64> = disk.order.iter().copied().collect();
        disk.segments.retain(|id, _| order.contains(id));
        self.segment_count
            .store(disk.segments.len() as u64, AtOrd::Relaxed);
        if old_seq > 0 {
            let _ = fs::remove_file(files::ckpt_path(&disk.dir, old_seq));
        }
        if let Ok(rd) = fs::read_dir(&disk.dir) {
            for e in rd.flatten() {
                let name = e.file_name();
                let Some(name) = name.to_str() else { continue };
                let stale = match (wal::parse_wal_name(name), files::parse_seg_name(name)) {
                    (Some(w), _) => w < wal_seq,
                    (_, Some(s)) => !order.contains(&s),
                    _ => false,
                };
                if stale {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        self.checkpoints.fetch_add(1, AtOrd::Relaxed);
        Ok(())
    }

    /// Rewrites the chunks of the (time-adjacent) segments of `run` into one segment,
    /// merging adjacent small chunks of a column, and points the columns at it. Chunks of
    /// one column that live in `run` are contiguous in its chunk list.
    fn merge_run(&self, dir: &Path, id: u64, run: &[u64]) -> Result<Arc<Segment>, TsError> {
        let in_run =
            |ch: &Chunk| matches!(&ch.data, ChunkData::Disk { seg, .. } if run.contains(&seg.id));
        // (series, column, index of the first chunk in the run, the chunks)
        let mut work: Vec<(SeriesId, u32, usize, Vec<Chunk>)> = Vec::new();
        for (si, sh) in self.shards.iter().enumerate() {
            let g = lock(sh);
            for (li, s) in g.series.iter().enumerate() {
                let sid = make_id(si, li).unwrap_or(0);
                for (ci, c) in s.cols.iter().enumerate() {
                    if let Some(start) = c.chunks.iter().position(in_run) {
                        let chunks: Vec<Chunk> = c.chunks[start..]
                            .iter()
                            .take_while(|ch| in_run(ch))
                            .cloned()
                            .collect();
                        work.push((sid, ci as u32, start, chunks));
                    }
                }
            }
        }
        let mut w = files::SegmentWriter::create(dir, id).map_err(io_err)?;
        // (series, column, start, old count, new count)
        let mut replaced: Vec<(SeriesId, u32, usize, usize, usize)> = Vec::new();
        let mut written = 0usize;
        for (sid, col, start, chunks) in &work {
            let before = written;
            let mut group: Vec<&Chunk> = Vec::new();
            let mut group_count = 0u32;
            for (i, ch) in chunks.iter().enumerate() {
                group.push(ch);
                group_count += ch.count;
                let next_fits = chunks
                    .get(i + 1)
                    .is_some_and(|n| group_count + n.count <= MERGED_CHUNK_SAMPLES);
                if next_fits {
                    continue;
                }
                let (bytes, min_t, max_t, count) = if group.len() == 1 {
                    (ch.bytes()?.into_owned(), ch.min_t, ch.max_t, ch.count)
                } else {
                    let mut all = Samples::default();
                    let mut ty = ColType::Float;
                    for g in &group {
                        let b = g.bytes()?;
                        let (t, s) = decode_chunk(&b, g.min_t).ok_or_else(|| {
                            TsError::Unavailable("a stored chunk cannot be decoded".into())
                        })?;
                        ty = t;
                        all.times.extend(s.times);
                        all.vals.extend(s.vals);
                        all.strs.extend(s.strs);
                    }
                    let h = Head::build(ty, &all);
                    (h.to_chunk(h.min_t), h.min_t, h.max_t, h.count)
                };
                w.add(&ChunkIn {
                    series: *sid,
                    col: *col,
                    min_t,
                    max_t,
                    count,
                    bytes: &bytes,
                })
                .map_err(io_err)?;
                written += 1;
                group.clear();
                group_count = 0;
            }
            replaced.push((*sid, *col, *start, chunks.len(), written - before));
        }
        drop(work);
        let (seg, metas) = w.finish().map_err(io_err)?;
        let seg = Arc::new(seg);
        let mut next = 0usize;
        for (sid, col, start, old_n, new_n) in replaced {
            let new: Vec<Chunk> = metas
                .get(next..next + new_n)
                .unwrap_or_default()
                .iter()
                .map(|m| Chunk {
                    min_t: m.min_t,
                    max_t: m.max_t,
                    count: m.count,
                    data: ChunkData::Disk {
                        seg: seg.clone(),
                        offset: m.offset,
                        len: m.len,
                        crc: m.crc,
                    },
                })
                .collect();
            next += new_n;
            let mut g = lock(&self.shards[shard_of(sid)]);
            if let Some(c) = g
                .series
                .get_mut(local_of(sid))
                .and_then(|s| s.cols.get_mut(col as usize))
                && start + old_n <= c.chunks.len()
            {
                // Only the checkpoint thread removes or replaces chunks, and writers only
                // append at the end, so the run is still at `start`.
                c.chunks.splice(start..start + old_n, new);
            }
        }
        Ok(seg)
    }
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TsError> + Send + 'static,
) -> Result<T, TsError> {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => h
            .spawn_blocking(f)
            .await
            .map_err(|e| TsError::Unavailable(format!("store task failed: {e}")))?,
        Err(_) => f(),
    }
}

#[async_trait]
impl TimeSeriesStore for EmbeddedTsdb {
    async fn write(&self, bucket: &str, points: &[Point]) -> Result<(), TsError> {
        for p in points {
            line_protocol::validate_point(p)?;
        }
        let mut body = String::new();
        line_protocol::encode(points, &mut body);
        self.write_line_protocol(bucket, body.as_bytes(), Precision::Nanoseconds)
            .await
            .map(|_| ())
    }

    async fn write_line_protocol(
        &self,
        bucket: &str,
        body: &[u8],
        precision: Precision,
    ) -> Result<WriteSummary, TsError> {
        let inner = self.inner.clone();
        let bucket = bucket.to_string();
        let body = body.to_vec();
        let now = now_ns();
        run_blocking(move || inner.write_body(&bucket, &body, precision, now, true)).await
    }

    async fn query(&self, query: &Query) -> Result<Vec<Row>, TsError> {
        let inner = self.inner.clone();
        let q = query.clone();
        run_blocking(move || inner.query(&q)).await
    }

    async fn flush(&self) -> Result<(), TsError> {
        let inner = self.inner.clone();
        run_blocking(move || inner.flush()).await
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            typed_fields: true,
            time_resolution_ns: 1,
        }
    }

    fn kind(&self) -> &'static str {
        "embedded"
    }
}

#[cfg(test)]
mod tests;

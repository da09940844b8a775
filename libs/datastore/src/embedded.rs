//! The embedded store: etcd v3 semantics in-process, persisted to a local directory.
//!
//! Design:
//! - One `Mutex<State>` holds the keys, the leases, the revision counter, the recent event
//!   history and the watchers. Every mutation validates, assigns its revision, applies itself and
//!   queues its log record while holding that lock, so the log order is the apply order and a
//!   replay reproduces exactly the same revisions.
//! - A dedicated writer thread does group commit: it drains every queued record, writes them
//!   with one `write`, does ONE `fdatasync`, then acknowledges every waiter of the batch. A write
//!   call returns only after its acknowledgement, so a write that returned survives a crash.
//!   (Readers and watchers may observe a mutation a few hundred microseconds before it is
//!   durable; if the fsync fails the store is poisoned: every later write and `health` fail.)
//! - Log records are framed `[len u32 LE][crc32 u32 LE][payload]` with a small hand-written
//!   binary encoding. On open a torn or CRC-failing tail is truncated with a warning; a bad
//!   record followed by a valid one is corruption and `open` fails.
//! - Compaction: when the log exceeds `compact_min_log_bytes` and `compact_ratio` times the live
//!   data, the writer starts a new log generation and writes a snapshot (temp file, fsync,
//!   rename, fsync dir) naming that generation; open replays the snapshot then its log.
//! - Multi-key deletes (`delete_prefix`, lease revoke and lease expiry) use ONE revision for all
//!   their keys, as etcd does; every other write uses one revision.
//! - Leases: ids are positive, allocated from a persisted counter. Deadlines are not persisted:
//!   after a restart every lease gets its full TTL again (etcd behaviour). A background thread
//!   expires due leases; every mutation also expires due leases first, so an expired lease is
//!   never accepted by `put`/`keep_alive`.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    CasOutcome, Expect, KeyValue, KvStore, LeaseId, ListResult, Revision, StoreError, WatchEvent,
    WatchStream,
};

/// File names inside the store directory.
const SNAPSHOT_FILE: &str = "snapshot";
const SNAPSHOT_TMP_FILE: &str = "snapshot.tmp";
const LOCK_FILE: &str = "LOCK";
const WAL_PREFIX: &str = "wal-";

/// Frame header: payload length + CRC32 of the payload.
const FRAME_HEADER: usize = 8;
/// No record is anywhere near this; a larger length is garbage.
const MAX_FRAME: usize = 1 << 30;

/// Tunables of the embedded store. `Default` is what production uses.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// How many recent events are kept for `watch_prefix(.., Some(rev))`.
    pub history_limit: usize,
    /// Per-watcher buffer; a watcher that falls this far behind is ended with an error.
    pub watch_buffer: usize,
    /// The log is compacted only once it is at least this big...
    pub compact_min_log_bytes: u64,
    /// ...and this many times bigger than the live data.
    pub compact_ratio: u64,
    /// How often the background thread looks for expired leases.
    pub lease_check_interval: Duration,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            history_limit: 100_000,
            watch_buffer: 4096,
            compact_min_log_bytes: 64 * 1024 * 1024,
            compact_ratio: 4,
            lease_check_interval: Duration::from_millis(100),
        }
    }
}

/// The in-process store. Cheap to clone: clones share the same state.
#[derive(Clone)]
pub struct EmbeddedStore {
    handle: Arc<Handle>,
}

impl fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("dir", &self.handle.shared.dir)
            .finish_non_exhaustive()
    }
}

/// Owned by the user-facing clones only: its drop stops the writer (releasing the directory
/// lock) even while the lease thread briefly holds the shared state.
struct Handle {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        if let Some(log) = &self.shared.log {
            log.shutdown();
        }
        // The writer drains what is queued (all acknowledged writes are already on disk) and
        // exits, closing the log and the directory lock so the directory can be reopened.
        let handle = lock(&self.writer).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
        // End the live watch streams: they report the store closed.
        lock(&self.shared.state).watchers.clear();
    }
}

struct Shared {
    dir: Option<PathBuf>,
    opts: EmbeddedOptions,
    state: Mutex<State>,
    /// None for an in-memory store.
    log: Option<Arc<LogQueue>>,
    closed: AtomicBool,
}

/// Locks a mutex, ignoring poisoning: the state is only mutated after validation, so a panic
/// elsewhere cannot leave it half-updated.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// In-memory state
// ---------------------------------------------------------------------------------------------

struct Lease {
    ttl: i64,
    deadline: Instant,
    keys: BTreeSet<String>,
}

struct Watcher {
    prefix: String,
    tx: mpsc::Sender<WatchEvent>,
    overflowed: Arc<AtomicBool>,
}

struct State {
    kvs: BTreeMap<String, KeyValue>,
    revision: Revision,
    leases: HashMap<LeaseId, Lease>,
    next_lease_id: LeaseId,
    history: VecDeque<WatchEvent>,
    /// Every event with a revision > `compacted` is in `history`.
    compacted: Revision,
    watchers: Vec<Watcher>,
    /// Approximate bytes of live data, to decide when compaction pays off.
    live_bytes: u64,
}

fn kv_size(kv: &KeyValue) -> u64 {
    (kv.key.len() + kv.value.len() + 48) as u64
}

impl State {
    fn new() -> Self {
        Self {
            kvs: BTreeMap::new(),
            // An empty store is at revision 1, as etcd: the first write gets 2.
            revision: 1,
            leases: HashMap::new(),
            next_lease_id: 1,
            history: VecDeque::new(),
            compacted: 0,
            watchers: Vec::new(),
            live_bytes: 0,
        }
    }

    /// Applies one record. Validates everything before changing anything, so an error leaves
    /// the state untouched. Used by both the live path and replay.
    fn apply(&mut self, rec: Record, now: Instant) -> Result<Vec<WatchEvent>, String> {
        match rec {
            Record::Put {
                rev,
                key,
                value,
                lease,
            } => {
                if rev != self.revision + 1 {
                    return Err(format!(
                        "put at revision {rev}, expected {}",
                        self.revision + 1
                    ));
                }
                if lease != 0 && !self.leases.contains_key(&lease) {
                    return Err(format!("put with unknown lease {lease}"));
                }
                self.revision = rev;
                let (create_revision, version, old_lease) = match self.kvs.get(&key) {
                    Some(old) => {
                        self.live_bytes = self.live_bytes.saturating_sub(kv_size(old));
                        (old.create_revision, old.version + 1, old.lease)
                    }
                    None => (rev, 1, 0),
                };
                if old_lease != 0
                    && old_lease != lease
                    && let Some(l) = self.leases.get_mut(&old_lease)
                {
                    l.keys.remove(&key);
                }
                if lease != 0
                    && let Some(l) = self.leases.get_mut(&lease)
                {
                    l.keys.insert(key.clone());
                }
                let kv = KeyValue {
                    key: key.clone(),
                    value,
                    create_revision,
                    mod_revision: rev,
                    version,
                    lease,
                };
                self.live_bytes += kv_size(&kv);
                self.kvs.insert(key, kv.clone());
                Ok(vec![WatchEvent::Put(kv)])
            }
            Record::Delete { rev, keys } => {
                if rev != self.revision + 1 {
                    return Err(format!(
                        "delete at revision {rev}, expected {}",
                        self.revision + 1
                    ));
                }
                if keys.is_empty() || keys.iter().any(|k| !self.kvs.contains_key(k)) {
                    return Err("delete of a missing key".to_string());
                }
                self.revision = rev;
                let mut events = Vec::with_capacity(keys.len());
                for key in keys {
                    if let Some(old) = self.kvs.remove(&key) {
                        self.live_bytes = self.live_bytes.saturating_sub(kv_size(&old));
                        if old.lease != 0
                            && let Some(l) = self.leases.get_mut(&old.lease)
                        {
                            l.keys.remove(&key);
                        }
                    }
                    events.push(WatchEvent::Delete { key, revision: rev });
                }
                Ok(events)
            }
            Record::LeaseGrant { id, ttl } => {
                if id <= 0 || self.leases.contains_key(&id) || ttl <= 0 {
                    return Err(format!("invalid lease grant {id} ttl {ttl}"));
                }
                self.leases.insert(
                    id,
                    Lease {
                        ttl,
                        deadline: deadline_after(now, ttl),
                        keys: BTreeSet::new(),
                    },
                );
                self.next_lease_id = self.next_lease_id.max(id.saturating_add(1));
                Ok(Vec::new())
            }
            Record::LeaseRevoke { id } => {
                match self.leases.get(&id) {
                    None => return Err(format!("revoke of unknown lease {id}")),
                    Some(l) if !l.keys.is_empty() => {
                        return Err(format!("revoke of lease {id} that still has keys"));
                    }
                    Some(_) => {}
                }
                self.leases.remove(&id);
                Ok(Vec::new())
            }
            Record::SnapHeader { .. } | Record::SnapLease { .. } | Record::SnapKv(_) => {
                Err("snapshot record in the log".to_string())
            }
        }
    }

    /// Appends events to the history and fans them out to the watchers. Never blocks: a watcher
    /// whose buffer is full is dropped and its stream ends with an error.
    fn publish(&mut self, events: Vec<WatchEvent>, history_limit: usize) {
        for ev in events {
            self.watchers.retain(|w| {
                if !ev.key().starts_with(w.prefix.as_str()) {
                    return !w.tx.is_closed();
                }
                match w.tx.try_send(ev.clone()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        w.overflowed.store(true, Ordering::SeqCst);
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
            });
            self.history.push_back(ev);
            while self.history.len() > history_limit {
                if let Some(old) = self.history.pop_front() {
                    self.compacted = self.compacted.max(old.revision());
                }
            }
        }
    }
}

fn deadline_after(now: Instant, ttl: i64) -> Instant {
    let secs = u64::try_from(ttl).unwrap_or(1);
    now.checked_add(Duration::from_secs(secs))
        .unwrap_or(now + Duration::from_secs(86_400 * 365))
}

// ---------------------------------------------------------------------------------------------
// Records and their encoding
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Record {
    Put {
        rev: Revision,
        key: String,
        value: Vec<u8>,
        lease: LeaseId,
    },
    Delete {
        rev: Revision,
        keys: Vec<String>,
    },
    LeaseGrant {
        id: LeaseId,
        ttl: i64,
    },
    LeaseRevoke {
        id: LeaseId,
    },
    /// First record of a snapshot.
    SnapHeader {
        revision: Revision,
        next_lease_id: LeaseId,
        wal_gen: u64,
    },
    SnapLease {
        id: LeaseId,
        ttl: i64,
    },
    SnapKv(KeyValue),
}

const TAG_PUT: u8 = 1;
const TAG_DELETE: u8 = 2;
const TAG_LEASE_GRANT: u8 = 3;
const TAG_LEASE_REVOKE: u8 = 4;
const TAG_SNAP_HEADER: u8 = 10;
const TAG_SNAP_LEASE: u8 = 11;
const TAG_SNAP_KV: u8 = 12;

fn put_i64(buf: &mut Vec<u8>, v: i64) {
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    // Keys and values are far below 4 GiB (etcd limits requests to 1.5 MiB by default).
    let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(b);
}

impl Record {
    fn encode(&self, buf: &mut Vec<u8>) {
        match self {
            Record::Put {
                rev,
                key,
                value,
                lease,
            } => {
                buf.push(TAG_PUT);
                put_i64(buf, *rev);
                put_i64(buf, *lease);
                put_bytes(buf, key.as_bytes());
                put_bytes(buf, value);
            }
            Record::Delete { rev, keys } => {
                buf.push(TAG_DELETE);
                put_i64(buf, *rev);
                put_i64(buf, keys.len() as i64);
                for k in keys {
                    put_bytes(buf, k.as_bytes());
                }
            }
            Record::LeaseGrant { id, ttl } => {
                buf.push(TAG_LEASE_GRANT);
                put_i64(buf, *id);
                put_i64(buf, *ttl);
            }
            Record::LeaseRevoke { id } => {
                buf.push(TAG_LEASE_REVOKE);
                put_i64(buf, *id);
            }
            Record::SnapHeader {
                revision,
                next_lease_id,
                wal_gen,
            } => {
                buf.push(TAG_SNAP_HEADER);
                put_i64(buf, *revision);
                put_i64(buf, *next_lease_id);
                buf.extend_from_slice(&wal_gen.to_le_bytes());
            }
            Record::SnapLease { id, ttl } => {
                buf.push(TAG_SNAP_LEASE);
                put_i64(buf, *id);
                put_i64(buf, *ttl);
            }
            Record::SnapKv(kv) => {
                buf.push(TAG_SNAP_KV);
                put_i64(buf, kv.create_revision);
                put_i64(buf, kv.mod_revision);
                put_i64(buf, kv.version);
                put_i64(buf, kv.lease);
                put_bytes(buf, kv.key.as_bytes());
                put_bytes(buf, &kv.value);
            }
        }
    }

    fn decode(payload: &[u8]) -> Result<Record, String> {
        let mut r = Reader { buf: payload };
        let rec = match r.u8()? {
            TAG_PUT => Record::Put {
                rev: r.i64()?,
                lease: r.i64()?,
                key: r.string()?,
                value: r.bytes()?.to_vec(),
            },
            TAG_DELETE => {
                let rev = r.i64()?;
                let n = r.i64()?;
                // Each key needs at least its 4-byte length: bounds the allocation.
                if n < 0 || n as u128 * 4 > r.buf.len() as u128 {
                    return Err(format!("bad key count {n}"));
                }
                let mut keys = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    keys.push(r.string()?);
                }
                Record::Delete { rev, keys }
            }
            TAG_LEASE_GRANT => Record::LeaseGrant {
                id: r.i64()?,
                ttl: r.i64()?,
            },
            TAG_LEASE_REVOKE => Record::LeaseRevoke { id: r.i64()? },
            TAG_SNAP_HEADER => Record::SnapHeader {
                revision: r.i64()?,
                next_lease_id: r.i64()?,
                wal_gen: r.u64()?,
            },
            TAG_SNAP_LEASE => Record::SnapLease {
                id: r.i64()?,
                ttl: r.i64()?,
            },
            TAG_SNAP_KV => {
                let create_revision = r.i64()?;
                let mod_revision = r.i64()?;
                let version = r.i64()?;
                let lease = r.i64()?;
                Record::SnapKv(KeyValue {
                    key: r.string()?,
                    value: r.bytes()?.to_vec(),
                    create_revision,
                    mod_revision,
                    version,
                    lease,
                })
            }
            t => return Err(format!("unknown record tag {t}")),
        };
        if !r.buf.is_empty() {
            return Err(format!("{} trailing bytes in record", r.buf.len()));
        }
        Ok(rec)
    }

    /// The record as a log frame.
    fn frame(&self) -> Vec<u8> {
        let mut buf = vec![0u8; FRAME_HEADER];
        self.encode(&mut buf);
        let payload_len = u32::try_from(buf.len() - FRAME_HEADER).unwrap_or(u32::MAX);
        let crc = crc32fast::hash(&buf[FRAME_HEADER..]);
        buf[0..4].copy_from_slice(&payload_len.to_le_bytes());
        buf[4..8].copy_from_slice(&crc.to_le_bytes());
        buf
    }
}

/// Bounds-checked reader over data read from disk: never panics.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.buf.len() < n {
            return Err(format!(
                "record truncated: need {n} bytes, {} left",
                self.buf.len()
            ));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn array8(&mut self) -> Result<[u8; 8], String> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(a)
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.array8()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array8()?))
    }
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let mut len = [0u8; 4];
        len.copy_from_slice(self.take(4)?);
        self.take(u32::from_le_bytes(len) as usize)
    }
    fn string(&mut self) -> Result<String, String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|e| format!("key is not UTF-8: {e}"))
    }
}

/// The frame starting at `off`, if it is complete and its CRC matches: (payload, next offset).
fn frame_at(data: &[u8], off: usize) -> Option<(&[u8], usize)> {
    let header = data.get(off..off.checked_add(FRAME_HEADER)?)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    // A zero length is never written (every record has a tag): zero-filled tails are garbage.
    if len == 0 || len > MAX_FRAME {
        return None;
    }
    let start = off + FRAME_HEADER;
    let payload = data.get(start..start.checked_add(len)?)?;
    (crc32fast::hash(payload) == crc).then_some((payload, start + len))
}

/// Splits a file into frame payloads. Returns the payloads and the length of the valid prefix.
/// A bad frame followed by nothing valid is a torn tail (the valid prefix stops before it); a
/// bad frame followed by a valid frame is corruption in the middle (error).
fn split_frames(data: &[u8]) -> Result<(Vec<&[u8]>, usize), String> {
    let mut frames = Vec::new();
    let mut off = 0;
    while off < data.len() {
        match frame_at(data, off) {
            Some((payload, next)) => {
                frames.push(payload);
                off = next;
            }
            None => {
                // Follow the chain of declared lengths after the bad frame: if a valid frame
                // comes later, the damage is not a torn write at the end.
                let mut probe = off;
                while let Some(header) = data.get(probe..probe + FRAME_HEADER) {
                    let len =
                        u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
                    if len == 0 || len > MAX_FRAME {
                        break;
                    }
                    let next = probe + FRAME_HEADER + len;
                    if next > data.len() {
                        break;
                    }
                    if next < data.len() && frame_at(data, next).is_some() {
                        return Err(format!(
                            "corrupt record at offset {off} followed by valid records"
                        ));
                    }
                    probe = next;
                }
                return Ok((frames, off));
            }
        }
    }
    Ok((frames, off))
}

// ---------------------------------------------------------------------------------------------
// Group-commit log writer
// ---------------------------------------------------------------------------------------------

type Ack = oneshot::Sender<Result<(), String>>;

enum Entry {
    Frame(Vec<u8>),
    /// Acknowledged once everything queued before it is on disk.
    Waiter(Ack),
    /// Start a new log generation and write this snapshot (taken at this log position).
    Rotate(Vec<Record>),
}

struct Queue {
    entries: Vec<Entry>,
    shutdown: bool,
}

struct LogQueue {
    queue: Mutex<Queue>,
    cv: Condvar,
    /// Set once the writer failed; the store refuses writes from then on.
    failed: Mutex<Option<String>>,
    /// Size of the current log file (after the last flush).
    log_bytes: AtomicU64,
    /// A Rotate entry is queued or running.
    rotating: AtomicBool,
    writer_exited: AtomicBool,
}

impl LogQueue {
    fn push(&self, entry: Entry) {
        let mut q = lock(&self.queue);
        q.entries.push(entry);
        drop(q);
        self.cv.notify_one();
    }

    fn shutdown(&self) {
        lock(&self.queue).shutdown = true;
        self.cv.notify_all();
    }

    fn failure(&self) -> Option<String> {
        if let Some(f) = lock(&self.failed).clone() {
            return Some(f);
        }
        if self.writer_exited.load(Ordering::SeqCst) && !lock(&self.queue).shutdown {
            return Some("log writer thread exited".to_string());
        }
        None
    }
}

struct Writer {
    queue: Arc<LogQueue>,
    dir: PathBuf,
    file: File,
    wal_gen: u64,
    buf: Vec<u8>,
    waiters: Vec<Ack>,
    /// Held for the life of the writer: the directory lock.
    _lock_file: File,
}

impl Writer {
    fn run(mut self) {
        loop {
            let (entries, shutdown) = {
                let mut q = lock(&self.queue.queue);
                while q.entries.is_empty() && !q.shutdown {
                    q = self.queue.cv.wait(q).unwrap_or_else(|e| e.into_inner());
                }
                (std::mem::take(&mut q.entries), q.shutdown)
            };
            if entries.is_empty() && shutdown {
                break;
            }
            if let Err(e) = self.process(entries) {
                let msg = format!("datastore log write failed: {e}");
                tracing::error!(error = %e, "embedded datastore log write failed; store is now read-only");
                *lock(&self.queue.failed) = Some(msg.clone());
                for w in self.waiters.drain(..) {
                    let _ = w.send(Err(msg.clone()));
                }
                self.fail_forever(&msg);
                break;
            }
        }
        self.queue.writer_exited.store(true, Ordering::SeqCst);
    }

    /// After a failure: keep failing waiters until shutdown, so no writer waits forever.
    fn fail_forever(&mut self, msg: &str) {
        loop {
            let mut q = lock(&self.queue.queue);
            for e in q.entries.drain(..) {
                if let Entry::Waiter(w) = e {
                    let _ = w.send(Err(msg.to_string()));
                }
            }
            if q.shutdown {
                return;
            }
            drop(self.queue.cv.wait(q).unwrap_or_else(|e| e.into_inner()));
        }
    }

    fn process(&mut self, entries: Vec<Entry>) -> std::io::Result<()> {
        for e in entries {
            match e {
                Entry::Frame(f) => self.buf.extend_from_slice(&f),
                Entry::Waiter(w) => self.waiters.push(w),
                Entry::Rotate(snapshot) => {
                    self.flush()?;
                    self.rotate(&snapshot)?;
                }
            }
        }
        self.flush()
    }

    /// One write + one fdatasync for the whole batch, then wake every waiter.
    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf)?;
            self.file.sync_data()?;
            self.queue
                .log_bytes
                .fetch_add(self.buf.len() as u64, Ordering::SeqCst);
            self.buf.clear();
            // Don't keep a huge buffer around after a burst.
            if self.buf.capacity() > 4 << 20 {
                self.buf.shrink_to(1 << 20);
            }
        }
        for w in self.waiters.drain(..) {
            let _ = w.send(Ok(()));
        }
        Ok(())
    }

    /// New log generation first, then the snapshot naming it, then drop the old log. A crash at
    /// any point leaves either (old snapshot, old log) or (new snapshot, new log) consistent.
    fn rotate(&mut self, snapshot: &[Record]) -> std::io::Result<()> {
        let new_gen = self.wal_gen + 1;
        let new_wal = self.dir.join(wal_name(new_gen));
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&new_wal)?;
        file.sync_all()?;
        sync_dir(&self.dir)?;

        let mut data = Vec::new();
        for rec in snapshot {
            let rec = match rec {
                Record::SnapHeader {
                    revision,
                    next_lease_id,
                    ..
                } => Record::SnapHeader {
                    revision: *revision,
                    next_lease_id: *next_lease_id,
                    wal_gen: new_gen,
                },
                other => other.clone(),
            };
            data.extend_from_slice(&rec.frame());
        }
        write_atomically(&self.dir, SNAPSHOT_FILE, SNAPSHOT_TMP_FILE, &data)?;

        let old = self.dir.join(wal_name(self.wal_gen));
        self.file = file;
        self.wal_gen = new_gen;
        self.queue.log_bytes.store(0, Ordering::SeqCst);
        self.queue.rotating.store(false, Ordering::SeqCst);
        if let Err(e) = fs::remove_file(&old) {
            tracing::warn!(path = %old.display(), error = %e, "could not remove the old datastore log");
        }
        tracing::info!(
            wal_gen = new_gen,
            snapshot_bytes = data.len(),
            "datastore log compacted"
        );
        Ok(())
    }
}

fn wal_name(wal_gen: u64) -> String {
    format!("{WAL_PREFIX}{wal_gen:020}")
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn write_atomically(dir: &Path, name: &str, tmp: &str, data: &[u8]) -> std::io::Result<()> {
    let tmp_path = dir.join(tmp);
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&tmp_path)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp_path, dir.join(name))?;
    sync_dir(dir)
}

fn corrupt(path: &Path, message: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        key: path.display().to_string(),
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Opening
// ---------------------------------------------------------------------------------------------

impl EmbeddedStore {
    /// Opens (or creates) a persistent store in `dir` with the default options.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(dir, EmbeddedOptions::default())
    }

    /// A store without persistence (unit tests).
    pub fn in_memory() -> Self {
        Self::in_memory_with(EmbeddedOptions::default())
    }

    /// A store without persistence, with explicit options.
    pub fn in_memory_with(opts: EmbeddedOptions) -> Self {
        Self::start(None, opts, State::new(), None)
    }

    /// Opens (or creates) a persistent store in `dir`: replays the snapshot then the log.
    pub fn open_with(dir: impl AsRef<Path>, opts: EmbeddedOptions) -> Result<Self, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;

        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Backend(format!(
                    "datastore directory {} is already open by another store",
                    dir.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(StoreError::Io(e)),
        }

        let now = Instant::now();
        let mut state = State::new();
        let snap_path = dir.join(SNAPSHOT_FILE);
        let wal_gen = if snap_path.exists() {
            load_snapshot(&snap_path, &mut state, now)?
        } else {
            0
        };

        let wal_path = dir.join(wal_name(wal_gen));
        let log_bytes = replay_log(&wal_path, &mut state, now)?;

        // Leftovers of an interrupted compaction.
        let _ = fs::remove_file(dir.join(SNAPSHOT_TMP_FILE));
        if let Ok(entries) = fs::read_dir(&dir) {
            let current = wal_name(wal_gen);
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with(WAL_PREFIX) && *name != *current {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }

        // History is not persisted: only watches from after the current revision can be served.
        if state.revision > 1 {
            state.compacted = state.revision;
        }

        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&wal_path)?;
        file.sync_all()?;
        sync_dir(&dir)?;

        let queue = Arc::new(LogQueue {
            queue: Mutex::new(Queue {
                entries: Vec::new(),
                shutdown: false,
            }),
            cv: Condvar::new(),
            failed: Mutex::new(None),
            log_bytes: AtomicU64::new(log_bytes),
            rotating: AtomicBool::new(false),
            writer_exited: AtomicBool::new(false),
        });
        let writer = Writer {
            queue: queue.clone(),
            dir: dir.clone(),
            file,
            wal_gen,
            buf: Vec::with_capacity(1 << 16),
            waiters: Vec::new(),
            _lock_file: lock_file,
        };
        let thread = std::thread::Builder::new()
            .name("datastore-wal".to_string())
            .spawn(move || writer.run())?;
        Ok(Self::start(Some(dir), opts, state, Some((queue, thread))))
    }

    fn start(
        dir: Option<PathBuf>,
        opts: EmbeddedOptions,
        state: State,
        log: Option<(Arc<LogQueue>, JoinHandle<()>)>,
    ) -> Self {
        let (log, writer) = match log {
            Some((q, t)) => (Some(q), Some(t)),
            None => (None, None),
        };
        let interval = opts.lease_check_interval;
        let shared = Arc::new(Shared {
            dir,
            opts,
            state: Mutex::new(state),
            log,
            closed: AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&shared);
        // The expiry thread holds only a weak reference: it stops when the store is gone.
        let spawned = std::thread::Builder::new()
            .name("datastore-leases".to_string())
            .spawn(move || lease_expiry_loop(weak, interval));
        if let Err(e) = spawned {
            // Expiry then happens lazily, at the next mutation.
            tracing::error!(error = %e, "could not start the lease expiry thread");
        }
        Self {
            handle: Arc::new(Handle {
                shared,
                writer: Mutex::new(writer),
            }),
        }
    }

    /// The directory of a persistent store.
    pub fn dir(&self) -> Option<&Path> {
        self.handle.shared.dir.as_deref()
    }
}

fn lease_expiry_loop(weak: Weak<Shared>, interval: Duration) {
    loop {
        std::thread::sleep(interval);
        let Some(shared) = weak.upgrade() else { return };
        if shared.closed.load(Ordering::SeqCst) {
            return;
        }
        let mut st = lock(&shared.state);
        if shared.writable().is_ok() {
            // No waiter: expiry is not acknowledged to anyone; it is durable with the next batch.
            let _ = shared.expire_due(&mut st, Instant::now());
        }
    }
}

fn load_snapshot(path: &Path, state: &mut State, now: Instant) -> Result<u64, StoreError> {
    let data = fs::read(path)?;
    let (frames, valid) = split_frames(&data).map_err(|e| corrupt(path, e))?;
    // The snapshot is written atomically: any damage is corruption, not a torn write.
    if valid != data.len() {
        return Err(corrupt(path, format!("damaged record at offset {valid}")));
    }
    let mut frames = frames.into_iter();
    let Some(first) = frames.next() else {
        return Err(corrupt(path, "empty snapshot"));
    };
    let wal_gen = match Record::decode(first).map_err(|e| corrupt(path, e))? {
        Record::SnapHeader {
            revision,
            next_lease_id,
            wal_gen,
        } => {
            state.revision = revision;
            state.next_lease_id = next_lease_id.max(1);
            wal_gen
        }
        _ => return Err(corrupt(path, "snapshot does not start with a header")),
    };
    for payload in frames {
        match Record::decode(payload).map_err(|e| corrupt(path, e))? {
            Record::SnapLease { id, ttl } => {
                if id <= 0 || ttl <= 0 {
                    return Err(corrupt(path, format!("bad lease {id} ttl {ttl}")));
                }
                state.leases.insert(
                    id,
                    Lease {
                        ttl,
                        deadline: deadline_after(now, ttl),
                        keys: BTreeSet::new(),
                    },
                );
            }
            Record::SnapKv(kv) => {
                if kv.mod_revision > state.revision || kv.create_revision > kv.mod_revision {
                    return Err(corrupt(path, format!("bad revisions for key {}", kv.key)));
                }
                if kv.lease != 0 {
                    match state.leases.get_mut(&kv.lease) {
                        Some(l) => {
                            l.keys.insert(kv.key.clone());
                        }
                        None => {
                            return Err(corrupt(
                                path,
                                format!("key {} on unknown lease {}", kv.key, kv.lease),
                            ));
                        }
                    }
                }
                state.live_bytes += kv_size(&kv);
                state.kvs.insert(kv.key.clone(), kv);
            }
            other => return Err(corrupt(path, format!("unexpected record {other:?}"))),
        }
    }
    Ok(wal_gen)
}

/// Replays the log into `state`; truncates a torn tail. Returns the log size afterwards.
fn replay_log(path: &Path, state: &mut State, now: Instant) -> Result<u64, StoreError> {
    let mut data = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut data)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    }
    let (frames, valid) = split_frames(&data).map_err(|e| corrupt(path, e))?;
    for (i, payload) in frames.into_iter().enumerate() {
        let rec = Record::decode(payload).map_err(|e| corrupt(path, format!("record {i}: {e}")))?;
        state
            .apply(rec, now)
            .map_err(|e| corrupt(path, format!("record {i}: {e}")))?;
    }
    if valid < data.len() {
        tracing::warn!(
            path = %path.display(),
            valid_bytes = valid,
            dropped_bytes = data.len() - valid,
            "datastore log has a torn tail (crash during a write); truncating it"
        );
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(valid as u64)?;
        f.sync_all()?;
    }
    Ok(valid as u64)
}

// ---------------------------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------------------------

impl Shared {
    fn writable(&self) -> Result<(), StoreError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("datastore is closed".to_string()));
        }
        if let Some(log) = &self.log
            && let Some(f) = log.failure()
        {
            return Err(StoreError::Unavailable(f));
        }
        Ok(())
    }

    /// Applies a validated record under the state lock and queues its log frame behind every
    /// earlier one, so the log order is the apply order.
    fn commit(&self, st: &mut State, rec: Record) -> Result<(), StoreError> {
        let frame = self.log.as_ref().map(|_| rec.frame());
        let events = st
            .apply(rec, Instant::now())
            .map_err(|e| StoreError::Backend(format!("internal: invalid mutation: {e}")))?;
        st.publish(events, self.opts.history_limit);
        if let (Some(log), Some(frame)) = (&self.log, frame) {
            log.push(Entry::Frame(frame));
        }
        Ok(())
    }

    /// Queues a waiter behind everything committed so far (None for an in-memory store), and
    /// asks for a compaction if the log has grown large enough.
    fn ticket(&self, st: &State) -> Option<oneshot::Receiver<Result<(), String>>> {
        let log = self.log.as_ref()?;
        let log_bytes = log.log_bytes.load(Ordering::SeqCst);
        if log_bytes >= self.opts.compact_min_log_bytes
            && log_bytes >= self.opts.compact_ratio.saturating_mul(st.live_bytes)
            && !log.rotating.swap(true, Ordering::SeqCst)
        {
            log.push(Entry::Rotate(snapshot_of(st)));
        }
        let (tx, rx) = oneshot::channel();
        log.push(Entry::Waiter(tx));
        Some(rx)
    }

    /// Deletes the keys of every lease whose deadline passed and removes the leases.
    /// Returns whether anything was written.
    fn expire_due(&self, st: &mut State, now: Instant) -> Result<bool, StoreError> {
        let due: Vec<LeaseId> = st
            .leases
            .iter()
            .filter(|(_, l)| l.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        let wrote = !due.is_empty();
        for id in due {
            tracing::debug!(lease = id, "lease expired");
            self.revoke_locked(st, id)?;
        }
        Ok(wrote)
    }

    fn revoke_locked(&self, st: &mut State, id: LeaseId) -> Result<(), StoreError> {
        let keys: Vec<String> = match st.leases.get(&id) {
            Some(l) => l.keys.iter().cloned().collect(),
            None => return Err(StoreError::LeaseNotFound(id)),
        };
        if !keys.is_empty() {
            let rev = st.revision + 1;
            self.commit(st, Record::Delete { rev, keys })?;
        }
        self.commit(st, Record::LeaseRevoke { id })
    }

    /// Runs a mutation under the state lock, then (lock released) waits for it to be durable.
    async fn mutate<R>(
        &self,
        f: impl FnOnce(&Self, &mut State) -> Result<(R, bool), StoreError>,
    ) -> Result<R, StoreError> {
        let (result, ticket) = {
            let mut st = lock(&self.state);
            self.writable()?;
            let expired = self.expire_due(&mut st, Instant::now())?;
            let (result, wrote) = f(self, &mut st)?;
            // A call that changed nothing itself still waits for the expiries it triggered, so
            // what it observed (the lease gone) is durable.
            let ticket = if wrote || expired {
                self.ticket(&st)
            } else {
                None
            };
            (result, ticket)
        };
        if let Some(rx) = ticket {
            match rx.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(StoreError::Unavailable(e)),
                Err(_) => {
                    return Err(StoreError::Unavailable(
                        "datastore log writer stopped".to_string(),
                    ));
                }
            }
        }
        Ok(result)
    }
}

fn snapshot_of(st: &State) -> Vec<Record> {
    let mut recs = Vec::with_capacity(1 + st.leases.len() + st.kvs.len());
    recs.push(Record::SnapHeader {
        revision: st.revision,
        next_lease_id: st.next_lease_id,
        wal_gen: 0, // filled in by the writer
    });
    let mut leases: Vec<_> = st.leases.iter().collect();
    leases.sort_by_key(|(id, _)| **id);
    for (id, l) in leases {
        recs.push(Record::SnapLease {
            id: *id,
            ttl: l.ttl,
        });
    }
    for kv in st.kvs.values() {
        recs.push(Record::SnapKv(kv.clone()));
    }
    recs
}

fn prefix_range<'a>(
    kvs: &'a BTreeMap<String, KeyValue>,
    prefix: &'a str,
) -> impl Iterator<Item = &'a KeyValue> + 'a {
    kvs.range::<str, _>((
        std::ops::Bound::Included(prefix),
        std::ops::Bound::Unbounded,
    ))
    .take_while(move |(k, _)| k.starts_with(prefix))
    .map(|(_, v)| v)
}

#[async_trait]
impl KvStore for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        Ok(lock(&self.handle.shared.state).kvs.get(key).cloned())
    }

    async fn put(&self, key: &str, value: Vec<u8>, lease: LeaseId) -> Result<Revision, StoreError> {
        self.handle
            .shared
            .mutate(|s, st| {
                if lease != 0 && !st.leases.contains_key(&lease) {
                    return Err(StoreError::LeaseNotFound(lease));
                }
                let rev = st.revision + 1;
                s.commit(
                    st,
                    Record::Put {
                        rev,
                        key: key.to_string(),
                        value,
                        lease,
                    },
                )?;
                Ok((rev, true))
            })
            .await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expect: Expect,
        value: Vec<u8>,
        lease: LeaseId,
    ) -> Result<CasOutcome, StoreError> {
        self.handle
            .shared
            .mutate(|s, st| {
                let current = st.kvs.get(key);
                let ok = match expect {
                    Expect::Absent => current.is_none(),
                    Expect::ModRevision(r) => current.is_some_and(|kv| kv.mod_revision == r),
                };
                if !ok {
                    return Ok((CasOutcome::Conflict(current.cloned()), false));
                }
                if lease != 0 && !st.leases.contains_key(&lease) {
                    return Err(StoreError::LeaseNotFound(lease));
                }
                let rev = st.revision + 1;
                s.commit(
                    st,
                    Record::Put {
                        rev,
                        key: key.to_string(),
                        value,
                        lease,
                    },
                )?;
                Ok((CasOutcome::Written(rev), true))
            })
            .await
    }

    async fn delete(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        self.handle
            .shared
            .mutate(|s, st| {
                let Some(prev) = st.kvs.get(key).cloned() else {
                    return Ok((None, false));
                };
                let rev = st.revision + 1;
                s.commit(
                    st,
                    Record::Delete {
                        rev,
                        keys: vec![key.to_string()],
                    },
                )?;
                Ok((Some(prev), true))
            })
            .await
    }

    async fn compare_and_delete(
        &self,
        key: &str,
        mod_revision: Revision,
    ) -> Result<CasOutcome, StoreError> {
        self.handle
            .shared
            .mutate(|s, st| {
                let current = st.kvs.get(key);
                if current.is_none_or(|kv| kv.mod_revision != mod_revision) {
                    return Ok((CasOutcome::Conflict(current.cloned()), false));
                }
                let rev = st.revision + 1;
                s.commit(
                    st,
                    Record::Delete {
                        rev,
                        keys: vec![key.to_string()],
                    },
                )?;
                Ok((CasOutcome::Written(rev), true))
            })
            .await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        self.handle
            .shared
            .mutate(|s, st| {
                let keys: Vec<String> = prefix_range(&st.kvs, prefix)
                    .map(|kv| kv.key.clone())
                    .collect();
                if keys.is_empty() {
                    return Ok((0, false));
                }
                let n = keys.len() as u64;
                let rev = st.revision + 1;
                s.commit(st, Record::Delete { rev, keys })?;
                Ok((n, true))
            })
            .await
    }

    async fn list_prefix(&self, prefix: &str) -> Result<ListResult, StoreError> {
        let st = lock(&self.handle.shared.state);
        Ok(ListResult {
            kvs: prefix_range(&st.kvs, prefix).cloned().collect(),
            revision: st.revision,
        })
    }

    async fn scan_prefix(
        &self,
        prefix: &str,
        start: &str,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        let from = if start > prefix { start } else { prefix };
        let st = lock(&self.handle.shared.state);
        Ok(st
            .kvs
            .range::<str, _>((std::ops::Bound::Included(from), std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(_, v)| v.clone())
            .collect())
    }

    async fn watch_prefix(
        &self,
        prefix: &str,
        start_revision: Option<Revision>,
    ) -> Result<WatchStream, StoreError> {
        let shared = &self.handle.shared;
        let (tx, rx) = mpsc::channel(shared.opts.watch_buffer.max(1));
        let overflowed = Arc::new(AtomicBool::new(false));
        // Replay and registration happen under the lock that appends history and publishes, so
        // the live part starts exactly after the replayed part: no gap, no duplicate.
        let (replay, min_rev) = {
            let mut st = lock(&shared.state);
            if shared.closed.load(Ordering::SeqCst) {
                return Err(StoreError::Unavailable("datastore is closed".to_string()));
            }
            let (replay, min_rev) = match start_revision {
                Some(r) if r > 0 => {
                    if r <= st.compacted {
                        return Err(StoreError::Compacted {
                            requested: r,
                            oldest: st.compacted + 1,
                        });
                    }
                    let replay: Vec<WatchEvent> = st
                        .history
                        .iter()
                        .filter(|ev| ev.revision() >= r && ev.key().starts_with(prefix))
                        .cloned()
                        .collect();
                    (replay, r)
                }
                _ => (Vec::new(), st.revision + 1),
            };
            st.watchers.push(Watcher {
                prefix: prefix.to_string(),
                tx,
                overflowed: overflowed.clone(),
            });
            (replay, min_rev)
        };
        let live = ReceiverStream::new(rx)
            .filter(move |ev| std::future::ready(ev.revision() >= min_rev))
            .map(Ok);
        // The live channel only ends abnormally: report why, which also ends the stream.
        let end = futures::stream::once(async move {
            if overflowed.load(Ordering::SeqCst) {
                Err(StoreError::Backend(
                    "watcher fell behind: re-list and watch again".to_string(),
                ))
            } else {
                Err(StoreError::Unavailable("datastore closed".to_string()))
            }
        });
        Ok(Box::pin(
            futures::stream::iter(replay.into_iter().map(Ok))
                .chain(live)
                .chain(end),
        ))
    }

    async fn grant_lease(&self, ttl_secs: i64) -> Result<LeaseId, StoreError> {
        // etcd also raises tiny TTLs to its minimum.
        let ttl = ttl_secs.max(1);
        self.handle
            .shared
            .mutate(|s, st| {
                let id = st.next_lease_id;
                s.commit(st, Record::LeaseGrant { id, ttl })?;
                Ok((id, true))
            })
            .await
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.handle
            .shared
            .mutate(|_, st| match st.leases.get_mut(&lease) {
                Some(l) => {
                    l.deadline = deadline_after(Instant::now(), l.ttl);
                    Ok(((), false))
                }
                None => Err(StoreError::LeaseNotFound(lease)),
            })
            .await
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.handle
            .shared
            .mutate(|s, st| {
                s.revoke_locked(st, lease)?;
                Ok(((), true))
            })
            .await
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.handle.shared.writable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_roundtrip() {
        let recs = vec![
            Record::Put {
                rev: 2,
                key: "a/b".into(),
                value: b"xyz".to_vec(),
                lease: 7,
            },
            Record::Delete {
                rev: 3,
                keys: vec!["a".into(), "b".into()],
            },
            Record::LeaseGrant { id: 5, ttl: 10 },
            Record::LeaseRevoke { id: 5 },
            Record::SnapHeader {
                revision: 9,
                next_lease_id: 4,
                wal_gen: 3,
            },
            Record::SnapLease { id: 3, ttl: 4 },
            Record::SnapKv(KeyValue {
                key: "k".into(),
                value: vec![0, 1, 2],
                create_revision: 2,
                mod_revision: 5,
                version: 3,
                lease: 0,
            }),
        ];
        let mut data = Vec::new();
        for r in &recs {
            data.extend_from_slice(&r.frame());
        }
        let (frames, valid) = split_frames(&data).unwrap();
        assert_eq!(valid, data.len());
        let decoded: Vec<Record> = frames
            .into_iter()
            .map(|f| Record::decode(f).unwrap())
            .collect();
        assert_eq!(decoded, recs);
    }

    #[test]
    fn decode_never_panics_on_garbage() {
        let mut x: u32 = 12345;
        for len in 0..200usize {
            let mut buf = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                buf.push(x as u8);
            }
            let _ = Record::decode(&buf);
            let _ = split_frames(&buf);
            if !buf.is_empty() {
                buf[0] = TAG_DELETE;
                let _ = Record::decode(&buf);
            }
        }
    }

    #[test]
    fn torn_tail_vs_middle_corruption() {
        let a = Record::LeaseGrant { id: 1, ttl: 5 }.frame();
        let b = Record::LeaseGrant { id: 2, ttl: 5 }.frame();
        let mut data = [a.clone(), b.clone()].concat();
        // Torn tail: half of a third record.
        let c = Record::LeaseGrant { id: 3, ttl: 5 }.frame();
        data.extend_from_slice(&c[..c.len() / 2]);
        let (frames, valid) = split_frames(&data).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(valid, a.len() + b.len());
        // Zero-filled tail.
        let mut zeros = [a.clone(), b.clone()].concat();
        zeros.extend_from_slice(&[0u8; 64]);
        assert_eq!(split_frames(&zeros).unwrap().1, a.len() + b.len());
        // Flipped payload byte in the first record: a valid record follows -> error.
        let mut bad = [a.clone(), b.clone()].concat();
        bad[FRAME_HEADER + 2] ^= 0xff;
        assert!(split_frames(&bad).is_err());
    }
}

#[cfg(test)]
#[path = "embedded_tests.rs"]
mod store_tests;

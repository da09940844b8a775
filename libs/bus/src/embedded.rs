//! An in-process Stream Handler (D6.7 4.5.2) with Kafka's offset semantics, for a single-node
//! deployment and for tests: one log per topic (partition 0), offsets from 0, readers that wait
//! for new records.
//!
//! With a directory, each topic is one append-only file `<dir>/<topic>.log` of frames
//! `[len u32 LE][crc32 u32 LE][body]`, body = `offset i64 | timestamp_ms i64 | key_len i32
//! (-1: no key) | key | payload` (little endian). The files are replayed on open; a torn or
//! corrupt tail (a crash in the middle of a write) is cut off. Retention keeps the newest
//! `retention_records` records of each topic in memory; offsets keep increasing, and a file is
//! rewritten with the retained records once it holds twice as many, so it stays bounded too.
//! A lock file stops a second process from opening the same directory.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::{
    BusError, Record, StartAt, StreamHandler, TopicReader, now_ms, validate_start, validate_topic,
};

/// Records kept per topic when nothing else is configured.
pub const DEFAULT_RETENTION_RECORDS: usize = 100_000;

/// The largest key + payload the embedded log accepts (Kafka's own default limit is ~1 MB).
pub const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

const FRAME_HEADER: usize = 8;
/// offset + timestamp + key length.
const BODY_FIXED: usize = 8 + 8 + 4;
const LOG_SUFFIX: &str = ".log";
const LOCK_FILE: &str = "LOCK";

/// The in-process topic log. Cheap to clone (shared state).
#[derive(Clone)]
pub struct EmbeddedStreamHandler {
    inner: Arc<Inner>,
}

struct Inner {
    dir: Option<PathBuf>,
    retention: usize,
    topics: Mutex<HashMap<String, Arc<Topic>>>,
    /// Held (locked) for the life of the handler when `dir` is set.
    _lock: Option<File>,
}

struct Topic {
    name: String,
    log: Mutex<TopicLog>,
    /// The next offset; readers wait on changes.
    next_tx: watch::Sender<i64>,
}

struct TopicLog {
    /// Offset of `records[0]`; equals `next` when empty.
    first: i64,
    next: i64,
    records: VecDeque<Stored>,
    file: Option<LogFile>,
}

struct Stored {
    offset: i64,
    timestamp_ms: i64,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
}

struct LogFile {
    path: PathBuf,
    file: File,
    len: u64,
    /// Frames in the file (retained or not): drives the rewrite.
    frames: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves consistent data (every update is completed before
    // any step that can fail), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> BusError {
    BusError::Unavailable(format!("{what} {}: {e}", path.display()))
}

impl EmbeddedStreamHandler {
    /// Opens the log: in memory when `dir` is `None`, else persisted under `dir` (created if
    /// missing) and replayed from it. `retention_records` (at least 1) is how many records of
    /// each topic are kept. Blocking file I/O: call it at start-up, or through
    /// `spawn_blocking` (as [`crate::open_stream_handler`] does).
    pub fn open(dir: Option<PathBuf>, retention_records: usize) -> Result<Self, BusError> {
        if retention_records == 0 {
            return Err(BusError::Invalid(
                "retention_records must be at least 1".to_string(),
            ));
        }
        let mut topics = HashMap::new();
        let mut lock_file = None;
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir).map_err(|e| io_err("cannot create", dir, e))?;
            let lock_path = dir.join(LOCK_FILE);
            let f = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(|e| io_err("cannot open", &lock_path, e))?;
            f.try_lock().map_err(|e| {
                BusError::Unavailable(format!(
                    "stream log {} is in use by another process: {e}",
                    dir.display()
                ))
            })?;
            lock_file = Some(f);
            let entries = std::fs::read_dir(dir).map_err(|e| io_err("cannot list", dir, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| io_err("cannot list", dir, e))?;
                let file_name = entry.file_name();
                let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(LOG_SUFFIX)) else {
                    continue;
                };
                if validate_topic(name).is_err() {
                    continue;
                }
                let log = replay(&entry.path(), retention_records)?;
                topics.insert(name.to_string(), Arc::new(Topic::new(name, log)));
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                dir,
                retention: retention_records,
                topics: Mutex::new(topics),
                _lock: lock_file,
            }),
        })
    }

    /// The topics that exist, sorted.
    pub fn topics(&self) -> Vec<String> {
        let mut names: Vec<String> = lock(&self.inner.topics).keys().cloned().collect();
        names.sort();
        names
    }

    /// `(first retained offset, next offset)` of a topic, `None` if it does not exist.
    pub fn watermarks(&self, topic: &str) -> Option<(i64, i64)> {
        let t = lock(&self.inner.topics).get(topic).cloned()?;
        let log = lock(&t.log);
        Some((log.first, log.next))
    }

    /// The topic, created (and its file opened) if missing. Blocking when persisted.
    fn topic_blocking(inner: &Inner, name: &str) -> Result<Arc<Topic>, BusError> {
        let mut topics = lock(&inner.topics);
        if let Some(t) = topics.get(name) {
            return Ok(t.clone());
        }
        let file = match &inner.dir {
            Some(dir) => Some(LogFile::create(&dir.join(format!("{name}{LOG_SUFFIX}")))?),
            None => None,
        };
        let t = Arc::new(Topic::new(
            name,
            TopicLog {
                first: 0,
                next: 0,
                records: VecDeque::new(),
                file,
            },
        ));
        topics.insert(name.to_string(), t.clone());
        Ok(t)
    }

    async fn topic(&self, name: &str) -> Result<Arc<Topic>, BusError> {
        validate_topic(name)?;
        if self.inner.dir.is_none() {
            return Self::topic_blocking(&self.inner, name);
        }
        if let Some(t) = lock(&self.inner.topics).get(name) {
            return Ok(t.clone());
        }
        let inner = self.inner.clone();
        let name = name.to_string();
        tokio::task::spawn_blocking(move || Self::topic_blocking(&inner, &name))
            .await
            .map_err(|e| BusError::Unavailable(format!("stream log task failed: {e}")))?
    }
}

impl Topic {
    fn new(name: &str, log: TopicLog) -> Self {
        let (next_tx, _) = watch::channel(log.next);
        Self {
            name: name.to_string(),
            log: Mutex::new(log),
            next_tx,
        }
    }

    /// Appends one record (writes the file first when persisted). Blocking when persisted.
    fn append(
        &self,
        retention: usize,
        key: Option<Vec<u8>>,
        payload: Vec<u8>,
    ) -> Result<(), BusError> {
        let mut log = lock(&self.log);
        let rec = Stored {
            offset: log.next,
            timestamp_ms: now_ms(),
            key,
            payload,
        };
        if let Some(file) = &mut log.file {
            file.append(&encode_frame(&rec))?;
        }
        log.next = rec.offset + 1;
        log.records.push_back(rec);
        while log.records.len() > retention {
            log.records.pop_front();
        }
        log.first = log.records.front().map_or(log.next, |r| r.offset);
        let next = log.next;
        let needs_rewrite = log
            .file
            .as_ref()
            .is_some_and(|f| f.frames > retention.saturating_mul(2));
        if needs_rewrite {
            let TopicLog { records, file, .. } = &mut *log;
            if let Some(f) = file {
                // The record is already durable in the old file: a failed rewrite keeps it.
                if let Err(e) = f.rewrite(records) {
                    tracing::warn!(topic = %self.name, error = %e, "stream log rewrite failed");
                }
            }
        }
        drop(log);
        self.next_tx.send_replace(next);
        Ok(())
    }

    /// The record at `*pos` or the first retained one after it; advances `*pos`.
    fn read_at(&self, pos: &mut i64) -> Option<Record> {
        let log = lock(&self.log);
        if *pos < log.first {
            // Trimmed by retention: resume at the oldest retained record, as Kafka's
            // auto.offset.reset=earliest does.
            *pos = log.first;
        }
        let idx = usize::try_from(*pos - log.first).ok()?;
        let r = log.records.get(idx)?;
        *pos = r.offset + 1;
        Some(Record {
            topic: self.name.clone(),
            offset: r.offset,
            key: r.key.clone(),
            payload: r.payload.clone(),
            timestamp_ms: r.timestamp_ms,
        })
    }
}

impl LogFile {
    fn create(path: &Path) -> Result<Self, BusError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| io_err("cannot open", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| io_err("cannot stat", path, e))?
            .len();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            len,
            frames: 0,
        })
    }

    fn append(&mut self, frame: &[u8]) -> Result<(), BusError> {
        if let Err(e) = self.file.write_all(frame) {
            // Cut a partial frame off so the next append does not land behind garbage.
            if let Err(e2) = self.file.set_len(self.len) {
                tracing::warn!(path = %self.path.display(), error = %e2, "cannot cut a partial frame");
            }
            return Err(io_err("cannot append to", &self.path, e));
        }
        self.len += frame.len() as u64;
        self.frames += 1;
        Ok(())
    }

    /// Replaces the file with one holding only `records` (write, fsync, rename).
    fn rewrite(&mut self, records: &VecDeque<Stored>) -> Result<(), BusError> {
        let tmp = self.path.with_extension("log.tmp");
        let mut buf = Vec::new();
        for r in records {
            buf.extend_from_slice(&encode_frame(r));
        }
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&buf)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| io_err("cannot rewrite", &self.path, e))?;
        let mut fresh = Self::create(&self.path)?;
        fresh.frames = records.len();
        *self = fresh;
        Ok(())
    }
}

fn encode_frame(r: &Stored) -> Vec<u8> {
    let key_len = r.key.as_ref().map_or(0, Vec::len);
    let mut body = Vec::with_capacity(BODY_FIXED + key_len + r.payload.len());
    body.extend_from_slice(&r.offset.to_le_bytes());
    body.extend_from_slice(&r.timestamp_ms.to_le_bytes());
    match &r.key {
        // Keys are bounded by MAX_RECORD_BYTES, far below i32::MAX.
        Some(k) => {
            body.extend_from_slice(&i32::try_from(k.len()).unwrap_or(i32::MAX).to_le_bytes());
            body.extend_from_slice(k);
        }
        None => body.extend_from_slice(&(-1i32).to_le_bytes()),
    }
    body.extend_from_slice(&r.payload);
    let mut frame = Vec::with_capacity(FRAME_HEADER + body.len());
    frame.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    frame.extend_from_slice(&body);
    frame
}

fn le_i64(b: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Decodes one frame at the start of `buf`: the record and the frame length, or `None` when
/// the frame is incomplete or corrupt.
fn decode_frame(buf: &[u8]) -> Option<(Stored, usize)> {
    let len = usize::try_from(le_u32(buf, 0)?).ok()?;
    let crc = le_u32(buf, 4)?;
    if !(BODY_FIXED..=MAX_RECORD_BYTES + BODY_FIXED).contains(&len) {
        return None;
    }
    let body = buf.get(FRAME_HEADER..FRAME_HEADER + len)?;
    if crc32fast::hash(body) != crc {
        return None;
    }
    let offset = le_i64(body, 0)?;
    let timestamp_ms = le_i64(body, 8)?;
    let key_len = i32::from_le_bytes(body.get(16..20)?.try_into().ok()?);
    let (key, rest) = if key_len < 0 {
        (None, body.get(BODY_FIXED..)?)
    } else {
        let k = usize::try_from(key_len).ok()?;
        (
            Some(body.get(BODY_FIXED..BODY_FIXED + k)?.to_vec()),
            body.get(BODY_FIXED + k..)?,
        )
    };
    Some((
        Stored {
            offset,
            timestamp_ms,
            key,
            payload: rest.to_vec(),
        },
        FRAME_HEADER + len,
    ))
}

/// Reads a topic file back; cuts off a torn or corrupt tail.
fn replay(path: &Path, retention: usize) -> Result<TopicLog, BusError> {
    let buf = std::fs::read(path).map_err(|e| io_err("cannot read", path, e))?;
    let mut records = VecDeque::new();
    let mut at = 0usize;
    let mut frames = 0usize;
    let mut next = 0i64;
    while at < buf.len() {
        let Some((rec, n)) = buf.get(at..).and_then(decode_frame) else {
            break;
        };
        // Offsets only grow; anything else is corruption that the CRC did not catch.
        if rec.offset < next || rec.offset == i64::MAX {
            break;
        }
        next = rec.offset + 1;
        at += n;
        frames += 1;
        records.push_back(rec);
        if records.len() > retention {
            records.pop_front();
        }
    }
    let mut file = LogFile::create(path)?;
    if at < buf.len() {
        tracing::warn!(
            path = %path.display(),
            dropped_bytes = buf.len() - at,
            "stream log has a torn or corrupt tail; cutting it off"
        );
        file.file
            .set_len(at as u64)
            .map_err(|e| io_err("cannot truncate", path, e))?;
        file.len = at as u64;
    }
    file.frames = frames;
    let first = records.front().map_or(next, |r| r.offset);
    Ok(TopicLog {
        first,
        next,
        records,
        file: Some(file),
    })
}

#[async_trait]
impl StreamHandler for EmbeddedStreamHandler {
    async fn publish(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<(), BusError> {
        validate_topic(topic)?;
        let size = payload.len() + key.map_or(0, <[u8]>::len);
        if size > MAX_RECORD_BYTES {
            return Err(BusError::Invalid(format!(
                "record of {size} bytes is larger than the limit of {MAX_RECORD_BYTES}"
            )));
        }
        let t = self.topic(topic).await?;
        let retention = self.inner.retention;
        let key = key.map(<[u8]>::to_vec);
        let payload = payload.to_vec();
        if self.inner.dir.is_none() {
            return t.append(retention, key, payload);
        }
        tokio::task::spawn_blocking(move || t.append(retention, key, payload))
            .await
            .map_err(|e| BusError::Unavailable(format!("stream log task failed: {e}")))?
    }

    async fn reader(&self, topic: &str, start: StartAt) -> Result<Box<dyn TopicReader>, BusError> {
        validate_start(start)?;
        let t = self.topic(topic).await?;
        let rx = t.next_tx.subscribe();
        let pos = {
            let log = lock(&t.log);
            match start {
                StartAt::Beginning => log.first,
                StartAt::End => log.next,
                // Outside the retained range: the nearest end, as the Kafka reader does.
                StartAt::Offset(k) => k.clamp(log.first, log.next),
            }
        };
        Ok(Box::new(EmbeddedReader { topic: t, pos, rx }))
    }

    fn kind(&self) -> &'static str {
        "embedded"
    }
}

struct EmbeddedReader {
    topic: Arc<Topic>,
    pos: i64,
    rx: watch::Receiver<i64>,
}

#[async_trait]
impl TopicReader for EmbeddedReader {
    async fn next(&mut self, timeout: Duration) -> Result<Option<Record>, BusError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Mark the current value seen before looking, so an append after the look wakes us.
            self.rx.borrow_and_update();
            if let Some(r) = self.topic.read_at(&mut self.pos) {
                return Ok(Some(r));
            }
            match tokio::time::timeout_at(deadline, self.rx.changed()).await {
                Ok(Ok(())) => {}
                // The sender lives in the topic we hold, so it cannot close; treat as no data.
                Ok(Err(_)) | Err(_) => return Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(200);

    #[tokio::test]
    async fn suite_in_memory() {
        let h = EmbeddedStreamHandler::open(None, 10_000).unwrap();
        crate::contract::run_suite(Arc::new(h)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn suite_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let h = EmbeddedStreamHandler::open(Some(dir.path().to_path_buf()), 10_000).unwrap();
        crate::contract::run_suite(Arc::new(h)).await;
    }

    #[test]
    fn zero_retention_is_invalid() {
        assert!(matches!(
            EmbeddedStreamHandler::open(None, 0),
            Err(BusError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn reopen_replays_records_and_offsets() {
        let dir = tempfile::tempdir().unwrap();
        {
            let h = EmbeddedStreamHandler::open(Some(dir.path().into()), 100).unwrap();
            h.publish("t1", Some(b"k0"), b"zero").await.unwrap();
            h.publish("t1", None, b"one").await.unwrap();
            h.publish("t2", None, b"other").await.unwrap();
            // Created by a reader only: exists after reopen, empty.
            h.reader("t3", StartAt::End).await.unwrap();
        }
        let h = EmbeddedStreamHandler::open(Some(dir.path().into()), 100).unwrap();
        assert_eq!(h.topics(), vec!["t1", "t2", "t3"]);
        assert_eq!(h.watermarks("t1"), Some((0, 2)));
        assert_eq!(h.watermarks("t3"), Some((0, 0)));
        h.publish("t1", None, b"two").await.unwrap();
        let mut r = h.reader("t1", StartAt::Beginning).await.unwrap();
        let a = r.next(T).await.unwrap().unwrap();
        assert_eq!(
            (a.offset, a.key.as_deref(), a.payload.as_slice()),
            (0, Some(&b"k0"[..]), &b"zero"[..])
        );
        assert!(a.timestamp_ms > 0);
        let b = r.next(T).await.unwrap().unwrap();
        assert_eq!((b.offset, b.key, b.payload), (1, None, b"one".to_vec()));
        let c = r.next(T).await.unwrap().unwrap();
        assert_eq!((c.offset, c.payload), (2, b"two".to_vec()));
        assert_eq!(r.next(T).await.unwrap(), None);
    }

    #[tokio::test]
    async fn second_open_of_a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _h = EmbeddedStreamHandler::open(Some(dir.path().into()), 10).unwrap();
        let err = EmbeddedStreamHandler::open(Some(dir.path().into()), 10)
            .err()
            .unwrap();
        assert!(matches!(err, BusError::Unavailable(_)), "{err}");
        assert!(err.to_string().contains("in use"), "{err}");
    }

    #[tokio::test]
    async fn torn_tail_is_cut_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.log");
        {
            let h = EmbeddedStreamHandler::open(Some(dir.path().into()), 100).unwrap();
            for i in 0..3u8 {
                h.publish("t", None, &[i; 10]).await.unwrap();
            }
        }
        let full = std::fs::metadata(&path).unwrap().len();
        // A crash in the middle of the third frame.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(full - 5).unwrap();
        drop(f);
        let h = EmbeddedStreamHandler::open(Some(dir.path().into()), 100).unwrap();
        assert_eq!(h.watermarks("t"), Some((0, 2)));
        let frame_len = full / 3;
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * frame_len);
        h.publish("t", None, b"after").await.unwrap();
        drop(h);
        let h = EmbeddedStreamHandler::open(Some(dir.path().into()), 100).unwrap();
        let mut r = h.reader("t", StartAt::Offset(2)).await.unwrap();
        let rec = r.next(T).await.unwrap().unwrap();
        assert_eq!((rec.offset, rec.payload), (2, b"after".to_vec()));
    }

    #[tokio::test]
    async fn corrupt_frame_stops_replay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.log");
        {
            let h = EmbeddedStreamHandler::open(Some(dir.path().into()), 100).unwrap();
            for i in 0..3u8 {
                h.publish("t", None, &[i; 10]).await.unwrap();
            }
        }
        let mut bytes = std::fs::read(&path).unwrap();
        let frame_len = bytes.len() / 3;
        // Flip a payload byte of the second frame: its CRC no longer matches.
        bytes[frame_len + FRAME_HEADER + BODY_FIXED + 1] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let h = EmbeddedStreamHandler::open(Some(dir.path().into()), 100).unwrap();
        assert_eq!(h.watermarks("t"), Some((0, 1)));
        // Garbage and files that are not topic logs are ignored.
        drop(h);
        std::fs::write(dir.path().join("bad name.log"), b"x").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        std::fs::write(dir.path().join("g.log"), b"\xff\xff\xff\xff garbage").unwrap();
        let h = EmbeddedStreamHandler::open(Some(dir.path().into()), 100).unwrap();
        assert_eq!(h.topics(), vec!["g", "t"]);
        assert_eq!(h.watermarks("g"), Some((0, 0)));
        assert_eq!(
            std::fs::metadata(dir.path().join("g.log")).unwrap().len(),
            0
        );
    }

    #[tokio::test]
    async fn retention_trims_memory_and_file_offsets_keep_growing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.log");
        let h = EmbeddedStreamHandler::open(Some(dir.path().into()), 3).unwrap();
        let mut early = h.reader("t", StartAt::Beginning).await.unwrap();
        for i in 0..10u8 {
            h.publish("t", None, &[i]).await.unwrap();
        }
        assert_eq!(h.watermarks("t"), Some((7, 10)));
        // A reader left behind resumes at the oldest retained record.
        let r = early.next(T).await.unwrap().unwrap();
        assert_eq!((r.offset, r.payload), (7, vec![7]));
        // Offsets outside the retained range are clamped to it.
        let mut r = h.reader("t", StartAt::Offset(2)).await.unwrap();
        assert_eq!(r.next(T).await.unwrap().unwrap().offset, 7);
        let mut r = h.reader("t", StartAt::Offset(50)).await.unwrap();
        assert_eq!(r.next(T).await.unwrap(), None);
        h.publish("t", None, b"x").await.unwrap();
        assert_eq!(r.next(T).await.unwrap().unwrap().offset, 10);
        // The file was rewritten: at most 2 x retention frames of 1 byte payload each.
        let frame = (FRAME_HEADER + BODY_FIXED + 1) as u64;
        assert!(std::fs::metadata(&path).unwrap().len() <= 7 * frame);
        drop((early, r, h));
        let h = EmbeddedStreamHandler::open(Some(dir.path().into()), 3).unwrap();
        assert_eq!(h.watermarks("t"), Some((8, 11)));
        let mut r = h.reader("t", StartAt::Beginning).await.unwrap();
        let offsets: Vec<i64> = [
            r.next(T).await.unwrap().unwrap().offset,
            r.next(T).await.unwrap().unwrap().offset,
            r.next(T).await.unwrap().unwrap().offset,
        ]
        .to_vec();
        assert_eq!(offsets, vec![8, 9, 10]);
    }

    #[tokio::test]
    async fn record_too_large_is_invalid() {
        let h = EmbeddedStreamHandler::open(None, 10).unwrap();
        let big = vec![0u8; MAX_RECORD_BYTES + 1];
        let err = h.publish("t", None, &big).await.unwrap_err();
        assert!(matches!(err, BusError::Invalid(_)), "{err}");
        assert_eq!(
            h.watermarks("t"),
            None,
            "nothing created by a refused record"
        );
    }

    #[tokio::test]
    async fn reader_wakes_on_publish() {
        let h = EmbeddedStreamHandler::open(None, 10).unwrap();
        let mut r = h.reader("t", StartAt::End).await.unwrap();
        let h2 = h.clone();
        let pub_task = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            h2.publish("t", Some(b"k"), b"late").await.unwrap();
        });
        let started = std::time::Instant::now();
        let rec = r.next(Duration::from_secs(5)).await.unwrap().unwrap();
        assert_eq!(rec.payload, b"late");
        assert!(started.elapsed() < Duration::from_secs(4));
        pub_task.await.unwrap();
    }

    #[test]
    fn frame_roundtrip_and_rejects() {
        let r = Stored {
            offset: 42,
            timestamp_ms: 7,
            key: Some(b"key".to_vec()),
            payload: b"payload".to_vec(),
        };
        let f = encode_frame(&r);
        let (d, n) = decode_frame(&f).unwrap();
        assert_eq!(n, f.len());
        assert_eq!(
            (d.offset, d.timestamp_ms, d.key, d.payload),
            (42, 7, Some(b"key".to_vec()), b"payload".to_vec())
        );
        for cut in 0..f.len() {
            assert!(decode_frame(&f[..cut]).is_none(), "prefix of {cut} bytes");
        }
        // A key length that runs past the body.
        let mut bad = r;
        bad.key = Some(vec![1; 4]);
        let mut f = encode_frame(&bad);
        let body_start = FRAME_HEADER;
        f[body_start + 16..body_start + 20].copy_from_slice(&100i32.to_le_bytes());
        let crc = crc32fast::hash(&f[body_start..]);
        f[4..8].copy_from_slice(&crc.to_le_bytes());
        assert!(decode_frame(&f).is_none());
    }
}

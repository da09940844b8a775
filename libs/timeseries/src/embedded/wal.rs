//! Write-ahead log: every accepted body is appended before it is applied, so a write that
//! returned Ok survives a crash (D6.7 4.4.2: PMDS is the long-term store of the telemetry).
//!
//! Files `wal-<seq>.log`, each a sequence of records `[len: u32 LE][crc32: u32 LE][payload]`.
//! Group commit: writers append under a mutex and get a ticket; a syncer thread fsyncs for
//! everyone appended so far, so concurrent writers share one fsync, and a writer overlaps its
//! fsync with applying its body.
//!
//! Replay stops a file at the first record that is short or fails its CRC (a torn tail after a
//! crash); the records before it are returned.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::Precision;

use super::bits::{ByteReader, put_bytes};

/// Largest record accepted on replay (a bigger length is corruption, not a body).
const MAX_RECORD: u64 = 1 << 31;

pub(crate) fn wal_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("wal-{seq:016}.log"))
}

/// Sequence number of a `wal-<seq>.log` file name.
pub(crate) fn parse_wal_name(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Active {
    file: Arc<File>,
    seq: u64,
    /// Ticket of the last appended record (tickets count records across files).
    ticket: u64,
    bytes: u64,
}

/// Progress of the syncer thread.
#[derive(Default)]
struct SyncState {
    /// Highest ticket a writer waits for.
    requested: u64,
    /// Highest ticket known durable.
    synced: u64,
    /// An fsync failed: nothing after it can be trusted durable.
    error: Option<String>,
    shutdown: bool,
}

struct Shared {
    dir: PathBuf,
    active: Mutex<Active>,
    sync: Mutex<SyncState>,
    cv: Condvar,
}

/// The log. A syncer thread fsyncs on request, so a writer asks right after its append, applies
/// its body to memory meanwhile, and waits for durability last (group commit that overlaps the
/// fsync with the apply).
pub(crate) struct Wal {
    shared: Arc<Shared>,
    syncer: Option<JoinHandle<()>>,
}

impl Drop for Wal {
    fn drop(&mut self) {
        lock(&self.shared.sync).shutdown = true;
        self.shared.cv.notify_all();
        if let Some(h) = self.syncer.take() {
            let _ = h.join();
        }
    }
}

fn syncer_loop(sh: &Shared) {
    loop {
        let mut s = lock(&sh.sync);
        while !s.shutdown && s.error.is_none() && s.requested <= s.synced {
            s = sh.cv.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        if s.shutdown || s.error.is_some() {
            return;
        }
        drop(s);
        // Everything appended so far, not only what was asked for.
        let (file, upto) = {
            let a = lock(&sh.active);
            (a.file.clone(), a.ticket)
        };
        let r = file.sync_data();
        let mut s = lock(&sh.sync);
        match r {
            Ok(()) => s.synced = s.synced.max(upto),
            Err(e) => s.error = Some(e.to_string()),
        }
        sh.cv.notify_all();
    }
}

/// One replayed write.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record {
    pub bucket: String,
    pub precision: Precision,
    pub default_time_ns: i64,
    pub body: Vec<u8>,
}

fn precision_code(p: Precision) -> u8 {
    match p {
        Precision::Nanoseconds => 0,
        Precision::Microseconds => 1,
        Precision::Milliseconds => 2,
        Precision::Seconds => 3,
    }
}

fn precision_of(c: u8) -> Option<Precision> {
    Some(match c {
        0 => Precision::Nanoseconds,
        1 => Precision::Microseconds,
        2 => Precision::Milliseconds,
        3 => Precision::Seconds,
        _ => return None,
    })
}

/// The payload prefix before the body: kind, precision, default time, bucket.
fn payload_prefix(bucket: &str, precision: Precision, default_time_ns: i64) -> Vec<u8> {
    let mut p = Vec::with_capacity(bucket.len() + 16);
    p.push(1);
    p.push(precision_code(precision));
    p.extend_from_slice(&default_time_ns.to_le_bytes());
    put_bytes(&mut p, bucket.as_bytes());
    p
}

fn parse_payload(payload: &[u8]) -> Option<Record> {
    let mut r = ByteReader::new(payload);
    if r.u8()? != 1 {
        return None;
    }
    let precision = precision_of(r.u8()?)?;
    let default_time_ns = r.u64_le()? as i64;
    let bucket = std::str::from_utf8(r.lp_bytes()?).ok()?.to_string();
    let body = payload.get(r.pos..)?.to_vec();
    Some(Record {
        bucket,
        precision,
        default_time_ns,
        body,
    })
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Wal {
    /// Starts a new log file `seq` in `dir` (an existing one of that name is truncated: the
    /// caller has replayed or discarded it).
    pub fn create(dir: &Path, seq: u64) -> io::Result<Wal> {
        let file = Self::new_file(dir, seq)?;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            active: Mutex::new(Active {
                file: Arc::new(file),
                seq,
                ticket: 0,
                bytes: 0,
            }),
            sync: Mutex::new(SyncState::default()),
            cv: Condvar::new(),
        });
        let sh = shared.clone();
        let syncer = std::thread::Builder::new()
            .name("tsdb-wal-sync".into())
            .spawn(move || syncer_loop(&sh))?;
        Ok(Wal {
            shared,
            syncer: Some(syncer),
        })
    }

    fn new_file(dir: &Path, seq: u64) -> io::Result<File> {
        let f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(wal_path(dir, seq))?;
        sync_dir(dir)?;
        Ok(f)
    }

    /// Appends one record; returns its ticket and the size of the active file after it.
    pub fn append(
        &self,
        bucket: &str,
        precision: Precision,
        default_time_ns: i64,
        body: &[u8],
    ) -> io::Result<(u64, u64)> {
        let prefix = payload_prefix(bucket, precision, default_time_ns);
        let len = prefix.len() + body.len();
        let len32 = u32::try_from(len)
            .ok()
            .filter(|&l| u64::from(l) < MAX_RECORD)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "body too large"))?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&prefix);
        crc.update(body);
        let mut head = Vec::with_capacity(8 + prefix.len());
        head.extend_from_slice(&len32.to_le_bytes());
        head.extend_from_slice(&crc.finalize().to_le_bytes());
        head.extend_from_slice(&prefix);
        let mut a = lock(&self.shared.active);
        let mut f: &File = &a.file;
        f.write_all(&head)?;
        f.write_all(body)?;
        a.ticket += 1;
        a.bytes += (8 + len) as u64;
        Ok((a.ticket, a.bytes))
    }

    /// Asks the syncer to make the record of `ticket` durable (returns at once).
    pub fn request_sync(&self, ticket: u64) {
        let mut s = lock(&self.shared.sync);
        if s.requested < ticket {
            s.requested = ticket;
            self.shared.cv.notify_all();
        }
    }

    /// Returns once the record of `ticket` is on stable storage (one fsync serves every
    /// writer that appended before it started).
    pub fn sync(&self, ticket: u64) -> io::Result<()> {
        self.request_sync(ticket);
        let mut s = lock(&self.shared.sync);
        loop {
            if s.synced >= ticket {
                return Ok(());
            }
            if let Some(e) = &s.error {
                return Err(io::Error::other(format!("WAL fsync failed: {e}")));
            }
            if s.shutdown {
                return Err(io::Error::other("WAL closed"));
            }
            s = self.shared.cv.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Makes everything appended so far durable.
    pub fn sync_all(&self) -> io::Result<()> {
        let t = lock(&self.shared.active).ticket;
        self.sync(t)
    }

    /// Syncs the active file and starts the next one; returns the new sequence number
    /// (records from it on are newer than the cut). Callers hold the write barrier.
    pub fn rotate(&self) -> io::Result<u64> {
        let mut a = lock(&self.shared.active);
        a.file.sync_data()?;
        {
            let mut s = lock(&self.shared.sync);
            s.synced = s.synced.max(a.ticket);
            self.shared.cv.notify_all();
        }
        let next = a.seq + 1;
        a.file = Arc::new(Self::new_file(&self.shared.dir, next)?);
        a.seq = next;
        a.bytes = 0;
        Ok(next)
    }

    #[cfg(test)]
    pub fn active_bytes(&self) -> u64 {
        lock(&self.shared.active).bytes
    }

    #[cfg(test)]
    pub fn active_seq(&self) -> u64 {
        lock(&self.shared.active).seq
    }
}

/// What reading one log file found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplayInfo {
    pub records: u64,
    /// Bytes of whole, valid records.
    pub valid_bytes: u64,
    /// A short or corrupt record ended the file early.
    pub torn: bool,
}

/// Calls `f` for every valid record of a log file, in order, stopping at a torn tail.
pub(crate) fn replay_file(path: &Path, mut f: impl FnMut(Record)) -> io::Result<ReplayInfo> {
    let file = File::open(path)?;
    let total = file.metadata()?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut info = ReplayInfo::default();
    let mut payload = Vec::new();
    loop {
        let mut head = [0u8; 8];
        match read_full(&mut r, &mut head)? {
            0 => return Ok(info),
            8 => {}
            _ => {
                info.torn = true;
                return Ok(info);
            }
        }
        let len = u64::from(u32::from_le_bytes([head[0], head[1], head[2], head[3]]));
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if len >= MAX_RECORD || info.valid_bytes + 8 + len > total {
            info.torn = true;
            return Ok(info);
        }
        payload.resize(len as usize, 0);
        if read_full(&mut r, &mut payload)? != payload.len() || crc32fast::hash(&payload) != crc {
            info.torn = true;
            return Ok(info);
        }
        match parse_payload(&payload) {
            Some(rec) => f(rec),
            None => {
                info.torn = true;
                return Ok(info);
            }
        }
        info.records += 1;
        info.valid_bytes += 8 + len;
    }
}

/// Reads until `buf` is full or the end of the file; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn records(path: &Path) -> (Vec<Record>, ReplayInfo) {
        let mut out = Vec::new();
        let info = replay_file(path, |r| out.push(r)).unwrap();
        (out, info)
    }

    #[test]
    fn append_sync_replay_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::create(dir.path(), 1).unwrap();
        let (t1, _) = wal
            .append("b1", Precision::Seconds, 7, b"m v=1 1\n")
            .unwrap();
        let (t2, bytes) = wal
            .append("b2", Precision::Nanoseconds, -3, b"m v=2 2\n")
            .unwrap();
        assert_eq!((t1, t2), (1, 2));
        wal.sync(t2).unwrap();
        wal.sync(t1).unwrap();
        let path = wal_path(dir.path(), 1);
        let (recs, info) = records(&path);
        assert_eq!(info.records, 2);
        assert!(!info.torn);
        assert_eq!(info.valid_bytes, bytes);
        assert_eq!(
            recs[1],
            Record {
                bucket: "b2".into(),
                precision: Precision::Nanoseconds,
                default_time_ns: -3,
                body: b"m v=2 2\n".to_vec()
            }
        );
        assert_eq!(recs[0].precision, Precision::Seconds);

        // A torn third record: only its first bytes reached the disk.
        wal.append("b3", Precision::Nanoseconds, 0, b"m v=3 3\n")
            .unwrap();
        let full = std::fs::read(&path).unwrap();
        for cut in [bytes as usize + 3, bytes as usize + 8, full.len() - 1] {
            std::fs::write(&path, &full[..cut]).unwrap();
            let (recs, info) = records(&path);
            assert_eq!(recs.len(), 2, "cut at {cut}");
            assert!(info.torn);
            assert_eq!(info.valid_bytes, bytes);
        }
        // A flipped bit in the last record's body fails its CRC.
        let mut bad = full.clone();
        let last = bad.len() - 2;
        bad[last] ^= 0x40;
        std::fs::write(&path, &bad).unwrap();
        let (recs, info) = records(&path);
        assert_eq!(recs.len(), 2);
        assert!(info.torn);
        // A huge length is corruption, not an allocation.
        let mut huge = full[..bytes as usize].to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 12]);
        std::fs::write(&path, &huge).unwrap();
        let (recs, info) = records(&path);
        assert_eq!(recs.len(), 2);
        assert!(info.torn);
    }

    #[test]
    fn rotate_starts_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::create(dir.path(), 5).unwrap();
        let (t, _) = wal.append("b", Precision::Nanoseconds, 0, b"a").unwrap();
        assert_eq!(wal.rotate().unwrap(), 6);
        wal.sync(t).unwrap();
        assert_eq!(wal.active_seq(), 6);
        assert_eq!(wal.active_bytes(), 0);
        wal.append("b", Precision::Nanoseconds, 0, b"b").unwrap();
        wal.sync_all().unwrap();
        assert_eq!(records(&wal_path(dir.path(), 5)).0.len(), 1);
        assert_eq!(records(&wal_path(dir.path(), 6)).0[0].body, b"b");
        assert_eq!(parse_wal_name("wal-0000000000000006.log"), Some(6));
        assert_eq!(parse_wal_name("wal-x.log"), None);
    }
}

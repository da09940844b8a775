//! On-disk files of the embedded store besides the WAL:
//!
//! - `seg-<id>.seg`: immutable segment of sealed chunks: `magic | chunk bytes... | footer |
//!   footer len u32 | footer crc32 u32 | magic`; the footer lists each chunk's series, column,
//!   time range, sample count, length and CRC (offsets follow from the lengths).
//! - `ckpt-<seq>.ckp`: the checkpoint, the commit point of a checkpoint: which segments are
//!   live, the first WAL file to replay, the series table and every head chunk;
//!   `magic | body | crc32 u32 | magic`.
//!
//! Both are written to a `.tmp` name, fsynced and renamed, then the directory is fsynced.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::bits::{ByteReader, put_bytes, put_ivarint, put_uvarint};
use super::codec::Head;

const SEG_MAGIC: &[u8; 8] = b"SRTSSEG1";
const CKPT_MAGIC: &[u8; 8] = b"SRTSCKP1";

fn corrupt(what: &str, path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{what}: {}", path.display()),
    )
}

pub(crate) fn seg_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("seg-{id:016}.seg"))
}

pub(crate) fn ckpt_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("ckpt-{seq:016}.ckp"))
}

pub(crate) fn parse_seg_name(name: &str) -> Option<u64> {
    name.strip_prefix("seg-")?
        .strip_suffix(".seg")?
        .parse()
        .ok()
}

pub(crate) fn parse_ckpt_name(name: &str) -> Option<u64> {
    name.strip_prefix("ckpt-")?
        .strip_suffix(".ckp")?
        .parse()
        .ok()
}

/// Writes `bytes` to `path` durably: temp file, fsync, rename (the caller fsyncs the dir).
fn write_atomic(path: &Path, parts: &[&[u8]]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        for p in parts {
            f.write_all(p)?;
        }
        f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    fs::rename(&tmp, path)
}

/// An open segment file.
#[derive(Debug)]
pub(crate) struct Segment {
    pub id: u64,
    pub file: File,
    pub size: u64,
}

/// Where a chunk of a segment is and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkMeta {
    pub series: u32,
    pub col: u32,
    pub min_t: i64,
    pub max_t: i64,
    pub count: u32,
    pub offset: u64,
    pub len: u32,
    pub crc: u32,
}

/// One chunk to write into a segment.
pub(crate) struct ChunkIn<'a> {
    pub series: u32,
    pub col: u32,
    pub min_t: i64,
    pub max_t: i64,
    pub count: u32,
    pub bytes: &'a [u8],
}

/// Writes a segment chunk by chunk (to a temp file, renamed by `finish`).
pub(crate) struct SegmentWriter {
    id: u64,
    path: PathBuf,
    tmp: PathBuf,
    out: BufWriter<File>,
    metas: Vec<ChunkMeta>,
    offset: u64,
}

impl SegmentWriter {
    pub fn create(dir: &Path, id: u64) -> io::Result<SegmentWriter> {
        let path = seg_path(dir, id);
        let tmp = path.with_extension("tmp");
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        out.write_all(SEG_MAGIC)?;
        Ok(SegmentWriter {
            id,
            path,
            tmp,
            out,
            metas: Vec::new(),
            offset: SEG_MAGIC.len() as u64,
        })
    }

    pub fn add(&mut self, c: &ChunkIn<'_>) -> io::Result<()> {
        let len = u32::try_from(c.bytes.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "chunk too large"))?;
        let crc = crc32fast::hash(c.bytes);
        self.out.write_all(c.bytes)?;
        self.metas.push(ChunkMeta {
            series: c.series,
            col: c.col,
            min_t: c.min_t,
            max_t: c.max_t,
            count: c.count,
            offset: self.offset,
            len,
            crc,
        });
        self.offset += u64::from(len);
        Ok(())
    }

    /// Writes the footer, fsyncs and renames; returns the segment open for reading.
    pub fn finish(mut self) -> io::Result<(Segment, Vec<ChunkMeta>)> {
        let footer = encode_footer(&self.metas);
        let footer_len = u32::try_from(footer.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment footer too large"))?;
        self.out.write_all(&footer)?;
        self.out.write_all(&footer_len.to_le_bytes())?;
        self.out
            .write_all(&crc32fast::hash(&footer).to_le_bytes())?;
        self.out.write_all(SEG_MAGIC)?;
        self.out
            .into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()?;
        fs::rename(&self.tmp, &self.path)?;
        let file = File::open(&self.path)?;
        let size = file.metadata()?.len();
        Ok((
            Segment {
                id: self.id,
                file,
                size,
            },
            self.metas,
        ))
    }
}

/// The largest power of ten dividing every time of `metas` (aligned scrape times make the
/// footer entries a few bytes).
fn footer_unit(metas: &[ChunkMeta]) -> u8 {
    let mut u = 18u8;
    for m in metas {
        for t in [m.min_t, m.max_t] {
            while u > 0 && t % 10i64.pow(u32::from(u)) != 0 {
                u -= 1;
            }
        }
        if u == 0 {
            break;
        }
    }
    if metas.is_empty() { 0 } else { u }
}

/// `count | unit | per chunk: series, column, min_t delta, max_t - min_t, count, len, crc`,
/// times in units of `10^unit` ns.
fn encode_footer(metas: &[ChunkMeta]) -> Vec<u8> {
    let unit_exp = footer_unit(metas);
    let unit = 10i64.pow(u32::from(unit_exp));
    let mut f = Vec::with_capacity(metas.len() * 16 + 10);
    put_uvarint(&mut f, metas.len() as u64);
    f.push(unit_exp);
    let mut prev_min = 0i64;
    for m in metas {
        let (min_u, max_u) = (m.min_t / unit, m.max_t / unit);
        put_uvarint(&mut f, u64::from(m.series));
        put_uvarint(&mut f, u64::from(m.col));
        put_ivarint(&mut f, min_u.wrapping_sub(prev_min));
        put_uvarint(&mut f, max_u.wrapping_sub(min_u) as u64);
        put_uvarint(&mut f, u64::from(m.count));
        put_uvarint(&mut f, u64::from(m.len));
        f.extend_from_slice(&m.crc.to_le_bytes());
        prev_min = min_u;
    }
    f
}

/// Writes a whole segment at once.
pub(crate) fn write_segment(
    dir: &Path,
    id: u64,
    chunks: &[ChunkIn<'_>],
) -> io::Result<(Segment, Vec<ChunkMeta>)> {
    let mut w = SegmentWriter::create(dir, id)?;
    for c in chunks {
        w.add(c)?;
    }
    w.finish()
}

/// Opens a segment and reads its chunk metadata (checked against the footer CRC).
pub(crate) fn read_segment(dir: &Path, id: u64) -> io::Result<(Segment, Vec<ChunkMeta>)> {
    let path = seg_path(dir, id);
    let file = File::open(&path)?;
    let size = file.metadata()?.len();
    let trailer = 16u64;
    if size < SEG_MAGIC.len() as u64 + trailer {
        return Err(corrupt("segment too short", &path));
    }
    let mut tail = [0u8; 16];
    file.read_exact_at(&mut tail, size - trailer)?;
    if &tail[8..] != SEG_MAGIC {
        return Err(corrupt("segment without trailer", &path));
    }
    let footer_len = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    let crc = u32::from_le_bytes([tail[4], tail[5], tail[6], tail[7]]);
    let data_end = size
        .checked_sub(trailer + footer_len)
        .filter(|&e| e >= SEG_MAGIC.len() as u64)
        .ok_or_else(|| corrupt("segment footer length", &path))?;
    let mut footer = vec![0u8; footer_len as usize];
    file.read_exact_at(&mut footer, data_end)?;
    if crc32fast::hash(&footer) != crc {
        return Err(corrupt("segment footer checksum", &path));
    }
    let metas = parse_footer(&footer, data_end).ok_or_else(|| corrupt("segment footer", &path))?;
    Ok((Segment { id, file, size }, metas))
}

fn parse_footer(footer: &[u8], data_end: u64) -> Option<Vec<ChunkMeta>> {
    let mut r = ByteReader::new(footer);
    let n = r.uvarint()?;
    let unit_exp = r.u8()?;
    if unit_exp > 18 {
        return None;
    }
    let unit = 10i64.pow(u32::from(unit_exp));
    let mut metas = Vec::with_capacity((n as usize).min(footer.len()));
    let mut offset = SEG_MAGIC.len() as u64;
    let mut prev_min = 0i64;
    for _ in 0..n {
        let series = r.u32v()?;
        let col = r.u32v()?;
        let min_u = prev_min.wrapping_add(r.ivarint()?);
        let max_u = min_u.wrapping_add(r.uvarint()? as i64);
        let count = r.u32v()?;
        let len = r.u32v()?;
        let crc_b = r.bytes(4)?;
        let crc = u32::from_le_bytes([crc_b[0], crc_b[1], crc_b[2], crc_b[3]]);
        prev_min = min_u;
        if offset + u64::from(len) > data_end {
            return None;
        }
        metas.push(ChunkMeta {
            series,
            col,
            min_t: min_u.wrapping_mul(unit),
            max_t: max_u.wrapping_mul(unit),
            count,
            offset,
            len,
            crc,
        });
        offset += u64::from(len);
    }
    Some(metas)
}

/// Reads one chunk and checks its CRC.
pub(crate) fn read_chunk(seg: &Segment, offset: u64, len: u32, crc: u32) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    seg.file.read_exact_at(&mut buf, offset)?;
    if crc32fast::hash(&buf) != crc {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("chunk at {offset} of segment {} fails its checksum", seg.id),
        ));
    }
    Ok(buf)
}

/// One series of a checkpoint, borrowed from the file's bytes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CkptSeries<'a> {
    pub id: u32,
    pub bucket: u32,
    pub measurement: &'a str,
    pub tags: Vec<(&'a str, &'a str)>,
    /// Subtracted from the first time of each head chunk of the series.
    pub base_t: i64,
    /// Name, type byte, head chunk (empty = no head).
    pub cols: Vec<(&'a str, u8, &'a [u8])>,
}

/// A checkpoint file as read back: its header parsed, its series parsed on demand (a series
/// table of 100 000 series is not copied into strings).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Checkpoint {
    /// First WAL file to replay.
    pub wal_seq: u64,
    pub next_seg: u64,
    /// Live segments, oldest data first.
    pub segments: Vec<u64>,
    pub buckets: Vec<String>,
    /// The checked bytes between the framing.
    data: Vec<u8>,
    file_base: i64,
    /// Ranges of the string table in `data`.
    strings: Vec<(usize, usize)>,
    n_series: u64,
    /// Where the series section starts in `data`.
    series_at: usize,
}

impl Checkpoint {
    /// Calls `f` for every series; `None` when the series section is malformed.
    pub fn for_each_series<'a, E>(
        &'a self,
        mut f: impl FnMut(CkptSeries<'a>) -> Result<(), E>,
    ) -> Option<Result<(), E>> {
        let b: &'a [u8] = &self.data[..];
        let mut r = ByteReader::new(b);
        r.pos = self.series_at;
        let cap = |n: u64| (n as usize).min(64);
        let string = |r: &mut ByteReader<'a>| -> Option<&'a str> {
            let (start, end) = *self.strings.get(usize::try_from(r.uvarint()?).ok()?)?;
            std::str::from_utf8(b.get(start..end)?).ok()
        };
        for _ in 0..self.n_series {
            let id = r.u32v()?;
            let bucket = r.u32v()?;
            let measurement = string(&mut r)?;
            let nt = r.uvarint()?;
            let mut tags = Vec::with_capacity(cap(nt));
            for _ in 0..nt {
                tags.push((string(&mut r)?, string(&mut r)?));
            }
            let base_t = self.file_base.wrapping_add(r.ivarint()?);
            let nc = r.uvarint()?;
            let mut cols = Vec::with_capacity(cap(nc));
            for _ in 0..nc {
                let name = string(&mut r)?;
                let ty = r.u8()?;
                cols.push((name, ty, r.lp_bytes()?));
            }
            let series = CkptSeries {
                id,
                bucket,
                measurement,
                tags,
                base_t,
                cols,
            };
            if let Err(e) = f(series) {
                return Some(Err(e));
            }
        }
        r.is_empty().then_some(Ok(()))
    }
}

/// Builds a checkpoint file series by series, straight from the store's interned names and
/// heads (no copies of the series table): names are stored once in a string table.
pub(crate) struct CkptWriter {
    file_base: i64,
    /// Interned names are shared `Arc<str>`s, so the pointer identifies the string.
    ids: rustc_hash::FxHashMap<usize, u64>,
    strings: Vec<u8>,
    n_strings: u64,
    series: Vec<u8>,
    n_series: u64,
    series_base: i64,
    scratch: Vec<u8>,
}

impl CkptWriter {
    pub fn new(file_base: i64) -> CkptWriter {
        CkptWriter {
            file_base,
            ids: rustc_hash::FxHashMap::default(),
            strings: Vec::new(),
            n_strings: 0,
            series: Vec::with_capacity(1 << 20),
            n_series: 0,
            series_base: 0,
            scratch: Vec::new(),
        }
    }

    fn string(&mut self, s: &Arc<str>) -> u64 {
        let key = Arc::as_ptr(s) as *const u8 as usize;
        if let Some(&id) = self.ids.get(&key) {
            return id;
        }
        let id = self.n_strings;
        self.n_strings += 1;
        put_bytes(&mut self.strings, s.as_bytes());
        self.ids.insert(key, id);
        id
    }

    /// Starts a series; `ncols` calls of [`CkptWriter::column`] follow. `base_t` is
    /// subtracted from its heads' first times (the first head's is a good one).
    pub fn series(
        &mut self,
        id: u32,
        bucket: u32,
        measurement: &Arc<str>,
        tags: &[(Arc<str>, Arc<str>)],
        base_t: i64,
        ncols: usize,
    ) {
        self.n_series += 1;
        self.series_base = base_t;
        let m = self.string(measurement);
        let mut ids = Vec::with_capacity(tags.len() * 2);
        for (k, v) in tags {
            ids.push(self.string(k));
            ids.push(self.string(v));
        }
        let out = &mut self.series;
        put_uvarint(out, u64::from(id));
        put_uvarint(out, u64::from(bucket));
        put_uvarint(out, m);
        put_uvarint(out, tags.len() as u64);
        for i in ids {
            put_uvarint(out, i);
        }
        put_ivarint(out, base_t.wrapping_sub(self.file_base));
        put_uvarint(out, ncols as u64);
    }

    pub fn column(&mut self, name: &Arc<str>, ty: u8, head: Option<&Head>) {
        let n = self.string(name);
        put_uvarint(&mut self.series, n);
        self.series.push(ty);
        self.scratch.clear();
        if let Some(h) = head.filter(|h| h.count > 0) {
            h.write_chunk(&mut self.scratch, self.series_base);
        }
        put_bytes(&mut self.series, &self.scratch);
    }

    /// Writes the file durably (temp + fsync + rename; the caller fsyncs the directory).
    pub fn finish(
        self,
        dir: &Path,
        seq: u64,
        wal_seq: u64,
        next_seg: u64,
        segments: &[u64],
        buckets: &[Arc<str>],
    ) -> io::Result<()> {
        let mut head = Vec::with_capacity(self.strings.len() + 1024);
        put_uvarint(&mut head, 2);
        put_uvarint(&mut head, wal_seq);
        put_uvarint(&mut head, next_seg);
        put_ivarint(&mut head, self.file_base);
        put_uvarint(&mut head, segments.len() as u64);
        for id in segments {
            put_uvarint(&mut head, *id);
        }
        put_uvarint(&mut head, buckets.len() as u64);
        for b in buckets {
            put_bytes(&mut head, b.as_bytes());
        }
        put_uvarint(&mut head, self.n_strings);
        head.extend_from_slice(&self.strings);
        put_uvarint(&mut head, self.n_series);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head);
        crc.update(&self.series);
        let crc = crc.finalize().to_le_bytes();
        write_atomic(
            &ckpt_path(dir, seq),
            &[CKPT_MAGIC, &head, &self.series, &crc, CKPT_MAGIC],
        )
    }
}

pub(crate) fn read_checkpoint(dir: &Path, seq: u64) -> io::Result<Checkpoint> {
    let path = ckpt_path(dir, seq);
    let mut data = fs::read(&path)?;
    let m = CKPT_MAGIC.len();
    if data.len() < 2 * m + 4 || &data[..m] != CKPT_MAGIC || &data[data.len() - m..] != CKPT_MAGIC {
        return Err(corrupt("checkpoint framing", &path));
    }
    let end = data.len() - m - 4;
    let crc_b = &data[end..data.len() - m];
    if crc32fast::hash(&data[m..end]).to_le_bytes() != crc_b {
        return Err(corrupt("checkpoint checksum", &path));
    }
    data.truncate(end);
    data.drain(..m);
    parse_header(data).ok_or_else(|| corrupt("checkpoint content", &path))
}

fn parse_header(data: Vec<u8>) -> Option<Checkpoint> {
    let mut r = ByteReader::new(&data);
    if r.uvarint()? != 2 {
        return None;
    }
    let wal_seq = r.uvarint()?;
    let next_seg = r.uvarint()?;
    let file_base = r.ivarint()?;
    let cap = |n: u64| (n as usize).min(data.len());
    let n = r.uvarint()?;
    let mut segments = Vec::with_capacity(cap(n));
    for _ in 0..n {
        segments.push(r.uvarint()?);
    }
    let n = r.uvarint()?;
    let mut buckets = Vec::with_capacity(cap(n));
    for _ in 0..n {
        buckets.push(std::str::from_utf8(r.lp_bytes()?).ok()?.to_string());
    }
    let n = r.uvarint()?;
    let mut strings = Vec::with_capacity(cap(n));
    for _ in 0..n {
        let len = usize::try_from(r.uvarint()?).ok()?;
        let start = r.pos;
        r.bytes(len)?;
        strings.push((start, start + len));
    }
    let n_series = r.uvarint()?;
    let series_at = r.pos;
    Some(Checkpoint {
        wal_seq,
        next_seg,
        segments,
        buckets,
        file_base,
        strings,
        n_series,
        series_at,
        data,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn segment_round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let a = b"chunk-a".to_vec();
        let b = vec![7u8; 300];
        let chunks = [
            ChunkIn {
                series: 3,
                col: 0,
                min_t: 100,
                max_t: 200,
                count: 5,
                bytes: &a,
            },
            ChunkIn {
                series: 70_000,
                col: 9,
                min_t: -5,
                max_t: i64::MAX,
                count: 120,
                bytes: &b,
            },
        ];
        let (seg, metas) = write_segment(dir.path(), 4, &chunks).unwrap();
        let (seg2, metas2) = read_segment(dir.path(), 4).unwrap();
        assert_eq!(metas, metas2);
        assert_eq!((seg.id, seg.size), (seg2.id, seg2.size));
        assert_eq!(metas[1].max_t, i64::MAX);
        assert_eq!(
            read_chunk(&seg2, metas[1].offset, metas[1].len, metas[1].crc).unwrap(),
            b
        );
        assert!(read_chunk(&seg2, metas[0].offset, metas[0].len, metas[0].crc ^ 1).is_err());
        // A damaged footer is detected.
        let path = seg_path(dir.path(), 4);
        let mut data = fs::read(&path).unwrap();
        let i = data.len() - 20;
        data[i] ^= 1;
        fs::write(&path, &data).unwrap();
        assert!(read_segment(dir.path(), 4).is_err());
        fs::write(&path, b"short").unwrap();
        assert!(read_segment(dir.path(), 4).is_err());
    }

    #[test]
    fn checkpoint_round_trip_and_corruption() {
        use super::super::codec::ColType;
        let dir = tempfile::tempdir().unwrap();
        let a = |s: &str| -> Arc<str> { Arc::from(s) };
        let (nodes, group, cpu, node, n1, v, st) = (
            a("nodes"),
            a("group"),
            a("cpu"),
            a("node"),
            a("n1"),
            a("v"),
            a("s"),
        );
        let mut head = Head::for_first(ColType::Float, 1.5f64.to_bits());
        head.append(1_700_000_000_000_000_000, 1.5f64.to_bits(), b"");
        head.append(1_700_000_010_000_000_000, 2.5f64.to_bits(), b"");
        let mut w = CkptWriter::new(1_700_000_100_000_000_000);
        w.series(
            65,
            1,
            &nodes,
            &[(group.clone(), cpu.clone()), (node.clone(), n1.clone())],
            head.t0,
            2,
        );
        w.column(&v, 1, Some(&head));
        w.column(&st, 5, None);
        w.series(2, 0, &nodes, &[], 0, 0);
        w.finish(dir.path(), 2, 9, 4, &[1, 3], &[a("b"), a("probe-1")])
            .unwrap();
        let c = read_checkpoint(dir.path(), 2).unwrap();
        assert_eq!((c.wal_seq, c.next_seg), (9, 4));
        assert_eq!(c.segments, vec![1, 3]);
        assert_eq!(c.buckets, vec!["b".to_string(), "probe-1".to_string()]);
        let mut all = Vec::new();
        c.for_each_series(|s| {
            all.push(s.clone());
            Ok::<(), ()>(())
        })
        .unwrap()
        .unwrap();
        assert_eq!(all.len(), 2);
        let s0 = &all[0];
        assert_eq!((s0.id, s0.bucket, s0.measurement), (65, 1, "nodes"));
        assert_eq!(s0.tags, vec![("group", "cpu"), ("node", "n1")]);
        assert_eq!(s0.base_t, head.t0);
        assert_eq!(s0.cols[0].0, "v");
        assert_eq!(s0.cols[0].2, &head.to_chunk(head.t0)[..]);
        assert_eq!(s0.cols[1], ("s", 5, &[][..]));
        assert_eq!(all[1].tags, vec![]);
        // A callback error stops the walk.
        assert_eq!(c.for_each_series(|_| Err("stop")), Some(Err("stop")));
        let path = ckpt_path(dir.path(), 2);
        let mut data = fs::read(&path).unwrap();
        data[12] ^= 4;
        fs::write(&path, &data).unwrap();
        assert!(read_checkpoint(dir.path(), 2).is_err());
        assert_eq!(parse_ckpt_name("ckpt-0000000000000002.ckp"), Some(2));
        assert_eq!(parse_seg_name("seg-0000000000000004.seg"), Some(4));
        assert_eq!(parse_seg_name("seg-0000000000000004.tmp"), None);
    }
}

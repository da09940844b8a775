//! Ingest benchmark of the embedded store (D6.7 4.4.2: PMDS keeps the probes' history).
//!
//! `cargo bench -p serrano-timeseries --bench embedded_ingest`
//!
//! 100 000 series of `nodes` (5 tags: cluster_uuid, group, instance, node_name, region) with 4
//! float fields that vary slowly like node-exporter data (a percentage with 2 decimals, used
//! bytes moving by whole pages, a constant total, a byte counter with a drifting rate), one
//! sample every 10 s. Two tokio tasks each own half of the series and write line-protocol
//! bodies of 5 000 lines through `TimeSeriesStore::write_line_protocol`, generating the text as
//! they go. Then flush, checkpoint, and print samples/s, bytes/sample on disk and peak RSS.
//!
//! Environment: `TSDB_BENCH_SERIES` (100000), `TSDB_BENCH_ROUNDS` (60 samples per column),
//! `TSDB_BENCH_SYNC` (`group` or `none`), `TSDB_BENCH_DIR` (a temp dir under /tmp).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serrano_timeseries::{
    EmbeddedOptions, EmbeddedTsdb, Precision, Query, SyncMode, TimeSeriesStore,
};

const LINES_PER_BODY: usize = 5_000;
const FIELDS: u64 = 4;
const STEP_NS: i64 = 10_000_000_000;
const GROUPS: [&str; 5] = ["general", "cpu", "memory", "storage", "network"];
const REGIONS: [&str; 4] = ["eu-west-1", "eu-central-1", "us-east-1", "ap-south-1"];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift64*: deterministic and cheap enough not to show in the figures.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `-r..=r`.
    fn step(&mut self, r: i64) -> i64 {
        (self.next() % (2 * r as u64 + 1)) as i64 - r
    }
}

/// One series: its fixed key text and the state of its fields.
struct Series {
    key: String,
    usage_cents: i64,
    used_pages: i64,
    total_bytes: i64,
    counter: i64,
    rate: i64,
}

fn make_series(from: usize, to: usize, rng: &mut Rng) -> Vec<Series> {
    (from..to)
        .map(|i| {
            let node = i / GROUPS.len();
            let key = format!(
                "nodes,cluster_uuid=5a075716-7d7d-4b40-9566-bc1a33ee7{:03},group={},\
                 instance=10.{}.{}.{}:9100,node_name=node-{node:05},region={}",
                node % 16,
                GROUPS[i % GROUPS.len()],
                node / 65536,
                (node / 256) % 256,
                node % 256,
                REGIONS[node % REGIONS.len()],
            );
            Series {
                key,
                usage_cents: 1_000 + (rng.next() % 8_000) as i64,
                used_pages: 500_000 + (rng.next() % 3_000_000) as i64,
                total_bytes: 17_179_869_184,
                counter: (rng.next() % 1_000_000_000_000) as i64,
                rate: 100_000 + (rng.next() % 10_000_000) as i64,
            }
        })
        .collect()
}

fn write_line(out: &mut String, s: &mut Series, rng: &mut Rng, t: i64) {
    s.usage_cents = (s.usage_cents + rng.step(40)).clamp(0, 10_000);
    s.used_pages = (s.used_pages + rng.step(64)).max(0);
    s.rate = (s.rate + rng.step(2_000)).max(0);
    s.counter += s.rate * 10;
    let _ = writeln!(
        out,
        "{} node_memory_usage_percentage={}.{:02},node_memory_MemUsed_bytes={},\
         node_memory_MemTotal_bytes={},node_network_receive_bytes_total={} {t}",
        s.key,
        s.usage_cents / 100,
        s.usage_cents % 100,
        s.used_pages * 4096,
        s.total_bytes,
        s.counter,
    );
}

/// User + system CPU time of the process (all threads), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let series = env_usize("TSDB_BENCH_SERIES", 100_000);
    let rounds = env_usize("TSDB_BENCH_ROUNDS", 60);
    let sync = match std::env::var("TSDB_BENCH_SYNC").as_deref() {
        Ok("none") => SyncMode::None,
        _ => SyncMode::GroupCommit,
    };
    let tmp = match std::env::var("TSDB_BENCH_DIR") {
        Ok(d) => tempfile::tempdir_in(d).unwrap(),
        Err(_) => tempfile::tempdir().unwrap(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let db = Arc::new(
        EmbeddedTsdb::open(EmbeddedOptions {
            dir: Some(tmp.path().to_path_buf()),
            sync,
            ..Default::default()
        })
        .unwrap(),
    );
    let store: Arc<dyn TimeSeriesStore> = db.clone();
    let t0 = serrano_timeseries::now_ns() / STEP_NS * STEP_NS - rounds as i64 * STEP_NS;
    println!(
        "embedded ingest: {series} series x {FIELDS} fields x {rounds} samples, 10 s apart, \
         bodies of {LINES_PER_BODY} lines, 2 writer tasks, sync {sync:?}, dir {}",
        tmp.path().display()
    );

    // Generating the text alone, for scale (the writer tasks pay it too).
    let gen_ns = {
        let mut rng = Rng(7);
        let mut sample = make_series(0, LINES_PER_BODY, &mut rng);
        let mut body = String::with_capacity(LINES_PER_BODY * 320);
        let g0 = Instant::now();
        for r in 0..20 {
            body.clear();
            for s in sample.iter_mut() {
                write_line(&mut body, s, &mut rng, t0 + r * STEP_NS);
            }
            std::hint::black_box(&body);
        }
        g0.elapsed().as_nanos() as f64 / (20 * LINES_PER_BODY) as f64
    };
    // The parser alone on one body, for scale.
    let parse_ns = {
        let mut rng = Rng(5);
        let mut sample = make_series(0, LINES_PER_BODY, &mut rng);
        let mut body = String::new();
        for s in sample.iter_mut() {
            write_line(&mut body, s, &mut rng, t0);
        }
        let p0 = Instant::now();
        for _ in 0..20 {
            let points = serrano_timeseries::line_protocol::parse(
                body.as_bytes(),
                Precision::Nanoseconds,
                0,
            )
            .unwrap();
            assert_eq!(points.len(), LINES_PER_BODY);
        }
        p0.elapsed().as_nanos() as f64 / (20 * LINES_PER_BODY) as f64
    };

    let cpu0 = cpu_seconds();
    let started = Instant::now();
    let (write_time, bytes_sent) = rt.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..2usize {
            let store = store.clone();
            let (from, to) = (series * w / 2, series * (w + 1) / 2);
            tasks.push(tokio::spawn(async move {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (w as u64 + 1));
                let mut mine = make_series(from, to, &mut rng);
                let mut body = String::with_capacity(LINES_PER_BODY * 260);
                let mut in_writes = Duration::ZERO;
                let mut sent = 0u64;
                for r in 0..rounds {
                    let t = t0 + r as i64 * STEP_NS;
                    for chunk in mine.chunks_mut(LINES_PER_BODY) {
                        body.clear();
                        for s in chunk.iter_mut() {
                            write_line(&mut body, s, &mut rng, t);
                        }
                        let w0 = Instant::now();
                        store
                            .write_line_protocol("bench", body.as_bytes(), Precision::Nanoseconds)
                            .await
                            .unwrap();
                        in_writes += w0.elapsed();
                        sent += body.len() as u64;
                    }
                }
                (in_writes, sent)
            }));
        }
        let mut total = Duration::ZERO;
        let mut sent = 0;
        for t in tasks {
            let (d, b) = t.await.unwrap();
            total += d;
            sent += b;
        }
        store.flush().await.unwrap();
        (total / 2, sent)
    });
    let wall = started.elapsed();
    let samples = (series * rounds) as u64 * FIELDS;
    let hwm_ingest = vm_hwm_kib();
    let cpu = cpu_seconds() - cpu0;
    let before = db.stats();

    let c0 = Instant::now();
    db.checkpoint().unwrap();
    let ckpt = c0.elapsed();
    let st = db.stats();

    let q0 = Instant::now();
    let rows = rt
        .block_on(store.query(&Query {
            bucket: "bench".into(),
            measurement: "nodes".into(),
            tags: vec![("node_name".into(), "node-00042".into())],
            start_ns: t0,
            stop_ns: t0 + rounds as i64 * STEP_NS,
            ..Default::default()
        }))
        .unwrap();
    let qt = q0.elapsed();
    assert_eq!(rows.len(), GROUPS.len() * FIELDS as usize * rounds);

    println!(
        "  ingest: {samples} samples in {:.2} s wall = {:.2} M samples/s \
         (text generated by the same 2 tasks; {:.1} MB of line protocol)",
        wall.as_secs_f64(),
        samples as f64 / wall.as_secs_f64() / 1e6,
        bytes_sent as f64 / 1e6
    );
    println!(
        "  inside write_line_protocol: {:.2} s per task = {:.2} M samples/s",
        write_time.as_secs_f64(),
        samples as f64 / write_time.as_secs_f64() / 1e6
    );
    println!(
        "  CPU (user+sys, all threads) during ingest: {:.2} s = {:.2} us per sample; \
         of which generating the text ~{:.2} us; for scale, per line of {} bytes: \
         generating {:.0} ns, line_protocol::parse (owned points) {:.0} ns",
        cpu,
        cpu * 1e6 / samples as f64,
        gen_ns / FIELDS as f64 / 1e3,
        bytes_sent / (series * rounds) as u64,
        gen_ns,
        parse_ns,
    );
    println!(
        "  background checkpoints during ingest: {}; disk before the final one: {:.1} MB \
         (WAL {:.1} MB)",
        before.checkpoints,
        before.bytes_on_disk as f64 / 1e6,
        before.wal_bytes as f64 / 1e6
    );
    println!(
        "  final checkpoint: {:.2} s; on disk {:.1} MB = {:.3} bytes/sample \
         ({} segments, {} sealed chunks, WAL {} B)",
        ckpt.as_secs_f64(),
        st.bytes_on_disk as f64 / 1e6,
        st.bytes_on_disk as f64 / samples as f64,
        st.segments,
        st.sealed_chunks,
        st.wal_bytes
    );
    println!(
        "  memory: peak RSS (VmHWM) {:.0} MiB after ingest, {:.0} MiB at the end; \
         store estimate {:.0} MiB; {} series, {} columns, {} samples",
        hwm_ingest as f64 / 1024.0,
        vm_hwm_kib() as f64 / 1024.0,
        st.bytes_in_memory as f64 / 1048576.0,
        st.series,
        st.columns,
        st.samples
    );
    println!(
        "  query of one node (5 series x 4 fields x {rounds}): {} rows in {:.2} ms",
        rows.len(),
        qt.as_secs_f64() * 1e3
    );
    drop(store);
    let r0 = Instant::now();
    drop(db);
    let reopened = EmbeddedTsdb::open(EmbeddedOptions {
        dir: Some(tmp.path().to_path_buf()),
        ..Default::default()
    })
    .unwrap();
    println!(
        "  reopen: {:.2} s, {} samples back",
        r0.elapsed().as_secs_f64(),
        reopened.stats().samples
    );
}

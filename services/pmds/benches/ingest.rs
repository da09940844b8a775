//! Ingest throughput of PMDS over HTTP (D6.7 4.4: the ETA writes every probe's telemetry into
//! PMDS), then of VictoriaMetrics with the same bodies for comparison.
//!
//! `cargo bench -p serrano-pmds --bench ingest`
//!
//! 1. Generates line protocol for `PMDS_BENCH_SERIES` series (default 100 000) with 8 fields
//!    each (counters and gauges that move like telemetry), `PMDS_BENCH_ROUNDS` scrapes 30 s apart
//!    (default 10), cut into bodies of `PMDS_BENCH_LINES` lines (default 5 000); all generated
//!    before the clock starts.
//! 2. Starts the `pmds` binary on the embedded store in a temporary directory and POSTs every body
//!    to `/api/v2/write` from `PMDS_BENCH_CONNECTIONS` concurrent connections (default 4).
//!    Prints samples/s and the child's peak RSS; stops it (graceful: the WAL is synced), reopens
//!    the directory (replay + checkpoint) and prints bytes per sample on disk. Then writes
//!    `PMDS_BENCH_DEPTH_SERIES` (2 000) series x `PMDS_BENCH_DEPTH_ROUNDS` (500) rounds straight
//!    into a store directory for the steady-state bytes per sample of long series.
//! 3. POSTs the same bodies to VictoriaMetrics (`SERRANO_TEST_VICTORIAMETRICS_URL`; skipped with
//!    a message when unset) and prints its samples/s, bytes per sample and the ratio.
//!
//! Aims: >= 2 M samples/s, <= 1.5 B/sample, RSS <= 1 GiB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const FIELDS: usize = 8;
const TOKEN: &str = "bench-token";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift64*: deterministic values without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

struct Workload {
    bodies: Vec<Arc<Vec<u8>>>,
    samples: u64,
    bytes: u64,
}

/// Every series once per round; a series' state (counters, gauges) moves between rounds.
fn generate(series: usize, rounds: usize, lines_per_body: usize) -> Workload {
    use std::fmt::Write;
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    // Recent times: VictoriaMetrics drops samples outside its retention.
    let start_s = now_s - 30 * rounds as i64 - 60;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut counters: Vec<[u64; 4]> = (0..series)
        .map(|_| {
            [
                rng.next() % 1_000_000,
                rng.next() % 1_000,
                0,
                rng.next() % (1 << 30),
            ]
        })
        .collect();
    let mut gauges: Vec<[f64; 4]> = (0..series)
        .map(|_| {
            [
                (rng.next() % 10_000) as f64 / 100.0,
                (rng.next() % 10_000) as f64 / 100.0,
                (rng.next() % (1 << 32)) as f64,
                (rng.next() % 100) as f64,
            ]
        })
        .collect();
    let mut bodies = Vec::new();
    let mut body = String::new();
    let mut lines_in_body = 0;
    let mut bytes = 0u64;
    for round in 0..rounds {
        let t = start_s + 30 * round as i64;
        for i in 0..series {
            let c = &mut counters[i];
            c[0] += rng.next() % 5_000;
            c[1] += rng.next() % 3;
            c[3] += rng.next() % 65_536;
            if rng.next().is_multiple_of(1000) {
                c[2] += 1;
            }
            let g = &mut gauges[i];
            g[0] = ((g[0] + (rng.next() % 201) as f64 / 100.0 - 1.0).clamp(0.0, 100.0) * 100.0)
                .round()
                / 100.0;
            g[1] = ((g[1] + (rng.next() % 41) as f64 / 100.0 - 0.2).clamp(0.0, 100.0) * 100.0)
                .round()
                / 100.0;
            if rng.next().is_multiple_of(20) {
                g[2] += ((rng.next() % 1_048_576) as f64) - 524_288.0;
            }
            let _ = writeln!(
                body,
                "nodes,cluster=c{},group=bench,node_name=node-{:04},pod=pod-{:06} \
                 rx_bytes_total={}i,rx_packets_total={}i,restarts={}i,tx_bytes_total={}i,\
                 cpu_pct={},mem_pct={},mem_bytes={},disk_pct={} {}",
                i % 4,
                i / 100,
                i,
                c[0],
                c[1],
                c[2],
                c[3],
                g[0],
                g[1],
                g[2],
                g[3],
                t + (i % 30) as i64,
            );
            lines_in_body += 1;
            if lines_in_body == lines_per_body {
                bytes += body.len() as u64;
                bodies.push(Arc::new(std::mem::take(&mut body).into_bytes()));
                lines_in_body = 0;
            }
        }
    }
    if !body.is_empty() {
        bytes += body.len() as u64;
        bodies.push(Arc::new(body.into_bytes()));
    }
    Workload {
        bodies,
        samples: (series * rounds * FIELDS) as u64,
        bytes,
    }
}

/// POSTs every body from `connections` workers; the wall time from first send to last answer.
async fn post_all(url: &str, bucket: &str, workload: &Workload, connections: usize) -> Duration {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(workload.bodies.clone());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, next, bodies) = (client.clone(), next.clone(), bodies.clone());
        let url = format!("{url}/api/v2/write");
        let bucket = bucket.to_owned();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                let response = client
                    .post(&url)
                    .query(&[
                        ("bucket", bucket.as_str()),
                        ("org", "serrano"),
                        ("precision", "s"),
                    ])
                    .header("Authorization", format!("Token {TOKEN}"))
                    .body(body.as_ref().clone())
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                assert!(
                    status.is_success(),
                    "write failed: {status} {}",
                    response.text().await.unwrap_or_default()
                );
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed()
}

/// A free port whose successor is free too (REST and gRPC of one PMDS).
fn free_port_pair() -> u16 {
    loop {
        let port = free_port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn start_pmds(work: &Path, data: &Path, port: u16) -> Child {
    let config = work.join("pmds.toml");
    let grpc_port = port + 1;
    std::fs::write(
        &config,
        format!(
            "grpc_bind = \"127.0.0.1:{grpc_port}\"\n[http]\nbind = \"127.0.0.1:{port}\"\ntokens = [\"{TOKEN}\"]\nlog_level = \"warn\"\n\n\
             [timeseries]\ntype = \"embedded\"\npath = \"{}\"\n",
            data.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(work.join("pmds.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_pmds"))
        .env("SERRANO_PMDS_CONFIG", &config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

async fn wait_healthy(url: &str) {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(response) = client.get(format!("{url}/health")).send().await
            && response.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("pmds did not become healthy at {url}");
}

fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    for _ in 0..600 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

async fn vm_metric_sum(client: &reqwest::Client, url: &str, name: &str) -> f64 {
    let text = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn rate(samples: u64, elapsed: Duration) -> f64 {
    samples as f64 / elapsed.as_secs_f64()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[tokio::main]
async fn main() {
    let series = env_usize("PMDS_BENCH_SERIES", 100_000);
    let rounds = env_usize("PMDS_BENCH_ROUNDS", 10);
    let lines = env_usize("PMDS_BENCH_LINES", 5_000);
    let connections = env_usize("PMDS_BENCH_CONNECTIONS", 4);

    let generated = Instant::now();
    let workload = generate(series, rounds, lines);
    println!(
        "workload: {series} series x {FIELDS} fields x {rounds} rounds = {} samples, {} bodies of {lines} lines, {:.1} MiB of line protocol ({:.1} B/sample), generated in {:.1?}",
        workload.samples,
        workload.bodies.len(),
        mib(workload.bytes),
        workload.bytes as f64 / workload.samples as f64,
        generated.elapsed()
    );

    // Where the time goes, in this process without HTTP: parsing alone, then the store alone.
    let parsing = Instant::now();
    for body in &workload.bodies {
        serrano_timeseries::line_protocol::parse(body, serrano_timeseries::Precision::Seconds, 0)
            .unwrap();
    }
    let parse_rate = rate(workload.samples, parsing.elapsed());
    let memory =
        serrano_timeseries::EmbeddedTsdb::open(serrano_timeseries::EmbeddedOptions::default())
            .unwrap();
    let storing = Instant::now();
    for body in &workload.bodies {
        memory
            .write_lp("bench", body, serrano_timeseries::Precision::Seconds, 0)
            .unwrap();
    }
    let store_rate = rate(workload.samples, storing.elapsed());
    drop(memory);
    println!(
        "baseline (one thread, no HTTP): line_protocol::parse {:.2} M samples/s; embedded write_lp in memory {:.2} M samples/s",
        parse_rate / 1e6,
        store_rate / 1e6
    );

    // PMDS on the embedded store, as its own process.
    let work = tempfile::tempdir().unwrap();
    let data: PathBuf = work.path().join("tsdb");
    let port = free_port_pair();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = start_pmds(work.path(), &data, port);
    wait_healthy(&url).await;
    let elapsed = post_all(
        &url,
        "6a5f2b4c-0d1e-4f3a-9b8c-7d6e5f4a3b2c",
        &workload,
        connections,
    )
    .await;
    let pmds_rate = rate(workload.samples, elapsed);
    let rss = peak_rss_bytes(child.id()).unwrap_or(0);
    println!(
        "pmds (embedded): {:.2} M samples/s ({:.1} MiB/s of line protocol, {:.2?} for {} samples over {connections} connections)",
        pmds_rate / 1e6,
        mib(workload.bytes) / elapsed.as_secs_f64(),
        elapsed,
        workload.samples
    );
    let stopping = Instant::now();
    stop(&mut child);
    let rss = rss.max(peak_rss_bytes(child.id()).unwrap_or(0));
    println!(
        "pmds (embedded): peak RSS {:.0} MiB; graceful stop (WAL synced) in {:.2?}; directory {:.1} MiB before checkpoint",
        mib(rss),
        stopping.elapsed(),
        mib(dir_size(&data))
    );
    // Reopening replays the WAL and checkpoints it into compressed segments.
    let reopened = Instant::now();
    let store = serrano_timeseries::EmbeddedTsdb::open(serrano_timeseries::EmbeddedOptions {
        dir: Some(data.clone()),
        ..serrano_timeseries::EmbeddedOptions::default()
    })
    .unwrap();
    store.checkpoint().unwrap();
    let stats = store.stats();
    drop(store);
    let on_disk = dir_size(&data);
    println!(
        "pmds (embedded): after reopen + checkpoint ({:.2?}): {} samples stored (expected {}), {:.1} MiB on disk = {:.2} B/sample",
        reopened.elapsed(),
        stats.samples,
        workload.samples,
        mib(on_disk),
        on_disk as f64 / workload.samples as f64
    );

    // The same workload over the gRPC stream (the Push RPC probes and agents use), into a fresh
    // PMDS: 2 senders (sessions), each body converted to one batch of samples at send time (the
    // client's cost is on the same 2 cores), the producer pausing while 192 of its 256 buffered batches are unacked.
    let grpc_data: PathBuf = work.path().join("tsdb-grpc");
    let port = free_port_pair();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = start_pmds(work.path(), &grpc_data, port);
    wait_healthy(&url).await;
    let grpc_url = format!("http://127.0.0.1:{}", port + 1);
    let started = Instant::now();
    let senders = 2;
    let mut tasks = Vec::new();
    let workload = Arc::new(workload);
    for worker in 0..senders {
        let (workload, grpc_url) = (workload.clone(), grpc_url.clone());
        tasks.push(tokio::spawn(async move {
            use serrano_telemetry_stream::{SenderOptions, StreamIdentity, StreamSender};
            let sender = StreamSender::start(
                grpc_url,
                StreamIdentity {
                    source_uuid: format!("bench-{worker}"),
                    cluster_uuid: "6a5f2b4c-0d1e-4f3a-9b8c-7d6e5f4a3b2c".into(),
                    session_id: format!("bench-{worker}"),
                },
                SenderOptions {
                    token: Some(TOKEN.into()),
                    capacity_batches: 256,
                    rotate_every: Duration::from_millis(500),
                    ..SenderOptions::default()
                },
            )
            .unwrap();
            for body in workload.bodies.iter().skip(worker).step_by(senders) {
                let points = serrano_timeseries::line_protocol::parse(
                    body,
                    serrano_timeseries::Precision::Seconds,
                    0,
                )
                .unwrap();
                let samples = points
                    .iter()
                    .map(serrano_telemetry_stream::points::point_sample)
                    .collect();
                // Above half the buffer: a stream ends (and is acknowledged) every 128 batches.
                while sender.stats().queued >= 192 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                sender.send(samples).unwrap();
            }
            sender.close(Duration::from_secs(600)).await
        }));
    }
    let mut dropped = 0;
    for task in tasks {
        dropped += task.await.unwrap().dropped;
    }
    let elapsed = started.elapsed();
    let grpc_rss = peak_rss_bytes(child.id()).unwrap_or(0);
    stop(&mut child);
    let store = serrano_timeseries::EmbeddedTsdb::open(serrano_timeseries::EmbeddedOptions {
        dir: Some(grpc_data.clone()),
        ..serrano_timeseries::EmbeddedOptions::default()
    })
    .unwrap();
    let stored = store.stats().samples;
    drop(store);
    println!(
        "pmds (embedded) over gRPC: {:.2} M samples/s ({:.2?}, {senders} streams, {dropped} batches dropped, {stored} samples stored of {}), peak RSS {:.0} MiB",
        rate(workload.samples, elapsed) / 1e6,
        elapsed,
        workload.samples,
        mib(grpc_rss)
    );
    let workload = Arc::try_unwrap(workload).ok().unwrap();

    // Steady-state compression needs long series (a day of 30 s scrapes is 2 880 samples per
    // field; the run above has only `rounds` per field): fewer series, many rounds, written
    // straight into a store directory and checkpointed.
    let depth_series = env_usize("PMDS_BENCH_DEPTH_SERIES", 2_000);
    let depth_rounds = env_usize("PMDS_BENCH_DEPTH_ROUNDS", 500);
    let deep = generate(depth_series, depth_rounds, lines);
    let deep_dir = work.path().join("deep");
    let store = serrano_timeseries::EmbeddedTsdb::open(serrano_timeseries::EmbeddedOptions {
        dir: Some(deep_dir.clone()),
        ..serrano_timeseries::EmbeddedOptions::default()
    })
    .unwrap();
    for body in &deep.bodies {
        store
            .write_lp("deep", body, serrano_timeseries::Precision::Seconds, 0)
            .unwrap();
    }
    store.checkpoint().unwrap();
    drop(store);
    let deep_size = dir_size(&deep_dir);
    println!(
        "embedded, long series ({depth_series} series x {FIELDS} fields x {depth_rounds} rounds = {} samples): {:.1} MiB on disk after checkpoint = {:.2} B/sample",
        deep.samples,
        mib(deep_size),
        deep_size as f64 / deep.samples as f64
    );

    // The same bodies into VictoriaMetrics.
    let Some(vm) = std::env::var("SERRANO_TEST_VICTORIAMETRICS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        println!("victoriametrics: skipped: SERRANO_TEST_VICTORIAMETRICS_URL is not set");
        return;
    };
    let client = reqwest::Client::new();
    let size_before = vm_metric_sum(&client, &vm, "vm_data_size_bytes").await;
    let rows_before = vm_metric_sum(&client, &vm, "vm_rows_added_to_storage_total").await;
    let elapsed = post_all(&vm, "bench", &workload, connections).await;
    let vm_rate = rate(workload.samples, elapsed);
    let _ = client
        .get(format!("{vm}/internal/force_flush"))
        .send()
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let size = vm_metric_sum(&client, &vm, "vm_data_size_bytes").await - size_before;
    let rows = vm_metric_sum(&client, &vm, "vm_rows_added_to_storage_total").await - rows_before;
    let vm_rss = vm_metric_sum(&client, &vm, "process_resident_memory_peak_bytes").await;
    println!(
        "victoriametrics: {:.2} M samples/s ({:.2?}); {:.0} rows added, {:.1} MiB more on disk = {:.2} B/sample (after force_flush; background merges shrink it later); peak RSS {:.0} MiB (server lifetime)",
        vm_rate / 1e6,
        elapsed,
        rows,
        size / (1024.0 * 1024.0),
        size / rows.max(1.0),
        vm_rss / (1024.0 * 1024.0)
    );
    println!("ratio pmds/victoriametrics: {:.2}x", pmds_rate / vm_rate);
}

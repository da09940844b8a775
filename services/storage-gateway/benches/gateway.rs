//! Storage gateway end to end over HTTP: the release `storage-gateway` binary as a child process
//! (default configuration: four local edge locations under a temporary directory, default
//! policy RLNC 3+1 with AES-256-GCM, 1 MiB stripes, embedded datastore), driven by aws-sdk-s3
//! on the same machine; and the same client runs against SeaweedFS's S3 when it is up.
//!
//! `cargo bench -p serrano-storage-gateway --bench gateway`, or side by side with SeaweedFS:
//! `scripts/infra start s3 && eval "$(scripts/infra env)" &&
//! SERRANO_BENCH_S3_PID=$(cat .infra/s3/pid) cargo bench -p serrano-storage-gateway --bench gateway`
//!
//! Runs, each on the gateway and then on SeaweedFS:
//! 1. 64 MiB PutObject, `BENCH_OBJECTS` objects, 1 and 4 requests at a time, with
//!    `UNSIGNED-PAYLOAD` (`customize().disable_payload_signing()`) and with the SDK's default
//!    signed payload (the client hashes the body with SHA-256; the server checks it).
//! 2. 64 MiB GetObject of those objects, 1 and 4 at a time.
//! 3. 4 KiB PutObject (signed payload, the SDK's default) then GetObject of those keys,
//!    `BENCH_SMALL_CONCURRENCY` requests at a time for `BENCH_SMALL_SECONDS` each.
//! 4. 1 MiB ranged GetObject at pseudo-random offsets of a 256 MiB object, one at a time,
//!    `BENCH_RANGE_GETS` requests: p50 / p99 latency.
//! 5. Gateway only: 64 MiB GetObject with the directory of the location holding fragment 0
//!    renamed away (a backend down: every stripe is decoded from a redundant fragment), then
//!    the directory is put back.
//!
//! The client never computes request checksums (`RequestChecksumCalculation::WhenRequired`)
//! nor validates response ones, never retries (errors are counted), and checks every byte it
//! reads against what it wrote. MB/s is 10^6 bytes per second of wall time for the whole run.
//! "cores" is the CPU time of a process (utime + stime from /proc) over the wall time of the
//! run: the server's own and the bench client's, which share the machine. RSS is the child
//! process's own (`VmHWM` / `VmRSS`), so it does not include the client.
//!
//! Knobs:
//! - `SERRANO_BENCH_QUICK=1`: a short run (4 objects, 1.5 s small runs, 60 range GETs);
//! - `BENCH_OBJECTS` (16), `BENCH_SMALL_SECONDS` (5), `BENCH_SMALL_CONCURRENCY` (64),
//!   `BENCH_RANGE_GETS` (300);
//! - `BENCH_RUNS`: a comma-separated subset of `put,get,small,range,degraded` (all when unset),
//!   e.g. to profile one phase with `perf`;
//! - `BENCH_DIR`: where the gateway's temporary directory goes (default: the system's);
//! - `SERRANO_BENCH_S3_PID`: SeaweedFS's PID, for its CPU time and RSS;
//! - `SERRANO_BENCH_GATEWAY_BIN`: another gateway binary than this package's release build.
//!
//! SeaweedFS comes from `SERRANO_TEST_S3_ENDPOINT`, `_ACCESS_KEY`, `_SECRET_KEY`, `_REGION`
//! (skipped when they are not set). Prints a table; asserts nothing about speed
//! (docs/benchmarks.md records the figures).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RequestChecksumCalculation,
    ResponseChecksumValidation, RuntimeComponents,
};
use aws_sdk_s3::error::{BoxError, DisplayErrorContext};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

const MB: f64 = 1_000_000.0;
const BIG: usize = 64 << 20;
const SMALL: usize = 4 << 10;
const RANGE_OBJECT: usize = 256 << 20;
const RANGE_LEN: usize = 1 << 20;
const TOKEN: &str = "bench-token";
const ENV_PREFIX: &str = "SERRANO_STORAGE_GATEWAY_";
/// /proc/PID/stat counts CPU time in USER_HZ ticks, 100 per second on Linux.
const TICKS_PER_SECOND: f64 = 100.0;

fn knob<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

struct Knobs {
    objects: usize,
    small_seconds: f64,
    small_concurrency: usize,
    range_gets: usize,
    /// Groups of runs to do (`BENCH_RUNS`, comma-separated; all when unset).
    runs: Option<Vec<String>>,
}

impl Knobs {
    fn load() -> Self {
        let quick = env("SERRANO_BENCH_QUICK").is_some_and(|v| v != "0");
        Self {
            objects: knob("BENCH_OBJECTS", if quick { 4 } else { 16 }).max(1),
            small_seconds: knob("BENCH_SMALL_SECONDS", if quick { 1.5 } else { 5.0 }),
            small_concurrency: knob("BENCH_SMALL_CONCURRENCY", 64).max(1),
            range_gets: knob("BENCH_RANGE_GETS", if quick { 60 } else { 300 }).max(1),
            runs: env("BENCH_RUNS").map(|v| v.split(',').map(|r| r.trim().to_owned()).collect()),
        }
    }

    fn wants(&self, group: &str) -> bool {
        self.runs
            .as_ref()
            .is_none_or(|runs| runs.iter().any(|r| r == group))
    }
}

/// SplitMix64: offsets and key choices that are the same for every target and run.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `len` incompressible bytes (xorshift64*), the same for the same seed.
fn random_bytes(len: usize, seed: u64) -> Bytes {
    let mut state = mix(seed) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

// ---------------------------------------------------------------------------------------------
// /proc

fn cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A `VmHWM:` / `VmRSS:` line of /proc/PID/status, in MiB.
fn status_mib(pid: u32, field: &str) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line[field.len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

// ---------------------------------------------------------------------------------------------
// The client

/// Records what the last PutObject actually carried (payload hash mode, checksum headers).
#[derive(Debug, Default, Clone)]
struct PutHeaders(Arc<Mutex<Option<String>>>);

impl Intercept for PutHeaders {
    fn name(&self) -> &'static str {
        "bench-put-headers"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        if request.method() != "PUT" {
            return Ok(());
        }
        let headers = request.headers();
        let payload = match headers.get("x-amz-content-sha256") {
            Some(v) if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) => {
                "x-amz-content-sha256: <SHA-256 of the body>".to_owned()
            }
            Some(v) => format!("x-amz-content-sha256: {v}"),
            None => "no x-amz-content-sha256".to_owned(),
        };
        let mut extra: Vec<String> = headers
            .iter()
            .filter(|(name, _)| {
                name.starts_with("x-amz-checksum-")
                    || *name == "content-md5"
                    || *name == "x-amz-trailer"
                    || *name == "content-encoding"
            })
            .map(|(name, value)| format!("{name}: {value}"))
            .collect();
        if extra.is_empty() {
            extra.push("no checksum header".into());
        }
        *self.0.lock().unwrap() = Some(format!("{payload}; {}", extra.join(", ")));
        Ok(())
    }
}

fn make_client(
    endpoint: &str,
    access: &str,
    secret: &str,
    region: &str,
    seen: PutHeaders,
) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::new(access, secret, None, None, "bench"))
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(300))
                .build(),
        )
        .interceptor(seen)
        .build();
    Client::from_conf(config)
}

fn sdk_error<E: std::error::Error>(err: E) -> String {
    DisplayErrorContext(err).to_string()
}

async fn put(
    client: &Client,
    bucket: &str,
    key: &str,
    body: Bytes,
    unsigned: bool,
) -> Result<u64, String> {
    let len = body.len() as u64;
    let request = client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body));
    let sent = if unsigned {
        request.customize().disable_payload_signing().send().await
    } else {
        request.send().await
    };
    sent.map(|_| len).map_err(sdk_error)
}

/// GETs `key` (or a range of it) and compares every byte with `expected` as it streams in.
async fn get_checked(
    client: &Client,
    bucket: &str,
    key: &str,
    range: Option<(usize, usize)>,
    expected: &[u8],
) -> Result<u64, String> {
    let mut request = client.get_object().bucket(bucket).key(key);
    if let Some((start, len)) = range {
        request = request.range(format!("bytes={start}-{}", start + len - 1));
    }
    let expected = match range {
        Some((start, len)) => &expected[start..start + len],
        None => expected,
    };
    let mut out = request.send().await.map_err(sdk_error)?;
    let mut seen = 0usize;
    while let Some(chunk) = out.body.next().await {
        let chunk = chunk.map_err(sdk_error)?;
        let end = seen + chunk.len();
        if end > expected.len() || expected[seen..end] != chunk[..] {
            return Err(format!("{key}: wrong bytes at offset {seen}"));
        }
        seen = end;
    }
    if seen != expected.len() {
        return Err(format!("{key}: {seen} of {} bytes", expected.len()));
    }
    Ok(seen as u64)
}

// ---------------------------------------------------------------------------------------------
// Driving requests

#[derive(Clone, Copy)]
enum Limit {
    Count(usize),
    For(Duration),
}

#[derive(Default)]
struct Outcome {
    wall: Duration,
    latencies: Vec<Duration>,
    bytes: u64,
    errors: usize,
    first_error: Option<String>,
    /// (worker, per-worker sequence number) of every request that succeeded.
    done: Vec<(usize, usize)>,
    server_cores: Option<f64>,
    client_cores: Option<f64>,
}

impl Outcome {
    fn ok(&self) -> usize {
        self.latencies.len()
    }

    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / MB / self.wall.as_secs_f64()
    }

    fn per_s(&self) -> f64 {
        self.ok() as f64 / self.wall.as_secs_f64()
    }

    fn percentile_ms(&self, q: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return f64::NAN;
        }
        let index = ((sorted.len() - 1) as f64 * q).round() as usize;
        sorted[index].as_secs_f64() * 1000.0
    }
}

/// Runs `op(worker, seq, local)` from `concurrency` workers until `limit`; `seq` numbers
/// requests across workers, `local` within one. `op` returns the bytes it moved.
async fn drive<F, Fut>(server_pid: Option<u32>, concurrency: usize, limit: Limit, op: F) -> Outcome
where
    F: Fn(usize, usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<u64, String>> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let client_before = cpu_ticks(std::process::id());
    let server_before = server_pid.and_then(cpu_ticks);
    let started = Instant::now();
    let deadline = match limit {
        Limit::For(d) => Some(started + d),
        Limit::Count(_) => None,
    };
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let op = op.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let mut out = Outcome::default();
            let mut local = 0;
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                match (limit, deadline) {
                    (Limit::Count(n), _) if seq >= n => break,
                    (_, Some(deadline)) if Instant::now() >= deadline => break,
                    _ => {}
                }
                let t0 = Instant::now();
                let result = op(worker, seq, local).await;
                let elapsed = t0.elapsed();
                match result {
                    Ok(bytes) => {
                        out.bytes += bytes;
                        out.latencies.push(elapsed);
                        out.done.push((worker, local));
                    }
                    Err(err) => {
                        out.errors += 1;
                        out.first_error.get_or_insert(err);
                    }
                }
                local += 1;
            }
            out
        }));
    }
    let mut total = Outcome::default();
    for worker in workers {
        let out = worker.await.expect("worker task");
        total.bytes += out.bytes;
        total.latencies.extend(out.latencies);
        total.done.extend(out.done);
        total.errors += out.errors;
        if total.first_error.is_none() {
            total.first_error = out.first_error;
        }
    }
    total.wall = started.elapsed();
    let wall = total.wall.as_secs_f64();
    let cores = |before: Option<u64>, after: Option<u64>| {
        Some((after?.saturating_sub(before?)) as f64 / TICKS_PER_SECOND / wall)
    };
    total.client_cores = cores(client_before, cpu_ticks(std::process::id()));
    total.server_cores = cores(server_before, server_pid.and_then(cpu_ticks));
    total
}

// ---------------------------------------------------------------------------------------------
// Results

#[derive(Clone, Copy, PartialEq)]
enum Unit {
    MbPerS,
    PerS,
    /// p99 latency in ms (lower is better).
    P99Ms,
}

impl Unit {
    fn value(self, out: &Outcome) -> f64 {
        match self {
            Unit::MbPerS => out.mb_per_s(),
            Unit::PerS => out.per_s(),
            Unit::P99Ms => out.percentile_ms(0.99),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Unit::MbPerS => "MB/s",
            Unit::PerS => "req/s",
            Unit::P99Ms => "p99 ms",
        }
    }
}

struct Row {
    id: &'static str,
    what: String,
    client: &'static str,
    unit: Unit,
    gateway: Option<Outcome>,
    seaweed: Option<Outcome>,
    /// Gateway VmHWM after the run, MiB.
    hwm_mib: Option<f64>,
    aim: Option<f64>,
}

fn fmt_num(value: f64) -> String {
    if !value.is_finite() {
        return "-".into();
    }
    let rounded = if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    };
    // Thousands separators on the integer part.
    let (int, frac) = rounded.split_once('.').unwrap_or((&rounded, ""));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if frac.is_empty() {
        grouped
    } else {
        format!("{grouped}.{frac}")
    }
}

fn fmt_opt(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "| test | client | gateway | SeaweedFS | gateway / SeaweedFS | gateway p50 / p99 ms | server cores gw / sw | client cores gw / sw | gw VmHWM MiB after the run | errors gw / sw | aim |"
    );
    println!("| --- | --- | ---: | ---: | ---: | --- | --- | --- | ---: | --- | --- |");
    for row in rows {
        let Some(gw) = &row.gateway else { continue };
        let unit = row.unit.label();
        let g = row.unit.value(gw);
        let s = row.seaweed.as_ref().map(|o| row.unit.value(o));
        let ratio = s.filter(|s| *s > 0.0).map(|s| g / s);
        let aim = row.aim.map_or_else(String::new, |aim| {
            let met = if row.unit == Unit::P99Ms {
                g <= aim
            } else {
                g >= aim
            };
            format!(
                "≥ {} {unit}: {}",
                fmt_num(aim),
                if met { "met" } else { "**not met**" }
            )
        });
        println!(
            "| {} | {} | {} {unit} | {} | {} | {:.1} / {:.1} | {} / {} | {} / {} | {} | {} / {} | {} |",
            row.what,
            row.client,
            fmt_num(g),
            s.map_or_else(|| "-".into(), |s| format!("{} {unit}", fmt_num(s))),
            ratio.map_or_else(|| "-".into(), |r| format!("{r:.2}")),
            gw.percentile_ms(0.5),
            gw.percentile_ms(0.99),
            fmt_opt(gw.server_cores, 2),
            fmt_opt(row.seaweed.as_ref().and_then(|o| o.server_cores), 2),
            fmt_opt(gw.client_cores, 2),
            fmt_opt(row.seaweed.as_ref().and_then(|o| o.client_cores), 2),
            fmt_opt(row.hwm_mib, 0),
            gw.errors,
            row.seaweed
                .as_ref()
                .map_or_else(|| "-".into(), |o| o.errors.to_string()),
            aim,
        );
    }
    for row in rows {
        for (target, out) in [("gateway", &row.gateway), ("SeaweedFS", &row.seaweed)] {
            if let Some(err) = out.as_ref().and_then(|o| o.first_error.as_ref()) {
                println!("first error, {} on {target}: {err}", row.id);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The runs, the same for both targets

struct Target {
    name: &'static str,
    client: Client,
    bucket: String,
    pid: Option<u32>,
    seen: PutHeaders,
}

struct Data {
    big: Bytes,
    small: Bytes,
}

/// Results by row id.
type Results = Vec<(&'static str, Outcome, Option<f64>)>;

fn hwm(target: &Target) -> Option<f64> {
    if target.name == "gateway" {
        target.pid.and_then(|pid| status_mib(pid, "VmHWM:"))
    } else {
        None
    }
}

async fn run_all(
    target: &Target,
    data: &Data,
    knobs: &Knobs,
    put_modes: &mut Vec<String>,
) -> Results {
    let mut results: Results = Vec::new();
    let n = knobs.objects;
    eprintln!(
        "[{}] 64 MiB PUT/GET, {n} objects per run (load average {})",
        target.name,
        loadavg()
    );
    let put_runs = [
        ("put-u1", true, 1, "big-u1"),
        ("put-s1", false, 1, "big-s1"),
        ("put-u4", true, 4, "big-u4"),
        ("put-s4", false, 4, "big-s4"),
    ];
    if !knobs.wants("put") && (knobs.wants("get") || knobs.wants("degraded")) {
        // The GET runs read the objects of the first PUT run: write them, untimed.
        for seq in 0..n {
            let key = format!("big-u1/{seq}");
            put(&target.client, &target.bucket, &key, data.big.clone(), true)
                .await
                .expect("PUT of a 64 MiB object");
        }
    }
    for (id, unsigned, concurrency, prefix) in put_runs.into_iter().filter(|_| knobs.wants("put")) {
        let (client, bucket, body) = (
            target.client.clone(),
            target.bucket.clone(),
            data.big.clone(),
        );
        let out =
            drive(
                target.pid,
                concurrency,
                Limit::Count(n),
                move |_, seq, _| {
                    let (client, bucket, body) = (client.clone(), bucket.clone(), body.clone());
                    async move {
                        put(&client, &bucket, &format!("{prefix}/{seq}"), body, unsigned).await
                    }
                },
            )
            .await;
        eprintln!("  {id}: {:.0} MB/s", out.mb_per_s());
        if concurrency == 1 {
            let seen = target.seen.0.lock().unwrap().clone().unwrap_or_default();
            put_modes.push(format!(
                "{} PUT {}: {seen}",
                target.name,
                if unsigned { "unsigned" } else { "signed" }
            ));
        }
        results.push((id, out, hwm(target)));
    }
    for (id, concurrency) in [("get-1", 1), ("get-4", 4)]
        .into_iter()
        .filter(|_| knobs.wants("get"))
    {
        let (client, bucket, body) = (
            target.client.clone(),
            target.bucket.clone(),
            data.big.clone(),
        );
        let out = drive(
            target.pid,
            concurrency,
            Limit::Count(n),
            move |_, seq, _| {
                let (client, bucket, body) = (client.clone(), bucket.clone(), body.clone());
                async move {
                    get_checked(
                        &client,
                        &bucket,
                        &format!("big-u1/{}", seq % n),
                        None,
                        &body,
                    )
                    .await
                }
            },
        )
        .await;
        eprintln!("  {id}: {:.0} MB/s", out.mb_per_s());
        results.push((id, out, hwm(target)));
    }

    if knobs.wants("small") {
        small_runs(target, data, knobs, &mut results).await;
    }
    if knobs.wants("range") {
        range_run(target, knobs, &mut results).await;
    }
    results
}

async fn small_runs(target: &Target, data: &Data, knobs: &Knobs, results: &mut Results) {
    eprintln!(
        "[{}] 4 KiB objects, {} at a time, {} s each",
        target.name, knobs.small_concurrency, knobs.small_seconds
    );
    let seconds = Duration::from_secs_f64(knobs.small_seconds);
    let (client, bucket, body) = (
        target.client.clone(),
        target.bucket.clone(),
        data.small.clone(),
    );
    let puts = drive(
        target.pid,
        knobs.small_concurrency,
        Limit::For(seconds),
        move |worker, _, local| {
            let (client, bucket, body) = (client.clone(), bucket.clone(), body.clone());
            async move {
                put(
                    &client,
                    &bucket,
                    &format!("small/{worker}/{local}"),
                    body,
                    false,
                )
                .await
            }
        },
    )
    .await;
    eprintln!("  small-put: {:.0}/s", puts.per_s());
    let keys: Arc<Vec<(usize, usize)>> = Arc::new(puts.done.clone());
    results.push(("small-put", puts, hwm(target)));
    if !keys.is_empty() {
        let (client, bucket, body) = (
            target.client.clone(),
            target.bucket.clone(),
            data.small.clone(),
        );
        let gets = drive(
            target.pid,
            knobs.small_concurrency,
            Limit::For(seconds),
            move |_, seq, _| {
                let (client, bucket, body, keys) =
                    (client.clone(), bucket.clone(), body.clone(), keys.clone());
                async move {
                    let (worker, local) = keys[(mix(seq as u64) % keys.len() as u64) as usize];
                    get_checked(
                        &client,
                        &bucket,
                        &format!("small/{worker}/{local}"),
                        None,
                        &body,
                    )
                    .await
                }
            },
        )
        .await;
        eprintln!("  small-get: {:.0}/s", gets.per_s());
        results.push(("small-get", gets, hwm(target)));
    }
}

async fn range_run(target: &Target, knobs: &Knobs, results: &mut Results) {
    eprintln!(
        "[{}] 1 MiB range GETs of a 256 MiB object, {} one at a time",
        target.name, knobs.range_gets
    );
    let whole = random_bytes(RANGE_OBJECT, 256);
    put(
        &target.client,
        &target.bucket,
        "range/256mib",
        whole.clone(),
        true,
    )
    .await
    .expect("PUT of the 256 MiB object");
    let (client, bucket) = (target.client.clone(), target.bucket.clone());
    let ranges = drive(
        target.pid,
        1,
        Limit::Count(knobs.range_gets),
        move |_, seq, _| {
            let (client, bucket, whole) = (client.clone(), bucket.clone(), whole.clone());
            let start =
                (mix(1_000_000 + seq as u64) % (RANGE_OBJECT - RANGE_LEN + 1) as u64) as usize;
            async move {
                get_checked(
                    &client,
                    &bucket,
                    "range/256mib",
                    Some((start, RANGE_LEN)),
                    &whole,
                )
                .await
            }
        },
    )
    .await;
    eprintln!(
        "  range: p50 {:.1} ms, p99 {:.1} ms",
        ranges.percentile_ms(0.5),
        ranges.percentile_ms(0.99)
    );
    results.push(("range", ranges, hwm(target)));
}

// ---------------------------------------------------------------------------------------------
// The gateway as a child process

struct Gateway {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    async fn start(binary: &Path) -> Self {
        let dir = match env("BENCH_DIR") {
            Some(parent) => tempfile::tempdir_in(parent),
            None => tempfile::tempdir(),
        }
        .expect("temporary directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = dir.path().join("gateway.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(binary);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with(ENV_PREFIX) || name == "RUST_LOG" {
                command.env_remove(name);
            }
        }
        command
            .env(format!("{ENV_PREFIX}DATA_DIR"), dir.path().join("data"))
            .env(
                format!("{ENV_PREFIX}DATASTORE_PATH"),
                dir.path().join("datastore"),
            )
            .env(
                format!("{ENV_PREFIX}HTTP_BIND"),
                format!("127.0.0.1:{port}"),
            )
            .env(format!("{ENV_PREFIX}HTTP_TOKENS"), TOKEN)
            .env(format!("{ENV_PREFIX}HTTP_LOG_LEVEL"), "warn")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file);
        let child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", binary.display()));
        let mut gateway = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
            log,
        };
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = gateway.child.try_wait() {
                panic!("the gateway exited ({status}):\n{}", gateway.log_tail());
            }
            let ready = http
                .get(format!("{}/ready", gateway.url))
                .bearer_auth(TOKEN)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                panic!(
                    "the gateway was not ready after 30 s:\n{}",
                    gateway.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!(
            "gateway {} (pid {}) ready after {:.2} s, data in {}",
            gateway.url,
            gateway.child.id(),
            started.elapsed().as_secs_f64(),
            gateway.data_dir().display()
        );
        gateway
    }

    /// The admin key pair the gateway generated on first start.
    fn credentials(&self) -> (String, String) {
        let text = std::fs::read_to_string(self.data_dir().join("s3.credentials"))
            .expect("s3.credentials");
        let value = |name: &str| {
            text.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == name)
                .map(|(_, v)| v.trim().to_owned())
                .expect("key in s3.credentials")
        };
        (value("aws_access_key_id"), value("aws_secret_access_key"))
    }

    async fn degraded_stripes(&self) -> Option<u64> {
        let text = reqwest::Client::new()
            .get(format!("{}/metrics", self.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("storage_gateway_degraded_stripes_total "))
            .and_then(|v| v.trim().parse().ok())
    }

    /// The location directory that holds fragment index 0 (a data fragment) of an object.
    fn location_of_fragment_zero(&self) -> Option<PathBuf> {
        (1..=4)
            .map(|id| self.data_dir().join(format!("edge-{id}")))
            .find(|edge| {
                std::fs::read_dir(edge)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .filter_map(|e| std::fs::read_dir(e.path()).ok())
                    .flat_map(|files| files.flatten())
                    .any(|f| f.file_name().to_string_lossy().ends_with(".0"))
            })
    }
}

fn gateway_binary() -> PathBuf {
    env("SERRANO_BENCH_GATEWAY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_storage-gateway")))
}

async fn create_bucket(client: &Client, bucket: &str) {
    if let Err(err) = client.create_bucket().bucket(bucket).send().await {
        let text = sdk_error(err);
        if !text.contains("BucketAlreadyOwnedByYou") && !text.contains("BucketAlreadyExists") {
            panic!("create bucket {bucket}: {text}");
        }
    }
}

/// Deletes every object of `bucket`, then the bucket.
async fn remove_bucket(client: &Client, bucket: &str) {
    let mut token = None;
    loop {
        let Ok(page) = client
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token.take())
            .send()
            .await
        else {
            break;
        };
        for object in page.contents() {
            if let Some(key) = object.key() {
                let _ = client.delete_object().bucket(bucket).key(key).send().await;
            }
        }
        match page.next_continuation_token() {
            Some(next) if page.is_truncated().unwrap_or(false) => token = Some(next.to_owned()),
            _ => break,
        }
    }
    if let Err(err) = client.delete_bucket().bucket(bucket).send().await {
        eprintln!("could not delete bucket {bucket}: {}", sdk_error(err));
    }
}

#[tokio::main]
async fn main() {
    let knobs = Knobs::load();
    let data = Data {
        big: random_bytes(BIG, 64),
        small: random_bytes(SMALL, 4),
    };
    let mut put_modes = Vec::new();
    let load_start = loadavg();

    // The gateway.
    let binary = gateway_binary();
    let gateway = Gateway::start(&binary).await;
    let pid = gateway.child.id();
    let idle_rss = status_mib(pid, "VmRSS:");
    let (access, secret) = gateway.credentials();
    let seen = PutHeaders::default();
    let gw = Target {
        name: "gateway",
        client: make_client(&gateway.url, &access, &secret, "us-east-1", seen.clone()),
        bucket: "bench".into(),
        pid: Some(pid),
        seen,
    };
    create_bucket(&gw.client, &gw.bucket).await;
    let mut gw_results = run_all(&gw, &data, &knobs, &mut put_modes).await;

    // Degraded: the location holding fragment 0 of every stripe is gone.
    eprintln!(
        "[gateway] degraded 64 MiB GETs (load average {})",
        loadavg()
    );
    let healthy_again;
    match gateway
        .location_of_fragment_zero()
        .filter(|_| knobs.wants("degraded"))
    {
        Some(edge) => {
            let away = edge.with_extension("away");
            let before = gateway.degraded_stripes().await;
            std::fs::rename(&edge, &away).expect("rename the location away");
            let n = knobs.objects;
            let (client, bucket, body) = (gw.client.clone(), gw.bucket.clone(), data.big.clone());
            let out = drive(Some(pid), 1, Limit::Count(n), move |_, seq, _| {
                let (client, bucket, body) = (client.clone(), bucket.clone(), body.clone());
                async move {
                    get_checked(
                        &client,
                        &bucket,
                        &format!("big-u1/{}", seq % n),
                        None,
                        &body,
                    )
                    .await
                }
            })
            .await;
            let after = gateway.degraded_stripes().await;
            std::fs::rename(&away, &edge).expect("put the location back");
            eprintln!(
                "  degraded: {:.0} MB/s with {} down; degraded stripes {:?} -> {:?}",
                out.mb_per_s(),
                edge.file_name().unwrap_or_default().to_string_lossy(),
                before,
                after
            );
            healthy_again = Some((
                edge.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                before,
                after,
            ));
            gw_results.push(("degraded", out, status_mib(pid, "VmHWM:")));
        }
        None => {
            eprintln!("  degraded run skipped (not asked for, or no location holds fragment 0)");
            healthy_again = None;
        }
    }
    let gw_hwm = status_mib(pid, "VmHWM:");
    let gw_rss = status_mib(pid, "VmRSS:");
    let load_gateway_done = loadavg();

    // SeaweedFS.
    let mut sw_results: Option<Results> = None;
    let mut sw_rss: Option<String> = None;
    match (
        env("SERRANO_TEST_S3_ENDPOINT"),
        env("SERRANO_TEST_S3_ACCESS_KEY"),
        env("SERRANO_TEST_S3_SECRET_KEY"),
    ) {
        (Some(endpoint), Some(access), Some(secret)) => {
            let region = env("SERRANO_TEST_S3_REGION").unwrap_or_else(|| "us-east-1".into());
            let seen = PutHeaders::default();
            let sw = Target {
                name: "SeaweedFS",
                client: make_client(&endpoint, &access, &secret, &region, seen.clone()),
                bucket: format!("serrano-bench-gateway-{}", std::process::id()),
                pid: env("SERRANO_BENCH_S3_PID").and_then(|p| p.trim().parse().ok()),
                seen,
            };
            create_bucket(&sw.client, &sw.bucket).await;
            sw_results = Some(run_all(&sw, &data, &knobs, &mut put_modes).await);
            if let Some(pid) = sw.pid {
                sw_rss = Some(format!(
                    "SeaweedFS RSS (pid {pid}, the whole `weed server`: master, volume, filer, S3): peak (VmHWM) {} MiB, now (VmRSS) {} MiB",
                    fmt_opt(status_mib(pid, "VmHWM:"), 0),
                    fmt_opt(status_mib(pid, "VmRSS:"), 0)
                ));
            }
            remove_bucket(&sw.client, &sw.bucket).await;
        }
        _ => eprintln!(
            "SeaweedFS skipped: SERRANO_TEST_S3_ENDPOINT / _ACCESS_KEY / _SECRET_KEY not set (scripts/infra start s3 && eval \"$(scripts/infra env)\")"
        ),
    }
    let load_end = loadavg();

    // The table.
    let objects_gib = (knobs.objects * BIG) as f64 / (1u64 << 30) as f64;
    let unsigned = "UNSIGNED-PAYLOAD";
    let signed = "signed (SHA-256)";
    let plain = "SDK GET";
    let specs: [(&str, String, &str, Unit, Option<f64>); 10] = [
        (
            "put-u1",
            "64 MiB PUT, 1 at a time".into(),
            unsigned,
            Unit::MbPerS,
            Some(600.0),
        ),
        (
            "put-s1",
            "64 MiB PUT, 1 at a time".into(),
            signed,
            Unit::MbPerS,
            Some(600.0),
        ),
        (
            "put-u4",
            "64 MiB PUT, 4 at a time".into(),
            unsigned,
            Unit::MbPerS,
            Some(600.0),
        ),
        (
            "put-s4",
            "64 MiB PUT, 4 at a time".into(),
            signed,
            Unit::MbPerS,
            Some(600.0),
        ),
        (
            "get-1",
            "64 MiB GET, 1 at a time".into(),
            plain,
            Unit::MbPerS,
            Some(1000.0),
        ),
        (
            "get-4",
            "64 MiB GET, 4 at a time".into(),
            plain,
            Unit::MbPerS,
            Some(1000.0),
        ),
        (
            "degraded",
            "64 MiB GET, 1 at a time, one location down".into(),
            plain,
            Unit::MbPerS,
            None,
        ),
        (
            "small-put",
            format!("4 KiB PUT, {} at a time", knobs.small_concurrency),
            signed,
            Unit::PerS,
            Some(3000.0),
        ),
        (
            "small-get",
            format!("4 KiB GET, {} at a time", knobs.small_concurrency),
            plain,
            Unit::PerS,
            None,
        ),
        (
            "range",
            "1 MiB range GET of 256 MiB, 1 at a time".into(),
            plain,
            Unit::P99Ms,
            None,
        ),
    ];
    let take = |results: &mut Results, id: &str| {
        results
            .iter()
            .position(|(rid, _, _)| *rid == id)
            .map(|i| results.remove(i))
    };
    let mut rows = Vec::new();
    for (id, what, client, unit, aim) in specs {
        let gw_row = take(&mut gw_results, id);
        let sw_row = sw_results.as_mut().and_then(|r| take(r, id));
        rows.push(Row {
            id,
            what,
            client,
            unit,
            hwm_mib: gw_row.as_ref().and_then(|(_, _, h)| *h),
            gateway: gw_row.map(|(_, o, _)| o),
            seaweed: sw_row.map(|(_, o, _)| o),
            aim,
        });
    }

    println!();
    println!("storage gateway end to end: {}", binary.display());
    println!(
        "machine: {} cores; load average at start {load_start}, after the gateway runs {load_gateway_done}, at end {load_end}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "gateway: default config (4 local edge locations, RLNC 3+1, AES-256-GCM, 1 MiB stripes, embedded datastore), child process {pid}"
    );
    println!(
        "64 MiB runs: {} objects each ({objects_gib:.2} GiB); client: aws-sdk-s3, RequestChecksumCalculation::WhenRequired, ResponseChecksumValidation::WhenRequired, no retries; every GET byte compared",
        knobs.objects
    );
    for mode in &put_modes {
        println!("seen on the wire: {mode}");
    }
    print_table(&rows);
    println!();
    println!(
        "gateway RSS: idle after start {} MiB, peak (VmHWM) {} MiB, now (VmRSS) {} MiB; aim ≤ 256 MiB: {}",
        fmt_opt(idle_rss, 0),
        fmt_opt(gw_hwm, 0),
        fmt_opt(gw_rss, 0),
        match gw_hwm {
            Some(h) if h <= 256.0 => "met",
            Some(_) => "**not met**",
            None => "-",
        }
    );
    if let Some(line) = &sw_rss {
        println!("{line}");
    }
    if let Some((edge, before, after)) = healthy_again {
        println!(
            "degraded run: {edge} renamed away (holds fragment 0 of every stripe), degraded stripes counted by the gateway {} -> {}; put back after",
            before.map_or_else(|| "?".into(), |v| v.to_string()),
            after.map_or_else(|| "?".into(), |v| v.to_string()),
        );
    }
    println!(
        "MB/s = 10^6 bytes/s; ratio = gateway / SeaweedFS of the row's figure (for p99 ms lower is better); cores = CPU seconds / wall seconds of the run (2 cores = the whole machine)"
    );
    drop(gateway);
}

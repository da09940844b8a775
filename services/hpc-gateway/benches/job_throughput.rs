//! HPC gateway job throughput against a real Slurm over real SSH, gateway in-process.
//!
//! `scripts/infra start slurm sshd && eval "$(scripts/infra env)" &&
//! cargo bench -p serrano-hpc-gateway --bench job_throughput`
//!
//! 1. Baseline: plain `sbatch --parsable --hold --wrap true` over ONE multiplexed SSH connection
//!    (the `openssh` crate, as the gateway uses it), `BENCH_CONCURRENCY` channels at a time.
//! 2. The same number of jobs through `POST /job` (script `true`), same concurrency. The gateway
//!    has no hold option: its jobs are put on hold (`scontrol hold`) right after the timed phase,
//!    so they neither fill the node nor delay other users' jobs.
//! 3. `GET /job/{id}` from 64 clients over keep-alive with `BENCH_WATCHED` jobs known to (and
//!    watched by) the gateway; these are answered from the datastore, not over SSH.
//!
//! Every job it created is cancelled at the end (by id, `scancel` in batches). Knobs:
//! `BENCH_JOBS` (400), `BENCH_CONCURRENCY` (16), `BENCH_WATCHED` (1000), `BENCH_QUERIES` (20000),
//! `BENCH_CLIENTS` (64). Prints a table; asserts nothing (docs/benchmarks.md records the figures).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use openssh::{KnownHosts, Session, SessionBuilder};
use serde_json::{Value, json};
use serrano_datastore::{EmbeddedStore, KvStore};
use serrano_service::Secret;
use tokio::io::AsyncWriteExt;

const TOKEN: &str = "bench-token";
const INFRA: &str = "bench";
/// Ids per `scancel` / `scontrol hold` command.
const ID_BATCH: usize = 200;

struct SshEnv {
    host: String,
    port: u16,
    user: String,
    key: String,
    known_hosts: String,
}

fn ssh_env() -> Option<SshEnv> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    Some(SshEnv {
        host: get("SERRANO_TEST_SSH_HOST")?,
        port: get("SERRANO_TEST_SSH_PORT")?.parse().ok()?,
        user: get("SERRANO_TEST_SSH_USER")?,
        key: get("SERRANO_TEST_SSH_KEY")?,
        known_hosts: get("SERRANO_TEST_SSH_KNOWN_HOSTS")?,
    })
}

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(default)
}

/// Latency percentile in ms of a sorted sample.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

struct Phase {
    ok: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    first_error: Option<String>,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Latency percentile in ms (the latencies are sorted once collected).
    fn p(&self, p: f64) -> f64 {
        percentile(&self.latencies, p)
    }
}

async fn connect(ssh: &SshEnv, control: &std::path::Path) -> Session {
    let mut builder = SessionBuilder::default();
    builder
        .user(ssh.user.clone())
        .port(ssh.port)
        .keyfile(&ssh.key)
        .user_known_hosts_file(&ssh.known_hosts)
        .known_hosts_check(KnownHosts::Strict)
        .connect_timeout(Duration::from_secs(10))
        .control_directory(control);
    builder
        .connect_mux(&ssh.host)
        .await
        .expect("ssh connection to the test sshd (SERRANO_TEST_SSH_*)")
}

/// Runs `program ids...` in batches of at most `ID_BATCH` ids; returns how many batches failed.
async fn by_batches(session: &Session, program: &[&str], ids: &[String]) -> usize {
    let mut failed = 0;
    for chunk in ids.chunks(ID_BATCH) {
        let output = session
            .command(program[0])
            .args(&program[1..])
            .args(chunk)
            .output()
            .await;
        match output {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                // `scontrol hold` on a job that already ran (`true` takes no time) is no failure.
                let stderr = String::from_utf8_lossy(&out.stderr);
                let real: Vec<&str> = stderr
                    .lines()
                    .filter(|l| {
                        !l.contains("already finished") && !l.contains("slurm_suspend error")
                    })
                    .collect();
                if !real.is_empty() {
                    failed += 1;
                    eprintln!("{} failed: {}", program.join(" "), real.join("; "));
                }
            }
            Err(err) => {
                failed += 1;
                eprintln!("{} failed: {err}", program.join(" "));
            }
        }
    }
    failed
}

/// `sbatch --hold` over the one connection, `concurrency` channels at a time: plain
/// (`sbatch --wrap true`), or `shaped` like the gateway's submission (`bash -lc`, a job
/// directory, the script fed on stdin to `cat > job.sh`, then `sbatch job.sh`).
async fn ssh_sbatch(
    session: &Session,
    jobs: usize,
    concurrency: usize,
    shaped: Option<&str>,
) -> (Phase, Vec<String>) {
    let started = Instant::now();
    let results: Vec<(Duration, Result<String, String>)> = futures::stream::iter(0..jobs)
        .map(|i| async move {
            let t = Instant::now();
            let out = match shaped {
                None => {
                    session
                        .command("sbatch")
                        .args([
                            "--parsable",
                            "--hold",
                            "--job-name=serrano-bench",
                            "--wrap",
                            "true",
                        ])
                        .output()
                        .await
                }
                Some(dir) => shaped_submit(session, &format!("{dir}/{i}")).await,
            };
            let result = match out {
                Ok(out) if out.status.success() => {
                    let stdout = String::from_utf8_lossy(&out.stdout);
                    let id = stdout
                        .trim()
                        .split(';')
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    if id.is_empty() {
                        Err(format!("no job id in {stdout:?}"))
                    } else {
                        Ok(id)
                    }
                }
                Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
                Err(err) => Err(err.to_string()),
            };
            (t.elapsed(), result)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    collect(results, elapsed)
}

async fn shaped_submit(
    session: &Session,
    job_dir: &str,
) -> Result<std::process::Output, openssh::Error> {
    let mut child = session
        .command("bash")
        .arg("-lc")
        .arg(format!(
            "mkdir -p {job_dir} && cd {job_dir} && cat > job.sh && sbatch --parsable --hold job.sh"
        ))
        .stdin(openssh::Stdio::piped())
        .stdout(openssh::Stdio::piped())
        .stderr(openssh::Stdio::piped())
        .spawn()
        .await?;
    if let Some(mut pipe) = child.stdin().take() {
        let script = b"#!/bin/bash\n#SBATCH --job-name=serrano-bench\n#SBATCH --time=1\ntrue\n";
        pipe.write_all(script).await.ok();
        pipe.shutdown().await.ok();
    }
    child.wait_with_output().await
}

fn collect(
    results: Vec<(Duration, Result<String, String>)>,
    elapsed: Duration,
) -> (Phase, Vec<String>) {
    let mut phase = Phase {
        ok: 0,
        errors: 0,
        elapsed,
        latencies: Vec::new(),
        first_error: None,
    };
    let mut ids = Vec::new();
    for (latency, result) in results {
        match result {
            Ok(id) => {
                phase.ok += 1;
                phase.latencies.push(latency);
                ids.push(id);
            }
            Err(err) => {
                phase.errors += 1;
                phase.first_error.get_or_insert(err);
            }
        }
    }
    phase.latencies.sort_unstable();
    (phase, ids)
}

/// `POST /job` `jobs` times, `concurrency` at a time; the ids are `(gateway id, scheduler id)`.
async fn gateway_submit(
    http: &reqwest::Client,
    url: &str,
    jobs: usize,
    concurrency: usize,
) -> (Phase, Vec<(String, String)>) {
    let body = json!({"infrastructure": INFRA, "script": "true\n",
        "resources": {"time_limit_minutes": 1, "partition": "debug"}});
    let started = Instant::now();
    let results: Vec<(Duration, Result<String, String>)> = futures::stream::iter(0..jobs)
        .map(|_| async {
            let t = Instant::now();
            let response = http
                .post(format!("{url}/job"))
                .bearer_auth(TOKEN)
                .json(&body)
                .send()
                .await;
            let result = match response {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let text = r.text().await.unwrap_or_default();
                    match serde_json::from_str::<Value>(&text) {
                        Ok(job) if status == 201 => Ok(format!(
                            "{} {}",
                            job["id"].as_str().unwrap_or_default(),
                            job["scheduler_id"].as_str().unwrap_or_default()
                        )),
                        _ => Err(format!("{status}: {text}")),
                    }
                }
                Err(err) => Err(err.to_string()),
            };
            (t.elapsed(), result)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let (phase, pairs) = collect(results, elapsed);
    let ids = pairs
        .into_iter()
        .filter_map(|p| {
            p.split_once(' ')
                .map(|(id, sched)| (id.to_owned(), sched.to_owned()))
        })
        .collect();
    (phase, ids)
}

/// `queries` `GET /job/{id}` from `clients` clients (one keep-alive connection each), ids
/// round-robin.
async fn status_queries(url: &str, ids: &[String], queries: usize, clients: usize) -> Phase {
    let ids = Arc::new(ids.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (ids, next, url) = (ids.clone(), next.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("http client");
            let mut latencies = Vec::new();
            let (mut errors, mut first_error) = (0, None);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= queries {
                    break;
                }
                let t = Instant::now();
                let response = http
                    .get(format!("{url}/job/{}", ids[i % ids.len()]))
                    .bearer_auth(TOKEN)
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status().is_success() => {
                        if r.bytes().await.is_ok() {
                            latencies.push(t.elapsed());
                        } else {
                            errors += 1;
                        }
                    }
                    Ok(r) => {
                        errors += 1;
                        first_error.get_or_insert(r.status().to_string());
                    }
                    Err(err) => {
                        errors += 1;
                        first_error.get_or_insert(err.to_string());
                    }
                }
            }
            (latencies, errors, first_error)
        }));
    }
    let mut phase = Phase {
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        first_error: None,
    };
    for task in tasks {
        let (latencies, errors, first_error) = task.await.expect("query task");
        phase.ok += latencies.len();
        phase.latencies.extend(latencies);
        phase.errors += errors;
        if let Some(err) = first_error {
            phase.first_error.get_or_insert(err);
        }
    }
    phase.elapsed = started.elapsed();
    phase.latencies.sort_unstable();
    phase
}

async fn remote(session: &Session, command: &str) -> String {
    match session.command("sh").arg("-c").arg(command).output().await {
        Ok(out) => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Err(err) => format!("({err})"),
    }
}

fn row(name: &str, count: usize, phase: &Phase, extra: &str) {
    println!(
        "{name:<52} {count:>6} {:>10.1} {:>9.2} {:>9.2} {:>6}  {extra}",
        phase.rate(),
        phase.p(0.5),
        phase.p(0.99),
        phase.errors
    );
    if let Some(err) = &phase.first_error {
        println!("    first error: {err}");
    }
}

#[tokio::main]
async fn main() {
    let Some(ssh) = ssh_env() else {
        let message = "job_throughput needs the real Slurm and sshd: run `scripts/infra start slurm sshd && eval \"$(scripts/infra env)\"` first (SERRANO_TEST_SSH_HOST/PORT/USER/KEY/KNOWN_HOSTS are not all set)";
        if std::env::var("SERRANO_REQUIRE_REAL_SERVERS").as_deref() == Ok("1") {
            eprintln!("error: {message}");
            std::process::exit(1);
        }
        eprintln!("skipped: {message}");
        return;
    };
    let jobs = knob("BENCH_JOBS", 400);
    let concurrency = knob("BENCH_CONCURRENCY", 16);
    let watched = knob("BENCH_WATCHED", 1000).max(jobs);
    let queries = knob("BENCH_QUERIES", 20_000);
    let clients = knob("BENCH_CLIENTS", 64);

    // Control sockets need short paths.
    let tmp = |prefix: &str| {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in("/tmp")
            .expect("temp dir under /tmp")
    };
    let (plain_control, gateway_control) = (tmp("hpcb-p"), tmp("hpcb-g"));

    let session = connect(&ssh, plain_control.path()).await;
    let slurm = remote(&session, "sbatch --version").await;
    let before = remote(&session, "squeue -h | wc -l").await;
    println!(
        "hpc-gateway job throughput: {} cores, {slurm}, {} at {}:{}, {before} jobs queued before, N={jobs} C={concurrency}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        ssh.user,
        ssh.host,
        ssh.port
    );
    println!(
        "{:<52} {:>6} {:>10} {:>9} {:>9} {:>6}",
        "", "count", "per s", "p50 ms", "p99 ms", "errors"
    );

    // 1. Baseline.
    let (plain, mut plain_ids) = ssh_sbatch(&session, jobs, concurrency, None).await;
    by_batches(&session, &["scancel"], &plain_ids).await;
    row(
        &format!("plain sbatch --hold (1 ssh connection, C={concurrency})"),
        plain.ok,
        &plain,
        "",
    );
    // The gateway's remote command shape over the same connection: separates what the remote
    // side costs from what the gateway itself adds.
    let shaped_dir = format!("serrano-bench-{}", std::process::id());
    let (shaped, shaped_ids) = ssh_sbatch(&session, jobs, concurrency, Some(&shaped_dir)).await;
    by_batches(&session, &["scancel"], &shaped_ids).await;
    remote(&session, &format!("rm -rf {shaped_dir}")).await;
    row(
        &format!("bash -lc 'mkdir; cat > job.sh; sbatch --hold' (C={concurrency})"),
        shaped.ok,
        &shaped,
        &format!(
            "{:.0}% of plain",
            shaped.rate() / plain.rate().max(1e-9) * 100.0
        ),
    );
    plain_ids.extend(shaped_ids);

    // 2. The gateway, in-process.
    let kv: Arc<dyn KvStore> = Arc::new(EmbeddedStore::in_memory());
    let config = serrano_hpc_gateway::Config {
        watch_interval_ms: 1000,
        ssh_control_dir: gateway_control.path().to_path_buf(),
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serrano_hpc_gateway::serve_with(
        config,
        kv,
        vec![Secret::new(TOKEN)],
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("http client");
    let infra = json!({"name": INFRA, "host": ssh.host, "port": ssh.port, "username": ssh.user,
        "hostname": "vm", "scheduler": "slurm", "ssh_key": {"type": "ssh-ed25519", "path": ssh.key},
        "known_hosts": ssh.known_hosts});
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match http
            .post(format!("{url}/infrastructure"))
            .bearer_auth(TOKEN)
            .json(&infra)
            .send()
            .await
        {
            Ok(r) if r.status().as_u16() == 201 => break,
            Ok(r) => panic!(
                "registering the infrastructure: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            ),
            Err(err) => {
                assert!(Instant::now() < deadline, "gateway did not start: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    let (submitted, mut created) = gateway_submit(&http, &url, jobs, concurrency).await;
    // Hold them at once: they are not to fill the node or delay anyone else's jobs.
    let scheduler_ids = |pairs: &[(String, String)]| -> Vec<String> {
        pairs.iter().map(|(_, s)| s.clone()).collect()
    };
    by_batches(&session, &["scontrol", "hold"], &scheduler_ids(&created)).await;
    let ratio = submitted.rate() / plain.rate().max(1e-9);
    row(
        &format!("gateway POST /job (C={concurrency})"),
        submitted.ok,
        &submitted,
        &format!(
            "ratio {:.0}% of plain, {:.0}% of the same command shape",
            ratio * 100.0,
            submitted.rate() / shaped.rate().max(1e-9) * 100.0
        ),
    );

    // 3. Status queries with `watched` jobs known to the gateway.
    if created.len() < watched {
        let (extra, more) = gateway_submit(&http, &url, watched - created.len(), concurrency).await;
        by_batches(&session, &["scontrol", "hold"], &scheduler_ids(&more)).await;
        if extra.errors > 0 {
            eprintln!(
                "{} of the extra submissions failed: {}",
                extra.errors,
                extra.first_error.unwrap_or_default()
            );
        }
        created.extend(more);
    }
    // Let the watcher go over them once (its scontrol loop runs on the same 2 cores meanwhile).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ids: Vec<String> = created.iter().map(|(id, _)| id.clone()).collect();
    let status = status_queries(&url, &ids, queries, clients).await;
    row(
        &format!(
            "gateway GET /job/{{id}} ({} watched, {clients} clients)",
            ids.len()
        ),
        status.ok,
        &status,
        "",
    );

    // Clean up: stop the gateway, cancel every job this run created, check none is left.
    let _ = stop.send(());
    match tokio::time::timeout(Duration::from_secs(30), server).await {
        Ok(Ok(Err(err))) => eprintln!("gateway ended with an error: {err:#}"),
        Err(_) => eprintln!("gateway did not stop within 30 s"),
        _ => {}
    }
    let mut mine = plain_ids;
    mine.extend(scheduler_ids(&created));
    let failed = by_batches(&session, &["scancel"], &mine).await;
    // The gateway's job directories on the cluster (`work_dir` defaults to `serrano-jobs`).
    let dirs: Vec<String> = created
        .iter()
        .map(|(id, _)| format!("serrano-jobs/{id}"))
        .collect();
    by_batches(&session, &["rm", "-rf"], &dirs).await;
    let check = format!(
        "squeue -h -o %i | grep -c -x -F -e {} || true",
        mine.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" -e ")
    );
    let mut left = remote(&session, &check).await;
    for _ in 0..20 {
        if left == "0" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        left = remote(&session, &check).await;
    }
    println!(
        "cleanup: {} jobs cancelled by id ({failed} scancel batches failed), {left} of them still in squeue",
        mine.len()
    );
    session.close().await.ok();
}

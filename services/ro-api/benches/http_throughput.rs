//! ro-api create+get throughput over HTTP, client on the same machine.
//!
//! `cargo bench -p serrano-ro-api --bench http_throughput` runs it on the embedded store (a real
//! file with group-committed fsyncs) and, when `SERRANO_TEST_ETCD_ENDPOINTS` is set (e.g. after
//! `scripts/infra start etcd; eval "$(scripts/infra env)"`), on etcd too. Knobs:
//! `BENCH_SECONDS` (default 10), `BENCH_CONCURRENCY` (default 64). Prints figures; asserts
//! nothing (docs/benchmarks.md records them).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use serrano_datastore::{EmbeddedStore, EtcdStore, KvStore};
use serrano_service::Secret;

const TOKEN: &str = "bench-token";
const APP: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n    group_id: g1\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.25\n";

struct Figures {
    creates: Vec<Duration>,
    gets: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

async fn run_load(url: String, concurrency: usize, seconds: u64) -> Figures {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let http = http.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut creates = Vec::new();
            let mut gets = Vec::new();
            let mut errors = 0;
            let body = json!({"name": "bench", "deployment_description": APP});
            while Instant::now() < deadline {
                let t = Instant::now();
                let created = http
                    .post(format!("{url}/api/v1/orchestrator/deployments"))
                    .bearer_auth(TOKEN)
                    .json(&body)
                    .send()
                    .await;
                let uuid = match created {
                    Ok(r) if r.status().as_u16() == 201 => {
                        let v: serde_json::Value = r.json().await.unwrap_or_default();
                        v["deployment_uuid"].as_str().unwrap_or_default().to_owned()
                    }
                    _ => {
                        errors += 1;
                        continue;
                    }
                };
                creates.push(t.elapsed());
                let t = Instant::now();
                match http
                    .get(format!("{url}/api/v1/orchestrator/deployments/{uuid}"))
                    .bearer_auth(TOKEN)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        gets.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (creates, gets, errors)
        }));
    }
    let mut figures = Figures {
        creates: Vec::new(),
        gets: Vec::new(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        if let Ok((c, g, e)) = task.await {
            figures.creates.extend(c);
            figures.gets.extend(g);
            figures.errors += e;
        }
    }
    figures.elapsed = started.elapsed();
    figures
}

async fn bench(name: &str, kv: Arc<dyn KvStore>, concurrency: usize, seconds: u64) {
    let app = serrano_ro_api::router(kv, vec![Secret::new(TOKEN)], 4 << 20);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serrano_service::serve(app, listener, None, async move {
        let _ = stopped.await;
    }));
    let mut f = run_load(url, concurrency, seconds).await;
    let _ = stop.send(());
    let _ = server.await;
    f.creates.sort();
    f.gets.sort();
    let secs = f.elapsed.as_secs_f64();
    println!(
        "{name:<9} {concurrency:>5} {:>10.0} {:>9.0} {:>14.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>6}",
        f.creates.len() as f64 / secs,
        f.gets.len() as f64 / secs,
        (f.creates.len() + f.gets.len()) as f64 / secs,
        percentile(&f.creates, 0.5),
        percentile(&f.creates, 0.99),
        percentile(&f.gets, 0.5),
        percentile(&f.gets, 0.99),
        f.errors,
    );
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let concurrency: usize = std::env::var("BENCH_CONCURRENCY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    println!(
        "ro-api create+get over HTTP, {concurrency} concurrent clients, {seconds} s per backend, {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!(
        "{:<9} {:>5} {:>10} {:>9} {:>14} {:>8} {:>8} {:>8} {:>8} {:>6}",
        "backend",
        "conc",
        "creates/s",
        "gets/s",
        "requests/s",
        "c p50ms",
        "c p99ms",
        "g p50ms",
        "g p99ms",
        "errors"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let embedded = EmbeddedStore::open(dir.path()).expect("embedded store");
    bench("embedded", Arc::new(embedded), concurrency, seconds).await;

    match std::env::var("SERRANO_TEST_ETCD_ENDPOINTS") {
        Ok(list) => {
            let endpoints: Vec<String> = list.split(',').map(str::to_owned).collect();
            let etcd = EtcdStore::connect(&endpoints, Duration::from_secs(5))
                .await
                .expect("etcd");
            bench("etcd", Arc::new(etcd.clone()), concurrency, seconds).await;
            let _ = etcd
                .delete_prefix("/serrano/orchestrator/deployments/")
                .await;
        }
        Err(_) => println!("etcd      skipped (set SERRANO_TEST_ETCD_ENDPOINTS)"),
    }
}

//! End-to-end telemetry latency with 1,000 simulated probes: probe → agent → CTH.
//!
//! Everything runs in this process on the embedded backends (the defaults of `serrano up`):
//! one HTTP server plays 1,000 host probes (`/p/{i}/api/v1/telemetry/probe/...`), the agent
//! polls them, the CTH proxies live calls through the agent. Prints:
//! - registration of 1,000 probes (requests/s);
//! - one polling round over all probes (state + history of every probe stored), 3 rounds;
//! - `GET /api/v1/telemetry/central/clusters/monitor/{uuid}` (CTH → agent → probe → back)
//!   p50/p99/max with 32 concurrent clients;
//! - `GET .../clusters/metrics/{uuid}` (the stored latest state, from the operational DB).
//!
//! `cargo bench -p serrano-eta --bench probe_to_cth`; `BENCH_PROBES` (1000), `BENCH_REQUESTS` (4000).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Path;
use axum::routing::get;
use futures::StreamExt;
use serde_json::{Value, json};
use serrano_bus::EmbeddedStreamHandler;
use serrano_datastore::EmbeddedStore;
use serrano_docstore::{DocStore, EmbeddedDocStore};
use serrano_eta::{Agent, Backends, Config};
use serrano_service::Secret;
use serrano_timeseries::{EmbeddedOptions, EmbeddedTsdb, TimeSeriesStore};

const TOKEN: &str = "bench-token";

fn monitor(i: usize) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let cpu: serde_json::Map<String, Value> = (0..4)
        .flat_map(|c| {
            [
                (format!("cpu_{c}_idle"), json!(1000.0 + i as f64)),
                (format!("cpu_{c}_used"), json!(100.0 + c as f64)),
            ]
        })
        .collect();
    json!({"uuid": format!("probe-{i}"), "type": "Probe.Host", "host_monitoring_data": {"Nodes": [{
        "node_name": format!("node-{i}"), "timestamp": now,
        "general": {"node_boot_time_seconds": 1.7e9},
        "cpu": cpu,
        "memory": {"node_memory_MemTotal_bytes": 8.0e9, "node_memory_MemUsed_bytes": 2.0e9 + i as f64,
                   "node_memory_MemAvailable_bytes": 6.0e9, "node_memory_usage_percentage": 25.0},
        "storage": {"node_filesystem_size_bytes": 1.0e11, "node_filesystem_used_bytes": 5.0e10},
        "network": {"node_network_receive_bytes_total": 1.0e9, "node_network_transmit_bytes_total": 2.0e9}
    }]}})
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let probes: usize = std::env::var("BENCH_PROBES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let requests: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);

    // The simulated probes.
    let probe_app = axum::Router::new()
        .route(
            "/p/{i}/api/v1/telemetry/probe/monitor",
            get(|Path(i): Path<usize>| async move { axum::Json(monitor(i)) }),
        )
        .route(
            "/p/{i}/api/v1/telemetry/probe/inventory",
            get(|Path(i): Path<usize>| async move {
                axum::Json(json!({"nodes": [{"node_name": format!("node-{i}")}]}))
            }),
        );
    let probe_base = serve(probe_app).await;

    // Agent and CTH on one embedded operational DB, as in `serrano up`.
    let kv = Arc::new(EmbeddedStore::in_memory());
    let docs: Arc<dyn DocStore> = Arc::new(EmbeddedDocStore::new(kv, serrano_eta::DOCS_PREFIX));
    let series: Arc<dyn TimeSeriesStore> =
        Arc::new(EmbeddedTsdb::open(EmbeddedOptions::default()).unwrap());
    let bus = Arc::new(EmbeddedStreamHandler::open(None, 100_000).unwrap());
    let config = Config {
        agent_uuid: Some("bench-agent".into()),
        query_interval: 3600,
        query_timeout: 10,
        ..Config::default()
    };
    let agent_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let agent_address = agent_listener.local_addr().unwrap();
    let backends = Backends {
        docs: docs.clone(),
        series: series.clone(),
        bus: bus.clone(),
    };
    let agent = Arc::new(
        Agent::new(&config, backends, agent_address, agent_address)
            .await
            .unwrap(),
    );
    agent.announce().await;
    let agent_app = serrano_eta::router(agent.clone(), vec![Secret::new(TOKEN)], 4 << 20);
    tokio::spawn(async move { axum::serve(agent_listener, agent_app).await });
    let agent_base = format!("http://{agent_address}");

    let cth_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cth_base = format!(
        "http://{}/api/v1/telemetry/central",
        cth_listener.local_addr().unwrap()
    );
    let cth_config = serrano_cth::Config {
        agent_token: Some(Secret::new(TOKEN)),
        storage_gateway: None,
        active_monitoring: false,
        ..serrano_cth::Config::default()
    };
    tokio::spawn(serrano_cth::serve_with(
        cth_config,
        docs.clone(),
        bus,
        vec![Secret::new(TOKEN)],
        cth_listener,
        None,
        std::future::pending(),
    ));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    println!(
        "telemetry end to end: {probes} simulated probes, embedded backends, 2 worker threads"
    );
    // 1. Registration.
    let started = Instant::now();
    let clusters: Vec<String> = futures::stream::iter(0..probes)
        .map(|i| {
            let (http, agent_base, probe_base) = (http.clone(), agent_base.clone(), probe_base.clone());
            async move {
                let cluster = format!("cluster-{i:04}");
                let body = json!({"cluster_uuid": cluster, "probe_uuid": format!("probe-{i:04}"), "url": format!("{probe_base}/p/{i}"),
                                  "type": "Probe.Host", "inventory": {"nodes": [{"node_name": format!("node-{i}")}]}});
                let response = http.post(format!("{agent_base}/api/v1/telemetry/agent/register")).bearer_auth(TOKEN).json(&body).send().await.unwrap();
                assert!(response.status().is_success(), "registration failed: {}", response.status());
                cluster
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let elapsed = started.elapsed();
    println!(
        "  register {probes} probes: {:.2} s ({:.0} registrations/s)",
        elapsed.as_secs_f64(),
        probes as f64 / elapsed.as_secs_f64()
    );

    // 2. Polling rounds.
    for round in 1..=3 {
        let started = Instant::now();
        agent.poll_round().await.unwrap();
        let elapsed = started.elapsed();
        println!(
            "  polling round {round}: {:.3} s for {probes} probes ({:.0} probes/s, state + history stored)",
            elapsed.as_secs_f64(),
            probes as f64 / elapsed.as_secs_f64()
        );
    }

    // 3. Live monitoring through the CTH and the agent.
    for (label, path) in [
        (
            "live  GET /clusters/monitor/{uuid} (CTH→agent→probe)",
            "clusters/monitor",
        ),
        (
            "store GET /clusters/metrics/{uuid} (latest state)",
            "clusters/metrics",
        ),
    ] {
        let started = Instant::now();
        let mut latencies: Vec<Duration> = futures::stream::iter(0..requests)
            .map(|n| {
                let (http, cth_base, cluster) = (
                    http.clone(),
                    cth_base.clone(),
                    clusters[(n * 7919) % clusters.len()].clone(),
                );
                async move {
                    let t = Instant::now();
                    let response = http
                        .get(format!("{cth_base}/{path}/{cluster}"))
                        .bearer_auth(TOKEN)
                        .send()
                        .await
                        .unwrap();
                    let status = response.status();
                    let _ = response.bytes().await.unwrap();
                    assert!(status.is_success(), "{path}: {status}");
                    t.elapsed()
                }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        let elapsed = started.elapsed();
        latencies.sort();
        println!(
            "  {label}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({requests} requests, 32 concurrent)",
            requests as f64 / elapsed.as_secs_f64(),
            percentile(&latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        );
    }
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .unwrap_or(0);
    println!("  peak RSS of the whole process: {} MiB", rss / 1024);
}

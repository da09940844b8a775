//! FaaS figures of the kernel runner (issue aims: warm invocation overhead p99 ≤ 1 ms over HTTP,
//! cold start — process to first kernel — ≤ 500 ms on a GPU).
//!
//! `cargo bench -p serrano-kernel-runner --bench faas [-- --calls N --mode cpu|gpu|auto]`
//!
//! Warm: the runner serves on loopback in this process; one keep-alive client sends N tiny
//! inline invocations (min_max of one value) one after another; the round trip is the overhead.
//! Cold: `serrano-kernel run` as a fresh process per call (what an HPC job step pays), with the
//! device probe, module build and one kernel run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serrano_kernel_runner::invoke::Runner;
use serrano_kernels::{Mode, Registry, RegistryOptions};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn main() {
    let calls: usize = arg("--calls").and_then(|s| s.parse().ok()).unwrap_or(5000);
    let mode = arg("--mode").unwrap_or_else(|| "auto".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let registry = Registry::detect(RegistryOptions::default());
        registry.warm_up().unwrap();
        let devices = registry.devices();
        let runner = Runner {
            registry: Arc::new(registry),
            s3: None,
            broker: None,
            allow_local_files: false,
            default_mode: Mode::parse(&mode).unwrap(),
            input_wait: Duration::from_secs(1),
        };
        let token = "bench-token";
        let app = serrano_kernel_runner::router(Arc::new(runner), vec![serrano_service::Secret::new(token)], 1 << 20);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { serrano_service::serve(app, listener, None, std::future::pending()).await });
        let client = reqwest::Client::new();
        let url = format!("http://{addr}/function/min_max");
        let body = serde_json::json!({"inputs": {"data": [[1.0]]}, "mode": mode}).to_string();
        let mut lat = Vec::with_capacity(calls);
        let mut server_total = Vec::with_capacity(calls);
        for i in 0..calls + 200 {
            let t = Instant::now();
            let r = client
                .post(&url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            let v: serde_json::Value = r.json().await.unwrap();
            if i >= 200 {
                lat.push(t.elapsed());
                server_total.push(Duration::from_secs_f64(v["metrics"]["total_ms"].as_f64().unwrap() / 1e3));
            }
        }
        lat.sort();
        server_total.sort();
        println!("devices: {}", serde_json::to_string(&devices).unwrap());
        println!(
            "warm invocation over HTTP, {calls} calls (mode {mode}): round trip p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; \
             in-runner total p50 {:.3} ms, p99 {:.3} ms (aim: p99 <= 1 ms)",
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            percentile(&lat, 1.0),
            percentile(&server_total, 0.5),
            percentile(&server_total, 0.99),
        );
    });

    // Cold start: a fresh process per call.
    let dir = std::env::temp_dir().join(format!("serrano-faas-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("in.csv");
    std::fs::write(&input, "1\n2\n3\n").unwrap();
    let output = dir.join("out.csv");
    let bin = env!("CARGO_BIN_EXE_serrano-kernel");
    let mut cold = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let o = std::process::Command::new(bin)
            .args(["run", "min_max", "--mode", &mode, "--input"])
            .arg(&input)
            .arg("--output")
            .arg(&output)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        cold.push(t.elapsed());
    }
    cold.sort();
    println!(
        "cold start (process to first kernel result, mode {mode}), 10 runs: p50 {:.1} ms, max {:.1} ms (aim on a GPU: <= 500 ms)",
        percentile(&cold, 0.5),
        percentile(&cold, 1.0)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

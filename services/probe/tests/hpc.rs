//! The HPC probe against the real HPC gateway router mounted in-process (embedded datastore):
//! an infrastructure whose cluster cannot be reached, an unknown one, a wrong token; a
//! recorded-response gateway for the happy path; and, when `scripts/infra start slurm sshd`
//! provides them (`SERRANO_TEST_SLURM`, `SERRANO_TEST_SSH_*`), real Slurm over SSH.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use serrano_datastore::{EmbeddedStore, KvStore};
use serrano_probe::hpc::HpcConfig;
use serrano_probe::{Config, ProbeKind};
use serrano_service::Secret;

mod common;

use common::{PREFIX, app, get as probe_get, message};

const GATEWAY_TOKEN: &str = "gateway-token";

/// The real gateway on an ephemeral port with `infrastructures` registered.
async fn real_gateway(infrastructures: Vec<Value>, control_dir: &std::path::Path) -> String {
    let config = serrano_hpc_gateway::Config {
        infrastructures: infrastructures
            .into_iter()
            .map(|i| serde_json::from_value(i).unwrap())
            .collect(),
        ssh_control_dir: control_dir.to_path_buf(),
        ssh_connect_timeout_ms: 5000,
        ..serrano_hpc_gateway::Config::default()
    };
    let kv: Arc<dyn KvStore> = Arc::new(EmbeddedStore::in_memory());
    let gateway = Arc::new(serrano_hpc_gateway::Gateway::new(kv.clone(), &config));
    serrano_hpc_gateway::register_configured(&gateway, &config)
        .await
        .unwrap();
    let router =
        serrano_hpc_gateway::router(gateway, kv, vec![Secret::new(GATEWAY_TOKEN)], 1 << 20);
    common::serve(router).await
}

fn hpc_config(gateway_url: &str, infrastructure: &str, token: &str) -> Config {
    Config {
        kind: ProbeKind::Hpc,
        hpc: HpcConfig {
            gateway_url: gateway_url.to_owned(),
            token: Secret::new(token),
            infrastructure: infrastructure.to_owned(),
        },
        ..Config::default()
    }
}

fn control_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("prb")
        .tempdir_in("/tmp")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_failures_are_503_with_the_reason() {
    let control = control_dir();
    let unreachable = json!({"name": "hawk", "host": "127.0.0.1", "port": 1, "username": "hpc",
        "scheduler": "slurm", "ssh_key": {"path": "/nonexistent/key"}});
    let gateway = real_gateway(vec![unreachable], control.path()).await;

    // The gateway cannot reach the cluster (it answers 502): the probe's source is down.
    let (probe, app) = app(&hpc_config(&gateway, "hawk", GATEWAY_TOKEN));
    assert_eq!(probe.identity.name, "hawk");
    for path in ["/monitor", "/inventory"] {
        let (status, body) = probe_get(&app, &format!("{PREFIX}{path}")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        let text = message(&body);
        assert!(
            text.contains("hpc gateway") && text.contains("502"),
            "{text}"
        );
        assert!(text.contains("cluster_unreachable"), "{text}");
    }

    // An infrastructure the gateway does not know: its 404 is the probe's 503.
    let (_, app) = common::app(&hpc_config(&gateway, "missing", GATEWAY_TOKEN));
    let (status, body) = probe_get(&app, &format!("{PREFIX}/monitor")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(message(&body).contains("404"), "{body}");

    // A wrong token.
    let (_, app) = common::app(&hpc_config(&gateway, "hawk", "wrong"));
    let (status, body) = probe_get(&app, &format!("{PREFIX}/inventory")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(message(&body).contains("401"), "{body}");
    assert!(!message(&body).contains("wrong"), "{body}");

    // The gateway gone.
    let (_, app) = common::app(&hpc_config(&common::dead_url(), "hawk", GATEWAY_TOKEN));
    let (status, body) = probe_get(&app, &format!("{PREFIX}/monitor")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(message(&body).contains("hpc gateway: GET"), "{body}");
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {GATEWAY_TOKEN}"))
}

/// What the gateway answers for a two-partition Slurm system (recorded shapes).
async fn recorded_gateway() -> String {
    let app = axum::Router::new()
        .route(
            "/services",
            get(|headers: HeaderMap| async move {
                if !authorized(&headers) {
                    return StatusCode::UNAUTHORIZED.into_response();
                }
                Json(json!([
                    {"name": "kalman", "description": "Kalman filter", "params": {"r": {"type": "number"}}},
                    {"name": "fft", "description": "Fast Fourier transform", "params": {}}
                ]))
                .into_response()
            }),
        )
        .route(
            "/infrastructure/hawk/telemetry",
            get(|headers: HeaderMap| async move {
                if !authorized(&headers) {
                    return StatusCode::UNAUTHORIZED.into_response();
                }
                let telemetry: Response = Json(json!({
                    "name": "hawk", "host": "hawk-login.hlrs.de", "hostname": "hawk", "scheduler": "slurm",
                    "partitions": [
                        {"name": "debug", "total_nodes": 4, "avail_nodes": 1, "total_cpus": 512,
                         "avail_cpus": 128, "running_jobs": 3, "queued_jobs": 2},
                        {"name": "gpu", "total_nodes": 2, "avail_nodes": 2, "total_cpus": 96,
                         "avail_cpus": 96, "running_jobs": 0, "queued_jobs": 0}
                    ]
                }))
                .into_response();
                telemetry
            }),
        );
    common::serve(app).await
}

#[tokio::test]
async fn inventory_and_monitor_of_an_infrastructure() {
    let gateway = recorded_gateway().await;
    let (probe, app) = app(&hpc_config(&gateway, "hawk", GATEWAY_TOKEN));
    let (status, body) = probe_get(&app, &format!("{PREFIX}/inventory")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "name": "hawk", "scheduler": "slurm",
            "services": [{"name": "kalman", "description": "Kalman filter"},
                         {"name": "fft", "description": "Fast Fourier transform"}],
            "partitions": [{"name": "debug", "total_nodes": 4, "total_cpus": 512},
                           {"name": "gpu", "total_nodes": 2, "total_cpus": 96}]
        })
    );
    let (status, body) = probe_get(&app, &format!("{PREFIX}/monitor")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "uuid": probe.identity.probe_uuid, "type": "Probe.HPC",
            "hpc_monitoring_data": {"name": "hawk", "scheduler": "slurm", "partitions": [
                {"name": "debug", "total_nodes": 4, "avail_nodes": 1, "total_cpus": 512,
                 "avail_cpus": 128, "running_jobs": 3, "queued_jobs": 2},
                {"name": "gpu", "total_nodes": 2, "avail_nodes": 2, "total_cpus": 96,
                 "avail_cpus": 96, "running_jobs": 0, "queued_jobs": 0}]}
        })
    );
    // Targets do not change an HPC answer.
    let (_, applications) = probe_get(&app, &format!("{PREFIX}/monitor?target=applications")).await;
    assert_eq!(
        applications["hpc_monitoring_data"],
        body["hpc_monitoring_data"]
    );
    let (status, body) = probe_get(&app, &format!("{PREFIX}/application?deployment=x")).await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_slurm_through_the_gateway() {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (Some(_), Some(key)) = (get("SERRANO_TEST_SLURM"), get("SERRANO_TEST_SSH_KEY")) else {
        assert!(
            std::env::var("SERRANO_REQUIRE_REAL_SERVERS").as_deref() != Ok("1"),
            "Slurm and sshd are required (SERRANO_REQUIRE_REAL_SERVERS=1) but SERRANO_TEST_SLURM / SERRANO_TEST_SSH_KEY are not set"
        );
        eprintln!("skipped: run through scripts/test (needs scripts/infra start slurm sshd)");
        return;
    };
    let control = control_dir();
    let infrastructure = json!({
        "name": "local", "host": get("SERRANO_TEST_SSH_HOST").unwrap_or_else(|| "127.0.0.1".into()),
        "port": get("SERRANO_TEST_SSH_PORT").and_then(|p| p.parse::<u16>().ok()).unwrap_or(2222),
        "username": get("SERRANO_TEST_SSH_USER").unwrap_or_else(|| "hpc".into()),
        "hostname": "vm", "scheduler": "slurm",
        "ssh_key": {"type": "ssh-ed25519", "path": key},
        "known_hosts": get("SERRANO_TEST_SSH_KNOWN_HOSTS").expect("SERRANO_TEST_SSH_KNOWN_HOSTS"),
    });
    let gateway = real_gateway(vec![infrastructure], control.path()).await;
    let (_, app) = app(&hpc_config(&gateway, "local", GATEWAY_TOKEN));
    let (status, body) = probe_get(&app, &format!("{PREFIX}/monitor")).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["hpc_monitoring_data"];
    assert_eq!(data["name"], "local");
    assert_eq!(data["scheduler"], "slurm");
    let debug = data["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "debug")
        .unwrap_or_else(|| panic!("no debug partition in {body}"));
    assert_eq!(debug["total_nodes"], 1);
    assert!(debug["total_cpus"].as_u64().unwrap() >= 1);
    assert!(debug["avail_cpus"].as_u64().unwrap() <= debug["total_cpus"].as_u64().unwrap());
    let (status, inventory) = probe_get(&app, &format!("{PREFIX}/inventory")).await;
    assert_eq!(status, 200, "{inventory}");
    assert!(
        inventory["services"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "kalman")
    );
    assert!(
        inventory["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "debug")
    );
}

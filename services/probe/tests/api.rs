//! The probe's routes in-process on the host kind: auth, ping, inventory, monitor targets, the
//! collection settings on both paths, bad input, `/metrics`. The host probe reads this very
//! machine, and a fixture procfs for exact values.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use serrano_probe::host::HostConfig;
use serrano_probe::{Config, ProbeKind};

mod common;

use common::{PREFIX, TOKEN, app, call, get, message, post};

fn host_config() -> Config {
    Config {
        kind: ProbeKind::Host,
        ..Config::default()
    }
}

#[tokio::test]
async fn every_route_needs_the_token() {
    let (_, app) = app(&host_config());
    for (method, path) in [
        (Method::GET, "/ping"),
        (Method::GET, "/inventory"),
        (Method::GET, "/monitor"),
        (Method::GET, "/application?deployment=x"),
        (Method::GET, "/collection"),
        (Method::POST, "/collection"),
        (Method::GET, ""),
        (Method::POST, ""),
        (Method::PUT, ""),
        (Method::GET, "/streaming"),
        (Method::POST, "/streaming"),
        (Method::DELETE, "/streaming/s1"),
    ] {
        for token in [None, Some("wrong")] {
            let path = format!("{PREFIX}{path}");
            let (status, body) = call(&app, method.clone(), &path, Some(json!({})), token).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            assert_eq!(body["error"]["code"], "unauthorized");
        }
    }
    let (status, _) = call(&app, Method::GET, "/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn ping_names_the_probe() {
    let (probe, app) = app(&host_config());
    let (status, body) = get(&app, &format!("{PREFIX}/ping")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["uuid"], probe.identity.probe_uuid.to_string());
    assert_eq!(body["type"], "Probe.Host");
    assert_eq!(body["status"], "UP");
    let now = serrano_probe::unix_now();
    let timestamp = body["timestamp"].as_i64().unwrap();
    assert!((now - timestamp).abs() <= 2, "{timestamp} vs {now}");
}

#[tokio::test]
async fn host_inventory_and_monitor_of_this_machine() {
    let (probe, app) = app(&host_config());
    let hostname = serrano_probe::hostname();
    assert_eq!(probe.identity.name, hostname);

    let (status, inventory) = get(&app, &format!("{PREFIX}/inventory")).await;
    assert_eq!(status, StatusCode::OK, "{inventory}");
    let nodes = inventory["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1);
    let node = &nodes[0];
    assert_eq!(node["node_name"], hostname);
    assert_eq!(node["node_role"], "worker");
    assert_eq!(
        node["node_labels"],
        json!({"vaccel": "false", "security-tier": 0})
    );
    let cpus = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    assert_eq!(node["node_capacity"]["cpu"], json!(cpus));
    let memory: u64 = node["node_capacity"]["memory"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(memory > 64 << 20);
    assert!(
        node["node_capacity"]["node_storage"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    assert_eq!(node["node_capacity"]["total_gpu"], 0);
    assert_eq!(node["node_capacity"]["total_fpga"], 0);
    assert_eq!(node["node_info"]["operating_system"], "linux");
    assert!(
        !node["node_info"]["kernel_version"]
            .as_str()
            .unwrap()
            .is_empty()
    );

    let (status, monitor) = get(&app, &format!("{PREFIX}/monitor")).await;
    assert_eq!(status, StatusCode::OK, "{monitor}");
    assert_eq!(monitor["type"], "Probe.Host");
    assert_eq!(monitor["uuid"], probe.identity.probe_uuid.to_string());
    let nodes = monitor["host_monitoring_data"]["Nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1);
    let node = &nodes[0];
    assert_eq!(node["node_name"], hostname);
    assert!(node.get("up").is_none());
    assert_eq!(node["cpu"]["node_cpus"], json!(cpus as f64));
    for cpu in 0..cpus {
        assert!(node["cpu"][format!("cpu_{cpu}_idle")].as_f64().unwrap() >= 0.0);
        assert!(node["cpu"][format!("cpu_{cpu}_used")].as_f64().unwrap() > 0.0);
    }
    let mem = &node["memory"];
    for key in [
        "node_memory_Buffers_bytes",
        "node_memory_Cached_bytes",
        "node_memory_MemAvailable_bytes",
        "node_memory_MemFree_bytes",
        "node_memory_MemTotal_bytes",
        "node_memory_MemUsed_bytes",
        "node_memory_usage_percentage",
    ] {
        assert!(mem[key].is_number(), "{key} in {mem}");
    }
    assert_eq!(
        mem["node_memory_MemTotal_bytes"].as_f64().unwrap(),
        memory as f64
    );
    let percentage = mem["node_memory_usage_percentage"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&percentage));
    assert_eq!(node["storage"].as_object().unwrap().len(), 5);
    assert_eq!(node["network"].as_object().unwrap().len(), 8);
    assert!(node["general"]["node_boot_time_seconds"].as_f64().unwrap() > 1.0e9);
    assert!(node["general"].get("node_total_running_pods").is_none());

    // Targets: applications has no nodes on a host; resources is the same as all.
    let (status, body) = get(&app, &format!("{PREFIX}/monitor?target=applications")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["host_monitoring_data"], json!({}));
    let (status, body) = get(&app, &format!("{PREFIX}/monitor?target=resources")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["host_monitoring_data"]["Nodes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn host_figures_come_from_procfs() {
    let dir = tempfile::tempdir().unwrap();
    let proc_dir = dir.path().join("proc");
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    write(
        &proc_dir.join("stat"),
        "cpu  300 0 100 1000 0 0 0 0 0 0\ncpu0 200 0 50 600 10 5 5 0 0 0\ncpu1 100 0 50 400 0 0 0 0 0 0\n\
         btime 1700000000\n",
    );
    write(
        &proc_dir.join("meminfo"),
        "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 400 kB\nBuffers: 50 kB\nCached: 200 kB\n",
    );
    write(
        &proc_dir.join("net/dev"),
        "h1\nh2\n  lo: 9 9 9 9 0 0 0 0 9 9 9 9 0 0 0 0\n eth0: 100 10 1 2 0 0 0 0 200 20 3 4 0 0 0 0\n",
    );
    write(&proc_dir.join("sys/kernel/hostname"), "fixture-host\n");
    write(&proc_dir.join("sys/kernel/osrelease"), "6.1.0-test\n");
    write(
        &dir.path().join("os-release"),
        "PRETTY_NAME=\"Fixture OS 1\"\n",
    );
    let config = Config {
        kind: ProbeKind::Host,
        name: "fixture".to_owned(),
        host: HostConfig {
            proc_dir,
            filesystem: dir.path().to_path_buf(),
            os_release: dir.path().join("os-release"),
        },
        ..Config::default()
    };
    let (probe, app) = app(&config);
    assert_eq!(probe.identity.name, "fixture");
    let (status, body) = get(&app, &format!("{PREFIX}/monitor")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let node = &body["host_monitoring_data"]["Nodes"][0];
    assert_eq!(node["node_name"], "fixture-host");
    assert_eq!(node["general"]["node_boot_time_seconds"], 1.7e9);
    assert_eq!(node["cpu"]["cpu_0_idle"], 610.0 / ticks);
    assert_eq!(node["cpu"]["cpu_0_used"], 260.0 / ticks);
    assert_eq!(node["cpu"]["cpu_1_idle"], 400.0 / ticks);
    assert_eq!(node["cpu"]["node_cpus"], 2.0);
    assert_eq!(node["memory"]["node_memory_MemTotal_bytes"], 1_024_000.0);
    assert_eq!(node["memory"]["node_memory_MemUsed_bytes"], 614_400.0);
    assert_eq!(node["memory"]["node_memory_usage_percentage"], 60.0);
    assert_eq!(node["network"]["node_network_receive_bytes_total"], 100.0);
    assert_eq!(node["network"]["node_network_transmit_drop_total"], 4.0);
    let size = node["storage"]["node_filesystem_size_bytes"]
        .as_f64()
        .unwrap();
    assert!(size > 0.0);

    let (_, inventory) = get(&app, &format!("{PREFIX}/inventory")).await;
    let node = &inventory["nodes"][0];
    assert_eq!(node["node_capacity"]["cpu"], 2);
    assert_eq!(node["node_capacity"]["memory"], "1024000");
    assert_eq!(node["node_info"]["os_image"], "Fixture OS 1");
    assert_eq!(node["node_info"]["kernel_version"], "6.1.0-test");

    // A procfs that cannot be read is a source failure: 503 with the reason.
    std::fs::remove_file(dir.path().join("proc/meminfo")).unwrap();
    let (status, body) = get(&app, &format!("{PREFIX}/monitor")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "unavailable");
    assert!(message(&body).contains("meminfo"), "{body}");
}

#[tokio::test]
async fn bad_queries_are_rejected() {
    let (_, app) = app(&host_config());
    for (path, needle) in [
        ("/monitor?target=everything", "target"),
        ("/monitor?targte=all", "targte"),
        ("/monitor?device_name=d0", "edge storage"),
        ("/application", "deployment"),
        ("/application?deployment=", "deployment"),
    ] {
        let (status, body) = get(&app, &format!("{PREFIX}{path}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(message(&body).contains(needle), "{path}: {body}");
    }
    let (status, body) = get(&app, &format!("{PREFIX}/application?deployment=web")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(message(&body).contains("Kubernetes"), "{body}");
    let (status, body) = get(&app, &format!("{PREFIX}/nothing")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("{PREFIX}/monitor"),
        None,
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn collection_settings_on_both_paths() {
    let (probe, app) = app(&host_config());
    let (status, body) = get(&app, &format!("{PREFIX}/collection")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"query_interval": 60, "query_timeout": 5.0, "active_monitoring": true})
    );

    // D6.7 4.4.3.2: POST /api/v1/telemetry/probe {"query_interval": 60}.
    let (status, body) = post(&app, PREFIX, json!({"query_interval": 30})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["query_interval"], 30);
    assert_eq!(probe.settings().query_interval, 30);
    let (status, body) = call(
        &app,
        Method::PUT,
        PREFIX,
        Some(json!({"query_timeout": 2.5, "active_monitoring": false})),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"query_interval": 30, "query_timeout": 2.5, "active_monitoring": false})
    );
    let (status, body) = post(
        &app,
        &format!("{PREFIX}/collection"),
        json!({"active_monitoring": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["active_monitoring"], true);
    let (_, body) = get(&app, PREFIX).await;
    assert_eq!(body["query_timeout"], 2.5);

    for (body, needle) in [
        (json!({"query_interval": 0}), "query_interval"),
        (json!({"query_interval": 86401}), "query_interval"),
        (json!({"query_interval": -1}), "query_interval"),
        (json!({"query_interval": "60"}), "query_interval"),
        (json!({"query_timeout": 0}), "query_timeout"),
        (json!({"query_timeout": 301}), "query_timeout"),
        (json!({"retain": 1}), "retain"),
        (json!({}), "nothing to change"),
    ] {
        let (status, answer) = post(&app, &format!("{PREFIX}/collection"), body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(message(&answer).contains(needle), "{body}: {answer}");
    }
    // Nothing of the rejected updates stuck.
    assert_eq!(probe.settings().query_interval, 30);
    let (status, body) = call(
        &app,
        Method::POST,
        &format!("{PREFIX}/collection"),
        None,
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
}

#[tokio::test]
async fn metrics_and_readiness() {
    let (_, app) = app(&host_config());
    let (status, body) = get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let text = body.as_str().unwrap();
    for line in [
        "probe_source_up 1",
        "probe_registered 0",
        "probe_streaming_sessions 0",
        "# TYPE probe_source_failures_total counter",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
    }
    let (status, body) = call(&app, Method::GET, "/ready", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, doc) = get(&app, "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["paths"]
            .as_object()
            .unwrap()
            .contains_key("/api/v1/telemetry/probe/monitor")
    );
    let _: Value = doc;
}

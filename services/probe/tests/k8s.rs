//! The Kubernetes probe against a recorded-response API server: no Kubernetes API server can
//! run on the build machine, so an axum app serves realistic documents for the paths the probe
//! reads (nodes, pods in two pages, deployments, persistent volumes, pod metrics) behind a
//! bearer token, and node-exporter text on each worker's InternalIP (127.0.0.1, 127.0.0.2; the
//! third worker's exporter at 127.0.0.3 does not answer).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use serrano_probe::k8s::K8sConfig;
use serrano_probe::{Config, ProbeKind};
use serrano_service::Secret;

mod common;

use common::{PREFIX, app, dead_url, get as probe_get, message};

const K8S_TOKEN: &str = "k8s-service-account-token";
/// A continue token with characters that must be escaped in a query string.
const CONTINUE: &str = "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTIzfQ==+/";

#[derive(Clone, Default)]
struct Api {
    /// When set, the metrics API answers 404 (no metrics server installed).
    no_metrics_server: Arc<AtomicBool>,
}

/// The API server's 401 answer when the token is not the service account's.
fn denied(headers: &HeaderMap) -> Option<Response> {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {K8S_TOKEN}"))
    {
        None
    } else {
        Some(
            (
                StatusCode::UNAUTHORIZED,
                Json(
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": "Unauthorized", "reason": "Unauthorized", "code": 401}),
                ),
            )
                .into_response(),
        )
    }
}

fn node(name: &str, ip: &str, labels: Value, capacity: Value) -> Value {
    json!({
        "metadata": {"name": name, "uid": "3f9d1c1e-0000-4000-8000-000000000001", "labels": labels,
            "creationTimestamp": "2023-05-02T09:12:44Z"},
        "spec": {"podCIDR": "10.244.1.0/24"},
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "nodeInfo": {"machineID": "ab12", "kernelVersion": "5.15.0-88-generic",
                "osImage": "Ubuntu 22.04.3 LTS", "containerRuntimeVersion": "containerd://1.7.2",
                "kubeletVersion": "v1.28.2", "operatingSystem": "linux", "architecture": "amd64"},
            "conditions": [{"type": "Ready", "status": "True"}]
        }
    })
}

async fn nodes(headers: HeaderMap) -> Response {
    if let Some(denied) = denied(&headers) {
        return denied;
    }
    let worker_capacity = json!({"cpu": "4", "memory": "8131352Ki", "ephemeral-storage": "61202244Ki",
        "pods": "110", "hugepages-2Mi": "0"});
    Json(json!({
        "kind": "NodeList", "apiVersion": "v1", "metadata": {"resourceVersion": "123456"},
        "items": [
            node("serrano-k8s-master", "127.0.0.1",
                json!({"kubernetes.io/hostname": "serrano-k8s-master", "node-role.kubernetes.io/control-plane": ""}),
                worker_capacity.clone()),
            node("serrano-k8s-worker-01", "127.0.0.1",
                json!({"kubernetes.io/hostname": "serrano-k8s-worker-01", "vaccel": "true", "security-tier": "2"}),
                json!({"cpu": "8", "memory": "32780328Ki", "ephemeral-storage": "102626232Ki",
                    "nvidia.com/gpu": "1", "pods": "110"})),
            node("serrano-k8s-worker-02", "127.0.0.2",
                json!({"kubernetes.io/hostname": "serrano-k8s-worker-02"}), worker_capacity.clone()),
            node("serrano-k8s-worker-03", "127.0.0.3",
                json!({"kubernetes.io/hostname": "serrano-k8s-worker-03",
                    "xilinx.com/fpga": "present"}),
                json!({"cpu": "16", "memory": "64Gi", "xilinx.com/fpga-xilinx_u280": "2"})),
        ]
    }))
    .into_response()
}

fn pod(
    name: &str,
    namespace: &str,
    node: &str,
    phase: &str,
    labels: Value,
    restarts: &[u64],
) -> Value {
    let statuses: Vec<Value> = restarts
        .iter()
        .enumerate()
        .map(|(i, r)| json!({"name": format!("c{i}"), "ready": true, "restartCount": r}))
        .collect();
    json!({
        "metadata": {"name": name, "namespace": namespace, "labels": labels,
            "creationTimestamp": "2023-11-30T14:40:01Z", "ownerReferences": [{"kind": "ReplicaSet"}]},
        "spec": {"nodeName": node, "containers": [{"name": "c0", "image": "nginx:1.25"}]},
        "status": {"phase": phase, "hostIP": "10.0.0.12", "podIP": "10.244.1.17",
            "startTime": "2023-11-30T14:40:02Z", "containerStatuses": statuses}
    })
}

async fn pods(headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Response {
    if let Some(denied) = denied(&headers) {
        return denied;
    }
    assert_eq!(query.get("limit").map(String::as_str), Some("500"));
    let web = |extra: &str| {
        json!({"app": "web", "pod-template-hash": extra,
            "serrano_deployment_uuid": "fdf45855-1299-47f1-8ea6-98be8d89030b", "group_id": "s2"})
    };
    // Two pages: the probe must follow `continue`.
    match query.get("continue").map(String::as_str) {
        None => Json(json!({
            "kind": "PodList", "apiVersion": "v1",
            "metadata": {"resourceVersion": "9", "continue": CONTINUE},
            "items": [
                pod("web-7d4b9c-abcde", "default", "serrano-k8s-worker-01", "Running", web("7d4b9c"), &[0, 2]),
                pod("web-7d4b9c-fghij", "default", "serrano-k8s-worker-02", "Running", web("7d4b9c"), &[1]),
            ]
        }))
        .into_response(),
        Some(token) if token == CONTINUE => Json(json!({
            "kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "9"},
            "items": [
                pod("db-0", "default", "serrano-k8s-worker-01", "Pending", json!({"app": "db"}), &[]),
                pod("web-other-0", "team-b", "serrano-k8s-worker-01", "Running", json!({"app": "web"}), &[0]),
                pod("kube-proxy-x1", "kube-system", "serrano-k8s-master", "Running", json!({"k8s-app": "kube-proxy"}), &[0]),
            ]
        }))
        .into_response(),
        Some(other) => (StatusCode::GONE, format!("unknown continue token {other}")).into_response(),
    }
}

async fn deployments(headers: HeaderMap) -> Response {
    if let Some(denied) = denied(&headers) {
        return denied;
    }
    Json(json!({
        "kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": {},
        "items": [
            {"metadata": {"name": "web", "namespace": "default"},
             "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}},
             "status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "updatedReplicas": 2}},
            {"metadata": {"name": "db", "namespace": "default"},
             "spec": {"replicas": 1, "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["db"]}]}},
             "status": {"replicas": 1, "unavailableReplicas": 1}},
        ]
    }))
    .into_response()
}

async fn volumes(headers: HeaderMap) -> Response {
    if let Some(denied) = denied(&headers) {
        return denied;
    }
    Json(json!({
        "kind": "PersistentVolumeList", "apiVersion": "v1", "metadata": {},
        "items": [
            {"metadata": {"name": "pvc-4f1e"}, "spec": {"capacity": {"storage": "10Gi"},
                "accessModes": ["ReadWriteOnce"]}, "status": {"phase": "Bound"}},
            {"metadata": {"name": "nfs-data"}, "spec": {"capacity": {"storage": "500M"}}},
        ]
    }))
    .into_response()
}

async fn pod_metrics(State(api): State<Api>, headers: HeaderMap) -> Response {
    if let Some(denied) = denied(&headers) {
        return denied;
    }
    if api.no_metrics_server.load(Ordering::Relaxed) {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"kind": "Status", "code": 404, "message": "the server could not find the requested resource"})),
        )
            .into_response();
    }
    Json(json!({
        "kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {},
        "items": [
            {"metadata": {"name": "web-7d4b9c-abcde", "namespace": "default"},
             "timestamp": "2023-11-30T14:42:34Z", "window": "15s",
             "containers": [{"name": "c0", "usage": {"cpu": "1002310835n", "memory": "150672Ki"}},
                            {"name": "c1", "usage": {"cpu": "500m", "memory": "1Gi"}}]},
            {"metadata": {"name": "web-7d4b9c-fghij", "namespace": "default"},
             "containers": [{"name": "c0", "usage": {"cpu": "2", "memory": "1e3"}}]},
        ]
    }))
    .into_response()
}

fn exporter_text(cpus: usize, scale: f64) -> String {
    let mut text = String::from(
        "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n# TYPE node_cpu_seconds_total counter\n",
    );
    for cpu in 0..cpus {
        for (mode, value) in [
            ("idle", 508_444.15),
            ("iowait", 10.0),
            ("irq", 0.0),
            ("nice", 1.0),
            ("softirq", 2.0),
            ("steal", 0.0),
            ("system", 4000.0),
            ("user", 20_000.0),
        ] {
            text.push_str(&format!(
                "node_cpu_seconds_total{{cpu=\"{cpu}\",mode=\"{mode}\"}} {}\n",
                value * scale
            ));
        }
    }
    text.push_str(&format!(
        "# TYPE node_boot_time_seconds gauge\nnode_boot_time_seconds 1.700001e+09\n\
         node_memory_Buffers_bytes 2.1e+08\nnode_memory_Cached_bytes 3.3e+09\n\
         node_memory_MemAvailable_bytes {}\nnode_memory_MemFree_bytes 3.352383488e+09\n\
         node_memory_MemTotal_bytes 8.331374592e+09\n\
         node_filesystem_avail_bytes{{device=\"/dev/sda1\",fstype=\"ext4\",mountpoint=\"/\"}} 4.0e+10\n\
         node_filesystem_free_bytes{{device=\"/dev/sda1\",fstype=\"ext4\",mountpoint=\"/\"}} 4.5e+10\n\
         node_filesystem_size_bytes{{device=\"/dev/sda1\",fstype=\"ext4\",mountpoint=\"/\"}} 1.0e+11\n\
         node_filesystem_size_bytes{{device=\"/dev/sda15\",fstype=\"vfat\",mountpoint=\"/boot/efi\"}} 1.09422592e+08\n\
         node_network_receive_bytes_total{{device=\"lo\"}} 9.9e+09\n\
         node_network_receive_bytes_total{{device=\"eth0\"}} 1.2e+09\n\
         node_network_receive_bytes_total{{device=\"cni0\"}} 3.0e+08\n\
         node_network_transmit_bytes_total{{device=\"eth0\"}} 7.0e+08\n\
         node_network_receive_packets_total{{device=\"eth0\"}} 1000\n\
         node_network_transmit_packets_total{{device=\"eth0\"}} 900\n\
         node_network_receive_errs_total{{device=\"eth0\"}} 1\nnode_network_transmit_errs_total{{device=\"eth0\"}} 2\n\
         node_network_receive_drop_total{{device=\"eth0\"}} 3\nnode_network_transmit_drop_total{{device=\"eth0\"}} 4\n\
         go_goroutines 8\n",
        6.750740480e9 * scale
    ));
    text
}

struct Cluster {
    api_url: String,
    exporter_port: u16,
    api: Api,
}

async fn cluster() -> Cluster {
    let api = Api::default();
    let app = axum::Router::new()
        .route("/api/v1/nodes", get(nodes))
        .route("/api/v1/pods", get(pods))
        .route("/apis/apps/v1/deployments", get(deployments))
        .route("/api/v1/persistentvolumes", get(volumes))
        .route("/apis/metrics.k8s.io/v1beta1/pods", get(pod_metrics))
        .with_state(api.clone());
    let api_url = common::serve(app).await;
    // Worker 1 (and the master) on 127.0.0.1, worker 2 on 127.0.0.2, the same port.
    let first = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = first.local_addr().unwrap().port();
    let second = tokio::net::TcpListener::bind(("127.0.0.2", port))
        .await
        .unwrap();
    for (listener, text) in [
        (first, exporter_text(8, 1.0)),
        (second, exporter_text(4, 2.0)),
    ] {
        let app = axum::Router::new().route("/metrics", get(move || async move { text }));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }
    Cluster {
        api_url,
        exporter_port: port,
        api,
    }
}

fn k8s_config(cluster: &Cluster) -> Config {
    Config {
        kind: ProbeKind::K8s,
        cluster_uuid: Some("7628b895-3a91-4f0c-b0b7-033eab309891".parse().unwrap()),
        k8s: K8sConfig {
            api_url: cluster.api_url.clone(),
            token: Secret::new(K8S_TOKEN),
            node_exporter_port: cluster.exporter_port,
            ..K8sConfig::default()
        },
        ..Config::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_lists_the_workers() {
    let cluster = cluster().await;
    let (_, app) = app(&k8s_config(&cluster));
    let (status, body) = probe_get(&app, &format!("{PREFIX}/inventory")).await;
    assert_eq!(status, 200, "{body}");
    let nodes = body["nodes"].as_array().unwrap();
    let names: Vec<&str> = nodes
        .iter()
        .map(|n| n["node_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "serrano-k8s-worker-01",
            "serrano-k8s-worker-02",
            "serrano-k8s-worker-03"
        ],
        "the control-plane node is skipped"
    );
    assert_eq!(
        nodes[0],
        json!({
            "node_name": "serrano-k8s-worker-01",
            "node_role": "worker",
            "node_labels": {"vaccel": "true", "security-tier": 2},
            "node_capacity": {"cpu": 8, "memory": (32_780_328u64 * 1024).to_string(), "total_gpu": 1,
                "total_fpga": 0, "node_storage": (102_626_232u64 * 1024).to_string()},
            "node_info": {"architecture": "amd64", "kernel_version": "5.15.0-88-generic",
                "os_image": "Ubuntu 22.04.3 LTS", "operating_system": "linux"}
        })
    );
    assert_eq!(
        nodes[1]["node_labels"],
        json!({"vaccel": "false", "security-tier": 0})
    );
    assert_eq!(nodes[2]["node_capacity"]["total_fpga"], 2);
    assert_eq!(
        nodes[2]["node_capacity"]["memory"],
        (64u64 << 30).to_string()
    );
    assert_eq!(nodes[2]["node_capacity"]["node_storage"], "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_reports_nodes_volumes_deployments_and_pods() {
    let cluster = cluster().await;
    let (probe, app) = app(&k8s_config(&cluster));
    let (status, body) = probe_get(&app, &format!("{PREFIX}/monitor")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["type"], "Probe.k8s");
    assert_eq!(body["uuid"], probe.identity.probe_uuid.to_string());
    let data = &body["kubernetes_monitoring_data"];

    let nodes = data["Nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    let w1 = &nodes[0];
    assert_eq!(w1["node_name"], "serrano-k8s-worker-01");
    assert!(w1.get("up").is_none());
    assert_eq!(w1["general"]["node_boot_time_seconds"], 1.700001e9);
    // web-7d4b9c-abcde and web-other-0 run there; db-0 is pending.
    assert_eq!(w1["general"]["node_total_running_pods"], 2.0);
    assert_eq!(w1["cpu"]["node_cpus"], 8.0);
    assert_eq!(w1["cpu"]["cpu_7_idle"], 508_444.15 + 10.0);
    assert_eq!(w1["cpu"]["cpu_0_used"], 24_003.0);
    assert_eq!(w1["memory"]["node_memory_MemTotal_bytes"], 8.331374592e9);
    assert_eq!(
        w1["memory"]["node_memory_MemUsed_bytes"],
        8.331374592e9 - 6.75074048e9
    );
    assert_eq!(w1["memory"]["node_memory_usage_percentage"], 18.97);
    assert_eq!(w1["storage"]["node_filesystem_size_bytes"], 1.0e11);
    assert_eq!(w1["storage"]["node_filesystem_used_bytes"], 5.5e10);
    assert_eq!(w1["storage"]["node_filesystem_usage_percentage"], 57.89);
    assert_eq!(w1["network"]["node_network_receive_bytes_total"], 1.5e9);
    assert_eq!(w1["network"]["node_network_transmit_drop_total"], 4.0);
    assert_eq!(w1["network"].as_object().unwrap().len(), 8);

    let w2 = &nodes[1];
    assert_eq!(w2["node_name"], "serrano-k8s-worker-02");
    assert_eq!(w2["cpu"]["node_cpus"], 4.0, "worker 2's own exporter");
    assert_eq!(w2["cpu"]["cpu_3_idle"], 508_444.15 * 2.0 + 20.0);
    assert_eq!(w2["general"]["node_total_running_pods"], 1.0);

    let w3 = &nodes[2];
    assert_eq!(w3["node_name"], "serrano-k8s-worker-03");
    assert_eq!(w3["up"], false);
    assert!(
        w3["error"]
            .as_str()
            .unwrap()
            .contains("node-exporter of serrano-k8s-worker-03"),
        "{w3}"
    );
    assert_eq!(w3["cpu"], json!({}));

    assert_eq!(
        data["PersistentVolumes"],
        json!([
            {"name": "pvc-4f1e", "capacity_storage": "10Gi", "capacity_storage_bytes": 10u64 << 30},
            {"name": "nfs-data", "capacity_storage": "500M", "capacity_storage_bytes": 500_000_000}
        ])
    );
    assert_eq!(
        data["Deployments"],
        json!([
            {"name": "web", "namespace": "default", "replicas": 2, "ready_replicas": 2, "available_replicas": 2},
            {"name": "db", "namespace": "default", "replicas": 1, "ready_replicas": 0, "available_replicas": 0}
        ])
    );
    let pods = data["Pods"].as_array().unwrap();
    assert_eq!(pods.len(), 5, "both pages");
    assert_eq!(
        pods[0],
        json!({
            "name": "web-7d4b9c-abcde", "namespace": "default", "creation_timestamp": "2023-11-30T14:40:01Z",
            "phase": "Running", "node": "serrano-k8s-worker-01",
            "serrano_deployment_uuid": "fdf45855-1299-47f1-8ea6-98be8d89030b", "group_id": "s2",
            "start_time": "2023-11-30T14:40:02Z", "pod_ip": "10.244.1.17", "host_ip": "10.0.0.12",
            "restarts": 2,
            "usage": {"cpu": "1502310835n", "memory": "1199248Ki"},
            "cpu_usage_nanocores": 1_502_310_835u64, "memory_usage_bytes": 1_228_029_952u64
        })
    );
    assert_eq!(
        pods[1]["usage"],
        json!({"cpu": "2000000000n", "memory": "1000"})
    );
    assert_eq!(pods[2]["name"], "db-0");
    assert_eq!(pods[2]["serrano_deployment_uuid"], Value::Null);
    assert!(pods[2].get("usage").is_none(), "no metrics for db-0");
    assert_eq!(pods[2]["restarts"], 0);

    // Targets.
    let (_, body) = probe_get(&app, &format!("{PREFIX}/monitor?target=resources")).await;
    let keys: Vec<&String> = body["kubernetes_monitoring_data"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys, ["Nodes", "PersistentVolumes"]);
    let (_, body) = probe_get(&app, &format!("{PREFIX}/monitor?target=applications")).await;
    let keys: Vec<&String> = body["kubernetes_monitoring_data"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys, ["Deployments", "Pods"]);

    // Without a metrics server, pods are still listed, without usage.
    cluster.api.no_metrics_server.store(true, Ordering::Relaxed);
    let (status, body) = probe_get(&app, &format!("{PREFIX}/monitor?target=applications")).await;
    assert_eq!(status, 200, "{body}");
    let pods = body["kubernetes_monitoring_data"]["Pods"]
        .as_array()
        .unwrap();
    assert_eq!(pods.len(), 5);
    assert!(
        pods.iter()
            .all(|p| p.get("usage").is_none() && p.get("cpu_usage_nanocores").is_none())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_selects_a_deployments_pods() {
    let cluster = cluster().await;
    let (_, app) = app(&k8s_config(&cluster));
    let (status, body) = probe_get(&app, &format!("{PREFIX}/application?deployment=web")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deployment"], "web");
    assert_eq!(body["type"], "Probe.k8s");
    let names: Vec<&str> = body["Pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // web-other-0 has the label but lives in another namespace.
    assert_eq!(names, ["web-7d4b9c-abcde", "web-7d4b9c-fghij"]);
    assert_eq!(body["Pods"][0]["cpu_usage_nanocores"], 1_502_310_835u64);

    let (status, body) = probe_get(
        &app,
        &format!("{PREFIX}/application?deployment=db&namespace=default"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Pods"].as_array().unwrap().len(), 1);
    assert_eq!(body["Pods"][0]["name"], "db-0");

    for path in [
        "/application?deployment=nope",
        "/application?deployment=web&namespace=team-b",
    ] {
        let (status, body) = probe_get(&app, &format!("{PREFIX}{path}")).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(message(&body).contains("no deployment"), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_failures_are_503_with_the_reason() {
    let cluster = cluster().await;
    let mut config = k8s_config(&cluster);
    config.k8s.token = Secret::new("expired");
    let (_, app) = common::app(&config);
    for path in ["/inventory", "/monitor", "/application?deployment=web"] {
        let (status, body) = probe_get(&app, &format!("{PREFIX}{path}")).await;
        assert_eq!(status, 503, "{path}: {body}");
        let text = message(&body);
        assert!(
            text.contains("kubernetes api") && text.contains("401"),
            "{text}"
        );
        assert!(
            !text.contains("expired"),
            "the token is never echoed: {text}"
        );
    }

    config.k8s.api_url = dead_url();
    let (_, app) = common::app(&config);
    let (status, body) = probe_get(&app, &format!("{PREFIX}/monitor")).await;
    assert_eq!(status, 503);
    assert!(message(&body).contains("GET http://127.0.0.1:"), "{body}");

    // The token from a file (as in a pod), read at every call.
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{K8S_TOKEN}\n")).unwrap();
    let mut config = k8s_config(&cluster);
    config.k8s.token = Secret::new("");
    config.k8s.token_file = Some(token_file.clone());
    let (_, app) = common::app(&config);
    let (status, _) = probe_get(&app, &format!("{PREFIX}/inventory")).await;
    assert_eq!(status, 200);
    std::fs::write(&token_file, "rotated-away").unwrap();
    let (status, _) = probe_get(&app, &format!("{PREFIX}/inventory")).await;
    assert_eq!(status, 503);
    std::fs::remove_file(&token_file).unwrap();
    let (status, body) = probe_get(&app, &format!("{PREFIX}/inventory")).await;
    assert_eq!(status, 503);
    assert!(message(&body).contains("token file"), "{body}");
}

//! Harness of the handler's API tests: the handler in-process on an ephemeral port over the
//! embedded operational DB (in-memory datastore) and the embedded stream log, a scripted fake
//! agent and a fake storage gateway (small axum apps that record what they are asked).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use serrano_bus::{EmbeddedStreamHandler, StreamHandler};
use serrano_cth::{Config, DOCS_PREFIX, StorageGatewayConfig};
use serrano_datastore::EmbeddedStore;
use serrano_docstore::{DocStore, EmbeddedDocStore};
use serrano_service::Secret;
use tokio::sync::oneshot;

pub const TOKEN: &str = "cth-test-token";
pub const AGENT_TOKEN: &str = "agent-test-token";
pub const GATEWAY_TOKEN: &str = "gateway-test-token";

pub const K8S: &str = "7628b895-3a91-4f0c-b0b7-033eab309891";
pub const K8S_2: &str = "5a075716-7d7d-4b40-9566-bc1a33ee70c2";
pub const HPC: &str = "b7143497-a168-4c8d-a899-8c56dccda8ad";
pub const EDGE: &str = "e1d9e0aa-0000-4000-8000-000000000001";
pub const HOST: &str = "a0570000-0000-4000-8000-000000000002";
pub const AGENT: &str = "agent-1";
pub const AGENT_2: &str = "agent-2";

/// A request a fake server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub authorization: Option<String>,
    pub body: Value,
}

/// How the fake agent answers.
#[derive(Debug, Clone)]
pub enum AgentMode {
    Ok,
    /// Every call answers this status with an error body.
    Fail(u16),
    /// Every call waits this long before answering.
    Slow(Duration),
}

#[derive(Clone)]
struct FakeState {
    recorded: Arc<Mutex<Vec<Recorded>>>,
    mode: Arc<Mutex<AgentMode>>,
}

/// A fake Enhanced Telemetry Agent.
pub struct FakeAgent {
    pub url: String,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    mode: Arc<Mutex<AgentMode>>,
    _stop: oneshot::Sender<()>,
}

impl FakeAgent {
    pub async fn start() -> FakeAgent {
        let state = FakeState {
            recorded: Arc::default(),
            mode: Arc::new(Mutex::new(AgentMode::Ok)),
        };
        let app = Router::new()
            .fallback(agent_answer)
            .with_state(state.clone());
        let (url, stop) = spawn(app).await;
        FakeAgent {
            url,
            recorded: state.recorded,
            mode: state.mode,
            _stop: stop,
        }
    }

    pub fn set_mode(&self, mode: AgentMode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn recorded(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap().clone()
    }
}

async fn agent_answer(
    State(state): State<FakeState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    state.recorded.lock().unwrap().push(Recorded {
        method: method.to_string(),
        path: path.clone(),
        query: uri.query().map(str::to_owned),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let mode = state.mode.lock().unwrap().clone();
    match mode {
        AgentMode::Ok => {}
        AgentMode::Fail(status) => {
            let status = StatusCode::from_u16(status).unwrap();
            return (
                status,
                axum::Json(
                    json!({"error": {"code": "x", "message": format!("agent says {status}")}}),
                ),
            )
                .into_response();
        }
        AgentMode::Slow(delay) => tokio::time::sleep(delay).await,
    }
    let prefix = "/api/v1/telemetry/agent";
    let rest = path.strip_prefix(prefix).unwrap_or("");
    if let Some(probe) = rest.strip_prefix("/inventory/") {
        return axum::Json(json!({"uuid": probe, "type": "Probe.k8s", "kubernetes_inventory_data": [{"node_name": "live-node"}]}))
            .into_response();
    }
    if let Some(probe) = rest.strip_prefix("/monitor/") {
        return axum::Json(json!({"uuid": probe, "type": "Probe.k8s", "target": uri.query(), "kubernetes_monitoring_data": {"Nodes": []}}))
            .into_response();
    }
    match (method.as_str(), rest) {
        ("POST", "/deployments") => (StatusCode::CREATED, axum::Json(json!({}))).into_response(),
        ("DELETE", r) if r.starts_with("/deployments/") => {
            (StatusCode::CREATED, axum::Json(json!({}))).into_response()
        }
        ("POST", "/streaming") => (
            StatusCode::CREATED,
            axum::Json(json!({"session_id": "session-1", "status": "started"})),
        )
            .into_response(),
        _ => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": {"code": "not_found", "message": "no route"}})),
        )
            .into_response(),
    }
}

/// How the fake storage gateway answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayMode {
    Up,
    Down,
}

#[derive(Clone)]
struct GatewayState {
    mode: Arc<Mutex<GatewayMode>>,
    calls: Arc<Mutex<Vec<Recorded>>>,
}

/// A fake storage gateway serving `/cloud_locations` and `/edge_locations`.
pub struct FakeGateway {
    pub url: String,
    mode: Arc<Mutex<GatewayMode>>,
    calls: Arc<Mutex<Vec<Recorded>>>,
    _stop: oneshot::Sender<()>,
}

pub fn cloud_locations() -> Value {
    json!([{"id": 25, "name": "azure-virginia", "location": "Virginia", "country": "United States",
        "countrycode": "US", "is_gdpr": false, "storage_price": 21.0, "download_price": 0.0,
        "upload_price": 0.0, "lat": 37.43, "lng": -78.65, "cloud_provider_name": "Microsoft Azure",
        "rtt_upload_1B_ms": [119.0], "available": true}])
}

pub fn edge_locations() -> Value {
    json!([
        {"id": 1, "name": "edge-storage-devices-0", "cluster": "uvt-edge", "region": "local",
         "lat": null, "lng": null, "available": true},
        {"id": 2, "name": "edge-storage-devices-9", "cluster": null, "region": "local",
         "lat": 1.0, "lng": 2.0, "available": true}
    ])
}

impl FakeGateway {
    pub async fn start() -> FakeGateway {
        let state = GatewayState {
            mode: Arc::new(Mutex::new(GatewayMode::Up)),
            calls: Arc::default(),
        };
        let app = Router::new()
            .fallback(gateway_answer)
            .with_state(state.clone());
        let (url, stop) = spawn(app).await;
        FakeGateway {
            url,
            mode: state.mode,
            calls: state.calls,
            _stop: stop,
        }
    }

    pub fn set_mode(&self, mode: GatewayMode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn calls(&self) -> Vec<Recorded> {
        self.calls.lock().unwrap().clone()
    }
}

async fn gateway_answer(
    State(state): State<GatewayState>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    state.calls.lock().unwrap().push(Recorded {
        method: "GET".into(),
        path: uri.path().to_owned(),
        query: None,
        authorization: authorization.clone(),
        body: Value::Null,
    });
    if authorization.as_deref() != Some(&format!("Bearer {GATEWAY_TOKEN}")) {
        return (StatusCode::UNAUTHORIZED, "no").into_response();
    }
    if *state.mode.lock().unwrap() == GatewayMode::Down {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    match uri.path() {
        "/cloud_locations" => axum::Json(cloud_locations()).into_response(),
        "/edge_locations" => axum::Json(edge_locations()).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn spawn(app: Router) -> (String, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (url, stop)
}

/// A URL where nothing listens.
pub async fn closed_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}

/// The handler under test.
pub struct Cth {
    pub url: String,
    pub grpc: SocketAddr,
    pub docs: Arc<dyn DocStore>,
    pub bus: Arc<dyn StreamHandler>,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Drop for Cth {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A test configuration: short timeout, collector effectively once, the given gateway.
pub fn config(gateway_url: Option<&str>) -> Config {
    Config {
        uuid: "cth-under-test".into(),
        query_timeout: 1,
        query_interval: 3600,
        storage_gateway: gateway_url.map(|url| StorageGatewayConfig {
            url: url.to_owned(),
            token: Some(Secret::new(GATEWAY_TOKEN)),
        }),
        agent_token: Some(Secret::new(AGENT_TOKEN)),
        ..Config::default()
    }
}

impl Cth {
    /// Over the embedded operational DB (in-memory datastore) and stream log.
    pub async fn start(config: Config) -> Cth {
        let kv = Arc::new(EmbeddedStore::in_memory());
        let docs: Arc<dyn DocStore> = Arc::new(EmbeddedDocStore::new(kv, DOCS_PREFIX));
        let bus: Arc<dyn StreamHandler> =
            Arc::new(EmbeddedStreamHandler::open(None, 1000).unwrap());
        Cth::start_with(config, docs, bus).await
    }

    /// Over the given operational DB and stream handler (real servers).
    pub async fn start_with(
        config: Config,
        docs: Arc<dyn DocStore>,
        bus: Arc<dyn StreamHandler>,
    ) -> Cth {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let grpc = grpc_listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serrano_cth::serve_with(
            config,
            docs.clone(),
            bus.clone(),
            vec![Secret::new(TOKEN)],
            listener,
            Some(grpc_listener),
            async {
                let _ = stopped.await;
            },
        ));
        let cth = Cth {
            url,
            grpc,
            docs,
            bus,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        };
        for _ in 0..200 {
            if cth
                .http
                .get(format!("{}/health", cth.url))
                .send()
                .await
                .is_ok()
            {
                return cth;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("cth did not start");
    }

    /// Stops the handler and waits for it to end cleanly.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_with(method, path, body, Some(TOKEN)).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None).await
    }

    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let url = format!("{}/api/v1/telemetry/central{path}", self.url);
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn insert(&self, collection: &str, doc: Value) {
        self.docs.insert(collection, doc).await.unwrap();
    }

    /// Seeds agents, probes and clusters in the docs/telemetry.md shapes: two agents at the
    /// given URLs, a k8s cluster per agent, an HPC, a host and an edge-storage cluster on the
    /// first agent.
    pub async fn seed_platform(&self, agent_url: &str, agent_2_url: &str) {
        self.insert("entities", json!({"uuid": AGENT, "type": "Agent", "url": agent_url,
            "grpc_url": "http://127.0.0.1:7119", "probes": ["probe-k8s", "probe-hpc", "probe-edge", "probe-host"],
            "timestamp": 1700000000})).await;
        self.insert("entities", json!({"uuid": AGENT_2, "type": "Agent", "url": agent_2_url,
            "grpc_url": "http://127.0.0.1:7129", "probes": ["probe-k8s-2"], "timestamp": 1700000000})).await;
        for (probe, kind, cluster, agent) in [
            ("probe-k8s", "Probe.k8s", K8S, AGENT),
            ("probe-k8s-2", "Probe.k8s", K8S_2, AGENT_2),
            ("probe-hpc", "Probe.HPC", HPC, AGENT),
            ("probe-edge", "Probe.EdgeStorage", EDGE, AGENT),
            ("probe-host", "Probe.Host", HOST, AGENT),
        ] {
            self.insert("entities", json!({"uuid": probe, "type": kind, "url": "http://probe",
                "cluster_uuid": cluster, "agent_uuid": agent, "name": probe, "streaming_telemetry": 1,
                "status": "UP", "registered_at": 1700000000, "last_seen": 1700000060})).await;
        }
        let node = |name: &str, gpu: u64, tier: u64| {
            json!({"node_name": name, "node_role": "worker",
                "node_labels": {"vaccel": "true", "security-tier": tier, "kubernetes.io/os": "linux"},
                "node_capacity": {"cpu": "8", "memory": "32Gi", "total_gpu": gpu, "total_fpga": 0,
                    "pods": "110", "node_storage": "0"},
                "node_info": {"architecture": "amd64", "kernel_version": "6.1"}})
        };
        self.insert(
            "clusters",
            json!({"uuid": K8S, "type": "k8s", "name": "UVT Production",
            "agent_uuid": AGENT, "probe_uuid": "probe-k8s",
            "inventory": [node("serrano-k8s-worker-01", 1, 2), node("serrano-k8s-worker-02", 0, 1)],
            "timestamp": 1700000000}),
        )
        .await;
        self.insert(
            "clusters",
            json!({"uuid": K8S_2, "type": "k8s", "name": "NBFC",
            "agent_uuid": AGENT_2, "probe_uuid": "probe-k8s-2",
            "inventory": [{"node_name": "nuc5", "node_capacity": {"cpu": "4"}}],
            "timestamp": 1700000000}),
        )
        .await;
        self.insert(
            "clusters",
            json!({"uuid": HPC, "type": "hpc", "name": "hawk",
            "agent_uuid": AGENT, "probe_uuid": "probe-hpc",
            "inventory": {"name": "hawk", "scheduler": "slurm", "services": ["kernel"],
                "partitions": [{"name": "cpu", "total_nodes": 4, "total_cpus": 128}]},
            "timestamp": 1700000000}),
        )
        .await;
        self.insert(
            "clusters",
            json!({"uuid": HOST, "type": "host", "name": "lab-host",
            "agent_uuid": AGENT, "probe_uuid": "probe-host",
            "inventory": [node("lab-host-1", 0, 0)], "timestamp": 1700000000}),
        )
        .await;
        self.insert(
            "clusters",
            json!({"uuid": EDGE, "type": "edge_storage", "name": "uvt-edge",
            "agent_uuid": AGENT, "probe_uuid": "probe-edge",
            "inventory": {"edge_storage_devices": [
                {"name": "edge-storage-devices-0", "node": "serrano-k8s-worker-02",
                 "cluster_uuid": EDGE, "lat": 45.7472357, "lng": 21.2316107,
                 "minio_node_disk_total_bytes": 8333520896.0}]},
            "timestamp": 1700000000}),
        )
        .await;
    }
}

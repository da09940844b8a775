#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The agent as a running service (REST + gRPC on real sockets) on embedded backends, with a fake
//! probe: registration, polling, persistence, UP/DOWN notifications, deployments, application
//! metrics, streaming sessions, configuration and the error paths.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::{delete, get, post};
use serde_json::{Value, json};
use serrano_bus::embedded::EmbeddedStreamHandler;
use serrano_bus::{StartAt, StreamHandler, TELEMETRY_NOTIFICATIONS_TOPIC};
use serrano_datastore::EmbeddedStore;
use serrano_docstore::embedded::EmbeddedDocStore;
use serrano_docstore::{DocStore, Filter, FindOptions};
use serrano_eta::{Backends, Config};
use serrano_service::Secret;
use serrano_timeseries::embedded::{EmbeddedOptions, EmbeddedTsdb};
use serrano_timeseries::{Query, TimeSeriesStore};

const TOKEN: &str = "agent-test-token";

#[derive(Default)]
struct FakeProbe {
    up: bool,
    monitor: Value,
    streaming_requests: Vec<Value>,
    auth_headers: Vec<String>,
}

type Shared = Arc<Mutex<FakeProbe>>;

async fn fake_monitor(
    State(probe): State<Shared>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut p = probe.lock().unwrap();
    p.auth_headers.push(
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    );
    if !p.up {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    axum::Json(p.monitor.clone()).into_response()
}

async fn fake_inventory(State(probe): State<Shared>) -> axum::response::Response {
    use axum::response::IntoResponse;
    if !probe.lock().unwrap().up {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    axum::Json(json!({"nodes": [{"node_name": "vm", "node_capacity": {"cpu": 2}}]})).into_response()
}

async fn fake_streaming(
    State(probe): State<Shared>,
    axum::Json(body): axum::Json<Value>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    probe.lock().unwrap().streaming_requests.push(body.clone());
    (
        axum::http::StatusCode::CREATED,
        axum::Json(json!({"session_id": body["session_id"]})),
    )
        .into_response()
}

async fn start_fake_probe(probe: Shared) -> String {
    let app = axum::Router::new()
        .route("/api/v1/telemetry/probe/monitor", get(fake_monitor))
        .route("/api/v1/telemetry/probe/inventory", get(fake_inventory))
        .route("/api/v1/telemetry/probe/streaming", post(fake_streaming))
        .route(
            "/api/v1/telemetry/probe/streaming/{id}",
            delete(|| async { axum::Json(json!({})) }),
        )
        .with_state(probe);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn host_monitor(probe_uuid: &str, used: f64) -> Value {
    json!({"uuid": probe_uuid, "type": "Probe.Host", "host_monitoring_data": {"Nodes": [{
        "node_name": "vm", "timestamp": 1_700_000_000,
        "cpu": {"cpu_0_idle": 100.0, "cpu_0_used": used, "node_cpus": 1},
        "memory": {"node_memory_MemTotal_bytes": 8.0e9, "node_memory_MemUsed_bytes": 2.0e9, "node_memory_usage_percentage": 25.0}
    }]}})
}

struct Running {
    base: String,
    grpc: String,
    docs: Arc<dyn DocStore>,
    series: Arc<dyn TimeSeriesStore>,
    bus: Arc<dyn StreamHandler>,
    http: reqwest::Client,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Running {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
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

    async fn notifications(&self) -> Vec<Value> {
        let mut reader = self
            .bus
            .reader(TELEMETRY_NOTIFICATIONS_TOPIC, StartAt::Beginning)
            .await
            .unwrap();
        let mut out = Vec::new();
        while let Some(record) = reader.next(Duration::from_millis(200)).await.unwrap() {
            out.push(serde_json::from_slice(&record.payload).unwrap());
        }
        out
    }
}

async fn start_agent(configure: impl FnOnce(&mut Config)) -> Running {
    let kv = Arc::new(EmbeddedStore::in_memory());
    let docs: Arc<dyn DocStore> = Arc::new(EmbeddedDocStore::new(kv, serrano_eta::DOCS_PREFIX));
    let series: Arc<dyn TimeSeriesStore> =
        Arc::new(EmbeddedTsdb::open(EmbeddedOptions::default()).unwrap());
    let bus: Arc<dyn StreamHandler> = Arc::new(EmbeddedStreamHandler::open(None, 10_000).unwrap());
    let mut config = Config {
        // Polls are driven by the tests (GET /monitor) unless a test shortens the interval.
        query_interval: 3600,
        query_timeout: 2,
        agent_uuid: Some("agent-1".into()),
        ..Config::default()
    };
    configure(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let grpc = format!("http://{}", grpc_listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let backends = Backends {
        docs: docs.clone(),
        series: series.clone(),
        bus: bus.clone(),
    };
    tokio::spawn(serrano_eta::serve_with(
        config,
        backends,
        vec![Secret::new(TOKEN)],
        listener,
        grpc_listener,
        async move {
            let mut stopped = stopped;
            let _ = stopped.wait_for(|s| *s).await;
        },
    ));
    let running = Running {
        base,
        grpc,
        docs,
        series,
        bus,
        http: reqwest::Client::new(),
        stop,
    };
    for _ in 0..100 {
        if running
            .http
            .get(format!("{}/health", running.base))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running
}

fn registration(probe_url: &str, probe_uuid: &str, cluster_uuid: &str) -> Value {
    json!({"cluster_uuid": cluster_uuid, "probe_uuid": probe_uuid, "streaming_telemetry": 1, "url": probe_url,
           "type": "Probe.Host", "name": "test host", "inventory": {"nodes": [{"node_name": "vm"}]}})
}

#[tokio::test]
async fn registration_polling_and_notifications() {
    let probe = Arc::new(Mutex::new(FakeProbe {
        up: true,
        monitor: host_monitor("p-1", 5.0),
        ..FakeProbe::default()
    }));
    let probe_url = start_fake_probe(probe.clone()).await;
    let agent = start_agent(|c| c.probe_token = Some(Secret::new("probe-secret"))).await;

    let (status, body) = agent
        .call(
            reqwest::Method::POST,
            "/api/v1/telemetry/agent/register",
            Some(registration(&probe_url, "p-1", "c-1")),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["uuid"], "p-1");
    assert_eq!(body["agent_uuid"], "agent-1");
    assert_eq!(body["status"], "UP");

    let (status, body) = agent
        .call(
            reqwest::Method::GET,
            "/api/v1/telemetry/agent/register/p-1",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["cluster_uuid"], "c-1");
    assert_eq!(body["type"], "Probe.Host");
    let (_, entities) = agent
        .call(
            reqwest::Method::GET,
            "/api/v1/telemetry/agent/entities",
            None,
        )
        .await;
    assert_eq!(entities["type"], "Agent");
    assert_eq!(entities["probes"][0]["uuid"], "p-1");
    // The agent entity lists its probes (the CTH's fallback to find a probe's agent).
    let agent_doc = agent
        .docs
        .find_one("entities", &Filter::all().eq("uuid", "agent-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(agent_doc["type"], "Agent");
    assert_eq!(agent_doc["probes"], json!(["p-1"]));
    // The cluster document the CTH reads (docs/telemetry.md).
    let cluster = agent
        .docs
        .find_one("clusters", &Filter::all().eq("uuid", "c-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cluster["type"], "host");
    assert_eq!(cluster["probe_uuid"], "p-1");
    assert_eq!(cluster["agent_uuid"], "agent-1");
    assert_eq!(cluster["inventory"]["nodes"][0]["node_name"], "vm");

    // A live monitor call is stored like a poll: operational state + history.
    let (status, body) = agent
        .call(
            reqwest::Method::GET,
            "/api/v1/telemetry/agent/monitor/p-1",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["host_monitoring_data"]["Nodes"][0]["node_name"], "vm");
    assert_eq!(
        probe.lock().unwrap().auth_headers.last().unwrap(),
        "Bearer probe-secret"
    );
    let states = agent
        .docs
        .find(
            "cluster_state_metrics",
            &Filter::all().eq("cluster_uuid", "c-1"),
            &FindOptions::default(),
        )
        .await
        .unwrap();
    // Registration also wakes the poller, so there may be a second sample already.
    assert!(!states.is_empty());
    assert!(states.iter().all(|s| s["state"]["uuid"] == "p-1"));
    agent.series.flush().await.unwrap();
    let rows = agent
        .series
        .query(&Query {
            bucket: "c-1".into(),
            measurement: "nodes".into(),
            tags: vec![("group".into(), "cpu".into())],
            fields: vec!["cpu_0_used".into()],
            start_ns: 0,
            stop_ns: i64::MAX,
            limit: None,
        })
        .await
        .unwrap();
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|r| r.value.as_f64() == Some(5.0) && r.time_ns == 1_700_000_000_000_000_000),
        "{rows:?}"
    );

    // The probe dies: one DOWN, however many failed calls; then UP when it is back.
    probe.lock().unwrap().up = false;
    let (status, _) = agent
        .call(
            reqwest::Method::GET,
            "/api/v1/telemetry/agent/monitor/p-1",
            None,
        )
        .await;
    assert_eq!(status, 502);
    let (status, _) = agent
        .call(
            reqwest::Method::GET,
            "/api/v1/telemetry/agent/inventory/p-1",
            None,
        )
        .await;
    assert_eq!(status, 502);
    let (_, body) = agent
        .call(
            reqwest::Method::GET,
            "/api/v1/telemetry/agent/register/p-1",
            None,
        )
        .await;
    assert_eq!(body["status"], "DOWN");
    probe.lock().unwrap().up = true;
    let (status, _) = agent
        .call(
            reqwest::Method::GET,
            "/api/v1/telemetry/agent/inventory/p-1",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let statuses: Vec<(String, String, String)> = agent
        .notifications()
        .await
        .iter()
        .map(|n| {
            (
                n["entity_id"].as_str().unwrap().to_owned(),
                n["status"].as_str().unwrap().to_owned(),
                n["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let probe_events: Vec<&str> = statuses
        .iter()
        .filter(|(id, _, _)| id == "p-1")
        .map(|(_, s, _)| s.as_str())
        .collect();
    assert_eq!(probe_events, ["UP", "DOWN", "UP"]);
    assert!(statuses.contains(&("agent-1".into(), "UP".into(), "Agent".into())));

    // Deregistration: DOWN, 404 afterwards.
    let (status, _) = agent
        .call(
            reqwest::Method::DELETE,
            "/api/v1/telemetry/agent/register/p-1",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = agent
        .call(
            reqwest::Method::GET,
            "/api/v1/telemetry/agent/register/p-1",
            None,
        )
        .await;
    assert_eq!(status, 404);
    let agent_doc = agent
        .docs
        .find_one("entities", &Filter::all().eq("uuid", "agent-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(agent_doc["probes"], json!([]));
    let last = agent.notifications().await.pop().unwrap();
    assert_eq!(
        (last["entity_id"].as_str(), last["status"].as_str()),
        (Some("p-1"), Some("DOWN"))
    );
    let _ = agent.stop.send(true);
}

#[tokio::test]
async fn the_poller_polls_on_its_own_and_prunes_old_state() {
    let probe = Arc::new(Mutex::new(FakeProbe {
        up: true,
        monitor: host_monitor("p-2", 1.0),
        ..FakeProbe::default()
    }));
    let probe_url = start_fake_probe(probe.clone()).await;
    let agent = start_agent(|c| c.query_interval = 1).await;
    // An old sample that the retention must remove.
    agent
        .docs
        .insert(
            "cluster_state_metrics",
            json!({"cluster_uuid": "c-2", "timestamp": 1000, "state": {}}),
        )
        .await
        .unwrap();
    let (status, _) = agent
        .call(
            reqwest::Method::POST,
            "/api/v1/telemetry/agent/register",
            Some(registration(&probe_url, "p-2", "c-2")),
        )
        .await;
    assert_eq!(status, 200);
    let mut states = Vec::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        states = agent
            .docs
            .find(
                "cluster_state_metrics",
                &Filter::all().eq("cluster_uuid", "c-2"),
                &FindOptions::default(),
            )
            .await
            .unwrap();
        if states.len() >= 2
            && states
                .iter()
                .all(|s| s["timestamp"].as_i64().unwrap() > 1000)
        {
            break;
        }
    }
    assert!(
        states.len() >= 2,
        "expected at least two polls, got {states:?}"
    );
    assert!(
        states
            .iter()
            .all(|s| s["timestamp"].as_i64().unwrap() > 1000),
        "old sample not pruned"
    );
    let (_, metrics) = agent.call(reqwest::Method::GET, "/metrics", None).await;
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("serrano_eta_poll_rounds_total")
    );
    let _ = agent.stop.send(true);
}

#[tokio::test]
async fn deployments_and_application_metrics() {
    let monitor = json!({"uuid": "k", "type": "Probe.k8s", "kubernetes_monitoring_data": {"Nodes": [], "PersistentVolumes": [], "Deployments": [],
        "Pods": [{"name": "svc-1", "namespace": "integration", "node": "n1", "phase": "Running", "serrano_deployment_uuid": "dep-1",
                  "group_id": "s1", "restarts": 0, "usage": {"cpu": "1002310835n", "memory": "150672Ki"}}]}});
    let probe = Arc::new(Mutex::new(FakeProbe {
        up: true,
        monitor,
        ..FakeProbe::default()
    }));
    let probe_url = start_fake_probe(probe.clone()).await;
    let agent = start_agent(|_| {}).await;
    let mut reg = registration(&probe_url, "k-1", "c-3");
    reg["type"] = json!("Probe.k8s");
    assert_eq!(
        agent
            .call(
                reqwest::Method::POST,
                "/api/v1/telemetry/agent/register",
                Some(reg)
            )
            .await
            .0,
        200
    );

    let body = json!({"deployment_uuid": "dep-1", "k8s_deployments": [{"k8s_deployment_name": "svc", "k8s_deployment_namespace": "integration", "k8s_deployment_uuid": "x"}]});
    let (status, _) = agent
        .call(
            reqwest::Method::POST,
            "/api/v1/telemetry/agent/deployments",
            Some(body),
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) = agent
        .call(
            reqwest::Method::GET,
            "/api/v1/telemetry/agent/deployments/dep-1",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["k8s_deployments"][0]["k8s_deployment_name"], "svc");
    assert_eq!(
        agent
            .call(
                reqwest::Method::GET,
                "/api/v1/telemetry/agent/monitor/k-1",
                None
            )
            .await
            .0,
        200
    );
    let docs = agent
        .docs
        .find(
            "cluster_deployment_metrics",
            &Filter::all().eq("deployment_uuid", "dep-1"),
            &FindOptions::default(),
        )
        .await
        .unwrap();
    assert!(!docs.is_empty());
    assert!(docs.iter().all(|d| d["name"] == "svc-1"
        && d["usage"]["cpu"] == "1002310835n"
        && d["cluster_uuid"] == "c-3"));
    agent.series.flush().await.unwrap();
    let rows = agent
        .series
        .query(&Query {
            bucket: "SERRANO_Deployments".into(),
            measurement: "serrano_deployments".into(),
            tags: vec![("deployment_uuid".into(), "dep-1".into())],
            fields: vec!["cpu_usage".into()],
            start_ns: 0,
            stop_ns: i64::MAX,
            limit: None,
        })
        .await
        .unwrap();
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|r| r.value.as_f64() == Some(1_002_310_835.0))
    );

    let (status, _) = agent
        .call(
            reqwest::Method::DELETE,
            "/api/v1/telemetry/agent/deployments/dep-1",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        agent
            .call(
                reqwest::Method::DELETE,
                "/api/v1/telemetry/agent/deployments/dep-1",
                None
            )
            .await
            .0,
        404
    );

    // Application metrics: numbers only, bounded.
    let push = json!({"deployment_uuid": "dep-1", "cluster_uuid": "c-3", "service_id": "s1", "metrics": {"latency_ms": 12.5, "queue": 3}, "timestamp": 1_700_000_000});
    assert_eq!(
        agent
            .call(
                reqwest::Method::POST,
                "/api/v1/telemetry/agent/deployment_specific_metrics",
                Some(push)
            )
            .await
            .0,
        201
    );
    agent.series.flush().await.unwrap();
    let rows = agent
        .series
        .query(&Query {
            bucket: "SERRANO_Deployments_Specific_Metrics".into(),
            measurement: "serrano_deployments_specific_metrics".into(),
            tags: vec![("service_id".into(), "s1".into())],
            fields: vec![],
            start_ns: 0,
            stop_ns: i64::MAX,
            limit: None,
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    let bad = json!({"deployment_uuid": "dep-1", "cluster_uuid": "c-3", "service_id": "s1", "metrics": {"state": "ok"}});
    assert_eq!(
        agent
            .call(
                reqwest::Method::POST,
                "/api/v1/telemetry/agent/deployment_specific_metrics",
                Some(bad)
            )
            .await
            .0,
        400
    );
    let many: serde_json::Map<String, Value> =
        (0..1001).map(|i| (format!("m{i}"), json!(i))).collect();
    let big = json!({"deployment_uuid": "dep-1", "cluster_uuid": "c-3", "service_id": "s1", "metrics": many});
    assert_eq!(
        agent
            .call(
                reqwest::Method::POST,
                "/api/v1/telemetry/agent/deployment_specific_metrics",
                Some(big)
            )
            .await
            .0,
        413
    );
    let _ = agent.stop.send(true);
}

#[tokio::test]
async fn configuration_and_bad_input() {
    let agent = start_agent(|_| {}).await;
    let (status, body) = agent
        .call(reqwest::Method::GET, "/api/v1/telemetry/agent", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["query_interval"], 3600);
    assert_eq!(body["agent_uuid"], "agent-1");
    // The D6.7 4.4.3.2 example body.
    let (status, body) = agent
        .call(
            reqwest::Method::POST,
            "/api/v1/telemetry/agent",
            Some(json!({"data_retain_period": 180, "active_notifications": false})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["retain_data_period"], 180);
    assert_eq!(body["active_notifications"], false);
    assert_eq!(
        agent
            .call(
                reqwest::Method::PUT,
                "/api/v1/telemetry/agent",
                Some(json!({"query_interval": 0}))
            )
            .await
            .0,
        400
    );
    assert_eq!(
        agent
            .call(
                reqwest::Method::PUT,
                "/api/v1/telemetry/agent",
                Some(json!({"bogus": 1}))
            )
            .await
            .0,
        400
    );

    for bad in [
        json!({"cluster_uuid": "c", "probe_uuid": "p", "url": "ftp://x", "type": "Probe.Host"}),
        json!({"cluster_uuid": "c", "probe_uuid": "p/../x", "url": "http://127.0.0.1:1", "type": "Probe.Host"}),
        json!({"cluster_uuid": "c", "probe_uuid": "p", "url": "http://127.0.0.1:1", "type": "Probe.Unknown"}),
        json!({"cluster_uuid": "c", "probe_uuid": "p", "url": "http://127.0.0.1:1", "type": "Probe.Host", "extra": 1}),
        json!({"probe_uuid": "p", "url": "http://127.0.0.1:1", "type": "Probe.Host"}),
    ] {
        let (status, body) = agent
            .call(
                reqwest::Method::POST,
                "/api/v1/telemetry/agent/register",
                Some(bad.clone()),
            )
            .await;
        assert_eq!(status, 400, "{bad} -> {body}");
        assert!(body["error"]["message"].is_string());
    }
    // A second probe cannot take over a monitored cluster.
    assert_eq!(
        agent
            .call(
                reqwest::Method::POST,
                "/api/v1/telemetry/agent/register",
                Some(registration("http://127.0.0.1:9", "p-a", "c-x"))
            )
            .await
            .0,
        200
    );
    assert_eq!(
        agent
            .call(
                reqwest::Method::POST,
                "/api/v1/telemetry/agent/register",
                Some(registration("http://127.0.0.1:9", "p-b", "c-x"))
            )
            .await
            .0,
        409
    );
    // Unreachable probe: 502 (connection refused) without hanging.
    assert_eq!(
        agent
            .call(
                reqwest::Method::GET,
                "/api/v1/telemetry/agent/monitor/p-a",
                None
            )
            .await
            .0,
        502
    );
    assert_eq!(
        agent
            .call(
                reqwest::Method::GET,
                "/api/v1/telemetry/agent/monitor/p-a?target=bogus",
                None
            )
            .await
            .0,
        400
    );
    for path in [
        "/api/v1/telemetry/agent/monitor/nope",
        "/api/v1/telemetry/agent/inventory/nope",
        "/api/v1/telemetry/agent/register/nope",
        "/api/v1/telemetry/agent/deployments/nope",
    ] {
        assert_eq!(
            agent.call(reqwest::Method::GET, path, None).await.0,
            404,
            "{path}"
        );
    }
    let response = agent
        .http
        .get(format!("{}/api/v1/telemetry/agent/entities", agent.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let _ = agent.stop.send(true);
}

#[tokio::test]
async fn streaming_sessions_store_streamed_samples() {
    use serrano_telemetry_stream::{SenderOptions, StreamIdentity, StreamSender, pb};
    let probe = Arc::new(Mutex::new(FakeProbe {
        up: true,
        monitor: host_monitor("s-1", 1.0),
        ..FakeProbe::default()
    }));
    let probe_url = start_fake_probe(probe.clone()).await;
    let agent = start_agent(|_| {}).await;
    assert_eq!(
        agent
            .call(
                reqwest::Method::POST,
                "/api/v1/telemetry/agent/register",
                Some(registration(&probe_url, "s-1", "c-s"))
            )
            .await
            .0,
        200
    );
    // The D6.7 4.4.3.2 example request.
    let request = json!({"cluster_uuid": "c-s", "action": "start", "reporting_rate": 5, "nodes": ["vm"], "metrics": ["cpu", "memory"]});
    let (status, session) = agent
        .call(
            reqwest::Method::POST,
            "/api/v1/telemetry/agent/streaming",
            Some(request),
        )
        .await;
    assert_eq!(status, 201, "{session}");
    let session_id = session["session_id"].as_str().unwrap().to_owned();
    let asked = probe.lock().unwrap().streaming_requests[0].clone();
    assert_eq!(asked["receiver"], agent.grpc.as_str());
    assert_eq!(asked["session_id"], session_id.as_str());
    assert_eq!(asked["metrics"], json!(["cpu", "memory"]));

    // What the probe would do: stream samples to the agent's gRPC listener.
    let sender = StreamSender::start(
        agent.grpc.clone(),
        StreamIdentity {
            source_uuid: "s-1".into(),
            cluster_uuid: "c-s".into(),
            session_id: session_id.clone(),
        },
        SenderOptions {
            token: Some(TOKEN.into()),
            rotate_every: Duration::from_millis(100),
            ..SenderOptions::default()
        },
    )
    .unwrap();
    for i in 0..20i64 {
        let sample = pb::Sample {
            measurement: "nodes".into(),
            tags: [
                ("node_name".to_owned(), "streamed".to_owned()),
                ("group".to_owned(), "memory".to_owned()),
            ]
            .into(),
            fields: [("node_memory_usage_percentage".to_owned(), 50.0 + i as f64)].into(),
            time_ns: 1_700_000_000_000_000_000 + i * 1_000_000_000,
        };
        sender.send(vec![sample]).unwrap();
    }
    let stats = sender.close(Duration::from_secs(10)).await;
    assert_eq!(stats.dropped, 0);
    agent.series.flush().await.unwrap();
    let rows = agent
        .series
        .query(&Query {
            bucket: "c-s".into(),
            measurement: "nodes".into(),
            tags: vec![
                ("group".into(), "memory".into()),
                ("node_name".into(), "streamed".into()),
            ],
            fields: vec![],
            start_ns: 0,
            stop_ns: i64::MAX,
            limit: None,
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 20);
    assert_eq!(rows[19].value.as_f64(), Some(69.0));

    let (status, body) = agent
        .call(
            reqwest::Method::GET,
            "/api/v1/telemetry/agent/streaming",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["sessions"][0]["session_id"], session_id.as_str());
    assert_eq!(
        agent
            .call(
                reqwest::Method::DELETE,
                &format!("/api/v1/telemetry/agent/streaming/{session_id}"),
                None
            )
            .await
            .0,
        200
    );
    assert_eq!(
        agent
            .call(
                reqwest::Method::DELETE,
                &format!("/api/v1/telemetry/agent/streaming/{session_id}"),
                None
            )
            .await
            .0,
        404
    );
    let unknown = json!({"cluster_uuid": "nope", "action": "start"});
    assert_eq!(
        agent
            .call(
                reqwest::Method::POST,
                "/api/v1/telemetry/agent/streaming",
                Some(unknown)
            )
            .await
            .0,
        404
    );
    let bad = json!({"cluster_uuid": "c-s", "action": "pause"});
    assert_eq!(
        agent
            .call(
                reqwest::Method::POST,
                "/api/v1/telemetry/agent/streaming",
                Some(bad)
            )
            .await
            .0,
        400
    );
    let _ = agent.stop.send(true);
}

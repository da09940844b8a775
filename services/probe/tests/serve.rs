//! The probe served for real (`serve_with`): registration at a fake Enhanced Telemetry Agent
//! that fails first and records what it gets, retry with backoff, 409 as done, and `/ready`
//! following the background reading of the source.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;
use serrano_probe::hpc::HpcConfig;
use serrano_probe::{AgentLink, Config, ProbeKind, serve_with};
use serrano_service::Secret;
use tokio::sync::oneshot;

mod common;

use common::{TOKEN, dead_url, eventually, serve};

const AGENT_TOKEN: &str = "agent-token";

/// One registration call as the fake agent saw it.
#[derive(Debug, Clone)]
struct Seen {
    authorization: Option<String>,
    body: Value,
}

#[derive(Clone)]
struct FakeAgent {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Status of each call in turn; the last one repeats.
    statuses: Arc<Vec<StatusCode>>,
}

async fn register(
    State(agent): State<FakeAgent>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let mut seen = agent.seen.lock().unwrap();
    seen.push(Seen {
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body,
    });
    let index = (seen.len() - 1).min(agent.statuses.len() - 1);
    (agent.statuses[index], Json(serde_json::json!({})))
}

async fn fake_agent(statuses: Vec<StatusCode>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new()
        .route("/api/v1/telemetry/agent/register", post(register))
        .with_state(FakeAgent {
            seen: seen.clone(),
            statuses: Arc::new(statuses),
        });
    (serve(app).await, seen)
}

struct Running {
    url: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn start(config: Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_with(
            config,
            vec![Secret::new(TOKEN)],
            listener,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            url,
            stop: Some(stop),
            task,
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let response = reqwest::Client::new()
            .get(format!("{}{path}", self.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let result = tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("probe stops")
            .unwrap();
        result.expect("probe ran without error");
    }
}

fn host_config(agent_url: &str) -> Config {
    Config {
        kind: ProbeKind::Host,
        name: "edge-node-7".to_owned(),
        agent: Some(AgentLink {
            url: agent_url.to_owned(),
            token: Secret::new(AGENT_TOKEN),
        }),
        exposed_url: "http://probe.example:7110".to_owned(),
        registration_retry_ms: 50,
        registration_retry_max_ms: 200,
        ..Config::default()
    }
}

#[tokio::test]
async fn registration_retries_until_the_agent_accepts() {
    let (agent_url, seen) = fake_agent(vec![StatusCode::SERVICE_UNAVAILABLE, StatusCode::OK]).await;
    let config = host_config(&agent_url);
    let identity = serrano_probe::Identity::from_config(&config, &serrano_probe::hostname());
    let probe = Running::start(config).await;

    eventually(Duration::from_secs(10), "two registration calls", || {
        seen.lock().unwrap().len() >= 2
    })
    .await;
    let calls = seen.lock().unwrap().clone();
    for call in &calls {
        assert_eq!(
            call.authorization.as_deref(),
            Some("Bearer agent-token"),
            "the agent's token"
        );
    }
    let body = &calls[1].body;
    assert_eq!(
        body, &calls[0].body,
        "the retry sends the same registration"
    );
    assert_eq!(body["cluster_uuid"], identity.cluster_uuid.to_string());
    assert_eq!(body["probe_uuid"], identity.probe_uuid.to_string());
    assert_eq!(body["streaming_telemetry"], 1);
    assert_eq!(body["url"], "http://probe.example:7110");
    assert_eq!(body["type"], "Probe.Host");
    assert_eq!(body["name"], "edge-node-7");
    let nodes = body["inventory"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["node_name"], serrano_probe::hostname());
    assert_eq!(nodes[0]["node_role"], "worker");

    // Registered: no further calls, and the metric says so.
    let mut registered = false;
    for _ in 0..100 {
        let (_, metrics) = probe.get("/metrics").await;
        if metrics.lines().any(|l| l == "probe_registered 1") {
            registered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(registered);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(seen.lock().unwrap().len(), 2);

    let (status, ping) = probe.get("/api/v1/telemetry/probe/ping").await;
    assert_eq!(status, 200);
    let ping: Value = serde_json::from_str(&ping).unwrap();
    assert_eq!(ping["uuid"], identity.probe_uuid.to_string());
    probe.shutdown().await;
}

#[tokio::test]
async fn conflict_means_already_registered() {
    let (agent_url, seen) = fake_agent(vec![StatusCode::CONFLICT]).await;
    let probe = Running::start(host_config(&agent_url)).await;
    eventually(Duration::from_secs(10), "one registration call", || {
        !seen.lock().unwrap().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(seen.lock().unwrap().len(), 1, "409 ends the retries");
    let (_, metrics) = probe.get("/metrics").await;
    assert!(
        metrics.lines().any(|l| l == "probe_registered 1"),
        "{metrics}"
    );
    probe.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_source_delays_registration_and_fails_readiness() {
    let (agent_url, seen) = fake_agent(vec![StatusCode::OK]).await;
    let config = Config {
        kind: ProbeKind::Hpc,
        hpc: HpcConfig {
            gateway_url: dead_url(),
            token: Secret::new("t"),
            infrastructure: "hawk".to_owned(),
        },
        ..host_config(&agent_url)
    };
    let probe = Running::start(config).await;
    let mut ready = (0, String::new());
    for _ in 0..200 {
        ready = probe.get("/ready").await;
        if ready.0 == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ready.0, 503, "{}", ready.1);
    let body: Value = serde_json::from_str(&ready.1).unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("hpc gateway"),
        "{body}"
    );
    let (_, metrics) = probe.get("/metrics").await;
    assert!(
        metrics.lines().any(|l| l == "probe_source_up 0"),
        "{metrics}"
    );
    assert!(
        metrics.lines().any(|l| l == "probe_registered 0"),
        "{metrics}"
    );
    // Without an inventory there is nothing to register: the agent has not been called.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(seen.lock().unwrap().is_empty());

    // Turning the background reading off makes the probe ready again.
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/telemetry/probe", probe.url))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"active_monitoring": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(probe.get("/ready").await.0, 200);
    probe.shutdown().await;
}

#[tokio::test]
async fn run_needs_a_token_and_a_valid_config() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = serrano_probe::run(Config::default(), listener, async {})
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("SERRANO_PROBE_HTTP_TOKENS"),
        "{error}"
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = Config {
        kind: ProbeKind::EdgeStorage,
        ..Config::default()
    };
    let error = serve_with(config, vec![Secret::new(TOKEN)], listener, async {})
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("edge_storage.targets"),
        "{error}"
    );
}

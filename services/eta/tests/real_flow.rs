#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The telemetry flow with real processes and real servers: a host probe registers with an agent
//! that runs as its own process (the `eta` binary) on MongoDB (NX-27017), VictoriaMetrics and a
//! Kafka-protocol broker (Tansu); the CTH serves the probe's inventory and monitoring data; PMDS
//! returns the stored history; a streaming session survives a SIGKILL and restart of the agent;
//! a probe that dies produces a DOWN notification read back from the broker.
//!
//! Needs SERRANO_TEST_MONGO_URI, SERRANO_TEST_VICTORIAMETRICS_URL and SERRANO_TEST_KAFKA_BROKERS
//! (scripts/test starts the servers); skipped without them unless SERRANO_REQUIRE_REAL_SERVERS=1.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use serrano_bus::{
    KafkaOptions, KafkaStreamHandler, StartAt, StreamHandler, TELEMETRY_NOTIFICATIONS_TOPIC,
};
use serrano_docstore::{DocStore, MongoDocStore};
use serrano_service::Secret;
use serrano_timeseries::{TimeSeriesStore, VictoriaMetrics};

const TOKEN: &str = "real-flow-token";

struct Env {
    mongo: String,
    victoria: String,
    kafka: String,
}

fn env() -> Option<Env> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (
        get("SERRANO_TEST_MONGO_URI"),
        get("SERRANO_TEST_VICTORIAMETRICS_URL"),
        get("SERRANO_TEST_KAFKA_BROKERS"),
    ) {
        (Some(mongo), Some(victoria), Some(kafka)) => Some(Env {
            mongo,
            victoria,
            kafka,
        }),
        _ => {
            assert!(
                std::env::var("SERRANO_REQUIRE_REAL_SERVERS").as_deref() != Ok("1"),
                "SERRANO_REQUIRE_REAL_SERVERS=1 but MongoDB, VictoriaMetrics or Kafka is not configured"
            );
            println!(
                "skipped: set SERRANO_TEST_MONGO_URI, SERRANO_TEST_VICTORIAMETRICS_URL and SERRANO_TEST_KAFKA_BROKERS (scripts/infra)"
            );
            None
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn stopper() -> (
    tokio::sync::watch::Sender<bool>,
    impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let make = move || {
        let mut rx = rx.clone();
        Box::pin(async move {
            let _ = rx.wait_for(|s| *s).await;
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
    };
    (tx, make)
}

/// The agent as a child process, configured by a TOML file.
struct AgentProcess {
    config_path: std::path::PathBuf,
    child: Option<Child>,
    base: String,
}

impl AgentProcess {
    fn start(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_eta"))
            .env("SERRANO_ETA_CONFIG", &self.config_path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL: no goodbye, no flush.
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    async fn wait_ready(&self, http: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(format!("{}/health", self.base)).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(Instant::now() < deadline, "agent did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn get(http: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = http.get(url).bearer_auth(TOKEN).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    let response = http
        .post(url)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Waits until `check` returns Some, polling every 200 ms.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn probe_statuses(bus: &KafkaStreamHandler, probe_uuid: &str) -> Vec<String> {
    let mut reader = bus
        .reader(TELEMETRY_NOTIFICATIONS_TOPIC, StartAt::Beginning)
        .await
        .unwrap();
    let mut statuses = Vec::new();
    while let Some(record) = reader.next(Duration::from_millis(700)).await.unwrap() {
        let message: Value = serde_json::from_slice(&record.payload).unwrap();
        if message["entity_id"] == probe_uuid {
            assert_eq!(message["type"], "Probe");
            assert!(message["timestamp"].as_i64().unwrap() > 1_600_000_000);
            statuses.push(message["status"].as_str().unwrap().to_owned());
        }
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn probe_agent_central_pmds_with_real_servers() {
    let Some(env) = env() else { return };
    let http = reqwest::Client::new();
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let database = format!("realflow{}", &run_id[..12]);

    // CTH (in-process) over the same MongoDB database the agent writes.
    let docs: Arc<dyn DocStore> =
        Arc::new(MongoDocStore::connect(&env.mongo, &database).await.unwrap());
    let kafka = KafkaStreamHandler::connect(KafkaOptions::new(env.kafka.clone())).unwrap();
    let bus: Arc<dyn StreamHandler> =
        Arc::new(KafkaStreamHandler::connect(KafkaOptions::new(env.kafka.clone())).unwrap());
    let (stop, signal) = stopper();
    let cth_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cth_grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cth = format!(
        "http://{}/api/v1/telemetry/central",
        cth_listener.local_addr().unwrap()
    );
    let cth_grpc_url = format!("http://{}", cth_grpc.local_addr().unwrap());
    let cth_config = serrano_cth::Config {
        agent_token: Some(Secret::new(TOKEN)),
        storage_gateway: None,
        ..serrano_cth::Config::default()
    };
    tokio::spawn(serrano_cth::serve_with(
        cth_config,
        docs.clone(),
        bus.clone(),
        vec![Secret::new(TOKEN)],
        cth_listener,
        Some(cth_grpc),
        signal(),
    ));

    // PMDS (in-process) over VictoriaMetrics, where the agent writes the history.
    let series: Arc<dyn TimeSeriesStore> = Arc::new(VictoriaMetrics::new(&env.victoria).unwrap());
    let pmds_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pmds = format!("http://{}/api/v1/pmds", pmds_listener.local_addr().unwrap());
    tokio::spawn(serrano_pmds::serve_with(
        serrano_pmds::Config::default(),
        series.clone(),
        vec![Secret::new(TOKEN)],
        pmds_listener,
        signal(),
    ));

    // The agent: its own process, restartable on the same ports.
    let (eta_port, eta_grpc_port) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("eta.toml");
    std::fs::write(
        &config_path,
        format!(
            r#"agent_uuid = "agent-{run_id}"
grpc_bind = "127.0.0.1:{eta_grpc_port}"
query_interval = 1
query_timeout = 2
probe_token = "{TOKEN}"

[http]
bind = "127.0.0.1:{eta_port}"
tokens = ["{TOKEN}"]

[operational_db]
type = "mongodb"
uri = "{mongo}"
database = "{database}"

[timeseries]
type = "victoriametrics"
url = "{victoria}"

[notifications]
type = "kafka"
brokers = "{kafka}"

[central]
grpc_url = "{cth_grpc_url}"
token = "{TOKEN}"
"#,
            mongo = env.mongo,
            victoria = env.victoria,
            kafka = env.kafka,
        ),
    )
    .unwrap();
    let mut agent = AgentProcess {
        config_path,
        child: None,
        base: format!("http://127.0.0.1:{eta_port}"),
    };
    agent.start();
    agent.wait_ready(&http).await;

    // A host probe of this machine registers with the agent.
    let probe_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let probe_base = format!("http://{}", probe_listener.local_addr().unwrap());
    let probe_uuid = uuid::Uuid::new_v4();
    let cluster_uuid = uuid::Uuid::new_v4();
    let probe_config = serrano_probe::Config {
        probe_uuid: Some(probe_uuid),
        cluster_uuid: Some(cluster_uuid),
        agent: Some(serrano_probe::AgentLink {
            url: agent.base.clone(),
            token: Secret::new(TOKEN),
        }),
        exposed_url: probe_base.clone(),
        registration_retry_ms: 200,
        ..serrano_probe::Config::default()
    };
    let (probe_stop, probe_signal) = stopper();
    let probe_task = tokio::spawn(serrano_probe::serve_with(
        probe_config,
        vec![Secret::new(TOKEN)],
        probe_listener,
        probe_signal(),
    ));

    // The CTH sees the cluster, its inventory and live monitoring data (proxied by the agent).
    let cluster = cluster_uuid.to_string();
    eventually("the cluster at the CTH", Duration::from_secs(20), || {
        let (http, cth, cluster) = (http.clone(), cth.clone(), cluster.clone());
        async move {
            let (_, body) = get(&http, &format!("{cth}/clusters")).await;
            body["clusters"]
                .as_array()?
                .iter()
                .any(|c| c["uuid"] == cluster.as_str() && c["type"] == "host")
                .then_some(())
        }
    })
    .await;
    let (status, inventory) = get(&http, &format!("{cth}/clusters/inventory/{cluster}")).await;
    assert_eq!(status, 200, "{inventory}");
    let node_name = inventory["nodes"][0]["node_name"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, monitor) = get(&http, &format!("{cth}/clusters/monitor/{cluster}")).await;
    assert_eq!(status, 200, "{monitor}");
    let memory = &monitor["host_monitoring_data"]["Nodes"][0]["memory"];
    assert!(memory["node_memory_MemTotal_bytes"].as_f64().unwrap() > 0.0);
    let (status, metrics) = get(&http, &format!("{cth}/clusters/metrics/{cluster}")).await;
    assert_eq!(status, 200);
    assert_eq!(metrics["metrics"][0]["cluster_uuid"], cluster.as_str());
    assert_eq!(
        get(
            &http,
            &format!("{cth}/clusters/monitor/{}", uuid::Uuid::new_v4())
        )
        .await
        .0,
        404
    );

    // PMDS returns the stored history (written by the agent to VictoriaMetrics).
    let history = eventually("history in PMDS", Duration::from_secs(30), || {
        let (http, pmds, cluster, series) =
            (http.clone(), pmds.clone(), cluster.clone(), series.clone());
        async move {
            series.flush().await.ok()?;
            let (status, body) = get(
                &http,
                &format!("{pmds}/nodes/{cluster}?group=memory&format=raw&start=-5m"),
            )
            .await;
            (status == 200 && body.as_array().is_some_and(|rows| rows.len() >= 2)).then_some(body)
        }
    })
    .await;
    let row = &history[0];
    assert_eq!(row["node_name"], node_name.as_str());
    assert!(row["_field"].as_str().unwrap().starts_with("node_memory_"));
    assert!(row["_value"].as_f64().is_some());
    assert_eq!(
        get(&http, &format!("{pmds}/nodes/{cluster}?start=-1m&stop=-2m"))
            .await
            .0,
        400
    );

    // The registration produced an UP notification on the real broker.
    let statuses = probe_statuses(&kafka, &probe_uuid.to_string()).await;
    assert_eq!(
        statuses.first().map(String::as_str),
        Some("UP"),
        "{statuses:?}"
    );

    // Streaming through the CTH → agent → probe; the agent is killed and restarted meanwhile.
    let request = json!({"cluster_uuid": cluster, "action": "start", "reporting_rate": 1, "nodes": [node_name], "metrics": ["memory"]});
    let (status, session) = post(&http, &format!("{cth}/streaming"), request).await;
    assert_eq!(status, 201, "{session}");
    let session_id = session["session_id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(2)).await;
    agent.kill();
    let killed_at = std::time::SystemTime::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let restarted_at = std::time::SystemTime::now();
    agent.start();
    agent.wait_ready(&http).await;
    // Everything queued while the agent was away is acknowledged, nothing dropped.
    let session_view = || {
        let (http, probe_base, session_id) = (http.clone(), probe_base.clone(), session_id.clone());
        async move {
            let (_, body) = get(
                &http,
                &format!("{probe_base}/api/v1/telemetry/probe/streaming"),
            )
            .await;
            body["sessions"]
                .as_array()?
                .iter()
                .find(|s| s["session_id"] == session_id.as_str())
                .cloned()
        }
    };
    let produced = session_view().await.unwrap()["ticks"].as_u64().unwrap();
    assert!(produced >= 4, "the probe sampled only {produced} times");
    let view = eventually(
        "the probe's buffer to drain",
        Duration::from_secs(30),
        || async {
            let view = session_view().await?;
            (view["batches_acked"].as_u64()? >= produced).then_some(view)
        },
    )
    .await;
    assert_eq!(view["batches_dropped"], 0, "{view}");
    // Samples taken while the agent was dead reached the store after the restart (polls cannot
    // have written them: the agent was not running).
    let ns = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64
    };
    series.flush().await.unwrap();
    let during = eventually("samples of the outage", Duration::from_secs(20), || {
        let (series, cluster, node_name) = (series.clone(), cluster.clone(), node_name.clone());
        async move {
            series.flush().await.ok()?;
            let rows = series
                .query(&serrano_timeseries::Query {
                    bucket: cluster,
                    measurement: "nodes".into(),
                    tags: vec![
                        ("group".into(), "memory".into()),
                        ("node_name".into(), node_name),
                    ],
                    fields: vec!["node_memory_MemTotal_bytes".into()],
                    start_ns: ns(killed_at) + 200_000_000,
                    stop_ns: ns(restarted_at),
                    limit: None,
                })
                .await
                .ok()?;
            (rows.len() >= 2).then_some(rows.len())
        }
    })
    .await;
    assert!(during >= 2, "only {during} samples from the outage");
    let stop_request = json!({"cluster_uuid": cluster, "action": "stop", "session_id": session_id});
    let (status, body) = post(
        &http,
        &format!(
            "{agent_base}/api/v1/telemetry/agent/streaming",
            agent_base = agent.base
        ),
        stop_request,
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // The probe dies: the agent's next poll fails and a DOWN reaches the broker.
    let _ = probe_stop.send(true);
    let _ = probe_task.await;
    let probe_id = probe_uuid.to_string();
    eventually("a DOWN notification", Duration::from_secs(30), || {
        let (kafka, probe_id) = (&kafka, probe_id.clone());
        async move {
            let statuses = probe_statuses(kafka, &probe_id).await;
            (statuses.last().map(String::as_str) == Some("DOWN")).then_some(())
        }
    })
    .await;
    let (_, probe_doc) = get(
        &http,
        &format!("{}/api/v1/telemetry/agent/register/{probe_id}", agent.base),
    )
    .await;
    assert_eq!(probe_doc["status"], "DOWN");

    agent.kill();
    let _ = stop.send(true);
    let _ = docs;
}

//! Streaming telemetry from a host probe to a real gRPC receiver (`serrano-telemetry-stream`,
//! as the Enhanced Telemetry Agent runs it): start, samples on the wire, listing, stop with
//! acknowledgement, and every refusal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use serrano_probe::{AgentLink, Config, Probe, ProbeKind, router};
use serrano_service::Secret;
use serrano_telemetry_stream::{BatchSink, ReceiverOptions, SinkError, pb};

mod common;

use common::{PREFIX, TOKEN, call, eventually, get, message, post};

const AGENT_TOKEN: &str = "agent-stream-token";

#[derive(Default)]
struct Collect(Mutex<Vec<pb::MetricBatch>>);

#[async_trait]
impl BatchSink for Collect {
    async fn accept(&self, batch: pb::MetricBatch) -> Result<(), SinkError> {
        self.0.lock().unwrap().push(batch);
        Ok(())
    }
}

/// A receiver as the agent runs it, requiring the agent's token; returns its endpoint.
async fn receiver(sink: Arc<Collect>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serrano_telemetry_stream::serve(
        listener,
        sink,
        ReceiverOptions {
            tokens: vec![AGENT_TOKEN.to_owned()],
            ..ReceiverOptions::default()
        },
        std::future::pending(),
    ));
    endpoint
}

fn probe_app(max_sessions: usize) -> (Arc<Probe>, axum::Router) {
    let config = Config {
        kind: ProbeKind::Host,
        agent: Some(AgentLink {
            url: "http://127.0.0.1:1".to_owned(),
            token: Secret::new(AGENT_TOKEN),
        }),
        max_streaming_sessions: max_sessions,
        ..Config::default()
    };
    let mut probe = Probe::new(&config).unwrap();
    // Short streams, so that acknowledgements come quickly.
    probe.sender_options.rotate_every = Duration::from_millis(100);
    probe.stream_close_deadline = Duration::from_secs(2);
    let probe = Arc::new(probe);
    let app = router(probe.clone(), vec![Secret::new(TOKEN)], 1 << 20);
    (probe, app)
}

fn start_body(receiver: &str, session: &str) -> Value {
    json!({"action": "start", "reporting_rate": 0.1, "nodes": [serrano_probe::hostname()],
        "metrics": ["cpu", "memory"], "receiver": receiver, "session_id": session, "request": "streaming"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_node_samples_to_the_agent() {
    let sink = Arc::new(Collect::default());
    let endpoint = receiver(sink.clone()).await;
    let (probe, app) = probe_app(4);
    let hostname = serrano_probe::hostname();

    let mut body = start_body(&endpoint, "s-1");
    body["cluster_uuid"] = json!(probe.identity.cluster_uuid);
    let (status, answer) = post(&app, &format!("{PREFIX}/streaming"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer, json!({"session_id": "s-1"}));

    eventually(
        Duration::from_secs(20),
        "three batches at the agent",
        || sink.0.lock().unwrap().len() >= 3,
    )
    .await;
    let batches = sink.0.lock().unwrap().clone();
    for (index, batch) in batches.iter().enumerate() {
        assert_eq!(batch.source_uuid, probe.identity.probe_uuid.to_string());
        assert_eq!(batch.cluster_uuid, probe.identity.cluster_uuid.to_string());
        assert_eq!(batch.session_id, "s-1");
        assert_eq!(batch.seq, index as u64 + 1);
        let mut groups: Vec<&str> = batch
            .samples
            .iter()
            .map(|s| s.tags["group"].as_str())
            .collect();
        groups.sort_unstable();
        assert_eq!(groups, ["cpu", "memory"]);
        for sample in &batch.samples {
            assert_eq!(sample.measurement, "nodes");
            assert_eq!(sample.tags["node_name"], hostname);
            assert!(sample.time_ns > 1_600_000_000_000_000_000);
        }
        let cpu = batch
            .samples
            .iter()
            .find(|s| s.tags["group"] == "cpu")
            .unwrap();
        assert!(cpu.fields["node_cpus"] >= 1.0);
        assert!(cpu.fields["cpu_0_used"] > 0.0);
        let memory = batch
            .samples
            .iter()
            .find(|s| s.tags["group"] == "memory")
            .unwrap();
        assert!(memory.fields["node_memory_MemTotal_bytes"] > 0.0);
    }

    let (status, list) = get(&app, &format!("{PREFIX}/streaming")).await;
    assert_eq!(status, StatusCode::OK);
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["session_id"], "s-1");
    assert_eq!(sessions[0]["receiver"], endpoint);
    assert_eq!(sessions[0]["reporting_rate"], 0.1);
    assert_eq!(sessions[0]["metrics"], json!(["cpu", "memory"]));
    assert!(sessions[0]["ticks"].as_u64().unwrap() >= 3);
    assert!(sessions[0]["samples"].as_u64().unwrap() >= 6);
    let (_, metrics) = get(&app, "/metrics").await;
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("probe_streaming_sessions 1")
    );

    // The same session id again is refused (in use, and seqs would restart).
    let (status, answer) = post(
        &app,
        &format!("{PREFIX}/streaming"),
        start_body(&endpoint, "s-1"),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");

    // Stop through the action: everything sent is acknowledged.
    let (status, view) = post(
        &app,
        &format!("{PREFIX}/streaming"),
        json!({"action": "stop", "session_id": "s-1"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["session_id"], "s-1");
    assert_eq!(view["batches_queued"], 0, "{view}");
    let acked = view["batches_acked"].as_u64().unwrap();
    assert!(acked >= 3, "{view}");
    assert_eq!(sink.0.lock().unwrap().len() as u64, acked);
    assert!(probe.streams.is_empty());

    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("{PREFIX}/streaming/s-1"),
        None,
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, answer) = post(
        &app,
        &format!("{PREFIX}/streaming"),
        start_body(&endpoint, "s-1"),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a used id stays used: {answer}"
    );

    // A generated session id, stopped with DELETE.
    let mut body = start_body(&endpoint, "x");
    body.as_object_mut().unwrap().remove("session_id");
    let (status, answer) = post(&app, &format!("{PREFIX}/streaming"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let id = answer["session_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);
    let (status, view) = call(
        &app,
        Method::DELETE,
        &format!("{PREFIX}/streaming/{id}"),
        None,
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["session_id"], id);
}

#[tokio::test]
async fn bad_streaming_requests_are_refused() {
    let (probe, app) = probe_app(1);
    let receiver = "http://127.0.0.1:1";
    let path = format!("{PREFIX}/streaming");
    let base = start_body(receiver, "ok-1");
    let with = |key: &str, value: Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    let without = |key: &str| {
        let mut body = base.clone();
        body.as_object_mut().unwrap().remove(key);
        body
    };
    for (body, status, needle) in [
        (with("nodes", json!(["no-such-node"])), 400, "no-such-node"),
        (with("metrics", json!(["gpu"])), 400, "gpu"),
        (without("receiver"), 400, "receiver"),
        (with("receiver", json!("ftp://agent:7119")), 400, "receiver"),
        (without("reporting_rate"), 400, "reporting_rate"),
        (with("reporting_rate", json!(0)), 400, "reporting_rate"),
        (with("reporting_rate", json!(7200)), 400, "reporting_rate"),
        (
            with(
                "cluster_uuid",
                json!("7628b895-3a91-4f0c-b0b7-033eab309891"),
            ),
            400,
            "cluster",
        ),
        (
            with("cluster_uuid", json!("not-a-uuid")),
            400,
            "cluster_uuid",
        ),
        (with("session_id", json!("a/b")), 400, "session_id"),
        (with("action", json!("pause")), 400, "action"),
        (with("request", json!("polling")), 400, "request"),
        (with("extra", json!(1)), 400, "extra"),
        (json!({"action": "stop"}), 400, "session_id"),
        (
            json!({"action": "stop", "session_id": "unknown"}),
            404,
            "unknown",
        ),
    ] {
        let (got, answer) = post(&app, &path, body.clone()).await;
        assert_eq!(got.as_u16(), status, "{body}: {answer}");
        assert!(message(&answer).contains(needle), "{body}: {answer}");
    }
    assert!(probe.streams.is_empty());

    // One session at most here: the second is refused until the first stops.
    let (status, answer) = post(&app, &path, start_body(receiver, "one")).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (status, answer) = post(&app, &path, start_body(receiver, "two")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(
        message(&answer).contains("1 streaming sessions"),
        "{answer}"
    );
    probe.streams.stop_all().await;
    let (status, answer) = post(&app, &path, start_body(receiver, "two")).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    probe.streams.stop_all().await;
}

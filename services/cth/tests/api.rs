//! Every route of the Central Telemetry Handler against the shapes of D6.7 4.4.3 and
//! docs/telemetry.md, over an operational DB seeded directly with the agents' documents, a fake
//! agent and a fake storage gateway.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{
    AGENT_TOKEN, AgentMode, Cth, EDGE, FakeAgent, FakeGateway, GATEWAY_TOKEN, GatewayMode, HOST,
    HPC, K8S, K8S_2, closed_url, config,
};
use serde_json::{Value, json};
use serrano_bus::{NOTIFICATION_MESSAGES_TOPIC, StartAt};

async fn platform() -> (Cth, FakeAgent, FakeAgent) {
    let agent = FakeAgent::start().await;
    let agent_2 = FakeAgent::start().await;
    let cth = Cth::start(config(None)).await;
    cth.seed_platform(&agent.url, &agent_2.url).await;
    (cth, agent, agent_2)
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused() {
    let cth = Cth::start(config(None)).await;
    for path in ["", "/clusters", "/deployments", "/kernel_metrics"] {
        let (status, body) = cth.call_with("GET", path, None, None).await;
        assert_eq!(status, 401, "{path}");
        assert_eq!(body["error"]["code"], "unauthorized");
        let (status, _) = cth.call_with("GET", path, None, Some("wrong")).await;
        assert_eq!(status, 401, "{path}");
    }
    cth.stop().await;
}

#[tokio::test]
async fn configuration_is_read_and_changed_with_a_notification() {
    let cth = Cth::start(config(None)).await;
    let (status, body) = cth.get("").await;
    assert_eq!(status, 200);
    assert_eq!(body["uuid"], "cth-under-test");
    assert_eq!(body["address"], "127.0.0.1");
    let port = body["port"].as_u64().unwrap();
    assert!(cth.url.ends_with(&format!(":{port}")));
    assert_eq!(body["exposed_service"], cth.url);
    assert_eq!(body["query_interval"], 3600);
    assert_eq!(body["query_timeout"], 1);
    assert_eq!(body["active_monitoring"], true);
    // Trailing slash served too.
    assert_eq!(cth.get("/").await.1, body);

    let mut reader = cth
        .bus
        .reader(NOTIFICATION_MESSAGES_TOPIC, StartAt::Beginning)
        .await
        .unwrap();
    let (status, changed) = cth
        .call(
            "PUT",
            "",
            Some(json!({"query_interval": 30, "active_monitoring": false})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(changed["query_interval"], 30);
    assert_eq!(changed["query_timeout"], 1);
    assert_eq!(changed["active_monitoring"], false);
    assert_eq!(changed["uuid"], "cth-under-test");
    assert_eq!(cth.get("").await.1, changed);

    let record = reader
        .next(Duration::from_secs(2))
        .await
        .unwrap()
        .expect("a notification");
    let notice: Value = serde_json::from_slice(&record.payload).unwrap();
    let message = notice["message"].as_str().unwrap();
    assert!(message.contains("configuration changed"), "{message}");
    assert!(message.contains("query_interval=30"), "{message}");
    assert!(notice["timestamp"].as_i64().unwrap() > 1_600_000_000);

    for (bad, what) in [
        (json!({"query_interval": 0}), "query_interval"),
        (json!({"query_timeout": 86_401}), "query_timeout"),
        (json!({"query_interval": 10, "uuid": "x"}), "uuid"),
        (json!({}), "nothing to change"),
        (json!({"query_interval": "ten"}), "query_interval"),
    ] {
        let (status, body) = cth.call("PUT", "", Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(what), "{bad}: {message}");
    }
    // Refused updates changed nothing and published nothing more.
    assert_eq!(cth.get("").await.1["query_interval"], 30);
    assert!(
        reader
            .next(Duration::from_millis(200))
            .await
            .unwrap()
            .is_none()
    );
    cth.stop().await;
}

#[tokio::test]
async fn inventory_lists_agents_and_probes() {
    let (cth, agent, _agent_2) = platform().await;
    for path in ["/inventory", "/entities"] {
        let (status, body) = cth.get(path).await;
        assert_eq!(status, 200);
        let agents = body["agents"].as_array().unwrap();
        assert_eq!(agents.len(), 2);
        assert_eq!(agents[0]["type"], "Agent");
        assert_eq!(agents[0]["url"], agent.url);
        assert_eq!(agents[0]["probes"].as_array().unwrap().len(), 4);
        let probes = body["probes"].as_array().unwrap();
        assert_eq!(probes.len(), 5);
        assert!(
            probes
                .iter()
                .all(|p| p["type"].as_str().unwrap().starts_with("Probe."))
        );
        assert_eq!(probes[0]["status"], "UP");
    }
    cth.stop().await;
}

#[tokio::test]
async fn infrastructure_shows_placement_fields_per_cluster_kind() {
    let (cth, _agent, _agent_2) = platform().await;
    let (status, body) = cth.get("/infrastructure").await;
    assert_eq!(status, 200);
    let k8s = body["k8s"].as_array().unwrap();
    assert_eq!(k8s.len(), 2);
    let uvt = k8s.iter().find(|c| c["uuid"] == K8S).unwrap();
    assert_eq!(uvt["name"], "UVT Production");
    assert_eq!(
        uvt["inventory"][0],
        json!({"node_info": {"architecture": "amd64"},
               "node_capacity": {"total_fpga": 0, "total_gpu": 1, "cpu": "8", "memory": "32Gi"},
               "node_labels": {"vaccel": "true", "security-tier": 2, "kubernetes.io/os": "linux"},
               "node_name": "serrano-k8s-worker-01"})
    );
    assert_eq!(
        body["hpc"],
        json!([{"uuid": HPC, "name": "hawk",
                "inventory": {"partitions": [{"name": "cpu", "total_nodes": 4, "total_cpus": 128}]}}])
    );
    assert_eq!(body["host"][0]["uuid"], HOST);
    assert_eq!(body["host"][0]["inventory"][0]["node_name"], "lab-host-1");
    assert!(body.get("kernels").is_none());

    // Kernel counters, filtered by deployment mode.
    for (mode, cluster, kernel_mode) in [("FaaS", K8S, "gpu"), ("Standalone", K8S_2, "cpu")] {
        let (status, _) = cth
            .call(
                "PUT",
                "/serrano_kernel_deployments",
                Some(json!({"deployment_mode": mode, "cluster_uuid": cluster,
                            "counter_diff": 2, "kernel_mode": kernel_mode})),
            )
            .await;
        assert_eq!(status, 200);
    }
    let (_, all) = cth.get("/infrastructure?kernels=all").await;
    assert_eq!(all["kernels"].as_array().unwrap().len(), 2);
    let (_, faas) = cth.get("/infrastructure?kernels=FaaS").await;
    assert_eq!(
        faas["kernels"],
        json!([{"deployment_mode": "FaaS", "cluster_uuid": K8S, "gpu": 2}])
    );
    let (_, standalone) = cth.get("/infrastructure?kernels=standalone").await;
    assert_eq!(standalone["kernels"][0]["cluster_uuid"], K8S_2);

    let (status, body) = cth.get("/infrastructure?kernels=gpu").await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("kernels")
    );
    let (status, _) = cth.get("/infrastructure?cluster=x").await;
    assert_eq!(status, 400);
    cth.stop().await;
}

#[tokio::test]
async fn cluster_capacity_security_and_latest_state() {
    let (cth, _agent, _agent_2) = platform().await;
    let (status, body) = cth.get(&format!("/infrastructure/inventory/{K8S}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["capacity"],
        json!([
            {"node_name": "serrano-k8s-worker-01", "total_fpga": 0, "total_gpu": 1, "cpu": "8", "memory": "32Gi"},
            {"node_name": "serrano-k8s-worker-02", "total_fpga": 0, "total_gpu": 0, "cpu": "8", "memory": "32Gi"}
        ])
    );
    assert_eq!(
        body["security"],
        json!([
            {"node_name": "serrano-k8s-worker-01", "vaccel": "true", "security-tier": 2},
            {"node_name": "serrano-k8s-worker-02", "vaccel": "true", "security-tier": 1}
        ])
    );
    let (status, hpc) = cth.get(&format!("/infrastructure/inventory/{HPC}")).await;
    assert_eq!(status, 200);
    assert_eq!(hpc, json!({"capacity": [], "security": []}));

    // Not polled yet: known cluster, no state.
    let (status, monitor) = cth.get(&format!("/infrastructure/monitor/{K8S}")).await;
    assert_eq!(status, 200);
    assert_eq!(monitor["cluster_uuid"], K8S);
    assert_eq!(monitor["type"], "k8s");
    assert!(monitor["state"].is_null());
    assert!(monitor["timestamp"].is_null());

    let now = serrano_cth::store::unix_now();
    for (timestamp, pods) in [(now - 120, 1), (now - 60, 2), (now - 90, 3)] {
        cth.insert(
            "cluster_state_metrics",
            json!({"cluster_uuid": K8S, "timestamp": timestamp,
                   "state": {"uuid": "probe-k8s", "type": "Probe.k8s",
                             "kubernetes_monitoring_data": {"Pods": pods}}}),
        )
        .await;
    }
    let (status, monitor) = cth.get(&format!("/infrastructure/monitor/{K8S}")).await;
    assert_eq!(status, 200);
    assert_eq!(monitor["timestamp"], now - 60);
    assert_eq!(monitor["state"]["kubernetes_monitoring_data"]["Pods"], 2);
    let age = monitor["age_seconds"].as_i64().unwrap();
    assert!((60..70).contains(&age), "{age}");

    for path in [
        "/infrastructure/inventory/nope",
        "/infrastructure/monitor/nope",
    ] {
        let (status, body) = cth.get(path).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (status, _) = cth.get("/infrastructure/monitor/bad$id").await;
    assert_eq!(status, 400);
    cth.stop().await;
}

#[tokio::test]
async fn clusters_are_listed_read_and_their_metrics_served_newest_first() {
    let (cth, _agent, _agent_2) = platform().await;
    let (status, body) = cth.get("/clusters").await;
    assert_eq!(status, 200);
    let clusters = body["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 5);
    assert_eq!(
        clusters[0],
        json!({"uuid": K8S, "type": "k8s", "name": "UVT Production"})
    );
    let (status, doc) = cth.get(&format!("/clusters/{HPC}")).await;
    assert_eq!(status, 200);
    assert_eq!(doc["inventory"]["scheduler"], "slurm");
    assert_eq!(doc["agent_uuid"], "agent-1");
    let (status, _) = cth
        .get("/clusters/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(status, 404);

    for timestamp in [100, 300, 200] {
        cth.insert(
            "cluster_state_metrics",
            json!({"cluster_uuid": HPC, "timestamp": timestamp, "state": {"t": timestamp}}),
        )
        .await;
    }
    cth.insert(
        "cluster_state_metrics",
        json!({"cluster_uuid": K8S, "timestamp": 999, "state": {}}),
    )
    .await;
    let (status, latest) = cth.get(&format!("/clusters/metrics/{HPC}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        latest,
        json!({"metrics": [{"cluster_uuid": HPC, "timestamp": 300, "state": {"t": 300}}]})
    );
    let (_, all) = cth
        .get(&format!("/clusters/metrics/{HPC}?target=all"))
        .await;
    let times: Vec<i64> = all["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["timestamp"].as_i64().unwrap())
        .collect();
    assert_eq!(times, vec![300, 200, 100]);
    let (status, _) = cth
        .get(&format!("/clusters/metrics/{HPC}?target=some"))
        .await;
    assert_eq!(status, 400);
    let (status, _) = cth.get("/clusters/metrics/unknown-cluster").await;
    assert_eq!(status, 404);
    cth.stop().await;
}

#[tokio::test]
async fn live_inventory_and_monitor_calls_go_to_the_owning_agent() {
    let (cth, agent, agent_2) = platform().await;
    let (status, inventory) = cth.get(&format!("/clusters/inventory/{K8S}")).await;
    assert_eq!(status, 200);
    assert_eq!(inventory["uuid"], "probe-k8s");
    assert_eq!(
        inventory["kubernetes_inventory_data"][0]["node_name"],
        "live-node"
    );
    let (status, monitor) = cth
        .get(&format!("/clusters/monitor/{K8S_2}?target=resources"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(monitor["uuid"], "probe-k8s-2");
    assert_eq!(monitor["target"], "target=resources");
    // The spelling of the D6.7 example.
    let (status, monitor) = cth.get(&format!("/cluster/monitor/{HPC}")).await;
    assert_eq!(status, 200);
    assert_eq!(monitor["uuid"], "probe-hpc");

    let calls = agent.recorded();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].method, "GET");
    assert_eq!(calls[0].path, "/api/v1/telemetry/agent/inventory/probe-k8s");
    assert_eq!(
        calls[0].authorization.as_deref(),
        Some(format!("Bearer {AGENT_TOKEN}").as_str())
    );
    assert_eq!(calls[1].path, "/api/v1/telemetry/agent/monitor/probe-hpc");
    assert_eq!(calls[1].query, None);
    let calls_2 = agent_2.recorded();
    assert_eq!(calls_2.len(), 1);
    assert_eq!(
        calls_2[0].path,
        "/api/v1/telemetry/agent/monitor/probe-k8s-2"
    );
    assert_eq!(calls_2[0].query.as_deref(), Some("target=resources"));

    let (status, _) = cth
        .get(&format!("/clusters/monitor/{K8S}?target=nodes"))
        .await;
    assert_eq!(status, 400);
    let (status, _) = cth.get("/clusters/inventory/unknown").await;
    assert_eq!(status, 404);
    assert_eq!(agent.recorded().len(), 2, "no call for refused requests");

    // Agent failures: error answer 502, too slow 504.
    agent.set_mode(AgentMode::Fail(500));
    let (status, body) = cth.get(&format!("/clusters/inventory/{K8S}")).await;
    assert_eq!(status, 502);
    assert_eq!(body["error"]["code"], "agent_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("agent says")
    );
    agent.set_mode(AgentMode::Slow(Duration::from_secs(3)));
    let (status, body) = cth.get(&format!("/clusters/monitor/{K8S}")).await;
    assert_eq!(status, 504);
    assert_eq!(body["error"]["code"], "agent_timeout");
    cth.stop().await;
}

#[tokio::test]
async fn unreachable_or_missing_agents_answer_503() {
    let agent = FakeAgent::start().await;
    let cth = Cth::start(config(None)).await;
    cth.seed_platform(&agent.url, &closed_url().await).await;
    let (status, body) = cth.get(&format!("/clusters/inventory/{K8S_2}")).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "agent_unreachable");

    // A cluster whose agent is not registered, and one with no agent at all.
    cth.insert(
        "clusters",
        json!({"uuid": "orphan", "type": "k8s", "name": "o",
        "agent_uuid": "gone", "probe_uuid": "p"}),
    )
    .await;
    cth.insert(
        "clusters",
        json!({"uuid": "lonely", "type": "k8s", "name": "l"}),
    )
    .await;
    for cluster in ["orphan", "lonely"] {
        let (status, body) = cth.get(&format!("/clusters/monitor/{cluster}")).await;
        assert_eq!(status, 503, "{cluster}");
        assert_eq!(body["error"]["code"], "no_agent");
    }
    cth.stop().await;
}

fn monitoring_entity(deployment: &str) -> Value {
    // D6.7 4.4.3.2, with clusters of this platform.
    json!({
        "deployment_uuid": deployment,
        "clusters": [K8S, K8S_2],
        K8S: [
            {"k8s_deployment_name": "acceleration-service-data-manager",
             "k8s_deployment_namespace": "integration",
             "k8s_deployment_uuid": "06802ae3-9e00-41ae-a7a0-15ffe2505db0"},
            {"k8s_deployment_name": "acceleration-service-classifier-training",
             "k8s_deployment_namespace": "integration",
             "k8s_deployment_uuid": "97271b19-36c0-4458-b534-4736bae470b2"}
        ],
        K8S_2: [
            {"k8s_deployment_name": "acceleration-service-model-inference",
             "k8s_deployment_namespace": "integration",
             "k8s_deployment_uuid": "e10e05a4-dc11-4cef-bb09-21a9d90c6a5b"}
        ]
    })
}

const DEPLOYMENT: &str = "fdf45855-1299-47f1-8ea6-98be8d89030b";

#[tokio::test]
async fn deployments_are_registered_forwarded_served_and_removed() {
    let (cth, agent, agent_2) = platform().await;
    let (status, body) = cth
        .call("POST", "/deployments", Some(monitoring_entity(DEPLOYMENT)))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body, json!({}));

    let calls = agent.recorded();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "POST");
    assert_eq!(calls[0].path, "/api/v1/telemetry/agent/deployments");
    assert_eq!(
        calls[0].authorization.as_deref(),
        Some(format!("Bearer {AGENT_TOKEN}").as_str())
    );
    assert_eq!(
        calls[0].body,
        json!({"deployment_uuid": DEPLOYMENT,
               "k8s_deployments": monitoring_entity(DEPLOYMENT)[K8S]})
    );
    let calls_2 = agent_2.recorded();
    assert_eq!(calls_2.len(), 1);
    assert_eq!(
        calls_2[0].body["k8s_deployments"][0]["k8s_deployment_name"],
        "acceleration-service-model-inference"
    );

    let (status, list) = cth.get("/deployments/").await;
    assert_eq!(status, 200);
    let deployments = list["deployments"].as_array().unwrap();
    assert_eq!(deployments.len(), 1);
    assert_eq!(deployments[0]["deployment_uuid"], DEPLOYMENT);
    assert_eq!(deployments[0]["clusters"], json!([K8S, K8S_2]));
    assert!(deployments[0]["timestamp"].as_i64().unwrap() > 1_600_000_000);

    let (status, per_cluster) = cth.get("/cluster_deployments").await;
    assert_eq!(status, 200);
    assert_eq!(
        per_cluster["cluster_deployments"][K8S]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        per_cluster["cluster_deployments"][K8S_2]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Metrics the agents recorded: two polls of three pods; the latest per pod is served.
    for timestamp in [1_700_838_820, 1_700_838_850] {
        for (cluster, name, group, node) in [
            (
                K8S,
                "acceleration-service-data-manager-475b4c6b85-k89b5",
                "s1",
                "serrano3",
            ),
            (
                K8S_2,
                "acceleration-service-model-inference-5b4c6b4785-g7jb5",
                "s2",
                "bf",
            ),
            (
                K8S,
                "acceleration-service-classifier-training-21a9d90c6a-5b4c6",
                "s3",
                "serrano3",
            ),
        ] {
            cth.insert(
                "cluster_deployment_metrics",
                json!({
                "deployment_uuid": DEPLOYMENT, "cluster_uuid": cluster, "name": name,
                "namespace": "integration", "node": node, "group_id": group, "phase": "Running",
                "restarts": 0, "pod_ip": "192.168.213.61", "host_ip": "192.168.12.110",
                "creation_timestamp": 1_700_838_818, "start_time": 1_700_838_818,
                "usage": {"cpu": format!("{timestamp}n"), "memory": "150672Ki"},
                "timestamp": timestamp}),
            )
            .await;
        }
    }
    cth.insert(
        "cluster_deployment_metrics",
        json!({"deployment_uuid": "other", "cluster_uuid": K8S,
        "name": "x", "namespace": "n", "timestamp": 1_700_838_860}),
    )
    .await;
    let (status, metrics) = cth.get(&format!("/deployments/{DEPLOYMENT}")).await;
    assert_eq!(status, 200);
    let metrics = metrics["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 3);
    let groups: Vec<&str> = metrics
        .iter()
        .map(|m| m["group_id"].as_str().unwrap())
        .collect();
    assert_eq!(groups, vec!["s1", "s2", "s3"]);
    assert!(metrics.iter().all(|m| m["timestamp"] == 1_700_838_850));
    assert_eq!(metrics[1]["cluster_uuid"], K8S_2);
    assert_eq!(
        metrics[0]["usage"],
        json!({"cpu": "1700838850n", "memory": "150672Ki"})
    );

    // The history, oldest first, from `start`.
    let (status, history) = cth.get(&format!("/deployment_metrics/{DEPLOYMENT}")).await;
    assert_eq!(status, 200);
    assert_eq!(history["metrics"].as_array().unwrap().len(), 6);
    assert_eq!(history["metrics"][0]["timestamp"], 1_700_838_820);
    let (_, window) = cth
        .get(&format!(
            "/deployment_metrics/{DEPLOYMENT}?start=1700838830"
        ))
        .await;
    assert_eq!(window["metrics"].as_array().unwrap().len(), 3);
    let (status, _) = cth
        .get(&format!("/deployment_metrics/{DEPLOYMENT}?start=soon"))
        .await;
    assert_eq!(status, 400);

    let (status, body) = cth
        .call("DELETE", &format!("/deployments/{DEPLOYMENT}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let last = agent.recorded().pop().unwrap();
    assert_eq!(last.method, "DELETE");
    assert_eq!(
        last.path,
        format!("/api/v1/telemetry/agent/deployments/{DEPLOYMENT}")
    );
    assert_eq!(agent_2.recorded().pop().unwrap().method, "DELETE");
    assert_eq!(cth.get("/deployments").await.1, json!({"deployments": []}));
    let (status, _) = cth.get(&format!("/deployments/{DEPLOYMENT}")).await;
    assert_eq!(status, 404);
    let (status, _) = cth
        .call("DELETE", &format!("/deployments/{DEPLOYMENT}"), None)
        .await;
    assert_eq!(status, 404);
    cth.stop().await;
}

#[tokio::test]
async fn registration_is_all_or_nothing() {
    let (cth, agent, agent_2) = platform().await;

    // Unknown cluster: 404, nothing forwarded, nothing stored.
    let mut entity = monitoring_entity(DEPLOYMENT);
    entity["clusters"] = json!([K8S, "11111111-2222-3333-4444-555555555555"]);
    let (status, body) = cth.call("POST", "/deployments", Some(entity)).await;
    assert_eq!(status, 404);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("11111111")
    );
    assert!(agent.recorded().is_empty());

    // Malformed entities: 400.
    for bad in [
        json!({"clusters": [K8S]}),
        json!({"deployment_uuid": DEPLOYMENT, "clusters": [K8S], K8S: [{"k8s_deployment_name": "x"}]}),
        json!({"deployment_uuid": DEPLOYMENT, "clusters": "all"}),
        json!([1, 2]),
    ] {
        let (status, _) = cth.call("POST", "/deployments", Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}");
    }

    // The second agent refuses: the first is told to forget it, nothing is stored.
    agent_2.set_mode(AgentMode::Fail(500));
    let (status, body) = cth
        .call("POST", "/deployments", Some(monitoring_entity(DEPLOYMENT)))
        .await;
    assert_eq!(status, 502);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not registered")
    );
    let calls: Vec<(String, String)> = agent
        .recorded()
        .into_iter()
        .map(|c| (c.method, c.path))
        .collect();
    assert_eq!(
        calls,
        vec![
            (
                "POST".to_owned(),
                "/api/v1/telemetry/agent/deployments".to_owned()
            ),
            (
                "DELETE".to_owned(),
                format!("/api/v1/telemetry/agent/deployments/{DEPLOYMENT}")
            ),
        ]
    );
    assert_eq!(cth.get("/deployments").await.1, json!({"deployments": []}));
    let (status, _) = cth.get(&format!("/deployments/{DEPLOYMENT}")).await;
    assert_eq!(status, 404);

    // Too slow: 504, not stored.
    agent_2.set_mode(AgentMode::Slow(Duration::from_secs(3)));
    let (status, _) = cth
        .call("POST", "/deployments", Some(monitoring_entity(DEPLOYMENT)))
        .await;
    assert_eq!(status, 504);
    assert_eq!(cth.get("/deployments").await.1["deployments"], json!([]));

    // Back to normal: registered; then removal while an agent fails keeps it for a retry.
    agent_2.set_mode(AgentMode::Ok);
    let (status, _) = cth
        .call("POST", "/deployments", Some(monitoring_entity(DEPLOYMENT)))
        .await;
    assert_eq!(status, 201);
    agent_2.set_mode(AgentMode::Fail(503));
    let (status, body) = cth
        .call("DELETE", &format!("/deployments/{DEPLOYMENT}"), None)
        .await;
    assert_eq!(status, 502);
    assert!(body["error"]["message"].as_str().unwrap().contains("retry"));
    assert_eq!(
        cth.get("/deployments").await.1["deployments"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // An agent that no longer knows the deployment counts as done.
    agent_2.set_mode(AgentMode::Fail(404));
    let (status, _) = cth
        .call("DELETE", &format!("/deployments/{DEPLOYMENT}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(cth.get("/deployments").await.1["deployments"], json!([]));
    cth.stop().await;
}

#[tokio::test]
async fn registration_with_an_unreachable_agent_is_503() {
    let agent = FakeAgent::start().await;
    let cth = Cth::start(config(None)).await;
    cth.seed_platform(&agent.url, &closed_url().await).await;
    let (status, body) = cth
        .call("POST", "/deployments", Some(monitoring_entity(DEPLOYMENT)))
        .await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "agent_unreachable");
    // The first agent had accepted; it was told to forget it again.
    let methods: Vec<String> = agent.recorded().into_iter().map(|c| c.method).collect();
    assert_eq!(methods, vec!["POST", "DELETE"]);
    assert_eq!(cth.get("/deployments").await.1["deployments"], json!([]));
    cth.stop().await;
}

#[tokio::test]
async fn the_d67_entity_with_a_listed_cluster_without_deployments() {
    let (cth, agent, agent_2) = platform().await;
    // As in D6.7: a listed cluster without a list (the HPC here) and a keyed one not listed.
    let entity = json!({
        "deployment_uuid": DEPLOYMENT, "timestamp": 1_700_838_788,
        "clusters": [HPC, K8S_2],
        K8S: monitoring_entity(DEPLOYMENT)[K8S],
        K8S_2: monitoring_entity(DEPLOYMENT)[K8S_2],
    });
    let (status, _) = cth.call("POST", "/deployments", Some(entity)).await;
    assert_eq!(status, 201);
    assert_eq!(
        agent.recorded().len(),
        1,
        "only K8S of the first agent has deployments"
    );
    assert_eq!(agent_2.recorded().len(), 1);
    let (_, list) = cth.get("/deployments").await;
    assert_eq!(
        list,
        json!({"deployments": [{"deployment_uuid": DEPLOYMENT, "clusters": [HPC, K8S_2, K8S],
                                "timestamp": 1_700_838_788}]})
    );
    let (_, per_cluster) = cth.get("/cluster_deployments/").await;
    assert_eq!(per_cluster["cluster_deployments"][HPC], json!([]));
    cth.stop().await;
}

#[tokio::test]
async fn kernel_deployment_counters_never_go_below_zero() {
    let cth = Cth::start(config(None)).await;
    let update = |diff: i64, mode: &str| json!({"deployment_mode": "FaaS", "cluster_uuid": K8S, "counter_diff": diff, "kernel_mode": mode});
    let (status, doc) = cth
        .call("PUT", "/serrano_kernel_deployments", Some(update(3, "gpu")))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        doc,
        json!({"deployment_mode": "FaaS", "cluster_uuid": K8S, "gpu": 3})
    );
    let (_, doc) = cth
        .call(
            "PUT",
            "/serrano_kernel_deployments",
            Some(update(1, "fpga")),
        )
        .await;
    assert_eq!(doc["fpga"], 1);
    assert_eq!(doc["gpu"], 3);
    let (_, doc) = cth
        .call(
            "PUT",
            "/serrano_kernel_deployments",
            Some(update(-5, "gpu")),
        )
        .await;
    assert_eq!(doc["gpu"], 0);
    // Concurrent changes are not lost.
    let bumps =
        (0..20).map(|_| cth.call("PUT", "/serrano_kernel_deployments", Some(update(1, "cpu"))));
    for (status, _) in futures::future::join_all(bumps).await {
        assert_eq!(status, 200);
    }
    let (_, doc) = cth
        .call(
            "PUT",
            "/serrano_kernel_deployments",
            Some(update(-19, "cpu")),
        )
        .await;
    assert_eq!(doc["cpu"], 1, "20 concurrent increments, then -19");

    let (status, list) = cth
        .get("/serrano_kernel_deployments?deployment_mode=FaaS")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        list,
        json!({"kernel_deployments": [{"deployment_mode": "FaaS", "cluster_uuid": K8S, "gpu": 0, "fpga": 1, "cpu": 1}]})
    );
    let (_, none) = cth
        .get("/serrano_kernel_deployments?deployment_mode=Standalone")
        .await;
    assert_eq!(none, json!({"kernel_deployments": []}));
    let (status, _) = cth
        .get("/serrano_kernel_deployments?deployment_mode=batch")
        .await;
    assert_eq!(status, 400);

    for bad in [
        update(1, "$inc"),
        update(1, "gpu.x"),
        update(1, "cluster_uuid"),
        json!({"deployment_mode": "FaaS", "cluster_uuid": K8S, "counter_diff": 1}),
        json!({"deployment_mode": "FaaS", "cluster_uuid": K8S, "counter_diff": 1, "kernel_mode": "gpu", "x": 1}),
        json!({"deployment_mode": "Batch", "cluster_uuid": K8S, "counter_diff": 1, "kernel_mode": "gpu"}),
    ] {
        let (status, _) = cth
            .call("PUT", "/serrano_kernel_deployments", Some(bad.clone()))
            .await;
        assert_eq!(status, 400, "{bad}");
    }
    cth.stop().await;
}

fn kernel_record(uuid: &str, kernel: &str, mode: &str) -> Value {
    json!({"uuid": uuid, "kind": "KernelMetrics", "deployment_mode": "FaaS",
        "cluster_uuid": K8S_2, "kernel_name": kernel, "input_total_size_MB": 66.15,
        "deployed_at": 1_701_423_250, "completed_at": 1_701_423_285, "kernel_mode": mode,
        "metrics": {"load_vaccel_libs_ms": 1074, "load_model_libs_ms": 21999,
            "read_input_from_backend_ms": 3229, "parse_model_ms": 4134, "parse_input_ms": 37,
            "setup_vaccel_args_ms": 1, "run_kernel_ms": 1237, "push_output_to_backend_ms": 323,
            "total_ms": 33387},
        "status": 1})
}

#[tokio::test]
async fn kernel_metrics_are_stored_and_filtered() {
    let cth = Cth::start(config(None)).await;
    let logs = json!({"logs": [
        kernel_record("35923a24-8ee1-4fdd-ad12-82ce97b9fcbf", "knn", "gpu"),
        kernel_record("5133cbbb-f4ab-4e7f-8947-a180e0bbc373", "knn", "cpu"),
        kernel_record("f581bf77-53e2-4012-98d0-ad56be3a2be1", "savgol", "gpu"),
    ]});
    let (status, body) = cth.call("POST", "/kernel_metrics", Some(logs)).await;
    assert_eq!(status, 201);
    assert_eq!(body, json!({"stored": 3}));

    let (status, all) = cth.get("/kernel_metrics").await;
    assert_eq!(status, 200);
    assert_eq!(all["metrics"].as_array().unwrap().len(), 3);
    let (_, knn) = cth.get("/kernels_metrics?kernel_name=knn").await;
    let knn = knn["metrics"].as_array().unwrap();
    assert_eq!(knn.len(), 2);
    assert_eq!(
        knn[0],
        kernel_record("35923a24-8ee1-4fdd-ad12-82ce97b9fcbf", "knn", "gpu")
    );
    let (_, one) = cth
        .get("/kernel_metrics?request_uuid=5133cbbb-f4ab-4e7f-8947-a180e0bbc373")
        .await;
    assert_eq!(one["metrics"][0]["kernel_mode"], "cpu");
    let (_, gpu_knn) = cth
        .get(&format!(
            "/kernel_metrics?kernel_name=knn&kernel_mode=gpu&cluster_uuid={K8S_2}"
        ))
        .await;
    assert_eq!(gpu_knn["metrics"].as_array().unwrap().len(), 1);
    let (_, other) = cth
        .get(&format!("/kernel_metrics?cluster_uuid={K8S}"))
        .await;
    assert_eq!(other, json!({"metrics": []}));
    let (status, _) = cth.get("/kernel_metrics?kernel=knn").await;
    assert_eq!(status, 400);

    // Posting to the D6.7 spelling works too.
    let (status, _) = cth
        .call(
            "POST",
            "/kernels_metrics",
            Some(json!({"logs": [kernel_record("x-1", "knn", "gpu")]})),
        )
        .await;
    assert_eq!(status, 201);

    let many: Vec<Value> = (0..1001)
        .map(|i| kernel_record(&format!("r-{i}"), "knn", "cpu"))
        .collect();
    let (status, body) = cth
        .call("POST", "/kernel_metrics", Some(json!({"logs": many})))
        .await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "payload_too_large");

    let mut bad_kind = kernel_record("r", "knn", "gpu");
    bad_kind["kind"] = json!("Other");
    let mut missing = kernel_record("r", "knn", "gpu");
    missing.as_object_mut().unwrap().remove("kernel_name");
    for bad in [
        json!({"logs": [bad_kind]}),
        json!({"logs": [missing]}),
        json!({"logs": [kernel_record("r", "knn", "$gpu")]}),
        json!({"logs": []}),
        json!({"records": []}),
    ] {
        let (status, _) = cth.call("POST", "/kernel_metrics", Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}");
    }
    assert_eq!(
        cth.get("/kernel_metrics").await.1["metrics"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    cth.stop().await;
}

#[tokio::test]
async fn deployment_specific_metrics_are_filtered() {
    let cth = Cth::start(config(None)).await;
    for (cluster, service, timestamp) in [(K8S, "s1", 10), (K8S, "s2", 20), (K8S_2, "s1", 30)] {
        cth.insert(
            "deployments_specific_metrics",
            json!({"deployment_uuid": DEPLOYMENT,
            "cluster_uuid": cluster, "service_id": service, "metrics": {"latency_ms": timestamp},
            "timestamp": timestamp}),
        )
        .await;
    }
    let (status, all) = cth
        .get(&format!("/deployment_specific_metrics/{DEPLOYMENT}"))
        .await;
    assert_eq!(status, 200);
    let all = all["specific_metrics"].as_array().unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(
        all[0],
        json!({"cluster_uuid": K8S, "service_id": "s1", "metrics": {"latency_ms": 10}, "timestamp": 10})
    );
    let (_, s1) = cth
        .get(&format!(
            "/deployment_specific_metrics/{DEPLOYMENT}?service_id=s1"
        ))
        .await;
    assert_eq!(s1["specific_metrics"].as_array().unwrap().len(), 2);
    let (_, one) = cth
        .get(&format!(
            "/deployment_specific_metrics/{DEPLOYMENT}?service_id=s1&cluster_uuid={K8S_2}"
        ))
        .await;
    assert_eq!(one["specific_metrics"][0]["timestamp"], 30);
    let (_, none) = cth.get("/deployment_specific_metrics/other").await;
    assert_eq!(none, json!({"specific_metrics": []}));
    let (status, _) = cth
        .get(&format!(
            "/deployment_specific_metrics/{DEPLOYMENT}?service=s1"
        ))
        .await;
    assert_eq!(status, 400);
    cth.stop().await;
}

#[tokio::test]
async fn storage_locations_come_from_the_gateway_enriched_with_probe_metrics() {
    let gateway = FakeGateway::start().await;
    let agent = FakeAgent::start().await;
    let cth = Cth::start(config(Some(&gateway.url))).await;
    cth.seed_platform(&agent.url, &agent.url).await;
    cth.insert("cluster_state_metrics", json!({"cluster_uuid": EDGE, "timestamp": 1_700_000_100,
        "state": {"type": "Probe.EdgeStorage", "uuid": "probe-edge", "edge_storage_devices": [
            {"cluster_uuid": EDGE, "name": "edge-storage-devices-0", "node": "serrano-k8s-worker-02",
             "minio_node_disk_free_bytes": 19901820928.0, "minio_node_disk_total_bytes": 31509614592.0,
             "minio_node_disk_used_bytes": 11607793664.0, "minio_s3_requests_total": 0}]}})).await;

    let (status, body) = cth.get("/storage_locations").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["source"], "gateway");
    assert_eq!(body["age_seconds"], 0);
    assert_eq!(body["cloud_storage"], common::cloud_locations());
    let edge = body["edge_storage"].as_array().unwrap();
    assert_eq!(edge.len(), 2);
    assert_eq!(edge[0]["id"], 1);
    assert_eq!(edge[0]["cluster_uuid"], EDGE);
    assert_eq!(edge[0]["node"], "serrano-k8s-worker-02");
    assert_eq!(edge[0]["lat"], 45.7472357);
    assert_eq!(
        edge[0]["metrics"],
        json!([{"minio_node_disk_free_bytes": 19901820928.0,
                "minio_node_disk_total_bytes": 31509614592.0,
                "minio_node_disk_used_bytes": 11607793664.0,
                "minio_s3_requests_total": 0, "timestamp": 1_700_000_100}])
    );
    assert_eq!(edge[1]["id"], 2);
    assert_eq!(edge[1]["metrics"], json!([]));
    assert!(
        gateway
            .calls()
            .iter()
            .all(|c| c.authorization.as_deref() == Some(&format!("Bearer {GATEWAY_TOKEN}")))
    );
    assert!(gateway.calls().iter().any(|c| c.path == "/edge_locations"));

    let (_, edge_only) = cth.get("/storage_locations?target=edge").await;
    assert!(edge_only.get("cloud_storage").is_none());
    assert_eq!(edge_only["edge_storage"].as_array().unwrap().len(), 2);
    let (_, cloud_only) = cth.get("/storage_locations?target=cloud").await;
    assert!(cloud_only.get("edge_storage").is_none());
    assert_eq!(cloud_only["cloud_storage"][0]["id"], 25);
    let (status, _) = cth.get("/storage_locations?target=hpc").await;
    assert_eq!(status, 400);

    // The copies are in the operational DB, one generation only.
    let copies = cth
        .docs
        .find(
            "cloud_storage_locations",
            &serrano_docstore::Filter::all(),
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0]["name"], "azure-virginia");

    // Gateway down: the last copy, with its age and the reason.
    gateway.set_mode(GatewayMode::Down);
    let (status, stale) = cth.get("/storage_locations").await;
    assert_eq!(status, 200);
    assert_eq!(stale["source"], "copy");
    assert!(stale["age_seconds"].as_i64().unwrap() >= 0);
    assert!(stale["stale_reason"].as_str().unwrap().contains("503"));
    assert_eq!(stale["cloud_storage"], common::cloud_locations());
    assert_eq!(stale["edge_storage"][0]["node"], "serrano-k8s-worker-02");
    assert!(stale["fetched_at"].as_i64().unwrap() >= body["fetched_at"].as_i64().unwrap());
    cth.stop().await;
}

#[tokio::test]
async fn storage_locations_without_gateway_or_copy_are_503() {
    let cth = Cth::start(config(Some(&closed_url().await))).await;
    let (status, body) = cth.get("/storage_locations").await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "unavailable");
    cth.stop().await;

    let cth = Cth::start(config(None)).await;
    let (status, body) = cth.get("/storage_locations").await;
    assert_eq!(status, 503);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no storage gateway")
    );
    cth.stop().await;
}

#[tokio::test]
async fn the_collector_copies_the_locations_at_start() {
    let gateway = FakeGateway::start().await;
    let cth = Cth::start(config(Some(&gateway.url))).await;
    let mut copied = Vec::new();
    for _ in 0..100 {
        copied = cth
            .docs
            .find(
                "edge_storage",
                &serrano_docstore::Filter::all(),
                &Default::default(),
            )
            .await
            .unwrap();
        if !copied.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(copied.len(), 2);
    assert_eq!(copied[0]["name"], "edge-storage-devices-0");
    // Served from that copy once the gateway is down.
    gateway.set_mode(GatewayMode::Down);
    let (status, body) = cth.get("/storage_locations?target=edge").await;
    assert_eq!(status, 200);
    assert_eq!(body["source"], "copy");
    assert_eq!(body["edge_storage"][1]["id"], 2);
    cth.stop().await;
}

#[tokio::test]
async fn streaming_requests_are_forwarded_to_the_agent() {
    let (cth, agent, agent_2) = platform().await;
    let request = json!({"cluster_uuid": K8S, "action": "start", "reporting_rate": 5,
        "nodes": ["serrano-k8s-worker-02"], "metrics": ["cpu", "memory"]});
    let (status, body) = cth.call("POST", "/streaming", Some(request.clone())).await;
    assert_eq!(status, 201);
    assert_eq!(
        body,
        json!({"session_id": "session-1", "status": "started"})
    );
    let call = agent.recorded().pop().unwrap();
    assert_eq!(call.path, "/api/v1/telemetry/agent/streaming");
    assert_eq!(call.body, request);
    assert!(agent_2.recorded().is_empty());

    let (status, _) = cth
        .call(
            "POST",
            "/streaming",
            Some(json!({"cluster_uuid": K8S, "action": "stop", "session_id": "session-1"})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        agent.recorded().pop().unwrap().body,
        json!({"cluster_uuid": K8S, "action": "stop", "nodes": [], "metrics": [],
               "session_id": "session-1"})
    );

    for bad in [
        json!({"cluster_uuid": K8S, "action": "start"}),
        json!({"cluster_uuid": K8S, "action": "pause", "reporting_rate": 5}),
        json!({"cluster_uuid": K8S, "action": "start", "reporting_rate": 0}),
        json!({"cluster_uuid": K8S, "action": "start", "reporting_rate": 5, "extra": 1}),
    ] {
        let (status, _) = cth.call("POST", "/streaming", Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}");
    }
    let (status, _) = cth
        .call(
            "POST",
            "/streaming",
            Some(json!({"cluster_uuid": "unknown", "action": "stop"})),
        )
        .await;
    assert_eq!(status, 404);

    // The agent's own refusal is passed on; its failure is a 502.
    agent.set_mode(AgentMode::Fail(422));
    let (status, body) = cth.call("POST", "/streaming", Some(request.clone())).await;
    assert_eq!(status, 422);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("refused")
    );
    agent.set_mode(AgentMode::Fail(500));
    let (status, _) = cth.call("POST", "/streaming", Some(request)).await;
    assert_eq!(status, 502);
    cth.stop().await;
}

fn sample(node: &str, time_ns: i64, used: f64) -> serrano_telemetry_stream::pb::Sample {
    serrano_telemetry_stream::pb::Sample {
        measurement: "nodes".into(),
        tags: [
            ("node_name".to_owned(), node.to_owned()),
            ("group".to_owned(), "memory".to_owned()),
        ]
        .into_iter()
        .collect(),
        fields: [("node_memory_MemUsed_bytes".to_owned(), used)]
            .into_iter()
            .collect(),
        time_ns,
    }
}

#[tokio::test]
async fn streamed_samples_keep_the_latest_per_series() {
    use serrano_telemetry_stream::{SenderOptions, StreamIdentity, StreamSender};
    let (cth, _agent, _agent_2) = platform().await;
    let sender = StreamSender::start(
        format!("http://{}", cth.grpc),
        StreamIdentity {
            source_uuid: "agent-1".into(),
            cluster_uuid: K8S.into(),
            session_id: "session-1".into(),
        },
        SenderOptions {
            token: Some(common::TOKEN.into()),
            ..SenderOptions::default()
        },
    )
    .unwrap();
    sender
        .send(vec![
            sample("w1", 1_000, 1.0),
            sample("w2", 1_000, 5.0),
            sample("w1", 3_000, 3.0),
        ])
        .unwrap();
    // A late sample of w1 does not replace the newer one.
    sender.send(vec![sample("w1", 2_000, 2.0)]).unwrap();
    let stats = sender.close(Duration::from_secs(5)).await;
    assert_eq!(stats.queued, 0, "{stats:?}");
    assert_eq!(stats.acked, 2);

    let (status, body) = cth.get(&format!("/streaming/{K8S}")).await;
    assert_eq!(status, 200);
    let samples = body["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0]["series"], "nodes,group=memory,node_name=w1");
    assert_eq!(samples[0]["time_ns"], 3_000);
    assert_eq!(samples[0]["fields"]["node_memory_MemUsed_bytes"], 3.0);
    assert_eq!(samples[0]["source_uuid"], "agent-1");
    assert_eq!(
        samples[0]["tags"],
        json!({"group": "memory", "node_name": "w1"})
    );
    assert_eq!(samples[1]["fields"]["node_memory_MemUsed_bytes"], 5.0);
    let (_, other) = cth.get(&format!("/streaming/{K8S_2}")).await;
    assert_eq!(other, json!({"samples": []}));
    let (status, _) = cth.get("/streaming/unknown").await;
    assert_eq!(status, 404);

    // A stream without the token stores nothing.
    let intruder = StreamSender::start(
        format!("http://{}", cth.grpc),
        StreamIdentity {
            source_uuid: "intruder".into(),
            cluster_uuid: K8S_2.into(),
            session_id: "s".into(),
        },
        SenderOptions {
            token: Some("wrong".into()),
            backoff_min: Duration::from_millis(50),
            ..SenderOptions::default()
        },
    )
    .unwrap();
    intruder.send(vec![sample("x", 1, 1.0)]).unwrap();
    let stats = intruder.close(Duration::from_millis(500)).await;
    assert_eq!(stats.acked, 0);
    assert_eq!(
        cth.get(&format!("/streaming/{K8S_2}")).await.1,
        json!({"samples": []})
    );

    // The metrics page counts what was stored.
    let text = reqwest::Client::new()
        .get(format!("{}/metrics", cth.url))
        .bearer_auth(common::TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("cth_streamed_samples_stored_total 2"),
        "{text}"
    );
    cth.stop().await;
}

#[tokio::test]
async fn unknown_fields_and_bad_bodies_are_400() {
    let (cth, _agent, _agent_2) = platform().await;
    let (status, body) = cth
        .call(
            "PUT",
            "",
            Some(json!({"query_interval": 10, "surprise": true})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("surprise")
    );
    let (status, body) = cth.get("/no_such_route").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    cth.stop().await;
}

//! The handler over real servers: the operational DB in MongoDB (`SERRANO_TEST_MONGO_URI`, e.g.
//! NX-27017 from `scripts/infra start mongo`, in a database of its own dropped afterwards) and
//! the notifications on a Kafka-protocol broker (`SERRANO_TEST_KAFKA_BROKERS`, Tansu from
//! `scripts/infra start kafka`). Without the variable a test is skipped (it passes with a
//! message), unless `SERRANO_REQUIRE_REAL_SERVERS=1`, in which case it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Cth, EDGE, FakeAgent, FakeGateway, GatewayMode, HPC, K8S, K8S_2, config};
use serde_json::{Value, json};
use serrano_bus::{
    EmbeddedStreamHandler, NOTIFICATION_MESSAGES_TOPIC, StartAt, StreamConfig, StreamHandler,
    open_stream_handler,
};
use serrano_docstore::{DocStore, MongoDocStore};

fn real(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Some(v.trim().to_owned()),
        _ => {
            if std::env::var("SERRANO_REQUIRE_REAL_SERVERS").as_deref() == Ok("1") {
                panic!("SERRANO_REQUIRE_REAL_SERVERS=1 but {var} is not set");
            }
            println!("skipped: {var} is not set (no {what} to test against)");
            None
        }
    }
}

fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "cth_{what}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_handler_over_mongodb() {
    let Some(uri) = real("SERRANO_TEST_MONGO_URI", "MongoDB server") else {
        return;
    };
    let database = unique("mongo");
    let mongo = MongoDocStore::connect(&uri, &database).await.unwrap();
    let docs: Arc<dyn DocStore> = Arc::new(mongo.clone());
    let bus: Arc<dyn StreamHandler> = Arc::new(EmbeddedStreamHandler::open(None, 100).unwrap());
    let agent = FakeAgent::start().await;
    let gateway = FakeGateway::start().await;
    let cth = Cth::start_with(config(Some(&gateway.url)), docs, bus).await;
    cth.seed_platform(&agent.url, &agent.url).await;

    let (status, infrastructure) = cth.get("/infrastructure").await;
    assert_eq!(status, 200);
    assert_eq!(infrastructure["k8s"].as_array().unwrap().len(), 2);
    assert_eq!(infrastructure["hpc"][0]["uuid"], HPC);
    assert_eq!(
        infrastructure["k8s"][0]["inventory"][0]["node_capacity"]["total_gpu"],
        1
    );

    for timestamp in [100, 300, 200] {
        cth.insert(
            "cluster_state_metrics",
            json!({"cluster_uuid": HPC, "timestamp": timestamp, "state": {"t": timestamp}}),
        )
        .await;
    }
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

    // Concurrent counter changes are atomic and stop at zero.
    let bump = json!({"deployment_mode": "FaaS", "cluster_uuid": K8S, "counter_diff": 1, "kernel_mode": "gpu"});
    let calls = (0..20).map(|_| cth.call("PUT", "/serrano_kernel_deployments", Some(bump.clone())));
    for (status, _) in futures::future::join_all(calls).await {
        assert_eq!(status, 200);
    }
    let (_, list) = cth.get("/serrano_kernel_deployments").await;
    assert_eq!(list["kernel_deployments"][0]["gpu"], 20);
    let mut drop_all = bump.clone();
    drop_all["counter_diff"] = json!(-100);
    let (_, doc) = cth
        .call("PUT", "/serrano_kernel_deployments", Some(drop_all))
        .await;
    assert_eq!(doc["gpu"], 0);

    // Deployments: forwarded, stored, served.
    let entity = json!({"deployment_uuid": "d-1", "clusters": [K8S, K8S_2],
        K8S: [{"k8s_deployment_name": "a", "k8s_deployment_namespace": "n", "k8s_deployment_uuid": "u1"}],
        K8S_2: [{"k8s_deployment_name": "b", "k8s_deployment_namespace": "n", "k8s_deployment_uuid": "u2"}]});
    let (status, _) = cth.call("POST", "/deployments", Some(entity)).await;
    assert_eq!(status, 201);
    assert_eq!(agent.recorded().len(), 2);
    for timestamp in [10, 20] {
        cth.insert(
            "cluster_deployment_metrics",
            json!({"deployment_uuid": "d-1", "cluster_uuid": K8S,
            "name": "a-pod", "namespace": "n", "group_id": "s1", "timestamp": timestamp}),
        )
        .await;
    }
    let (_, metrics) = cth.get("/deployments/d-1").await;
    assert_eq!(metrics["metrics"].as_array().unwrap().len(), 1);
    assert_eq!(metrics["metrics"][0]["timestamp"], 20);

    // Storage-location copies in MongoDB, served while the gateway is down.
    cth.insert(
        "cluster_state_metrics",
        json!({"cluster_uuid": EDGE, "timestamp": 5,
        "state": {"edge_storage_devices": [{"name": "edge-storage-devices-0", "node": "w2",
            "minio_node_disk_free_bytes": 1.0}]}}),
    )
    .await;
    let (status, live) = cth.get("/storage_locations").await;
    assert_eq!(status, 200);
    assert_eq!(live["source"], "gateway");
    assert_eq!(
        live["edge_storage"][0]["metrics"][0]["minio_node_disk_free_bytes"],
        1.0
    );
    gateway.set_mode(GatewayMode::Down);
    let (status, stale) = cth.get("/storage_locations").await;
    assert_eq!(status, 200);
    assert_eq!(stale["source"], "copy");
    assert_eq!(stale["cloud_storage"], common::cloud_locations());
    assert_eq!(stale["edge_storage"].as_array().unwrap().len(), 2);

    cth.stop().await;
    mongo.client().database(&database).drop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn configuration_changes_are_announced_on_kafka() {
    let Some(brokers) = real("SERRANO_TEST_KAFKA_BROKERS", "Kafka broker") else {
        return;
    };
    let bus = open_stream_handler(&StreamConfig::Kafka {
        brokers,
        client_id: Some("cth-test".into()),
    })
    .await
    .unwrap();
    bus.health().await.expect("the broker answers");
    let kv = Arc::new(serrano_datastore::EmbeddedStore::in_memory());
    let docs: Arc<dyn DocStore> = Arc::new(serrano_docstore::EmbeddedDocStore::new(
        kv,
        serrano_cth::DOCS_PREFIX,
    ));
    let mut reader = bus
        .reader(NOTIFICATION_MESSAGES_TOPIC, StartAt::End)
        .await
        .unwrap();
    let uuid = unique("kafka");
    let cth = Cth::start_with(
        serrano_cth::Config {
            uuid: uuid.clone(),
            ..config(None)
        },
        docs,
        bus,
    )
    .await;
    let (status, _) = cth.call("PUT", "", Some(json!({"query_timeout": 7}))).await;
    assert_eq!(status, 201);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "no notification within 30 s");
        let Some(record) = reader.next(Duration::from_secs(5)).await.unwrap() else {
            continue;
        };
        let notice: Value = serde_json::from_slice(&record.payload).unwrap_or(Value::Null);
        let message = notice["message"].as_str().unwrap_or_default();
        if message.contains(&uuid) {
            assert!(message.contains("query_timeout=7"), "{message}");
            assert!(notice["timestamp"].as_i64().unwrap() > 1_600_000_000);
            break;
        }
    }
    cth.stop().await;
}

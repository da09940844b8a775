#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Streaming-telemetry ingest: batches pushed over gRPC land in the store, in the cluster's
//! bucket, and are readable through the PMDS REST API; the token is required.

use std::sync::Arc;
use std::time::Duration;

use serrano_service::Secret;
use serrano_telemetry_stream::{SenderOptions, StreamIdentity, StreamSender, pb};
use serrano_timeseries::{EmbeddedOptions, EmbeddedTsdb, Query, TimeSeriesStore};

fn sample(node: &str, value: f64, time_s: i64) -> pb::Sample {
    pb::Sample {
        measurement: "nodes".into(),
        tags: [
            ("node_name".to_owned(), node.to_owned()),
            ("group".to_owned(), "memory".to_owned()),
        ]
        .into(),
        fields: [("node_memory_usage_percentage".to_owned(), value)].into(),
        time_ns: time_s * 1_000_000_000,
    }
}

#[tokio::test]
async fn streamed_batches_are_stored_and_served() {
    let store: Arc<dyn TimeSeriesStore> =
        Arc::new(EmbeddedTsdb::open(EmbeddedOptions::default()).unwrap());
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_url = format!("http://{}", grpc.local_addr().unwrap());
    tokio::spawn(serrano_pmds::serve_grpc(
        store.clone(),
        vec![Secret::new("t")],
        grpc,
        std::future::pending(),
    ));
    let rest = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rest_url = format!("http://{}", rest.local_addr().unwrap());
    tokio::spawn(serrano_pmds::serve_with(
        serrano_pmds::Config::default(),
        store.clone(),
        vec![Secret::new("t")],
        rest,
        std::future::pending(),
    ));

    let cluster = "5a075716-7d7d-4b40-9566-bc1a33ee70c2";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let identity = StreamIdentity {
        source_uuid: "probe-1".into(),
        cluster_uuid: cluster.into(),
        session_id: "s1".into(),
    };
    let options = SenderOptions {
        token: Some("t".into()),
        rotate_every: Duration::from_millis(100),
        ..SenderOptions::default()
    };
    let sender = StreamSender::start(grpc_url.clone(), identity, options).unwrap();
    for i in 0..30 {
        sender
            .send(vec![sample(
                "nuc5",
                50.0 + f64::from(i),
                now - 60 + i64::from(i),
            )])
            .unwrap();
    }
    let stats = sender.close(Duration::from_secs(10)).await;
    assert_eq!((stats.acked, stats.dropped), (30, 0));

    let rows = store
        .query(&Query {
            bucket: cluster.into(),
            measurement: "nodes".into(),
            tags: vec![("node_name".into(), "nuc5".into())],
            fields: vec![],
            start_ns: 0,
            stop_ns: i64::MAX,
            limit: None,
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 30);
    assert_eq!(rows[29].value.as_f64(), Some(79.0));
    let body: serde_json::Value = reqwest::Client::new()
        .get(format!("{rest_url}/api/v1/pmds/nodes/{cluster}?group=memory&node_name=nuc5&start=-5m&format=compact"))
        .bearer_auth("t")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["nuc5"].as_array().unwrap().len(), 30, "{body}");
    assert_eq!(body["nuc5"][0]["node_memory_usage_percentage"], 50.0);

    // Without the token nothing is stored.
    let identity = StreamIdentity {
        source_uuid: "probe-2".into(),
        cluster_uuid: cluster.into(),
        session_id: "s2".into(),
    };
    let options = SenderOptions {
        token: Some("wrong".into()),
        rotate_every: Duration::from_millis(100),
        ..SenderOptions::default()
    };
    let sender = StreamSender::start(grpc_url, identity, options).unwrap();
    sender.send(vec![sample("intruder", 1.0, now)]).unwrap();
    let stats = sender.close(Duration::from_millis(800)).await;
    assert_eq!(stats.acked, 0);
    let rows = store
        .query(&Query {
            bucket: cluster.into(),
            measurement: "nodes".into(),
            tags: vec![("node_name".into(), "intruder".into())],
            fields: vec![],
            start_ns: 0,
            stop_ns: i64::MAX,
            limit: None,
        })
        .await
        .unwrap();
    assert!(rows.is_empty());
}

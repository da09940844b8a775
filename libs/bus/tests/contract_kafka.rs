//! The contract suite against a real Kafka-protocol broker at `SERRANO_TEST_KAFKA_BROKERS`
//! (e.g. `127.0.0.1:9092`; `scripts/infra start kafka` runs Tansu). Without the variable the
//! tests are skipped (they pass with a message), unless `SERRANO_REQUIRE_REAL_SERVERS=1`, in
//! which case they fail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serrano_bus::{
    BusError, EntityStatus, EntityType, KafkaOptions, KafkaStreamHandler, StartAt, StreamConfig,
    StreamHandler, TelemetryEntityStatus, contract, open_stream_handler, publish_json,
};

fn brokers() -> Option<String> {
    match std::env::var("SERRANO_TEST_KAFKA_BROKERS") {
        Ok(v) if !v.trim().is_empty() => Some(v.trim().to_string()),
        _ => {
            if std::env::var("SERRANO_REQUIRE_REAL_SERVERS").as_deref() == Ok("1") {
                panic!("SERRANO_REQUIRE_REAL_SERVERS=1 but SERRANO_TEST_KAFKA_BROKERS is not set");
            }
            println!(
                "skipped: SERRANO_TEST_KAFKA_BROKERS is not set (no Kafka broker to test against)"
            );
            None
        }
    }
}

fn options(brokers: &str) -> KafkaOptions {
    let mut o = KafkaOptions::new(brokers);
    o.client_id = "serrano-bus-test".into();
    // The first metadata request of a fresh client can be slow.
    o.request_timeout_ms = 30_000;
    o.message_timeout_ms = 30_000;
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contract_kafka() {
    let Some(brokers) = brokers() else { return };
    let h = KafkaStreamHandler::connect(options(&brokers)).unwrap();
    let started = Instant::now();
    h.health().await.expect("the broker answers");
    println!("first metadata fetch: {:?}", started.elapsed());
    let started = Instant::now();
    contract::run_suite(Arc::new(h)).await;
    println!("whole suite: {:?}", started.elapsed());
}

/// Through the config entry point, with the spec's notification on the telemetry topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_roundtrip_through_config() {
    let Some(brokers) = brokers() else { return };
    let cfg: StreamConfig = serde_json::from_value(serde_json::json!({
        "type": "kafka", "brokers": brokers, "client_id": "serrano-bus-test-cfg"
    }))
    .unwrap();
    let h = open_stream_handler(&cfg).await.unwrap();
    assert_eq!(h.kind(), "kafka");
    let topic = contract::unique_topic("notifications");
    let mut r = h.reader(&topic, StartAt::End).await.unwrap();
    let m = TelemetryEntityStatus {
        entity_id: "ddced532-2c76-4557-9be1-2be622cbdcee".into(),
        status: EntityStatus::Down,
        entity_type: EntityType::Probe,
        timestamp: 1_654_612_649,
    };
    let started = Instant::now();
    publish_json(h.as_ref(), &topic, None, &m).await.unwrap();
    let published = started.elapsed();
    let rec = r
        .next(Duration::from_secs(20))
        .await
        .unwrap()
        .expect("the notification");
    println!(
        "publish (gzip, acks=all): {published:?}, publish to read: {:?}",
        started.elapsed()
    );
    assert_eq!(
        rec.payload,
        br#"{"entity_id":"ddced532-2c76-4557-9be1-2be622cbdcee","status":"DOWN","type":"Probe","timestamp":1654612649}"#
    );
    assert_eq!(rec.offset, 0);
}

/// Timing of a burst, reported by the test output (no assertion on speed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_latency() {
    let Some(brokers) = brokers() else { return };
    let h = KafkaStreamHandler::connect(options(&brokers)).unwrap();
    let topic = contract::unique_topic("latency");
    h.ensure_topic(&topic).await.unwrap();
    let started = Instant::now();
    for i in 0..50 {
        h.publish(&topic, None, format!("{i}").as_bytes())
            .await
            .unwrap();
    }
    let sequential = started.elapsed();
    let h = Arc::new(h);
    let started = Instant::now();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let h = h.clone();
            let t = topic.clone();
            tokio::spawn(async move { h.publish(&t, None, format!("c{i}").as_bytes()).await })
        })
        .collect();
    for t in futures::future::join_all(tasks).await {
        t.unwrap().unwrap();
    }
    let concurrent = started.elapsed();
    // Exact also after concurrent publishes (batch_records = 1, see KafkaOptions).
    assert_eq!(h.watermarks(&topic).await.unwrap(), (0, 250));
    let mut r = h.reader(&topic, StartAt::Beginning).await.unwrap();
    let started = Instant::now();
    let mut n = 0i64;
    while let Some(rec) = r.next(Duration::from_secs(5)).await.unwrap() {
        assert_eq!(rec.offset, n);
        n += 1;
        if n == 250 {
            break;
        }
    }
    assert_eq!(n, 250);
    println!(
        "50 sequential publishes: {sequential:?} ({:?} each); 200 concurrent: {concurrent:?}; read 250: {:?}",
        sequential / 50,
        started.elapsed()
    );
}

/// A topic that the broker auto-created with several partitions (Tansu makes 4) still works:
/// records go to and come from partition 0 only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preexisting_multi_partition_topic() {
    let Some(brokers) = brokers() else { return };
    use rdkafka::ClientConfig;
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let topic = contract::unique_topic("multi");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    let res = admin
        .create_topics(
            [&NewTopic::new(&topic, 3, TopicReplication::Fixed(-1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    assert!(res[0].is_ok(), "{res:?}");
    let h = KafkaStreamHandler::connect(options(&brokers)).unwrap();
    for i in 0..6 {
        h.publish(
            &topic,
            Some(format!("key{i}").as_bytes()),
            format!("{i}").as_bytes(),
        )
        .await
        .unwrap();
    }
    let mut r = h.reader(&topic, StartAt::Beginning).await.unwrap();
    for i in 0..6 {
        let rec = r.next(Duration::from_secs(20)).await.unwrap().unwrap();
        assert_eq!((rec.offset, rec.payload), (i, format!("{i}").into_bytes()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_is_unavailable() {
    // Runs whether or not a real broker exists: nothing listens on port 1.
    let mut o = KafkaOptions::new("127.0.0.1:1");
    o.request_timeout_ms = 1_000;
    o.message_timeout_ms = 1_000;
    let h: Arc<dyn StreamHandler> = Arc::new(KafkaStreamHandler::connect(o).unwrap());
    let started = Instant::now();
    assert!(matches!(h.health().await, Err(BusError::Unavailable(_))));
    let err = h.publish("t", None, b"x").await.unwrap_err();
    assert!(matches!(err, BusError::Unavailable(_)), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

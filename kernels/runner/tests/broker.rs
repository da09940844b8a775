#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Broker-fed invocations on the embedded broker (the same adapter runs on RabbitMQ in
//! tests/real_flow.rs): results on `kernels_results_{uuid}`, inputs acknowledged only once the
//! outcome is known — consumed on success or bad data, given back on S3/broker trouble.

mod common;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use serrano_bus::{EmbeddedMessageBroker, MessageBroker, MessageProperties, QueueOptions};
use serrano_kernel_runner::broker::AmqpResults;

async fn setup() -> (Arc<dyn MessageBroker>, String) {
    let broker: Arc<dyn MessageBroker> = Arc::new(EmbeddedMessageBroker::new());
    let base = common::serve(common::runner(
        None,
        Some(Arc::new(AmqpResults::new(broker.clone()))),
    ))
    .await;
    (broker, base)
}

async fn push(broker: &Arc<dyn MessageBroker>, queue: &str, argument: &str, body: &[u8]) {
    broker
        .declare_queue(queue, QueueOptions::durable())
        .await
        .unwrap();
    let mut props = MessageProperties::json();
    props.headers.insert("argument".into(), argument.into());
    broker.publish("", queue, body, &props).await.unwrap();
}

async fn ready(broker: &Arc<dyn MessageBroker>, queue: &str) -> u32 {
    broker
        .queue_info(queue)
        .await
        .unwrap()
        .map_or(0, |q| q.message_count)
}

#[tokio::test]
async fn broker_inputs_results_and_acknowledgement() {
    let (broker, base) = setup().await;

    // Success: the result is published, the inputs are consumed.
    push(&broker, "in-ok", "b", b"0,0,1,2,3\n").await;
    push(&broker, "in-ok", "a", b"0,1,2,3\n").await;
    let desc =
        json!({"uuid": "u-ok", "storage": "broker", "queue_id": "in-ok", "arguments": ["a", "b"]});
    let r = common::client()
        .post(format!("{base}/function/dtw"))
        .json(&desc)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let d = broker
        .get_timeout("kernels_results_u-ok", Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    let msg: Value = serde_json::from_slice(&d.payload).unwrap();
    d.ack().await.unwrap();
    // Named by header, so the order of arrival does not matter: a is 1 series, b the other.
    let want = common::dtw(&[0.0, 1.0, 2.0, 3.0], &[0.0, 0.0, 1.0, 2.0, 3.0]);
    assert!(
        (msg["data"]["distances"][0][0].as_f64().unwrap() - want).abs() < 1e-5,
        "{msg}"
    );
    assert_eq!(ready(&broker, "in-ok").await, 0);

    // Trouble on the way out (results to S3, which this runner lacks): the inputs go back.
    push(&broker, "in-retry", "a", b"1,2\n").await;
    let desc = json!({"uuid": "u-retry", "storage": "broker", "queue_id": "in-retry", "arguments": ["a"],
        "results": "s3", "bucket_id": "b"});
    let r = common::client()
        .post(format!("{base}/function/dtw"))
        .json(&desc)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(
        ready(&broker, "in-retry").await,
        1,
        "the input must be back in its queue"
    );

    // Too few messages within the wait: an error, and what arrived is given back.
    push(&broker, "in-short", "a", b"1,2\n").await;
    let desc = json!({"uuid": "u-short", "storage": "broker", "queue_id": "in-short", "arguments": ["a", "b"]});
    let r = common::client()
        .post(format!("{base}/function/dtw"))
        .json(&desc)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 502);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 of 2"),
        "{body}"
    );
    assert_eq!(ready(&broker, "in-short").await, 1);
}

#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Broker-fed invocations on the embedded broker (the same adapter runs on RabbitMQ in
//! tests/real_flow.rs): results on `kernels_results_{uuid}`, inputs acknowledged only once the
//! outcome is known — consumed on success or bad data, given back on S3/broker trouble.

mod common;

use std::sync::Arc;

use serde_json::json;
use serrano_bus::{EmbeddedMessageBroker, MessageBroker};
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
    common::push_argument(&broker, "in-ok", "b", b"0,0,1,2,3\n").await;
    common::push_argument(&broker, "in-ok", "a", b"0,1,2,3\n").await;
    let desc =
        json!({"uuid": "u-ok", "storage": "broker", "queue_id": "in-ok", "arguments": ["a", "b"]});
    let (status, body) = common::invoke(&base, "dtw", &desc).await;
    assert_eq!(status, 200, "{body}");
    let msg = common::take_json(&broker, "kernels_results_u-ok").await;
    // Named by header, so the order of arrival does not matter: a is 1 series, b the other.
    let want = common::dtw(&[0.0, 1.0, 2.0, 3.0], &[0.0, 0.0, 1.0, 2.0, 3.0]);
    assert!(
        (msg["data"]["distances"][0][0].as_f64().unwrap() - want).abs() < 1e-5,
        "{msg}"
    );
    assert_eq!(ready(&broker, "in-ok").await, 0);

    // Trouble on the way out (results to S3, which this runner lacks): the inputs go back.
    common::push_argument(&broker, "in-retry", "a", b"1,2\n").await;
    let desc = json!({"uuid": "u-retry", "storage": "broker", "queue_id": "in-retry", "arguments": ["a"],
        "results": "s3", "bucket_id": "b"});
    let (status, body) = common::invoke(&base, "dtw", &desc).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        ready(&broker, "in-retry").await,
        1,
        "the input must be back in its queue"
    );

    // Too few messages within the wait: an error, and what arrived is given back.
    common::push_argument(&broker, "in-short", "a", b"1,2\n").await;
    let desc = json!({"uuid": "u-short", "storage": "broker", "queue_id": "in-short", "arguments": ["a", "b"]});
    let (status, body) = common::invoke(&base, "dtw", &desc).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 of 2"),
        "{body}"
    );
    assert_eq!(ready(&broker, "in-short").await, 1);
}

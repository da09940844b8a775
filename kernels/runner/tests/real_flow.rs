#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The FaaS flow against real servers started by scripts/test: inputs read from a real S3 server
//! (SeaweedFS), results written back to S3 and published to a real RabbitMQ queue
//! `kernels_results_{uuid}`, all through the runner's HTTP API. Skipped (with a printed reason)
//! where the servers are not running, unless SERRANO_REQUIRE_REAL_SERVERS=1.

mod common;

use std::sync::Arc;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use serde_json::json;
use serrano_bus::amqp::MessageBroker;
use serrano_bus::config::{AmqpConfig, open_message_broker};
use serrano_kernel_runner::broker::AmqpResults;
use serrano_kernel_runner::s3::{S3Config, S3Store};
use serrano_service::Secret;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn servers() -> Option<(S3Config, String)> {
    let s3 = env("SERRANO_TEST_S3_ENDPOINT");
    let amqp = env("SERRANO_TEST_AMQP_URL");
    match (s3, amqp) {
        (Some(endpoint), Some(url)) => Some((
            S3Config {
                endpoint,
                region: env("SERRANO_TEST_S3_REGION").unwrap_or_else(|| "us-east-1".into()),
                access_key: Secret::new(env("SERRANO_TEST_S3_ACCESS_KEY").unwrap_or_default()),
                secret_key: Secret::new(env("SERRANO_TEST_S3_SECRET_KEY").unwrap_or_default()),
            },
            url,
        )),
        _ => {
            assert!(
                std::env::var("SERRANO_REQUIRE_REAL_SERVERS").as_deref() != Ok("1"),
                "S3 and RabbitMQ are required but SERRANO_TEST_S3_ENDPOINT / SERRANO_TEST_AMQP_URL are not set"
            );
            eprintln!("skipped: run through scripts/test (needs scripts/infra start s3 rabbitmq)");
            None
        }
    }
}

fn s3_client(c: &S3Config) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(&c.endpoint)
        .region(Region::new(c.region.clone()))
        .credentials_provider(Credentials::new(
            c.access_key.expose(),
            c.secret_key.expose(),
            None,
            None,
            "test",
        ))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

#[tokio::test]
async fn s3_inputs_to_rabbitmq_and_s3_results() {
    let Some((s3_config, amqp_url)) = servers() else {
        return;
    };
    let s3 = s3_client(&s3_config);
    let bucket = format!("kernels-{}", uuid::Uuid::new_v4().simple());
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    // Two series as CSV and one as the binary format: the runner tells them apart by name.
    s3.put_object()
        .bucket(&bucket)
        .key("a.csv")
        .body(b"0,1,2,3\n1,1,1,1\n".to_vec().into())
        .send()
        .await
        .unwrap();
    let b = serrano_kernels::Table::F32(
        serrano_kernels::Matrix::new(1, 5, vec![0.0, 0.0, 1.0, 2.0, 3.0]).unwrap(),
    );
    let b_bin = serrano_kernels::formats::encode(&b, serrano_kernels::Format::Binary);
    s3.put_object()
        .bucket(&bucket)
        .key("b.bin")
        .body(b_bin.into())
        .send()
        .await
        .unwrap();

    let broker: Arc<dyn MessageBroker> = open_message_broker(&AmqpConfig::RabbitMq {
        url: amqp_url.clone(),
        connection_name: None,
    })
    .await
    .unwrap();
    let runner = common::runner(
        Some(Arc::new(S3Store::new(&s3_config))),
        Some(Arc::new(AmqpResults::new(broker.clone()))),
    );
    let base = common::serve(runner).await;
    let uuid = uuid::Uuid::new_v4().to_string();

    // 1. Results to the broker queue the SDK waits on.
    let desc = json!({"uuid": uuid, "storage": "s3", "bucket_id": bucket, "arguments": ["a.csv", "b.bin"],
        "results": "broker", "mode": "cpu", "w": 10});
    let (status, body) = common::invoke(&base, "dtw", &desc).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["outputs"][0]["location"],
        format!("amqp:kernels_results_{uuid}")
    );
    assert!(body["input_total_size_MB"].as_f64().unwrap() > 0.0);
    let queue = format!("kernels_results_{uuid}");
    let msg = common::take_json(&broker, &queue).await;
    assert_eq!(msg["uuid"], uuid);
    assert_eq!(msg["kernel_mode"], "cpu");
    let got = msg["data"]["distances"].as_array().unwrap();
    let want = common::dtw(&[0.0, 1.0, 2.0, 3.0], &[0.0, 0.0, 1.0, 2.0, 3.0]);
    assert!((got[0][0].as_f64().unwrap() - want).abs() < 1e-5, "{got:?}");

    // 2. Results back into the bucket, in the binary format.
    let uuid2 = uuid::Uuid::new_v4().to_string();
    let desc = json!({"uuid": uuid2, "bucket_id": bucket, "arguments": ["a.csv", "b.bin"], "output_format": "bin"});
    let (status, body) = common::invoke(&base, "dtw", &desc).await;
    assert_eq!(status, 200, "{body}");
    let key = format!("results_req_{uuid2}/distances.bin");
    let obj = s3
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    let bytes = obj.body.collect().await.unwrap().into_bytes();
    let table = serrano_kernels::formats::decode_sniffed(&bytes)
        .unwrap()
        .into_f32();
    assert_eq!((table.rows(), table.cols()), (2, 1));
    assert!((table.get(0, 0).unwrap() as f64 - want).abs() < 1e-5);

    // 3. Inputs from the broker (one message per argument, named by header), bad data:
    // the SDK gets `{uuid, data: null}` on both queues and the HTTP caller a 422.
    let in_queue = format!("kernel-inputs-{}", uuid::Uuid::new_v4().simple());
    common::push_argument(
        &broker, &in_queue, "a", b"1,2
3
",
    )
    .await;
    let uuid3 = uuid::Uuid::new_v4().to_string();
    let desc =
        json!({"uuid": uuid3, "storage": "broker", "queue_id": in_queue, "arguments": ["a"]});
    let (status, body) = common::invoke(&base, "dtw", &desc).await;
    assert_eq!(status, 422, "{body}");
    for q in [format!("kernels_results_{uuid3}"), uuid3.clone()] {
        let msg = common::take_json(&broker, &q).await;
        assert_eq!(msg["uuid"], uuid3);
        assert!(msg["data"].is_null());
        assert!(msg["error"].as_str().unwrap().contains("line 2"), "{msg}");
        broker.delete_queue(&q).await.unwrap();
    }
    for q in [queue, in_queue] {
        broker.delete_queue(&q).await.unwrap();
    }
}

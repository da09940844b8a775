//! The edge storage probe against the real SERRANO storage gateway mounted in-process (embedded
//! datastore, four local edge locations, traffic made with the AWS SDK) and a recorded MinIO
//! metrics text, next to devices that do not answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use axum::routing::get;
use serde_json::{Value, json};
use serrano_datastore::{EmbeddedStore, KvStore};
use serrano_probe::edge_storage::{EdgeStorageConfig, EdgeTarget, GeoLocation};
use serrano_probe::{Config, ProbeKind};
use serrano_service::Secret;
use serrano_storage_gateway::s3_http::AccessKeyConfig;

mod common;

use common::{PREFIX, app, dead_url, get as probe_get, message};

const GATEWAY_TOKEN: &str = "storage-token";
const CLUSTER: &str = "7628b895-3a91-4f0c-b0b7-033eab309891";

struct StorageGateway {
    url: String,
    _dir: tempfile::TempDir,
}

async fn storage_gateway() -> StorageGateway {
    let dir = tempfile::tempdir().unwrap();
    let config = serrano_storage_gateway::Config {
        data_dir: dir.path().join("data"),
        access_keys: vec![AccessKeyConfig {
            access_key: "admin".into(),
            secret_key: Secret::new("admin-secret-key"),
            buckets: vec!["*".into()],
        }],
        stripe_bytes: 64 * 1024,
        cache_bytes: 0,
        measure_interval_secs: 3600,
        maintenance_interval_secs: 3600,
        ..serrano_storage_gateway::Config::default()
    };
    let kv: Arc<dyn KvStore> = Arc::new(EmbeddedStore::open(dir.path().join("datastore")).unwrap());
    let gateway = Arc::new(
        serrano_storage_gateway::Gateway::open(&config, kv.clone())
            .await
            .unwrap(),
    );
    let app = gateway.router(kv, vec![Secret::new(GATEWAY_TOKEN)], 1 << 20);
    let url = common::serve(app).await;
    StorageGateway { url, _dir: dir }
}

fn s3(url: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "admin",
            "admin-secret-key",
            None,
            None,
            "test",
        ))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The D6.7 4.4.3.2 device figures, as a MinIO server exposes them (two disks).
const MINIO_TEXT: &str = "# HELP minio_bucket_usage_object_total Total number of objects\n\
    # TYPE minio_bucket_usage_object_total gauge\n\
    minio_bucket_usage_object_total{bucket=\"sensors\",server=\"edge-storage-devices-0:9000\"} 150\n\
    minio_bucket_usage_object_total{bucket=\"models\",server=\"edge-storage-devices-0:9000\"} 49\n\
    minio_bucket_usage_total_bytes{bucket=\"sensors\",server=\"edge-storage-devices-0:9000\"} 3.186080021e+09\n\
    minio_node_disk_free_bytes{disk=\"/export1\",server=\"edge-storage-devices-0:9000\"} 9.467807744e+09\n\
    minio_node_disk_free_bytes{disk=\"/export2\",server=\"edge-storage-devices-0:9000\"} 9.467807744e+09\n\
    minio_node_disk_total_bytes{disk=\"/export1\",server=\"edge-storage-devices-0:9000\"} 1.5754807296e+10\n\
    minio_node_disk_total_bytes{disk=\"/export2\",server=\"edge-storage-devices-0:9000\"} 1.5754807296e+10\n\
    minio_node_disk_used_bytes{disk=\"/export1\",server=\"edge-storage-devices-0:9000\"} 6.286999552e+09\n\
    minio_node_disk_used_bytes{disk=\"/export2\",server=\"edge-storage-devices-0:9000\"} 6.286999552e+09\n\
    minio_s3_requests_total{api=\"getobject\",server=\"edge-storage-devices-0:9000\"} 0\n\
    minio_s3_requests_waiting_total{server=\"edge-storage-devices-0:9000\"} 0\n\
    minio_s3_traffic_received_bytes{server=\"edge-storage-devices-0:9000\"} 3.436003534e+09\n\
    minio_s3_traffic_sent_bytes{server=\"edge-storage-devices-0:9000\"} 1.6726678916e+10\n\
    # HELP go_threads Number of OS threads created.\n\
    go_threads 21\n";

async fn minio() -> String {
    let app = axum::Router::new().route("/minio/v2/metrics/cluster", get(|| async { MINIO_TEXT }));
    format!("{}/minio/v2/metrics/cluster", common::serve(app).await)
}

fn target(name: &str, url: &str, token: Option<&str>, location: Option<&str>) -> EdgeTarget {
    EdgeTarget {
        name: name.to_owned(),
        node: "serrano-k8s-worker-02".to_owned(),
        url: url.to_owned(),
        token: token.map(Secret::new),
        location: location.map(str::to_owned),
    }
}

fn device<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["edge_storage_devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no device {name} in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_from_the_storage_gateway_and_minio() {
    let gateway = storage_gateway().await;
    let client = s3(&gateway.url);
    client
        .create_bucket()
        .bucket("probe-test")
        .send()
        .await
        .unwrap();
    let object = vec![7u8; 200_000];
    client
        .put_object()
        .bucket("probe-test")
        .key("readings.bin")
        .body(ByteStream::from(object.clone()))
        .send()
        .await
        .unwrap();
    let missing = client
        .get_object()
        .bucket("probe-test")
        .key("absent")
        .send()
        .await;
    assert!(missing.is_err());
    let fetched = client
        .get_object()
        .bucket("probe-test")
        .key("readings.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(
        fetched.body.collect().await.unwrap().into_bytes().len(),
        object.len()
    );

    let metrics_url = format!("{}/metrics", gateway.url);
    let config = Config {
        kind: ProbeKind::EdgeStorage,
        cluster_uuid: Some(CLUSTER.parse().unwrap()),
        edge_storage: EdgeStorageConfig {
            targets: vec![
                target("gateway", &metrics_url, Some(GATEWAY_TOKEN), None),
                target(
                    "gateway-edge-2",
                    &metrics_url,
                    Some(GATEWAY_TOKEN),
                    Some("edge-2"),
                ),
                target("edge-storage-devices-0", &minio().await, None, None),
                target(
                    "switched-off",
                    &format!("{}/metrics", dead_url()),
                    None,
                    None,
                ),
                target("no-token", &metrics_url, None, None),
            ],
            location: GeoLocation {
                lat: 45.7489,
                lng: 21.2087,
            },
        },
        ..Config::default()
    };
    let (probe, app) = app(&config);
    assert_eq!(probe.identity.name, "edge-storage");

    let (status, body) = probe_get(&app, &format!("{PREFIX}/monitor")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["type"], "Probe.EdgeStorage");
    assert_eq!(body["uuid"], probe.identity.probe_uuid.to_string());
    assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
    assert_eq!(body["edge_storage_devices"].as_array().unwrap().len(), 5);

    let gw = device(&body, "gateway");
    assert_eq!(gw["cluster_uuid"], CLUSTER);
    assert_eq!(gw["node"], "serrano-k8s-worker-02");
    assert!(gw.get("up").is_none(), "{gw}");
    // CreateBucket, PutObject, two GetObjects (one 404) at least; the scrape is not S3.
    let requests = gw["minio_s3_requests_total"].as_f64().unwrap();
    assert!(requests >= 4.0, "{gw}");
    assert!(
        gw["minio_s3_requests_errors_total"].as_f64().unwrap() >= 1.0,
        "{gw}"
    );
    assert!(gw["minio_s3_requests_errors_total"].as_f64().unwrap() < requests);
    assert!(gw["minio_s3_traffic_received_bytes"].as_f64().unwrap() >= object.len() as f64);
    assert!(gw["minio_s3_traffic_sent_bytes"].as_f64().unwrap() >= object.len() as f64);
    // The gateway's own series, to check the mapping against.
    let text = reqwest::Client::new()
        .get(&metrics_url)
        .bearer_auth(GATEWAY_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape = serrano_probe::prom::parse(&text).unwrap();
    let used = gw["minio_node_disk_used_bytes"].as_f64().unwrap();
    // Encoded fragments of the object, with redundancy, over four local edge locations.
    assert!(used >= object.len() as f64, "{gw}");
    assert_eq!(Some(used), scrape.sum("storage_gateway_backend_used_bytes"));
    match scrape.sum("storage_gateway_backend_free_bytes") {
        Some(free) => {
            assert_eq!(gw["minio_node_disk_free_bytes"].as_f64(), Some(free));
            assert!(gw["minio_node_disk_total_bytes"].as_f64().unwrap() >= free);
        }
        // Local directories report no free space: no free or total figure is made up.
        None => {
            assert!(gw.get("minio_node_disk_free_bytes").is_none(), "{gw}");
            assert!(gw.get("minio_node_disk_total_bytes").is_none(), "{gw}");
        }
    }
    assert!(
        gw.get("minio_bucket_usage_object_total").is_none(),
        "the gateway has no bucket usage"
    );

    // One location only: its figures match the gateway's own series for it.
    let edge2_used = scrape
        .sum_where("storage_gateway_backend_used_bytes", |s| {
            s.label("location") == Some("edge-2")
        })
        .unwrap();
    let one = device(&body, "gateway-edge-2");
    assert_eq!(
        one["minio_node_disk_used_bytes"].as_f64().unwrap(),
        edge2_used
    );
    assert!(edge2_used > 0.0 && edge2_used < used);
    assert_eq!(
        one["minio_s3_requests_total"],
        gw["minio_s3_requests_total"]
    );

    let minio = device(&body, "edge-storage-devices-0");
    assert_eq!(
        minio,
        &json!({"cluster_uuid": CLUSTER, "name": "edge-storage-devices-0", "node": "serrano-k8s-worker-02",
            "minio_bucket_usage_object_total": 199.0, "minio_bucket_usage_total_bytes": 3186080021.0,
            "minio_node_disk_free_bytes": 18935615488.0, "minio_node_disk_total_bytes": 31509614592.0,
            "minio_node_disk_used_bytes": 12573999104.0, "minio_s3_requests_total": 0.0,
            "minio_s3_requests_waiting_total": 0.0, "minio_s3_traffic_received_bytes": 3436003534.0,
            "minio_s3_traffic_sent_bytes": 16726678916.0})
    );

    let off = device(&body, "switched-off");
    assert_eq!(off["up"], false);
    assert!(
        off["error"]
            .as_str()
            .unwrap()
            .contains("edge storage device switched-off"),
        "{off}"
    );
    assert_eq!(
        off.as_object().unwrap().len(),
        5,
        "identity, up and error only: {off}"
    );
    let denied = device(&body, "no-token");
    assert_eq!(denied["up"], false);
    assert!(
        denied["error"].as_str().unwrap().contains("401"),
        "{denied}"
    );

    // One device by name; an unknown one.
    let (status, body) = probe_get(
        &app,
        &format!("{PREFIX}/monitor?device_name=edge-storage-devices-0"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["edge_storage_devices"].as_array().unwrap().len(), 1);
    let (status, body) = probe_get(&app, &format!("{PREFIX}/monitor?device_name=nope")).await;
    assert_eq!(status, 404);
    assert!(message(&body).contains("nope"));

    let (status, body) = probe_get(&app, &format!("{PREFIX}/inventory")).await;
    assert_eq!(status, 200, "{body}");
    let devices = body["edge_storage_devices"].as_array().unwrap();
    assert_eq!(devices.len(), 5);
    assert_eq!(
        device(&body, "edge-storage-devices-0"),
        &json!({"name": "edge-storage-devices-0", "node": "serrano-k8s-worker-02", "cluster_uuid": CLUSTER,
            "lat": 45.7489, "lng": 21.2087, "minio_node_disk_total_bytes": 31509614592.0})
    );
    assert_eq!(device(&body, "gateway")["lat"], 45.7489);
    let off = device(&body, "switched-off");
    assert_eq!(off["up"], false);
    assert!(off.get("minio_node_disk_total_bytes").is_none());
}

#[tokio::test]
async fn garbled_metrics_mark_the_device_down() {
    let app_text = axum::Router::new().route(
        "/metrics",
        get(|| async { "minio_node_disk_total_bytes{disk=\"/x\" 12\n" }),
    );
    let url = format!("{}/metrics", common::serve(app_text).await);
    let config = Config {
        kind: ProbeKind::EdgeStorage,
        edge_storage: EdgeStorageConfig {
            targets: vec![target("garbled", &url, None, None)],
            location: GeoLocation::default(),
        },
        ..Config::default()
    };
    let (probe, app) = app(&config);
    let (status, body) = probe_get(&app, &format!("{PREFIX}/monitor")).await;
    assert_eq!(status, 200, "{body}");
    let garbled = device(&body, "garbled");
    assert_eq!(garbled["up"], false);
    assert!(
        garbled["error"]
            .as_str()
            .unwrap()
            .contains("prometheus text line 1"),
        "{garbled}"
    );
    assert_eq!(
        garbled["cluster_uuid"],
        probe.identity.cluster_uuid.to_string()
    );
}

//! Every PMDS route over HTTP on the embedded store (memory mode), with data written through
//! `/api/v2/write` in the layout the ETA writes (originals.md 3.4), checked against the shapes
//! of pmds_rest_v1.yaml and the D6.7 4.4.3.2 examples.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;

use common::{TOKEN, rfc3339, seconds_ago, start, start_default};
use serde_json::{Value, json};
use serrano_pmds::Config;
use uuid::Uuid;

fn cluster() -> String {
    Uuid::new_v4().to_string()
}

#[tokio::test]
async fn nodes_compact_and_raw() {
    let server = start_default().await;
    let c = cluster();
    let (t0, t1) = (seconds_ago(600), seconds_ago(570));
    server
        .write_ok(
            &c,
            &format!(
                "nodes,group=memory,node_name=nuc5 node_memory_MemFree_bytes=18508849152,node_memory_usage_percentage=72.55 {t0}\n\
                 nodes,group=memory,node_name=nuc5 node_memory_MemFree_bytes=18575515648 {t1}\n\
                 nodes,group=memory,node_name=nuc6 node_memory_MemFree_bytes=1i {t0}\n\
                 nodes,group=general,node_name=nuc5 node_total_running_pods=12i,node_boot_time_seconds=1700000000i {t0}\n"
            ),
        )
        .await;

    // The D6.7 4.4.3.2 example: memory of one node, last minutes, compact.
    let (status, body) = server
        .get(&format!(
            "/api/v1/pmds/nodes/{c}?group=memory&node_name=nuc5&start=-1h"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"nuc5": [
            {"node_memory_MemFree_bytes": 18508849152.0, "node_memory_usage_percentage": 72.55, "time": rfc3339(t0)},
            {"node_memory_MemFree_bytes": 18575515648.0, "time": rfc3339(t1)},
        ]})
    );

    // Compact without a group shows `general`, for every node.
    let (_, body) = server.get(&format!("/api/v1/pmds/nodes/{c}")).await;
    assert_eq!(
        body,
        json!({"nuc5": [{"node_boot_time_seconds": 1_700_000_000, "node_total_running_pods": 12, "time": rfc3339(t0)}]})
    );

    // Raw: Flux-like records, what the EDE reads (`_field`, `_value`, `_time`, `node_name`).
    let (_, body) = server
        .get(&format!(
            "/api/v1/pmds/nodes/{c}?group=memory&field_measurement=node_memory_MemFree_bytes&format=raw"
        ))
        .await;
    assert_eq!(
        body,
        json!([
            {"_measurement": "nodes", "_field": "node_memory_MemFree_bytes", "_value": 18508849152.0,
             "_time": rfc3339(t0), "group": "memory", "node_name": "nuc5"},
            {"_measurement": "nodes", "_field": "node_memory_MemFree_bytes", "_value": 18575515648.0,
             "_time": rfc3339(t1), "group": "memory", "node_name": "nuc5"},
            {"_measurement": "nodes", "_field": "node_memory_MemFree_bytes", "_value": 1,
             "_time": rfc3339(t0), "group": "memory", "node_name": "nuc6"},
        ])
    );

    // Raw without a group: every group.
    let (_, body) = server
        .get(&format!("/api/v1/pmds/nodes/{c}?format=raw&node_name=nuc5"))
        .await;
    let groups: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["group"].as_str().unwrap())
        .collect();
    assert_eq!(
        groups,
        vec!["general", "general", "memory", "memory", "memory"]
    );

    // Time windows: absolute seconds and RFC 3339 stop (exclusive).
    let (_, body) = server
        .get(&format!(
            "/api/v1/pmds/nodes/{c}?group=memory&node_name=nuc5&start={t0}&stop={}",
            rfc3339(t1).replace('+', "%2B")
        ))
        .await;
    assert_eq!(body["nuc5"].as_array().unwrap().len(), 1);
    // A known cluster with nothing in the window: empty, not 404.
    let (status, body) = server
        .get(&format!("/api/v1/pmds/nodes/{c}?start=-10d&stop=-9d"))
        .await;
    assert_eq!((status, body), (200, json!({})));
}

#[tokio::test]
async fn cluster_entities_with_their_filters() {
    let server = start_default().await;
    let c = cluster();
    let t = seconds_ago(300);
    server
        .write_ok(
            &c,
            &format!(
                "persistentVolumes,name=pv-1 capacity_storage=1073741824i {t}\n\
                 persistentVolumes,name=pv-2 capacity_storage=2i {t}\n\
                 deployments,name=web,namespace=prod replicas=3i,ready_replicas=2i,available_replicas=2i {t}\n\
                 deployments,name=db,namespace=test replicas=1i,ready_replicas=1i,available_replicas=1i {t}\n\
                 pods,name=web-1,namespace=prod,node=n1,phase=Running cpu_usage=188567i,memory_usage=263962624i,restarts=1i {t}\n\
                 pods,name=web-2,namespace=prod,node=n2,phase=Pending cpu_usage=0i,memory_usage=0i,restarts=0i {t}\n\
                 edge_storage,cluster_uuid={c},name=minio-1,node=n1 minio_node_disk_free_bytes=5e9,minio_s3_requests_total=7i {t}\n\
                 edge_storage,cluster_uuid={c},name=minio-2,node=n2 minio_node_disk_free_bytes=6e9 {t}\n\
                 hpc_partitions,infrastructure_name=hlrs,partition_name=cpu avail_cpus=64i,running_jobs=2i {t}\n\
                 hpc_partitions,infrastructure_name=hlrs,partition_name=gpu avail_cpus=8i,running_jobs=0i {t}\n"
            ),
        )
        .await;
    let time = rfc3339(t);

    let (_, body) = server.get(&format!("/api/v1/pmds/pvs/{c}?name=pv-1")).await;
    assert_eq!(
        body,
        json!({"pv-1": [{"capacity_storage": 1_073_741_824, "time": time}]})
    );
    let (_, body) = server.get(&format!("/api/v1/pmds/pvs/{c}")).await;
    assert_eq!(body.as_object().unwrap().len(), 2);

    let (_, body) = server
        .get(&format!("/api/v1/pmds/deployments/{c}?namespace=prod"))
        .await;
    assert_eq!(
        body,
        json!({"web": [{"available_replicas": 2, "ready_replicas": 2, "replicas": 3, "time": time}]})
    );
    let (_, body) = server
        .get(&format!(
            "/api/v1/pmds/deployments/{c}?namespace=prod&name=db"
        ))
        .await;
    assert_eq!(body, json!({}));

    // Pods: `phase` (a tag) shows next to the fields, as the original's phase field did.
    let (_, body) = server
        .get(&format!(
            "/api/v1/pmds/pods/{c}?namespace=prod&node_name=n1"
        ))
        .await;
    assert_eq!(
        body,
        json!({"web-1": [{"cpu_usage": 188_567, "memory_usage": 263_962_624, "phase": "Running", "restarts": 1, "time": time}]})
    );
    let (_, body) = server
        .get(&format!(
            "/api/v1/pmds/pods/{c}?namespace=prod&phase=Pending&format=raw"
        ))
        .await;
    let records = body.as_array().unwrap();
    assert_eq!(records.len(), 3);
    assert!(
        records
            .iter()
            .all(|r| r["name"] == "web-2" && r["node"] == "n2" && r["namespace"] == "prod")
    );

    let (_, body) = server
        .get(&format!(
            "/api/v1/pmds/edge_storage_devices/{c}?node_name=n1"
        ))
        .await;
    assert_eq!(
        body,
        json!({"minio-1": [{"minio_node_disk_free_bytes": 5e9, "minio_s3_requests_total": 7, "time": time}]})
    );
    let (_, body) = server
        .get(&format!(
            "/api/v1/pmds/edge_storage_devices/{c}?name=minio-2&format=raw"
        ))
        .await;
    assert_eq!(body[0]["cluster_uuid"], json!(c));
    assert_eq!(body[0]["_value"], json!(6e9));

    let (_, body) = server
        .get(&format!(
            "/api/v1/pmds/hpc_partitions/{c}?partition_name=gpu"
        ))
        .await;
    assert_eq!(
        body,
        json!({"gpu": [{"avail_cpus": 8, "running_jobs": 0, "time": time}]})
    );
}

#[tokio::test]
async fn serrano_deployments_and_specific_metrics() {
    let server = start_default().await;
    let d = Uuid::new_v4();
    let (c1, c2) = (cluster(), cluster());
    let (t0, t1) = (seconds_ago(120), seconds_ago(90));
    server
        .write_ok(
            "SERRANO_Deployments",
            &format!(
                "serrano_deployments,cluster_uuid={c1},deployment_uuid={d},group_id=s3,name=classifier-1,namespace=app,node=nuc5,phase=Running cpu_usage=188567i,memory_usage=263962624i,restarts=1i {t0}\n\
                 serrano_deployments,cluster_uuid={c1},deployment_uuid={d},group_id=s3,name=classifier-1,namespace=app,node=nuc5,phase=Running cpu_usage=163545i,memory_usage=263962624i,restarts=1i {t1}\n\
                 serrano_deployments,cluster_uuid={c2},deployment_uuid={d},group_id=s1,name=data-manager-1,namespace=app,node=nuc6,phase=Running cpu_usage=1006358704i,memory_usage=212172800i,restarts=0i {t0}\n\
                 serrano_deployments,cluster_uuid={c1},deployment_uuid={},group_id=s1,name=other,namespace=app,node=nuc5,phase=Running cpu_usage=1i {t0}\n",
                Uuid::new_v4()
            ),
        )
        .await;
    server
        .write_ok(
            "SERRANO_Deployments_Specific_Metrics",
            &format!(
                "serrano_deployments_specific_metrics,cluster_uuid={c1},deployment_uuid={d},service_id=svc-a latency_ms=12.5,requests=100i {t0}\n\
                 serrano_deployments_specific_metrics,cluster_uuid={c1},deployment_uuid={d},service_id=svc-b latency_ms=3 {t0}\n"
            ),
        )
        .await;

    // The D6.7 example shape: per pod, fields + group_id + phase + time, in time order.
    let (status, body) = server
        .get(&format!(
            "/api/v1/pmds/serrano_deployments/{d}?format=compact&start=-2d"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "classifier-1": [
                {"cpu_usage": 188_567, "group_id": "s3", "memory_usage": 263_962_624, "phase": "Running", "restarts": 1, "time": rfc3339(t0)},
                {"cpu_usage": 163_545, "group_id": "s3", "memory_usage": 263_962_624, "phase": "Running", "restarts": 1, "time": rfc3339(t1)},
            ],
            "data-manager-1": [
                {"cpu_usage": 1_006_358_704_i64, "group_id": "s1", "memory_usage": 212_172_800, "phase": "Running", "restarts": 0, "time": rfc3339(t0)},
            ],
        })
    );
    let (_, body) = server
        .get(&format!(
            "/api/v1/pmds/serrano_deployments/{d}?cluster_uuid={c2}"
        ))
        .await;
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["data-manager-1"]
    );
    let (_, body) = server
        .get(&format!(
            "/api/v1/pmds/serrano_deployments/{d}?node_name=nuc5&format=raw"
        ))
        .await;
    let records = body.as_array().unwrap();
    assert_eq!(records.len(), 6);
    assert!(
        records
            .iter()
            .all(|r| r["deployment_uuid"] == json!(d.to_string()) && r["node"] == "nuc5")
    );

    let (_, body) = server
        .get(&format!(
            "/api/v1/pmds/deployments_specific_metrics/{d}?service_id=svc-a"
        ))
        .await;
    assert_eq!(
        body,
        json!({"svc-a": [{"latency_ms": 12.5, "requests": 100, "time": rfc3339(t0)}]})
    );

    // A deployment never seen is 404; a bad UUID is 400.
    let (status, body) = server
        .get(&format!(
            "/api/v1/pmds/serrano_deployments/{}",
            Uuid::new_v4()
        ))
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    let (status, _) = server
        .get("/api/v1/pmds/serrano_deployments/not-a-uuid")
        .await;
    assert_eq!(status, 400);
    let (status, _) = server
        .get(&format!(
            "/api/v1/pmds/serrano_deployments/{d}?cluster_uuid=nope"
        ))
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn bad_reads_are_refused_clearly() {
    let server = start(
        common::memory_store(),
        Config {
            default_limit: 3,
            max_limit: 5,
            ..Config::default()
        },
    )
    .await;
    let c = cluster();
    let t = seconds_ago(60);
    server
        .write_ok(
            &c,
            &format!("pods,name=p,namespace=ns,node=n,phase=Running cpu_usage=1i,memory_usage=2i,restarts=0i {t}\npods,name=q,namespace=ns,node=n,phase=Running cpu_usage=1i {t}\n"),
        )
        .await;

    let expect = |status: u16, code: &str, (got_status, body): (u16, Value)| {
        assert_eq!(got_status, status, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        body["error"]["message"].as_str().unwrap().to_owned()
    };
    let message = expect(
        400,
        "validation_failed",
        server.get(&format!("/api/v1/pmds/pods/{c}")).await,
    );
    assert!(message.contains("namespace"), "{message}");
    expect(
        400,
        "validation_failed",
        server
            .get(&format!("/api/v1/pmds/pods/{c}?namespace="))
            .await,
    );
    expect(
        400,
        "validation_failed",
        server.get(&format!("/api/v1/pmds/deployments/{c}")).await,
    );
    let message = expect(
        400,
        "validation_failed",
        server
            .get(&format!(
                "/api/v1/pmds/pods/{c}?namespace=ns&start=-1m&stop=-5m"
            ))
            .await,
    );
    assert!(message.contains("start must be before stop"), "{message}");
    let message = expect(
        400,
        "validation_failed",
        server
            .get(&format!(
                "/api/v1/pmds/pods/{c}?namespace=ns&start=yesterday"
            ))
            .await,
    );
    assert!(message.contains("invalid start"), "{message}");
    expect(
        400,
        "bad_request",
        server
            .get(&format!("/api/v1/pmds/nodes/{c}?group=gpu"))
            .await,
    );
    expect(
        400,
        "bad_request",
        server
            .get(&format!("/api/v1/pmds/nodes/{c}?format=xml"))
            .await,
    );
    let message = expect(
        400,
        "bad_request",
        server.get(&format!("/api/v1/pmds/pvs/{c}?nme=x")).await,
    );
    assert!(message.contains("nme"), "{message}");
    expect(
        400,
        "bad_request",
        server.get("/api/v1/pmds/nodes/123").await,
    );
    let message = expect(
        404,
        "not_found",
        server
            .get(&format!("/api/v1/pmds/nodes/{}", cluster()))
            .await,
    );
    assert!(message.contains("no telemetry for cluster"), "{message}");
    expect(
        404,
        "not_found",
        server
            .get(&format!("/api/v1/pmds/pods/{}?namespace=ns", cluster()))
            .await,
    );

    // Limits: 4 values > 3 by default → 413; limit=5 is fine; 6 is over the cap.
    expect(
        413,
        "result_too_large",
        server
            .get(&format!("/api/v1/pmds/pods/{c}?namespace=ns&format=raw"))
            .await,
    );
    let (status, body) = server
        .get(&format!(
            "/api/v1/pmds/pods/{c}?namespace=ns&format=raw&limit=5"
        ))
        .await;
    assert_eq!((status, body.as_array().unwrap().len()), (200, 4));
    let (status, _) = server
        .get(&format!(
            "/api/v1/pmds/pods/{c}?namespace=ns&format=raw&limit=4"
        ))
        .await;
    assert_eq!(status, 200, "exactly at the limit is fine");
    expect(
        400,
        "validation_failed",
        server
            .get(&format!("/api/v1/pmds/pods/{c}?namespace=ns&limit=6"))
            .await,
    );
    expect(
        400,
        "validation_failed",
        server
            .get(&format!("/api/v1/pmds/pods/{c}?namespace=ns&limit=0"))
            .await,
    );

    // Reads need the bearer token; InfluxDB's `Token` scheme is for the write routes only.
    let no_token = server
        .http
        .get(format!("{}/api/v1/pmds/pvs/{c}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);
    let token_scheme = server
        .http
        .get(format!("{}/api/v1/pmds/pvs/{c}", server.url))
        .header("Authorization", format!("Token {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(token_scheme.status(), 401);
}

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn writes_like_influxdb() {
    let server = start(
        common::memory_store(),
        Config {
            max_write_bytes: 4096,
            ..Config::default()
        },
    )
    .await;
    let c = cluster();
    let t = seconds_ago(30);
    let post = |path: &str, query: Vec<(&str, String)>, auth: Option<String>| {
        let mut request = server
            .http
            .post(format!("{}{path}", server.url))
            .query(&query);
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        request
    };
    let token = Some(format!("Token {TOKEN}"));
    let bearer = Some(format!("Bearer {TOKEN}"));
    let v2 = |bucket: &str| vec![("bucket", bucket.to_owned()), ("precision", "s".to_owned())];

    // Bearer and Token both work; gzip bodies are inflated; v1 `/write` maps db → bucket.
    let response = post("/api/v2/write", v2(&c), bearer.clone())
        .body(format!(
            "hpc_partitions,partition_name=a avail_cpus=1i {t}\n"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let response = post("/api/v2/write", v2(&c), token.clone())
        .header("Content-Encoding", "gzip")
        .body(gzip(&format!(
            "hpc_partitions,partition_name=b avail_cpus=2i {t}\n"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let response = post(
        "/write",
        vec![("db", c.clone()), ("precision", "ms".to_owned())],
        token.clone(),
    )
    .body(format!(
        "hpc_partitions,partition_name=c avail_cpus=3i {}\n",
        t * 1000
    ))
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 204);
    let (_, body) = server
        .get(&format!("/api/v1/pmds/hpc_partitions/{c}"))
        .await;
    assert_eq!(
        body,
        json!({
            "a": [{"avail_cpus": 1, "time": rfc3339(t)}],
            "b": [{"avail_cpus": 2, "time": rfc3339(t)}],
            "c": [{"avail_cpus": 3, "time": rfc3339(t)}],
        })
    );

    // A malformed line rejects the whole body: InfluxDB's error shape, nothing stored.
    let c2 = cluster();
    let response = post("/api/v2/write", v2(&c2), token.clone())
        .body(format!(
            "pods,name=x,namespace=ns cpu_usage=1i {t}\npods,name=y,namespace=ns cpu_usage= {t}\n"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "invalid");
    assert!(
        body["message"].as_str().unwrap().contains("line 2"),
        "{body}"
    );
    let (status, _) = server
        .get(&format!("/api/v1/pmds/pods/{c2}?namespace=ns"))
        .await;
    assert_eq!(status, 404, "nothing of the rejected body was stored");

    let influx_code = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        (status, body["code"].as_str().unwrap_or_default().to_owned())
    };
    let missing_bucket = post("/api/v2/write", vec![], token.clone())
        .body("m v=1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(influx_code(missing_bucket).await, (400, "invalid".into()));
    let bad_precision = post(
        "/api/v2/write",
        vec![("bucket", c.clone()), ("precision", "h".into())],
        token.clone(),
    )
    .body("m v=1\n")
    .send()
    .await
    .unwrap();
    assert_eq!(influx_code(bad_precision).await, (400, "invalid".into()));
    let bad_gzip = post("/api/v2/write", v2(&c), token.clone())
        .header("Content-Encoding", "gzip")
        .body("not gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(influx_code(bad_gzip).await, (400, "invalid".into()));
    let brotli = post("/api/v2/write", v2(&c), token.clone())
        .header("Content-Encoding", "br")
        .body("m v=1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(
        influx_code(brotli).await,
        (415, "unsupported media type".into())
    );

    // Over `max_write_bytes` (4096), plain or once inflated: 413.
    let big = format!("hpc_partitions,partition_name=z avail_cpus=1i {t}\n").repeat(200);
    let plain = post("/api/v2/write", v2(&c), token.clone())
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(influx_code(plain).await, (413, "request too large".into()));
    let inflated = post("/api/v2/write", v2(&c), token.clone())
        .header("Content-Encoding", "gzip")
        .body(gzip(&big))
        .send()
        .await
        .unwrap();
    assert_eq!(
        influx_code(inflated).await,
        (413, "request too large".into())
    );

    // No token or a wrong one: 401 (the shell's error shape).
    let none = post("/api/v2/write", v2(&c), None)
        .body("m v=1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    let wrong = post("/api/v2/write", v2(&c), Some("Token nope".into()))
        .body("m v=1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    // What the write path did shows on /metrics.
    let metrics = server
        .http
        .get(format!("{}/metrics", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("pmds_ingested_lines_total 3"), "{metrics}");
    assert!(
        metrics.contains("pmds_write_requests_total{outcome=\"accepted\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pmds_write_requests_total{outcome=\"too_large\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pmds_backend_info{backend=\"embedded\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn bodies_over_the_http_limit_are_refused_before_reading() {
    let mut config = Config::default();
    config.http.max_body_bytes = 1024;
    let server = start(common::memory_store(), config).await;
    let response = server
        .http
        .post(format!("{}/api/v2/write", server.url))
        .query(&[("bucket", cluster())])
        .header("Authorization", format!("Token {TOKEN}"))
        .body("m v=1i\n".repeat(1000))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn probes_answer() {
    let server = start_default().await;
    let ready = server
        .http
        .get(format!("{}/ready", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let openapi: Value = server
        .http
        .get(format!("{}/openapi.json", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(openapi["paths"]["/api/v1/pmds/nodes/{cluster_uuid}"].is_object());
    assert!(openapi["paths"]["/api/v2/write"].is_object());
}

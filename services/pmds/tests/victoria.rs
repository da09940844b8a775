//! PMDS over the real VictoriaMetrics (`SERRANO_TEST_VICTORIAMETRICS_URL`, started by
//! `scripts/infra start victoriametrics`): writes through `/api/v2/write`, reads both formats.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{rfc3339, seconds_ago, start};
use serde_json::json;
use serrano_pmds::Config;
use serrano_timeseries::VictoriaMetrics;
use uuid::Uuid;

#[tokio::test]
async fn pmds_on_victoriametrics() {
    let url = match std::env::var("SERRANO_TEST_VICTORIAMETRICS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                std::env::var("SERRANO_REQUIRE_REAL_SERVERS").as_deref() != Ok("1"),
                "SERRANO_TEST_VICTORIAMETRICS_URL is not set but SERRANO_REQUIRE_REAL_SERVERS=1"
            );
            println!("skipped: SERRANO_TEST_VICTORIAMETRICS_URL is not set");
            return;
        }
    };
    let store = Arc::new(VictoriaMetrics::new(&url).unwrap());
    let server = start(store.clone(), Config::default()).await;
    let c = Uuid::new_v4().to_string();
    let (t0, t1) = (seconds_ago(300), seconds_ago(270));
    server
        .write_ok(
            &c,
            &format!(
                "nodes,group=memory,node_name=nuc5 node_memory_MemFree_bytes=18508849152,node_memory_usage_percentage=72.55 {t0}\n\
                 nodes,group=memory,node_name=nuc5 node_memory_MemFree_bytes=18575515648i {t1}\n\
                 pods,name=web-1,namespace=prod,node=n1,phase=Running cpu_usage=188567i,restarts=1i,note=\"strings are dropped\" {t0}\n"
            ),
        )
        .await;
    serrano_timeseries::TimeSeriesStore::flush(store.as_ref())
        .await
        .unwrap();

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
    let (_, body) = server
        .get(&format!("/api/v1/pmds/pods/{c}?namespace=prod&format=raw"))
        .await;
    assert_eq!(
        body,
        json!([
            {"_measurement": "pods", "_field": "cpu_usage", "_value": 188567.0, "_time": rfc3339(t0),
             "name": "web-1", "namespace": "prod", "node": "n1", "phase": "Running"},
            {"_measurement": "pods", "_field": "restarts", "_value": 1.0, "_time": rfc3339(t0),
             "name": "web-1", "namespace": "prod", "node": "n1", "phase": "Running"},
        ])
    );
    let (status, _) = server
        .get(&format!("/api/v1/pmds/nodes/{}", Uuid::new_v4()))
        .await;
    assert_eq!(status, 404);
    let ready = server
        .http
        .get(format!("{}/ready", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

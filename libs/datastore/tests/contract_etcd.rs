//! The contract suite against a real etcd at `SERRANO_TEST_ETCD_ENDPOINTS` (comma-separated,
//! e.g. `http://127.0.0.1:2379`). Without the variable the tests are skipped (they pass with a
//! message), unless `SERRANO_REQUIRE_REAL_SERVERS=1`, in which case they fail.
//!
//! Every case writes under its own fresh prefix; the cases run one after the other in a single
//! test so that the exact-revision checks are not disturbed by the other cases.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serrano_datastore::{EtcdStore, KvStore, StoreError, contract};

fn endpoints() -> Option<Vec<String>> {
    match std::env::var("SERRANO_TEST_ETCD_ENDPOINTS") {
        Ok(v) if !v.trim().is_empty() => Some(
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        ),
        _ => {
            if std::env::var("SERRANO_REQUIRE_REAL_SERVERS").as_deref() == Ok("1") {
                panic!("SERRANO_REQUIRE_REAL_SERVERS=1 but SERRANO_TEST_ETCD_ENDPOINTS is not set");
            }
            println!("skipped: SERRANO_TEST_ETCD_ENDPOINTS is not set (no etcd to test against)");
            None
        }
    }
}

async fn connect(endpoints: &[String]) -> Arc<dyn KvStore> {
    Arc::new(
        EtcdStore::connect(endpoints, Duration::from_secs(5))
            .await
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contract_etcd() {
    let Some(endpoints) = endpoints() else { return };
    let store = connect(&endpoints).await;
    store.health().await.expect("etcd is reachable");
    let shared = store.clone();
    contract::run_suite(move || {
        let s = shared.clone();
        Box::pin(async move { s })
    })
    .await;
    // After the suite, not beside it: compaction would break its watches from old revisions.
    compacted_watch(&endpoints).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_down_is_unavailable_quickly() {
    // Runs whether or not a real etcd exists: nothing listens on port 1.
    let store = EtcdStore::connect(
        &["http://127.0.0.1:1".to_string()],
        Duration::from_millis(500),
    )
    .await
    .expect("connecting is lazy");
    let started = Instant::now();
    assert!(matches!(
        store.health().await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.get("k").await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.put("k", vec![1], 0).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.watch_prefix("k", None).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Compacts the etcd history, which would disturb other users of a shared etcd watching from
/// old revisions: only with `SERRANO_TEST_ETCD_ALLOW_COMPACT=1`.
async fn compacted_watch(endpoints: &[String]) {
    if std::env::var("SERRANO_TEST_ETCD_ALLOW_COMPACT").as_deref() != Ok("1") {
        println!("skipped: set SERRANO_TEST_ETCD_ALLOW_COMPACT=1 to compact the test etcd");
        return;
    }
    let store = EtcdStore::connect(endpoints, Duration::from_secs(5))
        .await
        .unwrap();
    let p = contract::unique_prefix("compacted");
    let r1 = store.put(&format!("{p}a"), vec![1], 0).await.unwrap();
    let r2 = store.put(&format!("{p}a"), vec![2], 0).await.unwrap();
    // Compacting at r2 only drops history older than r2 (never data): harmless on a shared etcd
    // except for watches from before r2.
    let mut c = store.client().clone();
    c.compact(r2, None).await.unwrap();
    match store.watch_prefix(&p, Some(r1)).await {
        Err(StoreError::Compacted { requested, oldest }) => {
            assert_eq!(requested, r1);
            assert!(oldest > r1);
        }
        Ok(mut w) => {
            use futures::StreamExt;
            match tokio::time::timeout(Duration::from_secs(5), w.next()).await {
                Ok(Some(Err(StoreError::Compacted { .. }))) => {}
                other => panic!("expected Compacted, got {other:?}"),
            }
        }
        Err(e) => panic!("expected Compacted, got {e}"),
    }
}

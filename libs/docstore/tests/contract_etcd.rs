//! The contract suite on the embedded document store over a real etcd at
//! `SERRANO_TEST_ETCD_ENDPOINTS` (comma-separated, e.g. `http://127.0.0.1:2379`), under a key
//! prefix of its own that is deleted afterwards. Without the variable the test is skipped (it
//! passes with a message), unless `SERRANO_REQUIRE_REAL_SERVERS=1`, in which case it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use serrano_datastore::{EtcdStore, KvStore};
use serrano_docstore::{DocStore, EmbeddedDocStore, contract};

fn endpoints() -> Option<Vec<String>> {
    match std::env::var("SERRANO_TEST_ETCD_ENDPOINTS") {
        Ok(v) if !v.trim().is_empty() => Some(
            v.split(',')
                .map(|s| s.trim().to_owned())
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contract_embedded_on_etcd() {
    let Some(endpoints) = endpoints() else { return };
    let kv: Arc<dyn KvStore> = Arc::new(
        EtcdStore::connect(&endpoints, Duration::from_secs(5))
            .await
            .unwrap(),
    );
    kv.health().await.expect("etcd is reachable");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let prefix = format!("/serrano-test/docstore-{}-{nanos}/", std::process::id());
    let store = EmbeddedDocStore::new(kv.clone(), &prefix);
    store.health().await.unwrap();
    contract::run_suite(Arc::new(store)).await;
    kv.delete_prefix(&prefix).await.unwrap();
}

/// Two stores on two etcd connections (two processes sharing one etcd): each sees the other's
/// writes through its watch, and racing creations through both still create one document.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_stores_share_one_etcd() {
    use serde_json::json;
    use serrano_docstore::{Filter, FindOptions};

    let Some(endpoints) = endpoints() else { return };
    let connect = || async {
        let kv: Arc<dyn KvStore> = Arc::new(
            EtcdStore::connect(&endpoints, Duration::from_secs(5))
                .await
                .unwrap(),
        );
        kv
    };
    let (kv_a, kv_b) = (connect().await, connect().await);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let prefix = format!(
        "/serrano-test/docstore-shared-{}-{nanos}/",
        std::process::id()
    );
    let a = Arc::new(EmbeddedDocStore::new(kv_a.clone(), &prefix));
    let b = Arc::new(EmbeddedDocStore::new(kv_b, &prefix));
    let all = FindOptions::default();
    let eventually =
        |store: Arc<EmbeddedDocStore>, filter: Filter, expected: Vec<serde_json::Value>| {
            let all = all.clone();
            async move {
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                loop {
                    let got = store.find("c", &filter, &all).await.unwrap();
                    if got == expected {
                        return;
                    }
                    assert!(
                        std::time::Instant::now() < deadline,
                        "still {got:?}, expected {expected:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        };

    assert!(a.find("c", &Filter::all(), &all).await.unwrap().is_empty());
    b.insert("c", json!({"k": 1, "v": "b"})).await.unwrap();
    eventually(a.clone(), Filter::all(), vec![json!({"k": 1, "v": "b"})]).await;
    assert!(
        a.upsert("c", &Filter::all().eq("k", 1), json!({"k": 1, "v": "a"}))
            .await
            .unwrap()
    );
    eventually(b.clone(), Filter::all(), vec![json!({"k": 1, "v": "a"})]).await;
    assert_eq!(
        b.delete_many("c", &Filter::all().eq("k", 1)).await.unwrap(),
        1
    );
    eventually(a.clone(), Filter::all(), vec![]).await;

    // Racing increments through both stores, including on creating the document.
    let filter = Filter::all().eq("name", "hits");
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let filter = filter.clone();
            tokio::spawn(async move {
                store
                    .increment("c", &filter, json!({"name": "hits"}), "n", 1, 0)
                    .await
                    .unwrap()["n"]
                    .as_i64()
                    .unwrap()
            })
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=20).collect::<Vec<i64>>());
    eventually(
        a.clone(),
        Filter::all(),
        vec![json!({"name": "hits", "n": 20})],
    )
    .await;
    eventually(
        b.clone(),
        Filter::all(),
        vec![json!({"name": "hits", "n": 20})],
    )
    .await;
    kv_a.delete_prefix(&prefix).await.unwrap();
}

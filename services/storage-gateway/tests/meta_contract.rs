//! The `MetadataStore` contract suite (`serrano_storage_gateway::meta_contract`) against every
//! metadata backend: `KvMetadata` on the embedded store (always), on etcd at
//! `SERRANO_TEST_ETCD_ENDPOINTS` (comma-separated), and `MongoMetadata` at
//! `SERRANO_TEST_MONGO_URI` (`scripts/infra start etcd mongo`, then `eval "$(scripts/infra env)"`).
//! Without a variable its test is skipped with a message, unless `SERRANO_REQUIRE_REAL_SERVERS=1`,
//! in which case it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use mongodb::bson::doc;
use serrano_datastore::{EmbeddedStore, EtcdStore, KvStore};
use serrano_storage_gateway::meta::{KvMetadata, MetaError, MetadataStore};
use serrano_storage_gateway::meta_contract::{run_suite, unique_run};
use serrano_storage_gateway::mongo::MongoMetadata;

/// The database the MongoDB tests use (every run has its own bucket names and ids in it).
const MONGO_DATABASE: &str = "serrano_test_meta";

/// The value of a test server variable; None (skip) when unset, a failure when real servers
/// are required.
fn server_var(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Some(v.trim().to_owned()),
        _ => {
            if std::env::var("SERRANO_REQUIRE_REAL_SERVERS").as_deref() == Ok("1") {
                panic!("SERRANO_REQUIRE_REAL_SERVERS=1 but {name} is not set");
            }
            println!("skipped: {name} is not set (no server to test against)");
            None
        }
    }
}

async fn suite(what: &str, store: Arc<dyn MetadataStore>) {
    let started = Instant::now();
    let times = run_suite(store).await;
    for (case, took) in &times {
        println!("  {case}: {took:?}");
    }
    println!(
        "meta contract on {what}: {} cases in {:?}",
        times.len(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_kv_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let kv: Arc<dyn KvStore> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    suite("KvMetadata/embedded", Arc::new(KvMetadata::new(kv))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_kv_etcd() {
    let Some(endpoints) = server_var("SERRANO_TEST_ETCD_ENDPOINTS") else {
        return;
    };
    let endpoints: Vec<String> = endpoints
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let kv: Arc<dyn KvStore> = Arc::new(
        EtcdStore::connect(&endpoints, Duration::from_secs(5))
            .await
            .unwrap(),
    );
    kv.health().await.expect("etcd is reachable");
    suite("KvMetadata/etcd", Arc::new(KvMetadata::new(kv))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_mongo() {
    let Some(uri) = server_var("SERRANO_TEST_MONGO_URI") else {
        return;
    };
    let started = Instant::now();
    let store = MongoMetadata::connect(&uri, MONGO_DATABASE)
        .await
        .expect("MongoDB is reachable");
    println!("connected to {uri} in {:?}", started.elapsed());
    // Connecting again finds the indexes in place.
    MongoMetadata::connect(&uri, MONGO_DATABASE).await.unwrap();
    suite("MongoMetadata", Arc::new(store.clone())).await;
    corrupt_records_are_reported(&uri, &store).await;
}

/// A stored document whose record is not the expected JSON is `Corrupt`, not a panic or an
/// `Unavailable` (written behind the store's back, in its documented layout).
async fn corrupt_records_are_reported(uri: &str, store: &MongoMetadata) {
    let bucket = format!("{}-corrupt", unique_run());
    let client = mongodb::Client::with_uri_str(uri).await.unwrap();
    let objects = client
        .database(MONGO_DATABASE)
        .collection::<mongodb::bson::Document>("objects");
    let key_hex = "6b"; // "k"
    objects
        .insert_one(doc! { "bucket": &bucket, "key_hex": key_hex, "record": "{not json" })
        .await
        .unwrap();
    objects
        .insert_one(doc! { "bucket": &bucket, "key_hex": "6c", "record": 7_i32 })
        .await
        .unwrap();
    match store.object(&bucket, "k").await {
        Err(MetaError::Corrupt(what, _)) => assert!(what.contains(&bucket), "{what}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    match store.object(&bucket, "l").await {
        Err(MetaError::Corrupt(_, why)) => assert!(why.contains("record"), "{why}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(matches!(
        store.scan_objects(&bucket, "", 10).await,
        Err(MetaError::Corrupt(..))
    ));
    // Overwriting and deleting an unreadable record works (the old one is not returned).
    let fixed = serrano_storage_gateway::meta::ObjectMeta {
        bucket: bucket.clone(),
        key: "k".to_owned(),
        ..store_sample(&bucket)
    };
    assert_eq!(store.put_object(&fixed).await.unwrap(), None);
    assert_eq!(
        store.object(&bucket, "k").await.unwrap(),
        Some(fixed.clone())
    );
    assert_eq!(
        store.delete_object(&bucket, "k").await.unwrap(),
        Some(fixed)
    );
    assert_eq!(store.delete_object(&bucket, "l").await.unwrap(), None);
    assert!(
        store
            .scan_objects(&bucket, "", 10)
            .await
            .unwrap()
            .is_empty()
    );
}

fn store_sample(bucket: &str) -> serrano_storage_gateway::meta::ObjectMeta {
    use serrano_storage_gateway::meta::{ObjectHeaders, ObjectMeta, Placement};
    ObjectMeta {
        bucket: bucket.to_owned(),
        key: "sample".to_owned(),
        object_id: uuid::Uuid::new_v4(),
        size: 1,
        etag: "00".to_owned(),
        last_modified_ms: 1,
        headers: ObjectHeaders::default(),
        placement: Placement {
            locations: vec!["edge-1".to_owned()],
            scheme: serrano_codec::Scheme::ReedSolomon,
            data: 1,
            parity: 0,
            compression: serrano_codec::Compression::None,
            stripe_bytes: 1 << 20,
            encrypted: false,
        },
        segments: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_down_is_unavailable_quickly() {
    // Runs whether or not a real server exists: nothing listens on port 1.
    let started = Instant::now();
    match MongoMetadata::connect(
        "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500&connectTimeoutMS=500",
        MONGO_DATABASE,
    )
    .await
    {
        Err(MetaError::Unavailable(why)) => assert!(why.contains("MongoDB"), "{why}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(matches!(
        MongoMetadata::connect("http://not-a-mongodb-uri", MONGO_DATABASE).await,
        Err(MetaError::Unavailable(_))
    ));
}

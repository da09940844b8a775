//! The contract suite against a real MongoDB-protocol server at `SERRANO_TEST_MONGO_URI`
//! (e.g. `mongodb://127.0.0.1:27117`, NX-27017 started by `scripts/infra start mongo`), in a
//! database of its own that is dropped afterwards. Without the variable the tests are skipped
//! (they pass with a message), unless `SERRANO_REQUIRE_REAL_SERVERS=1`, in which case they fail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use mongodb::bson::{Bson, DateTime, doc, oid::ObjectId};
use serde_json::json;
use serrano_docstore::{DocStore, Filter, FindOptions, MongoDocStore, contract};

fn mongo_uri() -> Option<String> {
    match std::env::var("SERRANO_TEST_MONGO_URI") {
        Ok(v) if !v.trim().is_empty() => Some(v.trim().to_owned()),
        _ => {
            if std::env::var("SERRANO_REQUIRE_REAL_SERVERS").as_deref() == Ok("1") {
                panic!("SERRANO_REQUIRE_REAL_SERVERS=1 but SERRANO_TEST_MONGO_URI is not set");
            }
            println!(
                "skipped: SERRANO_TEST_MONGO_URI is not set (no MongoDB server to test against)"
            );
            None
        }
    }
}

/// A database name no other run uses.
fn unique_database(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "docstore_{what}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contract_mongo() {
    let Some(uri) = mongo_uri() else { return };
    let database = unique_database("contract");
    let store = MongoDocStore::connect(&uri, &database).await.unwrap();
    store.health().await.expect("the MongoDB server answers");
    contract::run_suite(Arc::new(store.clone())).await;
    store.client().database(&database).drop().await.unwrap();
}

#[tokio::test]
async fn foreign_documents_read_as_json() {
    let Some(uri) = mongo_uri() else { return };
    let database = unique_database("foreign");
    let store = MongoDocStore::connect(&uri, &database).await.unwrap();
    // A document another tool wrote: its own _id, Int32, a date.
    let raw = store.client().database(&database).collection("legacy");
    let oid = ObjectId::new();
    raw.insert_one(doc! {
        "_id": oid,
        "small": Bson::Int32(7),
        "at": DateTime::from_millis(1_700_000_000_000),
        "ref": ObjectId::new(),
        "name": "x",
    })
    .await
    .unwrap();
    let docs = store
        .find(
            "legacy",
            &Filter::all().eq("small", 7),
            &FindOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(docs.len(), 1);
    let doc = &docs[0];
    assert!(doc.get("_id").is_none());
    assert_eq!(doc["small"], json!(7));
    assert_eq!(doc["at"], json!("2023-11-14T22:13:20Z"));
    assert_eq!(doc["ref"].as_str().map(str::len), Some(24));
    assert_eq!(
        store.collections().await.unwrap(),
        vec!["legacy".to_owned()]
    );
    store.client().database(&database).drop().await.unwrap();
}

//! The contract suite: the behaviour every [`DocStore`] backend must have, MongoDB semantics for
//! what the trait can express (see `matcher.rs`).
//!
//! Each case uses its own fresh collection names, so the suite can run against a shared
//! server. It sticks to behaviour that MongoDB, NX-27017 (the test server) and the embedded
//! store share; the embedded store's own unit tests cover the rest of MongoDB's rules (array
//! element matching, type bracketing of strings in ranges).
//!
//! Run by the embedded unit tests, `tests/contract_mongo.rs` and `tests/contract_etcd.rs`;
//! other crates get it with the `contract-suite` feature.

// Test code: a failed expectation is a panic with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::Barrier;

use crate::{DocError, DocStore, Filter, FindOptions};

/// One case: a name and its body (store, a collection name of its own).
pub struct Case {
    pub name: &'static str,
    pub run: fn(Arc<dyn DocStore>, String) -> BoxFuture<'static, ()>,
}

macro_rules! case {
    ($f:ident) => {
        Case {
            name: stringify!($f),
            run: |s, c| Box::pin($f(s, c)),
        }
    };
}

/// Every case of the suite.
pub fn cases() -> Vec<Case> {
    vec![
        case!(round_trip),
        case!(eq_filters),
        case!(in_filters),
        case!(ranges_and_retention),
        case!(sort_and_limit),
        case!(find_one),
        case!(upsert_replaces),
        case!(delete_many_counts),
        case!(increment_counts_and_floors),
        case!(concurrent_increments),
        case!(concurrent_upserts),
        case!(invalid_input),
        case!(collections_listed),
    ]
}

/// Runs every case, one after the other, on `store`.
pub async fn run_suite(store: Arc<dyn DocStore>) {
    for case in cases() {
        let collection = unique_collection(case.name);
        println!("docstore contract case {} in {collection}", case.name);
        (case.run)(store.clone(), collection).await;
    }
}

/// A collection name no other run uses: `<name>_<pid>_<nanos>_<n>` (under 120 chars for names
/// up to 60 characters). Only letters, digits and `_`: NX-27017 keeps collections in SQLite
/// tables and refuses `-` and `.` in names (MongoDB and the embedded store accept them).
pub fn unique_collection(name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{name}_{}_{nanos}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn all() -> FindOptions {
    FindOptions::default()
}

fn sorted(field: &str, descending: bool, limit: Option<usize>) -> FindOptions {
    FindOptions {
        sort_by: Some(field.to_owned()),
        descending,
        limit,
    }
}

async fn find(s: &Arc<dyn DocStore>, c: &str, filter: Filter) -> Vec<Value> {
    let docs = s.find(c, &filter, &all()).await.unwrap();
    docs.iter().for_each(assert_no_id);
    docs
}

fn assert_no_id(doc: &Value) {
    let map = doc.as_object().expect("documents are objects");
    assert!(!map.contains_key("_id"), "_id returned in {doc}");
}

fn field<'a>(docs: &'a [Value], name: &str) -> Vec<&'a Value> {
    docs.iter().map(|d| &d[name]).collect()
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, DocError>, what: &str) {
    match result {
        Err(DocError::Invalid(_)) => {}
        other => panic!("{what}: expected Invalid, got {other:?}"),
    }
}

pub async fn round_trip(s: Arc<dyn DocStore>, c: String) {
    let docs = vec![
        json!({
            "kind": "full",
            "int": 42,
            "neg": -7,
            "big": 9_007_199_254_740_993_i64,
            "max": i64::MAX,
            "float": 2.0,
            "tenth": 0.1,
            "nested": {"deep": {"list": [1, 2.5, "three", null, true, {"y": []}]}},
            "labels": {"nvidia.com/gpu": "1", "security-tier": 0, "kubernetes.io/arch": "amd64"},
            "dollar": "$where",
            "dotted": "a.b.c",
            "op": {"k": "$gt", "list": ["$ne", "x.y"]},
            "unicode": "ηλ ✓",
            "empty_object": {},
            "empty_list": [],
            "none": null,
            "yes": false
        }),
        json!({"kind": "small", "n": 1}),
    ];
    s.insert_many(&c, docs.clone()).await.unwrap();
    // An empty batch is fine and writes nothing.
    s.insert_many(&c, Vec::new()).await.unwrap();
    let got = find(&s, &c, Filter::all()).await;
    assert_eq!(
        got, docs,
        "documents come back as written, in insertion order"
    );
    // Integers stay integers, floats stay floats.
    assert!(got[0]["int"].is_i64() && got[0]["neg"].is_i64());
    assert!(
        got[0]["float"].is_f64(),
        "2.0 stays a float: {}",
        got[0]["float"]
    );
    assert_eq!(got[0]["big"].as_i64(), Some(9_007_199_254_740_993));
    assert_eq!(got[0]["max"].as_i64(), Some(i64::MAX));
    // A value containing `$` or `.` is a value.
    assert_eq!(
        find(&s, &c, Filter::all().eq("dollar", "$where"))
            .await
            .len(),
        1
    );
    assert_eq!(find(&s, &c, Filter::all().eq("op.k", "$gt")).await.len(), 1);
    assert_eq!(
        find(&s, &c, Filter::all().eq("dotted", "a.b.c"))
            .await
            .len(),
        1
    );

    s.insert(&c, json!({"kind": "third"})).await.unwrap();
    assert_eq!(
        field(&find(&s, &c, Filter::all()).await, "kind"),
        vec!["full", "small", "third"]
    );
}

pub async fn eq_filters(s: Arc<dyn DocStore>, c: String) {
    s.insert_many(
        &c,
        vec![
            json!({"id": 0, "cluster": {"uuid": "c1", "site": "edge"}, "n": 1, "s": "$gt", "t": "x"}),
            json!({"id": 1, "cluster": {"uuid": "c2"}, "n": 2.0, "s": "a.b", "t": null}),
            json!({"id": 2, "cluster": {"uuid": "c1"}, "n": 3}),
            json!({"id": 3, "flag": true}),
        ],
    )
    .await
    .unwrap();
    let ids =
        |docs: Vec<Value>| -> Vec<i64> { docs.iter().map(|d| d["id"].as_i64().unwrap()).collect() };
    assert_eq!(
        ids(find(&s, &c, Filter::all().eq("cluster.uuid", "c1")).await),
        vec![0, 2]
    );
    assert_eq!(
        ids(find(&s, &c, Filter::all().eq("cluster.site", "edge")).await),
        vec![0]
    );
    // Numbers compare by value across integers and floats.
    assert_eq!(ids(find(&s, &c, Filter::all().eq("n", 1.0)).await), vec![0]);
    assert_eq!(ids(find(&s, &c, Filter::all().eq("n", 2)).await), vec![1]);
    assert_eq!(
        ids(find(&s, &c, Filter::all().eq("n", 2.5)).await),
        Vec::<i64>::new()
    );
    // Strings are not numbers.
    assert_eq!(
        ids(find(&s, &c, Filter::all().eq("n", "1")).await),
        Vec::<i64>::new()
    );
    assert_eq!(
        ids(find(&s, &c, Filter::all().eq("s", "$gt")).await),
        vec![0]
    );
    assert_eq!(
        ids(find(&s, &c, Filter::all().eq("s", "a.b")).await),
        vec![1]
    );
    // null matches null and missing.
    assert_eq!(
        ids(find(&s, &c, Filter::all().eq("t", Value::Null)).await),
        vec![1, 2, 3]
    );
    assert_eq!(
        ids(find(&s, &c, Filter::all().eq("flag", true)).await),
        vec![3]
    );
    assert_eq!(
        ids(find(&s, &c, Filter::all().eq("nowhere.deep", "x")).await),
        Vec::<i64>::new()
    );
    // Conditions combine with AND.
    assert_eq!(
        ids(find(&s, &c, Filter::all().eq("cluster.uuid", "c1").eq("n", 3)).await),
        vec![2]
    );
    assert_eq!(
        ids(find(&s, &c, Filter::all().eq("cluster.uuid", "c1").eq("n", 2)).await),
        Vec::<i64>::new()
    );
}

pub async fn in_filters(s: Arc<dyn DocStore>, c: String) {
    s.insert_many(
        &c,
        vec![
            json!({"id": 0, "v": 1}),
            json!({"id": 1, "v": 2.5}),
            json!({"id": 2, "v": "x"}),
            json!({"id": 3, "v": "1"}),
            json!({"id": 4, "v": null}),
            json!({"id": 5}),
            json!({"id": 6, "v": "y"}),
        ],
    )
    .await
    .unwrap();
    let ids =
        |docs: Vec<Value>| -> Vec<i64> { docs.iter().map(|d| d["id"].as_i64().unwrap()).collect() };
    let mixed = Filter::all().is_in("v", [json!(1.0), json!("x"), json!(2.5)]);
    assert_eq!(ids(find(&s, &c, mixed).await), vec![0, 1, 2]);
    let with_null = Filter::all().is_in("v", [json!(null), json!("y")]);
    assert_eq!(ids(find(&s, &c, with_null).await), vec![4, 5, 6]);
    let none = Filter::all().is_in("v", Vec::<Value>::new());
    assert_eq!(ids(find(&s, &c, none).await), Vec::<i64>::new());
    let combined = Filter::all().is_in("id", [0, 2, 3]).is_in("v", ["1", "x"]);
    assert_eq!(ids(find(&s, &c, combined).await), vec![2, 3]);
}

pub async fn ranges_and_retention(s: Arc<dyn DocStore>, c: String) {
    let mut docs: Vec<Value> = (100..110).map(|ts| json!({ "ts": ts })).collect();
    docs.push(json!({"ts": 104.5}));
    docs.push(json!({"other": 1}));
    docs.push(json!({"ts": null}));
    s.insert_many(&c, docs).await.unwrap();
    let count = |filter: Filter| {
        let s = s.clone();
        let c = c.clone();
        async move { find(&s, &c, filter).await.len() }
    };
    assert_eq!(count(Filter::all().lt("ts", 105.0)).await, 6);
    assert_eq!(count(Filter::all().gte("ts", 105.0)).await, 5);
    assert_eq!(
        count(Filter::all().gte("ts", 104.5).lt("ts", 106.0)).await,
        2
    );
    assert_eq!(
        count(Filter::all().gte("ts", 0.0)).await,
        11,
        "missing and null never match"
    );
    assert_eq!(count(Filter::all().lt("ts", f64::INFINITY)).await, 11);
    assert_eq!(count(Filter::all().lt("ts", 100.0)).await, 0);

    // Retention: drop everything older than 105 (D6.7 4.4.3: the agent keeps a short window).
    assert_eq!(
        s.delete_many(&c, &Filter::all().lt("ts", 105.0))
            .await
            .unwrap(),
        6
    );
    assert_eq!(
        s.delete_many(&c, &Filter::all().lt("ts", 105.0))
            .await
            .unwrap(),
        0
    );
    let left = find(&s, &c, Filter::all()).await;
    assert_eq!(left.len(), 7);
    assert_eq!(
        field(&left, "ts"),
        vec![
            &json!(105),
            &json!(106),
            &json!(107),
            &json!(108),
            &json!(109),
            &Value::Null,
            &Value::Null
        ]
    );
    assert_eq!(left[5], json!({"other": 1}));
}

pub async fn sort_and_limit(s: Arc<dyn DocStore>, c: String) {
    s.insert_many(
        &c,
        vec![
            json!({"name": "c", "ts": 3}),
            json!({"name": "a", "ts": 1}),
            json!({"name": "e", "ts": 5}),
            json!({"name": "b", "ts": 2}),
            json!({"name": "d", "ts": 4.5}),
        ],
    )
    .await
    .unwrap();
    let names = |docs: Vec<Value>| -> Vec<String> {
        docs.iter()
            .map(|d| d["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let run = |filter: Filter, options: FindOptions| {
        let s = s.clone();
        let c = c.clone();
        async move { names(s.find(&c, &filter, &options).await.unwrap()) }
    };
    assert_eq!(run(Filter::all(), all()).await, ["c", "a", "e", "b", "d"]);
    assert_eq!(
        run(Filter::all(), sorted("ts", false, None)).await,
        ["a", "b", "c", "d", "e"]
    );
    assert_eq!(
        run(Filter::all(), sorted("ts", true, None)).await,
        ["e", "d", "c", "b", "a"]
    );
    assert_eq!(
        run(Filter::all(), sorted("ts", true, Some(2))).await,
        ["e", "d"]
    );
    assert_eq!(
        run(Filter::all(), sorted("ts", false, Some(3))).await,
        ["a", "b", "c"]
    );
    assert_eq!(
        run(Filter::all(), sorted("name", true, None)).await,
        ["e", "d", "c", "b", "a"]
    );
    assert_eq!(
        run(Filter::all(), sorted("ts", false, Some(100)))
            .await
            .len(),
        5
    );
    assert!(
        run(Filter::all(), sorted("ts", false, Some(0)))
            .await
            .is_empty()
    );
    let limited = FindOptions {
        limit: Some(2),
        ..FindOptions::default()
    };
    assert_eq!(run(Filter::all(), limited).await, ["c", "a"]);
    assert_eq!(
        run(Filter::all().gte("ts", 2.0), sorted("ts", false, Some(2))).await,
        ["b", "c"]
    );
}

pub async fn find_one(s: Arc<dyn DocStore>, c: String) {
    assert_eq!(
        s.find_one(&c, &Filter::all()).await.unwrap(),
        None,
        "unused collection"
    );
    assert!(find(&s, &c, Filter::all()).await.is_empty());
    s.insert_many(
        &c,
        vec![
            json!({"k": 1, "v": "first"}),
            json!({"k": 1, "v": "second"}),
            json!({"k": 2, "v": "third"}),
        ],
    )
    .await
    .unwrap();
    let one = s.find_one(&c, &Filter::all().eq("k", 1)).await.unwrap();
    assert_eq!(one, Some(json!({"k": 1, "v": "first"})));
    let two = s.find_one(&c, &Filter::all().eq("k", 2)).await.unwrap();
    assert_eq!(two, Some(json!({"k": 2, "v": "third"})));
    assert_eq!(
        s.find_one(&c, &Filter::all().eq("k", 3)).await.unwrap(),
        None
    );
}

pub async fn upsert_replaces(s: Arc<dyn DocStore>, c: String) {
    let by_name = Filter::all().eq("probe.uuid", "p1");
    let replaced = s
        .upsert(
            &c,
            &by_name,
            json!({"probe": {"uuid": "p1"}, "url": "https://a", "old": true}),
        )
        .await
        .unwrap();
    assert!(!replaced, "first upsert inserts");
    assert_eq!(
        find(&s, &c, Filter::all()).await,
        vec![json!({"probe": {"uuid": "p1"}, "url": "https://a", "old": true})]
    );
    let replaced = s
        .upsert(
            &c,
            &by_name,
            json!({"probe": {"uuid": "p1"}, "url": "https://b"}),
        )
        .await
        .unwrap();
    assert!(replaced, "second upsert replaces");
    assert_eq!(
        find(&s, &c, Filter::all()).await,
        vec![json!({"probe": {"uuid": "p1"}, "url": "https://b"})],
        "the replaced document's old fields are gone"
    );
    let other = Filter::all().eq("probe.uuid", "p2");
    assert!(
        !s.upsert(&c, &other, json!({"probe": {"uuid": "p2"}}))
            .await
            .unwrap()
    );
    assert_eq!(find(&s, &c, Filter::all()).await.len(), 2);
    assert_eq!(find(&s, &c, by_name).await.len(), 1);
}

pub async fn delete_many_counts(s: Arc<dyn DocStore>, c: String) {
    let docs: Vec<Value> = (0..5)
        .map(|i| json!({"i": i, "group": if i < 3 { "a" } else { "b" }}))
        .collect();
    s.insert_many(&c, docs).await.unwrap();
    assert_eq!(
        s.delete_many(&c, &Filter::all().eq("group", "a"))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        s.delete_many(&c, &Filter::all().eq("group", "a"))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        find(&s, &c, Filter::all()).await,
        vec![json!({"i": 3, "group": "b"}), json!({"i": 4, "group": "b"})]
    );
    assert_eq!(s.delete_many(&c, &Filter::all()).await.unwrap(), 2);
    assert!(find(&s, &c, Filter::all()).await.is_empty());
    let unused = format!("{c}_unused");
    assert_eq!(s.delete_many(&unused, &Filter::all()).await.unwrap(), 0);
}

pub async fn increment_counts_and_floors(s: Arc<dyn DocStore>, c: String) {
    // The CTH's kernel deployment counters (D6.7 4.4.3): one document per cluster and mode.
    let filter = Filter::all()
        .eq("cluster_uuid", "c1")
        .eq("deployment_mode", "faas");
    let base = json!({"cluster_uuid": "c1", "deployment_mode": "faas"});
    let inc = |delta: i64, floor: i64| {
        let s = s.clone();
        let c = c.clone();
        let filter = filter.clone();
        let base = base.clone();
        async move {
            let doc = s
                .increment(&c, &filter, base, "count", delta, floor)
                .await
                .unwrap();
            assert_no_id(&doc);
            doc
        }
    };
    assert_eq!(
        inc(2, 0).await,
        json!({"cluster_uuid": "c1", "deployment_mode": "faas", "count": 2}),
        "created from the base"
    );
    assert_eq!(inc(3, 0).await["count"], json!(5));
    assert_eq!(inc(-10, 0).await["count"], json!(0), "floored");
    assert_eq!(inc(-1, 0).await["count"], json!(0));
    assert_eq!(inc(1, 0).await["count"], json!(1));
    assert_eq!(find(&s, &c, filter.clone()).await.len(), 1);

    // A nested counter on the same document.
    let nested = s
        .increment(&c, &filter, base.clone(), "per_kernel.total", 4, 0)
        .await
        .unwrap();
    assert_eq!(
        nested,
        json!({"cluster_uuid": "c1", "deployment_mode": "faas", "count": 1, "per_kernel": {"total": 4}})
    );

    // Another floor, on another document.
    let other = Filter::all().eq("cluster_uuid", "c2");
    let base2 = json!({"cluster_uuid": "c2"});
    let mut values = Vec::new();
    for delta in [-3, -3, 1] {
        let doc = s
            .increment(&c, &other, base2.clone(), "count", delta, -5)
            .await
            .unwrap();
        values.push(doc["count"].as_i64().unwrap());
    }
    assert_eq!(values, vec![-3, -5, -4]);
    assert_eq!(find(&s, &c, Filter::all()).await.len(), 2);

    // Errors.
    assert_invalid(
        s.increment(&c, &filter, json!({"cluster_uuid": "other"}), "count", 1, 0)
            .await,
        "base not matching the filter",
    );
    assert_invalid(
        s.increment(&c, &filter, base.clone(), "$count", 1, 0).await,
        "operator as field",
    );
    assert_invalid(
        s.increment(&c, &filter, base.clone(), "a..b", 1, 0).await,
        "empty path segment",
    );
    assert_invalid(
        s.increment(&c, &filter, json!([1]), "count", 1, 0).await,
        "base not an object",
    );
    let near_max = Filter::all().eq("k", "max");
    s.insert(&c, json!({"k": "max", "count": i64::MAX - 1}))
        .await
        .unwrap();
    assert_invalid(
        s.increment(&c, &near_max, json!({"k": "max"}), "count", 5, 0)
            .await,
        "overflow",
    );
    assert_eq!(
        find(&s, &c, near_max).await[0]["count"],
        json!(i64::MAX - 1),
        "a failed increment changes nothing"
    );
}

pub async fn concurrent_increments(s: Arc<dyn DocStore>, c: String) {
    // 20 callers race, including on creating the document.
    let filter = Filter::all().eq("name", "hits");
    // The barrier lines the callers up so that they really race.
    let start = Arc::new(Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let s = s.clone();
            let c = c.clone();
            let filter = filter.clone();
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                s.increment(&c, &filter, json!({"name": "hits"}), "n", 1, 0)
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
    assert_eq!(
        seen,
        (1..=20).collect::<Vec<i64>>(),
        "each caller saw its own increment"
    );
    assert_eq!(
        find(&s, &c, Filter::all()).await,
        vec![json!({"name": "hits", "n": 20})]
    );

    // Up and down at once, never reaching the floor: the sum is exact.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let s = s.clone();
            let c = c.clone();
            let filter = filter.clone();
            let start = start.clone();
            let delta = if i % 2 == 0 { 1 } else { -1 };
            tokio::spawn(async move {
                start.wait().await;
                s.increment(&c, &filter, json!({"name": "hits"}), "n", delta, 0)
                    .await
                    .unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        find(&s, &c, Filter::all()).await,
        vec![json!({"name": "hits", "n": 20})]
    );
}

pub async fn concurrent_upserts(s: Arc<dyn DocStore>, c: String) {
    let filter = Filter::all().eq("key", "k");
    let start = Arc::new(Barrier::new(10));
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let s = s.clone();
            let c = c.clone();
            let filter = filter.clone();
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                s.upsert(&c, &filter, json!({"key": "k", "writer": i}))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut inserted = 0;
    for task in tasks {
        if !task.await.unwrap() {
            inserted += 1;
        }
    }
    assert_eq!(inserted, 1, "exactly one upsert inserted");
    let docs = find(&s, &c, Filter::all()).await;
    assert_eq!(docs.len(), 1, "one document: {docs:?}");
    assert_eq!(docs[0]["key"], "k");
}

pub async fn invalid_input(s: Arc<dyn DocStore>, c: String) {
    let too_long = "x".repeat(121);
    for name in [
        "",
        "a/b",
        "sp ace",
        "$x",
        "é",
        "system.profile",
        too_long.as_str(),
    ] {
        assert_invalid(
            s.insert(name, json!({"a": 1})).await,
            "insert: bad collection",
        );
        assert_invalid(
            s.find(name, &Filter::all(), &all()).await,
            "find: bad collection",
        );
        assert_invalid(
            s.upsert(name, &Filter::all(), json!({"a": 1})).await,
            "upsert: bad collection",
        );
        assert_invalid(
            s.delete_many(name, &Filter::all()).await,
            "delete: bad collection",
        );
        assert_invalid(
            s.increment(name, &Filter::all(), json!({}), "n", 1, 0)
                .await,
            "increment: bad collection",
        );
    }
    for path in ["", "$where", "a..b", ".a", "a.", "a.$gt", "_id", "_id.x"] {
        assert_invalid(
            s.find(&c, &Filter::all().eq(path, 1), &all()).await,
            "eq path",
        );
        assert_invalid(
            s.find(&c, &Filter::all().lt(path, 1.0), &all()).await,
            "lt path",
        );
        assert_invalid(
            s.delete_many(&c, &Filter::all().gte(path, 1.0)).await,
            "gte path",
        );
        assert_invalid(
            s.find(&c, &Filter::all(), &sorted(path, false, None)).await,
            "sort path",
        );
    }
    // Values cannot smuggle operators in.
    assert_invalid(
        s.find(&c, &Filter::all().eq("a", json!({"$gt": 0})), &all())
            .await,
        "operator object as value",
    );
    assert_invalid(
        s.delete_many(&c, &Filter::all().is_in("a", [json!({"$ne": 0})]))
            .await,
        "operator object in In",
    );
    assert_invalid(
        s.find(&c, &Filter::all().lt("a", f64::NAN), &all()).await,
        "NaN bound",
    );
    for doc in [
        json!([1]),
        json!("text"),
        json!(null),
        json!({"$set": {"a": 1}}),
        json!({"a": {"$gt": 1}}),
        json!({"a": [{"$where": "1"}]}),
        json!({"_id": "mine"}),
    ] {
        assert_invalid(s.insert(&c, doc.clone()).await, "bad document");
        assert_invalid(
            s.upsert(&c, &Filter::all(), doc).await,
            "bad upsert document",
        );
    }
    // A batch with one bad document writes nothing.
    assert_invalid(
        s.insert_many(&c, vec![json!({"ok": 1}), json!({"$bad": 1})])
            .await,
        "batch with a bad document",
    );
    assert!(find(&s, &c, Filter::all()).await.is_empty());
    assert!(!s.collections().await.unwrap().contains(&c));
}

pub async fn collections_listed(s: Arc<dyn DocStore>, c: String) {
    let one = format!("{c}_one");
    let two = format!("{c}_two");
    s.insert(&one, json!({"a": 1})).await.unwrap();
    s.insert(&two, json!({"b": 1})).await.unwrap();
    let names = s.collections().await.unwrap();
    assert!(names.contains(&one) && names.contains(&two), "{names:?}");
    assert!(!names.contains(&c), "never used: {names:?}");
    let mut sorted_names = names.clone();
    sorted_names.sort();
    assert_eq!(names, sorted_names, "names are sorted");
    // A collection whose last document is gone is not listed.
    assert_eq!(s.delete_many(&two, &Filter::all()).await.unwrap(), 1);
    let names = s.collections().await.unwrap();
    assert!(names.contains(&one) && !names.contains(&two), "{names:?}");
    s.health().await.unwrap();
}

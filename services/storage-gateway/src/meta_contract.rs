//! The contract suite of [`MetadataStore`]: the behaviour every metadata backend must have
//! ([`KvMetadata`](crate::meta::KvMetadata) on the embedded store or etcd,
//! [`MongoMetadata`](crate::mongo::MongoMetadata)).
//!
//! Every case works on bucket names, upload ids and data ids of its own (a random run id), so
//! the suite can run again and again against a shared server, and cleans up after itself when it
//! passes. Listings that cover the whole store (`buckets`, `reclaims`) are checked only on the
//! case's own records. Used by `tests/meta_contract.rs`.

// Test code: a failed expectation is a panic with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, join_all};
use serrano_codec::{Compression, Scheme, WrappedKey};
use uuid::Uuid;

use crate::meta::{
    BucketMeta, Created, InFlight, MetadataStore, ObjectHeaders, ObjectMeta, Part, Placement,
    Reclaim, Segment, Upload,
};

/// One case: a name and its body (store, unique run id).
pub struct Case {
    pub name: &'static str,
    pub run: fn(Arc<dyn MetadataStore>, String) -> BoxFuture<'static, ()>,
}

macro_rules! case {
    ($f:ident) => {
        Case {
            name: stringify!($f),
            run: |s, r| Box::pin($f(s, r)),
        }
    };
}

/// Every case of the suite.
pub fn cases() -> Vec<Case> {
    vec![
        case!(create_bucket_then_exists),
        case!(buckets_listed_in_byte_order),
        case!(delete_bucket_only_when_empty),
        case!(bucket_name_prefix_isolation),
        case!(put_object_returns_replaced),
        case!(records_round_trip_exactly),
        case!(scan_in_byte_order),
        case!(scan_from_the_middle_and_limits),
        case!(concurrent_puts_replace_each_once),
        case!(concurrent_create_bucket_one_winner),
        case!(uploads_ordered_and_isolated),
        case!(parts_ordered_and_replaced),
        case!(delete_upload_removes_parts),
        case!(reclaims_page_in_id_order),
        case!(reclaims_replace_and_delete),
    ]
}

/// Runs every case one after the other on `store`; returns the time each took.
pub async fn run_suite(store: Arc<dyn MetadataStore>) -> Vec<(&'static str, Duration)> {
    let mut times = Vec::new();
    for case in cases() {
        let run = unique_run();
        println!("meta contract case {} (run {run})", case.name);
        let started = Instant::now();
        (case.run)(store.clone(), run).await;
        times.push((case.name, started.elapsed()));
    }
    times
}

/// A run id no other run uses: `mc-` and 32 hex digits (valid in S3 bucket names).
pub fn unique_run() -> String {
    format!("mc-{}", Uuid::new_v4().simple())
}

// ---------------------------------------------------------------------------------------
// records

fn bucket_meta(name: &str) -> BucketMeta {
    BucketMeta {
        name: name.to_owned(),
        created_ms: 1_700_000_000_000,
        policy: "default".to_owned(),
        owner: "AKIDCONTRACT".to_owned(),
    }
}

fn placement() -> Placement {
    Placement {
        locations: vec![
            "edge-1".into(),
            "edge-2".into(),
            "edge-3".into(),
            "cloud-1".into(),
        ],
        scheme: Scheme::Rlnc,
        data: 3,
        parity: 1,
        compression: Compression::Deflate { level: 7 },
        stripe_bytes: 1 << 20,
        encrypted: false,
    }
}

fn object(bucket: &str, key: &str, size: u64) -> ObjectMeta {
    ObjectMeta {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        object_id: Uuid::new_v4(),
        size,
        etag: format!("{size:032x}"),
        last_modified_ms: 1_700_000_000_000,
        headers: ObjectHeaders {
            content_type: Some("text/plain".to_owned()),
            user_metadata: BTreeMap::from([("owner".to_owned(), "uvt".to_owned())]),
            ..ObjectHeaders::default()
        },
        placement: placement(),
        segments: vec![Segment {
            data_id: Uuid::new_v4(),
            size,
            wrapped_key: None,
        }],
    }
}

fn upload(bucket: &str, upload_id: &str, key: &str, initiated_ms: i64) -> Upload {
    Upload {
        upload_id: upload_id.to_owned(),
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        initiated_ms,
        owner: "AKIDCONTRACT".to_owned(),
        headers: ObjectHeaders::default(),
        placement: placement(),
    }
}

fn part(number: u32, size: u64) -> Part {
    Part {
        number,
        data_id: Uuid::new_v4(),
        size,
        wrapped_key: None,
        etag: format!("{number:032x}"),
        last_modified_ms: 1_700_000_000_000 + i64::from(number),
    }
}

fn reclaim(data_id: Uuid, bucket: &str) -> Reclaim {
    Reclaim {
        data_id,
        locations: vec!["edge-1".into(), "cloud-1".into()],
        not_before_ms: 1_700_000_000_000,
        bucket: bucket.to_owned(),
        key: "k".to_owned(),
        upload_id: None,
        in_flight: None,
    }
}

fn wrapped_key() -> WrappedKey {
    WrappedKey {
        master_key_id: "mk-1".to_owned(),
        nonce: vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255],
        sealed: (0..=255).collect(),
    }
}

fn keys(objects: &[ObjectMeta]) -> Vec<&str> {
    objects.iter().map(|o| o.key.as_str()).collect()
}

/// Keys that locale collations order differently from their UTF-8 bytes, or that are
/// prefixes of one another, or escape-like.
fn tricky_keys() -> Vec<String> {
    let mut keys: Vec<String> = [
        "b", "a/1", "a/2", "ü", "a b", "%41", "A", "Z", "a", "a-", "a.b", "é", "~", "\u{7f}", "😀",
        "\u{ffff}", "a/1/x", "%2F", "e\u{301}",
    ]
    .iter()
    .map(|k| (*k).to_owned())
    .collect();
    // The longest S3 key: 1024 bytes.
    keys.push("z".repeat(1024));
    keys
}

// ---------------------------------------------------------------------------------------
// buckets

pub async fn create_bucket_then_exists(s: Arc<dyn MetadataStore>, run: String) {
    let name = format!("{run}-data");
    assert_eq!(s.bucket(&name).await.unwrap(), None);
    let first = bucket_meta(&name);
    assert_eq!(s.create_bucket(&first).await.unwrap(), Created::Yes);
    // A second creation does not overwrite: it reports the bucket as it is.
    let second = BucketMeta {
        owner: "someone-else".to_owned(),
        policy: "other".to_owned(),
        created_ms: 2,
        ..first.clone()
    };
    assert_eq!(
        s.create_bucket(&second).await.unwrap(),
        Created::Exists(first.clone())
    );
    assert_eq!(s.bucket(&name).await.unwrap(), Some(first.clone()));
    assert!(
        s.buckets().await.unwrap().contains(&first),
        "buckets() lists {name}"
    );
    assert_eq!(s.bucket(&format!("{run}-missing")).await.unwrap(), None);
    assert!(s.delete_bucket(&name).await.unwrap());
    assert_eq!(s.bucket(&name).await.unwrap(), None);
}

pub async fn buckets_listed_in_byte_order(s: Arc<dyn MetadataStore>, run: String) {
    let names: Vec<String> = ["b", "a", "a.b", "a-b", "Z", "a2", "aa"]
        .iter()
        .map(|suffix| format!("{run}-{suffix}"))
        .collect();
    for name in &names {
        assert_eq!(
            s.create_bucket(&bucket_meta(name)).await.unwrap(),
            Created::Yes
        );
    }
    let listed: Vec<String> = s
        .buckets()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .filter(|n| n.starts_with(&run))
        .collect();
    let mut expected = names.clone();
    expected.sort_unstable(); // String order is UTF-8 byte order.
    assert_eq!(listed, expected);
    // Every listed bucket is sorted relative to the others too (other runs' buckets included).
    let all: Vec<String> = s
        .buckets()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert!(
        all.windows(2).all(|w| w[0] < w[1]),
        "buckets() in byte order"
    );
    for name in &names {
        assert!(s.delete_bucket(name).await.unwrap());
    }
    assert!(
        !s.buckets()
            .await
            .unwrap()
            .iter()
            .any(|b| b.name.starts_with(&run))
    );
}

pub async fn delete_bucket_only_when_empty(s: Arc<dyn MetadataStore>, run: String) {
    let name = format!("{run}-data");
    let bucket = bucket_meta(&name);
    s.create_bucket(&bucket).await.unwrap();
    s.put_object(&object(&name, "only", 1)).await.unwrap();
    assert!(
        !s.delete_bucket(&name).await.unwrap(),
        "a bucket with an object is not deleted"
    );
    assert_eq!(s.bucket(&name).await.unwrap(), Some(bucket));
    assert!(s.delete_object(&name, "only").await.unwrap().is_some());
    assert!(
        s.delete_bucket(&name).await.unwrap(),
        "an empty bucket is deleted"
    );
    assert_eq!(s.bucket(&name).await.unwrap(), None);
    assert!(!s.buckets().await.unwrap().iter().any(|b| b.name == name));
    // Deleting a bucket that does not exist is not an error (nothing holds it).
    assert!(s.delete_bucket(&name).await.unwrap());
    // The bucket can be created again.
    assert_eq!(
        s.create_bucket(&bucket_meta(&name)).await.unwrap(),
        Created::Yes
    );
    assert!(s.delete_bucket(&name).await.unwrap());
}

pub async fn bucket_name_prefix_isolation(s: Arc<dyn MetadataStore>, run: String) {
    // "…-data" is a prefix of "…-data2": neither may see the other's objects.
    let data = format!("{run}-data");
    let data2 = format!("{run}-data2");
    s.create_bucket(&bucket_meta(&data)).await.unwrap();
    s.create_bucket(&bucket_meta(&data2)).await.unwrap();
    s.put_object(&object(&data2, "x", 1)).await.unwrap();
    s.put_object(&object(&data2, "2x", 1)).await.unwrap();
    assert!(s.scan_objects(&data, "", 100).await.unwrap().is_empty());
    assert_eq!(s.object(&data, "x").await.unwrap(), None);
    assert_eq!(s.object(&data, "2x").await.unwrap(), None);
    assert_eq!(s.delete_object(&data, "x").await.unwrap(), None);
    assert!(
        s.delete_bucket(&data).await.unwrap(),
        "{data} is empty although {data2} is not"
    );
    s.create_bucket(&bucket_meta(&data)).await.unwrap();
    s.put_object(&object(&data, "x", 2)).await.unwrap();
    assert_eq!(
        keys(&s.scan_objects(&data2, "", 100).await.unwrap()),
        vec!["2x", "x"]
    );
    assert_eq!(
        keys(&s.scan_objects(&data, "", 100).await.unwrap()),
        vec!["x"]
    );
    assert_eq!(s.object(&data, "x").await.unwrap().unwrap().size, 2);
    assert_eq!(s.object(&data2, "x").await.unwrap().unwrap().size, 1);
    assert_eq!(s.delete_object(&data, "x").await.unwrap().unwrap().size, 2);
    assert_eq!(s.object(&data2, "x").await.unwrap().unwrap().size, 1);
    assert!(!s.delete_bucket(&data2).await.unwrap());
    for key in ["x", "2x"] {
        s.delete_object(&data2, key).await.unwrap().unwrap();
    }
    assert!(s.delete_bucket(&data).await.unwrap());
    assert!(s.delete_bucket(&data2).await.unwrap());
}

// ---------------------------------------------------------------------------------------
// objects

pub async fn put_object_returns_replaced(s: Arc<dyn MetadataStore>, run: String) {
    let b = format!("{run}-data");
    s.create_bucket(&bucket_meta(&b)).await.unwrap();
    assert_eq!(s.object(&b, "k").await.unwrap(), None);
    let first = object(&b, "k", 10);
    assert_eq!(s.put_object(&first).await.unwrap(), None);
    assert_eq!(s.object(&b, "k").await.unwrap(), Some(first.clone()));
    let second = object(&b, "k", 20);
    assert_eq!(s.put_object(&second).await.unwrap(), Some(first));
    let third = object(&b, "k", 30);
    assert_eq!(s.put_object(&third).await.unwrap(), Some(second));
    assert_eq!(s.object(&b, "k").await.unwrap(), Some(third.clone()));
    assert_eq!(
        s.scan_objects(&b, "", 10).await.unwrap(),
        vec![third.clone()]
    );
    assert_eq!(s.delete_object(&b, "k").await.unwrap(), Some(third));
    assert_eq!(s.delete_object(&b, "k").await.unwrap(), None);
    assert_eq!(s.object(&b, "k").await.unwrap(), None);
    // A deleted key starts afresh.
    assert_eq!(s.put_object(&object(&b, "k", 40)).await.unwrap(), None);
    s.delete_object(&b, "k").await.unwrap().unwrap();
    assert!(s.delete_bucket(&b).await.unwrap());
}

pub async fn records_round_trip_exactly(s: Arc<dyn MetadataStore>, run: String) {
    let b = format!("{run}-data");
    s.create_bucket(&bucket_meta(&b)).await.unwrap();
    let five_tib = 5u64 << 40;
    let full = ObjectMeta {
        size: u64::MAX,
        etag: "0123456789abcdef0123456789abcdef-10000".to_owned(),
        last_modified_ms: i64::MIN,
        headers: ObjectHeaders {
            content_type: Some("application/x-tar; charset=\"utf-8\"".to_owned()),
            content_encoding: Some("gzip".to_owned()),
            content_disposition: Some("attachment; filename=\"ü.tar\"".to_owned()),
            content_language: Some("ro-RO".to_owned()),
            cache_control: Some("no-cache".to_owned()),
            expires: Some("Thu, 01 Dec 1994 16:00:00 GMT".to_owned()),
            // Header tokens may contain what document stores dislike in field names.
            user_metadata: BTreeMap::from([
                ("$where".to_owned(), "1".to_owned()),
                ("a.b".to_owned(), "dotted".to_owned()),
                ("_id".to_owned(), "not an id".to_owned()),
                ("record".to_owned(), "not the record".to_owned()),
                ("bucket".to_owned(), "not the bucket".to_owned()),
                ("x".to_owned(), "ünïcödé \"quoted\" \\ \u{0}".to_owned()),
                ("empty".to_owned(), String::new()),
            ]),
        },
        placement: Placement {
            scheme: Scheme::ReedSolomon,
            compression: Compression::None,
            data: u8::MAX,
            parity: 0,
            stripe_bytes: u32::MAX,
            encrypted: true,
            ..placement()
        },
        segments: vec![
            Segment {
                data_id: Uuid::new_v4(),
                size: five_tib,
                wrapped_key: Some(wrapped_key()),
            },
            Segment {
                data_id: Uuid::nil(),
                size: u64::MAX,
                wrapped_key: None,
            },
            Segment {
                data_id: Uuid::max(),
                size: 0,
                wrapped_key: Some(WrappedKey {
                    nonce: Vec::new(),
                    sealed: Vec::new(),
                    ..wrapped_key()
                }),
            },
            Segment {
                data_id: Uuid::new_v4(),
                size: u64::from(u32::MAX) + 1,
                wrapped_key: Some(wrapped_key()),
            },
        ],
        ..object(&b, "full", 0)
    };
    assert_eq!(s.put_object(&full).await.unwrap(), None);
    assert_eq!(s.object(&b, "full").await.unwrap(), Some(full.clone()));
    let big = object(&b, "five-tib", five_tib);
    s.put_object(&big).await.unwrap();
    assert_eq!(
        s.scan_objects(&b, "", 10).await.unwrap(),
        vec![big.clone(), full.clone()]
    );
    assert_eq!(s.put_object(&big).await.unwrap(), Some(big.clone()));

    let up = Upload {
        headers: full.headers.clone(),
        placement: full.placement.clone(),
        initiated_ms: i64::MAX,
        ..upload(&b, &format!("{run}-upload"), "ü/k", 0)
    };
    s.create_upload(&up).await.unwrap();
    assert_eq!(s.upload(&b, &up.upload_id).await.unwrap(), Some(up.clone()));
    assert_eq!(s.uploads(&b).await.unwrap(), vec![up.clone()]);
    let p = Part {
        number: u32::MAX,
        size: u64::MAX,
        wrapped_key: Some(wrapped_key()),
        last_modified_ms: i64::MIN,
        ..part(1, 0)
    };
    assert_eq!(s.put_part(&up.upload_id, &p).await.unwrap(), None);
    let small = part(10_000, five_tib);
    s.put_part(&up.upload_id, &small).await.unwrap();
    assert_eq!(
        s.parts(&up.upload_id).await.unwrap(),
        vec![small, p.clone()]
    );
    assert_eq!(s.put_part(&up.upload_id, &p).await.unwrap(), Some(p));
    assert_eq!(s.delete_upload(&b, &up.upload_id).await.unwrap(), Some(up));

    let r = Reclaim {
        upload_id: Some(format!("{run}-upload")),
        in_flight: Some(InFlight {
            node: "gw-ü".to_owned(),
            boot: Uuid::new_v4(),
        }),
        not_before_ms: i64::MAX,
        ..reclaim(Uuid::new_v4(), &b)
    };
    s.put_reclaim(&r).await.unwrap();
    let after = Uuid::from_u128(r.data_id.as_u128() - 1);
    assert_eq!(s.reclaims(Some(after), 1).await.unwrap(), vec![r.clone()]);
    s.delete_reclaim(r.data_id).await.unwrap();

    for key in ["full", "five-tib"] {
        s.delete_object(&b, key).await.unwrap().unwrap();
    }
    assert!(s.delete_bucket(&b).await.unwrap());
}

pub async fn scan_in_byte_order(s: Arc<dyn MetadataStore>, run: String) {
    let b = format!("{run}-data");
    s.create_bucket(&bucket_meta(&b)).await.unwrap();
    let mut expected = tricky_keys();
    for key in &expected {
        assert_eq!(s.put_object(&object(&b, key, 1)).await.unwrap(), None);
    }
    expected.sort_unstable(); // String order is UTF-8 byte order.
    let scanned = s.scan_objects(&b, "", 1000).await.unwrap();
    assert_eq!(keys(&scanned), expected);
    assert!(scanned.iter().all(|o| o.bucket == b));
    // Spot checks against collations: bytes put "A" < "Z" < "a", "%41" < "A", "é" < "ü" < "😀".
    let pos = |k: &str| expected.iter().position(|x| x == k).unwrap();
    assert!(pos("%41") < pos("A") && pos("A") < pos("Z") && pos("Z") < pos("a"));
    assert!(pos("a b") < pos("a-") && pos("a-") < pos("a.b") && pos("a.b") < pos("a/1"));
    assert!(pos("a/1") < pos("a/1/x") && pos("a/1/x") < pos("a/2"));
    assert!(pos("~") < pos("\u{7f}") && pos("\u{7f}") < pos("é"));
    assert!(pos("é") < pos("ü") && pos("ü") < pos("\u{ffff}") && pos("\u{ffff}") < pos("😀"));
    assert!(pos("e\u{301}") < pos("é"), "no Unicode normalisation");
    for key in &expected {
        assert!(s.object(&b, key).await.unwrap().is_some(), "{key:?}");
        assert!(s.delete_object(&b, key).await.unwrap().is_some(), "{key:?}");
    }
    assert!(s.scan_objects(&b, "", 1000).await.unwrap().is_empty());
    assert!(s.delete_bucket(&b).await.unwrap());
}

pub async fn scan_from_the_middle_and_limits(s: Arc<dyn MetadataStore>, run: String) {
    let b = format!("{run}-data");
    s.create_bucket(&bucket_meta(&b)).await.unwrap();
    let mut all = tricky_keys();
    for key in &all {
        s.put_object(&object(&b, key, 1)).await.unwrap();
    }
    all.sort_unstable();
    let scan = |start: String, limit: usize| {
        let s = s.clone();
        let b = b.clone();
        async move {
            s.scan_objects(&b, &start, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|o| o.key)
                .collect::<Vec<_>>()
        }
    };
    // From a key that exists: inclusive.
    assert_eq!(scan("a/1".into(), 2).await, vec!["a/1", "a/1/x"]);
    // From between keys.
    assert_eq!(scan("a/".into(), 2).await, vec!["a/1", "a/1/x"]);
    assert_eq!(scan("a/10".into(), 1).await, vec!["a/2"]);
    assert_eq!(scan("ü".into(), 100).await, vec!["ü", "\u{ffff}", "😀"]);
    assert_eq!(
        scan("a".into(), 3).await,
        vec!["a", "a b", "a-"],
        "the start key itself, then the keys that extend it"
    );
    // Past the end, limit 0, a limit larger than the rest.
    assert!(scan("\u{10ffff}".into(), 10).await.is_empty());
    assert!(scan(String::new(), 0).await.is_empty());
    assert!(scan("a".into(), 0).await.is_empty());
    assert_eq!(scan(String::new(), usize::MAX).await, all);
    assert_eq!(scan(String::new(), all.len()).await, all);
    assert_eq!(
        scan(String::new(), all.len() - 1).await,
        all[..all.len() - 1]
    );
    // Pages: each one starts right after the last key of the previous one.
    for page in [1, 2, 3, 7] {
        let mut got = Vec::new();
        let mut start = String::new();
        loop {
            let batch = scan(start.clone(), page).await;
            assert!(batch.len() <= page);
            got.extend(batch.iter().cloned());
            match batch.last() {
                Some(last) if batch.len() == page => start = format!("{last}\0"),
                _ => break,
            }
        }
        assert_eq!(got, all, "pages of {page}");
    }
    for key in &all {
        s.delete_object(&b, key).await.unwrap().unwrap();
    }
    assert!(s.delete_bucket(&b).await.unwrap());
}

pub async fn concurrent_puts_replace_each_once(s: Arc<dyn MetadataStore>, run: String) {
    let b = format!("{run}-data");
    s.create_bucket(&bucket_meta(&b)).await.unwrap();
    // Racing writers on a new key: each record is replaced exactly once, except the last one.
    let written: Vec<ObjectMeta> = (1..=8).map(|size| object(&b, "race", size)).collect();
    let replaced = join_all(written.iter().map(|o| s.put_object(o))).await;
    let replaced: Vec<ObjectMeta> = replaced.into_iter().filter_map(|r| r.unwrap()).collect();
    assert_eq!(replaced.len(), written.len() - 1, "one put created the key");
    let last = s.object(&b, "race").await.unwrap().unwrap();
    let mut seen: Vec<u64> = replaced.iter().map(|o| o.size).collect();
    seen.push(last.size);
    seen.sort_unstable();
    assert_eq!(seen, (1..=8).collect::<Vec<_>>());
    for r in &replaced {
        assert!(written.contains(r));
    }
    // The same for parts.
    let upload_id = format!("{run}-upload");
    let parts: Vec<Part> = (1..=8).map(|size| part(5, size)).collect();
    let replaced = join_all(parts.iter().map(|p| s.put_part(&upload_id, p))).await;
    let replaced = replaced.into_iter().filter_map(|r| r.unwrap()).count();
    assert_eq!(replaced, parts.len() - 1);
    assert_eq!(s.parts(&upload_id).await.unwrap().len(), 1);

    s.delete_upload(&b, &upload_id).await.unwrap();
    assert!(s.parts(&upload_id).await.unwrap().is_empty());
    s.delete_object(&b, "race").await.unwrap().unwrap();
    assert!(s.delete_bucket(&b).await.unwrap());
}

pub async fn concurrent_create_bucket_one_winner(s: Arc<dyn MetadataStore>, run: String) {
    let name = format!("{run}-data");
    let candidates: Vec<BucketMeta> = (0..6)
        .map(|i| BucketMeta {
            owner: format!("owner-{i}"),
            ..bucket_meta(&name)
        })
        .collect();
    let outcomes = join_all(candidates.iter().map(|b| s.create_bucket(b))).await;
    let outcomes: Vec<Created> = outcomes.into_iter().map(|o| o.unwrap()).collect();
    let winners: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| **o == Created::Yes)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one creation wins: {outcomes:?}");
    let winner = candidates[winners[0]].clone();
    for outcome in &outcomes {
        if let Created::Exists(existing) = outcome {
            assert_eq!(existing, &winner);
        }
    }
    assert_eq!(s.bucket(&name).await.unwrap(), Some(winner));
    assert!(s.delete_bucket(&name).await.unwrap());
}

// ---------------------------------------------------------------------------------------
// multipart uploads

pub async fn uploads_ordered_and_isolated(s: Arc<dyn MetadataStore>, run: String) {
    let b = format!("{run}-data");
    let b2 = format!("{run}-data2");
    let id = |n: &str| format!("{run}-{n}");
    assert!(s.uploads(&b).await.unwrap().is_empty());
    let made = vec![
        upload(&b, &id("u1"), "b", 5),
        upload(&b, &id("u2"), "a", 9),
        upload(&b, &id("u3"), "b", 1),
        upload(&b, &id("u0"), "b", 5),
        upload(&b, &id("U9"), "b", 5),
        upload(&b, &id("u4"), "ü", 0),
        upload(&b, &id("u5"), "Z", 100),
        upload(&b, &id("u6"), "a b", 7),
        upload(&b, &id("u7"), "b", -1),
        upload(&b, &id("u8"), "b", 1_700_000_000_000),
    ];
    for u in &made {
        s.create_upload(u).await.unwrap();
    }
    // In another bucket (whose name extends the first), one with an id of the first bucket.
    let other = upload(&b2, &id("u1"), "a", 1);
    let other2 = upload(&b2, &id("x"), "c", 1);
    s.create_upload(&other).await.unwrap();
    s.create_upload(&other2).await.unwrap();

    let mut expected = made.clone();
    expected.sort_by(|x, y| {
        (x.key.as_str(), x.initiated_ms, x.upload_id.as_str()).cmp(&(
            y.key.as_str(),
            y.initiated_ms,
            y.upload_id.as_str(),
        ))
    });
    let listed = s.uploads(&b).await.unwrap();
    let summary = |us: &[Upload]| {
        us.iter()
            .map(|u| format!("{}@{}#{}", u.key, u.initiated_ms, u.upload_id))
            .collect::<Vec<_>>()
    };
    assert_eq!(summary(&listed), summary(&expected));
    assert_eq!(listed, expected);
    assert_eq!(s.uploads(&b2).await.unwrap(), vec![other.clone(), other2]);

    assert_eq!(
        s.upload(&b, &id("u1")).await.unwrap(),
        Some(made[0].clone())
    );
    assert_eq!(s.upload(&b2, &id("u1")).await.unwrap(), Some(other));
    assert_eq!(s.upload(&b2, &id("u2")).await.unwrap(), None);
    assert_eq!(s.upload(&b, &id("missing")).await.unwrap(), None);

    // Creating an upload again with the same id replaces its record.
    let again = upload(&b, &id("u2"), "a", 10);
    s.create_upload(&again).await.unwrap();
    assert_eq!(s.upload(&b, &id("u2")).await.unwrap(), Some(again));
    assert_eq!(s.uploads(&b).await.unwrap().len(), made.len());

    for u in s.uploads(&b).await.unwrap() {
        assert!(s.delete_upload(&b, &u.upload_id).await.unwrap().is_some());
    }
    assert!(s.uploads(&b).await.unwrap().is_empty());
    assert_eq!(s.uploads(&b2).await.unwrap().len(), 2);
    for u in s.uploads(&b2).await.unwrap() {
        s.delete_upload(&b2, &u.upload_id).await.unwrap().unwrap();
    }
    assert!(s.uploads(&b2).await.unwrap().is_empty());
}

pub async fn parts_ordered_and_replaced(s: Arc<dyn MetadataStore>, run: String) {
    let upload_id = format!("{run}-upload");
    let other_id = format!("{run}-upload-2");
    assert!(s.parts(&upload_id).await.unwrap().is_empty());
    let mut made = Vec::new();
    for number in [3, 1, 10_000, 2, 10, 9_999, 100] {
        let p = part(number, u64::from(number) * 1000);
        assert_eq!(s.put_part(&upload_id, &p).await.unwrap(), None);
        made.push(p);
    }
    // Another upload whose id extends the first one's.
    let foreign = part(1, 1);
    s.put_part(&other_id, &foreign).await.unwrap();

    made.sort_by_key(|p| p.number);
    assert_eq!(s.parts(&upload_id).await.unwrap(), made);
    assert_eq!(s.parts(&other_id).await.unwrap(), vec![foreign.clone()]);

    // Replacing a part returns the old one; the others stay.
    let old = made[1].clone(); // part 2
    let new = part(2, 42);
    assert_eq!(s.put_part(&upload_id, &new).await.unwrap(), Some(old));
    made[1] = new;
    assert_eq!(s.parts(&upload_id).await.unwrap(), made);
    assert_eq!(s.parts(&other_id).await.unwrap(), vec![foreign]);

    // `delete_upload` removes the parts of the upload id even when there is no upload record
    // (as after a failure between its two deletes): a retry finishes the cleanup.
    s.delete_upload("no-such-bucket-for-parts", &upload_id)
        .await
        .unwrap();
    s.delete_upload("no-such-bucket-for-parts", &other_id)
        .await
        .unwrap();
    assert!(s.parts(&upload_id).await.unwrap().is_empty());
    assert!(s.parts(&other_id).await.unwrap().is_empty());
}

pub async fn delete_upload_removes_parts(s: Arc<dyn MetadataStore>, run: String) {
    let b = format!("{run}-data");
    let gone = upload(&b, &format!("{run}-gone"), "k", 1);
    let kept = upload(&b, &format!("{run}-kept"), "k", 2);
    s.create_upload(&gone).await.unwrap();
    s.create_upload(&kept).await.unwrap();
    for number in 1..=5 {
        s.put_part(&gone.upload_id, &part(number, 1)).await.unwrap();
        s.put_part(&kept.upload_id, &part(number, 2)).await.unwrap();
    }
    assert_eq!(s.parts(&gone.upload_id).await.unwrap().len(), 5);

    // The wrong bucket finds no upload.
    assert_eq!(
        s.delete_upload(&format!("{b}2"), &kept.upload_id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.upload(&b, &kept.upload_id).await.unwrap(),
        Some(kept.clone())
    );

    assert_eq!(
        s.delete_upload(&b, &gone.upload_id).await.unwrap(),
        Some(gone.clone())
    );
    assert_eq!(s.upload(&b, &gone.upload_id).await.unwrap(), None);
    assert!(s.parts(&gone.upload_id).await.unwrap().is_empty());
    assert_eq!(s.delete_upload(&b, &gone.upload_id).await.unwrap(), None);
    assert_eq!(s.uploads(&b).await.unwrap(), vec![kept.clone()]);

    assert_eq!(
        s.delete_upload(&b, &kept.upload_id).await.unwrap(),
        Some(kept.clone())
    );
    assert!(s.parts(&kept.upload_id).await.unwrap().is_empty());
    assert!(s.uploads(&b).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------
// reclaims (one store-wide list: the case looks only at its own ids)

/// `n` consecutive data ids from a random base: nothing else can sort between them.
fn consecutive_ids(n: u128) -> Vec<Uuid> {
    let base = (Uuid::new_v4().as_u128() & !0xffff_u128) | 0x100;
    (0..n).map(|i| Uuid::from_u128(base + i)).collect()
}

pub async fn reclaims_page_in_id_order(s: Arc<dyn MetadataStore>, run: String) {
    let ids = consecutive_ids(7);
    let records: Vec<Reclaim> = ids.iter().map(|id| reclaim(*id, &run)).collect();
    // Written out of order.
    for i in [3, 0, 6, 1, 5, 2, 4] {
        s.put_reclaim(&records[i]).await.unwrap();
    }
    let before_first = Some(Uuid::from_u128(ids[0].as_u128() - 1));
    assert_eq!(s.reclaims(before_first, 3).await.unwrap(), records[..3]);
    // Strictly after an existing id.
    assert_eq!(s.reclaims(Some(ids[2]), 3).await.unwrap(), records[3..6]);
    assert_eq!(s.reclaims(Some(ids[3]), 1).await.unwrap(), records[4..5]);
    // The last page: ours first, then (on a shared store) anything else, still in order.
    let tail = s.reclaims(Some(ids[5]), 3).await.unwrap();
    assert_eq!(tail[0], records[6]);
    assert!(tail.len() <= 3);
    assert!(tail.iter().skip(1).all(|r| !ids.contains(&r.data_id)));
    assert!(s.reclaims(before_first, 0).await.unwrap().is_empty());
    // Paging with the last id of each page visits every record once, in order.
    let mut got = Vec::new();
    let mut after = before_first;
    loop {
        let page = s.reclaims(after, 2).await.unwrap();
        let ours: Vec<Reclaim> = page
            .iter()
            .filter(|r| ids.contains(&r.data_id))
            .cloned()
            .collect();
        got.extend(ours.iter().cloned());
        if ours.len() < page.len() || page.len() < 2 {
            break;
        }
        after = page.last().map(|r| r.data_id);
    }
    assert_eq!(got, records);
    // From the start of the store: strictly increasing ids.
    let first = s.reclaims(None, 50).await.unwrap();
    assert!(!first.is_empty());
    assert!(first.windows(2).all(|w| w[0].data_id < w[1].data_id));
    for id in &ids {
        s.delete_reclaim(*id).await.unwrap();
    }
    assert!(
        s.reclaims(before_first, 7)
            .await
            .unwrap()
            .iter()
            .all(|r| !ids.contains(&r.data_id))
    );
}

pub async fn reclaims_replace_and_delete(s: Arc<dyn MetadataStore>, run: String) {
    let ids = consecutive_ids(3);
    let before_first = Some(Uuid::from_u128(ids[0].as_u128() - 1));
    let mut records: Vec<Reclaim> = ids.iter().map(|id| reclaim(*id, &run)).collect();
    for r in &records {
        s.put_reclaim(r).await.unwrap();
    }
    // A second put of the same data id replaces the record.
    records[1] = Reclaim {
        not_before_ms: 42,
        locations: vec!["edge-9".into()],
        in_flight: Some(InFlight {
            node: "gw-1".into(),
            boot: Uuid::new_v4(),
        }),
        ..records[1].clone()
    };
    s.put_reclaim(&records[1]).await.unwrap();
    assert_eq!(s.reclaims(before_first, 3).await.unwrap(), records);
    s.delete_reclaim(ids[1]).await.unwrap();
    // Deleting what is not there is fine.
    s.delete_reclaim(ids[1]).await.unwrap();
    let page = s.reclaims(before_first, 2).await.unwrap();
    assert_eq!(page, vec![records[0].clone(), records[2].clone()]);
    // `after` need not exist.
    assert_eq!(s.reclaims(Some(ids[1]), 1).await.unwrap(), records[2..3]);
    s.delete_reclaim(ids[0]).await.unwrap();
    s.delete_reclaim(ids[2]).await.unwrap();
    let rest = s.reclaims(before_first, 3).await.unwrap();
    assert!(rest.iter().all(|r| !ids.contains(&r.data_id)));
}

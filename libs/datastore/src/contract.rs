//! The contract suite: the behaviour every [`KvStore`] backend must have (etcd v3 semantics).
//!
//! Each case takes a store and a fresh key prefix and writes only under that prefix, so the
//! suite can run against a shared etcd. Cases that look at exact global revisions assume no one
//! else writes to the store while the case runs: run the suite sequentially ([`run_suite`] does).
//!
//! Used by the embedded tests (in-memory and on disk) and by `tests/contract_etcd.rs`; other
//! crates get it with the `contract-suite` feature.

// Test code: a failed expectation is a panic with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::typed::{TypedCas, TypedStore};
use crate::{CasOutcome, Expect, KvStore, StoreError, WatchEvent, WatchStream};

/// One case: a name and its body (store, unique prefix).
pub struct Case {
    pub name: &'static str,
    pub run: fn(Arc<dyn KvStore>, String) -> BoxFuture<'static, ()>,
}

macro_rules! case {
    ($f:ident) => {
        Case {
            name: stringify!($f),
            run: |s, p| Box::pin($f(s, p)),
        }
    };
}

/// Every case of the suite.
pub fn cases() -> Vec<Case> {
    vec![
        case!(health_ok),
        case!(get_missing),
        case!(put_then_get),
        case!(revisions_increase_by_one),
        case!(cas_absent),
        case!(cas_mod_revision),
        case!(compare_and_delete),
        case!(delete_returns_previous),
        case!(delete_prefix_counts),
        case!(list_prefix_sorted_and_bounded),
        case!(scan_prefix_pages),
        case!(watch_from_now),
        case!(watch_from_old_revision),
        case!(watch_replay_races_with_writes),
        case!(concurrent_cas_one_winner),
        case!(lease_revoke_deletes_keys),
        case!(lease_expiry),
        case!(typed_roundtrip),
        case!(typed_corrupt_value),
    ]
}

/// Runs every case sequentially; `make` gives the store for each case (it may return the same
/// store every time: every case uses its own prefix).
pub async fn run_suite(make: impl Fn() -> BoxFuture<'static, Arc<dyn KvStore>>) {
    for case in cases() {
        let store = make().await;
        let prefix = unique_prefix(case.name);
        println!("contract case {} under {prefix}", case.name);
        (case.run)(store, prefix).await;
    }
}

/// A prefix no other run uses: `/serrano-test/<name>-<pid>-<nanos>-<n>/`.
pub fn unique_prefix(name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "/serrano-test/{name}-{}-{nanos}-{}/",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

const WAIT: Duration = Duration::from_secs(10);

async fn next_event(w: &mut WatchStream) -> WatchEvent {
    match tokio::time::timeout(WAIT, w.next()).await {
        Ok(Some(Ok(ev))) => ev,
        other => panic!("expected a watch event, got {other:?}"),
    }
}

/// Asserts that nothing arrives on the watch for a short while (no duplicates, no strays).
async fn no_event(w: &mut WatchStream) {
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(300), w.next()).await {
        panic!("expected no more watch events, got {item:?}");
    }
}

fn assert_put(ev: &WatchEvent, key: &str, value: &[u8], rev: i64) {
    match ev {
        WatchEvent::Put(kv) => {
            assert_eq!(kv.key, key, "event key");
            assert_eq!(kv.value, value, "event value of {key}");
            assert_eq!(kv.mod_revision, rev, "event revision of {key}");
        }
        other => panic!("expected put of {key}@{rev}, got {other:?}"),
    }
}

fn assert_delete(ev: &WatchEvent, key: &str, rev: i64) {
    assert_eq!(
        ev,
        &WatchEvent::Delete {
            key: key.to_string(),
            revision: rev
        }
    );
}

pub async fn health_ok(s: Arc<dyn KvStore>, _p: String) {
    s.health().await.expect("health");
}

pub async fn get_missing(s: Arc<dyn KvStore>, p: String) {
    assert_eq!(s.get(&format!("{p}missing")).await.unwrap(), None);
    assert!(s.list_prefix(&p).await.unwrap().kvs.is_empty());
}

pub async fn put_then_get(s: Arc<dyn KvStore>, p: String) {
    let k = format!("{p}k");
    let r1 = s.put(&k, b"one".to_vec(), 0).await.unwrap();
    assert!(
        r1 >= 2,
        "first revision of any store is at least 2, got {r1}"
    );
    let kv = s.get(&k).await.unwrap().expect("key just written");
    assert_eq!(kv.key, k);
    assert_eq!(kv.value, b"one");
    assert_eq!(kv.create_revision, r1);
    assert_eq!(kv.mod_revision, r1);
    assert_eq!(kv.version, 1);
    assert_eq!(kv.lease, 0);

    let r2 = s.put(&k, b"two".to_vec(), 0).await.unwrap();
    assert!(r2 > r1);
    let kv = s.get(&k).await.unwrap().unwrap();
    assert_eq!(kv.value, b"two");
    assert_eq!(kv.create_revision, r1, "create revision kept by an update");
    assert_eq!(kv.mod_revision, r2);
    assert_eq!(kv.version, 2);

    // Empty values are values.
    let r3 = s.put(&k, Vec::new(), 0).await.unwrap();
    let kv = s.get(&k).await.unwrap().unwrap();
    assert_eq!(kv.value, b"");
    assert_eq!(kv.mod_revision, r3);
    assert_eq!(kv.version, 3);

    // After a delete, a new put is a new creation.
    s.delete(&k).await.unwrap().unwrap();
    let r4 = s.put(&k, b"again".to_vec(), 0).await.unwrap();
    let kv = s.get(&k).await.unwrap().unwrap();
    assert_eq!(kv.create_revision, r4);
    assert_eq!(kv.version, 1);
}

pub async fn revisions_increase_by_one(s: Arc<dyn KvStore>, p: String) {
    let base = s.list_prefix(&p).await.unwrap().revision;
    let mut expected = base;
    for i in 0..5 {
        expected += 1;
        let r = s.put(&format!("{p}k{i}"), vec![i], 0).await.unwrap();
        assert_eq!(r, expected, "put {i}");
    }
    expected += 1;
    match s
        .compare_and_swap(&format!("{p}k0"), Expect::ModRevision(base + 1), vec![9], 0)
        .await
        .unwrap()
    {
        CasOutcome::Written(r) => assert_eq!(r, expected),
        other => panic!("CAS on the current revision failed: {other:?}"),
    }
    // Neither a failed CAS nor a delete of a missing key uses a revision.
    let conflict = s
        .compare_and_swap(&format!("{p}k0"), Expect::Absent, vec![1], 0)
        .await
        .unwrap();
    assert!(matches!(conflict, CasOutcome::Conflict(Some(_))));
    assert_eq!(s.delete(&format!("{p}nope")).await.unwrap(), None);
    assert_eq!(s.delete_prefix(&format!("{p}nope/")).await.unwrap(), 0);
    assert_eq!(s.list_prefix(&p).await.unwrap().revision, expected);
    expected += 1;
    let prev = s.delete(&format!("{p}k1")).await.unwrap().unwrap();
    assert_eq!(prev.mod_revision, base + 2);
    assert_eq!(s.list_prefix(&p).await.unwrap().revision, expected);
    // One revision for the whole prefix delete (etcd: one transaction).
    expected += 1;
    assert_eq!(s.delete_prefix(&p).await.unwrap(), 4);
    assert_eq!(s.list_prefix(&p).await.unwrap().revision, expected);
}

pub async fn cas_absent(s: Arc<dyn KvStore>, p: String) {
    let k = format!("{p}cas");
    let r = match s
        .compare_and_swap(&k, Expect::Absent, b"first".to_vec(), 0)
        .await
        .unwrap()
    {
        CasOutcome::Written(r) => r,
        other => panic!("create on an absent key failed: {other:?}"),
    };
    match s
        .compare_and_swap(&k, Expect::Absent, b"second".to_vec(), 0)
        .await
        .unwrap()
    {
        CasOutcome::Conflict(Some(kv)) => {
            assert_eq!(kv.value, b"first");
            assert_eq!(kv.mod_revision, r);
            assert_eq!(kv.create_revision, r);
        }
        other => panic!("second create must conflict with the current value: {other:?}"),
    }
    assert_eq!(s.get(&k).await.unwrap().unwrap().value, b"first");
}

pub async fn cas_mod_revision(s: Arc<dyn KvStore>, p: String) {
    let k = format!("{p}cas");
    // On a missing key any expected revision conflicts, with no current value.
    assert_eq!(
        s.compare_and_swap(&k, Expect::ModRevision(2), b"x".to_vec(), 0)
            .await
            .unwrap(),
        CasOutcome::Conflict(None)
    );
    assert_eq!(
        s.compare_and_swap(&k, Expect::ModRevision(0), b"x".to_vec(), 0)
            .await
            .unwrap(),
        CasOutcome::Conflict(None)
    );
    assert_eq!(s.get(&k).await.unwrap(), None);

    let r1 = s.put(&k, b"v1".to_vec(), 0).await.unwrap();
    let r2 = s.put(&k, b"v2".to_vec(), 0).await.unwrap();
    match s
        .compare_and_swap(&k, Expect::ModRevision(r1), b"stale".to_vec(), 0)
        .await
        .unwrap()
    {
        CasOutcome::Conflict(Some(kv)) => {
            assert_eq!(kv.value, b"v2");
            assert_eq!(kv.mod_revision, r2);
            assert_eq!(kv.version, 2);
        }
        other => panic!("stale CAS must conflict: {other:?}"),
    }
    let r3 = match s
        .compare_and_swap(&k, Expect::ModRevision(r2), b"v3".to_vec(), 0)
        .await
        .unwrap()
    {
        CasOutcome::Written(r) => r,
        other => panic!("CAS on the current revision must win: {other:?}"),
    };
    assert!(r3 > r2);
    let kv = s.get(&k).await.unwrap().unwrap();
    assert_eq!(kv.value, b"v3");
    assert_eq!(kv.mod_revision, r3);
    assert_eq!(kv.create_revision, r1);
    assert_eq!(kv.version, 3);
}

pub async fn compare_and_delete(s: Arc<dyn KvStore>, p: String) {
    let k = format!("{p}cad");
    assert_eq!(
        s.compare_and_delete(&k, 5).await.unwrap(),
        CasOutcome::Conflict(None)
    );
    let r1 = s.put(&k, b"v1".to_vec(), 0).await.unwrap();
    let r2 = s.put(&k, b"v2".to_vec(), 0).await.unwrap();
    match s.compare_and_delete(&k, r1).await.unwrap() {
        CasOutcome::Conflict(Some(kv)) => {
            assert_eq!(kv.value, b"v2");
            assert_eq!(kv.mod_revision, r2);
        }
        other => panic!("stale compare_and_delete must conflict: {other:?}"),
    }
    assert!(
        s.get(&k).await.unwrap().is_some(),
        "conflict deleted nothing"
    );
    match s.compare_and_delete(&k, r2).await.unwrap() {
        CasOutcome::Written(r) => assert!(r > r2),
        other => panic!("compare_and_delete on the current revision must win: {other:?}"),
    }
    assert_eq!(s.get(&k).await.unwrap(), None);
    assert_eq!(
        s.compare_and_delete(&k, r2).await.unwrap(),
        CasOutcome::Conflict(None)
    );
}

pub async fn delete_returns_previous(s: Arc<dyn KvStore>, p: String) {
    let k = format!("{p}d");
    let r = s.put(&k, b"val".to_vec(), 0).await.unwrap();
    let prev = s.delete(&k).await.unwrap().expect("previous value");
    assert_eq!(prev.key, k);
    assert_eq!(prev.value, b"val");
    assert_eq!(prev.mod_revision, r);
    assert_eq!(s.get(&k).await.unwrap(), None);
    assert_eq!(s.delete(&k).await.unwrap(), None);
}

pub async fn delete_prefix_counts(s: Arc<dyn KvStore>, p: String) {
    for k in ["dir/a", "dir/b", "dir/c/d", "dirx", "dir"] {
        s.put(&format!("{p}{k}"), k.as_bytes().to_vec(), 0)
            .await
            .unwrap();
    }
    assert_eq!(s.delete_prefix(&format!("{p}dir/")).await.unwrap(), 3);
    let left: Vec<String> = s
        .list_prefix(&p)
        .await
        .unwrap()
        .kvs
        .into_iter()
        .map(|kv| kv.key)
        .collect();
    assert_eq!(left, vec![format!("{p}dir"), format!("{p}dirx")]);
    assert_eq!(s.delete_prefix(&format!("{p}dir/")).await.unwrap(), 0);
    assert_eq!(s.delete_prefix(&p).await.unwrap(), 2);
    assert!(s.list_prefix(&p).await.unwrap().kvs.is_empty());
}

pub async fn list_prefix_sorted_and_bounded(s: Arc<dyn KvStore>, p: String) {
    let keys = [
        "a/bc", "a/b/y", "px", "a/b", "p/x", "a/b/x", "a/c", "p/y", "a/",
    ];
    let mut last = 0;
    for k in keys {
        last = s
            .put(&format!("{p}{k}"), k.as_bytes().to_vec(), 0)
            .await
            .unwrap();
    }
    let list = |sub: &'static str| {
        let s = s.clone();
        let p = p.clone();
        async move {
            let res = s.list_prefix(&format!("{p}{sub}")).await.unwrap();
            for kv in &res.kvs {
                assert_eq!(
                    kv.value,
                    &kv.key.as_bytes()[p.len()..],
                    "value of {}",
                    kv.key
                );
            }
            (
                res.kvs
                    .into_iter()
                    .map(|kv| kv.key[p.len()..].to_string())
                    .collect::<Vec<_>>(),
                res.revision,
            )
        }
    };
    let (all, rev) = list("").await;
    assert_eq!(
        all,
        vec![
            "a/", "a/b", "a/b/x", "a/b/y", "a/bc", "a/c", "p/x", "p/y", "px"
        ]
    );
    assert!(rev >= last, "list revision {rev} < last write {last}");
    assert_eq!(list("a/b/").await.0, vec!["a/b/x", "a/b/y"]);
    assert_eq!(list("a/bc").await.0, vec!["a/bc"]);
    assert_eq!(list("a/b").await.0, vec!["a/b", "a/b/x", "a/b/y", "a/bc"]);
    assert_eq!(list("p/").await.0, vec!["p/x", "p/y"]);
    assert_eq!(list("p").await.0, vec!["p/x", "p/y", "px"]);
    assert_eq!(list("q").await.0, Vec::<String>::new());
}

pub async fn scan_prefix_pages(s: Arc<dyn KvStore>, p: String) {
    for k in ["o/b", "o/a", "o/c/1", "o/c/2", "o/d", "o0", "n"] {
        s.put(&format!("{p}{k}"), k.as_bytes().to_vec(), 0)
            .await
            .unwrap();
    }
    let scan = |start: &'static str, limit: usize| {
        let s = s.clone();
        let p = p.clone();
        async move {
            s.scan_prefix(&format!("{p}o/"), &format!("{p}{start}"), limit)
                .await
                .unwrap()
                .into_iter()
                .map(|kv| kv.key[p.len()..].to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        scan("", 100).await,
        vec!["o/a", "o/b", "o/c/1", "o/c/2", "o/d"]
    );
    assert_eq!(scan("", 2).await, vec!["o/a", "o/b"]);
    assert_eq!(scan("o/b", 2).await, vec!["o/b", "o/c/1"]);
    assert_eq!(scan("o/b\0", 2).await, vec!["o/c/1", "o/c/2"]);
    assert_eq!(scan("o/d", 10).await, vec!["o/d"]);
    assert_eq!(scan("o/e", 10).await, Vec::<String>::new());
    assert_eq!(scan("", 0).await, Vec::<String>::new());
}

pub async fn watch_from_now(s: Arc<dyn KvStore>, p: String) {
    let wp = format!("{p}w/");
    s.put(&format!("{wp}before"), b"0".to_vec(), 0)
        .await
        .unwrap();
    let mut w = s.watch_prefix(&wp, None).await.unwrap();
    // Outside the prefix (a sibling sharing the text prefix but not the '/').
    s.put(&format!("{p}wx"), b"no".to_vec(), 0).await.unwrap();
    let r1 = s.put(&format!("{wp}a"), b"1".to_vec(), 0).await.unwrap();
    let r2 = s.put(&format!("{wp}b"), b"2".to_vec(), 0).await.unwrap();
    let r3 = s.put(&format!("{wp}a"), b"3".to_vec(), 0).await.unwrap();
    let prev = s.delete(&format!("{wp}a")).await.unwrap().unwrap();
    assert_eq!(prev.mod_revision, r3);
    let r4 = s
        .get(&format!("{wp}b"))
        .await
        .unwrap()
        .unwrap()
        .mod_revision;
    assert_eq!(r4, r2);
    assert_put(&next_event(&mut w).await, &format!("{wp}a"), b"1", r1);
    assert_put(&next_event(&mut w).await, &format!("{wp}b"), b"2", r2);
    let ev = next_event(&mut w).await;
    assert_put(&ev, &format!("{wp}a"), b"3", r3);
    if let WatchEvent::Put(kv) = &ev {
        assert_eq!(kv.version, 2);
        assert_eq!(kv.create_revision, r1);
    }
    let ev = next_event(&mut w).await;
    assert!(ev.revision() > r3);
    assert_delete(&ev, &format!("{wp}a"), ev.revision());
    no_event(&mut w).await;
}

pub async fn watch_from_old_revision(s: Arc<dyn KvStore>, p: String) {
    let k1 = format!("{p}k1");
    let k2 = format!("{p}k2");
    let k3 = format!("{p}k3");
    let r1 = s.put(&k1, b"a".to_vec(), 0).await.unwrap();
    let r2 = s.put(&k2, b"b".to_vec(), 0).await.unwrap();
    s.delete(&k1).await.unwrap().unwrap();
    let r3 = s.list_prefix(&p).await.unwrap().revision;

    let mut w = s.watch_prefix(&p, Some(r1)).await.unwrap();
    let mut w2 = s.watch_prefix(&p, Some(r2)).await.unwrap();
    let r4 = s.put(&k3, b"c".to_vec(), 0).await.unwrap();

    assert_put(&next_event(&mut w).await, &k1, b"a", r1);
    assert_put(&next_event(&mut w).await, &k2, b"b", r2);
    assert_delete(&next_event(&mut w).await, &k1, r3);
    assert_put(&next_event(&mut w).await, &k3, b"c", r4);
    no_event(&mut w).await;

    assert_put(&next_event(&mut w2).await, &k2, b"b", r2);
    assert_delete(&next_event(&mut w2).await, &k1, r3);
    assert_put(&next_event(&mut w2).await, &k3, b"c", r4);
    no_event(&mut w2).await;

    // A start revision in the future waits for it.
    let mut w3 = s.watch_prefix(&p, Some(r4 + 2)).await.unwrap();
    let r5 = s.put(&k3, b"d".to_vec(), 0).await.unwrap();
    let r6 = s.put(&k3, b"e".to_vec(), 0).await.unwrap();
    assert_eq!(r6, r5 + 1);
    if r5 == r4 + 1 {
        assert_put(&next_event(&mut w3).await, &k3, b"e", r6);
        no_event(&mut w3).await;
    }
}

pub async fn watch_replay_races_with_writes(s: Arc<dyn KvStore>, p: String) {
    let start = s.put(&format!("{p}k-start"), vec![0], 0).await.unwrap();
    const N: usize = 60;
    let writer = {
        let s = s.clone();
        let p = p.clone();
        tokio::spawn(async move {
            let mut revs = Vec::new();
            for i in 0..N {
                revs.push(s.put(&format!("{p}k{i:03}"), vec![1], 0).await.unwrap());
            }
            revs
        })
    };
    // Registering while the writer runs: replay + live must give every event exactly once.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut w = s.watch_prefix(&p, Some(start)).await.unwrap();
    let revs = writer.await.unwrap();
    let mut seen = vec![next_event(&mut w).await];
    for _ in 0..N {
        seen.push(next_event(&mut w).await);
    }
    no_event(&mut w).await;
    assert_put(&seen[0], &format!("{p}k-start"), &[0], start);
    for (i, ev) in seen[1..].iter().enumerate() {
        assert_put(ev, &format!("{p}k{i:03}"), &[1], revs[i]);
    }
}

pub async fn concurrent_cas_one_winner(s: Arc<dyn KvStore>, p: String) {
    let k = format!("{p}race");
    let mut rev = s.put(&k, b"0".to_vec(), 0).await.unwrap();
    for round in 0..5 {
        let mut tasks = Vec::new();
        for contender in 0..8u8 {
            let s = s.clone();
            let k = k.clone();
            tasks.push(tokio::spawn(async move {
                s.compare_and_swap(&k, Expect::ModRevision(rev), vec![contender], 0)
                    .await
                    .unwrap()
            }));
        }
        let mut winners = Vec::new();
        let mut conflicts = 0;
        for (contender, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                CasOutcome::Written(r) => winners.push((contender, r)),
                CasOutcome::Conflict(Some(kv)) => {
                    assert!(kv.mod_revision > rev);
                    conflicts += 1;
                }
                CasOutcome::Conflict(None) => panic!("key vanished"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one CAS wins");
        assert_eq!(conflicts, 7);
        let (winner, r) = winners[0];
        let kv = s.get(&k).await.unwrap().unwrap();
        assert_eq!(kv.value, vec![winner as u8]);
        assert_eq!(kv.mod_revision, r);
        rev = r;
    }
    // Two creates of the same absent key: exactly one wins.
    let k2 = format!("{p}race-create");
    let (a, b) = tokio::join!(
        s.compare_and_swap(&k2, Expect::Absent, b"a".to_vec(), 0),
        s.compare_and_swap(&k2, Expect::Absent, b"b".to_vec(), 0)
    );
    let wins = [a.unwrap(), b.unwrap()]
        .iter()
        .filter(|o| matches!(o, CasOutcome::Written(_)))
        .count();
    assert_eq!(wins, 1);
}

pub async fn lease_revoke_deletes_keys(s: Arc<dyn KvStore>, p: String) {
    let lease = s.grant_lease(60).await.unwrap();
    assert!(lease > 0, "lease ids are positive");
    let other = s.grant_lease(60).await.unwrap();
    assert_ne!(lease, other);

    let k = format!("{p}leased");
    let k2 = format!("{p}leased2");
    let kept = format!("{p}kept");
    s.put(&k, b"v".to_vec(), lease).await.unwrap();
    s.put(&k2, b"v2".to_vec(), lease).await.unwrap();
    s.put(&kept, b"v".to_vec(), other).await.unwrap();
    assert_eq!(s.get(&k).await.unwrap().unwrap().lease, lease);
    s.keep_alive(lease).await.unwrap();

    let mut w = s.watch_prefix(&p, None).await.unwrap();
    s.revoke_lease(lease).await.unwrap();
    assert_eq!(s.get(&k).await.unwrap(), None);
    assert_eq!(s.get(&k2).await.unwrap(), None);
    assert_eq!(s.get(&kept).await.unwrap().unwrap().lease, other);
    let mut deleted = [next_event(&mut w).await, next_event(&mut w).await];
    deleted.sort_by(|a, b| a.key().cmp(b.key()));
    assert!(matches!(&deleted[0], WatchEvent::Delete { key, .. } if *key == k));
    assert!(matches!(&deleted[1], WatchEvent::Delete { key, .. } if *key == k2));
    no_event(&mut w).await;

    assert!(matches!(
        s.keep_alive(lease).await,
        Err(StoreError::LeaseNotFound(id)) if id == lease
    ));
    assert!(matches!(
        s.put(&k, b"x".to_vec(), lease).await,
        Err(StoreError::LeaseNotFound(id)) if id == lease
    ));
    assert!(matches!(
        s.compare_and_swap(&k, Expect::Absent, b"x".to_vec(), lease)
            .await,
        Err(StoreError::LeaseNotFound(_))
    ));
    assert_eq!(s.get(&k).await.unwrap(), None);
    assert!(matches!(
        s.revoke_lease(lease).await,
        Err(StoreError::LeaseNotFound(_))
    ));
    s.revoke_lease(other).await.unwrap();
    assert_eq!(s.get(&kept).await.unwrap(), None);
}

pub async fn lease_expiry(s: Arc<dyn KvStore>, p: String) {
    // etcd raises TTLs below its minimum (about 2 s with default timings); ask for that.
    let lease = s.grant_lease(2).await.unwrap();
    let k = format!("{p}ephemeral");
    let mut w = s.watch_prefix(&p, None).await.unwrap();
    let r = s.put(&k, b"v".to_vec(), lease).await.unwrap();
    assert_eq!(s.get(&k).await.unwrap().unwrap().lease, lease);
    // Keep it alive past its TTL once: it must survive.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        s.keep_alive(lease).await.unwrap();
    }
    assert!(
        s.get(&k).await.unwrap().is_some(),
        "a kept-alive lease does not expire"
    );
    let started = Instant::now();
    loop {
        if s.get(&k).await.unwrap().is_none() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the lease did not expire within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_put(&next_event(&mut w).await, &k, b"v", r);
    let ev = next_event(&mut w).await;
    assert_delete(&ev, &k, ev.revision());
    assert!(ev.revision() > r);
    assert!(matches!(
        s.keep_alive(lease).await,
        Err(StoreError::LeaseNotFound(_))
    ));
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Thing {
    name: String,
    size: u32,
}

pub async fn typed_roundtrip(s: Arc<dyn KvStore>, p: String) {
    let t: TypedStore<Thing> = TypedStore::new(s.clone(), format!("{p}things/"));
    assert_eq!(t.prefix(), format!("{p}things/"));
    assert_eq!(t.key_of("x"), format!("{p}things/x"));
    assert!(t.get("x").await.unwrap().is_none());

    let a = Thing {
        name: "a".into(),
        size: 1,
    };
    let r1 = match t.create("x", &a).await.unwrap() {
        TypedCas::Written(r) => r,
        other => panic!("create failed: {other:?}"),
    };
    // The stored bytes are JSON.
    let raw = s.get(&t.key_of("x")).await.unwrap().unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&raw.value).unwrap(),
        serde_json::json!({"name": "a", "size": 1})
    );
    match t.create("x", &a).await.unwrap() {
        TypedCas::Conflict(Some(cur)) => {
            assert_eq!(cur.value, a);
            assert_eq!(cur.mod_revision, r1);
        }
        other => panic!("second create must conflict: {other:?}"),
    }
    let got = t.get("x").await.unwrap().unwrap();
    assert_eq!(got.value, a);
    assert_eq!(got.mod_revision, r1);
    assert_eq!(got.create_revision, r1);

    let b = Thing {
        name: "b".into(),
        size: 2,
    };
    let r2 = match t.update("x", &b, r1).await.unwrap() {
        TypedCas::Written(r) => r,
        other => panic!("update failed: {other:?}"),
    };
    match t.update("x", &a, r1).await.unwrap() {
        TypedCas::Conflict(Some(cur)) => assert_eq!(cur.value, b),
        other => panic!("stale update must conflict: {other:?}"),
    }
    match t.update("missing", &a, r1).await.unwrap() {
        TypedCas::Conflict(None) => {}
        other => panic!("update of a missing object must conflict with None: {other:?}"),
    }
    let got = t.get("x").await.unwrap().unwrap();
    assert_eq!(got.value, b);
    assert_eq!(got.mod_revision, r2);
    assert_eq!(got.create_revision, r1);

    let ry = t.put("y", &a).await.unwrap();
    t.put("sub/z", &b).await.unwrap();
    // A sibling outside the typed prefix is not listed.
    s.put(&format!("{p}thingsx"), b"{}".to_vec(), 0)
        .await
        .unwrap();
    let all = t.list().await.unwrap();
    assert_eq!(
        all.iter().map(|v| v.value.clone()).collect::<Vec<_>>(),
        vec![b.clone(), b.clone(), a.clone()],
        "key order: sub/z, x, y"
    );
    assert_eq!(all[2].mod_revision, ry);
    let under = t.list_under("sub/").await.unwrap();
    assert_eq!(under.len(), 1);
    assert_eq!(under[0].value, b);

    match t.compare_and_delete("y", ry - 1).await.unwrap() {
        TypedCas::Conflict(Some(cur)) => assert_eq!(cur.value, a),
        other => panic!("stale compare_and_delete must conflict: {other:?}"),
    }
    match t.compare_and_delete("y", ry).await.unwrap() {
        TypedCas::Written(r) => assert!(r > ry),
        other => panic!("compare_and_delete failed: {other:?}"),
    }
    let prev = t.delete("x").await.unwrap().unwrap();
    assert_eq!(prev.value, b);
    assert_eq!(prev.mod_revision, r2);
    assert!(t.delete("x").await.unwrap().is_none());
    assert_eq!(t.list().await.unwrap().len(), 1);
}

pub async fn typed_corrupt_value(s: Arc<dyn KvStore>, p: String) {
    let t: TypedStore<Thing> = TypedStore::new(s.clone(), format!("{p}things/"));
    t.put(
        "good",
        &Thing {
            name: "g".into(),
            size: 3,
        },
    )
    .await
    .unwrap();
    let bad_key = t.key_of("bad");
    s.put(&bad_key, b"not json {".to_vec(), 0).await.unwrap();
    match t.get("bad").await {
        Err(StoreError::Corrupt { key, message }) => {
            assert_eq!(key, bad_key);
            assert!(!message.is_empty());
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Valid JSON of the wrong shape is corrupt too.
    s.put(&bad_key, br#"{"name": 5}"#.to_vec(), 0)
        .await
        .unwrap();
    assert!(matches!(
        t.get("bad").await,
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(t.list().await, Err(StoreError::Corrupt { .. })));
    assert_eq!(t.get("good").await.unwrap().unwrap().value.size, 3);
}

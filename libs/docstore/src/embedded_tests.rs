//! Tests of the embedded document store: the contract suite (in memory, with latency, on
//! disk), what only this backend has (key layout, foreign keys, the creation lock) and its
//! mirror (writes of other stores seen through the watch, read-your-writes, stale mirrors,
//! late events, watches that end).

use std::sync::atomic::AtomicUsize;

use serde_json::json;
use serrano_datastore::{EmbeddedOptions, EmbeddedStore, ListResult};

use super::*;

fn store() -> (Arc<dyn KvStore>, EmbeddedDocStore) {
    let kv: Arc<dyn KvStore> = Arc::new(EmbeddedStore::in_memory());
    let docs = EmbeddedDocStore::new(kv.clone(), "/docs/");
    (kv, docs)
}

fn all() -> FindOptions {
    FindOptions::default()
}

/// Polls `find` until it returns `expected` (another store's writes arrive through the watch).
async fn eventually(
    docs: &EmbeddedDocStore,
    collection: &str,
    filter: Filter,
    expected: Vec<Value>,
) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = docs.find(collection, &filter, &all()).await.unwrap();
        if got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {got:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A datastore around an [`EmbeddedStore`] that can add network-like latency, stall its
/// watches (nothing is ever delivered), make watches fail to start, and end open watches.
#[derive(Debug)]
struct TestKv {
    inner: EmbeddedStore,
    /// Widens every race window (the in-memory store answers so fast that racing callers
    /// hardly ever interleave).
    lag: bool,
    stall_watches: bool,
    /// `watch_prefix` calls so far.
    watches: AtomicUsize,
    /// How many of the next `watch_prefix` calls fail with `Compacted`.
    compact_next: AtomicUsize,
    /// One per open watch: sending ends that watch with an error.
    enders: Mutex<Vec<tokio::sync::oneshot::Sender<()>>>,
}

impl TestKv {
    fn new(inner: EmbeddedStore) -> TestKv {
        TestKv {
            inner,
            lag: false,
            stall_watches: false,
            watches: AtomicUsize::new(0),
            compact_next: AtomicUsize::new(0),
            enders: Mutex::new(Vec::new()),
        }
    }

    async fn lag(&self) {
        if self.lag {
            tokio::time::sleep(Duration::from_micros(300)).await;
        }
    }

    /// Ends every open watch with an error, as a compaction or a broken connection would.
    fn end_watches(&self) {
        for ender in lock(&self.enders).drain(..) {
            let _ = ender.send(());
        }
    }
}

#[async_trait]
impl KvStore for TestKv {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        self.lag().await;
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: Vec<u8>, lease: LeaseId) -> Result<i64, StoreError> {
        self.lag().await;
        self.inner.put(key, value, lease).await
    }
    async fn compare_and_swap(
        &self,
        key: &str,
        expect: Expect,
        value: Vec<u8>,
        lease: LeaseId,
    ) -> Result<CasOutcome, StoreError> {
        self.lag().await;
        self.inner.compare_and_swap(key, expect, value, lease).await
    }
    async fn delete(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        self.lag().await;
        self.inner.delete(key).await
    }
    async fn compare_and_delete(
        &self,
        key: &str,
        mod_revision: i64,
    ) -> Result<CasOutcome, StoreError> {
        self.lag().await;
        self.inner.compare_and_delete(key, mod_revision).await
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        self.lag().await;
        self.inner.delete_prefix(prefix).await
    }
    async fn list_prefix(&self, prefix: &str) -> Result<ListResult, StoreError> {
        self.lag().await;
        self.inner.list_prefix(prefix).await
    }
    async fn scan_prefix(
        &self,
        prefix: &str,
        start: &str,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        self.lag().await;
        self.inner.scan_prefix(prefix, start, limit).await
    }
    async fn watch_prefix(
        &self,
        prefix: &str,
        start_revision: Option<i64>,
    ) -> Result<WatchStream, StoreError> {
        self.watches.fetch_add(1, Ordering::SeqCst);
        let compacted = self
            .compact_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if compacted {
            return Err(StoreError::Compacted {
                requested: start_revision.unwrap_or(0),
                oldest: start_revision.unwrap_or(0) + 1,
            });
        }
        if self.stall_watches {
            return Ok(Box::pin(futures::stream::pending()));
        }
        let events = self.inner.watch_prefix(prefix, start_revision).await?;
        let (ender, ended) = tokio::sync::oneshot::channel::<()>();
        lock(&self.enders).push(ender);
        let end = futures::stream::once(async move {
            let _ = ended.await;
            Err::<WatchEvent, StoreError>(StoreError::Compacted {
                requested: 0,
                oldest: 1,
            })
        });
        Ok(Box::pin(futures::stream::select(events, end)))
    }
    async fn grant_lease(&self, ttl_secs: i64) -> Result<LeaseId, StoreError> {
        self.lag().await;
        self.inner.grant_lease(ttl_secs).await
    }
    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.inner.keep_alive(lease).await
    }
    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.lag().await;
        self.inner.revoke_lease(lease).await
    }
    async fn health(&self) -> Result<(), StoreError> {
        self.inner.health().await
    }
}

// ---- the contract suite

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contract_suite_in_memory() {
    let kv: Arc<dyn KvStore> = Arc::new(EmbeddedStore::in_memory());
    crate::contract::run_suite(Arc::new(EmbeddedDocStore::new(kv, "/serrano/docs/"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contract_suite_with_latency() {
    let mut kv = TestKv::new(EmbeddedStore::in_memory());
    kv.lag = true;
    crate::contract::run_suite(Arc::new(EmbeddedDocStore::new(Arc::new(kv), "/slow/"))).await;
}

#[tokio::test]
async fn contract_suite_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let kv: Arc<dyn KvStore> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    crate::contract::run_suite(Arc::new(EmbeddedDocStore::new(kv, "d/"))).await;
}

/// The suite with watches that never deliver: every result the suite checks comes from this
/// store's own writes being applied (read-your-writes does not depend on the watch).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contract_suite_with_stalled_watches() {
    let mut kv = TestKv::new(EmbeddedStore::in_memory());
    kv.stall_watches = true;
    crate::contract::run_suite(Arc::new(EmbeddedDocStore::new(Arc::new(kv), "/stalled/"))).await;
}

// ---- layout and locks

#[tokio::test]
async fn key_layout_sorts_in_insertion_order() {
    let (kv, docs) = store();
    let many: Vec<Value> = (0..50).map(|i| json!({ "i": i })).collect();
    docs.insert_many("c", many).await.unwrap();
    let listed = kv.list_prefix("/docs/c/").await.unwrap().kvs;
    assert_eq!(listed.len(), 50);
    for (i, kv) in listed.iter().enumerate() {
        let id = kv.key.strip_prefix("/docs/c/").unwrap();
        assert_eq!(id.len(), 28, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        let doc: Value = serde_json::from_slice(&kv.value).unwrap();
        assert_eq!(doc, json!({ "i": i }));
    }
    // Two stores on one datastore interleave without collisions.
    let other = EmbeddedDocStore::new(kv.clone(), "/docs/");
    for i in 0..10 {
        docs.insert("c2", json!({ "i": i, "by": 1 })).await.unwrap();
        other
            .insert("c2", json!({ "i": i, "by": 2 }))
            .await
            .unwrap();
    }
    assert_eq!(kv.list_prefix("/docs/c2/").await.unwrap().kvs.len(), 20);
}

#[tokio::test]
async fn foreign_values_are_skipped() {
    let (kv, docs) = store();
    docs.insert("c", json!({"a": 1})).await.unwrap();
    kv.put("/docs/c/zz-not-json", b"{oops".to_vec(), 0)
        .await
        .unwrap();
    kv.put("/docs/c/zz-array", b"[1]".to_vec(), 0)
        .await
        .unwrap();
    kv.put("/docs/stray", b"{}".to_vec(), 0).await.unwrap();
    kv.put("/docs/bad name/x", b"{}".to_vec(), 0).await.unwrap();
    let all_docs = docs.find("c", &Filter::all(), &all()).await.unwrap();
    assert_eq!(all_docs, vec![json!({"a": 1})]);
    assert_eq!(docs.collections().await.unwrap(), vec!["c".to_owned()]);
    // delete_many skips them too.
    assert_eq!(docs.delete_many("c", &Filter::all()).await.unwrap(), 1);
    // A foreign value written over a document makes it disappear (from the mirror too).
    docs.insert("d", json!({"b": 1})).await.unwrap();
    let key = kv.list_prefix("/docs/d/").await.unwrap().kvs[0].key.clone();
    kv.put(&key, b"not json".to_vec(), 0).await.unwrap();
    eventually(&docs, "d", Filter::all(), vec![]).await;
}

#[tokio::test]
async fn collections_skip_lock_keys_and_neighbours() {
    let (kv, docs) = store();
    for name in ["a", "a-b", "a.c", "a0", "b"] {
        docs.insert(name, json!({"n": name})).await.unwrap();
    }
    kv.put("/docs/a!lock", b"x".to_vec(), 0).await.unwrap();
    assert_eq!(
        docs.collections().await.unwrap(),
        vec!["a", "a-b", "a.c", "a0", "b"]
    );
    // The watch of `a` also sees `a-b`, `a.c` and `a0` (same key prefix): they stay out of
    // `a`'s mirror.
    for name in ["a", "a-b", "a.c", "a0"] {
        assert_eq!(
            docs.find(name, &Filter::all(), &all()).await.unwrap(),
            vec![json!({"n": name})]
        );
    }
    docs.insert("a0", json!({"n": "a0 again"})).await.unwrap();
    docs.insert("a-b", json!({"n": "a-b again"})).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        docs.find("a", &Filter::all(), &all()).await.unwrap(),
        vec![json!({"n": "a"})]
    );
}

#[tokio::test]
async fn held_lock_makes_creation_wait_for_the_lease() {
    let (kv, docs) = store();
    // A crashed creator: the lock key on a lease that nobody revokes.
    let lease = kv.grant_lease(1).await.unwrap();
    kv.compare_and_swap("/docs/c!lock", Expect::Absent, b"dead".to_vec(), lease)
        .await
        .unwrap();
    let started = Instant::now();
    let created = docs
        .upsert("c", &Filter::all().eq("k", 1), json!({"k": 1}))
        .await
        .unwrap();
    assert!(!created);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(500), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert!(kv.get("/docs/c!lock").await.unwrap().is_none());
    // Replacing an existing document needs no lock.
    assert!(
        docs.upsert("c", &Filter::all().eq("k", 1), json!({"k": 1, "v": 2}))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn oversized_documents_are_invalid() {
    let (_kv, docs) = store();
    let big = json!({ "s": "x".repeat(MAX_DOCUMENT_BYTES) });
    assert!(matches!(
        docs.insert("c", big).await,
        Err(DocError::Invalid(_))
    ));
}

#[tokio::test]
async fn down_datastore_is_unavailable() {
    let kv: Arc<dyn KvStore> = Arc::new(
        serrano_datastore::EtcdStore::connect(
            &["http://127.0.0.1:1".to_owned()],
            Duration::from_millis(300),
        )
        .await
        .unwrap(),
    );
    let docs = EmbeddedDocStore::new(kv, "/d/");
    assert!(matches!(docs.health().await, Err(DocError::Unavailable(_))));
    assert!(matches!(
        docs.find("c", &Filter::all(), &all()).await,
        Err(DocError::Unavailable(_))
    ));
    assert!(matches!(
        docs.insert("c", json!({})).await,
        Err(DocError::Unavailable(_))
    ));
    // Bad input is still Invalid, before any I/O.
    assert!(matches!(
        docs.insert("c/x", json!({})).await,
        Err(DocError::Invalid(_))
    ));
}

// ---- the mirror

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_of_another_store_are_seen() {
    let kv: Arc<dyn KvStore> = Arc::new(EmbeddedStore::in_memory());
    let mine = EmbeddedDocStore::new(kv.clone(), "/docs/");
    // Another process sharing the datastore.
    let other = EmbeddedDocStore::new(kv.clone(), "/docs/");
    assert!(
        mine.find("c", &Filter::all(), &all())
            .await
            .unwrap()
            .is_empty()
    );

    other.insert("c", json!({"k": 1, "v": "a"})).await.unwrap();
    eventually(&mine, "c", Filter::all(), vec![json!({"k": 1, "v": "a"})]).await;

    let k1 = Filter::all().eq("k", 1);
    assert!(
        other
            .upsert("c", &k1, json!({"k": 1, "v": "b"}))
            .await
            .unwrap()
    );
    eventually(&mine, "c", Filter::all(), vec![json!({"k": 1, "v": "b"})]).await;

    let k2 = Filter::all().eq("k", 2);
    other
        .increment("c", &k2, json!({"k": 2}), "n", 5, 0)
        .await
        .unwrap();
    eventually(&mine, "c", k2.clone(), vec![json!({"k": 2, "n": 5})]).await;
    // Both count on the same document.
    let doc = mine
        .increment("c", &k2, json!({"k": 2}), "n", 1, 0)
        .await
        .unwrap();
    assert_eq!(doc, json!({"k": 2, "n": 6}));
    eventually(&other, "c", k2.clone(), vec![json!({"k": 2, "n": 6})]).await;

    assert_eq!(other.delete_many("c", &k1).await.unwrap(), 1);
    eventually(&mine, "c", Filter::all(), vec![json!({"k": 2, "n": 6})]).await;

    // A multi-key delete (one revision for all its keys) empties the mirror.
    other
        .insert_many("c", (0..5).map(|i| json!({"i": i})).collect())
        .await
        .unwrap();
    eventually(
        &mine,
        "c",
        Filter::all().gte("i", 0.0),
        (0..5).map(|i| json!({"i": i})).collect(),
    )
    .await;
    assert_eq!(kv.delete_prefix("/docs/c/").await.unwrap(), 6);
    eventually(&mine, "c", Filter::all(), vec![]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stores_sharing_a_datastore_create_once_and_count_exactly() {
    // Two "processes" race on creating the same document: the lock write, seen through the
    // watch, makes the second creator see the first one's document.
    let mut kv = TestKv::new(EmbeddedStore::in_memory());
    kv.lag = true;
    let kv: Arc<dyn KvStore> = Arc::new(kv);
    let stores = [
        Arc::new(EmbeddedDocStore::new(kv.clone(), "/docs/")),
        Arc::new(EmbeddedDocStore::new(kv.clone(), "/docs/")),
    ];
    let filter = Filter::all().eq("name", "hits");
    let start = Arc::new(tokio::sync::Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = stores[i % 2].clone();
            let filter = filter.clone();
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
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
    for store in &stores {
        eventually(
            store,
            "c",
            Filter::all(),
            vec![json!({"name": "hits", "n": 20})],
        )
        .await;
    }

    let start = Arc::new(tokio::sync::Barrier::new(10));
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = stores[i % 2].clone();
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                store
                    .upsert(
                        "u",
                        &Filter::all().eq("key", "k"),
                        json!({"key": "k", "writer": i}),
                    )
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
    assert_eq!(kv.list_prefix("/docs/u/").await.unwrap().kvs.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn own_writes_are_read_back_under_concurrency() {
    // The watch never delivers: only applying each write's result makes it visible.
    let mut kv = TestKv::new(EmbeddedStore::in_memory());
    kv.stall_watches = true;
    let docs = Arc::new(EmbeddedDocStore::new(Arc::new(kv), "/docs/"));
    // Every task's document exists before the race (creations under the lock would wait for
    // the stalled watch).
    docs.insert_many("c", (0..16).map(|t| json!({"t": t, "v": 0})).collect())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let docs = docs.clone();
            tokio::spawn(async move {
                let mine = Filter::all().eq("t", t);
                for round in 1..=5 {
                    assert!(
                        docs.upsert("c", &mine, json!({"t": t, "v": round}))
                            .await
                            .unwrap()
                    );
                    assert_eq!(
                        docs.find_one("c", &mine).await.unwrap(),
                        Some(json!({"t": t, "v": round}))
                    );
                    let doc = docs
                        .increment("c", &mine, json!({"t": t}), "n", 2, 0)
                        .await
                        .unwrap();
                    assert_eq!(doc, json!({"t": t, "v": round, "n": 2}));
                    assert_eq!(docs.find("c", &mine, &all()).await.unwrap(), vec![doc]);
                    docs.insert("extra", json!({"t": t, "round": round}))
                        .await
                        .unwrap();
                    let extra = docs
                        .find("extra", &Filter::all().eq("t", t), &all())
                        .await
                        .unwrap();
                    assert_eq!(extra.len(), round as usize);
                }
                assert_eq!(
                    docs.delete_many("extra", &Filter::all().eq("t", t))
                        .await
                        .unwrap(),
                    5
                );
                assert!(
                    docs.find("extra", &Filter::all().eq("t", t), &all())
                        .await
                        .unwrap()
                        .is_empty()
                );
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let sorted = FindOptions {
        sort_by: Some("t".to_owned()),
        descending: true,
        limit: Some(2),
    };
    assert_eq!(
        docs.find("c", &Filter::all(), &sorted).await.unwrap(),
        vec![
            json!({"t": 15, "v": 5, "n": 2}),
            json!({"t": 14, "v": 5, "n": 2})
        ]
    );
    assert!(
        docs.find("extra", &Filter::all(), &all())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn stale_mirror_refreshes_the_key_and_retries() {
    let inner = EmbeddedStore::in_memory();
    let mut kv = TestKv::new(inner.clone());
    kv.stall_watches = true;
    let mine = EmbeddedDocStore::new(Arc::new(kv), "/docs/");
    let other = EmbeddedDocStore::new(Arc::new(inner), "/docs/");
    mine.insert_many(
        "c",
        vec![json!({"k": 1, "n": 0}), json!({"k": 2}), json!({"k": 3})],
    )
    .await
    .unwrap();
    assert_eq!(
        mine.find("c", &Filter::all(), &all()).await.unwrap().len(),
        3
    );

    // Changed behind the (never updated) mirror: the compare-and-swap fails, the key is read
    // back, the increment lands on the current value.
    let k1 = Filter::all().eq("k", 1);
    other
        .increment("c", &k1, json!({"k": 1}), "n", 10, 0)
        .await
        .unwrap();
    let doc = mine
        .increment("c", &k1, json!({"k": 1}), "n", 1, 0)
        .await
        .unwrap();
    assert_eq!(doc, json!({"k": 1, "n": 11}));
    assert_eq!(mine.find_one("c", &k1).await.unwrap(), Some(doc));

    // Deleted behind the mirror: the upsert finds it gone and creates a new document (the
    // creator's wait for the stalled watch ends in a list).
    let k2 = Filter::all().eq("k", 2);
    assert_eq!(other.delete_many("c", &k2).await.unwrap(), 1);
    assert!(
        !mine
            .upsert("c", &k2, json!({"k": 2, "v": "new"}))
            .await
            .unwrap()
    );
    assert_eq!(
        mine.find("c", &k2, &all()).await.unwrap(),
        vec![json!({"k": 2, "v": "new"})]
    );

    // Deleted behind the mirror, then deleted here: not counted, and gone from the mirror.
    let k3 = Filter::all().eq("k", 3);
    assert_eq!(other.delete_many("c", &k3).await.unwrap(), 1);
    assert_eq!(mine.delete_many("c", &k3).await.unwrap(), 0);
    assert!(mine.find("c", &k3, &all()).await.unwrap().is_empty());
    let left = mine.find("c", &Filter::all(), &all()).await.unwrap();
    assert_eq!(left.len(), 2);
    eventually(&other, "c", Filter::all(), left).await;
}

#[test]
fn late_events_do_not_bring_deleted_documents_back() {
    let doc = |v: i64| Some(Arc::new(json!({ "v": v })));
    let mut state = MirrorState::default();
    state.advance(4);
    state.apply("k", 5, doc(5));
    // Deleted by this store at 7, ahead of the watch...
    state.apply("k", 7, None);
    assert!(state.docs.is_empty());
    // ...whose put event of 6 arrives late: ignored.
    state.apply("k", 6, doc(6));
    assert!(state.docs.is_empty());
    assert_eq!(state.tombstones.get("k"), Some(&7));
    // The watch passes 7: the tombstone goes, the revision rule keeps older puts out.
    state.advance(7);
    assert!(state.tombstones.is_empty() && state.tombstone_order.is_empty());
    state.apply("k", 6, doc(6));
    assert!(state.docs.is_empty());
    // A newer put is a new document.
    state.apply("k", 9, doc(9));
    assert_eq!(state.docs.get("k").map(|d| d.revision), Some(9));
    // An older put never replaces a newer document.
    state.apply("k", 8, doc(8));
    assert_eq!(
        state.docs.get("k").map(|d| (*d.doc).clone()),
        Some(json!({"v": 9}))
    );

    // A list at 20 that lacks "k" (deleted meanwhile) removes it; a write of this store after
    // the list (at 21) stays.
    state.apply("own", 21, doc(21));
    state.merge_listing(vec![("x".to_owned(), 15, doc(15))], 20);
    assert_eq!(
        state.docs.keys().cloned().collect::<Vec<_>>(),
        vec!["own".to_owned(), "x".to_owned()]
    );
    assert_eq!(state.applied, 20);
}

#[test]
fn watch_events_apply_in_order_with_own_writes() {
    let mirror = Mirror::new("/p/c/".to_owned(), "/p/c".to_owned());
    let put = |key: &str, revision: i64, value: &str| {
        WatchEvent::Put(KeyValue {
            key: key.to_owned(),
            value: value.as_bytes().to_vec(),
            create_revision: revision,
            mod_revision: revision,
            version: 1,
            lease: 0,
        })
    };
    mirror.on_event(put("/p/c/a", 2, r#"{"a":1}"#));
    // This store deleted it at 4 before the watch got there.
    mirror.apply("/p/c/a", 4, None);
    mirror.on_event(put("/p/c/a", 3, r#"{"a":2}"#));
    assert!(
        mirror.select(&Filter::all(), None).is_empty(),
        "late put ignored"
    );
    mirror.on_event(WatchEvent::Delete {
        key: "/p/c/a".to_owned(),
        revision: 4,
    });
    // The lock key and a longer collection name move progress only.
    mirror.on_event(put("/p/c!lock", 5, "node"));
    mirror.on_event(put("/p/cc/b", 6, r#"{"b":1}"#));
    mirror.on_event(put("/p/c/b", 7, r#"{"b":2}"#));
    // Two keys deleted at one revision (a multi-key delete).
    mirror.on_event(put("/p/c/c", 8, r#"{"c":3}"#));
    mirror.on_event(WatchEvent::Delete {
        key: "/p/c/b".to_owned(),
        revision: 9,
    });
    mirror.on_event(WatchEvent::Delete {
        key: "/p/c/c".to_owned(),
        revision: 9,
    });
    let state = mirror.read();
    assert!(state.docs.is_empty(), "{:?}", state.docs);
    assert!(state.tombstones.is_empty());
    assert_eq!(state.applied, 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_watch_is_rebuilt_from_a_fresh_list() {
    let inner = EmbeddedStore::in_memory();
    let kv = Arc::new(TestKv::new(inner.clone()));
    let mine = EmbeddedDocStore::new(kv.clone(), "/docs/");
    let other = EmbeddedDocStore::new(Arc::new(inner), "/docs/");
    mine.insert("c", json!({"n": 1})).await.unwrap();
    assert_eq!(
        mine.find("c", &Filter::all(), &all()).await.unwrap().len(),
        1
    );
    assert_eq!(kv.watches.load(Ordering::SeqCst), 1);

    kv.end_watches();
    let mirror = mine.existing_mirror("c").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while mirror.read().live {
        assert!(Instant::now() < deadline, "the ended watch was not noticed");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Written while nobody watches: the next call lists again and sees it at once.
    other.insert("c", json!({"n": 2})).await.unwrap();
    assert_eq!(
        mine.find("c", &Filter::all(), &all()).await.unwrap(),
        vec![json!({"n": 1}), json!({"n": 2})]
    );
    assert_eq!(kv.watches.load(Ordering::SeqCst), 2);
    // And the new watch follows.
    other.insert("c", json!({"n": 3})).await.unwrap();
    eventually(&mine, "c", Filter::all().eq("n", 3), vec![json!({"n": 3})]).await;

    // A watch refused as compacted (history gone between list and watch): listed again.
    kv.compact_next.store(1, Ordering::SeqCst);
    other.insert("d", json!({"d": 1})).await.unwrap();
    assert_eq!(
        mine.find("d", &Filter::all(), &all()).await.unwrap(),
        vec![json!({"d": 1})]
    );
    assert_eq!(kv.watches.load(Ordering::SeqCst), 4);
    // Refused every time: Unavailable, and the next call tries again.
    kv.compact_next
        .store(BUILD_ATTEMPTS as usize, Ordering::SeqCst);
    assert!(matches!(
        mine.find("e", &Filter::all(), &all()).await,
        Err(DocError::Unavailable(_))
    ));
    assert!(
        mine.find("e", &Filter::all(), &all())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn watcher_that_falls_behind_is_rebuilt() {
    // A one-event watch buffer: a burst of writes overflows it and the datastore ends the
    // watch; the mirror recovers by listing again.
    let kv = EmbeddedStore::in_memory_with(EmbeddedOptions {
        watch_buffer: 1,
        ..EmbeddedOptions::default()
    });
    let mine = EmbeddedDocStore::new(Arc::new(kv.clone()), "/docs/");
    let other = EmbeddedDocStore::new(Arc::new(kv), "/docs/");
    assert!(
        mine.find("c", &Filter::all(), &all())
            .await
            .unwrap()
            .is_empty()
    );
    let burst: Vec<Value> = (0..300).map(|i| json!({ "i": i })).collect();
    other.insert_many("c", burst.clone()).await.unwrap();
    eventually(&mine, "c", Filter::all(), burst).await;
    // One runtime thread: the parallel writes of the burst publish several events between two
    // polls of the watch task, so the watch did overflow and was replaced.
    assert!(mine.existing_mirror("c").unwrap().read().generation >= 2);
}

#[tokio::test]
async fn dropping_the_store_drops_its_mirrors() {
    let (_kv, docs) = store();
    docs.insert("c", json!({"a": 1})).await.unwrap();
    assert_eq!(
        docs.find("c", &Filter::all(), &all()).await.unwrap().len(),
        1
    );
    let mirror = Arc::downgrade(&docs.existing_mirror("c").unwrap());
    drop(docs);
    // The watch task holds no strong reference; it is aborted with the mirror.
    assert!(mirror.upgrade().is_none());
}

#[test]
fn no_runtime_is_an_error_not_a_panic() {
    use std::task::{Context, Poll, Waker};
    let (_kv, docs) = store();
    // Polled by hand, outside any Tokio runtime (the in-memory list answers at once).
    let mut cx = Context::from_waker(Waker::noop());
    let (filter, options) = (Filter::all(), all());
    let mut find = docs.find("c", &filter, &options);
    let mut found = None;
    for _ in 0..100_000 {
        if let Poll::Ready(result) = find.as_mut().poll(&mut cx) {
            found = Some(result);
            break;
        }
        std::thread::yield_now();
    }
    let found = found.expect("find finished");
    assert!(matches!(found, Err(DocError::Unavailable(_))), "{found:?}");
}

#[test]
fn quick_test_agrees_with_the_matcher() {
    let docs = [
        json!({"a": "x"}),
        json!({"a": "y"}),
        json!({"a": ["y", "x"]}),
        json!({"a": 1}),
        json!({"a": null}),
        json!({}),
        json!({"a": {"b": "x"}}),
        json!({"a": {"b": "y"}}),
        json!({"a": [{"b": "y"}, {"b": "x"}]}),
        json!({"a": [{"b": "y"}]}),
        json!({"a": "x", "c": {"d": "z"}}),
        json!({"a": {"b": ["x"]}}),
        json!({"a": {"0": "x"}}),
        json!({"a": ["x"], "n": 1}),
    ];
    let filters = [
        Filter::all().eq("a", "x"),
        Filter::all().eq("a.b", "x"),
        Filter::all().eq("a.0", "x"),
        Filter::all().eq("a", "x").eq("c.d", "z"),
        Filter::all().eq("a", "x").eq("n", 1),
        Filter::all().eq("a", Value::Null),
        Filter::all().is_in("a", ["x", "y"]),
        Filter::all(),
    ];
    for filter in &filters {
        for doc in &docs {
            assert_eq!(
                matches(doc, filter),
                matcher::matches(doc, filter),
                "{doc} {filter:?}"
            );
        }
    }
}

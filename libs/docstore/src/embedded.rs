//! The default operational database: documents as JSON values in the project datastore (the
//! embedded crash-safe store, or etcd when the platform runs on etcd), so a single-node
//! deployment needs no MongoDB (D6.7 4.4.2 names MongoDB; this keeps its semantics, see
//! [`crate::matcher`]).
//!
//! Layout under the caller's `prefix` (which this store must own alone):
//!
//! - `{prefix}{collection}/{id}`: one document, its JSON. `id` is 20 digits of nanoseconds
//!   since the epoch (strictly increasing within a store) and 8 hex digits of the store's random
//!   node id, so keys sort in insertion order and two processes never collide.
//! - `{prefix}{collection}!lock`: a short-lived key, held on a lease while an `upsert` or
//!   `increment` creates a document (see below).
//!
//! Reads. Each collection has an in-memory mirror of its parsed documents (key order, so
//! insertion order), built on first use from one list of the collection and then kept current
//! by a watch of `{prefix}{collection}` from the list's revision on, so writes of other
//! processes sharing the datastore show up within the watch delay. Queries filter, sort and
//! limit over the mirror: no round trip, no JSON parsing. This store's own writes are applied to
//! the mirror with the revision the datastore returned before the call returns
//! (read-your-writes). A change is applied only if it is newer than what the mirror holds for
//! the key; deletions leave a tombstone until the watch has passed them, so a late event cannot
//! bring a deleted document back. When the watch ends (datastore down, compacted history,
//! watcher too slow), the next call on the collection lists it again and starts a new watch;
//! if the datastore cannot be reached that call fails with `Unavailable`, as before. Fine for
//! operational data (inventories, counters, a retention window of metrics), not for large
//! histories: a collection is held in memory whole.
//!
//! Writes go to the datastore as they always did. Changing an existing document is a
//! compare-and-swap on its revision (retried on conflict, after refreshing the key from the
//! datastore, since the mirror may have been stale), so concurrent `increment`s all count and
//! concurrent `upsert`s serialise. Creating a document when none matches must not race with
//! another creator (two callers would each insert one): creators take the collection's lock key
//! (compare-and-swap on absence, attached to a 10 s lease so a crashed holder cannot block the
//! collection), wait until the mirror's watch has seen their own lock write (so every document
//! a previous lock holder created is in the mirror; the watch covers the lock key for that),
//! check again, then insert. Plain `insert_many` takes no lock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{
    Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak,
};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;
use serrano_datastore::{
    CasOutcome, Expect, KeyValue, KvStore, LeaseId, Revision, StoreError, WatchEvent, WatchStream,
};
use tokio::sync::Notify;

use crate::matcher::{self, SortKey};
use crate::validate;
use crate::{Condition, DocError, DocStore, Filter, FindOptions};

/// Largest stored document (its JSON): etcd refuses requests above 1.5 MiB by default.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// How long one call may keep retrying under contention before `Unavailable`.
const CONTENTION_DEADLINE: Duration = Duration::from_secs(10);
/// Lease of a collection's creation lock: how long a crashed creator can block creations.
const LOCK_TTL_SECS: i64 = 10;
/// Parallel writes of one `insert_many` or `delete_many`.
const WRITE_PARALLELISM: usize = 16;
/// How long a creator waits for the watch to reach its lock write before it lists the
/// collection instead (a lagging watch must not stall creations).
const CATCH_UP_WAIT: Duration = Duration::from_millis(250);
/// Lists of a collection when its watch cannot start because history was compacted meanwhile.
const BUILD_ATTEMPTS: u32 = 3;

/// Documents in a [`KvStore`] under one key prefix.
pub struct EmbeddedDocStore {
    kv: Arc<dyn KvStore>,
    prefix: String,
    /// Random per store: the tail of every id, so stores sharing a datastore never collide.
    node: u32,
    /// Last nanosecond stamp handed out (ids strictly increase within this store).
    last_stamp: AtomicU64,
    /// The mirror of every collection used so far.
    mirrors: Mutex<HashMap<String, Arc<Mirror>>>,
}

impl fmt::Debug for EmbeddedDocStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedDocStore")
            .field("prefix", &self.prefix)
            .field("kv", &self.kv)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// The mirror of one collection
// ---------------------------------------------------------------------------------------------

/// One mirrored document.
#[derive(Debug, Clone)]
struct MirroredDoc {
    revision: Revision,
    doc: Arc<Value>,
}

/// What a mirror holds. Invariant: for every key, the mirror reflects the datastore as of
/// `applied` or later (later where this store's own writes went ahead of the watch).
#[derive(Debug, Default)]
struct MirrorState {
    docs: BTreeMap<String, MirroredDoc>,
    /// Keys deleted at a revision above `applied` (by this store, ahead of the watch): a put
    /// older than that must not bring them back.
    tombstones: HashMap<String, Revision>,
    /// The same tombstones by revision, to drop those the watch has passed.
    tombstone_order: BTreeSet<(Revision, String)>,
    /// Every change up to this revision is reflected: the list's revision, then the revision of
    /// the last watch event.
    applied: Revision,
    /// A watch is following the collection from `applied`.
    live: bool,
    /// Bumped for each watch, so that a watch that ended does not mark its successor dead.
    generation: u64,
}

impl MirrorState {
    /// The revision the mirror holds for `key`: its document's or its tombstone's.
    fn held(&self, key: &str) -> Option<Revision> {
        self.docs
            .get(key)
            .map(|d| d.revision)
            .or_else(|| self.tombstones.get(key).copied())
    }

    /// Whether a change of `key` at `revision` would be newer than what the mirror reflects.
    fn is_newer(&self, key: &str, revision: Revision) -> bool {
        revision >= self.applied && self.held(key).is_none_or(|held| held < revision)
    }

    /// Records that `key` holds `doc` (None: deleted, or not a document) since `revision`,
    /// unless the mirror already reflects that revision or a later one.
    fn apply(&mut self, key: &str, revision: Revision, doc: Option<Arc<Value>>) {
        if !self.is_newer(key, revision) {
            return;
        }
        if let Some(old) = self.tombstones.remove(key) {
            self.tombstone_order.remove(&(old, key.to_owned()));
        }
        match doc {
            Some(doc) => {
                self.docs
                    .insert(key.to_owned(), MirroredDoc { revision, doc });
            }
            None => {
                self.docs.remove(key);
                // At or below `applied` the revision rule alone keeps older puts out.
                if revision > self.applied {
                    self.tombstones.insert(key.to_owned(), revision);
                    self.tombstone_order.insert((revision, key.to_owned()));
                }
            }
        }
    }

    /// Everything up to `revision` is now reflected: tombstones at or below it are redundant.
    fn advance(&mut self, revision: Revision) {
        if revision <= self.applied {
            return;
        }
        self.applied = revision;
        while let Some(first) = self.tombstone_order.first() {
            if first.0 > revision {
                break;
            }
            if let Some((_, key)) = self.tombstone_order.pop_first() {
                self.tombstones.remove(&key);
            }
        }
    }

    /// Replaces what a list at `revision` covers: documents listed (`docs`, already decoded
    /// where newer) and the absence of every other key.
    fn merge_listing(
        &mut self,
        listed: Vec<(String, Revision, Option<Arc<Value>>)>,
        revision: Revision,
    ) {
        let mut seen = BTreeSet::new();
        for (key, mod_revision, doc) in listed {
            self.apply(&key, mod_revision, doc);
            seen.insert(key);
        }
        // Held at or below the list's revision but not listed: deleted meanwhile. Above it: this
        // store's own write after the list, which stays.
        let gone: Vec<String> = self
            .docs
            .iter()
            .filter(|(key, d)| d.revision <= revision && !seen.contains(*key))
            .map(|(key, _)| key.clone())
            .collect();
        for key in gone {
            self.docs.remove(&key);
        }
        self.advance(revision);
    }
}

/// The mirror of one collection and its watch.
struct Mirror {
    /// `{prefix}{collection}/`: the documents.
    docs_prefix: String,
    /// `{prefix}{collection}`: what the watch covers, the documents and the lock key (and the
    /// events of collections whose names extend this one, which are skipped).
    watch_prefix: String,
    state: RwLock<MirrorState>,
    /// Woken after each watch event and when the watch ends.
    progress: Notify,
    /// Serialises (re)builds of the mirror.
    build: tokio::sync::Mutex<()>,
    /// The watch's task, ended with the mirror.
    watcher: Mutex<Option<tokio::task::AbortHandle>>,
}

impl fmt::Debug for Mirror {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mirror")
            .field("docs_prefix", &self.docs_prefix)
            .finish_non_exhaustive()
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.watcher).take() {
            task.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code panics while holding these locks; if one did, the data is still consistent
    // (every critical section is a handful of map operations).
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Mirror {
    fn new(docs_prefix: String, watch_prefix: String) -> Mirror {
        Mirror {
            docs_prefix,
            watch_prefix,
            state: RwLock::new(MirrorState::default()),
            progress: Notify::new(),
            build: tokio::sync::Mutex::new(()),
            watcher: Mutex::new(None),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, MirrorState> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, MirrorState> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies a write of this store (or a key's state read back from the datastore).
    fn apply(&self, key: &str, revision: Revision, doc: Option<Arc<Value>>) {
        self.write().apply(key, revision, doc);
    }

    /// Applies a key's state as the datastore returned it.
    fn apply_kv(&self, kv: &KeyValue) {
        let newer = self.read().is_newer(&kv.key, kv.mod_revision);
        if newer {
            let doc = decode(kv);
            self.apply(&kv.key, kv.mod_revision, doc);
        }
    }

    /// Makes sure a watch follows the collection: on first use, or after the watch ended,
    /// lists the collection and watches it from the list's revision on.
    async fn ensure_live(self: &Arc<Self>, kv: &Arc<dyn KvStore>) -> Result<(), DocError> {
        if self.read().live {
            return Ok(());
        }
        let _building = self.build.lock().await;
        if self.read().live {
            return Ok(());
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            DocError::Unavailable("the embedded document store needs a Tokio runtime".to_owned())
        })?;
        let mut attempt = 0;
        loop {
            let revision = self.resync(kv).await?;
            match kv
                .watch_prefix(&self.watch_prefix, Some(revision + 1))
                .await
            {
                Ok(events) => {
                    let generation = {
                        let mut state = self.write();
                        state.generation += 1;
                        state.live = true;
                        state.generation
                    };
                    let task = runtime.spawn(follow(Arc::downgrade(self), events, generation));
                    if let Some(old) = lock(&self.watcher).replace(task.abort_handle()) {
                        old.abort();
                    }
                    return Ok(());
                }
                // Compacted between the list and the watch: list again.
                Err(StoreError::Compacted { .. }) if attempt + 1 < BUILD_ATTEMPTS => attempt += 1,
                Err(err) => return Err(unavailable(err)),
            }
        }
    }

    /// Lists the collection and merges the list into the mirror; returns the list's revision.
    async fn resync(&self, kv: &Arc<dyn KvStore>) -> Result<Revision, DocError> {
        let listed = kv
            .list_prefix(&self.docs_prefix)
            .await
            .map_err(unavailable)?;
        // Parse only what the mirror does not hold yet, outside the lock.
        let needed: Vec<bool> = {
            let state = self.read();
            listed
                .kvs
                .iter()
                .map(|kv| state.is_newer(&kv.key, kv.mod_revision))
                .collect()
        };
        let docs: Vec<(String, Revision, Option<Arc<Value>>)> = listed
            .kvs
            .into_iter()
            .zip(needed)
            .map(|(kv, needed)| {
                let doc = if needed { decode(&kv) } else { None };
                (kv.key, kv.mod_revision, doc)
            })
            .collect();
        // Keys not parsed are held at their listed revision already, so `apply` skips them.
        self.write().merge_listing(docs, listed.revision);
        self.progress.notify_waiters();
        Ok(listed.revision)
    }

    /// Returns once the mirror reflects every change up to `revision` (a revision this store
    /// wrote under `watch_prefix`, so the watch will pass it).
    async fn catch_up(
        self: &Arc<Self>,
        kv: &Arc<dyn KvStore>,
        revision: Revision,
    ) -> Result<(), DocError> {
        let deadline = tokio::time::Instant::now() + CATCH_UP_WAIT;
        loop {
            let mut notified = std::pin::pin!(self.progress.notified());
            notified.as_mut().enable();
            let (applied, live) = {
                let state = self.read();
                (state.applied, state.live)
            };
            if applied >= revision {
                return Ok(());
            }
            if !live {
                // Rebuilding lists after `revision` was written, which reaches it.
                self.ensure_live(kv).await?;
                continue;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                self.resync(kv).await?;
                return Ok(());
            }
        }
    }

    /// Applies one watch event.
    fn on_event(&self, event: WatchEvent) {
        match event {
            WatchEvent::Put(kv) => {
                if !kv.key.starts_with(&self.docs_prefix) {
                    // The lock key or another collection's document: progress only.
                    self.write().advance(kv.mod_revision);
                    return;
                }
                // This store's own writes come back here too, usually already applied: skip
                // parsing them.
                let doc = if self.read().is_newer(&kv.key, kv.mod_revision) {
                    Some(decode(&kv))
                } else {
                    None
                };
                let mut state = self.write();
                state.advance(kv.mod_revision);
                if let Some(doc) = doc {
                    state.apply(&kv.key, kv.mod_revision, doc);
                }
            }
            WatchEvent::Delete { key, revision } => {
                let mut state = self.write();
                state.advance(revision);
                if key.starts_with(&self.docs_prefix) {
                    state.apply(&key, revision, None);
                }
            }
        }
    }

    /// The matching documents in key (insertion) order, at most `limit`.
    fn select(&self, filter: &Filter, limit: Option<usize>) -> Vec<Arc<Value>> {
        let state = self.read();
        let matching = state
            .docs
            .values()
            .filter(|d| matches(&d.doc, filter))
            .map(|d| d.doc.clone());
        match limit {
            Some(limit) => matching.take(limit).collect(),
            None => matching.collect(),
        }
    }

    /// The first matching document: key, revision, document.
    fn first_match(&self, filter: &Filter) -> Option<(String, Revision, Arc<Value>)> {
        let state = self.read();
        state
            .docs
            .iter()
            .find(|(_, d)| matches(&d.doc, filter))
            .map(|(key, d)| (key.clone(), d.revision, d.doc.clone()))
    }

    /// Every matching document: key and revision.
    fn matching_keys(&self, filter: &Filter) -> Vec<(String, Revision)> {
        let state = self.read();
        state
            .docs
            .iter()
            .filter(|(_, d)| matches(&d.doc, filter))
            .map(|(key, d)| (key.clone(), d.revision))
            .collect()
    }
}

/// Whether `doc` matches `filter`. A cheap test first: an equality with a string on a path
/// that walks objects only fails when it ends at another string or at nothing, which rules
/// out most documents of a selective query without the matcher's path resolution (the
/// matcher, `crate::matcher`, decides everything else and agrees on these cases).
fn matches(doc: &Value, filter: &Filter) -> bool {
    let surely_not = filter.0.iter().any(|condition| match condition {
        Condition::Eq(path, Value::String(wanted)) => {
            let mut current = doc;
            for segment in path.split('.') {
                match current {
                    Value::Object(map) => match map.get(segment) {
                        Some(child) => current = child,
                        None => return true,
                    },
                    // An array (element matching) or a scalar: the matcher decides.
                    _ => return false,
                }
            }
            matches!(current, Value::String(found) if found != wanted)
        }
        _ => false,
    });
    !surely_not && matcher::matches(doc, filter)
}

/// The watch task of a mirror: applies events until the watch ends or the mirror is dropped.
async fn follow(mirror: Weak<Mirror>, mut events: WatchStream, generation: u64) {
    // Also runs when the task is aborted or its runtime shuts down: the mirror must not believe
    // it is followed any more.
    let _ended = WatchEnded {
        mirror: mirror.clone(),
        generation,
    };
    while let Some(item) = events.next().await {
        let Some(mirror) = mirror.upgrade() else {
            return;
        };
        match item {
            Ok(event) => {
                mirror.on_event(event);
                mirror.progress.notify_waiters();
            }
            Err(err) => {
                tracing::warn!(prefix = %mirror.docs_prefix, error = %err,
                    "docstore: watch ended; the next call lists the collection again");
                return;
            }
        }
    }
}

struct WatchEnded {
    mirror: Weak<Mirror>,
    generation: u64,
}

impl Drop for WatchEnded {
    fn drop(&mut self) {
        if let Some(mirror) = self.mirror.upgrade() {
            {
                let mut state = mirror.write();
                if state.generation == self.generation {
                    state.live = false;
                }
            }
            mirror.progress.notify_waiters();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------------

impl EmbeddedDocStore {
    /// A store keeping its documents under `prefix` of `kv` (e.g. `/serrano/telemetry/docs/`).
    pub fn new(kv: Arc<dyn KvStore>, prefix: &str) -> Self {
        let random = uuid::Uuid::new_v4();
        let bytes = random.as_bytes();
        Self {
            kv,
            prefix: prefix.to_owned(),
            node: u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            last_stamp: AtomicU64::new(0),
            mirrors: Mutex::new(HashMap::new()),
        }
    }

    /// The key prefix of the documents of `collection`.
    fn collection_prefix(&self, collection: &str) -> String {
        format!("{}{collection}/", self.prefix)
    }

    fn lock_key(&self, collection: &str) -> String {
        format!("{}{collection}!lock", self.prefix)
    }

    /// A fresh document key: sorts after every key this store made before.
    fn new_key(&self, collection: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let previous = self
            .last_stamp
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some(now.max(last.saturating_add(1)))
            })
            .unwrap_or(now);
        let stamp = now.max(previous.saturating_add(1));
        format!(
            "{}{stamp:020}{:08x}",
            self.collection_prefix(collection),
            self.node
        )
    }

    /// The mirror of `collection`, followed by a watch (built on first use).
    async fn mirror(&self, collection: &str) -> Result<Arc<Mirror>, DocError> {
        let mirror = {
            let mut mirrors = lock(&self.mirrors);
            mirrors
                .entry(collection.to_owned())
                .or_insert_with(|| {
                    Arc::new(Mirror::new(
                        self.collection_prefix(collection),
                        format!("{}{collection}", self.prefix),
                    ))
                })
                .clone()
        };
        mirror.ensure_live(&self.kv).await?;
        Ok(mirror)
    }

    /// The mirror of `collection` if one exists. Looked up after a write: a mirror created
    /// later lists the collection after the write, so it has the write.
    fn existing_mirror(&self, collection: &str) -> Option<Arc<Mirror>> {
        lock(&self.mirrors).get(collection).cloned()
    }

    /// Brings a key the datastore refused a write on up to date in the mirror: `current` from
    /// a conflict, or (the key is gone) a read giving the revision it was seen absent at.
    async fn refresh(
        &self,
        mirror: &Mirror,
        key: &str,
        current: Option<KeyValue>,
    ) -> Result<(), DocError> {
        if let Some(kv) = current {
            mirror.apply_kv(&kv);
            return Ok(());
        }
        let listed = self.kv.list_prefix(key).await.map_err(unavailable)?;
        match listed.kvs.into_iter().find(|kv| kv.key == key) {
            Some(kv) => mirror.apply_kv(&kv),
            None => mirror.apply(key, listed.revision, None),
        }
        Ok(())
    }

    /// Writes a new document at a fresh key; returns the write's revision.
    async fn create(&self, key: &str, bytes: Vec<u8>) -> Result<Revision, DocError> {
        match self
            .kv
            .compare_and_swap(key, Expect::Absent, bytes, 0)
            .await
            .map_err(unavailable)?
        {
            CasOutcome::Written(revision) => Ok(revision),
            CasOutcome::Conflict(_) => Err(DocError::Unavailable(format!(
                "document key {key} already exists (another store uses this prefix with the same node id)"
            ))),
        }
    }

    /// Replaces a document if it is still at `revision`; on success the mirror has the new
    /// document, on conflict the key's current state.
    async fn replace(
        &self,
        mirror: &Mirror,
        key: &str,
        revision: Revision,
        doc: Arc<Value>,
        bytes: Vec<u8>,
    ) -> Result<bool, DocError> {
        match self
            .kv
            .compare_and_swap(key, Expect::ModRevision(revision), bytes, 0)
            .await
            .map_err(unavailable)?
        {
            CasOutcome::Written(written) => {
                mirror.apply(key, written, Some(doc));
                Ok(true)
            }
            CasOutcome::Conflict(current) => {
                self.refresh(mirror, key, current).await?;
                Ok(false)
            }
        }
    }

    /// Takes the creation lock of `collection`; returns the lease to revoke when done and the
    /// revision of the lock write, or None when a document matching `filter` shows up in the
    /// mirror while waiting (the caller then works on that one).
    async fn lock(
        &self,
        mirror: &Mirror,
        collection: &str,
        filter: &Filter,
        deadline: Instant,
    ) -> Result<Option<(LeaseId, Revision)>, DocError> {
        let key = self.lock_key(collection);
        let mut lease = self
            .kv
            .grant_lease(LOCK_TTL_SECS)
            .await
            .map_err(unavailable)?;
        let mut attempt = 0;
        loop {
            let taken = self
                .kv
                .compare_and_swap(
                    &key,
                    Expect::Absent,
                    format!("{:08x}", self.node).into_bytes(),
                    lease,
                )
                .await;
            match taken {
                Ok(CasOutcome::Written(revision)) => return Ok(Some((lease, revision))),
                Ok(CasOutcome::Conflict(_)) => {}
                // Waited longer than the lease lives: take a new one.
                Err(StoreError::LeaseNotFound(_)) => {
                    lease = self
                        .kv
                        .grant_lease(LOCK_TTL_SECS)
                        .await
                        .map_err(unavailable)?;
                }
                Err(err) => {
                    self.unlock(lease).await;
                    return Err(unavailable(err));
                }
            }
            // Usually the holder was creating this very document.
            if mirror.first_match(filter).is_some() {
                self.unlock(lease).await;
                return Ok(None);
            }
            attempt += 1;
            if Instant::now() >= deadline {
                self.unlock(lease).await;
                return Err(busy(collection));
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
    }

    /// Releases a creation lock (revoking the lease deletes the lock key). A failure only
    /// delays the next creator until the lease expires.
    async fn unlock(&self, lease: LeaseId) {
        if let Err(err) = self.kv.revoke_lease(lease).await {
            tracing::warn!(error = %err, lease, "docstore: releasing a creation lock failed");
        }
    }

    /// Creates `doc` under the creation lock, unless a document matching `filter` appeared
    /// meanwhile (then `Ok(None)`: the caller retries on the existing document).
    async fn create_locked(
        &self,
        mirror: &Arc<Mirror>,
        collection: &str,
        filter: &Filter,
        doc: &Arc<Value>,
        bytes: Vec<u8>,
        deadline: Instant,
    ) -> Result<Option<()>, DocError> {
        let Some((lease, locked_at)) = self.lock(mirror, collection, filter, deadline).await?
        else {
            return Ok(None);
        };
        let result = async {
            // Every earlier creator created its document before releasing the lock, so before
            // our lock write: once the mirror has passed that write, it has their documents.
            mirror.catch_up(&self.kv, locked_at).await?;
            if mirror.first_match(filter).is_some() {
                return Ok(None);
            }
            let key = self.new_key(collection);
            let revision = self.create(&key, bytes).await?;
            mirror.apply(&key, revision, Some(doc.clone()));
            Ok(Some(()))
        }
        .await;
        self.unlock(lease).await;
        result
    }

    /// Deletes one selected document (if it still matches); true when this call deleted it.
    async fn delete_one(
        &self,
        mirror: &Mirror,
        key: String,
        mut revision: Revision,
        filter: &Filter,
        deadline: Instant,
        collection: &str,
    ) -> Result<bool, DocError> {
        loop {
            match self
                .kv
                .compare_and_delete(&key, revision)
                .await
                .map_err(unavailable)?
            {
                CasOutcome::Written(deleted_at) => {
                    mirror.apply(&key, deleted_at, None);
                    return Ok(true);
                }
                // Deleted by someone else meanwhile.
                CasOutcome::Conflict(None) => {
                    self.refresh(mirror, &key, None).await?;
                    return Ok(false);
                }
                // Changed meanwhile: delete it only if it still matches.
                CasOutcome::Conflict(Some(current)) => {
                    mirror.apply_kv(&current);
                    match decode(&current) {
                        Some(now) if matches(&now, filter) => {
                            revision = current.mod_revision;
                        }
                        _ => return Ok(false),
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(busy(collection));
            }
        }
    }

    /// The keys of the collections holding at least one document: one key read per
    /// collection, skipping over each collection's documents.
    async fn collection_names(&self) -> Result<Vec<String>, DocError> {
        let mut names = Vec::new();
        let mut start = self.prefix.clone();
        loop {
            let page = self
                .kv
                .scan_prefix(&self.prefix, &start, 1)
                .await
                .map_err(unavailable)?;
            let Some(kv) = page.into_iter().next() else {
                break;
            };
            let rest = &kv.key[self.prefix.len()..];
            match rest.split_once('/') {
                Some((name, _)) if validate::collection_name(name).is_ok() => {
                    names.push(name.to_owned());
                    // '0' follows '/': the first key after every `{name}/...` key.
                    start = format!("{}{name}0", self.prefix);
                }
                // A lock key or a foreign key: step over it.
                _ => start = format!("{}\0", kv.key),
            }
        }
        Ok(names)
    }
}

/// A stored document, or None (with a warning) for a value that is not a JSON object
/// (something else wrote under our prefix): such keys are not documents.
fn decode(kv: &KeyValue) -> Option<Arc<Value>> {
    match serde_json::from_slice::<Value>(&kv.value) {
        Ok(doc @ Value::Object(_)) => Some(Arc::new(doc)),
        Ok(_) | Err(_) => {
            tracing::warn!(key = %kv.key, "docstore: skipping a stored value that is not a JSON object");
            None
        }
    }
}

fn encode(doc: &Value) -> Result<Vec<u8>, DocError> {
    let bytes = serde_json::to_vec(doc)
        .map_err(|err| DocError::Invalid(format!("document cannot be encoded: {err}")))?;
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(DocError::Invalid(format!(
            "document of {} bytes is larger than {MAX_DOCUMENT_BYTES}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn unavailable(err: StoreError) -> DocError {
    DocError::Unavailable(err.to_string())
}

fn busy(collection: &str) -> DocError {
    DocError::Unavailable(format!(
        "collection {collection}: too much contention, gave up after {} s",
        CONTENTION_DEADLINE.as_secs()
    ))
}

/// 1 to 20 ms, growing with the attempt, jittered so that racing callers spread out.
fn backoff(attempt: u32) -> Duration {
    let jitter = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        % 1000;
    let base_ms = u64::from(attempt.min(10)) * 2;
    Duration::from_micros(1000 * base_ms.max(1) + u64::from(jitter) * (base_ms.max(1)))
}

fn check_sort(options: &FindOptions) -> Result<(), DocError> {
    if let Some(path) = &options.sort_by {
        validate::field_path(path)?;
    }
    Ok(())
}

/// `docs` ordered by `path` (stable: ties keep insertion order in both directions).
fn sort_docs(docs: Vec<Arc<Value>>, path: &str, descending: bool) -> Vec<Arc<Value>> {
    let mut keyed: Vec<(SortKey<'_>, usize)> = docs
        .iter()
        .enumerate()
        .map(|(i, doc)| (matcher::sort_key(doc, path, descending), i))
        .collect();
    keyed.sort_by(|a, b| {
        let order = matcher::cmp_sort_keys(a.0, b.0);
        if descending { order.reverse() } else { order }
    });
    keyed.into_iter().map(|(_, i)| docs[i].clone()).collect()
}

#[async_trait]
impl DocStore for EmbeddedDocStore {
    async fn insert_many(&self, collection: &str, docs: Vec<Value>) -> Result<(), DocError> {
        validate::collection_name(collection)?;
        let mut writes = Vec::with_capacity(docs.len());
        for doc in &docs {
            validate::document(doc)?;
            writes.push(encode(doc)?);
        }
        // Keys are taken in input order before writing in parallel: insertion order is the
        // order of `docs`.
        let writes: Vec<(String, Vec<u8>, Value)> = writes
            .into_iter()
            .zip(docs)
            .map(|(bytes, doc)| (self.new_key(collection), bytes, doc))
            .collect();
        futures::stream::iter(writes)
            .map(|(key, bytes, doc)| async move {
                let revision = self.create(&key, bytes).await?;
                // Looked up after the write (see `existing_mirror`).
                if let Some(mirror) = self.existing_mirror(collection) {
                    mirror.apply(&key, revision, Some(Arc::new(doc)));
                }
                Ok::<(), DocError>(())
            })
            .buffer_unordered(WRITE_PARALLELISM)
            .try_collect::<()>()
            .await
    }

    async fn find(
        &self,
        collection: &str,
        filter: &Filter,
        options: &FindOptions,
    ) -> Result<Vec<Value>, DocError> {
        validate::collection_name(collection)?;
        validate::filter(filter)?;
        check_sort(options)?;
        if options.limit == Some(0) {
            return Ok(Vec::new());
        }
        let mirror = self.mirror(collection).await?;
        let docs = match &options.sort_by {
            // Insertion order: the first `limit` matches are the answer.
            None => mirror.select(filter, options.limit),
            Some(path) => {
                let mut docs = sort_docs(mirror.select(filter, None), path, options.descending);
                if let Some(limit) = options.limit {
                    docs.truncate(limit);
                }
                docs
            }
        };
        // Callers own what they get: copies of the shared documents.
        Ok(docs.iter().map(|doc| Value::clone(doc)).collect())
    }

    async fn upsert(
        &self,
        collection: &str,
        filter: &Filter,
        doc: Value,
    ) -> Result<bool, DocError> {
        validate::collection_name(collection)?;
        validate::filter(filter)?;
        validate::document(&doc)?;
        let bytes = encode(&doc)?;
        let doc = Arc::new(doc);
        let mirror = self.mirror(collection).await?;
        let deadline = Instant::now() + CONTENTION_DEADLINE;
        let mut attempt = 0;
        loop {
            mirror.ensure_live(&self.kv).await?;
            match mirror.first_match(filter) {
                Some((key, revision, _)) => {
                    if self
                        .replace(&mirror, &key, revision, doc.clone(), bytes.clone())
                        .await?
                    {
                        return Ok(true);
                    }
                }
                None => {
                    if self
                        .create_locked(&mirror, collection, filter, &doc, bytes.clone(), deadline)
                        .await?
                        .is_some()
                    {
                        return Ok(false);
                    }
                }
            }
            attempt += 1;
            if Instant::now() >= deadline {
                return Err(busy(collection));
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
    }

    async fn delete_many(&self, collection: &str, filter: &Filter) -> Result<u64, DocError> {
        validate::collection_name(collection)?;
        validate::filter(filter)?;
        let deadline = Instant::now() + CONTENTION_DEADLINE;
        let mirror = self.mirror(collection).await?;
        let selected = mirror.matching_keys(filter);
        futures::stream::iter(selected)
            .map(|(key, revision)| {
                self.delete_one(&mirror, key, revision, filter, deadline, collection)
            })
            .buffer_unordered(WRITE_PARALLELISM)
            .try_fold(
                0,
                |deleted, one| async move { Ok(deleted + u64::from(one)) },
            )
            .await
    }

    async fn increment(
        &self,
        collection: &str,
        filter: &Filter,
        base: Value,
        field: &str,
        delta: i64,
        floor: i64,
    ) -> Result<Value, DocError> {
        validate::collection_name(collection)?;
        validate::filter(filter)?;
        let path = validate::field_path(field)?;
        validate::document(&base)?;
        // Checked first, whether or not a document exists: the same call fails the same way.
        let (created, _) = matcher::created_counter_doc(&base, filter, &path, delta, floor)?;
        let created_bytes = encode(&created)?;
        let created = Arc::new(created);
        let mirror = self.mirror(collection).await?;
        let deadline = Instant::now() + CONTENTION_DEADLINE;
        let mut attempt = 0;
        loop {
            mirror.ensure_live(&self.kv).await?;
            match mirror.first_match(filter) {
                Some((key, revision, stored)) => {
                    let current = matcher::counter_value(&stored, &path)?;
                    let next = matcher::next_counter(current, delta, floor)?;
                    let mut doc = Value::clone(&stored);
                    if let Value::Object(map) = &mut doc {
                        matcher::set_path(map, &path, Value::from(next))?;
                    }
                    let bytes = encode(&doc)?;
                    let doc = Arc::new(doc);
                    if self
                        .replace(&mirror, &key, revision, doc.clone(), bytes)
                        .await?
                    {
                        return Ok(Value::clone(&doc));
                    }
                }
                None => {
                    if self
                        .create_locked(
                            &mirror,
                            collection,
                            filter,
                            &created,
                            created_bytes.clone(),
                            deadline,
                        )
                        .await?
                        .is_some()
                    {
                        return Ok(Value::clone(&created));
                    }
                }
            }
            attempt += 1;
            if Instant::now() >= deadline {
                return Err(busy(collection));
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
    }

    async fn collections(&self) -> Result<Vec<String>, DocError> {
        let mut names = self.collection_names().await?;
        names.sort();
        Ok(names)
    }

    async fn health(&self) -> Result<(), DocError> {
        self.kv.health().await.map_err(unavailable)
    }

    fn kind(&self) -> &'static str {
        "embedded"
    }
}

#[cfg(test)]
#[path = "embedded_tests.rs"]
mod tests;

//! The shared datastore of the platform (D6.7 4.2.2: "the Datastore is based on etcd").
//!
//! Layout:
//! - [`KvStore`]: the backend trait: revisioned keys, compare-and-swap, prefix list,
//!   prefix watch from a revision, leases. Semantics are those of etcd v3.
//! - [`EtcdStore`](etcd_store::EtcdStore): the etcd v3 adapter (`etcd-client`).
//! - [`EmbeddedStore`](embedded::EmbeddedStore): an in-process store with the same revision and
//!   watch semantics, persisted to a write-ahead log with group commit (a write that returned is
//!   on disk).
//! - [`TypedStore`](typed::TypedStore): JSON objects of one Rust type under one key prefix.
//! - [`DatastoreConfig`] / [`open_store`]: the configured backend as `Arc<dyn KvStore>`.
//! - `contract`: the one test suite both backends must pass.

use std::fmt;
use std::pin::Pin;

use async_trait::async_trait;
use futures::Stream;

pub mod config;
pub mod embedded;
pub mod etcd_store;
pub mod typed;

#[cfg(any(test, feature = "contract-suite"))]
pub mod contract;

pub use config::{Backend, DatastoreConfig, open_store};
pub use embedded::{EmbeddedOptions, EmbeddedStore};
pub use etcd_store::EtcdStore;
pub use typed::{TypedCas, TypedStore, Versioned};

/// A store-wide, strictly increasing revision (etcd's `header.revision`/`mod_revision`).
pub type Revision = i64;
/// A lease id (etcd lease id); 0 means "no lease".
pub type LeaseId = i64;

/// One stored key with its revision metadata (etcd's `mvccpb.KeyValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// Revision of the write that created the key (reset after a delete).
    pub create_revision: Revision,
    /// Revision of the last write of the key.
    pub mod_revision: Revision,
    /// Number of writes since creation (1 after the create).
    pub version: i64,
    /// Lease the key is attached to, 0 for none.
    pub lease: LeaseId,
}

/// A change seen by a watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// A put: the key's new state (its `mod_revision` is the event revision).
    Put(KeyValue),
    /// A delete (explicit or by lease expiry) at `revision`.
    Delete { key: String, revision: Revision },
}

impl WatchEvent {
    pub fn key(&self) -> &str {
        match self {
            WatchEvent::Put(kv) => &kv.key,
            WatchEvent::Delete { key, .. } => key,
        }
    }

    pub fn revision(&self) -> Revision {
        match self {
            WatchEvent::Put(kv) => kv.mod_revision,
            WatchEvent::Delete { revision, .. } => *revision,
        }
    }
}

/// Watch events in revision order; an `Err` item ends the stream.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, StoreError>> + Send>>;

/// The condition of a compare-and-swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The key must not exist.
    Absent,
    /// The key must exist with exactly this `mod_revision`.
    ModRevision(Revision),
}

/// What a compare-and-swap did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasOutcome {
    /// The write happened at this revision.
    Written(Revision),
    /// The condition failed; the current state of the key (None if absent).
    Conflict(Option<KeyValue>),
}

/// A range read: the matching keys (sorted by key) and the store revision they were read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListResult {
    pub kvs: Vec<KeyValue>,
    pub revision: Revision,
}

/// Why a store call failed. Callers branch on the kind.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached (etcd down, connection refused, timeout). Maps to 503.
    #[error("datastore unavailable: {0}")]
    Unavailable(String),
    /// A watch asked for a revision older than the retained history. The caller re-lists.
    #[error("requested revision {requested} has been compacted (oldest retained {oldest})")]
    Compacted {
        requested: Revision,
        oldest: Revision,
    },
    /// A lease that does not exist (or expired).
    #[error("lease {0} not found")]
    LeaseNotFound(LeaseId),
    /// The value could not be (de)serialised by the typed layer.
    #[error("stored value at {key} is not valid: {message}")]
    Corrupt { key: String, message: String },
    /// Local persistence failed (embedded store).
    #[error("datastore i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// Anything else the backend reported.
    #[error("datastore error: {0}")]
    Backend(String),
}

/// The backend trait: etcd v3 semantics.
///
/// Revisions: every successful write (put, delete of an existing key, lease expiry deleting keys)
/// increases the store revision by one; a transaction writing several keys would share one, but
/// this trait only writes one key per call. The first write of an empty store has revision 2
/// (etcd starts at 1), and both backends agree on that.
#[async_trait]
pub trait KvStore: Send + Sync + fmt::Debug {
    /// Reads one key.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;
    /// Writes a key unconditionally; `lease` 0 for none. Returns the revision of the write.
    async fn put(&self, key: &str, value: Vec<u8>, lease: LeaseId) -> Result<Revision, StoreError>;
    /// Writes a key only if `expect` holds (atomically).
    async fn compare_and_swap(
        &self,
        key: &str,
        expect: Expect,
        value: Vec<u8>,
        lease: LeaseId,
    ) -> Result<CasOutcome, StoreError>;
    /// Deletes a key; returns its last state, or None if it did not exist (no revision used).
    async fn delete(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;
    /// Deletes a key only if its `mod_revision` matches; Conflict carries the current state.
    async fn compare_and_delete(
        &self,
        key: &str,
        mod_revision: Revision,
    ) -> Result<CasOutcome, StoreError>;
    /// Deletes every key under a prefix; returns how many were deleted.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, StoreError>;
    /// Lists every key under a prefix, sorted by key.
    async fn list_prefix(&self, prefix: &str) -> Result<ListResult, StoreError>;
    /// Lists at most `limit` keys under `prefix` that are >= `start`, sorted by key (pages of a
    /// large prefix, e.g. the objects of a bucket).
    async fn scan_prefix(
        &self,
        prefix: &str,
        start: &str,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError>;
    /// Watches every key under a prefix. With `start_revision` = Some(r) the stream first replays
    /// every event with revision >= r (Compacted if r is older than the retained history), then
    /// follows live changes; with None it starts after the current revision.
    async fn watch_prefix(
        &self,
        prefix: &str,
        start_revision: Option<Revision>,
    ) -> Result<WatchStream, StoreError>;
    /// Grants a lease of `ttl_secs` seconds.
    async fn grant_lease(&self, ttl_secs: i64) -> Result<LeaseId, StoreError>;
    /// Renews a lease for its full TTL; LeaseNotFound once it expired.
    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError>;
    /// Revokes a lease, deleting its keys.
    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError>;
    /// Checks that the backend answers (for `/ready`).
    async fn health(&self) -> Result<(), StoreError>;
}

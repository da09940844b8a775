//! JSON objects of one type under one key prefix, with their revisions.
//!
//! Services store each object as `prefix + id` with a JSON value. Optimistic concurrency goes
//! through `mod_revision`: read, modify, then `update(id, value, read.mod_revision)`; a
//! `Conflict` carries the current object so the caller can retry or report 409.

use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{CasOutcome, Expect, KeyValue, KvStore, Revision, StoreError};

/// An object with the revisions of its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    pub value: T,
    /// Revision of the last write (pass it to `update`/`compare_and_delete`).
    pub mod_revision: Revision,
    /// Revision of the write that created the object.
    pub create_revision: Revision,
}

/// What a conditional typed write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypedCas<T> {
    /// Written at this revision.
    Written(Revision),
    /// The condition failed; the current object (None if absent).
    Conflict(Option<Versioned<T>>),
}

/// Objects of type `T` stored as JSON under `prefix`.
pub struct TypedStore<T> {
    store: Arc<dyn KvStore>,
    prefix: String,
    // fn() -> T: the store neither owns a T nor cares about T's auto traits.
    _marker: PhantomData<fn() -> T>,
}

// Manual impls: a derive would require `T: Clone` / `T: Debug`.
impl<T> Clone for TypedStore<T> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            prefix: self.prefix.clone(),
            _marker: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for TypedStore<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedStore")
            .field("prefix", &self.prefix)
            .field("store", &self.store)
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned + Send + Sync> TypedStore<T> {
    pub fn new(store: Arc<dyn KvStore>, prefix: impl Into<String>) -> Self {
        Self {
            store,
            prefix: prefix.into(),
            _marker: PhantomData,
        }
    }

    /// The key of object `id`: `prefix + id`.
    pub fn key_of(&self, id: &str) -> String {
        format!("{}{}", self.prefix, id)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The untyped store (for watches and leases).
    pub fn kv(&self) -> &Arc<dyn KvStore> {
        &self.store
    }

    /// Decodes a stored key-value (e.g. from a watch event) into an object.
    pub fn decode(&self, kv: &KeyValue) -> Result<Versioned<T>, StoreError> {
        decode(kv)
    }

    pub async fn get(&self, id: &str) -> Result<Option<Versioned<T>>, StoreError> {
        self.store
            .get(&self.key_of(id))
            .await?
            .map(|kv| decode(&kv))
            .transpose()
    }

    /// Creates the object; Conflict (with the current object) if it already exists.
    pub async fn create(&self, id: &str, value: &T) -> Result<TypedCas<T>, StoreError> {
        let key = self.key_of(id);
        let bytes = encode(&key, value)?;
        let out = self
            .store
            .compare_and_swap(&key, Expect::Absent, bytes, 0)
            .await?;
        typed_outcome(out)
    }

    /// Replaces the object if its `mod_revision` is still `expected_mod_revision`.
    pub async fn update(
        &self,
        id: &str,
        value: &T,
        expected_mod_revision: Revision,
    ) -> Result<TypedCas<T>, StoreError> {
        let key = self.key_of(id);
        let bytes = encode(&key, value)?;
        let out = self
            .store
            .compare_and_swap(&key, Expect::ModRevision(expected_mod_revision), bytes, 0)
            .await?;
        typed_outcome(out)
    }

    /// Writes the object unconditionally.
    pub async fn put(&self, id: &str, value: &T) -> Result<Revision, StoreError> {
        let key = self.key_of(id);
        let bytes = encode(&key, value)?;
        self.store.put(&key, bytes, 0).await
    }

    /// Deletes the object; returns what was there. A previous value that does not decode is
    /// still deleted, and reported as `Corrupt`.
    pub async fn delete(&self, id: &str) -> Result<Option<Versioned<T>>, StoreError> {
        self.store
            .delete(&self.key_of(id))
            .await?
            .map(|kv| decode(&kv))
            .transpose()
    }

    /// Deletes the object if its `mod_revision` is still `expected_mod_revision`.
    pub async fn compare_and_delete(
        &self,
        id: &str,
        expected_mod_revision: Revision,
    ) -> Result<TypedCas<T>, StoreError> {
        let out = self
            .store
            .compare_and_delete(&self.key_of(id), expected_mod_revision)
            .await?;
        typed_outcome(out)
    }

    /// Every object under the prefix, in key order.
    pub async fn list(&self) -> Result<Vec<Versioned<T>>, StoreError> {
        self.list_under("").await
    }

    /// Every object under `prefix + sub_prefix`, in key order.
    pub async fn list_under(&self, sub_prefix: &str) -> Result<Vec<Versioned<T>>, StoreError> {
        let res = self.store.list_prefix(&self.key_of(sub_prefix)).await?;
        res.kvs.iter().map(decode).collect()
    }
}

fn encode<T: Serialize>(key: &str, value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        message: format!("cannot serialise: {e}"),
    })
}

fn decode<T: DeserializeOwned>(kv: &KeyValue) -> Result<Versioned<T>, StoreError> {
    let value = serde_json::from_slice(&kv.value).map_err(|e| StoreError::Corrupt {
        key: kv.key.clone(),
        message: e.to_string(),
    })?;
    Ok(Versioned {
        value,
        mod_revision: kv.mod_revision,
        create_revision: kv.create_revision,
    })
}

fn typed_outcome<T: DeserializeOwned>(out: CasOutcome) -> Result<TypedCas<T>, StoreError> {
    Ok(match out {
        CasOutcome::Written(rev) => TypedCas::Written(rev),
        CasOutcome::Conflict(current) => {
            TypedCas::Conflict(current.map(|kv| decode(&kv)).transpose()?)
        }
    })
}

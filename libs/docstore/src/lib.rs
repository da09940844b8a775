//! The operational databases of the telemetry framework (D6.7 4.4.2: "several operational databases
//! ... based on MongoDB"): JSON documents in named collections.
//!
//! - [`DocStore`]: the backend trait (insert, find with a filter, sort and limit, upsert, delete,
//!   atomic counter increment).
//! - `mongo`: MongoDB through the `mongodb` crate.
//! - `embedded`: the default, documents as JSON values in the project datastore (embedded
//!   crash-safe store or etcd).
//! - `config`: [`DocStoreConfig`] and [`open_docstore`], the configured backend.
//! - `contract`: the one suite both must pass.
//!
//! Both backends check their input the same way (collection names `[A-Za-z0-9_.-]{1,120}`, field
//! paths without `$` or empty segments, documents without `$` keys or `_id`) and follow
//! MongoDB's query semantics for the conditions below (documented in `matcher.rs`).

use async_trait::async_trait;
use serde_json::Value;

mod bson_json;
pub mod config;
pub mod embedded;
mod matcher;
pub mod mongo;
mod validate;

#[cfg(any(test, feature = "contract-suite"))]
pub mod contract;

pub use config::{DocStoreConfig, open_docstore};
pub use embedded::EmbeddedDocStore;
pub use mongo::MongoDocStore;

/// One condition on a (dotted) field path of a document.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Field equals the value (numbers compare by value: 1 == 1.0).
    Eq(String, Value),
    /// Field is one of the values.
    In(String, Vec<Value>),
    /// Numeric field strictly below.
    Lt(String, f64),
    /// Numeric field at or above.
    Gte(String, f64),
}

/// All conditions must hold; empty matches every document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter(pub Vec<Condition>);

impl Filter {
    pub fn all() -> Filter {
        Filter(Vec::new())
    }

    pub fn eq(mut self, field: &str, value: impl Into<Value>) -> Filter {
        self.0.push(Condition::Eq(field.to_owned(), value.into()));
        self
    }

    pub fn lt(mut self, field: &str, value: f64) -> Filter {
        self.0.push(Condition::Lt(field.to_owned(), value));
        self
    }

    pub fn gte(mut self, field: &str, value: f64) -> Filter {
        self.0.push(Condition::Gte(field.to_owned(), value));
        self
    }

    /// Adds a condition: `field` is one of `values`.
    pub fn is_in<V: Into<Value>>(
        mut self,
        field: &str,
        values: impl IntoIterator<Item = V>,
    ) -> Filter {
        self.0.push(Condition::In(
            field.to_owned(),
            values.into_iter().map(Into::into).collect(),
        ));
        self
    }
}

/// Sort and limit of a find.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FindOptions {
    /// Sort by this numeric or string field; `descending` reverses. `None`: insertion order.
    pub sort_by: Option<String>,
    pub descending: bool,
    pub limit: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// Not a JSON object, bad collection name, etc.; HTTP 400.
    #[error("invalid document or filter: {0}")]
    Invalid(String),
    /// Backend down or refusing; HTTP 503.
    #[error("operational database unavailable: {0}")]
    Unavailable(String),
}

/// A document backend. Documents are JSON objects; `_id` is never returned.
#[async_trait]
pub trait DocStore: Send + Sync + 'static {
    /// Adds documents to `collection` (created on first use).
    async fn insert_many(&self, collection: &str, docs: Vec<Value>) -> Result<(), DocError>;

    async fn insert(&self, collection: &str, doc: Value) -> Result<(), DocError> {
        self.insert_many(collection, vec![doc]).await
    }

    async fn find(
        &self,
        collection: &str,
        filter: &Filter,
        options: &FindOptions,
    ) -> Result<Vec<Value>, DocError>;

    async fn find_one(&self, collection: &str, filter: &Filter) -> Result<Option<Value>, DocError> {
        let options = FindOptions {
            limit: Some(1),
            ..FindOptions::default()
        };
        Ok(self
            .find(collection, filter, &options)
            .await?
            .into_iter()
            .next())
    }

    /// Replaces the first document matching `filter` with `doc`, or inserts `doc`.
    /// Returns true when a document was replaced.
    async fn upsert(&self, collection: &str, filter: &Filter, doc: Value)
    -> Result<bool, DocError>;

    /// Deletes every matching document; returns how many.
    async fn delete_many(&self, collection: &str, filter: &Filter) -> Result<u64, DocError>;

    /// Atomically adds `delta` to the integer `field` of the document matching `filter`
    /// (created as `base` + field when none matches), never below `floor`; returns the
    /// document after the change.
    async fn increment(
        &self,
        collection: &str,
        filter: &Filter,
        base: Value,
        field: &str,
        delta: i64,
        floor: i64,
    ) -> Result<Value, DocError>;

    /// Every collection name holding at least one document.
    async fn collections(&self) -> Result<Vec<String>, DocError>;

    /// Checks that the backend answers (for `/ready`); `Unavailable` when it does not.
    async fn health(&self) -> Result<(), DocError> {
        Ok(())
    }

    fn kind(&self) -> &'static str;
}

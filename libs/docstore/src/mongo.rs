//! The operational databases in MongoDB (D6.7 4.4.2), through the `mongodb` crate.
//!
//! - **Documents** convert as in `bson_json.rs` (integers as Int64, other numbers as Double, a
//!   u64 above i64::MAX too). The server's `_id` is never returned (projected out, and stripped
//!   where a projection cannot apply).
//! - **Filters** are built from the typed [`Condition`]s only: `{path: {$eq: v}}`,
//!   `{path: {$in: [..]}}`, `{path: {$lt: x}}`, `{path: {$gte: x}}`, joined with `$and`. Paths
//!   and field names were checked by [`crate::validate`] (no `$`, no empty segment), and values
//!   are always BSON values, so user input never becomes an operator. An object value uses the
//!   implicit form `{path: {..}}` (literal equality: its keys cannot start with `$`).
//! - **Order.** No sort: the server's natural order (insertion order for a collection that is
//!   only appended to). A sort adds `_id` ascending as a tie-break.
//! - **increment** is one atomic `findAndModify` with `$inc` when the result cannot go below the
//!   floor; otherwise a compare-and-swap on the counter's old value (`$set` filtered on it), and
//!   an upsert with `$setOnInsert` when no document matches. Creation relies on the server
//!   serialising upserts of one filter: NX-27017 does; a real mongod needs a unique index on the
//!   filter fields for that guarantee (MongoDB's "upsert with a unique index" rule). A counter
//!   that another writer stored as a float stays a float under `$inc` (the embedded store
//!   writes it back as an integer).
//! - **Errors.** Bad input the server rejects (type mismatch, document too large, duplicate
//!   key, ...) is [`DocError::Invalid`]; everything else (connection, timeout, server
//!   selection) is [`DocError::Unavailable`]. Server selection and connecting time out after
//!   5 s unless the URI sets `serverSelectionTimeoutMS` / `connectTimeoutMS`.
//! - The URI may carry a password: it is never logged and [`redact_uri`] hides it in `Debug`.

use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::{Error as MongoError, ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, ReturnDocument};
use mongodb::{Client, Collection, Database};
use serde_json::Value;

use crate::bson_json::{json_to_bson, map_to_document, to_output};
use crate::matcher;
use crate::validate;
use crate::{Condition, DocError, DocStore, Filter, FindOptions};

/// Server selection and connect timeout when the URI sets none: a down server fails calls
/// quickly instead of hanging for the driver's default 30 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an `increment` keeps retrying its compare-and-swap under contention.
const CONTENTION_DEADLINE: Duration = Duration::from_secs(10);

/// Server error codes that mean the request itself is wrong (HTTP 400, not 503).
const INVALID_CODES: &[i32] = &[
    2,     // BadValue
    9,     // FailedToParse
    14,    // TypeMismatch
    15,    // Overflow
    22,    // InvalidBSON
    28,    // PathNotViable
    40,    // ConflictingUpdateOperators
    52,    // DollarPrefixedFieldName
    56,    // EmptyFieldName
    57,    // DottedFieldName
    66,    // ImmutableField
    73,    // InvalidNamespace
    10334, // BSONObjectTooLarge
    11000, // DuplicateKey (a unique index made by an operator)
    17419, // document too large after update
];

/// Documents in one MongoDB database.
#[derive(Clone)]
pub struct MongoDocStore {
    client: Client,
    db: Database,
    database: String,
    redacted_uri: String,
}

impl fmt::Debug for MongoDocStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoDocStore")
            .field("uri", &self.redacted_uri)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl MongoDocStore {
    /// Prepares a client for `uri` (a `mongodb://` connection string; its options apply) and
    /// `database`. Connecting is lazy: this succeeds while the server is down, and calls then
    /// fail with `Unavailable` after the server selection timeout (see [`DocStore::health`]).
    /// A malformed URI or database name is `Invalid`.
    pub async fn connect(uri: &str, database: &str) -> Result<Self, DocError> {
        database_name(database)?;
        let mut options = ClientOptions::parse(uri).await.map_err(|err| {
            DocError::Invalid(format!(
                "MongoDB connection string: {}",
                scrub(&err.to_string(), uri)
            ))
        })?;
        options
            .server_selection_timeout
            .get_or_insert(DEFAULT_TIMEOUT);
        options.connect_timeout.get_or_insert(DEFAULT_TIMEOUT);
        options
            .app_name
            .get_or_insert_with(|| "serrano-docstore".to_owned());
        let client = Client::with_options(options).map_err(|err| {
            DocError::Invalid(format!(
                "MongoDB client options: {}",
                scrub(&err.to_string(), uri)
            ))
        })?;
        let redacted_uri = redact_uri(uri);
        tracing::debug!(uri = %redacted_uri, database, "docstore: MongoDB client ready");
        Ok(Self {
            db: client.database(database),
            client,
            database: database.to_owned(),
            redacted_uri,
        })
    }

    /// The database name.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The driver's client (e.g. to drop a test database).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn collection(&self, name: &str) -> Result<Collection<Document>, DocError> {
        validate::collection_name(name)?;
        Ok(self.db.collection(name))
    }
}

/// A MongoDB database name: 1 to 63 bytes, none of `/\. "$*<>:|?` or NUL.
fn database_name(name: &str) -> Result<(), DocError> {
    if name.is_empty() || name.len() > 63 {
        return Err(DocError::Invalid(
            "MongoDB database name must have 1 to 63 bytes".to_owned(),
        ));
    }
    if name.chars().any(|c| "/\\. \"$*<>:|?\0".contains(c)) {
        return Err(DocError::Invalid(format!(
            "MongoDB database name {name:?} contains a forbidden character"
        )));
    }
    Ok(())
}

/// `uri` with the password of its user info replaced by `***` (for logs and `Debug`).
/// Everything up to the last `@` is treated as user info, so a malformed URI leaks no more.
pub fn redact_uri(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        // Not a URI at all: it could be anything, show nothing.
        return "<unparsable MongoDB URI>".to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{hosts}")
            } else {
                format!("{scheme}://{user}@{hosts}")
            }
        }
        None => uri.to_owned(),
    }
}

/// The password of a URI, raw as written.
fn password_of(uri: &str) -> Option<&str> {
    let (_, rest) = uri.split_once("://")?;
    let (userinfo, _) = rest.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

/// A driver message with the URI's password (raw or percent-decoded) removed, in case the
/// driver echoed it.
fn scrub(message: &str, uri: &str) -> String {
    let mut out = message.to_owned();
    if let Some(password) = password_of(uri) {
        out = out.replace(password, "***");
        let decoded = percent_decode(password);
        if !decoded.is_empty() {
            out = out.replace(&decoded, "***");
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            )
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The MongoDB filter of a validated [`Filter`] plus extra clauses.
fn filter_document(filter: &Filter, extra: Vec<Document>) -> Document {
    let mut clauses: Vec<Document> = filter.0.iter().map(condition_document).collect();
    clauses.extend(extra);
    match clauses.len() {
        0 => Document::new(),
        1 => clauses.pop().unwrap_or_default(),
        _ => doc! { "$and": clauses.into_iter().map(Bson::Document).collect::<Vec<Bson>>() },
    }
}

fn condition_document(condition: &Condition) -> Document {
    let mut clause = Document::new();
    match condition {
        // Literal equality; the object's keys were checked not to start with `$`.
        Condition::Eq(path, value @ Value::Object(_)) => {
            clause.insert(path.clone(), json_to_bson(value));
        }
        Condition::Eq(path, value) => {
            clause.insert(path.clone(), doc! { "$eq": json_to_bson(value) });
        }
        Condition::In(path, values) => {
            let values: Vec<Bson> = values.iter().map(json_to_bson).collect();
            clause.insert(path.clone(), doc! { "$in": values });
        }
        Condition::Lt(path, bound) => {
            clause.insert(path.clone(), doc! { "$lt": *bound });
        }
        Condition::Gte(path, bound) => {
            clause.insert(path.clone(), doc! { "$gte": *bound });
        }
    }
    clause
}

fn no_id() -> Document {
    doc! { "_id": 0 }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

fn server_code(err: &MongoError) -> Option<i32> {
    match err.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => Some(e.code),
        ErrorKind::Command(e) => Some(e.code),
        ErrorKind::InsertMany(e) => e
            .write_errors
            .as_ref()
            .and_then(|errors| errors.first())
            .map(|e| e.code),
        _ => None,
    }
}

fn mongo_err(err: MongoError) -> DocError {
    let invalid = match err.kind.as_ref() {
        ErrorKind::InvalidArgument { .. }
        | ErrorKind::BsonSerialization(_)
        | ErrorKind::Bson(_) => true,
        _ => server_code(&err).is_some_and(|code| INVALID_CODES.contains(&code)),
    };
    if invalid {
        DocError::Invalid(format!("MongoDB refused the request: {err}"))
    } else {
        DocError::Unavailable(format!("MongoDB: {err}"))
    }
}

// ---------------------------------------------------------------------------------------------
// The trait
// ---------------------------------------------------------------------------------------------

#[async_trait]
impl DocStore for MongoDocStore {
    async fn insert_many(&self, collection: &str, docs: Vec<Value>) -> Result<(), DocError> {
        let coll = self.collection(collection)?;
        let mut documents = Vec::with_capacity(docs.len());
        for doc in &docs {
            documents.push(map_to_document(validate::document(doc)?));
        }
        if documents.is_empty() {
            return Ok(());
        }
        coll.insert_many(documents).await.map_err(mongo_err)?;
        Ok(())
    }

    async fn find(
        &self,
        collection: &str,
        filter: &Filter,
        options: &FindOptions,
    ) -> Result<Vec<Value>, DocError> {
        let coll = self.collection(collection)?;
        validate::filter(filter)?;
        let sort = match &options.sort_by {
            Some(path) => {
                validate::field_path(path)?;
                let direction = if options.descending { -1 } else { 1 };
                let mut sort = Document::new();
                sort.insert(path.clone(), direction);
                sort.insert("_id", 1);
                Some(sort)
            }
            None => None,
        };
        // MongoDB's limit 0 means "no limit"; ours means nothing.
        if options.limit == Some(0) {
            return Ok(Vec::new());
        }
        let mut find = coll
            .find(filter_document(filter, Vec::new()))
            .projection(no_id());
        if let Some(sort) = sort {
            find = find.sort(sort);
        }
        if let Some(limit) = options.limit {
            find = find.limit(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        let documents: Vec<Document> = find
            .await
            .map_err(mongo_err)?
            .try_collect()
            .await
            .map_err(mongo_err)?;
        Ok(documents.into_iter().map(to_output).collect())
    }

    async fn upsert(
        &self,
        collection: &str,
        filter: &Filter,
        doc: Value,
    ) -> Result<bool, DocError> {
        let coll = self.collection(collection)?;
        validate::filter(filter)?;
        let replacement = map_to_document(validate::document(&doc)?);
        let result = coll
            .replace_one(filter_document(filter, Vec::new()), replacement)
            .upsert(true)
            .await
            .map_err(mongo_err)?;
        Ok(result.matched_count > 0)
    }

    async fn delete_many(&self, collection: &str, filter: &Filter) -> Result<u64, DocError> {
        let coll = self.collection(collection)?;
        validate::filter(filter)?;
        let result = coll
            .delete_many(filter_document(filter, Vec::new()))
            .await
            .map_err(mongo_err)?;
        Ok(result.deleted_count)
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
        let coll = self.collection(collection)?;
        validate::filter(filter)?;
        let path = validate::field_path(field)?;
        validate::document(&base)?;
        let (created, _) = matcher::created_counter_doc(&base, filter, &path, delta, floor)?;

        // Fast path: one atomic $inc, when the counter exists and the result stays within
        // [floor, i64::MAX] (the bounds are in the filter, so the check and the change are one
        // server operation).
        if let Some(lowest) = floor.checked_sub(delta) {
            let mut bounds = doc! { "$gte": lowest };
            if delta > 0 {
                bounds.insert("$lte", i64::MAX - delta);
            }
            let mut clause = Document::new();
            clause.insert(field, bounds);
            let mut inc = Document::new();
            inc.insert(field, delta);
            let updated = coll
                .find_one_and_update(filter_document(filter, vec![clause]), doc! { "$inc": inc })
                .projection(no_id())
                .return_document(ReturnDocument::After)
                .await
                .map_err(mongo_err)?;
            if let Some(document) = updated {
                return Ok(to_output(document));
            }
        }

        // Slow path: create, or compare-and-swap on the value read.
        let deadline = Instant::now() + CONTENTION_DEADLINE;
        let mut attempt: u32 = 0;
        loop {
            let current = coll
                .find_one(filter_document(filter, Vec::new()))
                .await
                .map_err(mongo_err)?;
            match current {
                None => {
                    let result = coll
                        .update_one(
                            filter_document(filter, Vec::new()),
                            doc! { "$setOnInsert": json_to_bson(&created) },
                        )
                        .upsert(true)
                        .await
                        .map_err(mongo_err)?;
                    if result.upserted_id.is_some() {
                        return Ok(created);
                    }
                }
                Some(document) => {
                    let id = document.get(validate::ID_FIELD).cloned().ok_or_else(|| {
                        DocError::Unavailable("MongoDB document without _id".to_owned())
                    })?;
                    let json = to_output(document);
                    let value = matcher::counter_value(&json, &path)?;
                    let next = matcher::next_counter(value, delta, floor)?;
                    // The counter's old value, exactly as stored (missing, or its BSON number).
                    let old = path_value(&json, &path);
                    let mut unchanged = Document::new();
                    match old {
                        Some(old) => unchanged.insert(field, doc! { "$eq": json_to_bson(old) }),
                        None => unchanged.insert(field, doc! { "$exists": false }),
                    };
                    let mut set = Document::new();
                    set.insert(field, next);
                    let updated = coll
                        .find_one_and_update(
                            doc! { "$and": [ { "_id": id }, unchanged ] },
                            doc! { "$set": set },
                        )
                        .projection(no_id())
                        .return_document(ReturnDocument::After)
                        .await
                        .map_err(mongo_err)?;
                    if let Some(document) = updated {
                        return Ok(to_output(document));
                    }
                }
            }
            attempt += 1;
            if Instant::now() >= deadline {
                return Err(DocError::Unavailable(format!(
                    "collection {collection}: too much contention on the counter, gave up after {} s",
                    CONTENTION_DEADLINE.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(u64::from(attempt.min(10)))).await;
        }
    }

    async fn collections(&self) -> Result<Vec<String>, DocError> {
        let names = self.db.list_collection_names().await.map_err(mongo_err)?;
        let mut out = Vec::new();
        for name in names {
            if validate::collection_name(&name).is_err() {
                continue;
            }
            // MongoDB keeps a collection after its last document is deleted; the trait lists
            // only collections holding documents.
            let any = self
                .db
                .collection::<Document>(&name)
                .find_one(Document::new())
                .projection(doc! { "_id": 1 })
                .await
                .map_err(mongo_err)?;
            if any.is_some() {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    async fn health(&self) -> Result<(), DocError> {
        self.db
            .run_command(doc! { "ping": 1 })
            .await
            .map_err(|err| DocError::Unavailable(format!("MongoDB: {err}")))?;
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "mongodb"
    }
}

/// The value at `path` through objects only (None when missing).
fn path_value<'a>(doc: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(doc, |current, segment| current.as_object()?.get(*segment))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn uri_redaction() {
        assert_eq!(
            redact_uri("mongodb://user:s3cret@db1:27017,db2/ops?authSource=admin"),
            "mongodb://user:***@db1:27017,db2/ops?authSource=admin"
        );
        assert_eq!(
            redact_uri("mongodb://127.0.0.1:27017"),
            "mongodb://127.0.0.1:27017"
        );
        assert_eq!(redact_uri("mongodb://user@h"), "mongodb://user@h");
        // An unencoded '@' in the password: everything up to the last '@' is hidden.
        assert_eq!(redact_uri("mongodb://u:p@ss@h/"), "mongodb://u:***@h/");
        assert_eq!(redact_uri("u:pw@h"), "<unparsable MongoDB URI>");
        assert_eq!(
            scrub("bad pass s3cr%t", "mongodb://u:s3cr%25t@h"),
            "bad pass ***"
        );
        assert_eq!(scrub("x s3cret y", "mongodb://u:s3cret@h"), "x *** y");
    }

    #[test]
    fn filters_keep_values_as_values() {
        let filter = Filter::all()
            .eq("a.b", "$where")
            .eq("o", json!({"k": 1}))
            .is_in("t", [json!(1), json!("x")])
            .lt("ts", 5.0)
            .gte("ts", 1.0);
        let document = filter_document(&filter, Vec::new());
        assert_eq!(
            document,
            doc! { "$and": [
                { "a.b": { "$eq": "$where" } },
                { "o": { "k": 1_i64 } },
                { "t": { "$in": [1_i64, "x"] } },
                { "ts": { "$lt": 5.0 } },
                { "ts": { "$gte": 1.0 } },
            ] }
        );
        assert_eq!(
            filter_document(&Filter::all().eq("a", 1), Vec::new()),
            doc! { "a": { "$eq": 1_i64 } }
        );
        assert_eq!(filter_document(&Filter::all(), Vec::new()), Document::new());
    }

    #[test]
    fn database_names() {
        assert!(database_name("serrano_ops").is_ok());
        for bad in ["", "a.b", "a b", "a/b", "a$", &"x".repeat(64)] {
            assert!(database_name(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn bad_uri_is_invalid_and_hides_the_password() {
        match MongoDocStore::connect("mongodb://u:hunter2@h:notaport/", "db").await {
            Err(DocError::Invalid(message)) => assert!(!message.contains("hunter2"), "{message}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
        assert!(matches!(
            MongoDocStore::connect("http://h", "db").await,
            Err(DocError::Invalid(_))
        ));
        assert!(matches!(
            MongoDocStore::connect("mongodb://h", "bad.db").await,
            Err(DocError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn down_server_is_unavailable_quickly() {
        // Nothing listens on port 1.
        let store = MongoDocStore::connect(
            "mongodb://u:hunter2@127.0.0.1:1/?serverSelectionTimeoutMS=500&connectTimeoutMS=500",
            "db",
        )
        .await
        .unwrap();
        assert!(!format!("{store:?}").contains("hunter2"));
        let started = Instant::now();
        assert!(matches!(
            store.health().await,
            Err(DocError::Unavailable(_))
        ));
        match store.insert("c", json!({"a": 1})).await {
            Err(DocError::Unavailable(message)) => assert!(!message.contains("hunter2")),
            other => panic!("expected Unavailable, got {other:?}"),
        }
        assert!(matches!(
            store
                .find("c", &Filter::all(), &FindOptions::default())
                .await,
            Err(DocError::Unavailable(_))
        ));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        // Bad input is Invalid before any I/O.
        assert!(matches!(
            store.insert("c", json!([1])).await,
            Err(DocError::Invalid(_))
        ));
        assert!(matches!(
            store
                .find("c", &Filter::all().eq("$where", 1), &FindOptions::default())
                .await,
            Err(DocError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn default_timeouts_apply() {
        let started = Instant::now();
        let store = MongoDocStore::connect("mongodb://127.0.0.1:1", "db")
            .await
            .unwrap();
        assert!(matches!(
            store.health().await,
            Err(DocError::Unavailable(_))
        ));
        let waited = started.elapsed();
        assert!(
            waited < DEFAULT_TIMEOUT + Duration::from_secs(3),
            "{waited:?}"
        );
    }
}

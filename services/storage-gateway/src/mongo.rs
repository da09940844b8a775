//! Gateway metadata in MongoDB: [`MongoMetadata`] implements [`MetadataStore`] with the same
//! semantics as [`KvMetadata`](crate::meta::KvMetadata) (the contract suite in
//! [`meta_contract`](crate::meta_contract) runs against both).
//!
//! Layout, one database with five collections:
//!
//! | collection | `_id` | other fields | indexes |
//! |---|---|---|---|
//! | `buckets` | hex of the name | `record` | `_id` |
//! | `objects` | (generated) | `bucket`, `key_hex`, `record` | unique `(bucket, key_hex)` |
//! | `uploads` | (generated) | `bucket`, `upload_id`, `key_hex`, `initiated_ms`, `upload_hex`, `record` | unique `(bucket, upload_id)`; `(bucket, key_hex, initiated_ms, upload_hex)` |
//! | `parts` | (generated) | `upload_id`, `number`, `record` | unique `(upload_id, number)` |
//! | `reclaims` | data id, hyphenated lower-case hex | `record` | `_id` |
//!
//! - **Order.** Keys, bucket names and upload ids sort by their UTF-8 bytes (what S3 listings
//!   need), never by a locale collation: the fields that order or page are the lower-case hex of
//!   the bytes (`key_hex`, ...). Hex of fixed width per byte keeps byte order (also for a key that
//!   is a prefix of another) and is plain ASCII, so any server collation compares it the same.
//!   A 1 KiB S3 key makes a 2 KiB index entry: fine for MongoDB >= 4.2 (no index key limit).
//! - **Records** are the same JSON as in the key-value store, kept in a string field `record`,
//!   not as a native BSON document: BSON has no unsigned 64-bit integer (sizes and anything
//!   `u64` above `i64::MAX` would not round-trip), and user metadata names are arbitrary header
//!   tokens that may contain `.` or start with `$`, which MongoDB field names cannot carry safely.
//!   The indexed fields beside it are derived from the record on every write.
//! - **Atomicity.** Every write is one single-document operation: `findAndModify` with upsert
//!   returning the document before for `put_object`/`put_part` (the replaced record is known
//!   exactly), an insert with duplicate-key detection for `create_bucket`. Two upserts racing on
//!   a new key can make one fail with a duplicate key error on the unique index; it is retried
//!   (it then replaces the winner's record and returns it). This needs `findAndModify` to be
//!   atomic per document, as it is in mongod (the contract suite races writers to check it):
//!   SecantusDB 0.7.0b3 is not (concurrent callers get the same "before" document), which is
//!   why the test server of `scripts/infra` is NX-27017.
//! - **Errors.** A failure of the driver or the server is [`MetaError::Unavailable`]; a stored
//!   document whose record is missing or is not the expected JSON is [`MetaError::Corrupt`].

use std::fmt;

use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{Document, doc};
use mongodb::error::{Error as MongoError, ErrorKind, WriteFailure};
use mongodb::options::{IndexOptions, ReturnDocument};
use mongodb::{Client, Collection, IndexModel};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::meta::{
    BucketMeta, Created, MetaError, MetadataStore, ObjectMeta, Part, Reclaim, Upload,
};

const BUCKETS: &str = "buckets";
const OBJECTS: &str = "objects";
const UPLOADS: &str = "uploads";
const PARTS: &str = "parts";
const RECLAIMS: &str = "reclaims";

/// MongoDB's duplicate key error code (`E11000`).
const DUPLICATE_KEY: i32 = 11000;
/// How often an upsert that lost a race on a new key (duplicate key error) is retried.
const UPSERT_RETRIES: usize = 5;

/// Metadata in one MongoDB database (a replica set or a standalone server).
#[derive(Clone)]
pub struct MongoMetadata {
    database: String,
    buckets: Collection<Document>,
    objects: Collection<Document>,
    uploads: Collection<Document>,
    parts: Collection<Document>,
    reclaims: Collection<Document>,
}

impl fmt::Debug for MongoMetadata {
    // Never the URI: it may carry credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoMetadata")
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl MongoMetadata {
    /// Connects to the server(s) of `uri` (a `mongodb://` connection string: its options, e.g.
    /// `serverSelectionTimeoutMS`, `replicaSet` or `directConnection`, apply) and makes sure the
    /// collections of `database` have their indexes. Fails with [`MetaError::Unavailable`] when
    /// no server answers within the server selection timeout (30 s unless the URI sets one).
    pub async fn connect(uri: &str, database: &str) -> Result<Self, MetaError> {
        let client = Client::with_uri_str(uri)
            .await
            .map_err(|err| MetaError::Unavailable(format!("MongoDB connection string: {err}")))?;
        let db = client.database(database);
        let store = Self {
            database: database.to_owned(),
            buckets: db.collection(BUCKETS),
            objects: db.collection(OBJECTS),
            uploads: db.collection(UPLOADS),
            parts: db.collection(PARTS),
            reclaims: db.collection(RECLAIMS),
        };
        store.create_indexes().await?;
        Ok(store)
    }

    /// Creates the indexes (a no-op for those that exist already).
    async fn create_indexes(&self) -> Result<(), MetaError> {
        let index = |keys: Document, name: &str, unique: bool| {
            IndexModel::builder()
                .keys(keys)
                .options(
                    IndexOptions::builder()
                        .name(name.to_owned())
                        .unique(unique)
                        .build(),
                )
                .build()
        };
        self.objects
            .create_index(index(
                doc! { "bucket": 1, "key_hex": 1 },
                "bucket_key",
                true,
            ))
            .await
            .map_err(unavailable)?;
        self.uploads
            .create_indexes([
                index(doc! { "bucket": 1, "upload_id": 1 }, "bucket_upload", true),
                index(
                    doc! { "bucket": 1, "key_hex": 1, "initiated_ms": 1, "upload_hex": 1 },
                    "bucket_order",
                    false,
                ),
            ])
            .await
            .map_err(unavailable)?;
        self.parts
            .create_index(index(
                doc! { "upload_id": 1, "number": 1 },
                "upload_number",
                true,
            ))
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// Lower-case hex of the UTF-8 bytes: sorts like the bytes.
fn hex(s: &str) -> String {
    hex::encode(s)
}

fn unavailable(err: MongoError) -> MetaError {
    MetaError::Unavailable(format!("MongoDB: {err}"))
}

fn is_duplicate_key(err: &MongoError) -> bool {
    match err.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == DUPLICATE_KEY,
        ErrorKind::Command(e) => e.code == DUPLICATE_KEY,
        _ => false,
    }
}

/// MongoDB's limit 0 means "no limit"; the trait's means "nothing".
fn mongo_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn encode<T: Serialize>(value: &T) -> Result<String, MetaError> {
    serde_json::to_string(value)
        .map_err(|err| MetaError::Corrupt("new record".to_owned(), err.to_string()))
}

/// The record of a stored document; `what` names it in errors.
fn decode<T: DeserializeOwned>(what: &str, document: &Document) -> Result<T, MetaError> {
    let record = document
        .get_str("record")
        .map_err(|err| MetaError::Corrupt(what.to_owned(), format!("field record: {err}")))?;
    serde_json::from_str(record).map_err(|err| MetaError::Corrupt(what.to_owned(), err.to_string()))
}

fn object_name(bucket: &str, key: &str) -> String {
    format!("object {bucket}/{key}")
}

fn upload_name(bucket: &str, upload_id: &str) -> String {
    format!("upload {bucket}/{upload_id}")
}

fn part_name(upload_id: &str, number: u32) -> String {
    format!("part {number} of upload {upload_id}")
}

/// Replaces the document matching `filter` (inserting it when there is none) and returns the
/// document it replaced; retries the upsert that lost a race on a new key.
async fn replace_returning_before(
    collection: &Collection<Document>,
    filter: Document,
    replacement: Document,
) -> Result<Option<Document>, MetaError> {
    let mut attempt = 0;
    loop {
        match collection
            .find_one_and_replace(filter.clone(), &replacement)
            .upsert(true)
            .return_document(ReturnDocument::Before)
            .await
        {
            Ok(before) => return Ok(before),
            Err(err) if is_duplicate_key(&err) && attempt < UPSERT_RETRIES => attempt += 1,
            Err(err) => return Err(unavailable(err)),
        }
    }
}

/// Replaces the document matching `filter` or inserts it; retries like
/// [`replace_returning_before`].
async fn upsert(
    collection: &Collection<Document>,
    filter: Document,
    replacement: Document,
) -> Result<(), MetaError> {
    let mut attempt = 0;
    loop {
        match collection
            .replace_one(filter.clone(), &replacement)
            .upsert(true)
            .await
        {
            Ok(_) => return Ok(()),
            Err(err) if is_duplicate_key(&err) && attempt < UPSERT_RETRIES => attempt += 1,
            Err(err) => return Err(unavailable(err)),
        }
    }
}

/// Every document of a query, in the order of `sort`, at most `limit` (`None`: all).
async fn find_all(
    collection: &Collection<Document>,
    filter: Document,
    sort: Document,
    limit: Option<usize>,
) -> Result<Vec<Document>, MetaError> {
    let mut find = collection.find(filter).sort(sort);
    if let Some(limit) = limit {
        find = find.limit(mongo_limit(limit));
    }
    find.await
        .map_err(unavailable)?
        .try_collect()
        .await
        .map_err(unavailable)
}

fn object_filter(bucket: &str, key: &str) -> Document {
    doc! { "bucket": bucket, "key_hex": hex(key) }
}

fn upload_filter(bucket: &str, upload_id: &str) -> Document {
    doc! { "bucket": bucket, "upload_id": upload_id }
}

fn part_filter(upload_id: &str, number: u32) -> Document {
    doc! { "upload_id": upload_id, "number": i64::from(number) }
}

#[async_trait]
impl MetadataStore for MongoMetadata {
    async fn create_bucket(&self, bucket: &BucketMeta) -> Result<Created, MetaError> {
        let id = hex(&bucket.name);
        match self
            .buckets
            .insert_one(doc! { "_id": &id, "record": encode(bucket)? })
            .await
        {
            Ok(_) => Ok(Created::Yes),
            Err(err) if is_duplicate_key(&err) => {
                match self
                    .buckets
                    .find_one(doc! { "_id": &id })
                    .await
                    .map_err(unavailable)?
                {
                    Some(current) => Ok(Created::Exists(decode(
                        &format!("bucket {}", bucket.name),
                        &current,
                    )?)),
                    None => Err(MetaError::Unavailable(
                        "bucket creation raced with its deletion; retry".to_owned(),
                    )),
                }
            }
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn bucket(&self, name: &str) -> Result<Option<BucketMeta>, MetaError> {
        match self
            .buckets
            .find_one(doc! { "_id": hex(name) })
            .await
            .map_err(unavailable)?
        {
            Some(document) => Ok(Some(decode(&format!("bucket {name}"), &document)?)),
            None => Ok(None),
        }
    }

    async fn buckets(&self) -> Result<Vec<BucketMeta>, MetaError> {
        find_all(&self.buckets, doc! {}, doc! { "_id": 1 }, None)
            .await?
            .iter()
            .map(|document| {
                let id = document.get_str("_id").unwrap_or("?");
                decode(&format!("bucket (hex {id})"), document)
            })
            .collect()
    }

    async fn delete_bucket(&self, name: &str) -> Result<bool, MetaError> {
        // Check, then delete: an object put between the two is left without its bucket, as
        // with the key-value store (the S3 layer checks the bucket before every put; a put racing
        // with the bucket's deletion is the client's race).
        if self
            .objects
            .find_one(doc! { "bucket": name })
            .projection(doc! { "_id": 1 })
            .await
            .map_err(unavailable)?
            .is_some()
        {
            return Ok(false);
        }
        self.buckets
            .delete_one(doc! { "_id": hex(name) })
            .await
            .map_err(unavailable)?;
        Ok(true)
    }

    async fn put_object(&self, object: &ObjectMeta) -> Result<Option<ObjectMeta>, MetaError> {
        let key_hex = hex(&object.key);
        let replacement = doc! {
            "bucket": &object.bucket,
            "key_hex": &key_hex,
            "record": encode(object)?,
        };
        let before = replace_returning_before(
            &self.objects,
            doc! { "bucket": &object.bucket, "key_hex": &key_hex },
            replacement,
        )
        .await?;
        // As with the key-value store: an unreadable replaced record is dropped (its fragments
        // are then left to the reclaimer's scan), the new one is stored.
        Ok(before
            .and_then(|document| decode(&object_name(&object.bucket, &object.key), &document).ok()))
    }

    async fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectMeta>, MetaError> {
        match self
            .objects
            .find_one(object_filter(bucket, key))
            .await
            .map_err(unavailable)?
        {
            Some(document) => Ok(Some(decode(&object_name(bucket, key), &document)?)),
            None => Ok(None),
        }
    }

    async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ObjectMeta>, MetaError> {
        Ok(self
            .objects
            .find_one_and_delete(object_filter(bucket, key))
            .await
            .map_err(unavailable)?
            .and_then(|document| decode(&object_name(bucket, key), &document).ok()))
    }

    async fn scan_objects(
        &self,
        bucket: &str,
        start: &str,
        limit: usize,
    ) -> Result<Vec<ObjectMeta>, MetaError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        find_all(
            &self.objects,
            doc! { "bucket": bucket, "key_hex": { "$gte": hex(start) } },
            doc! { "key_hex": 1 },
            Some(limit),
        )
        .await?
        .iter()
        .map(|document| {
            let key_hex = document.get_str("key_hex").unwrap_or("?");
            decode(&format!("object {bucket}/(hex {key_hex})"), document)
        })
        .collect()
    }

    async fn create_upload(&self, upload: &Upload) -> Result<(), MetaError> {
        let replacement = doc! {
            "bucket": &upload.bucket,
            "upload_id": &upload.upload_id,
            "key_hex": hex(&upload.key),
            "initiated_ms": upload.initiated_ms,
            "upload_hex": hex(&upload.upload_id),
            "record": encode(upload)?,
        };
        upsert(
            &self.uploads,
            upload_filter(&upload.bucket, &upload.upload_id),
            replacement,
        )
        .await
    }

    async fn upload(&self, bucket: &str, upload_id: &str) -> Result<Option<Upload>, MetaError> {
        match self
            .uploads
            .find_one(upload_filter(bucket, upload_id))
            .await
            .map_err(unavailable)?
        {
            Some(document) => Ok(Some(decode(&upload_name(bucket, upload_id), &document)?)),
            None => Ok(None),
        }
    }

    async fn uploads(&self, bucket: &str) -> Result<Vec<Upload>, MetaError> {
        find_all(
            &self.uploads,
            doc! { "bucket": bucket },
            doc! { "key_hex": 1, "initiated_ms": 1, "upload_hex": 1 },
            None,
        )
        .await?
        .iter()
        .map(|document| {
            let upload_id = document.get_str("upload_id").unwrap_or("?");
            decode(&upload_name(bucket, upload_id), document)
        })
        .collect()
    }

    async fn put_part(&self, upload_id: &str, part: &Part) -> Result<Option<Part>, MetaError> {
        let replacement = doc! {
            "upload_id": upload_id,
            "number": i64::from(part.number),
            "record": encode(part)?,
        };
        let before = replace_returning_before(
            &self.parts,
            part_filter(upload_id, part.number),
            replacement,
        )
        .await?;
        Ok(before.and_then(|document| decode(&part_name(upload_id, part.number), &document).ok()))
    }

    async fn parts(&self, upload_id: &str) -> Result<Vec<Part>, MetaError> {
        find_all(
            &self.parts,
            doc! { "upload_id": upload_id },
            doc! { "number": 1 },
            None,
        )
        .await?
        .iter()
        .map(|document| {
            let number = document.get_i64("number").unwrap_or(-1);
            decode(&format!("part {number} of upload {upload_id}"), document)
        })
        .collect()
    }

    async fn delete_upload(
        &self,
        bucket: &str,
        upload_id: &str,
    ) -> Result<Option<Upload>, MetaError> {
        let removed = self
            .uploads
            .find_one_and_delete(upload_filter(bucket, upload_id))
            .await
            .map_err(unavailable)?;
        // Then the parts (also when the upload record was gone already, so that a retry after a
        // failure between the two deletes finishes the job), as the key-value store does.
        self.parts
            .delete_many(doc! { "upload_id": upload_id })
            .await
            .map_err(unavailable)?;
        Ok(removed.and_then(|document| decode(&upload_name(bucket, upload_id), &document).ok()))
    }

    async fn put_reclaim(&self, reclaim: &Reclaim) -> Result<(), MetaError> {
        let id = reclaim.data_id.to_string();
        upsert(
            &self.reclaims,
            doc! { "_id": &id },
            doc! { "_id": &id, "record": encode(reclaim)? },
        )
        .await
    }

    async fn delete_reclaim(&self, data_id: Uuid) -> Result<(), MetaError> {
        self.reclaims
            .delete_one(doc! { "_id": data_id.to_string() })
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn reclaims(&self, after: Option<Uuid>, limit: usize) -> Result<Vec<Reclaim>, MetaError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Hyphenated lower-case hex at fixed positions: string order is data id order.
        let filter = match after {
            Some(id) => doc! { "_id": { "$gt": id.to_string() } },
            None => doc! {},
        };
        find_all(&self.reclaims, filter, doc! { "_id": 1 }, Some(limit))
            .await?
            .iter()
            .map(|document| {
                let id = document.get_str("_id").unwrap_or("?");
                decode(&format!("reclaim {id}"), document)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_keeps_byte_order() {
        let mut keys = vec![
            "b", "a/1", "a", "ü", "a b", "%41", "Z", "~", "\u{7f}", "é", "😀", "",
        ];
        let mut by_hex = keys.clone();
        keys.sort_unstable();
        by_hex.sort_by_key(|k| hex(k));
        assert_eq!(keys, by_hex);
        assert_eq!(hex("aü"), "61c3bc");
    }

    #[test]
    fn bson_has_no_u64() {
        // Why records are stored as JSON text rather than as BSON documents.
        #[derive(Serialize)]
        struct Size {
            size: u64,
        }
        assert!(mongodb::bson::serialize_to_document(&Size { size: 5 << 40 }).is_ok());
        assert!(mongodb::bson::serialize_to_document(&Size { size: u64::MAX }).is_err());
    }

    #[test]
    fn limits() {
        assert_eq!(mongo_limit(3), 3);
        assert_eq!(mongo_limit(usize::MAX), i64::MAX);
    }
}

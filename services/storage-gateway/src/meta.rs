//! Buckets, objects and their placement: the gateway's metadata (D6.7 4.8). Kept behind
//! [`MetadataStore`]; [`KvMetadata`] runs on the project's key-value datastore (the embedded
//! crash-safe store with group commit on one node). Values are JSON; object keys sort by UTF-8
//! bytes under their bucket, which is the order S3 listings need.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serrano_codec::{Compression, Scheme, WrappedKey};
use serrano_datastore::{CasOutcome, Expect, KvStore, StoreError};
use uuid::Uuid;

const BUCKETS: &str = "/serrano/storage/buckets/";
const OBJECTS: &str = "/serrano/storage/objects/";
const UPLOADS: &str = "/serrano/storage/uploads/";
const PARTS: &str = "/serrano/storage/parts/";
const RECLAIM: &str = "/serrano/storage/reclaim/";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketMeta {
    pub name: String,
    pub created_ms: i64,
    /// The storage policy the bucket is bound to (its `LocationConstraint`).
    pub policy: String,
    /// Access key that created it.
    pub owner: String,
}

/// A run of stripes written together: the whole body of a simple PUT, or one multipart part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// Names the segment's fragments on the backends (`{data_id}/{stripe}.{fragment}`) and is
    /// bound into every stripe's authentication data.
    pub data_id: Uuid,
    pub size: u64,
    /// The segment's own data key wrapped by the master key (None for unencrypted policies):
    /// one key per segment, so stripe nonces never repeat under a key.
    pub wrapped_key: Option<WrappedKey>,
}

/// How an object's stripes were coded and where their fragments went (a snapshot of the policy
/// at write time, so a later policy change never makes old objects unreadable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// Backend names in fragment order: fragment `i` of every stripe is on `locations[i]`.
    pub locations: Vec<String>,
    pub scheme: Scheme,
    pub data: u8,
    pub parity: u8,
    pub compression: Compression,
    pub stripe_bytes: u32,
    /// Whether stripes are sealed with AES-256-GCM.
    pub encrypted: bool,
}

/// The headers an object keeps and returns (set by PutObject, CreateMultipartUpload, or
/// CopyObject with `REPLACE`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectHeaders {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<String>,
    /// `x-amz-meta-*` headers, names lower-cased without the prefix.
    pub user_metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub bucket: String,
    pub key: String,
    /// Identity bound into every stripe's authentication data.
    pub object_id: Uuid,
    pub size: u64,
    /// Without quotes: MD5 hex, or `hex-N` for multipart objects.
    pub etag: String,
    pub last_modified_ms: i64,
    #[serde(flatten)]
    pub headers: ObjectHeaders,
    pub placement: Placement,
    /// Object bytes in order; each segment is coded with `placement` and `object_id`.
    pub segments: Vec<Segment>,
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    pub initiated_ms: i64,
    pub owner: String,
    pub headers: ObjectHeaders,
    pub placement: Placement,
}

/// One uploaded part of a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub number: u32,
    pub data_id: Uuid,
    pub size: u64,
    pub wrapped_key: Option<WrappedKey>,
    /// MD5 hex of the part's bytes, without quotes.
    pub etag: String,
    pub last_modified_ms: i64,
}

/// Fragments that may have to be deleted: written by an operation that has not committed yet
/// (crash safety), or no longer referenced after an overwrite, a delete or an abort (delayed
/// by a grace period so reads in flight finish). The reclaimer deletes them once due unless
/// `referrer` still references `data_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reclaim {
    pub data_id: Uuid,
    /// Backend names that may hold fragments of `data_id`.
    pub locations: Vec<String>,
    /// Due from this time on (ms since the epoch).
    pub not_before_ms: i64,
    pub bucket: String,
    pub key: String,
    /// Set for multipart parts: the upload that may reference `data_id`.
    pub upload_id: Option<String>,
    /// Written by a write in progress of gateway `node` in its run `boot`; after a restart
    /// that node reclaims its own unfinished writes at once.
    pub in_flight: Option<InFlight>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    pub node: String,
    pub boot: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    #[error("metadata store unavailable: {0}")]
    Unavailable(String),
    #[error("stored metadata of {0} is unreadable: {1}")]
    Corrupt(String, String),
}

impl From<StoreError> for MetaError {
    fn from(err: StoreError) -> Self {
        MetaError::Unavailable(err.to_string())
    }
}

/// Outcome of creating a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    Yes,
    /// It exists already (with this record).
    Exists(BucketMeta),
}

#[async_trait]
pub trait MetadataStore: Send + Sync + std::fmt::Debug {
    async fn create_bucket(&self, bucket: &BucketMeta) -> Result<Created, MetaError>;
    async fn bucket(&self, name: &str) -> Result<Option<BucketMeta>, MetaError>;
    async fn buckets(&self) -> Result<Vec<BucketMeta>, MetaError>;
    /// Deletes an empty bucket: `Ok(false)` when it still holds objects.
    async fn delete_bucket(&self, name: &str) -> Result<bool, MetaError>;
    /// Stores an object record; returns the record it replaced (whose fragments become garbage).
    async fn put_object(&self, object: &ObjectMeta) -> Result<Option<ObjectMeta>, MetaError>;
    async fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectMeta>, MetaError>;
    /// Removes an object record; returns it.
    async fn delete_object(&self, bucket: &str, key: &str)
    -> Result<Option<ObjectMeta>, MetaError>;
    /// Up to `limit` objects of `bucket` with keys >= `start`, in key order.
    async fn scan_objects(
        &self,
        bucket: &str,
        start: &str,
        limit: usize,
    ) -> Result<Vec<ObjectMeta>, MetaError>;

    async fn create_upload(&self, upload: &Upload) -> Result<(), MetaError>;
    async fn upload(&self, bucket: &str, upload_id: &str) -> Result<Option<Upload>, MetaError>;
    /// Every upload in progress in `bucket`, by key then initiation time.
    async fn uploads(&self, bucket: &str) -> Result<Vec<Upload>, MetaError>;
    /// Stores a part record; returns the part it replaced.
    async fn put_part(&self, upload_id: &str, part: &Part) -> Result<Option<Part>, MetaError>;
    /// The parts of an upload by part number.
    async fn parts(&self, upload_id: &str) -> Result<Vec<Part>, MetaError>;
    /// Removes an upload and its part records; returns the upload.
    async fn delete_upload(
        &self,
        bucket: &str,
        upload_id: &str,
    ) -> Result<Option<Upload>, MetaError>;

    async fn put_reclaim(&self, reclaim: &Reclaim) -> Result<(), MetaError>;
    async fn delete_reclaim(&self, data_id: Uuid) -> Result<(), MetaError>;
    /// Up to `limit` reclaim records with data ids after `after`, in data id order.
    async fn reclaims(&self, after: Option<Uuid>, limit: usize) -> Result<Vec<Reclaim>, MetaError>;
}

/// Metadata on the project datastore (embedded or etcd).
#[derive(Debug, Clone)]
pub struct KvMetadata {
    kv: Arc<dyn KvStore>,
}

impl KvMetadata {
    pub fn new(kv: Arc<dyn KvStore>) -> Self {
        Self { kv }
    }
}

fn bucket_key(name: &str) -> String {
    format!("{BUCKETS}{name}")
}

fn objects_of(bucket: &str) -> String {
    // Bucket names never contain '/', so this prefix holds exactly the bucket's objects.
    format!("{OBJECTS}{bucket}/")
}

fn upload_key(bucket: &str, upload_id: &str) -> String {
    format!("{UPLOADS}{bucket}/{upload_id}")
}

fn parts_of(upload_id: &str) -> String {
    format!("{PARTS}{upload_id}/")
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, value: &[u8]) -> Result<T, MetaError> {
    serde_json::from_slice(value).map_err(|err| MetaError::Corrupt(key.to_owned(), err.to_string()))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, MetaError> {
    serde_json::to_vec(value)
        .map_err(|err| MetaError::Corrupt("new record".to_owned(), err.to_string()))
}

#[async_trait]
impl MetadataStore for KvMetadata {
    async fn create_bucket(&self, bucket: &BucketMeta) -> Result<Created, MetaError> {
        let key = bucket_key(&bucket.name);
        match self
            .kv
            .compare_and_swap(&key, Expect::Absent, encode(bucket)?, 0)
            .await?
        {
            CasOutcome::Written(_) => Ok(Created::Yes),
            CasOutcome::Conflict(Some(current)) => {
                Ok(Created::Exists(decode(&key, &current.value)?))
            }
            CasOutcome::Conflict(None) => Err(MetaError::Unavailable(
                "bucket creation raced with its deletion; retry".to_owned(),
            )),
        }
    }

    async fn bucket(&self, name: &str) -> Result<Option<BucketMeta>, MetaError> {
        let key = bucket_key(name);
        match self.kv.get(&key).await? {
            Some(kv) => Ok(Some(decode(&key, &kv.value)?)),
            None => Ok(None),
        }
    }

    async fn buckets(&self) -> Result<Vec<BucketMeta>, MetaError> {
        self.kv
            .list_prefix(BUCKETS)
            .await?
            .kvs
            .iter()
            .map(|kv| decode(&kv.key, &kv.value))
            .collect()
    }

    async fn delete_bucket(&self, name: &str) -> Result<bool, MetaError> {
        if !self
            .kv
            .scan_prefix(&objects_of(name), "", 1)
            .await?
            .is_empty()
        {
            return Ok(false);
        }
        self.kv.delete(&bucket_key(name)).await?;
        Ok(true)
    }

    async fn put_object(&self, object: &ObjectMeta) -> Result<Option<ObjectMeta>, MetaError> {
        let key = format!("{}{}", objects_of(&object.bucket), object.key);
        let value = encode(object)?;
        // Read-then-CAS so the replaced record is known exactly (its fragments are freed).
        loop {
            let current = self.kv.get(&key).await?;
            let expect = match &current {
                Some(kv) => Expect::ModRevision(kv.mod_revision),
                None => Expect::Absent,
            };
            if let CasOutcome::Written(_) = self
                .kv
                .compare_and_swap(&key, expect, value.clone(), 0)
                .await?
            {
                return match current {
                    Some(kv) => Ok(decode(&key, &kv.value).ok()),
                    None => Ok(None),
                };
            }
        }
    }

    async fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectMeta>, MetaError> {
        let full = format!("{}{key}", objects_of(bucket));
        match self.kv.get(&full).await? {
            Some(kv) => Ok(Some(decode(&full, &kv.value)?)),
            None => Ok(None),
        }
    }

    async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ObjectMeta>, MetaError> {
        let full = format!("{}{key}", objects_of(bucket));
        match self.kv.delete(&full).await? {
            Some(kv) => Ok(decode(&full, &kv.value).ok()),
            None => Ok(None),
        }
    }

    async fn scan_objects(
        &self,
        bucket: &str,
        start: &str,
        limit: usize,
    ) -> Result<Vec<ObjectMeta>, MetaError> {
        let prefix = objects_of(bucket);
        self.kv
            .scan_prefix(&prefix, &format!("{prefix}{start}"), limit)
            .await?
            .iter()
            .map(|kv| decode(&kv.key, &kv.value))
            .collect()
    }

    async fn create_upload(&self, upload: &Upload) -> Result<(), MetaError> {
        self.kv
            .put(
                &upload_key(&upload.bucket, &upload.upload_id),
                encode(upload)?,
                0,
            )
            .await?;
        Ok(())
    }

    async fn upload(&self, bucket: &str, upload_id: &str) -> Result<Option<Upload>, MetaError> {
        let key = upload_key(bucket, upload_id);
        match self.kv.get(&key).await? {
            Some(kv) => Ok(Some(decode(&key, &kv.value)?)),
            None => Ok(None),
        }
    }

    async fn uploads(&self, bucket: &str) -> Result<Vec<Upload>, MetaError> {
        let mut uploads = self
            .kv
            .list_prefix(&format!("{UPLOADS}{bucket}/"))
            .await?
            .kvs
            .iter()
            .map(|kv| decode::<Upload>(&kv.key, &kv.value))
            .collect::<Result<Vec<_>, _>>()?;
        uploads.sort_by(|a, b| {
            (a.key.as_str(), a.initiated_ms, a.upload_id.as_str()).cmp(&(
                b.key.as_str(),
                b.initiated_ms,
                b.upload_id.as_str(),
            ))
        });
        Ok(uploads)
    }

    async fn put_part(&self, upload_id: &str, part: &Part) -> Result<Option<Part>, MetaError> {
        let key = format!("{}{:05}", parts_of(upload_id), part.number);
        let value = encode(part)?;
        loop {
            let current = self.kv.get(&key).await?;
            let expect = match &current {
                Some(kv) => Expect::ModRevision(kv.mod_revision),
                None => Expect::Absent,
            };
            if let CasOutcome::Written(_) = self
                .kv
                .compare_and_swap(&key, expect, value.clone(), 0)
                .await?
            {
                return match current {
                    Some(kv) => Ok(decode(&key, &kv.value).ok()),
                    None => Ok(None),
                };
            }
        }
    }

    async fn parts(&self, upload_id: &str) -> Result<Vec<Part>, MetaError> {
        // Zero-padded part numbers (1..=10000) sort numerically.
        self.kv
            .list_prefix(&parts_of(upload_id))
            .await?
            .kvs
            .iter()
            .map(|kv| decode(&kv.key, &kv.value))
            .collect()
    }

    async fn delete_upload(
        &self,
        bucket: &str,
        upload_id: &str,
    ) -> Result<Option<Upload>, MetaError> {
        let key = upload_key(bucket, upload_id);
        let removed = self.kv.delete(&key).await?;
        self.kv.delete_prefix(&parts_of(upload_id)).await?;
        match removed {
            Some(kv) => Ok(decode(&key, &kv.value).ok()),
            None => Ok(None),
        }
    }

    async fn put_reclaim(&self, reclaim: &Reclaim) -> Result<(), MetaError> {
        self.kv
            .put(
                &format!("{RECLAIM}{}", reclaim.data_id),
                encode(reclaim)?,
                0,
            )
            .await?;
        Ok(())
    }

    async fn delete_reclaim(&self, data_id: Uuid) -> Result<(), MetaError> {
        self.kv.delete(&format!("{RECLAIM}{data_id}")).await?;
        Ok(())
    }

    async fn reclaims(&self, after: Option<Uuid>, limit: usize) -> Result<Vec<Reclaim>, MetaError> {
        // A trailing NUL makes the scan start strictly after `after`.
        let start = after.map_or_else(|| RECLAIM.to_owned(), |id| format!("{RECLAIM}{id}\0"));
        self.kv
            .scan_prefix(RECLAIM, &start, limit)
            .await?
            .iter()
            .map(|kv| decode(&kv.key, &kv.value))
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serrano_datastore::EmbeddedStore;

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
            placement: Placement {
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
                encrypted: true,
            },
            segments: vec![Segment {
                data_id: Uuid::new_v4(),
                size,
                wrapped_key: None,
            }],
        }
    }

    #[tokio::test]
    async fn buckets_objects_and_ordered_scans() {
        let dir = tempfile::tempdir().unwrap();
        let meta = KvMetadata::new(Arc::new(EmbeddedStore::open(dir.path()).unwrap()));
        let bucket = BucketMeta {
            name: "data".into(),
            created_ms: 1,
            policy: "default".into(),
            owner: "ak".into(),
        };
        assert_eq!(meta.create_bucket(&bucket).await.unwrap(), Created::Yes);
        assert_eq!(
            meta.create_bucket(&bucket).await.unwrap(),
            Created::Exists(bucket.clone())
        );
        // A bucket whose name extends another's never sees its objects.
        let other = BucketMeta {
            name: "data2".into(),
            ..bucket.clone()
        };
        meta.create_bucket(&other).await.unwrap();
        meta.put_object(&object("data2", "x", 1)).await.unwrap();

        for key in ["b", "a/1", "a/2", "ü", "a b", "%41"] {
            assert_eq!(
                meta.put_object(&object("data", key, 10)).await.unwrap(),
                None
            );
        }
        let replaced = meta
            .put_object(&object("data", "b", 20))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(replaced.size, 10);
        assert_eq!(meta.object("data", "b").await.unwrap().unwrap().size, 20);

        let keys =
            |objects: Vec<ObjectMeta>| objects.into_iter().map(|o| o.key).collect::<Vec<_>>();
        assert_eq!(
            keys(meta.scan_objects("data", "", 100).await.unwrap()),
            vec!["%41", "a b", "a/1", "a/2", "b", "ü"]
        );
        assert_eq!(
            keys(meta.scan_objects("data", "a/", 2).await.unwrap()),
            vec!["a/1", "a/2"]
        );
        assert!(!meta.delete_bucket("data").await.unwrap());
        for key in ["b", "a/1", "a/2", "ü", "a b", "%41"] {
            assert!(meta.delete_object("data", key).await.unwrap().is_some());
        }
        assert_eq!(meta.delete_object("data", "b").await.unwrap(), None);
        assert!(meta.delete_bucket("data").await.unwrap());
        assert_eq!(meta.bucket("data").await.unwrap(), None);
        assert_eq!(
            meta.buckets()
                .await
                .unwrap()
                .into_iter()
                .map(|b| b.name)
                .collect::<Vec<_>>(),
            vec!["data2"]
        );
    }
}

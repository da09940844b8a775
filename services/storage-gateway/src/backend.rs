//! Where fragments live (D6.7 4.8: cloud locations and SERRANO edge devices). One trait, two
//! adapters: a local directory (the embedded default, also how an edge device's disk is
//! modelled) and any S3 endpoint through `aws-sdk-s3` (cloud buckets, MinIO-style edge devices).
//!
//! Writes are all-or-nothing: a fragment is visible complete or not at all, so a gateway killed
//! mid-upload leaves at most unreferenced whole fragments (collected by the cleanup pass), never
//! a torn one under a referenced name.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serrano_service::error_chain;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("backend {backend}: {message}")]
pub struct BackendError {
    pub backend: String,
    pub message: String,
}

impl BackendError {
    fn new(backend: &str, message: impl Into<String>) -> Self {
        Self {
            backend: backend.to_owned(),
            message: message.into(),
        }
    }
}

/// Space on a backend, where it can be known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub used_bytes: u64,
    pub free_bytes: Option<u64>,
}

#[async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug {
    fn name(&self) -> &str;
    /// Stores `data` under `key`, replacing any previous value, atomically.
    async fn put(&self, key: &str, data: Bytes) -> Result<(), BackendError>;
    /// The value under `key`, or None when there is none.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, BackendError>;
    /// Removes `key`; removing a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<(), BackendError>;
    /// Every key under `prefix`, sorted (for cleanup and scrubbing).
    async fn list(&self, prefix: &str) -> Result<Vec<String>, BackendError>;
    async fn usage(&self) -> Result<Usage, BackendError>;
}

/// Fragment keys are made by the gateway; this keeps a bug from ever escaping the root.
fn check_key(backend: &str, key: &str) -> Result<(), BackendError> {
    let fine = !key.is_empty()
        && key.len() <= 512
        && !key.starts_with('/')
        && key.split('/').all(|part| {
            !part.is_empty() && part != "." && part != ".." && !part.starts_with(".tmp")
        })
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
    if fine {
        Ok(())
    } else {
        Err(BackendError::new(
            backend,
            format!("invalid fragment key {key:?}"),
        ))
    }
}

/// Fragments as files under a directory. `fsync` makes every write durable before it returns
/// (off by default, as Garage's `data_fsync`: a killed process loses nothing either way, only a
/// power cut can; object metadata is always durable).
#[derive(Debug)]
pub struct LocalDir {
    name: String,
    root: PathBuf,
    fsync: bool,
}

impl LocalDir {
    pub fn open(name: &str, root: &Path, fsync: bool) -> Result<Self, BackendError> {
        std::fs::create_dir_all(root.join(".tmp")).map_err(|err| {
            BackendError::new(name, format!("cannot create {}: {err}", root.display()))
        })?;
        Ok(Self {
            name: name.to_owned(),
            root: root.to_path_buf(),
            fsync,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Removes temporary files left by a killed process (call at start, before serving).
    pub fn clear_temporaries(&self) -> Result<u64, BackendError> {
        let dir = self.root.join(".tmp");
        let mut removed = 0;
        let entries = std::fs::read_dir(&dir).map_err(|err| self.error(err))?;
        for entry in entries.flatten() {
            if std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Every fragment under `prefix` with its length, sorted by key (one pass over the tree).
    async fn walk(&self, prefix: &str) -> Result<Vec<(String, u64)>, BackendError> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        self.blocking(move || {
            let mut found = Vec::new();
            let mut pending = vec![root.clone()];
            while let Some(dir) = pending.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(entries) => entries,
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(err) => return Err(err),
                };
                for entry in entries.flatten() {
                    let path = entry.path();
                    let Ok(relative) = path.strip_prefix(&root) else {
                        continue;
                    };
                    let Some(key) = relative.to_str() else {
                        continue;
                    };
                    if key.starts_with(".tmp") {
                        continue;
                    }
                    let Ok(metadata) = entry.metadata() else {
                        continue;
                    };
                    if metadata.is_dir() {
                        pending.push(path);
                    } else if key.starts_with(&prefix) {
                        found.push((key.to_owned(), metadata.len()));
                    }
                }
            }
            found.sort();
            Ok(found)
        })
        .await
    }

    fn error(&self, err: impl std::fmt::Display) -> BackendError {
        BackendError::new(&self.name, err.to_string())
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    ) -> Result<T, BackendError> {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|err| self.error(err))?
            .map_err(|err| self.error(err))
    }
}

#[async_trait]
impl Backend for LocalDir {
    fn name(&self) -> &str {
        &self.name
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), BackendError> {
        check_key(&self.name, key)?;
        let path = self.root.join(key);
        let temporary = self
            .root
            .join(".tmp")
            .join(uuid::Uuid::new_v4().to_string());
        let fsync = self.fsync;
        self.blocking(move || {
            use std::io::Write;
            let mut file = std::fs::File::create(&temporary)?;
            let written = file
                .write_all(&data)
                .and_then(|()| if fsync { file.sync_data() } else { Ok(()) });
            if let Err(err) = written {
                let _ = std::fs::remove_file(&temporary);
                return Err(err);
            }
            // A missing parent is created; a delete emptying that directory at the same moment
            // can remove it again, hence a few tries.
            let mut rename = std::fs::rename(&temporary, &path);
            for _ in 0..3 {
                match &rename {
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                        if let Some(parent) = path.parent() {
                            std::fs::create_dir_all(parent)?;
                        }
                        rename = std::fs::rename(&temporary, &path);
                    }
                    _ => break,
                }
            }
            if rename.is_err() {
                let _ = std::fs::remove_file(&temporary);
            }
            rename?;
            if fsync && let Some(parent) = path.parent() {
                std::fs::File::open(parent)?.sync_all()?;
            }
            Ok(())
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BackendError> {
        check_key(&self.name, key)?;
        let path = self.root.join(key);
        self.blocking(move || match std::fs::read(&path) {
            Ok(data) => Ok(Some(Bytes::from(data))),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), BackendError> {
        check_key(&self.name, key)?;
        let path = self.root.join(key);
        let root = self.root.clone();
        self.blocking(move || {
            match std::fs::remove_file(&path) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
                _ => {}
            }
            // A segment's directory goes with its last fragment (failing while other
            // fragments remain is expected; a concurrent put recreates its parent).
            let mut dir = path.parent();
            while let Some(parent) = dir {
                if parent == root || std::fs::remove_dir(parent).is_err() {
                    break;
                }
                dir = parent.parent();
            }
            Ok(())
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        Ok(self
            .walk(prefix)
            .await?
            .into_iter()
            .map(|(key, _)| key)
            .collect())
    }

    async fn usage(&self) -> Result<Usage, BackendError> {
        Ok(Usage {
            used_bytes: self.walk("").await?.iter().map(|(_, len)| len).sum(),
            free_bytes: None,
        })
    }
}

/// Where an S3 backend is and how to reach it (configuration of a cloud location or an edge
/// device's object store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Location {
    pub endpoint: String,
    #[serde(default = "default_region")]
    pub region: String,
    pub bucket: String,
    /// Key prefix inside the bucket (several gateways or locations may share one bucket).
    #[serde(default)]
    pub prefix: String,
    pub access_key: String,
    pub secret_key: serrano_service::Secret,
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

/// Fragments as objects in an S3 bucket.
#[derive(Debug)]
pub struct S3Bucket {
    name: String,
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl S3Bucket {
    pub fn new(name: &str, location: &S3Location) -> Self {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&location.endpoint)
            .region(Region::new(location.region.clone()))
            .credentials_provider(Credentials::new(
                &location.access_key,
                location.secret_key.expose(),
                None,
                None,
                "serrano-storage-gateway",
            ))
            .force_path_style(true)
            .build();
        Self {
            name: name.to_owned(),
            client: aws_sdk_s3::Client::from_conf(config),
            bucket: location.bucket.clone(),
            prefix: location.prefix.clone(),
        }
    }

    /// Creates the bucket when it does not exist yet.
    pub async fn ensure_bucket(&self) -> Result<(), BackendError> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => {
                let text = error_chain(&err);
                if text.contains("BucketAlreadyOwnedByYou") || text.contains("BucketAlreadyExists")
                {
                    Ok(())
                } else {
                    Err(BackendError::new(
                        &self.name,
                        format!("creating bucket {}: {text}", self.bucket),
                    ))
                }
            }
        }
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Every fragment under `prefix` with its size, sorted by key (all listing pages).
    async fn objects(&self, prefix: &str) -> Result<Vec<(String, u64)>, BackendError> {
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(self.full_key(prefix))
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|err| BackendError::new(&self.name, error_chain(&err)))?;
            for object in page.contents() {
                if let Some(key) = object.key().and_then(|k| k.strip_prefix(&self.prefix)) {
                    let size = object
                        .size()
                        .and_then(|s| u64::try_from(s).ok())
                        .unwrap_or(0);
                    found.push((key.to_owned(), size));
                }
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated().unwrap_or(false) => token = Some(next.to_owned()),
                _ => break,
            }
        }
        found.sort();
        Ok(found)
    }
}

#[async_trait]
impl Backend for S3Bucket {
    fn name(&self) -> &str {
        &self.name
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), BackendError> {
        check_key(&self.name, key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .body(ByteStream::from(data))
            .send()
            .await
            .map(|_| ())
            .map_err(|err| BackendError::new(&self.name, error_chain(&err)))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BackendError> {
        check_key(&self.name, key)?;
        let response = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
        {
            Ok(response) => response,
            Err(err) => {
                if err.as_service_error().is_some_and(|e| e.is_no_such_key()) {
                    return Ok(None);
                }
                return Err(BackendError::new(&self.name, error_chain(&err)));
            }
        };
        let body = response
            .body
            .collect()
            .await
            .map_err(|err| BackendError::new(&self.name, error_chain(&err)))?;
        Ok(Some(body.into_bytes()))
    }

    async fn delete(&self, key: &str) -> Result<(), BackendError> {
        check_key(&self.name, key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map(|_| ())
            .map_err(|err| BackendError::new(&self.name, error_chain(&err)))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        Ok(self
            .objects(prefix)
            .await?
            .into_iter()
            .map(|(key, _)| key)
            .collect())
    }

    async fn usage(&self) -> Result<Usage, BackendError> {
        Ok(Usage {
            used_bytes: self.objects("").await?.iter().map(|(_, len)| len).sum(),
            free_bytes: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_keys_cannot_escape_the_root() {
        for good in ["a", "0f3e/00000001.2", "v-1/x_y"] {
            assert!(check_key("b", good).is_ok(), "{good}");
        }
        for bad in [
            "", "/abs", "../x", "a/../b", "a//b", ".tmp/x", "a b", "a\\b", "ü",
        ] {
            assert!(check_key("b", bad).is_err(), "{bad}");
        }
    }
}

//! Datastore configuration (the `datastore` section of a service config) and the factory that
//! opens the configured backend.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{EmbeddedStore, EtcdStore, KvStore, StoreError};

/// Which backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The in-process store persisted under `path` (single instance deployments, tests).
    #[default]
    Embedded,
    /// An etcd v3 cluster at `etcd_endpoints`.
    Etcd,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatastoreConfig {
    pub backend: Backend,
    /// Directory of the embedded store.
    pub path: PathBuf,
    /// etcd endpoints, e.g. `http://127.0.0.1:2379`.
    pub etcd_endpoints: Vec<String>,
    /// Timeout of every etcd call (and of connecting), in milliseconds.
    pub etcd_timeout_ms: u64,
}

impl Default for DatastoreConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Embedded,
            path: PathBuf::from("serrano-data/datastore"),
            etcd_endpoints: vec!["http://127.0.0.1:2379".to_string()],
            etcd_timeout_ms: 3000,
        }
    }
}

/// Opens the configured backend. The etcd backend connects lazily: it succeeds while etcd is
/// down (calls then fail with `Unavailable` until it is back).
pub async fn open_store(cfg: &DatastoreConfig) -> Result<Arc<dyn KvStore>, StoreError> {
    match cfg.backend {
        Backend::Embedded => {
            let path = cfg.path.clone();
            // Opening replays the log: blocking file I/O off the async workers.
            let store = tokio::task::spawn_blocking(move || EmbeddedStore::open(path))
                .await
                .map_err(|e| StoreError::Backend(format!("opening the datastore failed: {e}")))??;
            Ok(Arc::new(store))
        }
        Backend::Etcd => {
            let timeout = Duration::from_millis(cfg.etcd_timeout_ms.max(1));
            Ok(Arc::new(
                EtcdStore::connect(&cfg.etcd_endpoints, timeout).await?,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_parsing() {
        let cfg: DatastoreConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(cfg.backend, Backend::Embedded);
        assert_eq!(cfg.path, PathBuf::from("serrano-data/datastore"));
        assert_eq!(
            cfg.etcd_endpoints,
            vec!["http://127.0.0.1:2379".to_string()]
        );
        assert_eq!(cfg.etcd_timeout_ms, 3000);

        let cfg: DatastoreConfig =
            serde_json::from_str(r#"{"backend":"etcd","etcd_endpoints":["http://e:1"]}"#).unwrap();
        assert_eq!(cfg.backend, Backend::Etcd);
        assert_eq!(cfg.etcd_endpoints, vec!["http://e:1".to_string()]);

        assert!(serde_json::from_str::<DatastoreConfig>(r#"{"bogus":1}"#).is_err());
        assert!(serde_json::from_str::<DatastoreConfig>(r#"{"backend":"Etcd"}"#).is_err());
    }

    #[tokio::test]
    async fn open_embedded_from_config() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = DatastoreConfig {
            path: dir.path().join("ds"),
            ..DatastoreConfig::default()
        };
        let store = open_store(&cfg).await.unwrap();
        assert_eq!(store.put("k", b"v".to_vec(), 0).await.unwrap(), 2);
        drop(store);
        let store = open_store(&cfg).await.unwrap();
        assert_eq!(store.get("k").await.unwrap().unwrap().value, b"v".to_vec());
    }

    #[tokio::test]
    async fn open_etcd_does_not_fail_when_down() {
        let cfg = DatastoreConfig {
            backend: Backend::Etcd,
            // Nothing listens on port 1.
            etcd_endpoints: vec!["http://127.0.0.1:1".to_string()],
            etcd_timeout_ms: 500,
            ..DatastoreConfig::default()
        };
        let store = open_store(&cfg).await.unwrap();
        let started = std::time::Instant::now();
        assert!(matches!(
            store.health().await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(matches!(
            store.get("x").await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

//! Which operational database a service uses (the `operational_db` section of its config,
//! D6.7 4.4.2) and the factory that opens it.
//!
//! ```json
//! {"type": "embedded"}
//! {"type": "mongodb", "uri": "mongodb://user:pass@db:27017/?authSource=admin", "database": "serrano"}
//! ```

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serrano_datastore::KvStore;

use crate::mongo::redact_uri;
use crate::{DocError, DocStore, EmbeddedDocStore, MongoDocStore};

#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
// serde ignores unknown fields next to the tag of a unit variant: parse through `Raw`, whose
// `Embedded {}` rejects them.
#[serde(from = "Raw")]
pub enum DocStoreConfig {
    /// Documents in the project datastore (the `kv` given to [`open_docstore`]).
    #[default]
    Embedded,
    /// A MongoDB server or replica set.
    Mongodb {
        /// `mongodb://` connection string; may carry credentials (never logged).
        uri: String,
        /// Database holding the collections.
        database: String,
    },
}

/// The wire form of [`DocStoreConfig`].
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum Raw {
    Embedded {},
    Mongodb { uri: String, database: String },
}

impl From<Raw> for DocStoreConfig {
    fn from(raw: Raw) -> Self {
        match raw {
            Raw::Embedded {} => DocStoreConfig::Embedded,
            Raw::Mongodb { uri, database } => DocStoreConfig::Mongodb { uri, database },
        }
    }
}

impl fmt::Debug for DocStoreConfig {
    // The URI may carry a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocStoreConfig::Embedded => f.write_str("Embedded"),
            DocStoreConfig::Mongodb { uri, database } => f
                .debug_struct("Mongodb")
                .field("uri", &redact_uri(uri))
                .field("database", database)
                .finish(),
        }
    }
}

/// Opens the configured backend: the embedded store keeps its documents under `prefix` of
/// `kv`; MongoDB connects lazily (see [`MongoDocStore::connect`]).
pub async fn open_docstore(
    cfg: &DocStoreConfig,
    kv: Arc<dyn KvStore>,
    prefix: &str,
) -> Result<Arc<dyn DocStore>, DocError> {
    match cfg {
        DocStoreConfig::Embedded => Ok(Arc::new(EmbeddedDocStore::new(kv, prefix))),
        DocStoreConfig::Mongodb { uri, database } => {
            Ok(Arc::new(MongoDocStore::connect(uri, database).await?))
        }
    }
}

#[cfg(test)]
mod tests {
    use serrano_datastore::EmbeddedStore;

    use super::*;

    #[test]
    fn parsing() {
        assert_eq!(DocStoreConfig::default(), DocStoreConfig::Embedded);
        let cfg: DocStoreConfig = serde_json::from_str(r#"{"type": "embedded"}"#).unwrap();
        assert_eq!(cfg, DocStoreConfig::Embedded);
        let cfg: DocStoreConfig = serde_json::from_str(
            r#"{"type": "mongodb", "uri": "mongodb://u:pw@h/", "database": "ops"}"#,
        )
        .unwrap();
        assert_eq!(
            cfg,
            DocStoreConfig::Mongodb {
                uri: "mongodb://u:pw@h/".to_owned(),
                database: "ops".to_owned()
            }
        );
        for bad in [
            r#"{"type": "mongo", "uri": "x", "database": "d"}"#,
            r#"{"type": "mongodb", "uri": "x"}"#,
            r#"{"type": "mongodb", "uri": "x", "database": "d", "extra": 1}"#,
            r#"{"type": "embedded", "path": "x"}"#,
            r#"{}"#,
        ] {
            assert!(
                serde_json::from_str::<DocStoreConfig>(bad).is_err(),
                "{bad}"
            );
        }
        let back = serde_json::to_value(&cfg).unwrap();
        assert_eq!(back["type"], "mongodb");
        let again: DocStoreConfig = serde_json::from_value(back).unwrap();
        assert_eq!(again, cfg);
        let embedded = serde_json::to_value(DocStoreConfig::Embedded).unwrap();
        assert_eq!(embedded, serde_json::json!({"type": "embedded"}));
    }

    #[test]
    fn debug_hides_the_password() {
        let cfg = DocStoreConfig::Mongodb {
            uri: "mongodb://user:hunter2@db:27017/?authSource=admin".to_owned(),
            database: "ops".to_owned(),
        };
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("user:***@db:27017"), "{shown}");
        assert_eq!(format!("{:?}", DocStoreConfig::Embedded), "Embedded");
    }

    #[tokio::test]
    async fn opens_each_backend() {
        let kv: Arc<dyn KvStore> = Arc::new(EmbeddedStore::in_memory());
        let store = open_docstore(&DocStoreConfig::Embedded, kv.clone(), "/d/")
            .await
            .unwrap();
        assert_eq!(store.kind(), "embedded");
        store
            .insert("c", serde_json::json!({"a": 1}))
            .await
            .unwrap();
        assert_eq!(kv.list_prefix("/d/c/").await.unwrap().kvs.len(), 1);

        let cfg = DocStoreConfig::Mongodb {
            uri: "mongodb://127.0.0.1:1".to_owned(),
            database: "ops".to_owned(),
        };
        let store = open_docstore(&cfg, kv.clone(), "/d/").await.unwrap();
        assert_eq!(store.kind(), "mongodb");
        let cfg = DocStoreConfig::Mongodb {
            uri: "not a uri".to_owned(),
            database: "ops".to_owned(),
        };
        assert!(matches!(
            open_docstore(&cfg, kv, "/d/").await,
            Err(DocError::Invalid(_))
        ));
    }
}

//! Which Stream Handler a service uses (D6.7 4.5.2): the embedded log (default) or a
//! Kafka-protocol broker.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::embedded::{DEFAULT_RETENTION_RECORDS, EmbeddedStreamHandler};
use crate::kafka::{KafkaOptions, KafkaStreamHandler};
use crate::{BusError, StreamHandler};

/// The `stream` section of a service configuration, e.g. `{"type": "kafka", "brokers":
/// "127.0.0.1:9092"}` or `{"type": "embedded", "path": "/var/lib/serrano/stream"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum StreamConfig {
    /// The in-process log; in memory when `path` is absent, else persisted in that directory.
    /// Keeps [`DEFAULT_RETENTION_RECORDS`] records per topic.
    Embedded {
        #[serde(default)]
        path: Option<PathBuf>,
    },
    /// A Kafka-protocol broker (D6.7 4.5.2.4.3: "Kafka protocol over TCP").
    Kafka {
        /// Comma-separated `host:port` list (librdkafka `bootstrap.servers`).
        brokers: String,
        /// Default `serrano`.
        #[serde(default)]
        client_id: Option<String>,
    },
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self::Embedded { path: None }
    }
}

/// Opens the configured Stream Handler. Kafka connects lazily: use
/// [`StreamHandler::health`] to check that the broker answers.
pub async fn open_stream_handler(cfg: &StreamConfig) -> Result<Arc<dyn StreamHandler>, BusError> {
    match cfg {
        StreamConfig::Embedded { path } => {
            let path = path.clone();
            // Replaying the files is blocking I/O.
            let h = tokio::task::spawn_blocking(move || {
                EmbeddedStreamHandler::open(path, DEFAULT_RETENTION_RECORDS)
            })
            .await
            .map_err(|e| BusError::Unavailable(format!("stream log task failed: {e}")))??;
            Ok(Arc::new(h))
        }
        StreamConfig::Kafka { brokers, client_id } => {
            let mut opts = KafkaOptions::new(brokers.clone());
            if let Some(id) = client_id {
                opts.client_id = id.clone();
            }
            Ok(Arc::new(KafkaStreamHandler::connect(opts)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::StartAt;

    #[test]
    fn parse_variants() {
        let c: StreamConfig = serde_json::from_str(r#"{"type":"embedded"}"#).unwrap();
        assert_eq!(c, StreamConfig::Embedded { path: None });
        assert_eq!(c, StreamConfig::default());
        let c: StreamConfig =
            serde_json::from_str(r#"{"type":"embedded","path":"/var/lib/s"}"#).unwrap();
        assert_eq!(
            c,
            StreamConfig::Embedded {
                path: Some("/var/lib/s".into())
            }
        );
        let c: StreamConfig =
            serde_json::from_str(r#"{"type":"kafka","brokers":"h1:9092,h2:9092"}"#).unwrap();
        assert_eq!(
            c,
            StreamConfig::Kafka {
                brokers: "h1:9092,h2:9092".into(),
                client_id: None
            }
        );
        let c: StreamConfig =
            serde_json::from_str(r#"{"type":"kafka","brokers":"h:1","client_id":"eta"}"#).unwrap();
        assert_eq!(
            c,
            StreamConfig::Kafka {
                brokers: "h:1".into(),
                client_id: Some("eta".into())
            }
        );
        let back = serde_json::to_value(&c).unwrap();
        assert_eq!(back["type"], "kafka");
    }

    #[test]
    fn parse_errors() {
        for bad in [
            r#"{"type":"rabbit"}"#,
            r#"{"type":"kafka"}"#,
            r#"{"type":"embedded","pth":"/x"}"#,
            r#"{"type":"kafka","brokers":"h:1","password":"x"}"#,
            r#"{"path":"/x"}"#,
        ] {
            assert!(
                serde_json::from_str::<StreamConfig>(bad).is_err(),
                "{bad} should not parse"
            );
        }
    }

    #[tokio::test]
    async fn open_embedded_memory_and_disk() {
        let h = open_stream_handler(&StreamConfig::default()).await.unwrap();
        assert_eq!(h.kind(), "embedded");
        h.health().await.unwrap();

        let dir = tempfile::tempdir().unwrap();
        let cfg = StreamConfig::Embedded {
            path: Some(dir.path().join("stream")),
        };
        {
            let h = open_stream_handler(&cfg).await.unwrap();
            h.publish("t", None, b"kept").await.unwrap();
        }
        let h = open_stream_handler(&cfg).await.unwrap();
        let mut r = h.reader("t", StartAt::Beginning).await.unwrap();
        let rec = r.next(Duration::from_secs(1)).await.unwrap().unwrap();
        assert_eq!(rec.payload, b"kept");
    }

    #[tokio::test]
    async fn open_kafka_is_lazy_and_checks_options() {
        let cfg = StreamConfig::Kafka {
            brokers: "127.0.0.1:1".into(),
            client_id: Some("cfg-test".into()),
        };
        let h = open_stream_handler(&cfg).await.unwrap();
        assert_eq!(h.kind(), "kafka");
        let cfg = StreamConfig::Kafka {
            brokers: " ".into(),
            client_id: None,
        };
        assert!(matches!(
            open_stream_handler(&cfg).await.err(),
            Some(BusError::Invalid(_))
        ));
    }
}

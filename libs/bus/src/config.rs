//! Which Stream Handler a service uses (D6.7 4.5.2): the embedded log (default) or a
//! Kafka-protocol broker; and which Message Broker (4.5.1): the embedded one (default) or
//! RabbitMQ.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::amqp::MessageBroker;
use crate::amqp_embedded::EmbeddedMessageBroker;
use crate::embedded::{DEFAULT_RETENTION_RECORDS, EmbeddedStreamHandler};
use crate::kafka::{KafkaOptions, KafkaStreamHandler};
use crate::rabbitmq::{RabbitMqBroker, RabbitMqOptions, redact_url};
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

/// The `amqp` section of a service configuration: `{"type": "embedded"}` (the default) or
/// `{"type": "rabbitmq", "url": "amqp://user:pass@host:5672/%2f"}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum AmqpConfig {
    /// The process's in-process broker ([`EmbeddedMessageBroker::shared`]): every service of
    /// the process that opens it meets the others there. (A struct variant so that unknown
    /// fields are refused.)
    Embedded {},
    /// RabbitMQ (AMQP 0-9-1 over TCP).
    RabbitMq {
        /// `amqp://user:pass@host:port/vhost`.
        url: String,
        /// Shown by RabbitMQ; default `serrano`.
        #[serde(default)]
        connection_name: Option<String>,
    },
}

impl std::fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Embedded {} => f.write_str("Embedded"),
            Self::RabbitMq {
                url,
                connection_name,
            } => f
                .debug_struct("RabbitMq")
                .field("url", &redact_url(url))
                .field("connection_name", connection_name)
                .finish(),
        }
    }
}

impl Default for AmqpConfig {
    fn default() -> Self {
        Self::Embedded {}
    }
}

/// Opens the configured Message Broker. RabbitMQ connects lazily (and again after a loss): use
/// [`MessageBroker::health`] to check that it answers.
pub async fn open_message_broker(cfg: &AmqpConfig) -> Result<Arc<dyn MessageBroker>, BusError> {
    match cfg {
        AmqpConfig::Embedded {} => Ok(Arc::new(EmbeddedMessageBroker::shared())),
        AmqpConfig::RabbitMq {
            url,
            connection_name,
        } => {
            let mut opts = RabbitMqOptions::new(url.clone());
            if let Some(n) = connection_name {
                opts.connection_name = n.clone();
            }
            Ok(Arc::new(RabbitMqBroker::new(opts)?))
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

    #[test]
    fn parse_amqp_variants() {
        let c: AmqpConfig = serde_json::from_str(r#"{"type":"embedded"}"#).unwrap();
        assert_eq!(c, AmqpConfig::Embedded {});
        assert_eq!(c, AmqpConfig::default());
        let c: AmqpConfig =
            serde_json::from_str(r#"{"type":"rabbitmq","url":"amqp://u:pw@h:5672/%2f"}"#).unwrap();
        assert_eq!(
            c,
            AmqpConfig::RabbitMq {
                url: "amqp://u:pw@h:5672/%2f".into(),
                connection_name: None
            }
        );
        let d = format!("{c:?}");
        assert!(!d.contains("pw") && d.contains("***"), "{d}");
        let c: AmqpConfig = serde_json::from_str(
            r#"{"type":"rabbitmq","url":"amqp://h","connection_name":"rot-controller"}"#,
        )
        .unwrap();
        assert_eq!(serde_json::to_value(&c).unwrap()["type"], "rabbitmq");
        for bad in [
            r#"{"type":"rabbit"}"#,
            r#"{"type":"rabbitmq"}"#,
            r#"{"type":"embedded","url":"amqp://h"}"#,
            r#"{"type":"rabbitmq","url":"amqp://h","password":"x"}"#,
            r#"{"url":"amqp://h"}"#,
        ] {
            assert!(
                serde_json::from_str::<AmqpConfig>(bad).is_err(),
                "{bad} should not parse"
            );
        }
    }

    #[tokio::test]
    async fn open_message_brokers() {
        let a = open_message_broker(&AmqpConfig::Embedded {}).await.unwrap();
        let b = open_message_broker(&AmqpConfig::default()).await.unwrap();
        assert_eq!(a.kind(), "embedded");
        // One broker per process: a queue declared through one is seen through the other.
        let q = format!("cfg-{}", uuid::Uuid::new_v4().simple());
        a.declare_queue(&q, crate::QueueOptions::durable())
            .await
            .unwrap();
        assert!(b.queue_info(&q).await.unwrap().is_some());
        b.delete_queue(&q).await.unwrap();

        let r = open_message_broker(&AmqpConfig::RabbitMq {
            url: "amqp://127.0.0.1:1/%2f".into(),
            connection_name: Some("cfg-test".into()),
        })
        .await
        .unwrap();
        assert_eq!(r.kind(), "rabbitmq");
        for bad in ["amqps://h/", "nope", "amqp://h:1"] {
            let cfg = AmqpConfig::RabbitMq {
                url: bad.into(),
                connection_name: (bad == "amqp://h:1").then(String::new),
            };
            assert!(
                matches!(
                    open_message_broker(&cfg).await.err(),
                    Some(BusError::Invalid(_))
                ),
                "{bad}"
            );
        }
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

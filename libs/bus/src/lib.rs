//! The Data Broker clients (D6.7 4.5). This crate holds the Stream Handler part (4.5.2): topics
//! of a Kafka-protocol broker, used for the telemetry notifications (4.5.2.4.1, Table 7); and the
//! Message Broker part (4.5.1): AMQP 0-9-1 exchanges and queues (ROT requests/results/events,
//! kernel result queues).
//!
//! - [`StreamHandler`]: publish to a topic, read a topic from an offset.
//! - [`kafka`]: any Kafka-protocol broker through `rdkafka` (bundled librdkafka).
//! - [`embedded`]: an in-process topic log with the same offset semantics (the default).
//! - `contract`: the one suite both must pass.
//! - [`config`]: which one a service uses ([`StreamConfig`], [`open_stream_handler`]).
//! - [`notifications`]: the JSON notification messages of Table 7.
//! - [`amqp`]: the [`MessageBroker`] trait; [`rabbitmq`] implements it over RabbitMQ (`lapin`),
//!   [`amqp_embedded`] in process; `amqp_contract` is their shared suite; [`AmqpConfig`] and
//!   [`open_message_broker`] pick one.
//!
//! Both implementations read and write partition 0 only: the notification topics have one
//! partition, which keeps a topic totally ordered by offset.

use std::time::Duration;

use async_trait::async_trait;

pub mod amqp;
pub mod amqp_embedded;
pub mod config;
pub mod embedded;
pub mod kafka;
pub mod notifications;
pub mod rabbitmq;

#[cfg(any(test, feature = "contract-suite"))]
pub mod amqp_contract;
#[cfg(any(test, feature = "contract-suite"))]
pub mod contract;

pub use amqp::{
    ConsumeOptions, Delivery, DeliveryStream, ExchangeKind, MessageBroker, MessageProperties,
    PublishOutcome, QueueInfo, QueueOptions,
};
pub use amqp_embedded::EmbeddedMessageBroker;
pub use config::{AmqpConfig, StreamConfig, open_message_broker, open_stream_handler};
pub use embedded::{DEFAULT_RETENTION_RECORDS, EmbeddedStreamHandler};
pub use kafka::{KafkaOptions, KafkaStreamHandler, SaslOptions};
pub use notifications::{
    EntityStatus, EntityType, GeneralInformation, Notification, ResourceStatus,
    TelemetryEntityStatus, publish_json, unix_now,
};
pub use rabbitmq::{RabbitMqBroker, RabbitMqOptions};

/// The topic of telemetry notifications (probe/agent UP/DOWN), originals 3.3.
pub const TELEMETRY_NOTIFICATIONS_TOPIC: &str = "serrano_telemetry_notifications";
/// The topic of general notification messages, D6.7 4.5.2.4.1.
pub const NOTIFICATION_MESSAGES_TOPIC: &str = "serrano_notification_messages";

/// One record read from a topic (partition 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    /// Producer or broker time, milliseconds since the epoch.
    pub timestamp_ms: i64,
}

/// Where a reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    Beginning,
    /// Only records published after the reader was opened.
    End,
    Offset(i64),
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    #[error("invalid topic or message: {0}")]
    Invalid(String),
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// AMQP: the exchange or queue does not exist (reply code 404).
    #[error("not found: {0}")]
    NotFound(String),
    /// AMQP: a declaration that differs from the existing one (406), or a queue exclusive to
    /// another connection (405).
    #[error("conflict: {0}")]
    Conflict(String),
}

/// A reader of one topic.
#[async_trait]
pub trait TopicReader: Send {
    /// The next record, or `None` when none arrived within `timeout`.
    async fn next(&mut self, timeout: Duration) -> Result<Option<Record>, BusError>;
}

/// Kafka-style topics: append-only logs read by offset.
#[async_trait]
pub trait StreamHandler: Send + Sync + 'static {
    /// Appends a record; returns once the broker acknowledged it.
    async fn publish(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<(), BusError>;

    /// Opens a reader of `topic` (created if missing) at `start`.
    async fn reader(&self, topic: &str, start: StartAt) -> Result<Box<dyn TopicReader>, BusError>;

    fn kind(&self) -> &'static str;

    /// Whether the broker answers (the embedded log always does).
    async fn health(&self) -> Result<(), BusError> {
        Ok(())
    }
}

/// The longest topic name Kafka accepts.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Checks a topic name the way Kafka does: 1 to 249 characters of `[A-Za-z0-9._-]`, and not
/// `.` or `..` (which would also be unsafe as a file name of the embedded log).
pub fn validate_topic(topic: &str) -> Result<(), BusError> {
    if topic.is_empty() || topic.len() > MAX_TOPIC_NAME_LEN {
        return Err(BusError::Invalid(format!(
            "topic name must have 1 to {MAX_TOPIC_NAME_LEN} characters, got {}",
            topic.len()
        )));
    }
    if topic == "." || topic == ".." {
        return Err(BusError::Invalid(format!(
            "topic name {topic:?} is reserved"
        )));
    }
    if let Some(c) = topic
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(BusError::Invalid(format!(
            "topic name {:?} has the character {c:?} (allowed: A-Z a-z 0-9 . _ -)",
            topic.chars().take(64).collect::<String>()
        )));
    }
    Ok(())
}

/// Checks a start offset: a concrete offset is never negative.
pub(crate) fn validate_start(start: StartAt) -> Result<(), BusError> {
    match start {
        StartAt::Offset(k) if k < 0 => Err(BusError::Invalid(format!(
            "start offset must be >= 0, got {k}"
        ))),
        _ => Ok(()),
    }
}

/// Milliseconds since the epoch (0 if the clock is before it).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        for ok in [
            "a",
            "serrano_telemetry_notifications",
            "A.b-c_9",
            &"x".repeat(249),
        ] {
            assert!(validate_topic(ok).is_ok(), "{ok} should be valid");
        }
        for bad in ["", ".", "..", "a b", "a/b", "é", "a\0", &"x".repeat(250)] {
            assert!(
                matches!(validate_topic(bad), Err(BusError::Invalid(_))),
                "{bad:?} should be invalid"
            );
        }
        let msg = validate_topic("a/b").unwrap_err().to_string();
        assert!(msg.contains("'/'"), "{msg}");
    }

    #[test]
    fn start_offsets() {
        assert!(validate_start(StartAt::Offset(0)).is_ok());
        assert!(validate_start(StartAt::Beginning).is_ok());
        assert!(validate_start(StartAt::End).is_ok());
        assert!(matches!(
            validate_start(StartAt::Offset(-1)),
            Err(BusError::Invalid(_))
        ));
    }
}

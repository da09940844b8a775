//! The Stream Handler client for a Kafka-protocol broker (D6.7 4.5.2.2.1, 4.5.2.4.3: "Kafka
//! protocol over TCP"), through `rdkafka` with its bundled librdkafka.
//!
//! - Records go to partition 0 of a topic, which the client creates with one partition when it
//!   first uses it (a broker that auto-creates topics, like Tansu, would give it several, and
//!   the default partitioner would then scatter records across them).
//! - Producer: `acks=all`, gzip by default (the original telemetry agent's producer, originals
//!   3.3); `publish` returns once the delivery report arrives.
//! - Readers `assign()` partition 0 at an explicit offset instead of joining a consumer group
//!   (the first JoinGroup takes ~23 s on Tansu, notes/servers.md 5) and never commit offsets.
//!   librdkafka still wants a `group.id` for `assign()`; it is never joined.
//! - librdkafka calls that block (metadata, watermarks, dropping a client) run on tokio's
//!   blocking pool; the others are asynchronous or local.

use std::collections::HashSet;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

use crate::{
    BusError, Record, StartAt, StreamHandler, TopicReader, now_ms, validate_start, validate_topic,
};

/// The partition every record goes to and is read from.
const PARTITION: i32 = 0;

/// How to reach the broker.
#[derive(Clone)]
pub struct KafkaOptions {
    /// Comma-separated `host:port` list (`bootstrap.servers`).
    pub brokers: String,
    /// `client.id`; readers also use `<client_id>.reader` as their (never joined) `group.id`.
    pub client_id: String,
    /// `compression.type`: `gzip` (default, as the original), `none`, `snappy` or `lz4`.
    pub compression: String,
    /// How long `publish` may take, retries included (`message.timeout.ms`).
    pub message_timeout_ms: u64,
    /// Bound on metadata, watermark and topic-creation requests.
    pub request_timeout_ms: u64,
    /// Replication factor of the topics this client creates; -1 takes the broker's default.
    pub replication_factor: i32,
    /// Most records per produce batch (`batch.num.messages`). Default 1: Tansu 0.6.0 answers
    /// ListOffsets(latest) with "base offset of the last batch + 1", so after a multi-record
    /// batch a reader at `End` would also get the rest of that batch. Notifications are a few
    /// records a minute; raise it for throughput on Apache Kafka.
    pub batch_records: u32,
    /// SASL authentication (PLAIN needs no TLS support in librdkafka; SSL is not built in).
    pub sasl: Option<SaslOptions>,
    /// Further librdkafka properties, applied last (e.g. `linger.ms`).
    pub extra: Vec<(String, String)>,
}

/// SASL settings. The password never appears in `Debug` output or in errors.
#[derive(Clone)]
pub struct SaslOptions {
    /// `security.protocol`, e.g. `SASL_PLAINTEXT`.
    pub security_protocol: String,
    /// `sasl.mechanism`, e.g. `PLAIN`.
    pub mechanism: String,
    pub username: String,
    pub password: String,
}

impl KafkaOptions {
    /// The defaults with these brokers.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            ..Self::default()
        }
    }
}

impl Default for KafkaOptions {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".to_string(),
            client_id: "serrano".to_string(),
            compression: "gzip".to_string(),
            message_timeout_ms: 30_000,
            request_timeout_ms: 10_000,
            replication_factor: -1,
            batch_records: 1,
            sasl: None,
            extra: Vec::new(),
        }
    }
}

/// Whether a librdkafka property may hold a secret (its value is then never shown).
fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password")
        || k.contains("secret")
        || (k.contains("key") && !k.ends_with(".location"))
}

impl fmt::Debug for KafkaOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let extra: Vec<(&str, &str)> = self
            .extra
            .iter()
            .map(|(k, v)| {
                let v = if is_secret_key(k) {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k.as_str(), v)
            })
            .collect();
        f.debug_struct("KafkaOptions")
            .field("brokers", &self.brokers)
            .field("client_id", &self.client_id)
            .field("compression", &self.compression)
            .field("message_timeout_ms", &self.message_timeout_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("replication_factor", &self.replication_factor)
            .field("batch_records", &self.batch_records)
            .field("sasl", &self.sasl)
            .field("extra", &extra)
            .finish()
    }
}

impl fmt::Debug for SaslOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslOptions")
            .field("security_protocol", &self.security_protocol)
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Sends librdkafka's log lines and client errors to `tracing`.
#[derive(Clone, Copy)]
pub struct TracingContext;

impl ClientContext for TracingContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(facility = fac, "librdkafka: {log_message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(facility = fac, "librdkafka: {log_message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(facility = fac, "librdkafka: {log_message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(facility = fac, "librdkafka: {log_message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = %error, "librdkafka: {reason}");
    }
}

impl ConsumerContext for TracingContext {}

type Consumer0 = StreamConsumer<TracingContext>;

/// Maps a client creation error; a config error names the property but never its value (it
/// may be a password).
fn config_error(e: KafkaError) -> BusError {
    match e {
        KafkaError::ClientConfig(_, desc, key, value) => {
            // librdkafka's description quotes the value.
            let desc = if value.is_empty() {
                desc
            } else {
                desc.replace(&value, "<value>")
            };
            BusError::Invalid(format!("kafka client setting {key}: {desc}"))
        }
        other => BusError::Invalid(format!("cannot create the kafka client: {other}")),
    }
}

fn join_error(e: tokio::task::JoinError) -> BusError {
    BusError::Unavailable(format!("kafka client task failed: {e}"))
}

/// Publishes to and reads from a Kafka-protocol broker.
pub struct KafkaStreamHandler {
    /// `None` only while being dropped (see `Drop`).
    clients: Option<Clients>,
}

struct Clients {
    opts: KafkaOptions,
    consumer_config: ClientConfig,
    producer: FutureProducer<TracingContext>,
    admin: AdminClient<TracingContext>,
    /// Topics known to exist (created by us or already there).
    known_topics: Mutex<HashSet<String>>,
}

impl fmt::Debug for KafkaStreamHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaStreamHandler")
            .field("options", &self.clients.as_ref().map(|c| &c.opts))
            .finish()
    }
}

impl KafkaStreamHandler {
    /// Creates the producer and admin clients. Does no I/O: librdkafka connects in the
    /// background, and a broker that is down shows in [`Self::health`] or as `Unavailable`
    /// from `publish`/`reader`.
    pub fn connect(options: KafkaOptions) -> Result<Self, BusError> {
        if options.brokers.trim().is_empty() {
            return Err(BusError::Invalid(
                "kafka brokers must not be empty".to_string(),
            ));
        }
        if options.client_id.trim().is_empty() {
            return Err(BusError::Invalid(
                "kafka client_id must not be empty".to_string(),
            ));
        }
        if options.message_timeout_ms == 0 || options.request_timeout_ms == 0 {
            return Err(BusError::Invalid(
                "kafka message_timeout_ms and request_timeout_ms must be positive".to_string(),
            ));
        }
        if options.replication_factor == 0 || options.replication_factor < -1 {
            return Err(BusError::Invalid(format!(
                "kafka replication_factor must be -1 or positive, got {}",
                options.replication_factor
            )));
        }
        if options.batch_records == 0 {
            return Err(BusError::Invalid(
                "kafka batch_records must be at least 1".to_string(),
            ));
        }
        let mut base = ClientConfig::new();
        base.set("bootstrap.servers", options.brokers.trim())
            .set("client.id", &options.client_id)
            .set("socket.timeout.ms", options.request_timeout_ms.to_string());
        if let Some(s) = &options.sasl {
            base.set("security.protocol", &s.security_protocol)
                .set("sasl.mechanism", &s.mechanism)
                .set("sasl.username", &s.username)
                .set("sasl.password", &s.password);
        }

        let mut producer_config = base.clone();
        producer_config
            .set("compression.type", &options.compression)
            .set("message.timeout.ms", options.message_timeout_ms.to_string())
            .set("batch.num.messages", options.batch_records.to_string())
            .set("acks", "all");

        let mut consumer_config = base.clone();
        consumer_config
            .set("group.id", format!("{}.reader", options.client_id))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            // A reader whose offset fell out of the log (retention) resumes at the oldest
            // record, as the embedded log does.
            .set("auto.offset.reset", "earliest");

        let mut admin_config = base;
        for (k, v) in &options.extra {
            producer_config.set(k, v);
            consumer_config.set(k, v);
            admin_config.set(k, v);
        }
        // Checks the consumer settings now rather than at the first reader.
        consumer_config
            .create_native_config()
            .map_err(config_error)?;
        let producer = producer_config
            .create_with_context(TracingContext)
            .map_err(config_error)?;
        let admin = admin_config
            .create_with_context(TracingContext)
            .map_err(config_error)?;
        Ok(Self {
            clients: Some(Clients {
                opts: options,
                consumer_config,
                producer,
                admin,
                known_topics: Mutex::new(HashSet::new()),
            }),
        })
    }

    fn clients(&self) -> Result<&Clients, BusError> {
        self.clients
            .as_ref()
            .ok_or_else(|| BusError::Unavailable("kafka client is closed".to_string()))
    }

    /// Fetches the cluster metadata: `Ok` when a broker answered within the request timeout.
    pub async fn health(&self) -> Result<(), BusError> {
        let c = self.clients()?;
        let timeout = c.request_timeout();
        let producer = c.producer.clone();
        let md = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, timeout)
                .map(|md| md.brokers().len())
        })
        .await
        .map_err(join_error)?;
        match md {
            Ok(0) => Err(BusError::Unavailable(
                "kafka metadata lists no brokers".to_string(),
            )),
            Ok(_) => Ok(()),
            Err(e) => Err(BusError::Unavailable(format!(
                "kafka brokers {} did not answer: {e}",
                c.opts.brokers
            ))),
        }
    }

    /// `(low, high)` watermarks of partition 0: the oldest offset still in the log and the
    /// offset the next record will get.
    pub async fn watermarks(&self, topic: &str) -> Result<(i64, i64), BusError> {
        validate_topic(topic)?;
        self.clients()?.watermarks(topic).await
    }

    /// Creates `topic` with one partition unless it exists.
    pub async fn ensure_topic(&self, topic: &str) -> Result<(), BusError> {
        validate_topic(topic)?;
        self.clients()?.ensure_topic(topic).await
    }
}

impl Clients {
    fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.opts.request_timeout_ms)
    }

    async fn ensure_topic(&self, topic: &str) -> Result<(), BusError> {
        if self
            .known_topics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(topic)
        {
            return Ok(());
        }
        let timeout = self.request_timeout();
        let new = NewTopic::new(
            topic,
            1,
            TopicReplication::Fixed(self.opts.replication_factor),
        );
        let opts = AdminOptions::new()
            .request_timeout(Some(timeout))
            .operation_timeout(Some(timeout));
        // The admin request has its own timeout; the outer one is a backstop.
        let res = tokio::time::timeout(
            timeout + Duration::from_secs(1),
            self.admin.create_topics([&new], &opts),
        )
        .await
        .map_err(|_| BusError::Unavailable(format!("creating topic {topic} timed out")))?
        .map_err(|e| BusError::Unavailable(format!("cannot create topic {topic}: {e}")))?;
        for r in res {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((
                    _,
                    code @ (RDKafkaErrorCode::InvalidTopic
                    | RDKafkaErrorCode::InvalidPartitions
                    | RDKafkaErrorCode::InvalidReplicationFactor
                    | RDKafkaErrorCode::TopicAuthorizationFailed),
                )) => {
                    return Err(BusError::Invalid(format!(
                        "cannot create topic {topic}: {code}"
                    )));
                }
                Err((_, code)) => {
                    return Err(BusError::Unavailable(format!(
                        "cannot create topic {topic}: {code}"
                    )));
                }
            }
        }
        self.known_topics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(topic.to_string());
        Ok(())
    }

    async fn watermarks(&self, topic: &str) -> Result<(i64, i64), BusError> {
        let timeout = self.request_timeout();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let producer = self.producer.clone();
            let t = topic.to_string();
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let res = tokio::task::spawn_blocking(move || {
                producer.client().fetch_watermarks(&t, PARTITION, remaining)
            })
            .await
            .map_err(join_error)?;
            match res {
                Ok(w) => return Ok(w),
                // Just created: the broker may not list it yet.
                Err(e)
                    if e.rdkafka_error_code()
                        == Some(RDKafkaErrorCode::UnknownTopicOrPartition)
                        && tokio::time::Instant::now() + Duration::from_millis(100) < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => {
                    return Err(BusError::Unavailable(format!(
                        "cannot read the offsets of {topic}: {e}"
                    )));
                }
            }
        }
    }
}

impl Drop for KafkaStreamHandler {
    fn drop(&mut self) {
        // Dropping the producer flushes (up to 500 ms) and joins librdkafka's threads: keep
        // that off the async worker threads.
        if let (Some(c), Ok(rt)) = (self.clients.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn_blocking(move || drop(c));
        }
    }
}

fn produce_error(topic: &str, e: &KafkaError) -> BusError {
    match e.rdkafka_error_code() {
        Some(
            code @ (RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::InvalidTopic),
        ) => BusError::Invalid(format!("publish to {topic} refused: {code}")),
        _ => BusError::Unavailable(format!("publish to {topic} failed: {e}")),
    }
}

#[async_trait]
impl StreamHandler for KafkaStreamHandler {
    async fn publish(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<(), BusError> {
        validate_topic(topic)?;
        let c = self.clients()?;
        c.ensure_topic(topic).await?;
        let mut record = FutureRecord::<[u8], [u8]>::to(topic)
            .partition(PARTITION)
            .payload(payload)
            .timestamp(now_ms());
        if let Some(k) = key {
            record = record.key(k);
        }
        let queue_timeout = Timeout::After(Duration::from_millis(c.opts.message_timeout_ms));
        match c.producer.send(record, queue_timeout).await {
            Ok(_) => Ok(()),
            Err((e, _)) => Err(produce_error(topic, &e)),
        }
    }

    async fn reader(&self, topic: &str, start: StartAt) -> Result<Box<dyn TopicReader>, BusError> {
        validate_topic(topic)?;
        validate_start(start)?;
        let c = self.clients()?;
        c.ensure_topic(topic).await?;
        let offset = match start {
            // An explicit offset: with the logical Offset::Beginning librdkafka took ~500 ms
            // longer to deliver the first record from Tansu.
            StartAt::Beginning => Offset::Offset(c.watermarks(topic).await?.0),
            // Resolved now, not when the first fetch starts, so that a record published
            // right after `reader` returns is not skipped.
            StartAt::End => Offset::Offset(c.watermarks(topic).await?.1),
            // Outside the log: the nearest end (Kafka would answer OFFSET_OUT_OF_RANGE).
            StartAt::Offset(k) => {
                let (low, high) = c.watermarks(topic).await?;
                Offset::Offset(k.clamp(low, high))
            }
        };
        let config = c.consumer_config.clone();
        let t = topic.to_string();
        let consumer = tokio::task::spawn_blocking(move || -> Result<Consumer0, BusError> {
            let consumer: Consumer0 = config
                .create_with_context(TracingContext)
                .map_err(config_error)?;
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&t, PARTITION, offset)
                .map_err(|e| BusError::Invalid(format!("bad start offset: {e}")))?;
            consumer
                .assign(&tpl)
                .map_err(|e| BusError::Unavailable(format!("cannot assign {t}: {e}")))?;
            Ok(consumer)
        })
        .await
        .map_err(join_error)??;
        Ok(Box::new(KafkaReader {
            topic: topic.to_string(),
            consumer: Some(consumer),
        }))
    }

    fn kind(&self) -> &'static str {
        "kafka"
    }

    async fn health(&self) -> Result<(), BusError> {
        KafkaStreamHandler::health(self).await
    }
}

struct KafkaReader {
    topic: String,
    /// `None` only while being dropped.
    consumer: Option<Consumer0>,
}

#[async_trait]
impl TopicReader for KafkaReader {
    async fn next(&mut self, timeout: Duration) -> Result<Option<Record>, BusError> {
        let Some(consumer) = &self.consumer else {
            return Ok(None);
        };
        match tokio::time::timeout(timeout, consumer.recv()).await {
            Err(_) => Ok(None),
            Ok(Ok(m)) => Ok(Some(Record {
                topic: m.topic().to_string(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                timestamp_ms: m.timestamp().to_millis().unwrap_or(-1),
            })),
            Ok(Err(e)) => Err(BusError::Unavailable(format!(
                "reading {} failed: {e}",
                self.topic
            ))),
        }
    }
}

impl Drop for KafkaReader {
    fn drop(&mut self) {
        // Closing a consumer that has a group.id polls until librdkafka confirms (~100 ms).
        if let (Some(c), Ok(rt)) = (self.consumer.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn_blocking(move || drop(c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_debug_hides_secrets() {
        let mut o = KafkaOptions::new("h:1");
        o.sasl = Some(SaslOptions {
            security_protocol: "SASL_PLAINTEXT".into(),
            mechanism: "PLAIN".into(),
            username: "alice".into(),
            password: "hunter2".into(),
        });
        o.extra = vec![
            ("ssl.key.password".into(), "s3cret".into()),
            ("sasl.oauthbearer.client.secret".into(), "s3cret".into()),
            ("linger.ms".into(), "7".into()),
        ];
        let d = format!("{o:?}");
        assert!(!d.contains("hunter2") && !d.contains("s3cret"), "{d}");
        assert!(
            d.contains("alice") && d.contains("linger.ms") && d.contains("\"7\""),
            "{d}"
        );
        assert_eq!(o.compression, "gzip");
        assert_eq!(o.client_id, "serrano");
    }

    #[tokio::test]
    async fn bad_options_are_invalid() {
        let cases: Vec<fn(&mut KafkaOptions)> = vec![
            |o| o.brokers = "  ".into(),
            |o| o.client_id = String::new(),
            |o| o.message_timeout_ms = 0,
            |o| o.replication_factor = 0,
            |o| o.replication_factor = -2,
            |o| o.batch_records = 0,
            |o| o.batch_records = 2_000_000,
            |o| o.compression = "brotli".into(),
            |o| o.extra = vec![("no.such.property".into(), "1".into())],
        ];
        for (i, f) in cases.iter().enumerate() {
            let mut o = KafkaOptions::new("127.0.0.1:1");
            f(&mut o);
            let err = KafkaStreamHandler::connect(o).err();
            assert!(
                matches!(err, Some(BusError::Invalid(_))),
                "case {i}: {err:?}"
            );
        }
    }

    #[tokio::test]
    async fn config_error_does_not_echo_the_value() {
        let mut o = KafkaOptions::new("127.0.0.1:1");
        o.extra = vec![("security.protocol".into(), "hunter2-proto".into())];
        let err = KafkaStreamHandler::connect(o).err().map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(err.contains("security.protocol"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn broker_down_is_unavailable_within_the_timeouts() {
        let mut o = KafkaOptions::new("127.0.0.1:1");
        o.request_timeout_ms = 1_000;
        o.message_timeout_ms = 1_500;
        let h = KafkaStreamHandler::connect(o).unwrap();
        let started = std::time::Instant::now();
        assert!(matches!(h.health().await, Err(BusError::Unavailable(_))));
        assert!(matches!(
            h.publish("t", None, b"x").await,
            Err(BusError::Unavailable(_))
        ));
        assert!(matches!(
            h.reader("t", StartAt::Beginning).await.err(),
            Some(BusError::Unavailable(_))
        ));
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        // Validation comes before any I/O.
        assert!(matches!(
            h.publish("a b", None, b"x").await,
            Err(BusError::Invalid(_))
        ));
        assert!(matches!(
            h.reader("t", StartAt::Offset(-3)).await.err(),
            Some(BusError::Invalid(_))
        ));
    }
}

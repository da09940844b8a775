//! The Message Broker (D6.7 4.5.1): AMQP 0-9-1 exchanges, queues and bindings, as the platform
//! uses them (originals 1.7, 2.4, 9): durable result queues on the default exchange
//! (`kernels_results_{request_uuid}`, `{request_uuid}`, `watch_kernels_results_{request_uuid}`),
//! a direct exchange for ROT requests by engine id, one for results by client uuid, a fanout
//! exchange for engine events, a queue for heartbeats.
//!
//! [`MessageBroker`] is one connection to a broker. Two implementations: [`crate::rabbitmq`]
//! (RabbitMQ through `lapin`) and [`crate::amqp_embedded`] (in process); `amqp_contract` holds
//! the behaviour both must have.
//!
//! Semantics shared by both:
//! - Publishing waits for the broker's confirm and reports whether the message reached at least
//!   one queue ([`PublishOutcome`]; the publish is `mandatory`).
//! - Deliveries are acknowledged explicitly ([`Delivery::ack`], [`Delivery::nack`]). A
//!   [`Delivery`] dropped without either goes back to its queue (marked redelivered), and so
//!   does every unacknowledged delivery of a connection that closes or is lost: a consumer that
//!   crashes before its ack loses nothing. Delivery is therefore at least once.
//! - Requeued messages keep their original place in the queue (as RabbitMQ's classic queues).
//! - Queues declared with an empty name get a unique generated name `serrano.gen-<uuid>`. The
//!   client generates it (RabbitMQ would name it `amq.gen-...`) so that the RabbitMQ client can
//!   declare the same queue again after a reconnect.
//! - Topic exchanges match routing keys as RabbitMQ does ([`topic_matches`]).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::BusError;

/// The longest exchange name, queue name, routing key or property string (AMQP `shortstr`).
pub const MAX_NAME_LEN: usize = 255;
/// The largest payload either implementation accepts (RabbitMQ's own default limit is 128 MiB).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Unacknowledged deliveries a consumer holds at most when nothing else is asked for.
pub const DEFAULT_PREFETCH: u16 = 16;
/// Prefix of generated queue names.
pub const GENERATED_QUEUE_PREFIX: &str = "serrano.gen-";
/// The exchanges every broker has (RabbitMQ also has `amq.headers` and `amq.match`, whose type
/// the embedded broker does not implement).
pub const BUILTIN_EXCHANGES: [(&str, ExchangeKind); 3] = [
    ("amq.direct", ExchangeKind::Direct),
    ("amq.fanout", ExchangeKind::Fanout),
    ("amq.topic", ExchangeKind::Topic),
];

/// How an exchange routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExchangeKind {
    /// To the queues bound with a key equal to the routing key.
    Direct,
    /// To every bound queue; the routing key is ignored.
    Fanout,
    /// To the queues whose binding pattern matches the routing key ([`topic_matches`]).
    Topic,
}

impl ExchangeKind {
    /// The AMQP name of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Fanout => "fanout",
            Self::Topic => "topic",
        }
    }
}

impl fmt::Display for ExchangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Flags of a queue declaration. Declaring an existing queue with other flags is a
/// [`BusError::Conflict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueOptions {
    /// Survives a broker restart (RabbitMQ; the embedded broker keeps nothing across processes).
    pub durable: bool,
    /// Usable by the declaring connection only, and deleted when it closes.
    pub exclusive: bool,
    /// Deleted when its last consumer goes (only once it had one).
    pub auto_delete: bool,
}

impl QueueOptions {
    /// A durable queue (the platform's result queues).
    pub const fn durable() -> Self {
        Self {
            durable: true,
            exclusive: false,
            auto_delete: false,
        }
    }

    /// An exclusive, auto-delete queue (the ROT's per-consumer queues).
    pub const fn exclusive() -> Self {
        Self {
            durable: false,
            exclusive: true,
            auto_delete: true,
        }
    }
}

/// What a queue declaration reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    /// The queue's name (the generated one when declared with an empty name).
    pub name: String,
    /// Messages ready for delivery (not counting unacknowledged ones).
    pub message_count: u32,
    pub consumer_count: u32,
}

/// Message properties (the subset of AMQP's basic properties the platform uses).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MessageProperties {
    pub content_type: Option<String>,
    pub correlation_id: Option<String>,
    pub reply_to: Option<String>,
    pub message_id: Option<String>,
    /// Header values travel as AMQP long strings; headers of other types set by other clients
    /// arrive as their text (numbers, booleans) or are left out.
    pub headers: BTreeMap<String, String>,
    /// Delivery mode 2: a durable queue keeps the message across a broker restart.
    pub persistent: bool,
}

impl MessageProperties {
    /// `content_type: application/json`, persistent: how the platform's JSON messages go.
    pub fn json() -> Self {
        Self {
            content_type: Some("application/json".to_string()),
            persistent: true,
            ..Self::default()
        }
    }
}

/// Whether a published message reached at least one queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishOutcome {
    Routed,
    /// No queue matched: the broker dropped the message.
    Unroutable,
}

/// Options of a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumeOptions {
    /// Unacknowledged deliveries the consumer holds at most (AMQP `basic.qos` per consumer);
    /// 0 is unlimited.
    pub prefetch: u16,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        Self {
            prefetch: DEFAULT_PREFETCH,
        }
    }
}

/// How a delivery is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settlement {
    Ack,
    Nack { requeue: bool },
}

/// What a [`Delivery`] uses to settle with its broker.
#[async_trait]
pub(crate) trait Settle: Send + Sync {
    async fn settle(self: Box<Self>, how: Settlement) -> Result<(), BusError>;
    /// The delivery was dropped unsettled: requeue it, without waiting.
    fn abandon(self: Box<Self>);
}

/// One message taken from a queue, to be acknowledged.
pub struct Delivery {
    /// The exchange it was published to (`""`: the default exchange).
    pub exchange: String,
    pub routing_key: String,
    /// Delivered before and requeued (nack with requeue, or its consumer went).
    pub redelivered: bool,
    pub payload: Vec<u8>,
    pub properties: MessageProperties,
    settle: Option<Box<dyn Settle>>,
}

impl Delivery {
    pub(crate) fn new(
        exchange: String,
        routing_key: String,
        redelivered: bool,
        payload: Vec<u8>,
        properties: MessageProperties,
        settle: Box<dyn Settle>,
    ) -> Self {
        Self {
            exchange,
            routing_key,
            redelivered,
            payload,
            properties,
            settle: Some(settle),
        }
    }

    /// Acknowledges: the broker forgets the message. Fails when the delivery's channel or
    /// connection is gone; the broker has then requeued the message (it comes again).
    pub async fn ack(mut self) -> Result<(), BusError> {
        match self.settle.take() {
            Some(s) => s.settle(Settlement::Ack).await,
            None => Ok(()),
        }
    }

    /// Rejects: back to the queue (marked redelivered) when `requeue`, else dropped.
    pub async fn nack(mut self, requeue: bool) -> Result<(), BusError> {
        match self.settle.take() {
            Some(s) => s.settle(Settlement::Nack { requeue }).await,
            None => Ok(()),
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Some(s) = self.settle.take() {
            s.abandon();
        }
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("exchange", &self.exchange)
            .field("routing_key", &self.routing_key)
            .field("redelivered", &self.redelivered)
            .field("payload_len", &self.payload.len())
            .field("properties", &self.properties)
            .finish_non_exhaustive()
    }
}

/// The deliveries of one consumer. Dropping it cancels the consumer; deliveries it has not
/// handed out yet go back to the queue, those handed out stay valid until settled or dropped.
#[async_trait]
pub trait DeliveryStream: Send {
    /// The queue consumed.
    fn queue(&self) -> &str;

    /// The next delivery, or `None` when none came within `timeout`. An error is final
    /// ([`BusError::NotFound`]: the queue was deleted) or, for [`BusError::Unavailable`],
    /// temporary: the RabbitMQ consumer subscribes again once the connection is back.
    async fn next(&mut self, timeout: Duration) -> Result<Option<Delivery>, BusError>;
}

/// The deliveries of `stream` as a [`futures::Stream`]; it ends after the first error that is
/// not [`BusError::Unavailable`] (those are yielded and the stream goes on).
pub fn into_stream(
    stream: Box<dyn DeliveryStream>,
) -> futures::stream::BoxStream<'static, Result<Delivery, BusError>> {
    const POLL: Duration = Duration::from_secs(3600);
    Box::pin(futures::stream::unfold(Some(stream), |state| async move {
        let mut s = state?;
        loop {
            match s.next(POLL).await {
                Ok(Some(d)) => return Some((Ok(d), Some(s))),
                Ok(None) => {}
                Err(e @ BusError::Unavailable(_)) => return Some((Err(e), Some(s))),
                Err(e) => return Some((Err(e), None)),
            }
        }
    }))
}

/// One connection to an AMQP broker.
///
/// Names: exchanges and queues have 1 to 255 characters of `[A-Za-z0-9_.:-]`; the `amq.`
/// prefix is reserved to the broker (declaring such a name is [`BusError::Invalid`]). The
/// default exchange is `""`: every queue is bound to it by its name, and it cannot be declared,
/// bound to or deleted. Arguments are checked before any I/O ([`BusError::Invalid`]).
#[async_trait]
pub trait MessageBroker: Send + Sync + 'static {
    /// Declares an exchange (idempotent with the same kind and `durable`).
    async fn declare_exchange(
        &self,
        name: &str,
        kind: ExchangeKind,
        durable: bool,
    ) -> Result<(), BusError>;

    /// Deletes an exchange and its bindings; a missing one is not an error.
    async fn delete_exchange(&self, name: &str) -> Result<(), BusError>;

    /// Declares a queue (idempotent with the same options); an empty `name` generates one.
    async fn declare_queue(&self, name: &str, options: QueueOptions)
    -> Result<QueueInfo, BusError>;

    /// The queue's counts, or `None` when it does not exist.
    async fn queue_info(&self, name: &str) -> Result<Option<QueueInfo>, BusError>;

    /// Deletes a queue, its bindings and its ready messages (returns how many); its consumers
    /// end with [`BusError::NotFound`]. A missing queue is not an error (returns 0).
    async fn delete_queue(&self, name: &str) -> Result<u32, BusError>;

    /// Binds `queue` to `exchange` with `routing_key` (a pattern for topic exchanges; ignored
    /// by fanout ones). Idempotent.
    async fn bind_queue(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
    ) -> Result<(), BusError>;

    /// Removes a binding; a missing binding is not an error.
    async fn unbind_queue(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
    ) -> Result<(), BusError>;

    /// Publishes and waits for the broker's confirm. `exchange` `""` is the default exchange
    /// (routes to the queue named `routing_key`). A missing exchange is
    /// [`BusError::NotFound`]. The RabbitMQ client retries across a reconnect, so a message
    /// may be stored twice when a connection is lost between store and confirm.
    async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        properties: &MessageProperties,
    ) -> Result<PublishOutcome, BusError>;

    /// Starts a consumer of `queue` (must exist: else [`BusError::NotFound`]).
    async fn consume(
        &self,
        queue: &str,
        options: ConsumeOptions,
    ) -> Result<Box<dyn DeliveryStream>, BusError>;

    /// Takes the first ready message of `queue`, if any (AMQP `basic.get`, to be acknowledged).
    async fn get(&self, queue: &str) -> Result<Option<Delivery>, BusError>;

    /// [`MessageBroker::get`] until a message comes or `timeout` passes (polls; for tests and
    /// one-shot reads).
    async fn get_timeout(
        &self,
        queue: &str,
        timeout: Duration,
    ) -> Result<Option<Delivery>, BusError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pause = Duration::from_millis(10);
        loop {
            if let Some(d) = self.get(queue).await? {
                return Ok(Some(d));
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// `"embedded"` or `"rabbitmq"`.
    fn kind(&self) -> &'static str;

    /// Whether the broker answers (connects if needed).
    async fn health(&self) -> Result<(), BusError>;

    /// Closes the connection: its exclusive queues go, its unacknowledged deliveries are
    /// requeued, its consumers end; later calls fail with [`BusError::Unavailable`].
    async fn close(&self) -> Result<(), BusError>;
}

fn check_len(what: &str, s: &str) -> Result<(), BusError> {
    if s.len() > MAX_NAME_LEN {
        return Err(BusError::Invalid(format!(
            "{what} has {} bytes, more than {MAX_NAME_LEN}",
            s.len()
        )));
    }
    Ok(())
}

/// Checks an exchange or queue name used to refer to an existing one: 1 to 255 characters of
/// `[A-Za-z0-9_.:-]`.
pub fn validate_name(what: &str, name: &str) -> Result<(), BusError> {
    if name.is_empty() {
        return Err(BusError::Invalid(format!("{what} name is empty")));
    }
    check_len(&format!("{what} name"), name)?;
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')))
    {
        return Err(BusError::Invalid(format!(
            "{what} name {:?} has the character {c:?} (allowed: A-Z a-z 0-9 _ . : -)",
            name.chars().take(64).collect::<String>()
        )));
    }
    Ok(())
}

/// Checks a name to declare: as [`validate_name`], and not in the broker's `amq.` namespace.
pub fn validate_declared_name(what: &str, name: &str) -> Result<(), BusError> {
    validate_name(what, name)?;
    if name.starts_with("amq.") {
        return Err(BusError::Invalid(format!(
            "{what} name {name:?} uses the prefix amq., reserved to the broker"
        )));
    }
    Ok(())
}

/// Checks the exchange of a publish: `""` (the default exchange) or a valid name.
pub fn validate_publish_exchange(exchange: &str) -> Result<(), BusError> {
    if exchange.is_empty() {
        Ok(())
    } else {
        validate_name("exchange", exchange)
    }
}

/// Checks the exchange of a binding: not the default exchange.
/// The checks of a bind or unbind: a queue name, a bindable exchange, a routing key.
pub fn validate_binding(queue: &str, exchange: &str, routing_key: &str) -> Result<(), BusError> {
    validate_name("queue", queue)?;
    validate_bind_exchange(exchange)?;
    validate_routing_key(routing_key)
}

pub fn validate_bind_exchange(exchange: &str) -> Result<(), BusError> {
    if exchange.is_empty() {
        return Err(BusError::Invalid(
            "queues cannot be bound to the default exchange".to_string(),
        ));
    }
    validate_name("exchange", exchange)
}

/// Checks a routing key or binding pattern: at most 255 bytes.
pub fn validate_routing_key(key: &str) -> Result<(), BusError> {
    check_len("routing key", key)
}

/// Checks a message: payload size, property and header lengths.
pub fn validate_message(payload: &[u8], p: &MessageProperties) -> Result<(), BusError> {
    if payload.len() > MAX_MESSAGE_BYTES {
        return Err(BusError::Invalid(format!(
            "message of {} bytes is larger than the limit of {MAX_MESSAGE_BYTES}",
            payload.len()
        )));
    }
    for (what, v) in [
        ("content_type", &p.content_type),
        ("correlation_id", &p.correlation_id),
        ("reply_to", &p.reply_to),
        ("message_id", &p.message_id),
    ] {
        if let Some(v) = v {
            check_len(what, v)?;
        }
    }
    for k in p.headers.keys() {
        if k.is_empty() {
            return Err(BusError::Invalid("header name is empty".to_string()));
        }
        check_len("header name", k)?;
    }
    Ok(())
}

/// A fresh generated queue name.
pub(crate) fn generated_queue_name() -> String {
    format!("{GENERATED_QUEUE_PREFIX}{}", uuid::Uuid::new_v4().simple())
}

/// The words of a routing key or binding pattern, as RabbitMQ splits them: `""` has no words,
/// otherwise the parts between dots (possibly empty: `"a."` is `["a", ""]`).
fn words(key: &str) -> Vec<&str> {
    if key.is_empty() {
        Vec::new()
    } else {
        key.split('.').collect()
    }
}

/// Whether a topic binding `pattern` matches `routing_key`, as in RabbitMQ: both are split into
/// dot-separated words; `*` matches exactly one word, `#` zero or more, any other word itself.
pub fn topic_matches(pattern: &str, routing_key: &str) -> bool {
    let p = words(pattern);
    let r = words(routing_key);
    // m[j]: the first i pattern words match the first j key words (dynamic programming over i).
    let mut m = vec![false; r.len() + 1];
    m[0] = true;
    for w in &p {
        let mut next = vec![false; r.len() + 1];
        for j in 0..=r.len() {
            next[j] = match *w {
                // Zero words (m[j]) or one more word (next[j - 1]).
                "#" => m[j] || (j > 0 && next[j - 1]),
                "*" => j > 0 && m[j - 1],
                word => j > 0 && m[j - 1] && r[j - 1] == word,
            };
        }
        m = next;
    }
    m[r.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_matching() {
        let yes = [
            ("a.b.c", "a.b.c"),
            ("a.*.c", "a.b.c"),
            ("a.#", "a"),
            ("a.#", "a.b.c"),
            ("#", ""),
            ("#", "a.b"),
            ("#.c", "c"),
            ("#.c", "a.b.c"),
            ("a.#.c", "a.c"),
            ("a.#.c", "a.x.y.c"),
            ("", ""),
            ("a.*", "a."),
            ("*.*", "."),
            ("#.#", ""),
            ("a.#.#.b", "a.b"),
            ("*.#", "a"),
            ("#.*", "a.b"),
        ];
        let no = [
            ("a.b.c", "a.b"),
            ("a.*.c", "a.c"),
            ("a.*", "a"),
            ("a.*", "a.b.c"),
            ("*.#", ""),
            ("", "a"),
            ("a", ""),
            ("*", "a.b"),
            ("#.c", "c.d"),
            ("a.b", "a.bc"),
            ("a*", "ab"),
            // "" has no words; "*" wants exactly one.
            ("*", ""),
        ];
        for (p, k) in yes {
            assert!(topic_matches(p, k), "{p:?} should match {k:?}");
        }
        for (p, k) in no {
            assert!(!topic_matches(p, k), "{p:?} must not match {k:?}");
        }
    }

    #[test]
    fn names() {
        for ok in [
            "a",
            "kernels_results_1b4e28ba-2fa1-11d2-883f-0016d3cca427",
            "x:y.z",
            &"q".repeat(255),
        ] {
            assert!(validate_declared_name("queue", ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a/b", "é", &"q".repeat(256)] {
            assert!(
                matches!(validate_name("queue", bad), Err(BusError::Invalid(_))),
                "{bad:?}"
            );
        }
        assert!(validate_name("exchange", "amq.topic").is_ok());
        assert!(matches!(
            validate_declared_name("exchange", "amq.mine"),
            Err(BusError::Invalid(_))
        ));
        assert!(validate_publish_exchange("").is_ok());
        assert!(matches!(
            validate_bind_exchange(""),
            Err(BusError::Invalid(_))
        ));
        assert!(validate_routing_key(&"k".repeat(255)).is_ok());
        assert!(matches!(
            validate_routing_key(&"k".repeat(256)),
            Err(BusError::Invalid(_))
        ));
        let g = generated_queue_name();
        assert!(
            g.starts_with(GENERATED_QUEUE_PREFIX) && validate_declared_name("queue", &g).is_ok()
        );
        assert_ne!(g, generated_queue_name());
    }

    #[test]
    fn message_limits() {
        let mut p = MessageProperties::json();
        assert!(validate_message(b"x", &p).is_ok());
        p.headers.insert(String::new(), "v".into());
        assert!(matches!(
            validate_message(b"x", &p),
            Err(BusError::Invalid(_))
        ));
        let p = MessageProperties {
            correlation_id: Some("c".repeat(256)),
            ..MessageProperties::default()
        };
        assert!(matches!(
            validate_message(b"x", &p),
            Err(BusError::Invalid(_))
        ));
        let big = vec![0u8; MAX_MESSAGE_BYTES + 1];
        assert!(matches!(
            validate_message(&big, &MessageProperties::default()),
            Err(BusError::Invalid(_))
        ));
    }
}

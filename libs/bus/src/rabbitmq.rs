//! The Message Broker client for RabbitMQ (D6.7 4.5.1), AMQP 0-9-1 through `lapin` on tokio.
//!
//! - One AMQP connection per [`RabbitMqBroker`], opened lazily on first use from an
//!   `amqp://user:pass@host:port/vhost` URL (plain TCP: no TLS stack is built in). Heartbeats
//!   every 10 s unless the URL sets `?heartbeat=`.
//! - Reconnection: an operation that finds the connection lost reconnects (backoff from
//!   `reconnect_min_delay_ms` to `reconnect_max_delay_ms`) and retries, within
//!   `operation_timeout_ms`. After a reconnect, the exchanges, queues and bindings this client
//!   declared are declared again (so its exclusive queues come back under the same names,
//!   which is why generated queue names are chosen by the client), and consumers subscribe
//!   again. A publish retried after a lost connection may store the message twice.
//! - Publishes go through one channel in confirm mode, `mandatory`, so that the outcome says
//!   whether a queue took the message. Declarations, bindings and `get` each use a channel of
//!   their own: a refused one (404, 406) closes only that channel. Each consumer has its own
//!   channel with `basic.qos(prefetch)`; it stays open until the consumer and the deliveries it
//!   handed out are gone, and closing it requeues whatever was not acked.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions,
    BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::protocol::AMQPErrorKind;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::uri::{AMQPScheme, AMQPUri};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ErrorKind,
    ExchangeKind as LapinExchangeKind,
};
use tokio::time::Instant;

use crate::BusError;
use crate::amqp::{
    ConsumeOptions, Delivery, DeliveryStream, ExchangeKind, MessageBroker, MessageProperties,
    PublishOutcome, QueueInfo, QueueOptions, Settle, Settlement, generated_queue_name,
    validate_binding, validate_declared_name, validate_message, validate_name,
    validate_publish_exchange, validate_routing_key,
};

/// The heartbeat asked for when the URL sets none: a dead peer is noticed in about twice it.
const DEFAULT_HEARTBEAT_S: u16 = 10;
/// Bound on an ack or nack (they have no reply; this only guards a stuck connection).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach RabbitMQ.
#[derive(Clone)]
pub struct RabbitMqOptions {
    /// `amqp://user:pass@host:port/vhost` (vhost `%2f` is `/`; without a path, `/`).
    pub url: String,
    /// Shown by RabbitMQ (`connection_name` client property).
    pub connection_name: String,
    /// One connection attempt.
    pub connect_timeout_ms: u64,
    /// One operation, reconnection attempts included.
    pub operation_timeout_ms: u64,
    pub reconnect_min_delay_ms: u64,
    pub reconnect_max_delay_ms: u64,
}

impl RabbitMqOptions {
    /// The defaults with this URL: 5 s per connection attempt, 30 s per operation, reconnect
    /// delays from 100 ms to 5 s.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            connection_name: "serrano".to_string(),
            connect_timeout_ms: 5_000,
            operation_timeout_ms: 30_000,
            reconnect_min_delay_ms: 100,
            reconnect_max_delay_ms: 5_000,
        }
    }
}

impl fmt::Debug for RabbitMqOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RabbitMqOptions")
            .field("url", &redact_url(&self.url))
            .field("connection_name", &self.connection_name)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("operation_timeout_ms", &self.operation_timeout_ms)
            .field("reconnect_min_delay_ms", &self.reconnect_min_delay_ms)
            .field("reconnect_max_delay_ms", &self.reconnect_max_delay_ms)
            .finish()
    }
}

/// The URL with its password replaced by `***` (for logs and errors).
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                // Only fails for URLs that cannot have a password, which this one has.
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<unparsable URL>".to_string(),
    }
}

/// Parses the URL into lapin's form; checks what lapin would get wrong or cannot do.
fn parse_url(raw: &str) -> Result<AMQPUri, BusError> {
    let shown = redact_url(raw);
    let u = url::Url::parse(raw.trim())
        .map_err(|e| BusError::Invalid(format!("bad AMQP URL {shown}: {e}")))?;
    match u.scheme() {
        "amqp" => {}
        "amqps" => {
            return Err(BusError::Invalid(
                "amqps:// needs TLS, which this build does not include; use amqp://".to_string(),
            ));
        }
        s => {
            return Err(BusError::Invalid(format!(
                "AMQP URL {shown}: scheme {s:?} is not amqp"
            )));
        }
    }
    let host = match u.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        Some(url::Host::Ipv4(a)) => a.to_string(),
        Some(url::Host::Ipv6(a)) => a.to_string(),
        None => return Err(BusError::Invalid(format!("AMQP URL {shown} has no host"))),
    };
    let mut uri: AMQPUri = raw.trim().parse().map_err(|e: String| {
        // lapin's messages may quote the URL, password included.
        let e = if u.password().is_some_and(|p| e.contains(p)) {
            "unparsable".to_string()
        } else {
            e
        };
        BusError::Invalid(format!("bad AMQP URL {shown}: {e}"))
    })?;
    // lapin keeps only domain names and connects to "localhost" for an IP address.
    uri.authority.host = host;
    if uri.scheme != AMQPScheme::AMQP {
        return Err(BusError::Invalid(format!("AMQP URL {shown}: not amqp://")));
    }
    if uri.query.heartbeat.is_none() {
        uri.query.heartbeat = Some(DEFAULT_HEARTBEAT_S);
    }
    Ok(uri)
}

fn short(what: &str, s: &str) -> Result<ShortString, BusError> {
    ShortString::try_new(s).map_err(|e| BusError::Invalid(format!("{what}: {e}")))
}

/// A RabbitMQ connection (reconnecting); see the module documentation.
pub struct RabbitMqBroker {
    shared: Arc<Shared>,
}

struct Shared {
    opts: RabbitMqOptions,
    uri: AMQPUri,
    shown_url: String,
    link: tokio::sync::Mutex<Option<Arc<Link>>>,
    generation: AtomicU64,
    topology: Mutex<Topology>,
    closed: AtomicBool,
}

/// One AMQP connection.
struct Link {
    conn: Connection,
    generation: u64,
    /// The confirm-mode channel of publishes; replaced when it closes.
    publisher: tokio::sync::Mutex<Option<Channel>>,
}

/// What this client declared, to declare again after a reconnect.
#[derive(Default, Clone)]
struct Topology {
    exchanges: Vec<(String, ExchangeKind, bool)>,
    queues: Vec<(String, QueueOptions)>,
    /// (queue, exchange, key).
    bindings: Vec<(String, String, String)>,
    /// Live consumers per queue (an auto-delete queue is forgotten with its last one).
    consumers: HashMap<String, usize>,
}

impl Topology {
    fn forget_queue(&mut self, name: &str) {
        self.queues.retain(|(q, _)| q != name);
        self.bindings.retain(|(q, _, _)| q != name);
    }

    fn forget_exchange(&mut self, name: &str) {
        self.exchanges.retain(|(e, _, _)| e != name);
        self.bindings.retain(|(_, e, _)| e != name);
    }
}

/// Why an operation failed.
enum Failure {
    /// Final, already mapped (timeouts, closed client).
    Bus(BusError),
    /// Refused by the broker on a channel that the connection survived.
    Amqp(lapin::Error),
}

fn reply_code(e: &lapin::Error) -> Option<u16> {
    match e.kind() {
        ErrorKind::ProtocolError(a) => Some(a.get_id()),
        _ => None,
    }
}

fn map_amqp(what: &str, e: &lapin::Error) -> BusError {
    let text = match e.kind() {
        ErrorKind::ProtocolError(a) => a.get_message().to_string(),
        _ => e.to_string(),
    };
    match reply_code(e) {
        Some(404) => BusError::NotFound(format!("{what}: {text}")),
        Some(405 | 406) => BusError::Conflict(format!("{what}: {text}")),
        Some(403) => BusError::Invalid(format!("{what}: access refused: {text}")),
        _ => BusError::Unavailable(format!("{what}: {e}")),
    }
}

impl Failure {
    fn into_bus(self, what: &str) -> BusError {
        match self {
            Self::Bus(e) => e,
            Self::Amqp(e) => map_amqp(what, &e),
        }
    }

    fn code(&self) -> Option<u16> {
        match self {
            Self::Amqp(e) => reply_code(e),
            Self::Bus(_) => None,
        }
    }
}

/// Whether an error means the connection is gone (retry after reconnecting).
fn connection_lost(e: &lapin::Error, link: &Link) -> bool {
    if !link.conn.status().connected() {
        return true;
    }
    match e.kind() {
        ErrorKind::IOError(_) | ErrorKind::InvalidConnectionState(_) => true,
        ErrorKind::MissingHeartbeatError => true,
        ErrorKind::ProtocolError(a) => matches!(a.kind(), AMQPErrorKind::Hard(_)),
        _ => false,
    }
}

fn closed_error() -> BusError {
    BusError::Unavailable("the AMQP connection is closed".to_string())
}

fn lock_topology(m: &Mutex<Topology>) -> MutexGuard<'_, Topology> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Link {
    async fn publisher(&self) -> Result<Channel, lapin::Error> {
        let mut slot = self.publisher.lock().await;
        if let Some(ch) = slot.as_ref()
            && ch.status().connected()
        {
            return Ok(ch.clone());
        }
        let ch = self.conn.create_channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        *slot = Some(ch.clone());
        Ok(ch)
    }
}

impl Shared {
    fn props(&self) -> ConnectionProperties {
        ConnectionProperties::default()
            .with_connection_name(self.opts.connection_name.as_str().into())
    }

    fn op_deadline(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.opts.operation_timeout_ms)
    }

    /// The current connection, connecting (with backoff, until `deadline`) when there is none.
    async fn link(&self, deadline: Instant) -> Result<Arc<Link>, BusError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(closed_error());
        }
        let mut slot = tokio::time::timeout_at(deadline, self.link.lock())
            .await
            .map_err(|_| {
                BusError::Unavailable(format!(
                    "timed out waiting for the connection to {}",
                    self.shown_url
                ))
            })?;
        if let Some(l) = slot.as_ref() {
            if l.conn.status().connected() {
                return Ok(l.clone());
            }
            tracing::warn!(url = %self.shown_url, "AMQP connection lost; reconnecting");
        }
        *slot = None;
        let mut delay = Duration::from_millis(self.opts.reconnect_min_delay_ms.max(1));
        let max_delay = Duration::from_millis(self.opts.reconnect_max_delay_ms.max(1));
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return Err(closed_error());
            }
            let attempt_end =
                deadline.min(Instant::now() + Duration::from_millis(self.opts.connect_timeout_ms));
            let last = match tokio::time::timeout_at(
                attempt_end,
                Connection::connect_uri(self.uri.clone(), self.props()),
            )
            .await
            {
                Ok(Ok(conn)) => {
                    let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
                    let link = Arc::new(Link {
                        conn,
                        generation,
                        publisher: tokio::sync::Mutex::new(None),
                    });
                    match tokio::time::timeout_at(deadline, self.replay(&link)).await {
                        Ok(Ok(())) => {
                            if generation > 1 {
                                tracing::info!(url = %self.shown_url, generation, "AMQP connection re-established");
                            }
                            *slot = Some(link.clone());
                            return Ok(link);
                        }
                        Ok(Err(e)) => format!("connection lost while restoring queues: {e}"),
                        Err(_) => "timed out restoring queues".to_string(),
                    }
                }
                Ok(Err(e)) => {
                    // Wrong credentials or vhost: retrying does not help.
                    if matches!(reply_code(&e), Some(403 | 530)) {
                        return Err(BusError::Unavailable(format!(
                            "{} refused the connection: {e}",
                            self.shown_url
                        )));
                    }
                    e.to_string()
                }
                Err(_) => "connection attempt timed out".to_string(),
            };
            let now = Instant::now();
            if now + delay >= deadline {
                return Err(BusError::Unavailable(format!(
                    "cannot connect to {}: {last}",
                    self.shown_url
                )));
            }
            tracing::debug!(url = %self.shown_url, error = %last, "AMQP connect failed; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(max_delay);
        }
    }

    /// Declares this client's exchanges, queues and bindings on a new connection. A refused
    /// declaration is logged and skipped; a lost connection fails the replay.
    async fn replay(&self, link: &Link) -> Result<(), lapin::Error> {
        let topo = lock_topology(&self.topology).clone();
        if topo.exchanges.is_empty() && topo.queues.is_empty() {
            return Ok(());
        }
        let mut ch = link.conn.create_channel().await?;
        for (name, kind, durable) in &topo.exchanges {
            let r = declare_exchange_on(&ch, name, *kind, *durable).await;
            ch = self
                .after_replay_step(link, ch, "exchange", name, r)
                .await?;
        }
        for (name, opts) in &topo.queues {
            let r = declare_queue_on(&ch, name, *opts).await.map(|_| ());
            ch = self.after_replay_step(link, ch, "queue", name, r).await?;
        }
        for (q, ex, key) in &topo.bindings {
            let r = bind_on(&ch, q, ex, key).await;
            ch = self.after_replay_step(link, ch, "binding of", q, r).await?;
        }
        Ok(())
    }

    async fn after_replay_step(
        &self,
        link: &Link,
        ch: Channel,
        what: &str,
        name: &str,
        r: Result<(), lapin::Error>,
    ) -> Result<Channel, lapin::Error> {
        match r {
            Ok(()) => Ok(ch),
            Err(e) if connection_lost(&e, link) => Err(e),
            Err(e) => {
                tracing::warn!(what, name, error = %e, "could not restore after reconnecting");
                link.conn.create_channel().await
            }
        }
    }

    /// Runs `op` on the connection until `deadline`, reconnecting and retrying when the
    /// connection is lost.
    async fn run_until<T, F, Fut>(&self, deadline: Instant, mut op: F) -> Result<T, Failure>
    where
        F: FnMut(Arc<Link>) -> Fut + Send,
        Fut: Future<Output = Result<T, lapin::Error>> + Send,
        T: Send,
    {
        loop {
            let link = self.link(deadline).await.map_err(Failure::Bus)?;
            match tokio::time::timeout_at(deadline, op(link.clone())).await {
                Err(_) => {
                    return Err(Failure::Bus(BusError::Unavailable(format!(
                        "no answer from {} in time",
                        self.shown_url
                    ))));
                }
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) if connection_lost(&e, &link) => {
                    if self.closed.load(Ordering::SeqCst) {
                        return Err(Failure::Bus(closed_error()));
                    }
                    tracing::debug!(error = %e, "AMQP operation hit a lost connection; retrying");
                }
                Ok(Err(e)) => return Err(Failure::Amqp(e)),
            }
        }
    }

    async fn run<T, F, Fut>(&self, op: F) -> Result<T, Failure>
    where
        F: FnMut(Arc<Link>) -> Fut + Send,
        Fut: Future<Output = Result<T, lapin::Error>> + Send,
        T: Send,
    {
        self.run_until(self.op_deadline(), op).await
    }

    fn topology(&self) -> MutexGuard<'_, Topology> {
        lock_topology(&self.topology)
    }

    /// Declares `queue` and its bindings again from the record (a consumer subscribing
    /// after a reconnect whose replay could not restore it).
    async fn restore_queue(&self, link: &Link, queue: &str) -> Result<bool, lapin::Error> {
        let (opts, bindings) = {
            let t = self.topology();
            let Some((_, opts)) = t.queues.iter().find(|(q, _)| q == queue) else {
                return Ok(false);
            };
            let b: Vec<(String, String)> = t
                .bindings
                .iter()
                .filter(|(q, _, _)| q == queue)
                .map(|(_, e, k)| (e.clone(), k.clone()))
                .collect();
            (*opts, b)
        };
        let ch = link.conn.create_channel().await?;
        declare_queue_on(&ch, queue, opts).await?;
        for (ex, key) in bindings {
            bind_on(&ch, queue, &ex, &key).await?;
        }
        Ok(true)
    }
}

async fn declare_exchange_on(
    ch: &Channel,
    name: &str,
    kind: ExchangeKind,
    durable: bool,
) -> Result<(), lapin::Error> {
    let kind = match kind {
        ExchangeKind::Direct => LapinExchangeKind::Direct,
        ExchangeKind::Fanout => LapinExchangeKind::Fanout,
        ExchangeKind::Topic => LapinExchangeKind::Topic,
    };
    ch.exchange_declare(
        name.into(),
        kind,
        ExchangeDeclareOptions {
            durable,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
}

async fn declare_queue_on(
    ch: &Channel,
    name: &str,
    o: QueueOptions,
) -> Result<lapin::Queue, lapin::Error> {
    ch.queue_declare(
        name.into(),
        QueueDeclareOptions {
            passive: false,
            durable: o.durable,
            exclusive: o.exclusive,
            auto_delete: o.auto_delete,
            nowait: false,
        },
        FieldTable::default(),
    )
    .await
}

async fn bind_on(ch: &Channel, queue: &str, ex: &str, key: &str) -> Result<(), lapin::Error> {
    ch.queue_bind(
        queue.into(),
        ex.into(),
        key.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
}

fn queue_info(q: &lapin::Queue) -> QueueInfo {
    QueueInfo {
        name: q.name().to_string(),
        message_count: q.message_count(),
        consumer_count: q.consumer_count(),
    }
}

fn to_basic(p: &MessageProperties) -> Result<BasicProperties, BusError> {
    let mut b = BasicProperties::default();
    if let Some(v) = &p.content_type {
        b = b.with_content_type(short("content_type", v)?);
    }
    if let Some(v) = &p.correlation_id {
        b = b.with_correlation_id(short("correlation_id", v)?);
    }
    if let Some(v) = &p.reply_to {
        b = b.with_reply_to(short("reply_to", v)?);
    }
    if let Some(v) = &p.message_id {
        b = b.with_message_id(short("message_id", v)?);
    }
    if !p.headers.is_empty() {
        let mut t = FieldTable::default();
        for (k, v) in &p.headers {
            t.insert(
                short("header name", k)?,
                AMQPValue::LongString(v.as_str().into()),
            );
        }
        b = b.with_headers(t);
    }
    if p.persistent {
        b = b.with_delivery_mode(2);
    }
    Ok(b)
}

/// A header value as text: strings as they are, numbers and booleans printed; others left out.
fn header_text(v: &AMQPValue) -> Option<String> {
    Some(match v {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.to_string(),
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::ShortShortInt(n) => n.to_string(),
        AMQPValue::ShortShortUInt(n) => n.to_string(),
        AMQPValue::ShortInt(n) => n.to_string(),
        AMQPValue::ShortUInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::Float(n) => n.to_string(),
        AMQPValue::Double(n) => n.to_string(),
        AMQPValue::Timestamp(n) => n.to_string(),
        _ => return None,
    })
}

fn from_basic(b: &BasicProperties) -> MessageProperties {
    let text = |s: &Option<ShortString>| s.as_ref().map(ToString::to_string);
    MessageProperties {
        content_type: text(b.content_type()),
        correlation_id: text(b.correlation_id()),
        reply_to: text(b.reply_to()),
        message_id: text(b.message_id()),
        headers: b
            .headers()
            .as_ref()
            .map(|t| {
                t.inner()
                    .iter()
                    .filter_map(|(k, v)| header_text(v).map(|s| (k.to_string(), s)))
                    .collect()
            })
            .unwrap_or_default(),
        persistent: *b.delivery_mode() == Some(2),
    }
}

fn into_delivery(d: lapin::message::Delivery, channel: Channel) -> Delivery {
    Delivery::new(
        d.exchange.to_string(),
        d.routing_key.to_string(),
        d.redelivered,
        d.data,
        from_basic(&d.properties),
        Box::new(LapinSettle {
            acker: d.acker,
            _channel: channel,
        }),
    )
}

struct LapinSettle {
    acker: lapin::Acker,
    /// Keeps the delivery's channel open until it is settled (closing it would requeue).
    _channel: Channel,
}

#[async_trait]
impl Settle for LapinSettle {
    async fn settle(self: Box<Self>, how: Settlement) -> Result<(), BusError> {
        let fut = async {
            match how {
                Settlement::Ack => self.acker.ack(BasicAckOptions::default()).await,
                Settlement::Nack { requeue } => {
                    self.acker
                        .nack(BasicNackOptions {
                            multiple: false,
                            requeue,
                        })
                        .await
                }
            }
        };
        match tokio::time::timeout(SETTLE_TIMEOUT, fut).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(BusError::Unavailable(
                "the delivery's channel is closed: the broker has requeued the message".to_string(),
            )),
            Ok(Err(e)) => Err(BusError::Unavailable(format!("ack/nack failed: {e}"))),
            Err(_) => Err(BusError::Unavailable("ack/nack timed out".to_string())),
        }
    }

    fn abandon(self: Box<Self>) {
        // Without a runtime the connection goes too, and the broker requeues anyway.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let requeue = BasicNackOptions {
                    multiple: false,
                    requeue: true,
                };
                let _ = tokio::time::timeout(SETTLE_TIMEOUT, self.acker.nack(requeue)).await;
            });
        }
    }
}

impl RabbitMqBroker {
    /// Checks the options; connects on first use (see [`MessageBroker::health`]).
    pub fn new(options: RabbitMqOptions) -> Result<Self, BusError> {
        let uri = parse_url(&options.url)?;
        if options.connection_name.is_empty() || options.connection_name.len() > 255 {
            return Err(BusError::Invalid(
                "connection_name must have 1 to 255 bytes".to_string(),
            ));
        }
        if options.connect_timeout_ms == 0 || options.operation_timeout_ms == 0 {
            return Err(BusError::Invalid(
                "connect_timeout_ms and operation_timeout_ms must be > 0".to_string(),
            ));
        }
        if options.reconnect_min_delay_ms > options.reconnect_max_delay_ms {
            return Err(BusError::Invalid(
                "reconnect_min_delay_ms must not exceed reconnect_max_delay_ms".to_string(),
            ));
        }
        let shown_url = redact_url(&options.url);
        Ok(Self {
            shared: Arc::new(Shared {
                opts: options,
                uri,
                shown_url,
                link: tokio::sync::Mutex::new(None),
                generation: AtomicU64::new(0),
                topology: Mutex::new(Topology::default()),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// How many connections this client has opened (1 until the first reconnect).
    pub fn connections_opened(&self) -> u64 {
        self.shared.generation.load(Ordering::SeqCst)
    }

    /// Whether `exchange` exists (the default exchange always does).
    async fn exchange_exists(&self, exchange: &str) -> Result<bool, BusError> {
        if exchange.is_empty() {
            return Ok(true);
        }
        let r = self
            .shared
            .run(|link| async move {
                let ch = link.conn.create_channel().await?;
                ch.exchange_declare(
                    exchange.into(),
                    LapinExchangeKind::Direct,
                    ExchangeDeclareOptions {
                        passive: true,
                        ..ExchangeDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
            })
            .await;
        match r {
            Ok(()) => Ok(true),
            Err(f) if f.code() == Some(404) => Ok(false),
            Err(f) => Err(f.into_bus("checking an exchange")),
        }
    }

    async fn subscribe(
        shared: &Shared,
        queue: &str,
        prefetch: u16,
        deadline: Instant,
    ) -> Result<Subscription, BusError> {
        shared
            .run_until(deadline, |link| async move {
                match subscribe_on(&link, queue, prefetch).await {
                    Err(e) if matches!(reply_code(&e), Some(404 | 405)) => {
                        if shared.restore_queue(&link, queue).await? {
                            subscribe_on(&link, queue, prefetch).await
                        } else {
                            Err(e)
                        }
                    }
                    other => other,
                }
            })
            .await
            .map_err(|f| f.into_bus(&format!("consuming {queue}")))
    }
}

struct Subscription {
    link: Arc<Link>,
    channel: Channel,
    consumer: lapin::Consumer,
}

async fn subscribe_on(
    link: &Arc<Link>,
    queue: &str,
    prefetch: u16,
) -> Result<Subscription, lapin::Error> {
    let channel = link.conn.create_channel().await?;
    channel
        .basic_qos(prefetch, BasicQosOptions { global: false })
        .await?;
    let consumer = channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(Subscription {
        link: link.clone(),
        channel,
        consumer,
    })
}

#[async_trait]
impl MessageBroker for RabbitMqBroker {
    async fn declare_exchange(
        &self,
        name: &str,
        kind: ExchangeKind,
        durable: bool,
    ) -> Result<(), BusError> {
        validate_declared_name("exchange", name)?;
        self.shared
            .run(|link| async move {
                let ch = link.conn.create_channel().await?;
                declare_exchange_on(&ch, name, kind, durable).await
            })
            .await
            .map_err(|f| f.into_bus(&format!("declaring exchange {name}")))?;
        let mut t = self.shared.topology();
        t.exchanges.retain(|(e, _, _)| e != name);
        t.exchanges.push((name.to_string(), kind, durable));
        Ok(())
    }

    async fn delete_exchange(&self, name: &str) -> Result<(), BusError> {
        validate_declared_name("exchange", name)?;
        let r = self
            .shared
            .run(|link| async move {
                let ch = link.conn.create_channel().await?;
                ch.exchange_delete(name.into(), ExchangeDeleteOptions::default())
                    .await
            })
            .await;
        match r {
            Ok(()) => {}
            Err(f) if f.code() == Some(404) => {}
            Err(f) => return Err(f.into_bus(&format!("deleting exchange {name}"))),
        }
        self.shared.topology().forget_exchange(name);
        Ok(())
    }

    async fn declare_queue(
        &self,
        name: &str,
        options: QueueOptions,
    ) -> Result<QueueInfo, BusError> {
        let name = if name.is_empty() {
            generated_queue_name()
        } else {
            validate_declared_name("queue", name)?;
            name.to_string()
        };
        let n = name.as_str();
        let q = self
            .shared
            .run(|link| async move {
                let ch = link.conn.create_channel().await?;
                declare_queue_on(&ch, n, options).await
            })
            .await
            .map_err(|f| f.into_bus(&format!("declaring queue {name}")))?;
        let mut t = self.shared.topology();
        t.queues.retain(|(q, _)| q != &name);
        t.queues.push((name.clone(), options));
        Ok(queue_info(&q))
    }

    async fn queue_info(&self, name: &str) -> Result<Option<QueueInfo>, BusError> {
        validate_name("queue", name)?;
        let r = self
            .shared
            .run(|link| async move {
                let ch = link.conn.create_channel().await?;
                ch.queue_declare(
                    name.into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
            })
            .await;
        match r {
            Ok(q) => Ok(Some(queue_info(&q))),
            Err(f) if f.code() == Some(404) => Ok(None),
            Err(f) => Err(f.into_bus(&format!("inspecting queue {name}"))),
        }
    }

    async fn delete_queue(&self, name: &str) -> Result<u32, BusError> {
        validate_name("queue", name)?;
        let r = self
            .shared
            .run(|link| async move {
                let ch = link.conn.create_channel().await?;
                ch.queue_delete(name.into(), QueueDeleteOptions::default())
                    .await
            })
            .await;
        let n = match r {
            Ok(n) => n,
            Err(f) if f.code() == Some(404) => 0,
            Err(f) => return Err(f.into_bus(&format!("deleting queue {name}"))),
        };
        self.shared.topology().forget_queue(name);
        Ok(n)
    }

    async fn bind_queue(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
    ) -> Result<(), BusError> {
        validate_binding(queue, exchange, routing_key)?;
        self.shared
            .run(|link| async move {
                let ch = link.conn.create_channel().await?;
                bind_on(&ch, queue, exchange, routing_key).await
            })
            .await
            .map_err(|f| f.into_bus(&format!("binding {queue} to {exchange}")))?;
        let b = (
            queue.to_string(),
            exchange.to_string(),
            routing_key.to_string(),
        );
        let mut t = self.shared.topology();
        if !t.bindings.contains(&b) {
            t.bindings.push(b);
        }
        Ok(())
    }

    async fn unbind_queue(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
    ) -> Result<(), BusError> {
        validate_binding(queue, exchange, routing_key)?;
        self.shared
            .run(|link| async move {
                let ch = link.conn.create_channel().await?;
                ch.queue_unbind(
                    queue.into(),
                    exchange.into(),
                    routing_key.into(),
                    FieldTable::default(),
                )
                .await
            })
            .await
            .map_err(|f| f.into_bus(&format!("unbinding {queue} from {exchange}")))?;
        self.shared
            .topology()
            .bindings
            .retain(|(q, e, k)| !(q == queue && e == exchange && k == routing_key));
        Ok(())
    }

    async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        properties: &MessageProperties,
    ) -> Result<PublishOutcome, BusError> {
        validate_publish_exchange(exchange)?;
        validate_routing_key(routing_key)?;
        validate_message(payload, properties)?;
        let props = to_basic(properties)?;
        let what = format!("publishing to exchange {exchange:?}");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let props = &props;
            let r = self
                .shared
                .run(|link| async move {
                    let ch = link.publisher().await?;
                    ch.basic_publish(
                        exchange.into(),
                        routing_key.into(),
                        BasicPublishOptions {
                            mandatory: true,
                            immediate: false,
                        },
                        payload,
                        props.clone(),
                    )
                    .await?
                    .await
                })
                .await;
            match r {
                Ok(Confirmation::Ack(None) | Confirmation::NotRequested) => {
                    return Ok(PublishOutcome::Routed);
                }
                Ok(Confirmation::Ack(Some(_))) => return Ok(PublishOutcome::Unroutable),
                Ok(Confirmation::Nack(_)) => {
                    return Err(BusError::Unavailable(format!(
                        "{what}: the broker refused the message (nack)"
                    )));
                }
                // The publish channel is shared: a refusal may belong to a concurrent publish
                // (to a missing exchange). Retry when ours exists.
                Err(Failure::Amqp(e)) => {
                    if attempt < 3 && self.exchange_exists(exchange).await? {
                        tracing::debug!(error = %e, "publish channel closed by another publish; retrying");
                        continue;
                    }
                    return Err(map_amqp(&what, &e));
                }
                Err(f) => return Err(f.into_bus(&what)),
            }
        }
    }

    async fn consume(
        &self,
        queue: &str,
        options: ConsumeOptions,
    ) -> Result<Box<dyn DeliveryStream>, BusError> {
        validate_name("queue", queue)?;
        let sub = Self::subscribe(
            &self.shared,
            queue,
            options.prefetch,
            self.shared.op_deadline(),
        )
        .await?;
        *self
            .shared
            .topology()
            .consumers
            .entry(queue.to_string())
            .or_default() += 1;
        Ok(Box::new(RabbitConsumer {
            shared: self.shared.clone(),
            queue: queue.to_string(),
            prefetch: options.prefetch,
            sub: Some(sub),
            ended: None,
        }))
    }

    async fn get(&self, queue: &str) -> Result<Option<Delivery>, BusError> {
        validate_name("queue", queue)?;
        let r = self
            .shared
            .run(|link| async move {
                let ch = link.conn.create_channel().await?;
                let m = ch
                    .basic_get(queue.into(), BasicGetOptions { no_ack: false })
                    .await?;
                Ok(m.map(|m| (m, ch)))
            })
            .await
            .map_err(|f| f.into_bus(&format!("getting from {queue}")))?;
        Ok(r.map(|(m, ch)| into_delivery(m.delivery, ch)))
    }

    fn kind(&self) -> &'static str {
        "rabbitmq"
    }

    async fn health(&self) -> Result<(), BusError> {
        self.shared
            .link(self.shared.op_deadline())
            .await
            .map(|_| ())
    }

    async fn close(&self) -> Result<(), BusError> {
        self.shared.closed.store(true, Ordering::SeqCst);
        let link = self.shared.link.lock().await.take();
        *self.shared.topology() = Topology::default();
        if let Some(l) = link
            && l.conn.status().connected()
        {
            // Best effort: a connection that is already gone needs no close.
            if let Err(e) = l.conn.close(200, "closed by the client".into()).await {
                tracing::debug!(error = %e, "closing the AMQP connection");
            }
        }
        Ok(())
    }
}

struct RabbitConsumer {
    shared: Arc<Shared>,
    queue: String,
    prefetch: u16,
    /// `None` while the connection is being re-established.
    sub: Option<Subscription>,
    ended: Option<BusError>,
}

impl RabbitConsumer {
    fn end(&mut self, e: BusError) -> BusError {
        self.ended = Some(e.clone());
        self.sub = None;
        e
    }
}

#[async_trait]
impl DeliveryStream for RabbitConsumer {
    fn queue(&self) -> &str {
        &self.queue
    }

    async fn next(&mut self, timeout: Duration) -> Result<Option<Delivery>, BusError> {
        if let Some(e) = &self.ended {
            return Err(e.clone());
        }
        let deadline = Instant::now() + timeout;
        loop {
            if self.shared.closed.load(Ordering::SeqCst) {
                return Err(self.end(closed_error()));
            }
            let Some(sub) = self.sub.as_mut() else {
                match RabbitMqBroker::subscribe(&self.shared, &self.queue, self.prefetch, deadline)
                    .await
                {
                    Ok(s) => {
                        tracing::info!(queue = %self.queue, generation = s.link.generation, "AMQP consumer subscribed again");
                        self.sub = Some(s);
                        continue;
                    }
                    Err(e @ BusError::NotFound(_)) => return Err(self.end(e)),
                    Err(e) => return Err(e),
                }
            };
            let item = match tokio::time::timeout_at(deadline, sub.consumer.next()).await {
                Err(_) => return Ok(None),
                Ok(item) => item,
            };
            let err = match item {
                Some(Ok(d)) => return Ok(Some(into_delivery(d, sub.channel.clone()))),
                Some(Err(e)) => Some(e),
                None => None,
            };
            // The stream ended: the connection went, or the broker cancelled the consumer
            // (queue deleted). Give a lost connection a moment to show in its status.
            let link = sub.link.clone();
            let mut lost = err.as_ref().is_some_and(|e| connection_lost(e, &link));
            if !lost {
                tokio::time::sleep(Duration::from_millis(100)).await;
                lost = !link.conn.status().connected();
            }
            self.sub = None;
            if self.shared.closed.load(Ordering::SeqCst) {
                return Err(self.end(closed_error()));
            }
            if lost {
                tracing::warn!(queue = %self.queue, "AMQP consumer lost its connection; subscribing again");
                continue;
            }
            self.shared.topology().forget_queue(&self.queue);
            let why = err.map_or_else(
                || "the broker cancelled the consumer (queue deleted)".to_string(),
                |e| e.to_string(),
            );
            return Err(self.end(BusError::NotFound(format!(
                "consumer of queue {}: {why}",
                self.queue
            ))));
        }
    }
}

impl Drop for RabbitConsumer {
    fn drop(&mut self) {
        let mut t = self.shared.topology();
        let left = t.consumers.get_mut(&self.queue).map(|n| {
            *n = n.saturating_sub(1);
            *n
        });
        if left == Some(0) {
            t.consumers.remove(&self.queue);
            // The broker deletes an auto-delete queue with its last consumer.
            if t.queues
                .iter()
                .any(|(q, o)| q == &self.queue && o.auto_delete)
            {
                t.forget_queue(&self.queue);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("amqp://alice:s3cret@10.1.2.3:5673/prod").unwrap();
        assert_eq!(u.authority.host, "10.1.2.3");
        assert_eq!(u.authority.port, 5673);
        assert_eq!(u.authority.userinfo.username, "alice");
        assert_eq!(u.authority.userinfo.password, "s3cret");
        assert_eq!(u.vhost, "prod");
        assert_eq!(u.query.heartbeat, Some(DEFAULT_HEARTBEAT_S));
        let u = parse_url("amqp://rabbit.example:5672/%2f?heartbeat=0").unwrap();
        assert_eq!(
            (
                u.authority.host.as_str(),
                u.vhost.as_str(),
                u.query.heartbeat
            ),
            ("rabbit.example", "/", Some(0))
        );
        let u = parse_url("amqp://[::1]:5672").unwrap();
        assert_eq!(u.authority.host, "::1");
        for bad in [
            "amqps://h:5671/",
            "http://h/",
            "not a url",
            "amqp://u:p@h:notaport/",
            "amqp:///vhost",
        ] {
            assert!(
                matches!(parse_url(bad), Err(BusError::Invalid(_))),
                "{bad} should be invalid"
            );
        }
    }

    #[test]
    fn secrets_stay_hidden() {
        let o = RabbitMqOptions::new("amqp://alice:hunter2@h:5672/%2f");
        let d = format!("{o:?}");
        assert!(
            !d.contains("hunter2") && d.contains("alice") && d.contains("***"),
            "{d}"
        );
        let e = parse_url("amqps://alice:hunter2@h/")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        let e = parse_url("amqp://alice:hunter2@h:99999/")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn bad_options_are_invalid() {
        let cases: Vec<fn(&mut RabbitMqOptions)> = vec![
            |o| o.url = "amqps://h/".into(),
            |o| o.connection_name = String::new(),
            |o| o.connect_timeout_ms = 0,
            |o| o.operation_timeout_ms = 0,
            |o| o.reconnect_min_delay_ms = 10_000,
        ];
        for (i, f) in cases.iter().enumerate() {
            let mut o = RabbitMqOptions::new("amqp://127.0.0.1:5672");
            f(&mut o);
            assert!(
                matches!(RabbitMqBroker::new(o), Err(BusError::Invalid(_))),
                "case {i}"
            );
        }
    }

    #[test]
    fn properties_convert_both_ways() {
        let mut p = MessageProperties::json();
        p.correlation_id = Some("c".into());
        p.reply_to = Some("r".into());
        p.message_id = Some("m".into());
        p.headers.insert("k".into(), "v".into());
        let b = to_basic(&p).unwrap();
        assert_eq!(from_basic(&b), p);
        assert_eq!(
            from_basic(&BasicProperties::default()),
            MessageProperties::default()
        );
        // Other clients' header types arrive as text.
        let mut t = FieldTable::default();
        t.insert("n".into(), AMQPValue::LongInt(-3));
        t.insert("b".into(), AMQPValue::Boolean(true));
        t.insert("s".into(), AMQPValue::ShortString("x".into()));
        t.insert("a".into(), AMQPValue::FieldArray(Vec::new().into()));
        let got = from_basic(&BasicProperties::default().with_headers(t)).headers;
        let want: Vec<(&str, &str)> = vec![("b", "true"), ("n", "-3"), ("s", "x")];
        assert_eq!(
            got.iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
            want
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn broker_down_is_unavailable_within_the_timeout() {
        let mut o = RabbitMqOptions::new("amqp://guest:guest@127.0.0.1:1/%2f");
        o.operation_timeout_ms = 1_000;
        o.connect_timeout_ms = 300;
        let b = RabbitMqBroker::new(o).unwrap();
        let started = std::time::Instant::now();
        assert!(matches!(b.health().await, Err(BusError::Unavailable(_))));
        assert!(matches!(
            b.publish("", "q", b"x", &MessageProperties::default())
                .await,
            Err(BusError::Unavailable(_))
        ));
        assert!(matches!(
            b.declare_queue("q", QueueOptions::durable()).await,
            Err(BusError::Unavailable(_))
        ));
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{:?}",
            started.elapsed()
        );
        // Validation comes before any I/O.
        assert!(matches!(
            b.declare_queue("a b", QueueOptions::durable()).await,
            Err(BusError::Invalid(_))
        ));
        b.close().await.unwrap();
        assert!(matches!(b.health().await, Err(BusError::Unavailable(_))));
    }
}

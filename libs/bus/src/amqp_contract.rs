//! The contract suite of [`MessageBroker`]: the behaviour both the embedded broker and the
//! RabbitMQ client must have (D6.7 4.5.1; RabbitMQ 3.10 is the reference).
//!
//! Each case uses names of its own (`serrano-test.<case>-<pid>-<nanos>-<n>.<name>`), so the
//! suite can run against a shared broker, and deletes the durable things it declared. Used by
//! the embedded tests and by `tests/contract_amqp.rs`; other crates get it with the
//! `contract-suite` feature.

// Test code: a failed expectation is a panic with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::BusError;
use crate::amqp::{
    ConsumeOptions, Delivery, DeliveryStream, ExchangeKind, GENERATED_QUEUE_PREFIX,
    MAX_MESSAGE_BYTES, MessageBroker, MessageProperties, PublishOutcome, QueueOptions,
    topic_matches,
};

/// Opens another connection to the broker under test.
pub type Connect = Arc<dyn Fn() -> BoxFuture<'static, Arc<dyn MessageBroker>> + Send + Sync>;

/// What a case gets: a connection, a way to open more, and its own name prefix.
#[derive(Clone)]
pub struct Ctx {
    pub broker: Arc<dyn MessageBroker>,
    pub connect: Connect,
    pub prefix: String,
}

impl Ctx {
    /// A name of this case: `<prefix>.<s>`.
    pub fn name(&self, s: &str) -> String {
        format!("{}.{s}", self.prefix)
    }

    /// A second connection to the same broker.
    pub async fn other(&self) -> Arc<dyn MessageBroker> {
        (self.connect)().await
    }
}

/// One case: a name and its body.
pub struct Case {
    pub name: &'static str,
    pub run: fn(Ctx) -> BoxFuture<'static, ()>,
}

macro_rules! case {
    ($f:ident) => {
        Case {
            name: stringify!($f),
            run: |c| Box::pin($f(c)),
        }
    };
}

/// Every case of the suite.
pub fn cases() -> Vec<Case> {
    vec![
        case!(health_ok),
        case!(default_exchange_routes_by_queue_name),
        case!(properties_roundtrip),
        case!(direct_routing),
        case!(fanout_routing),
        case!(topic_routing_matches_rabbitmq),
        case!(builtin_exchanges),
        case!(generated_queue_names),
        case!(consume_and_ack),
        case!(nack_requeue_or_drop),
        case!(requeue_keeps_the_original_order),
        case!(dropped_delivery_is_requeued),
        case!(consumer_crash_loses_nothing),
        case!(closed_connection_requeues),
        case!(prefetch_and_round_robin),
        case!(competing_consumers_exactly_once),
        case!(exclusive_queue),
        case!(auto_delete_queue),
        case!(redeclare_conflicts),
        case!(not_found_errors),
        case!(invalid_arguments),
        case!(get_timeout_waits),
        case!(consumer_waits_for_a_publish),
        case!(deleting_a_queue_ends_its_consumers),
        case!(concurrent_publishers_exactly_once),
        case!(large_payload),
        case!(platform_topology),
    ]
}

/// Runs every case sequentially; prints each case's time.
pub async fn run_suite(broker: Arc<dyn MessageBroker>, connect: Connect) {
    for case in cases() {
        let ctx = Ctx {
            broker: broker.clone(),
            connect: connect.clone(),
            prefix: unique_prefix(case.name),
        };
        let started = Instant::now();
        (case.run)(ctx).await;
        println!(
            "amqp contract case {} ({}): {:?}",
            case.name,
            broker.kind(),
            started.elapsed()
        );
    }
}

/// A prefix no other run uses: `serrano-test.<name>-<pid>-<nanos>-<n>`.
pub fn unique_prefix(name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "serrano-test.{name}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// How long to wait for a delivery that must come.
const WAIT: Duration = Duration::from_secs(10);
/// How long to wait to be sure that nothing more comes.
const QUIET: Duration = Duration::from_millis(400);

fn plain() -> MessageProperties {
    MessageProperties::default()
}

async fn publish_routed(b: &Arc<dyn MessageBroker>, ex: &str, key: &str, payload: &[u8]) {
    match b.publish(ex, key, payload, &plain()).await {
        Ok(PublishOutcome::Routed) => {}
        other => panic!("publish to {ex:?}/{key:?}: expected Routed, got {other:?}"),
    }
}

async fn expect_delivery(s: &mut Box<dyn DeliveryStream>, what: &str) -> Delivery {
    match s.next(WAIT).await {
        Ok(Some(d)) => d,
        other => panic!("expected {what}, got {other:?}"),
    }
}

async fn expect_none(s: &mut Box<dyn DeliveryStream>, what: &str) {
    match s.next(QUIET).await {
        Ok(None) => {}
        other => panic!("expected no delivery ({what}), got {other:?}"),
    }
}

async fn expect_get(b: &Arc<dyn MessageBroker>, q: &str, what: &str) -> Delivery {
    match b.get_timeout(q, WAIT).await {
        Ok(Some(d)) => d,
        other => panic!("expected {what} from {q}, got {other:?}"),
    }
}

/// Takes and acks every message of `q`; returns the payloads as text, in order.
async fn drain(b: &Arc<dyn MessageBroker>, q: &str) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(d) = b.get(q).await.unwrap() {
        out.push(String::from_utf8(d.payload.clone()).unwrap());
        d.ack().await.unwrap();
    }
    out
}

fn texts(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_string()).collect()
}

async fn cleanup(b: &Arc<dyn MessageBroker>, queues: &[&str], exchanges: &[&str]) {
    for q in queues {
        let _ = b.delete_queue(q).await;
    }
    for e in exchanges {
        let _ = b.delete_exchange(e).await;
    }
}

async fn expect_err<T: std::fmt::Debug>(
    what: &str,
    r: Result<T, BusError>,
    ok: fn(&BusError) -> bool,
) {
    match r {
        Err(e) if ok(&e) => {}
        other => panic!("{what}: unexpected {other:?}"),
    }
}

fn is_invalid(e: &BusError) -> bool {
    matches!(e, BusError::Invalid(_))
}
fn is_not_found(e: &BusError) -> bool {
    matches!(e, BusError::NotFound(_))
}
fn is_conflict(e: &BusError) -> bool {
    matches!(e, BusError::Conflict(_))
}
fn is_unavailable(e: &BusError) -> bool {
    matches!(e, BusError::Unavailable(_))
}

pub async fn health_ok(c: Ctx) {
    c.broker.health().await.expect("health");
}

pub async fn default_exchange_routes_by_queue_name(c: Ctx) {
    let b = &c.broker;
    let q = c.name("q");
    let info = b.declare_queue(&q, QueueOptions::durable()).await.unwrap();
    assert_eq!(
        (info.name.as_str(), info.message_count, info.consumer_count),
        (q.as_str(), 0, 0)
    );
    publish_routed(b, "", &q, b"one").await;
    publish_routed(b, "", &q, b"two").await;
    let info = b.queue_info(&q).await.unwrap().expect("the queue exists");
    assert_eq!((info.message_count, info.consumer_count), (2, 0));
    // Declaring again is idempotent and reports the counts.
    let again = b.declare_queue(&q, QueueOptions::durable()).await.unwrap();
    assert_eq!(again.message_count, 2);
    let d = b.get(&q).await.unwrap().expect("first message");
    assert_eq!(
        (d.exchange.as_str(), d.routing_key.as_str(), d.redelivered),
        ("", q.as_str(), false)
    );
    assert_eq!(d.payload, b"one");
    d.ack().await.unwrap();
    assert_eq!(drain(b, &q).await, texts(&["two"]));
    assert!(b.get(&q).await.unwrap().is_none());
    // No queue of that name: the default exchange drops it.
    let missing = c.name("nobody");
    assert_eq!(
        b.publish("", &missing, b"lost", &plain()).await.unwrap(),
        PublishOutcome::Unroutable
    );
    assert_eq!(b.delete_queue(&q).await.unwrap(), 0);
    assert_eq!(b.queue_info(&q).await.unwrap(), None);
}

pub async fn properties_roundtrip(c: Ctx) {
    let b = &c.broker;
    let q = c.name("q");
    b.declare_queue(&q, QueueOptions::durable()).await.unwrap();
    let mut headers = BTreeMap::new();
    headers.insert("x-engine".to_string(), "e-1".to_string());
    headers.insert("empty".to_string(), String::new());
    headers.insert("unicode".to_string(), "héllo wörld".to_string());
    let full = MessageProperties {
        content_type: Some("application/json".into()),
        correlation_id: Some("corr-42".into()),
        reply_to: Some("reply.queue".into()),
        message_id: Some("msg-7".into()),
        headers,
        persistent: true,
    };
    assert_eq!(
        b.publish("", &q, br#"{"a":1}"#, &full).await.unwrap(),
        PublishOutcome::Routed
    );
    assert_eq!(
        b.publish("", &q, b"", &plain()).await.unwrap(),
        PublishOutcome::Routed
    );
    let mut s = b.consume(&q, ConsumeOptions::default()).await.unwrap();
    assert_eq!(s.queue(), q);
    let d = expect_delivery(&mut s, "the message with properties").await;
    assert_eq!(d.properties, full);
    assert_eq!(d.payload, br#"{"a":1}"#);
    d.ack().await.unwrap();
    let d = expect_delivery(&mut s, "the message without properties").await;
    assert_eq!(d.properties, plain());
    assert!(d.payload.is_empty());
    d.ack().await.unwrap();
    drop(s);
    assert_eq!(
        MessageProperties::json().content_type.as_deref(),
        Some("application/json")
    );
    cleanup(b, &[&q], &[]).await;
}

pub async fn direct_routing(c: Ctx) {
    let b = &c.broker;
    let ex = c.name("direct");
    let (q1, q2, q3) = (c.name("q1"), c.name("q2"), c.name("q3"));
    b.declare_exchange(&ex, ExchangeKind::Direct, true)
        .await
        .unwrap();
    for q in [&q1, &q2, &q3] {
        b.declare_queue(q, QueueOptions::durable()).await.unwrap();
    }
    b.bind_queue(&q1, &ex, "a").await.unwrap();
    b.bind_queue(&q2, &ex, "b").await.unwrap();
    b.bind_queue(&q3, &ex, "a").await.unwrap();
    b.bind_queue(&q3, &ex, "c").await.unwrap();
    // Idempotent: still one copy per queue.
    b.bind_queue(&q3, &ex, "a").await.unwrap();
    for key in ["a", "b", "c"] {
        publish_routed(b, &ex, key, key.as_bytes()).await;
    }
    assert_eq!(
        b.publish(&ex, "d", b"d", &plain()).await.unwrap(),
        PublishOutcome::Unroutable
    );
    // Keys are exact: no pattern matching on a direct exchange.
    assert_eq!(
        b.publish(&ex, "#", b"x", &plain()).await.unwrap(),
        PublishOutcome::Unroutable
    );
    assert_eq!(drain(b, &q1).await, texts(&["a"]));
    assert_eq!(drain(b, &q2).await, texts(&["b"]));
    assert_eq!(drain(b, &q3).await, texts(&["a", "c"]));
    let d = {
        publish_routed(b, &ex, "c", b"c2").await;
        expect_get(b, &q3, "c2").await
    };
    assert_eq!(
        (d.exchange.as_str(), d.routing_key.as_str()),
        (ex.as_str(), "c")
    );
    d.ack().await.unwrap();
    b.unbind_queue(&q3, &ex, "c").await.unwrap();
    // Unbinding what is not bound is not an error.
    b.unbind_queue(&q3, &ex, "c").await.unwrap();
    assert_eq!(
        b.publish(&ex, "c", b"c3", &plain()).await.unwrap(),
        PublishOutcome::Unroutable
    );
    cleanup(b, &[&q1, &q2, &q3], &[&ex]).await;
}

pub async fn fanout_routing(c: Ctx) {
    let b = &c.broker;
    let ex = c.name("fanout");
    let (q1, q2) = (c.name("q1"), c.name("q2"));
    b.declare_exchange(&ex, ExchangeKind::Fanout, false)
        .await
        .unwrap();
    assert_eq!(
        b.publish(&ex, "", b"nobody", &plain()).await.unwrap(),
        PublishOutcome::Unroutable
    );
    b.declare_queue(&q1, QueueOptions::durable()).await.unwrap();
    b.declare_queue(&q2, QueueOptions::durable()).await.unwrap();
    b.bind_queue(&q1, &ex, "").await.unwrap();
    // Two bindings of one queue with different keys: still one copy.
    b.bind_queue(&q2, &ex, "x").await.unwrap();
    b.bind_queue(&q2, &ex, "y").await.unwrap();
    publish_routed(b, &ex, "any.key", b"e1").await;
    publish_routed(b, &ex, "", b"e2").await;
    assert_eq!(drain(b, &q1).await, texts(&["e1", "e2"]));
    assert_eq!(drain(b, &q2).await, texts(&["e1", "e2"]));
    b.unbind_queue(&q2, &ex, "x").await.unwrap();
    publish_routed(b, &ex, "k", b"e3").await;
    assert_eq!(drain(b, &q2).await, texts(&["e3"]), "the binding y remains");
    b.unbind_queue(&q2, &ex, "y").await.unwrap();
    publish_routed(b, &ex, "k", b"e4").await;
    assert_eq!(drain(b, &q2).await, Vec::<String>::new());
    assert_eq!(drain(b, &q1).await, texts(&["e3", "e4"]));
    cleanup(b, &[&q1, &q2], &[&ex]).await;
}

/// Binding patterns and routing keys with the edge cases of RabbitMQ's topic matching; the
/// expected routes come from [`topic_matches`], whose own table is checked in `amqp.rs`, so a
/// difference between RabbitMQ and that function fails here.
pub const TOPIC_PATTERNS: [&str; 20] = [
    "#", "*", "", "a", "a.b", "a.*", "a.#", "*.b", "#.b", "a.*.c", "a.#.c", "*.*", "#.#",
    "a.#.#.c", "*.#", "#.*", "a..c", "a.", ".a", "a.*.#",
];
/// See [`TOPIC_PATTERNS`].
pub const TOPIC_KEYS: [&str; 17] = [
    "", "a", "b", "a.b", "a.c", "a.b.c", "a.x.y.c", "a..c", "a.", ".a", ".", "..", "x.b",
    "a.b.c.d", "ab", "a.bc", "#",
];

pub async fn topic_routing_matches_rabbitmq(c: Ctx) {
    let b = &c.broker;
    let ex = c.name("topic");
    b.declare_exchange(&ex, ExchangeKind::Topic, false)
        .await
        .unwrap();
    let queues: Vec<String> = (0..TOPIC_PATTERNS.len())
        .map(|i| c.name(&format!("p{i}")))
        .collect();
    for (q, p) in queues.iter().zip(TOPIC_PATTERNS) {
        b.declare_queue(q, QueueOptions::default()).await.unwrap();
        b.bind_queue(q, &ex, p).await.unwrap();
    }
    for (k, key) in TOPIC_KEYS.iter().enumerate() {
        let routed = TOPIC_PATTERNS.iter().any(|p| topic_matches(p, key));
        let outcome = b
            .publish(&ex, key, k.to_string().as_bytes(), &plain())
            .await
            .unwrap();
        assert_eq!(
            outcome == PublishOutcome::Routed,
            routed,
            "routing key {key:?}: {outcome:?}"
        );
    }
    let mut mismatches = Vec::new();
    for (q, p) in queues.iter().zip(TOPIC_PATTERNS) {
        let got: BTreeSet<String> = drain(b, q)
            .await
            .into_iter()
            .map(|k| TOPIC_KEYS[k.parse::<usize>().unwrap()].to_string())
            .collect();
        let want: BTreeSet<String> = TOPIC_KEYS
            .iter()
            .filter(|k| topic_matches(p, k))
            .map(|k| (*k).to_string())
            .collect();
        if got != want {
            mismatches.push(format!("pattern {p:?}: got {got:?}, want {want:?}"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    let names: Vec<&str> = queues.iter().map(String::as_str).collect();
    cleanup(b, &names, &[&ex]).await;
}

pub async fn builtin_exchanges(c: Ctx) {
    let b = &c.broker;
    let q = c.name("q");
    b.declare_queue(&q, QueueOptions::default()).await.unwrap();
    let unique = c.prefix.replace('.', "_");
    b.bind_queue(&q, "amq.direct", &unique).await.unwrap();
    b.bind_queue(&q, "amq.topic", &format!("{unique}.#"))
        .await
        .unwrap();
    publish_routed(b, "amq.direct", &unique, b"direct").await;
    publish_routed(b, "amq.topic", &format!("{unique}.x.y"), b"topic").await;
    assert_eq!(drain(b, &q).await, texts(&["direct", "topic"]));
    expect_err(
        "declaring amq.topic",
        b.declare_exchange("amq.topic", ExchangeKind::Topic, true)
            .await,
        is_invalid,
    )
    .await;
    expect_err(
        "deleting amq.direct",
        b.delete_exchange("amq.direct").await,
        is_invalid,
    )
    .await;
    cleanup(b, &[&q], &[]).await;
}

pub async fn generated_queue_names(c: Ctx) {
    let b = &c.broker;
    let a = b
        .declare_queue("", QueueOptions::exclusive())
        .await
        .unwrap();
    let d = b.declare_queue("", QueueOptions::default()).await.unwrap();
    for info in [&a, &d] {
        assert!(
            info.name.starts_with(GENERATED_QUEUE_PREFIX),
            "{}",
            info.name
        );
        assert_eq!(info.message_count, 0);
    }
    assert_ne!(a.name, d.name);
    publish_routed(b, "", &a.name, b"to a").await;
    assert_eq!(drain(b, &a.name).await, texts(&["to a"]));
    cleanup(b, &[&a.name, &d.name], &[]).await;
}

pub async fn consume_and_ack(c: Ctx) {
    let b = &c.broker;
    let q = c.name("q");
    b.declare_queue(&q, QueueOptions::durable()).await.unwrap();
    for i in 0..5 {
        publish_routed(b, "", &q, format!("m{i}").as_bytes()).await;
    }
    let mut s = b
        .consume(&q, ConsumeOptions { prefetch: 10 })
        .await
        .unwrap();
    for i in 0..5 {
        let d = expect_delivery(&mut s, "a message").await;
        assert_eq!(d.payload, format!("m{i}").as_bytes(), "in order");
        assert!(!d.redelivered);
        d.ack().await.unwrap();
    }
    expect_none(&mut s, "all consumed").await;
    let info = b.queue_info(&q).await.unwrap().unwrap();
    assert_eq!((info.message_count, info.consumer_count), (0, 1));
    drop(s);
    // Acked messages do not come back.
    assert!(b.get_timeout(&q, QUIET).await.unwrap().is_none());
    cleanup(b, &[&q], &[]).await;
}

pub async fn nack_requeue_or_drop(c: Ctx) {
    let b = &c.broker;
    let q = c.name("q");
    b.declare_queue(&q, QueueOptions::durable()).await.unwrap();
    publish_routed(b, "", &q, b"again").await;
    let d = expect_get(b, &q, "the message").await;
    assert!(!d.redelivered);
    d.nack(true).await.unwrap();
    let d = expect_get(b, &q, "the requeued message").await;
    assert!(d.redelivered);
    assert_eq!(d.payload, b"again");
    d.nack(false).await.unwrap();
    assert!(b.get_timeout(&q, QUIET).await.unwrap().is_none(), "dropped");
    // The same through a consumer.
    publish_routed(b, "", &q, b"c").await;
    let mut s = b.consume(&q, ConsumeOptions::default()).await.unwrap();
    let d = expect_delivery(&mut s, "the message").await;
    d.nack(true).await.unwrap();
    let d = expect_delivery(&mut s, "the message once more").await;
    assert!(d.redelivered);
    d.ack().await.unwrap();
    expect_none(&mut s, "acked").await;
    cleanup(b, &[&q], &[]).await;
}

pub async fn requeue_keeps_the_original_order(c: Ctx) {
    let b = &c.broker;
    let q = c.name("q");
    b.declare_queue(&q, QueueOptions::durable()).await.unwrap();
    for i in 0..5 {
        publish_routed(b, "", &q, format!("m{i}").as_bytes()).await;
    }
    let d0 = expect_get(b, &q, "m0").await;
    let d1 = expect_get(b, &q, "m1").await;
    d1.nack(true).await.unwrap();
    d0.nack(true).await.unwrap();
    assert_eq!(drain(b, &q).await, texts(&["m0", "m1", "m2", "m3", "m4"]));
    cleanup(b, &[&q], &[]).await;
}

pub async fn dropped_delivery_is_requeued(c: Ctx) {
    let b = &c.broker;
    let q = c.name("q");
    b.declare_queue(&q, QueueOptions::durable()).await.unwrap();
    publish_routed(b, "", &q, b"dropped").await;
    drop(expect_get(b, &q, "the message").await);
    let d = expect_get(b, &q, "the message after the drop").await;
    assert!(d.redelivered);
    assert_eq!(d.payload, b"dropped");
    d.ack().await.unwrap();
    cleanup(b, &[&q], &[]).await;
}

pub async fn consumer_crash_loses_nothing(c: Ctx) {
    let b = &c.broker;
    let q = c.name("q");
    b.declare_queue(&q, QueueOptions::durable()).await.unwrap();
    for i in 0..4 {
        publish_routed(b, "", &q, format!("m{i}").as_bytes()).await;
    }
    {
        // A consumer that takes two, never acks, and goes (with its deliveries).
        let mut s = b.consume(&q, ConsumeOptions { prefetch: 2 }).await.unwrap();
        let d0 = expect_delivery(&mut s, "m0").await;
        let d1 = expect_delivery(&mut s, "m1").await;
        assert_eq!(
            (d0.payload.as_slice(), d1.payload.as_slice()),
            (&b"m0"[..], &b"m1"[..])
        );
    }
    // A consumer that goes while holding a delivery: that one stays valid.
    let mut s = b.consume(&q, ConsumeOptions { prefetch: 1 }).await.unwrap();
    let d = expect_delivery(&mut s, "m0 again").await;
    assert_eq!(d.payload, b"m0");
    assert!(d.redelivered);
    drop(s);
    d.ack().await.unwrap();
    let mut s = b.consume(&q, ConsumeOptions::default()).await.unwrap();
    let mut rest = Vec::new();
    for _ in 0..3 {
        let d = expect_delivery(&mut s, "the rest").await;
        rest.push((String::from_utf8(d.payload.clone()).unwrap(), d.redelivered));
        d.ack().await.unwrap();
    }
    assert_eq!(
        rest,
        vec![
            ("m1".to_string(), true),
            ("m2".to_string(), false),
            ("m3".to_string(), false)
        ]
    );
    expect_none(&mut s, "nothing lost, nothing twice").await;
    drop(s);
    cleanup(b, &[&q], &[]).await;
}

pub async fn closed_connection_requeues(c: Ctx) {
    let b = &c.broker;
    let q = c.name("q");
    b.declare_queue(&q, QueueOptions::durable()).await.unwrap();
    publish_routed(b, "", &q, b"m0").await;
    publish_routed(b, "", &q, b"m1").await;
    let other = c.other().await;
    let mut s = other
        .consume(&q, ConsumeOptions { prefetch: 1 })
        .await
        .unwrap();
    let d0 = expect_delivery(&mut s, "m0").await;
    let d1 = expect_get(&other, &q, "m1").await;
    other.close().await.unwrap();
    expect_err("ack after close", d0.ack().await, is_unavailable).await;
    drop(d1);
    let d = expect_get(b, &q, "m0 requeued").await;
    assert_eq!((d.payload.as_slice(), d.redelivered), (&b"m0"[..], true));
    d.ack().await.unwrap();
    let d = expect_get(b, &q, "m1 requeued").await;
    assert_eq!((d.payload.as_slice(), d.redelivered), (&b"m1"[..], true));
    d.ack().await.unwrap();
    // The consumer ended; the connection refuses work.
    assert!(
        s.next(QUIET).await.is_err(),
        "consumer of a closed connection"
    );
    expect_err(
        "publish on a closed connection",
        other.publish("", &q, b"x", &plain()).await,
        is_unavailable,
    )
    .await;
    expect_err(
        "health of a closed connection",
        other.health().await,
        is_unavailable,
    )
    .await;
    cleanup(b, &[&q], &[]).await;
}

pub async fn prefetch_and_round_robin(c: Ctx) {
    let b = &c.broker;
    let q = c.name("q");
    b.declare_queue(&q, QueueOptions::durable()).await.unwrap();
    for i in 0..4 {
        publish_routed(b, "", &q, format!("m{i}").as_bytes()).await;
    }
    let mut a = b.consume(&q, ConsumeOptions { prefetch: 1 }).await.unwrap();
    let da = expect_delivery(&mut a, "a's first").await;
    assert_eq!(da.payload, b"m0");
    expect_none(&mut a, "a's prefetch is full").await;
    let mut s = b.consume(&q, ConsumeOptions { prefetch: 1 }).await.unwrap();
    let db = expect_delivery(&mut s, "b's first").await;
    assert_eq!(db.payload, b"m1");
    da.ack().await.unwrap();
    let da = expect_delivery(&mut a, "a's second").await;
    assert_eq!(da.payload, b"m2");
    db.ack().await.unwrap();
    let db = expect_delivery(&mut s, "b's second").await;
    assert_eq!(db.payload, b"m3");
    da.ack().await.unwrap();
    db.ack().await.unwrap();
    expect_none(&mut a, "all taken").await;
    drop((a, s));
    cleanup(b, &[&q], &[]).await;
}

pub async fn competing_consumers_exactly_once(c: Ctx) {
    const N: usize = 60;
    let b = &c.broker;
    let q = c.name("q");
    b.declare_queue(&q, QueueOptions::durable()).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let mut s = b.consume(&q, ConsumeOptions { prefetch: 2 }).await.unwrap();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(d) = s.next(Duration::from_secs(2)).await.unwrap() {
                got.push(String::from_utf8(d.payload.clone()).unwrap());
                d.ack().await.unwrap();
            }
            got
        }));
    }
    for i in 0..N {
        publish_routed(b, "", &q, format!("m{i}").as_bytes()).await;
    }
    let mut all = Vec::new();
    let mut busy = 0;
    for t in futures::future::join_all(tasks).await {
        let got = t.unwrap();
        busy += usize::from(!got.is_empty());
        all.extend(got);
    }
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), N, "each message once");
    assert_eq!(unique.len(), N);
    assert!(
        busy >= 2,
        "the work is shared: {busy} consumers got messages"
    );
    cleanup(b, &[&q], &[]).await;
}

pub async fn exclusive_queue(c: Ctx) {
    let b = &c.broker;
    let q = c.name("mine");
    let other = c.other().await;
    let info = other
        .declare_queue(&q, QueueOptions::exclusive())
        .await
        .unwrap();
    assert_eq!(info.name, q);
    expect_err(
        "declare another's exclusive queue",
        b.declare_queue(&q, QueueOptions::exclusive()).await,
        is_conflict,
    )
    .await;
    expect_err(
        "consume another's exclusive queue",
        b.consume(&q, ConsumeOptions::default()).await.map(|_| ()),
        is_conflict,
    )
    .await;
    expect_err(
        "get from another's exclusive queue",
        b.get(&q).await,
        is_conflict,
    )
    .await;
    // Anyone may publish to it.
    publish_routed(b, "", &q, b"for the owner").await;
    let d = expect_get(&other, &q, "the owner's message").await;
    d.ack().await.unwrap();
    other.close().await.unwrap();
    drop(other);
    // It went with its connection (RabbitMQ deletes it asynchronously).
    let deadline = Instant::now() + WAIT;
    while b.queue_info(&q).await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "the exclusive queue outlived its connection"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        b.publish("", &q, b"late", &plain()).await.unwrap(),
        PublishOutcome::Unroutable
    );
}

pub async fn auto_delete_queue(c: Ctx) {
    let b = &c.broker;
    let q = c.name("auto");
    let opts = QueueOptions {
        durable: false,
        exclusive: false,
        auto_delete: true,
    };
    b.declare_queue(&q, opts).await.unwrap();
    publish_routed(b, "", &q, b"m").await;
    // No consumer yet: it stays.
    assert!(b.queue_info(&q).await.unwrap().is_some());
    let mut s = b.consume(&q, ConsumeOptions::default()).await.unwrap();
    expect_delivery(&mut s, "m").await.ack().await.unwrap();
    drop(s);
    let deadline = Instant::now() + WAIT;
    while b.queue_info(&q).await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "the auto-delete queue outlived its consumer"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn redeclare_conflicts(c: Ctx) {
    let b = &c.broker;
    let q = c.name("q");
    let ex = c.name("ex");
    b.declare_queue(&q, QueueOptions::durable()).await.unwrap();
    expect_err(
        "queue redeclared not durable",
        b.declare_queue(&q, QueueOptions::default()).await,
        is_conflict,
    )
    .await;
    expect_err(
        "queue redeclared auto-delete",
        b.declare_queue(
            &q,
            QueueOptions {
                auto_delete: true,
                ..QueueOptions::durable()
            },
        )
        .await,
        is_conflict,
    )
    .await;
    b.declare_exchange(&ex, ExchangeKind::Direct, true)
        .await
        .unwrap();
    expect_err(
        "exchange redeclared as topic",
        b.declare_exchange(&ex, ExchangeKind::Topic, true).await,
        is_conflict,
    )
    .await;
    expect_err(
        "exchange redeclared not durable",
        b.declare_exchange(&ex, ExchangeKind::Direct, false).await,
        is_conflict,
    )
    .await;
    // Nothing changed, and the connection still works.
    b.declare_queue(&q, QueueOptions::durable()).await.unwrap();
    b.declare_exchange(&ex, ExchangeKind::Direct, true)
        .await
        .unwrap();
    b.bind_queue(&q, &ex, "k").await.unwrap();
    publish_routed(b, &ex, "k", b"still fine").await;
    assert_eq!(drain(b, &q).await, texts(&["still fine"]));
    cleanup(b, &[&q], &[&ex]).await;
}

pub async fn not_found_errors(c: Ctx) {
    let b = &c.broker;
    let q = c.name("q");
    let missing_q = c.name("no-queue");
    let missing_ex = c.name("no-exchange");
    b.declare_queue(&q, QueueOptions::durable()).await.unwrap();
    expect_err(
        "publish to a missing exchange",
        b.publish(&missing_ex, "k", b"x", &plain()).await,
        is_not_found,
    )
    .await;
    expect_err(
        "bind to a missing exchange",
        b.bind_queue(&q, &missing_ex, "k").await,
        is_not_found,
    )
    .await;
    expect_err(
        "bind a missing queue",
        b.bind_queue(&missing_q, "amq.direct", "k").await,
        is_not_found,
    )
    .await;
    expect_err(
        "consume a missing queue",
        b.consume(&missing_q, ConsumeOptions::default())
            .await
            .map(|_| ()),
        is_not_found,
    )
    .await;
    expect_err(
        "get from a missing queue",
        b.get(&missing_q).await,
        is_not_found,
    )
    .await;
    assert_eq!(b.queue_info(&missing_q).await.unwrap(), None);
    assert_eq!(b.delete_queue(&missing_q).await.unwrap(), 0);
    b.delete_exchange(&missing_ex).await.unwrap();
    // The connection still works after each refusal.
    publish_routed(b, "", &q, b"ok").await;
    assert_eq!(drain(b, &q).await, texts(&["ok"]));
    cleanup(b, &[&q], &[]).await;
}

pub async fn invalid_arguments(c: Ctx) {
    let b = &c.broker;
    let q = c.name("q");
    b.declare_queue(&q, QueueOptions::durable()).await.unwrap();
    let long = "x".repeat(256);
    for bad in ["a b", "a/b", "é", long.as_str(), "amq.mine"] {
        expect_err(
            "declare queue",
            b.declare_queue(bad, QueueOptions::default()).await,
            is_invalid,
        )
        .await;
        expect_err(
            "declare exchange",
            b.declare_exchange(bad, ExchangeKind::Direct, false).await,
            is_invalid,
        )
        .await;
    }
    expect_err(
        "declare exchange ''",
        b.declare_exchange("", ExchangeKind::Direct, false).await,
        is_invalid,
    )
    .await;
    for bad in ["", "a b", long.as_str()] {
        expect_err("get", b.get(bad).await, is_invalid).await;
        expect_err(
            "consume",
            b.consume(bad, ConsumeOptions::default()).await.map(|_| ()),
            is_invalid,
        )
        .await;
        expect_err("queue_info", b.queue_info(bad).await, is_invalid).await;
    }
    expect_err(
        "bind to the default exchange",
        b.bind_queue(&q, "", &q).await,
        is_invalid,
    )
    .await;
    expect_err(
        "routing key of 256 bytes",
        b.publish("", &long, b"x", &plain()).await,
        is_invalid,
    )
    .await;
    let big = vec![0u8; MAX_MESSAGE_BYTES + 1];
    expect_err(
        "huge payload",
        b.publish("", &q, &big, &plain()).await,
        is_invalid,
    )
    .await;
    let mut p = plain();
    p.headers.insert(String::new(), "v".into());
    expect_err(
        "empty header name",
        b.publish("", &q, b"x", &p).await,
        is_invalid,
    )
    .await;
    let p = MessageProperties {
        message_id: Some(long.clone()),
        ..plain()
    };
    expect_err(
        "long message id",
        b.publish("", &q, b"x", &p).await,
        is_invalid,
    )
    .await;
    // Routing key and names of exactly 255 bytes are fine.
    let key = "k".repeat(255);
    assert_eq!(
        b.publish("", &key, b"x", &plain()).await.unwrap(),
        PublishOutcome::Unroutable
    );
    assert_eq!(
        drain(b, &q).await,
        Vec::<String>::new(),
        "nothing was published"
    );
    cleanup(b, &[&q], &[]).await;
}

pub async fn get_timeout_waits(c: Ctx) {
    let b = &c.broker;
    let q = c.name("q");
    b.declare_queue(&q, QueueOptions::durable()).await.unwrap();
    let started = Instant::now();
    assert!(
        b.get_timeout(&q, Duration::from_millis(300))
            .await
            .unwrap()
            .is_none()
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(5),
        "get_timeout(300ms) took {took:?}"
    );
    let b2 = b.clone();
    let q2 = q.clone();
    let publisher = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        publish_routed(&b2, "", &q2, b"late").await;
    });
    let d = expect_get(b, &q, "the late message").await;
    assert_eq!(d.payload, b"late");
    d.ack().await.unwrap();
    publisher.await.unwrap();
    cleanup(b, &[&q], &[]).await;
}

pub async fn consumer_waits_for_a_publish(c: Ctx) {
    let b = &c.broker;
    let q = c.name("q");
    b.declare_queue(&q, QueueOptions::durable()).await.unwrap();
    let mut s = b.consume(&q, ConsumeOptions::default()).await.unwrap();
    let started = Instant::now();
    assert!(s.next(Duration::from_millis(300)).await.unwrap().is_none());
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(s.next(Duration::ZERO).await.unwrap().is_none());
    let b2 = b.clone();
    let q2 = q.clone();
    let publisher = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        publish_routed(&b2, "", &q2, b"wake").await;
    });
    let started = Instant::now();
    let d = expect_delivery(&mut s, "the message published while waiting").await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    d.ack().await.unwrap();
    publisher.await.unwrap();
    drop(s);
    cleanup(b, &[&q], &[]).await;
}

pub async fn deleting_a_queue_ends_its_consumers(c: Ctx) {
    let b = &c.broker;
    let q = c.name("q");
    b.declare_queue(&q, QueueOptions::durable()).await.unwrap();
    let mut s = b.consume(&q, ConsumeOptions { prefetch: 1 }).await.unwrap();
    for i in 0..3 {
        publish_routed(b, "", &q, format!("m{i}").as_bytes()).await;
    }
    let d = expect_delivery(&mut s, "m0").await;
    // m0 is unacked: two messages are ready.
    let deadline = Instant::now() + WAIT;
    loop {
        let n = b.queue_info(&q).await.unwrap().unwrap().message_count;
        if n == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{n} ready messages, want 2");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(b.delete_queue(&q).await.unwrap(), 2);
    match s.next(WAIT).await {
        Err(BusError::NotFound(_)) => {}
        other => panic!("consumer of a deleted queue: {other:?}"),
    }
    assert!(matches!(s.next(QUIET).await, Err(BusError::NotFound(_))));
    // Its message went with the queue; RabbitMQ takes the ack and ignores it.
    d.ack().await.unwrap();
    assert_eq!(b.queue_info(&q).await.unwrap(), None);
}

pub async fn concurrent_publishers_exactly_once(c: Ctx) {
    const PUBLISHERS: usize = 4;
    const EACH: usize = 25;
    let b = &c.broker;
    let q = c.name("q");
    b.declare_queue(&q, QueueOptions::durable()).await.unwrap();
    let tasks: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let b = b.clone();
            let q = q.clone();
            tokio::spawn(async move {
                for j in 0..EACH {
                    publish_routed(&b, "", &q, format!("{p}-{j}").as_bytes()).await;
                }
            })
        })
        .collect();
    for t in futures::future::join_all(tasks).await {
        t.unwrap();
    }
    let all = drain(b, &q).await;
    assert_eq!(all.len(), PUBLISHERS * EACH);
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "no duplicates");
    let mut last: Vec<Option<usize>> = vec![None; PUBLISHERS];
    for m in &all {
        let (p, j) = m.split_once('-').unwrap();
        let (p, j): (usize, usize) = (p.parse().unwrap(), j.parse().unwrap());
        assert!(
            last[p].is_none_or(|prev| prev < j),
            "publisher {p} out of order"
        );
        last[p] = Some(j);
    }
    cleanup(b, &[&q], &[]).await;
}

pub async fn large_payload(c: Ctx) {
    let b = &c.broker;
    let q = c.name("q");
    b.declare_queue(&q, QueueOptions::durable()).await.unwrap();
    let big: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    publish_routed(b, "", &q, &big).await;
    let d = expect_get(b, &q, "the large message").await;
    assert!(d.payload == big, "large payload differs");
    d.ack().await.unwrap();
    cleanup(b, &[&q], &[]).await;
}

/// The platform's exchanges and queues (originals 1.7, 2.4, 9), under this case's names.
pub async fn platform_topology(c: Ctx) {
    let b = &c.broker;
    let requests = c.name("rot_v2_dispatcher_requests");
    let results = c.name("rot_v2_dispatcher_results");
    let events = c.name("rot_v2_dispatcher_events");
    let to_controller = c.name("rot_v2_engines_to_controller");
    b.declare_exchange(&requests, ExchangeKind::Direct, false)
        .await
        .unwrap();
    b.declare_exchange(&results, ExchangeKind::Direct, false)
        .await
        .unwrap();
    b.declare_exchange(&events, ExchangeKind::Fanout, false)
        .await
        .unwrap();
    b.declare_queue(&to_controller, QueueOptions::default())
        .await
        .unwrap();

    // Two engines, each with an exclusive generated queue bound by its engine id.
    let engine = c.other().await;
    let mut engine_queues = Vec::new();
    for id in ["engine-1", "engine-2"] {
        let q = engine
            .declare_queue("", QueueOptions::exclusive())
            .await
            .unwrap()
            .name;
        engine.bind_queue(&q, &requests, id).await.unwrap();
        engine.bind_queue(&q, &events, "").await.unwrap();
        engine_queues.push(q);
    }
    let client = b
        .declare_queue("", QueueOptions::exclusive())
        .await
        .unwrap()
        .name;
    b.bind_queue(&client, &results, "client-uuid-1")
        .await
        .unwrap();

    let start = br#"{"engine_id":"engine-2","action":"start","execution_id":"x1"}"#;
    let json = MessageProperties::json();
    assert_eq!(
        b.publish(&requests, "engine-2", start, &json)
            .await
            .unwrap(),
        PublishOutcome::Routed
    );
    let mut s = engine
        .consume(&engine_queues[1], ConsumeOptions::default())
        .await
        .unwrap();
    let d = expect_delivery(&mut s, "the request for engine-2").await;
    assert_eq!(d.payload, start);
    assert_eq!(
        d.properties.content_type.as_deref(),
        Some("application/json")
    );
    d.ack().await.unwrap();
    assert!(
        engine.get(&engine_queues[0]).await.unwrap().is_none(),
        "engine-1 got nothing"
    );
    // Heartbeat and result to the controller's queue, response to the client.
    for m in [&br#"{"type":"heartbeat"}"#[..], br#"{"type":"execution"}"#] {
        assert_eq!(
            engine.publish("", &to_controller, m, &json).await.unwrap(),
            PublishOutcome::Routed
        );
    }
    assert_eq!(
        drain(b, &to_controller).await,
        texts(&[r#"{"type":"heartbeat"}"#, r#"{"type":"execution"}"#])
    );
    publish_routed(b, &results, "client-uuid-1", b"response").await;
    assert_eq!(drain(b, &client).await, texts(&["response"]));
    // An engine event reaches every engine.
    publish_routed(b, &events, "", br#"{"event_id":"ENGINE_UP"}"#).await;
    let d = expect_delivery(&mut s, "the event on engine-2").await;
    d.ack().await.unwrap();
    assert_eq!(drain(&engine, &engine_queues[0]).await.len(), 1);
    drop(s);

    // Kernel results: durable queues on the default exchange, read by the SDK.
    let req = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
    let kernel_results = c.name(&format!("kernels_results_{req}"));
    let plain_req = c.name(req);
    let watch = c.name(&format!("watch_kernels_results_{req}"));
    for q in [&kernel_results, &plain_req, &watch] {
        b.declare_queue(q, QueueOptions::durable()).await.unwrap();
    }
    let failure = format!(r#"{{"uuid":"{req}","data":null}}"#);
    for q in [&kernel_results, &plain_req] {
        assert_eq!(
            b.publish("", q, failure.as_bytes(), &json).await.unwrap(),
            PublishOutcome::Routed
        );
    }
    for q in [&kernel_results, &plain_req] {
        let d = expect_get(b, q, "the failure message").await;
        assert!(d.properties.persistent);
        assert_eq!(d.payload, failure.as_bytes());
        d.ack().await.unwrap();
    }
    engine.close().await.unwrap();
    cleanup(
        b,
        &[&to_controller, &client, &kernel_results, &plain_req, &watch],
        &[&requests, &results, &events],
    )
    .await;
}

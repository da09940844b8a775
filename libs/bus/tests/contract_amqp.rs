//! The AMQP contract suite against a real RabbitMQ at `SERRANO_TEST_AMQP_URL` (e.g.
//! `amqp://guest:guest@127.0.0.1:5672/%2f`; `scripts/infra start rabbitmq` runs one). Without
//! the variable the tests are skipped (they pass with a message), unless
//! `SERRANO_REQUIRE_REAL_SERVERS=1`, in which case they fail.
//!
//! Also: reconnection after the connection is cut (through a TCP proxy in the test), and after
//! a real broker restart of a private RabbitMQ that the test starts and stops through
//! `scripts/infra` (needs `SERRANO_INFRA`, which `scripts/test` exports, and root).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serrano_bus::amqp_contract;
use serrano_bus::{
    AmqpConfig, BusError, ConsumeOptions, ExchangeKind, MessageBroker, MessageProperties,
    PublishOutcome, QueueOptions, RabbitMqBroker, RabbitMqOptions, open_message_broker,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

fn amqp_url() -> Option<String> {
    match std::env::var("SERRANO_TEST_AMQP_URL") {
        Ok(v) if !v.trim().is_empty() => Some(v.trim().to_string()),
        _ => {
            if std::env::var("SERRANO_REQUIRE_REAL_SERVERS").as_deref() == Ok("1") {
                panic!("SERRANO_REQUIRE_REAL_SERVERS=1 but SERRANO_TEST_AMQP_URL is not set");
            }
            println!("skipped: SERRANO_TEST_AMQP_URL is not set (no RabbitMQ to test against)");
            None
        }
    }
}

fn options(url: &str, name: &str) -> RabbitMqOptions {
    let mut o = RabbitMqOptions::new(url);
    o.connection_name = format!("serrano-bus-test-{name}");
    o
}

fn connect(url: &str, name: &str) -> Arc<dyn MessageBroker> {
    Arc::new(RabbitMqBroker::new(options(url, name)).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contract_rabbitmq() {
    let Some(url) = amqp_url() else { return };
    let b = connect(&url, "contract");
    let started = Instant::now();
    b.health().await.expect("RabbitMQ answers");
    println!("first connection: {:?}", started.elapsed());
    let u = url.clone();
    let more: amqp_contract::Connect = Arc::new(move || {
        let u = u.clone();
        Box::pin(async move { connect(&u, "contract-other") })
    });
    let started = Instant::now();
    amqp_contract::run_suite(b.clone(), more).await;
    println!("whole suite: {:?}", started.elapsed());
    b.close().await.unwrap();
}

/// Through the config entry point; timings of sequential and concurrent publishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_and_publish_latency() {
    let Some(url) = amqp_url() else { return };
    let cfg: AmqpConfig = serde_json::from_value(serde_json::json!({
        "type": "rabbitmq", "url": url, "connection_name": "serrano-bus-test-cfg"
    }))
    .unwrap();
    let b = open_message_broker(&cfg).await.unwrap();
    assert_eq!(b.kind(), "rabbitmq");
    b.health().await.unwrap();
    let q = amqp_contract::unique_prefix("latency");
    b.declare_queue(&q, QueueOptions::durable()).await.unwrap();
    let props = MessageProperties::json();
    let started = Instant::now();
    for i in 0..100 {
        b.publish("", &q, format!("{i}").as_bytes(), &props)
            .await
            .unwrap();
    }
    let sequential = started.elapsed();
    let started = Instant::now();
    let tasks: Vec<_> = (0..400)
        .map(|i| {
            let b = b.clone();
            let q = q.clone();
            tokio::spawn(async move {
                b.publish(
                    "",
                    &q,
                    format!("c{i}").as_bytes(),
                    &MessageProperties::json(),
                )
                .await
            })
        })
        .collect();
    for t in futures::future::join_all(tasks).await {
        assert_eq!(t.unwrap().unwrap(), PublishOutcome::Routed);
    }
    let concurrent = started.elapsed();
    let started = Instant::now();
    let mut s = b
        .consume(&q, ConsumeOptions { prefetch: 100 })
        .await
        .unwrap();
    let mut n = 0;
    while n < 500 {
        let d = s
            .next(Duration::from_secs(10))
            .await
            .unwrap()
            .expect("a message");
        d.ack().await.unwrap();
        n += 1;
    }
    println!(
        "100 sequential confirmed publishes: {sequential:?} ({:?} each); 400 concurrent: {concurrent:?}; consume+ack 500: {:?}",
        sequential / 100,
        started.elapsed()
    );
    drop(s);
    assert_eq!(b.delete_queue(&q).await.unwrap(), 0);
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_unavailable_quickly() {
    let Some(url) = amqp_url() else { return };
    let mut u = url::Url::parse(&url).unwrap();
    u.set_password(Some("not-the-password")).unwrap();
    let b = connect(u.as_str(), "bad-password");
    let started = Instant::now();
    let err = b.health().await.unwrap_err();
    assert!(matches!(err, BusError::Unavailable(_)), "{err}");
    assert!(!err.to_string().contains("not-the-password"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// A TCP proxy to the broker whose connections the test can cut.
struct Proxy {
    addr: SocketAddr,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    refuse: Arc<AtomicBool>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let refuse = Arc::new(AtomicBool::new(false));
        let (c, r) = (conns.clone(), refuse.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if r.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let h = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                c.lock().unwrap().push(h);
            }
        });
        Self {
            addr,
            conns,
            refuse,
            accept,
        }
    }

    /// Drops every proxied connection (both sides see it close).
    fn cut(&self) {
        for h in self.conns.lock().unwrap().drain(..) {
            h.abort();
        }
    }

    fn refuse(&self, on: bool) {
        self.refuse.store(on, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// The connection is cut under a publisher and two consumers: the publisher retries after
/// reconnecting, the consumers subscribe again, the unacked message comes back, the exclusive
/// queue and its binding are declared again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconnects_after_the_connection_is_cut() {
    let Some(url) = amqp_url() else { return };
    let u = url::Url::parse(&url).unwrap();
    let target = format!("{}:{}", u.host_str().unwrap(), u.port().unwrap_or(5672));
    let proxy = Proxy::start(target).await;
    let mut via = u.clone();
    via.set_port(Some(proxy.addr.port())).unwrap();
    let mut o = options(via.as_str(), "cut");
    o.reconnect_min_delay_ms = 50;
    o.reconnect_max_delay_ms = 200;
    let rb = RabbitMqBroker::new(o).unwrap();
    let b: &dyn MessageBroker = &rb;
    let direct = connect(&url, "cut-observer");

    let prefix = amqp_contract::unique_prefix("cut");
    let q = format!("{prefix}.durable");
    let ex = format!("{prefix}.ex");
    b.declare_queue(&q, QueueOptions::durable()).await.unwrap();
    b.declare_exchange(&ex, ExchangeKind::Direct, false)
        .await
        .unwrap();
    let excl = b
        .declare_queue("", QueueOptions::exclusive())
        .await
        .unwrap()
        .name;
    b.bind_queue(&excl, &ex, "k").await.unwrap();
    let mut on_q = b.consume(&q, ConsumeOptions { prefetch: 1 }).await.unwrap();
    let mut on_excl = b.consume(&excl, ConsumeOptions::default()).await.unwrap();
    let plain = MessageProperties::default();
    b.publish("", &q, b"m0", &plain).await.unwrap();
    let d0 = on_q.next(Duration::from_secs(10)).await.unwrap().unwrap();
    assert_eq!(d0.payload, b"m0");
    assert_eq!(rb.connections_opened(), 1);

    // Cut, and refuse new connections for a while: the publish waits, then goes through.
    proxy.refuse(true);
    proxy.cut();
    let started = Instant::now();
    let unrefuse = {
        let refuse = proxy.refuse.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(800)).await;
            refuse.store(false, Ordering::SeqCst);
        })
    };
    assert_eq!(
        b.publish("", &q, b"m1", &plain).await.unwrap(),
        PublishOutcome::Routed
    );
    let waited = started.elapsed();
    unrefuse.await.unwrap();
    println!("publish across the cut took {waited:?}");
    assert!(waited >= Duration::from_millis(700), "{waited:?}");
    assert_eq!(rb.connections_opened(), 2);
    // The old delivery's channel is gone: its ack fails, and the broker requeued it.
    assert!(matches!(d0.ack().await, Err(BusError::Unavailable(_))));
    let mut got = Vec::new();
    for _ in 0..2 {
        let d = on_q
            .next(Duration::from_secs(15))
            .await
            .unwrap()
            .expect("a message after the reconnect");
        got.push((String::from_utf8(d.payload.clone()).unwrap(), d.redelivered));
        d.ack().await.unwrap();
    }
    assert_eq!(
        got,
        vec![("m0".to_string(), true), ("m1".to_string(), false)]
    );
    // The exclusive queue and its binding are back, under the same name.
    assert_eq!(
        direct.publish(&ex, "k", b"after", &plain).await.unwrap(),
        PublishOutcome::Routed
    );
    let d = on_excl
        .next(Duration::from_secs(15))
        .await
        .unwrap()
        .expect("the message on the restored exclusive queue");
    assert_eq!(d.payload, b"after");
    d.ack().await.unwrap();
    drop((on_q, on_excl));
    direct.delete_queue(&q).await.unwrap();
    direct.delete_exchange(&ex).await.unwrap();
    b.close().await.unwrap();
    direct.close().await.unwrap();
}

/// Runs scripts/infra with a private state dir and port.
struct PrivateRabbit {
    script: String,
    state: tempfile::TempDir,
    port: u16,
}

impl PrivateRabbit {
    fn infra(&self, args: &[&str]) -> bool {
        Command::new(&self.script)
            .args(args)
            .env("SERRANO_INFRA_STATE", self.state.path())
            .env("SERRANO_INFRA_RABBITMQ_PORT", self.port.to_string())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }
}

impl Drop for PrivateRabbit {
    fn drop(&mut self) {
        self.infra(&["stop", "rabbitmq"]);
    }
}

/// A port with the two ports RabbitMQ derives from it (+20000, +20001) free.
fn free_rabbit_port() -> u16 {
    let pid = std::process::id();
    (0..2_000u32)
        .map(|i| u16::try_from(20_000 + (pid + i * 7) % 25_000).unwrap())
        .find(|&p| {
            [p, p + 20_000, p + 20_001]
                .iter()
                .all(|&x| std::net::TcpListener::bind(("127.0.0.1", x)).is_ok())
        })
        .expect("a free port")
}

/// A real restart of a private broker: the durable queue and its persistent message survive,
/// the consumer subscribes again, a publish made while the broker is down goes through once it
/// is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn survives_a_broker_restart() {
    if amqp_url().is_none() {
        return;
    }
    let Ok(script) = std::env::var("SERRANO_INFRA") else {
        println!("skipped: SERRANO_INFRA not set (run through scripts/test)");
        return;
    };
    if !Path::new(&script).exists() {
        panic!("SERRANO_INFRA={script} does not exist");
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !root {
        println!("skipped: scripts/infra runs RabbitMQ as root only");
        return;
    }
    let rabbit = PrivateRabbit {
        script,
        state: tempfile::tempdir().unwrap(),
        port: free_rabbit_port(),
    };
    let started = Instant::now();
    assert!(
        rabbit.infra(&["start", "rabbitmq"]),
        "start the private RabbitMQ"
    );
    println!(
        "private RabbitMQ on {} started in {:?}",
        rabbit.port,
        started.elapsed()
    );
    let url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", rabbit.port);
    let mut o = options(&url, "restart");
    o.operation_timeout_ms = 90_000;
    o.reconnect_max_delay_ms = 500;
    let rb = Arc::new(RabbitMqBroker::new(o).unwrap());
    let q = "restart.durable";
    rb.declare_queue(q, QueueOptions::durable()).await.unwrap();
    let mut s = rb.consume(q, ConsumeOptions { prefetch: 1 }).await.unwrap();
    rb.publish("", q, b"kept", &MessageProperties::json())
        .await
        .unwrap();
    let d = s.next(Duration::from_secs(10)).await.unwrap().unwrap();
    assert_eq!(d.payload, b"kept");
    // Unacked when the broker goes: it must come back after the restart.
    let started = Instant::now();
    assert!(rabbit.infra(&["stop", "rabbitmq"]), "stop");
    let publisher = {
        let rb = rb.clone();
        tokio::spawn(async move {
            rb.publish("", q, b"while-down", &MessageProperties::json())
                .await
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!publisher.is_finished(), "the publish waits for the broker");
    assert!(
        rabbit.infra(&["start", "--keep-data", "rabbitmq"]),
        "restart"
    );
    println!("broker down and up again in {:?}", started.elapsed());
    assert_eq!(publisher.await.unwrap().unwrap(), PublishOutcome::Routed);
    assert!(d.ack().await.is_err(), "the old channel is gone");
    let mut got = Vec::new();
    for _ in 0..2 {
        let d = s
            .next(Duration::from_secs(60))
            .await
            .unwrap()
            .expect("a message after the restart");
        got.push(String::from_utf8(d.payload.clone()).unwrap());
        d.ack().await.unwrap();
    }
    assert_eq!(got, vec!["kept".to_string(), "while-down".to_string()]);
    assert!(rb.connections_opened() >= 2);
    drop(s);
    rb.close().await.unwrap();
}

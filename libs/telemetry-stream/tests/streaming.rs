#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End-to-end tests of streaming telemetry (D6.7 4.4.3.2) against real tonic servers on
//! 127.0.0.1: ordering, duplicate suppression, receiver restarts, overflow, validation, tokens
//! and a slow sink.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serrano_telemetry_stream::pb::streaming_telemetry_client::StreamingTelemetryClient;
use serrano_telemetry_stream::{
    BatchError, BatchSink, REJECTED_SEQ_METADATA, ReceiverOptions, SenderOptions, SenderStats,
    SinkError, StreamError, StreamIdentity, StreamSender, pb, serve, service,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic::metadata::MetadataValue;

// ---------------------------------------------------------------------------------------------
// helpers

/// Records every accepted batch; optionally slow, optionally failing once on one seq.
#[derive(Default)]
struct CollectSink {
    batches: Mutex<Vec<pb::MetricBatch>>,
    delay: Option<Duration>,
    fail_once_on: Mutex<Option<u64>>,
    /// Answers `last_seq` from what it stored, like a durable store would.
    durable: bool,
}

impl CollectSink {
    fn seqs(&self) -> Vec<u64> {
        self.batches.lock().unwrap().iter().map(|b| b.seq).collect()
    }

    fn len(&self) -> usize {
        self.batches.lock().unwrap().len()
    }
}

#[async_trait]
impl BatchSink for CollectSink {
    async fn accept(&self, batch: pb::MetricBatch) -> Result<(), SinkError> {
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        {
            let mut fail = self.fail_once_on.lock().unwrap();
            if *fail == Some(batch.seq) {
                *fail = None;
                return Err(SinkError::new("injected failure"));
            }
        }
        self.batches.lock().unwrap().push(batch);
        Ok(())
    }

    async fn last_seq(
        &self,
        source_uuid: &str,
        session_id: &str,
    ) -> Result<Option<u64>, SinkError> {
        if !self.durable {
            return Ok(None);
        }
        let batches = self.batches.lock().unwrap();
        Ok(batches
            .iter()
            .filter(|b| b.source_uuid == source_uuid && b.session_id == session_id)
            .map(|b| b.seq)
            .max())
    }
}

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), StreamError>>,
}

impl Running {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("receiver stops in time")
            .expect("receiver task joins")
            .expect("receiver ends without error");
    }
}

async fn start_on(
    listener: TcpListener,
    sink: Arc<dyn BatchSink>,
    options: ReceiverOptions,
) -> Running {
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, sink, options, async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop: Some(stop),
        task,
    }
}

async fn start(sink: Arc<dyn BatchSink>, options: ReceiverOptions) -> Running {
    start_on(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        sink,
        options,
    )
    .await
}

/// Binds a given port again, retrying while the previous socket is being torn down.
async fn bind_again(addr: SocketAddr) -> TcpListener {
    for _ in 0..50 {
        if let Ok(listener) = TcpListener::bind(addr).await {
            return listener;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("cannot bind {addr} again");
}

async fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A TCP proxy whose connections can be cut at once, as a crash or a network failure would.
struct Proxy {
    addr: SocketAddr,
    target: Arc<Mutex<SocketAddr>>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let target = Arc::new(Mutex::new(target));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let target = Arc::clone(&target);
            let links = Arc::clone(&links);
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    let to = *target.lock().unwrap();
                    links.lock().unwrap().push(tokio::spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    }));
                }
            })
        };
        Self {
            addr,
            target,
            links,
            accept,
        }
    }

    /// Sends new connections to `target` and drops every open one without a goodbye.
    fn cut_and_redirect(&self, target: SocketAddr) {
        *self.target.lock().unwrap() = target;
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}

fn sample(i: i64) -> pb::Sample {
    pb::Sample {
        measurement: "node_cpu".into(),
        tags: [("node".to_string(), "serrano-k8s-worker-02".to_string())].into(),
        fields: [("used".to_string(), i as f64), ("idle".to_string(), 1.0)].into(),
        time_ns: i,
    }
}

fn samples(from: i64, count: i64) -> Vec<pb::Sample> {
    (from..from + count).map(sample).collect()
}

fn identity(session: &str) -> StreamIdentity {
    StreamIdentity {
        source_uuid: "probe-1".into(),
        cluster_uuid: "7628b895-3a91-4f0c-b0b7-033eab309891".into(),
        session_id: session.into(),
    }
}

fn fast_options() -> SenderOptions {
    SenderOptions {
        rotate_every: Duration::from_millis(100),
        connect_timeout: Duration::from_secs(1),
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        ack_timeout: Duration::from_secs(2),
        ..Default::default()
    }
}

fn batch(session: &str, seq: u64, samples: Vec<pb::Sample>) -> pb::MetricBatch {
    pb::MetricBatch {
        source_uuid: "probe-raw".into(),
        cluster_uuid: String::new(),
        session_id: session.into(),
        seq,
        samples,
    }
}

/// Pushes batches on one stream with the generated client.
async fn push_raw(
    url: &str,
    batches: Vec<pb::MetricBatch>,
    token: Option<&str>,
) -> Result<pb::PushAck, tonic::Status> {
    let mut client = StreamingTelemetryClient::connect(url.to_owned())
        .await
        .unwrap();
    let mut request = tonic::Request::new(tokio_stream::iter(batches));
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            MetadataValue::try_from(format!("Bearer {token}")).unwrap(),
        );
    }
    client.push(request).await.map(tonic::Response::into_inner)
}

// ---------------------------------------------------------------------------------------------
// delivery

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_10k_samples_in_order() {
    let sink = Arc::new(CollectSink::default());
    let receiver = start(sink.clone(), ReceiverOptions::default()).await;
    let sender = StreamSender::start(receiver.url(), identity("s-order"), fast_options()).unwrap();

    for i in 0..100 {
        let seq = sender.send(samples(i * 100, 100)).unwrap();
        assert_eq!(seq, (i + 1) as u64);
    }
    let stats = sender.close(Duration::from_secs(10)).await;

    assert_eq!(stats.queued, 0);
    assert_eq!(stats.acked, 100);
    assert_eq!(stats.dropped, 0);
    assert_eq!(stats.rejected, 0);
    assert_eq!(sink.seqs(), (1..=100).collect::<Vec<u64>>());
    let batches = sink.batches.lock().unwrap().clone();
    let times: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.samples.iter().map(|s| s.time_ns))
        .collect();
    assert_eq!(times, (0..10_000).collect::<Vec<i64>>());
    let first = &batches[0];
    assert_eq!(first.source_uuid, "probe-1");
    assert_eq!(first.cluster_uuid, "7628b895-3a91-4f0c-b0b7-033eab309891");
    assert_eq!(first.session_id, "s-order");
    assert_eq!(first.samples[0], sample(0));
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resent_batches_are_dropped_as_duplicates_after_a_forced_reconnect() {
    let sink = Arc::new(CollectSink {
        fail_once_on: Mutex::new(Some(5)),
        ..Default::default()
    });
    let receiver = start(sink.clone(), ReceiverOptions::default()).await;
    let sender = StreamSender::start(receiver.url(), identity("s-dup"), fast_options()).unwrap();
    for i in 0..10 {
        sender.send(samples(i, 1)).unwrap();
    }
    let stats = sender.close(Duration::from_secs(10)).await;

    // The sink failed on seq 5: the stream was aborted, the sender reconnected and resent from
    // the oldest unacknowledged batch; 1..4 were dropped as duplicates.
    assert_eq!(sink.seqs(), (1..=10).collect::<Vec<u64>>());
    assert!(stats.reconnects >= 1, "{stats:?}");
    assert!(stats.sent > 10, "nothing was resent: {stats:?}");
    assert_eq!((stats.acked, stats.queued, stats.dropped), (10, 0, 0));
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_counts_duplicates_per_source_and_session() {
    let sink = Arc::new(CollectSink::default());
    let receiver = start(sink.clone(), ReceiverOptions::default()).await;
    let url = receiver.url();

    let first = (1..=3).map(|seq| batch("a", seq, samples(0, 1))).collect();
    let ack = push_raw(&url, first, None).await.unwrap();
    assert_eq!(
        ack,
        pb::PushAck {
            last_seq: 3,
            accepted: 3,
            duplicates: 0
        }
    );

    let resend = (2..=4).map(|seq| batch("a", seq, samples(0, 1))).collect();
    let ack = push_raw(&url, resend, None).await.unwrap();
    assert_eq!(
        ack,
        pb::PushAck {
            last_seq: 4,
            accepted: 1,
            duplicates: 2
        }
    );

    // Another session of the same source has its own sequence.
    let other = vec![batch("b", 1, samples(0, 1))];
    let ack = push_raw(&url, other, None).await.unwrap();
    assert_eq!(
        ack,
        pb::PushAck {
            last_seq: 1,
            accepted: 1,
            duplicates: 0
        }
    );

    // An empty stream is acknowledged with nothing.
    let ack = push_raw(&url, vec![], None).await.unwrap();
    assert_eq!(ack, pb::PushAck::default());

    assert_eq!(sink.seqs(), vec![1, 2, 3, 4, 1]);
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_restart_loses_and_duplicates_nothing() {
    let sink = Arc::new(CollectSink::default());
    let receiver = start(sink.clone(), ReceiverOptions::default()).await;
    let addr = receiver.addr;
    let sender = Arc::new(
        StreamSender::start(receiver.url(), identity("s-restart"), fast_options()).unwrap(),
    );

    const TOTAL: u64 = 300;
    let producer = {
        let sender = Arc::clone(&sender);
        tokio::spawn(async move {
            for i in 0..TOTAL as i64 {
                sender.send(samples(i * 10, 10)).unwrap();
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        })
    };

    wait_until("first batches", Duration::from_secs(10), || {
        sink.len() >= 50
    })
    .await;
    receiver.stop().await;
    let at_stop = sink.len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Nothing is stored while the receiver is down, but the producer went on.
    assert_eq!(sink.len(), at_stop);
    let restarted = start_on(
        bind_again(addr).await,
        sink.clone(),
        ReceiverOptions::default(),
    )
    .await;

    producer.await.unwrap();
    let sender = Arc::try_unwrap(sender).expect("producer released the sender");
    let stats = sender.close(Duration::from_secs(10)).await;

    assert!(
        at_stop < TOTAL as usize,
        "the restart happened after the last batch"
    );
    assert_eq!(sink.seqs(), (1..=TOTAL).collect::<Vec<u64>>());
    assert_eq!(stats.dropped, 0);
    assert_eq!(stats.queued, 0);
    assert_eq!(stats.acked, TOTAL);
    assert!(stats.reconnects >= 1, "{stats:?}");
    restarted.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_sink_keeps_exactly_once_across_a_receiver_crash() {
    // Receiver A "crashes" (its connections are cut, nothing is acknowledged) and a fresh
    // receiver B, with an empty dedup table, takes over the same durable sink.
    let sink = Arc::new(CollectSink {
        durable: true,
        ..Default::default()
    });
    let first = start(sink.clone(), ReceiverOptions::default()).await;
    let second = start(sink.clone(), ReceiverOptions::default()).await;
    let proxy = Proxy::start(first.addr).await;
    let options = SenderOptions {
        // Long streams: many batches are stored but unacknowledged at the cut.
        rotate_every: Duration::from_secs(5),
        ..fast_options()
    };
    let sender = Arc::new(
        StreamSender::start(
            format!("http://{}", proxy.addr),
            identity("s-crash"),
            options,
        )
        .unwrap(),
    );
    const TOTAL: u64 = 200;
    let producer = {
        let sender = Arc::clone(&sender);
        tokio::spawn(async move {
            for i in 0..TOTAL as i64 {
                sender.send(samples(i, 1)).unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    wait_until("first batches", Duration::from_secs(10), || {
        sink.len() >= 50
    })
    .await;
    assert_eq!(
        sender.stats().acked,
        0,
        "the cut must come before any acknowledgement"
    );
    proxy.cut_and_redirect(second.addr);

    producer.await.unwrap();
    let sender = Arc::try_unwrap(sender).expect("producer released the sender");
    let stats = sender.close(Duration::from_secs(10)).await;

    assert_eq!(sink.seqs(), (1..=TOTAL).collect::<Vec<u64>>());
    assert_eq!((stats.dropped, stats.queued, stats.acked), (0, 0, TOTAL));
    assert!(stats.reconnects >= 1, "{stats:?}");
    assert!(stats.sent > TOTAL, "nothing was resent: {stats:?}");
    drop(proxy);
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflow_drops_the_oldest_batches_and_counts_them() {
    // A port with nobody listening, until the receiver starts on it below.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let options = SenderOptions {
        capacity_batches: 10,
        ..fast_options()
    };
    let sender =
        StreamSender::start(format!("http://{addr}"), identity("s-overflow"), options).unwrap();
    for i in 0..25 {
        sender.send(samples(i, 1)).unwrap();
    }
    let stats = sender.stats();
    assert_eq!((stats.queued, stats.dropped, stats.acked), (10, 15, 0));

    let sink = Arc::new(CollectSink::default());
    let receiver = start_on(
        bind_again(addr).await,
        sink.clone(),
        ReceiverOptions::default(),
    )
    .await;
    wait_until("buffered batches", Duration::from_secs(10), || {
        sink.len() >= 10
    })
    .await;
    let stats = sender.close(Duration::from_secs(10)).await;

    assert_eq!(sink.seqs(), (16..=25).collect::<Vec<u64>>());
    assert_eq!(
        (stats.queued, stats.dropped, stats.acked, stats.rejected),
        (0, 15, 10, 0)
    );
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_gives_up_at_the_deadline_when_nobody_listens() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let sender =
        StreamSender::start(format!("http://{addr}"), identity("s-down"), fast_options()).unwrap();
    sender.send(samples(0, 1)).unwrap();
    sender.send(samples(1, 1)).unwrap();
    let begin = Instant::now();
    let stats = sender.close(Duration::from_millis(200)).await;
    assert!(
        begin.elapsed() < Duration::from_secs(2),
        "close took {:?}",
        begin.elapsed()
    );
    assert_eq!(
        stats,
        SenderStats {
            queued: 2,
            ..SenderStats::default()
        }
    );
}

// ---------------------------------------------------------------------------------------------
// validation

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_batches_are_rejected() {
    let sink = Arc::new(CollectSink::default());
    let options = ReceiverOptions {
        max_samples_per_batch: 5,
        max_message_bytes: 2_000,
        ..Default::default()
    };
    let receiver = start(sink.clone(), options).await;
    let url = receiver.url();

    let mut no_source = batch("v", 1, samples(0, 1));
    no_source.source_uuid.clear();
    let mut nan = batch("v", 7, samples(0, 2));
    nan.samples[1].fields.insert("used".into(), f64::NAN);
    let mut infinite = batch("v", 8, samples(0, 1));
    infinite.samples[0].fields.insert("x".into(), f64::INFINITY);
    let mut unnamed = batch("v", 9, samples(0, 1));
    unnamed.samples[0].measurement.clear();
    let mut huge = batch("v", 10, samples(0, 1));
    huge.samples[0]
        .tags
        .insert("blob".into(), "x".repeat(5_000));

    let cases: Vec<(&str, Vec<pb::MetricBatch>, Code)> = vec![
        ("empty source", vec![no_source], Code::InvalidArgument),
        (
            "seq 0",
            vec![batch("v", 0, samples(0, 1))],
            Code::InvalidArgument,
        ),
        (
            "no samples",
            vec![batch("v", 1, vec![])],
            Code::InvalidArgument,
        ),
        ("NaN", vec![nan], Code::InvalidArgument),
        ("infinity", vec![infinite], Code::InvalidArgument),
        ("empty measurement", vec![unnamed], Code::InvalidArgument),
        (
            "too many samples",
            vec![batch("v", 1, samples(0, 6))],
            Code::ResourceExhausted,
        ),
        ("too large", vec![huge], Code::ResourceExhausted),
    ];
    for (name, batches, code) in cases {
        let status = push_raw(&url, batches, None).await.expect_err(name);
        assert_eq!(status.code(), code, "{name}: {status:?}");
    }
    assert!(sink.seqs().is_empty());

    // The rejected seq travels in the status metadata, so that a sender can drop that batch.
    let mut nan = batch("v", 7, samples(0, 1));
    nan.samples[0].fields.insert("used".into(), f64::NAN);
    let status = push_raw(&url, vec![nan], None).await.unwrap_err();
    let seq = status
        .metadata()
        .get(REJECTED_SEQ_METADATA)
        .map(|value| value.to_str().unwrap().to_owned());
    assert_eq!(seq.as_deref(), Some("7"));

    // Valid batches before the invalid one are kept; a stream is one (source, session) only.
    let mixed = vec![batch("v", 1, samples(0, 1)), batch("w", 2, samples(0, 1))];
    let status = push_raw(&url, mixed, None).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(sink.seqs(), vec![1]);
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_refuses_invalid_input_and_drops_batches_the_receiver_rejects() {
    let sink = Arc::new(CollectSink::default());
    let options = ReceiverOptions {
        max_samples_per_batch: 5,
        ..Default::default()
    };
    let receiver = start(sink.clone(), options).await;
    let sender_options = SenderOptions {
        max_batch_bytes: 4_000,
        ..fast_options()
    };
    let sender = StreamSender::start(receiver.url(), identity("s-reject"), sender_options).unwrap();

    assert_eq!(sender.send(vec![]), Err(BatchError::NoSamples));
    let mut nan = samples(0, 2);
    nan[1].fields.insert("used".into(), f64::NAN);
    assert_eq!(
        sender.send(nan),
        Err(BatchError::NonFiniteField {
            sample: 1,
            field: "used".into()
        })
    );
    assert!(matches!(
        sender.send(samples(0, 100)),
        Err(BatchError::TooLarge { limit: 4_000, .. })
    ));

    // Within the sender's limits but over the receiver's: rejected there, then dropped here.
    assert_eq!(sender.send(samples(0, 10)), Ok(1));
    assert_eq!(sender.send(samples(10, 3)), Ok(2));
    let stats = sender.close(Duration::from_secs(10)).await;
    assert_eq!(sink.seqs(), vec![2]);
    assert_eq!((stats.rejected, stats.acked, stats.queued), (1, 1, 0));
    receiver.stop().await;
}

#[tokio::test]
async fn start_refuses_bad_settings() {
    let bad_endpoint =
        StreamSender::start("not a uri".into(), identity("x"), SenderOptions::default());
    assert!(matches!(
        bad_endpoint,
        Err(StreamError::InvalidEndpoint { .. })
    ));
    let tls = StreamSender::start(
        "https://127.0.0.1:1".into(),
        identity("x"),
        SenderOptions::default(),
    );
    assert!(matches!(tls, Err(StreamError::InvalidEndpoint { .. })));
    let mut anonymous = identity("x");
    anonymous.source_uuid.clear();
    let anonymous = StreamSender::start(
        "http://127.0.0.1:1".into(),
        anonymous,
        SenderOptions::default(),
    );
    assert!(matches!(anonymous, Err(StreamError::EmptySourceUuid)));
    let token = SenderOptions {
        token: Some("line\nbreak".into()),
        ..Default::default()
    };
    let token = StreamSender::start("http://127.0.0.1:1".into(), identity("x"), token);
    assert!(matches!(token, Err(StreamError::InvalidToken)));
    let zero = SenderOptions {
        capacity_batches: 0,
        ..Default::default()
    };
    let zero = StreamSender::start("http://127.0.0.1:1".into(), identity("x"), zero);
    assert!(matches!(
        zero,
        Err(StreamError::InvalidOption {
            name: "capacity_batches",
            ..
        })
    ));
}

#[test]
fn start_outside_a_runtime_is_an_error() {
    let outside = StreamSender::start(
        "http://127.0.0.1:1".into(),
        identity("x"),
        SenderOptions::default(),
    );
    assert!(matches!(outside, Err(StreamError::NoRuntime)));
}

// ---------------------------------------------------------------------------------------------
// authentication

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_is_required_when_configured() {
    let sink = Arc::new(CollectSink::default());
    let options = ReceiverOptions {
        tokens: vec!["other".into(), "s3cret".into()],
        ..Default::default()
    };
    let receiver = start(sink.clone(), options).await;
    let url = receiver.url();

    let missing = push_raw(&url, vec![batch("t", 1, samples(0, 1))], None).await;
    assert_eq!(missing.unwrap_err().code(), Code::Unauthenticated);
    let wrong = push_raw(&url, vec![batch("t", 1, samples(0, 1))], Some("guess")).await;
    assert_eq!(wrong.unwrap_err().code(), Code::Unauthenticated);
    let right = push_raw(&url, vec![batch("t", 1, samples(0, 1))], Some("s3cret")).await;
    assert_eq!(right.unwrap().accepted, 1);

    let intruder = StreamSender::start(
        url.clone(),
        identity("s-intruder"),
        SenderOptions {
            token: Some("guess".into()),
            ..fast_options()
        },
    )
    .unwrap();
    intruder.send(samples(0, 1)).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = intruder.close(Duration::from_millis(100)).await;
    assert_eq!((stats.acked, stats.queued), (0, 1));

    let trusted = StreamSender::start(
        url,
        identity("s-trusted"),
        SenderOptions {
            token: Some("s3cret".into()),
            ..fast_options()
        },
    )
    .unwrap();
    trusted.send(samples(0, 1)).unwrap();
    let stats = trusted.close(Duration::from_secs(10)).await;
    assert_eq!((stats.acked, stats.queued), (1, 0));

    let sessions: Vec<String> = sink
        .batches
        .lock()
        .unwrap()
        .iter()
        .map(|b| b.session_id.clone())
        .collect();
    assert_eq!(sessions, vec!["t".to_string(), "s-trusted".to_string()]);
    receiver.stop().await;
}

// ---------------------------------------------------------------------------------------------
// back-pressure

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_sink_does_not_block_send() {
    let sink = Arc::new(CollectSink {
        delay: Some(Duration::from_millis(50)),
        ..Default::default()
    });
    let receiver = start(sink.clone(), ReceiverOptions::default()).await;
    let options = SenderOptions {
        capacity_batches: 8,
        ..fast_options()
    };
    let sender = StreamSender::start(receiver.url(), identity("s-slow"), options).unwrap();

    let begin = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..200 {
        let one = Instant::now();
        sender.send(samples(i * 100, 100)).unwrap();
        slowest = slowest.max(one.elapsed());
    }
    let total = begin.elapsed();
    // 200 batches through a 50 ms sink would take 10 s if send waited for it.
    assert!(total < Duration::from_secs(2), "send blocked: {total:?}");
    assert!(
        slowest < Duration::from_millis(200),
        "one send took {slowest:?}"
    );
    let stats = sender.stats();
    assert!(stats.queued <= 8, "{stats:?}");
    assert!(stats.dropped >= 150, "{stats:?}");

    let stats = sender.close(Duration::from_secs(10)).await;
    let delivered = sink.seqs();
    // Whatever got through is in order and without duplicates, and the newest batches survived.
    assert!(
        delivered.windows(2).all(|pair| pair[0] < pair[1]),
        "{delivered:?}"
    );
    assert!(
        delivered.ends_with(&(193..=200).collect::<Vec<u64>>()),
        "{delivered:?}"
    );
    // A dropped batch may have been in flight already, so drops and deliveries can overlap.
    assert!(stats.dropped + delivered.len() as u64 >= 200, "{stats:?}");
    assert_eq!(stats.queued, 0);
    receiver.stop().await;
}

// ---------------------------------------------------------------------------------------------
// embedding

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_mounts_in_a_caller_owned_tonic_server() {
    let sink = Arc::new(CollectSink::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = service(sink.clone(), ReceiverOptions::default());
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let ack = push_raw(
        &format!("http://{addr}"),
        vec![batch("e", 1, samples(0, 3))],
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        ack,
        pb::PushAck {
            last_seq: 1,
            accepted: 1,
            duplicates: 0
        }
    );
    assert_eq!(sink.len(), 1);
    server.abort();
}

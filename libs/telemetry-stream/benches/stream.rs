//! Throughput of streaming telemetry (D6.7 4.4.3.2): one sender pushing batches of 1000 samples
//! (10 fields each) to an in-process receiver with a counting sink, over loopback TCP.
//!
//! Run: `cargo bench -p serrano-telemetry-stream --bench stream` (BENCH_BATCHES overrides the
//! batch count, default 2000).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use prost::Message as _;
use serrano_telemetry_stream::{
    BatchSink, ReceiverOptions, SenderOptions, SinkError, StreamIdentity, StreamSender, pb, serve,
};

const SAMPLES_PER_BATCH: usize = 1000;
const FIELDS_PER_SAMPLE: usize = 10;
const CAPACITY: usize = 64;

#[derive(Default)]
struct CountingSink {
    batches: AtomicU64,
    samples: AtomicU64,
}

#[async_trait]
impl BatchSink for CountingSink {
    async fn accept(&self, batch: pb::MetricBatch) -> Result<(), SinkError> {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.samples
            .fetch_add(batch.samples.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

fn template() -> Vec<pb::Sample> {
    (0..SAMPLES_PER_BATCH)
        .map(|i| pb::Sample {
            measurement: "node_cpu".into(),
            tags: [
                ("node".to_string(), "serrano-k8s-worker-02".to_string()),
                ("cpu".to_string(), (i % 8).to_string()),
            ]
            .into(),
            fields: (0..FIELDS_PER_SAMPLE)
                .map(|f| (format!("field_{f}"), i as f64 * 0.5 + f as f64))
                .collect(),
            time_ns: 1_701_548_446_000_000_000 + i as i64,
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let batches: u64 = std::env::var("BENCH_BATCHES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(2000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(batches))
}

async fn run(batches: u64) -> Result<(), Box<dyn std::error::Error>> {
    let sink = Arc::new(CountingSink::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        sink.clone(),
        ReceiverOptions::default(),
        async move {
            let _ = stop_rx.await;
        },
    ));

    let sender = StreamSender::start(
        format!("http://{addr}"),
        StreamIdentity {
            source_uuid: "bench-probe".into(),
            cluster_uuid: "bench-cluster".into(),
            session_id: "bench".into(),
        },
        SenderOptions {
            capacity_batches: CAPACITY,
            rotate_every: Duration::from_secs(1),
            ..Default::default()
        },
    )?;
    let samples = template();
    let batch_bytes = pb::MetricBatch {
        source_uuid: "bench-probe".into(),
        cluster_uuid: "bench-cluster".into(),
        session_id: "bench".into(),
        seq: 1,
        samples: samples.clone(),
    }
    .encoded_len();

    // Time spent inside `send` (validation + encoding), the cost paid by the producer.
    let mut in_send = Duration::ZERO;
    let begin = Instant::now();
    for _ in 0..batches {
        // Keep below capacity so the measurement is throughput, not drops.
        while sender.stats().queued >= CAPACITY - 1 {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        let copy = samples.clone();
        let start = Instant::now();
        sender.send(copy)?;
        in_send += start.elapsed();
    }
    let stats = sender.close(Duration::from_secs(60)).await;
    let elapsed = begin.elapsed();
    let _ = stop_tx.send(());
    server.await??;

    let delivered = sink.samples.load(Ordering::Relaxed);
    let seconds = elapsed.as_secs_f64();
    println!(
        "stream: {batches} batches x {SAMPLES_PER_BATCH} samples x {FIELDS_PER_SAMPLE} fields, \
         {batch_bytes} B/batch"
    );
    println!(
        "stream: delivered {delivered} samples in {seconds:.3} s = {:.0} samples/s, {:.1} MB/s",
        delivered as f64 / seconds,
        (sink.batches.load(Ordering::Relaxed) as f64 * batch_bytes as f64) / seconds / 1e6
    );
    println!(
        "stream: send() mean {:.1} us/batch (encode + enqueue); sender stats {stats:?}",
        in_send.as_secs_f64() * 1e6 / batches as f64
    );
    if delivered != batches * SAMPLES_PER_BATCH as u64 || stats.dropped != 0 {
        return Err(format!("lost samples: delivered {delivered}, stats {stats:?}").into());
    }
    Ok(())
}

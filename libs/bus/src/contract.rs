//! The contract suite: the behaviour every [`StreamHandler`] must have (Kafka offset semantics
//! on partition 0, D6.7 4.5.2).
//!
//! Each case uses its own fresh topic, so the suite can run against a shared broker. Used by
//! the embedded tests (in memory and on disk) and by `tests/contract_kafka.rs`; other crates
//! get it with the `contract-suite` feature.

// Test code: a failed expectation is a panic with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::{BusError, Record, StartAt, StreamHandler, TopicReader};

/// One case: a name and its body (handler, unique topic).
pub struct Case {
    pub name: &'static str,
    pub run: fn(Arc<dyn StreamHandler>, String) -> BoxFuture<'static, ()>,
}

macro_rules! case {
    ($f:ident) => {
        Case {
            name: stringify!($f),
            run: |h, t| Box::pin($f(h, t)),
        }
    };
}

/// Every case of the suite.
pub fn cases() -> Vec<Case> {
    vec![
        case!(health_ok),
        case!(publish_then_read_from_beginning),
        case!(reader_at_end_sees_only_later_records),
        case!(reader_at_end_after_a_concurrent_burst),
        case!(reader_at_offset),
        case!(empty_topic_times_out),
        case!(reader_waits_for_a_publish),
        case!(two_readers_are_independent),
        case!(invalid_names_and_offsets),
        case!(concurrent_publishers_exactly_once),
        case!(large_payload),
    ]
}

/// Runs every case sequentially on `handler`, each with its own topic; prints each case's time.
pub async fn run_suite(handler: Arc<dyn StreamHandler>) {
    for case in cases() {
        let topic = unique_topic(case.name);
        let started = Instant::now();
        (case.run)(handler.clone(), topic.clone()).await;
        println!(
            "contract case {} ({}) on {topic}: {:?}",
            case.name,
            handler.kind(),
            started.elapsed()
        );
    }
}

/// A topic no other run uses: `serrano-test.<name>-<pid>-<nanos>-<n>`.
pub fn unique_topic(name: &str) -> String {
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

/// How long to wait for a record that must come (generous: a broker's first fetch is slow).
const WAIT: Duration = Duration::from_secs(20);
/// How long to wait to be sure that nothing more comes.
const QUIET: Duration = Duration::from_millis(700);

async fn expect_record(r: &mut Box<dyn TopicReader>, what: &str) -> Record {
    match r.next(WAIT).await {
        Ok(Some(rec)) => rec,
        other => panic!("expected {what}, got {other:?}"),
    }
}

async fn expect_nothing(r: &mut Box<dyn TopicReader>, what: &str) {
    match r.next(QUIET).await {
        Ok(None) => {}
        other => panic!("expected no record ({what}), got {other:?}"),
    }
}

async fn publish_n(h: &Arc<dyn StreamHandler>, t: &str, from: usize, to: usize) {
    for i in from..to {
        h.publish(
            t,
            Some(format!("k{i}").as_bytes()),
            format!("p{i}").as_bytes(),
        )
        .await
        .unwrap_or_else(|e| panic!("publish {i} to {t}: {e}"));
    }
}

fn assert_record(rec: &Record, t: &str, offset: i64, i: usize) {
    assert_eq!(rec.topic, t);
    assert_eq!(rec.offset, offset, "offset of record {i}");
    assert_eq!(
        rec.key.as_deref(),
        Some(format!("k{i}").as_bytes()),
        "key of record {i}"
    );
    assert_eq!(
        rec.payload,
        format!("p{i}").as_bytes(),
        "payload of record {i}"
    );
}

pub async fn health_ok(h: Arc<dyn StreamHandler>, _t: String) {
    h.health().await.expect("health");
}

pub async fn publish_then_read_from_beginning(h: Arc<dyn StreamHandler>, t: String) {
    let before = crate::now_ms();
    publish_n(&h, &t, 0, 4).await;
    // No key, and an empty payload.
    h.publish(&t, None, b"").await.unwrap();
    let after = crate::now_ms();
    let mut r = h.reader(&t, StartAt::Beginning).await.unwrap();
    for i in 0..4 {
        let rec = expect_record(&mut r, "a published record").await;
        assert_record(&rec, &t, i as i64, i);
        assert!(
            rec.timestamp_ms >= before - 5_000 && rec.timestamp_ms <= after + 5_000,
            "timestamp {} outside [{before}, {after}]",
            rec.timestamp_ms
        );
    }
    let last = expect_record(&mut r, "the keyless record").await;
    assert_eq!((last.offset, last.key, last.payload), (4, None, Vec::new()));
    expect_nothing(&mut r, "all five read").await;
}

pub async fn reader_at_end_sees_only_later_records(h: Arc<dyn StreamHandler>, t: String) {
    publish_n(&h, &t, 0, 3).await;
    let mut r = h.reader(&t, StartAt::End).await.unwrap();
    expect_nothing(&mut r, "reader at end before new records").await;
    publish_n(&h, &t, 3, 5).await;
    for i in 3..5 {
        let rec = expect_record(&mut r, "a later record").await;
        assert_record(&rec, &t, i as i64, i);
    }
    expect_nothing(&mut r, "both later records read").await;
}

/// Concurrent publishes may share a produce batch; the end offset must still be exact.
pub async fn reader_at_end_after_a_concurrent_burst(h: Arc<dyn StreamHandler>, t: String) {
    const N: usize = 20;
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let h = h.clone();
            let t = t.clone();
            tokio::spawn(async move { h.publish(&t, None, format!("b{i}").as_bytes()).await })
        })
        .collect();
    for task in futures::future::join_all(tasks).await {
        task.unwrap().unwrap();
    }
    let mut r = h.reader(&t, StartAt::End).await.unwrap();
    expect_nothing(&mut r, "reader at end after the burst").await;
    publish_n(&h, &t, N, N + 1).await;
    assert_record(
        &expect_record(&mut r, "the record after the burst").await,
        &t,
        N as i64,
        N,
    );
}

pub async fn reader_at_offset(h: Arc<dyn StreamHandler>, t: String) {
    publish_n(&h, &t, 0, 5).await;
    let mut r = h.reader(&t, StartAt::Offset(2)).await.unwrap();
    for i in 2..5 {
        let rec = expect_record(&mut r, "a record from offset 2").await;
        assert_record(&rec, &t, i as i64, i);
    }
    expect_nothing(&mut r, "read to the end").await;
    // At the end exactly, and past it (clamped to the end): both see the next record only.
    let mut at_end = h.reader(&t, StartAt::Offset(5)).await.unwrap();
    let mut past = h.reader(&t, StartAt::Offset(1_000)).await.unwrap();
    expect_nothing(&mut at_end, "reader at offset 5 of 5").await;
    publish_n(&h, &t, 5, 6).await;
    assert_record(&expect_record(&mut at_end, "record 5").await, &t, 5, 5);
    assert_record(
        &expect_record(&mut past, "record 5 (clamped)").await,
        &t,
        5,
        5,
    );
    let mut zero = h.reader(&t, StartAt::Offset(0)).await.unwrap();
    assert_record(&expect_record(&mut zero, "record 0").await, &t, 0, 0);
}

pub async fn empty_topic_times_out(h: Arc<dyn StreamHandler>, t: String) {
    for start in [StartAt::Beginning, StartAt::End, StartAt::Offset(0)] {
        let mut r = h.reader(&t, start).await.unwrap();
        let started = Instant::now();
        let got = r.next(Duration::from_millis(300)).await.unwrap();
        let took = started.elapsed();
        assert_eq!(got, None, "empty topic from {start:?}");
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_secs(5),
            "next(300ms) took {took:?}"
        );
    }
    let mut r = h.reader(&t, StartAt::Beginning).await.unwrap();
    assert_eq!(r.next(Duration::ZERO).await.unwrap(), None);
}

pub async fn reader_waits_for_a_publish(h: Arc<dyn StreamHandler>, t: String) {
    let mut r = h.reader(&t, StartAt::End).await.unwrap();
    let h2 = h.clone();
    let t2 = t.clone();
    let publisher = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        publish_n(&h2, &t2, 0, 1).await;
    });
    let started = Instant::now();
    let rec = expect_record(&mut r, "the record published while waiting").await;
    assert_record(&rec, &t, 0, 0);
    assert!(
        started.elapsed() < WAIT,
        "woke up late: {:?}",
        started.elapsed()
    );
    publisher.await.unwrap();
}

pub async fn two_readers_are_independent(h: Arc<dyn StreamHandler>, t: String) {
    publish_n(&h, &t, 0, 3).await;
    let mut a = h.reader(&t, StartAt::Beginning).await.unwrap();
    let mut b = h.reader(&t, StartAt::Beginning).await.unwrap();
    for i in 0..3 {
        assert_record(&expect_record(&mut a, "reader a").await, &t, i as i64, i);
    }
    expect_nothing(&mut a, "reader a at the end").await;
    // Reader b has not moved.
    for i in 0..3 {
        assert_record(&expect_record(&mut b, "reader b").await, &t, i as i64, i);
    }
    publish_n(&h, &t, 3, 4).await;
    assert_record(&expect_record(&mut a, "reader a, new").await, &t, 3, 3);
    assert_record(&expect_record(&mut b, "reader b, new").await, &t, 3, 3);
}

pub async fn invalid_names_and_offsets(h: Arc<dyn StreamHandler>, t: String) {
    let long = "x".repeat(250);
    for bad in ["", "a b", "a/b", "..", "tópico", long.as_str()] {
        match h.publish(bad, None, b"x").await {
            Err(BusError::Invalid(_)) => {}
            other => panic!("publish to {bad:?}: expected Invalid, got {other:?}"),
        }
        match h.reader(bad, StartAt::Beginning).await {
            Err(BusError::Invalid(_)) => {}
            Err(e) => panic!("reader of {bad:?}: expected Invalid, got {e:?}"),
            Ok(_) => panic!("reader of {bad:?}: expected Invalid, got a reader"),
        }
    }
    match h.reader(&t, StartAt::Offset(-1)).await {
        Err(BusError::Invalid(_)) => {}
        Err(e) => panic!("offset -1: expected Invalid, got {e:?}"),
        Ok(_) => panic!("offset -1: expected Invalid, got a reader"),
    }
    // The longest valid name works.
    let max = format!(
        "{t}-{}",
        "y".repeat(crate::MAX_TOPIC_NAME_LEN - t.len() - 1)
    );
    assert_eq!(max.len(), crate::MAX_TOPIC_NAME_LEN);
    h.publish(&max, None, b"x").await.unwrap();
    let mut r = h.reader(&max, StartAt::Beginning).await.unwrap();
    assert_eq!(
        expect_record(&mut r, "record of a 249-char topic")
            .await
            .payload,
        b"x"
    );
}

pub async fn concurrent_publishers_exactly_once(h: Arc<dyn StreamHandler>, t: String) {
    const PUBLISHERS: usize = 4;
    const EACH: usize = 25;
    let tasks: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let h = h.clone();
            let t = t.clone();
            tokio::spawn(async move {
                for j in 0..EACH {
                    h.publish(
                        &t,
                        Some(format!("{p}").as_bytes()),
                        format!("{p}-{j}").as_bytes(),
                    )
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    for task in futures::future::join_all(tasks).await {
        task.unwrap();
    }
    let mut r = h.reader(&t, StartAt::Beginning).await.unwrap();
    let mut seen = HashSet::new();
    let mut last_of: Vec<Option<usize>> = vec![None; PUBLISHERS];
    for expected_offset in 0..(PUBLISHERS * EACH) as i64 {
        let rec = expect_record(&mut r, "a concurrently published record").await;
        assert_eq!(rec.offset, expected_offset, "offsets are dense");
        let text = String::from_utf8(rec.payload.clone()).unwrap();
        assert!(seen.insert(text.clone()), "duplicate record {text}");
        let (p, j) = text.split_once('-').unwrap();
        let (p, j): (usize, usize) = (p.parse().unwrap(), j.parse().unwrap());
        assert_eq!(rec.key, Some(p.to_string().into_bytes()));
        // Each publisher awaited each publish, so its records are in its order.
        assert!(
            last_of[p].is_none_or(|prev| prev < j),
            "publisher {p} out of order"
        );
        last_of[p] = Some(j);
    }
    assert_eq!(seen.len(), PUBLISHERS * EACH);
    expect_nothing(&mut r, "no extra records").await;
}

pub async fn large_payload(h: Arc<dyn StreamHandler>, t: String) {
    let big: Vec<u8> = (0..512 * 1024u32).map(|i| (i % 251) as u8).collect();
    h.publish(&t, Some(b"big"), &big).await.unwrap();
    h.publish(&t, None, b"small").await.unwrap();
    let mut r = h.reader(&t, StartAt::Beginning).await.unwrap();
    let rec = expect_record(&mut r, "the large record").await;
    assert_eq!(rec.offset, 0);
    assert_eq!(rec.payload.len(), big.len());
    assert!(rec.payload == big, "large payload differs");
    let rec = expect_record(&mut r, "the record after it").await;
    assert_eq!((rec.offset, rec.payload), (1, b"small".to_vec()));
}

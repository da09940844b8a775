//! The contract suite: the behaviour every [`TimeSeriesStore`] backend must have (D6.7 4.4.2:
//! PMDS stores and serves the probes' history whatever the backend).
//!
//! Each case takes a store and a fresh bucket name and writes only into that bucket, so the
//! suite can run against a shared server. Every case calls `flush` before it queries.
//! Backends differ in what they keep, and the cases adapt through [`Capabilities`]:
//! times are compared at `time_resolution_ns` (VictoriaMetrics keeps milliseconds), and without
//! `typed_fields` integers come back as floats (compared through [`FieldValue::as_f64`]) and
//! the typed-fields case is skipped.
//!
//! Used by the embedded store's tests (in memory and on disk) and by the VictoriaMetrics and
//! InfluxDB tests; other crates get it with the `contract-suite` feature.

// Test code: a failed expectation is a panic with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::BoxFuture;

use crate::{Capabilities, FieldValue, Point, Precision, Query, Row, TimeSeriesStore, TsError};

/// One case: a name and its body (store, unique bucket).
pub struct Case {
    pub name: &'static str,
    pub run: fn(Arc<dyn TimeSeriesStore>, String) -> BoxFuture<'static, ()>,
}

macro_rules! case {
    ($f:ident) => {
        Case {
            name: stringify!($f),
            run: |s, b| Box::pin($f(s, b)),
        }
    };
}

/// Every case of the suite.
pub fn cases() -> Vec<Case> {
    vec![
        case!(round_trip_floats_and_ints),
        case!(tag_filter),
        case!(field_selection),
        case!(time_range_bounds),
        case!(limit_cuts_after_sorting),
        case!(many_series),
        case!(buckets_are_isolated),
        case!(malformed_line_stores_nothing),
        case!(line_protocol_precision_and_escapes),
        case!(unknown_bucket_or_measurement_is_empty),
        case!(typed_fields),
    ]
}

/// Runs every case sequentially against one store, each in its own bucket.
pub async fn run_suite(store: Arc<dyn TimeSeriesStore>) {
    for case in cases() {
        let bucket = unique_bucket(case.name);
        println!("contract case {} in bucket {bucket}", case.name);
        (case.run)(store.clone(), bucket).await;
    }
}

/// A bucket name no other run uses: `serrano-test-<name>-<pid>-<nanos>-<n>`.
pub fn unique_bucket(name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "serrano-test-{name}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A recent time on a whole second (backends with a retention window accept it), nanoseconds.
pub fn base_time_ns() -> i64 {
    let now = crate::now_ns();
    (now - 3_600_000_000_000) / 1_000_000_000 * 1_000_000_000
}

fn s(v: &str) -> String {
    v.to_string()
}

fn point(m: &str, tags: &[(&str, &str)], fields: Vec<(&str, FieldValue)>, t: i64) -> Point {
    let mut tags: Vec<(String, String)> = tags.iter().map(|(k, v)| (s(k), s(v))).collect();
    tags.sort();
    Point {
        measurement: s(m),
        tags,
        fields: fields.into_iter().map(|(k, v)| (s(k), v)).collect(),
        time_ns: t,
    }
}

fn query(bucket: &str, m: &str, start: i64, stop: i64) -> Query {
    Query {
        bucket: s(bucket),
        measurement: s(m),
        start_ns: start,
        stop_ns: stop,
        ..Default::default()
    }
}

async fn run_query(st: &Arc<dyn TimeSeriesStore>, q: &Query) -> Vec<Row> {
    st.query(q)
        .await
        .unwrap_or_else(|e| panic!("query {q:?} failed: {e}"))
}

async fn write_flush(st: &Arc<dyn TimeSeriesStore>, bucket: &str, points: &[Point]) {
    st.write(bucket, points)
        .await
        .unwrap_or_else(|e| panic!("write to {bucket} failed: {e}"));
    st.flush().await.expect("flush");
}

fn same_time(c: Capabilities, got: i64, want: i64) -> bool {
    let r = c.time_resolution_ns.max(1);
    got.div_euclid(r) == want.div_euclid(r)
}

/// Compares a value as the backend keeps it: typed, or as a float.
fn same_value(c: Capabilities, got: &FieldValue, want: &FieldValue) -> bool {
    if c.typed_fields {
        return match (got, want) {
            (FieldValue::Float(a), FieldValue::Float(b)) => close(*a, *b),
            _ => got == want,
        };
    }
    match (got.as_f64(), want.as_f64()) {
        (Some(a), Some(b)) => close(a, b),
        _ => false,
    }
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// An expected row: tags, field, value, time.
type Expected<'a> = (Vec<(&'a str, &'a str)>, &'a str, FieldValue, i64);

/// Asserts rows equal the expected (tags, field, value, time) in order.
fn assert_rows(
    c: Capabilities,
    what: &str,
    rows: &[Row],
    measurement: &str,
    want: &[Expected<'_>],
) {
    let shown = || {
        rows.iter()
            .map(|r| format!("{:?} {} {:?} {}", r.tags, r.field, r.value, r.time_ns))
            .collect::<Vec<_>>()
            .join("\n  ")
    };
    assert_eq!(
        rows.len(),
        want.len(),
        "{what}: row count; got:\n  {}",
        shown()
    );
    for (i, (r, (tags, field, value, t))) in rows.iter().zip(want).enumerate() {
        let mut tags: Vec<(String, String)> = tags.iter().map(|(k, v)| (s(k), s(v))).collect();
        tags.sort();
        assert_eq!(r.measurement, measurement, "{what}: row {i} measurement");
        assert_eq!(r.tags, tags, "{what}: row {i} tags; got:\n  {}", shown());
        assert_eq!(
            r.field,
            *field,
            "{what}: row {i} field; got:\n  {}",
            shown()
        );
        assert!(
            same_value(c, &r.value, value),
            "{what}: row {i} value {:?}, want {value:?}; got:\n  {}",
            r.value,
            shown()
        );
        assert!(
            same_time(c, r.time_ns, *t),
            "{what}: row {i} time {}, want {t}",
            r.time_ns
        );
    }
}

pub async fn round_trip_floats_and_ints(st: Arc<dyn TimeSeriesStore>, b: String) {
    let c = st.capabilities();
    let t = base_time_ns();
    let points = vec![
        point(
            "nodes",
            &[("node_name", "n1"), ("group", "memory")],
            vec![
                ("used", FieldValue::Float(1.5)),
                ("pods", FieldValue::Int(12)),
            ],
            t,
        ),
        point(
            "nodes",
            &[("node_name", "n1"), ("group", "memory")],
            vec![
                ("used", FieldValue::Float(-2.25)),
                ("pods", FieldValue::Int(-3)),
            ],
            t + 10_000_000_000,
        ),
        point(
            "nodes",
            &[("node_name", "n1"), ("group", "memory")],
            vec![
                ("used", FieldValue::Float(1e6)),
                ("pods", FieldValue::Int(1_000_000)),
            ],
            t + 20_000_000_000,
        ),
    ];
    write_flush(&st, &b, &points).await;
    let rows = run_query(&st, &query(&b, "nodes", t, t + 60_000_000_000)).await;
    let tg = || vec![("node_name", "n1"), ("group", "memory")];
    assert_rows(
        c,
        "round trip",
        &rows,
        "nodes",
        &[
            (tg(), "pods", FieldValue::Int(12), t),
            (tg(), "pods", FieldValue::Int(-3), t + 10_000_000_000),
            (tg(), "pods", FieldValue::Int(1_000_000), t + 20_000_000_000),
            (tg(), "used", FieldValue::Float(1.5), t),
            (tg(), "used", FieldValue::Float(-2.25), t + 10_000_000_000),
            (tg(), "used", FieldValue::Float(1e6), t + 20_000_000_000),
        ],
    );
}

pub async fn tag_filter(st: Arc<dyn TimeSeriesStore>, b: String) {
    let c = st.capabilities();
    let t = base_time_ns();
    let mut points = Vec::new();
    for (i, node) in ["n1", "n2", "n3"].iter().enumerate() {
        for group in ["cpu", "memory"] {
            points.push(point(
                "nodes",
                &[("node_name", node), ("group", group)],
                vec![("v", FieldValue::Float(i as f64))],
                t,
            ));
        }
    }
    write_flush(&st, &b, &points).await;
    let mut q = query(&b, "nodes", t, t + 1_000_000_000);
    q.tags = vec![(s("node_name"), s("n2"))];
    let rows = run_query(&st, &q).await;
    assert_rows(
        c,
        "one tag",
        &rows,
        "nodes",
        &[
            (
                vec![("group", "cpu"), ("node_name", "n2")],
                "v",
                FieldValue::Float(1.0),
                t,
            ),
            (
                vec![("group", "memory"), ("node_name", "n2")],
                "v",
                FieldValue::Float(1.0),
                t,
            ),
        ],
    );
    q.tags = vec![(s("node_name"), s("n3")), (s("group"), s("memory"))];
    let rows = run_query(&st, &q).await;
    assert_rows(
        c,
        "two tags",
        &rows,
        "nodes",
        &[(
            vec![("group", "memory"), ("node_name", "n3")],
            "v",
            FieldValue::Float(2.0),
            t,
        )],
    );
    q.tags = vec![(s("node_name"), s("n9"))];
    assert!(run_query(&st, &q).await.is_empty(), "unknown tag value");
    q.tags = vec![(s("no_such_tag"), s("n1"))];
    assert!(run_query(&st, &q).await.is_empty(), "unknown tag key");
    // Without a filter every series comes back, sorted by tags.
    q.tags.clear();
    let rows = run_query(&st, &q).await;
    assert_eq!(rows.len(), 6);
    let order: Vec<String> = rows
        .iter()
        .map(|r| format!("{}/{}", r.tags[0].1, r.tags[1].1))
        .collect();
    assert_eq!(
        order,
        [
            "cpu/n1",
            "cpu/n2",
            "cpu/n3",
            "memory/n1",
            "memory/n2",
            "memory/n3"
        ]
    );
}

pub async fn field_selection(st: Arc<dyn TimeSeriesStore>, b: String) {
    let c = st.capabilities();
    let t = base_time_ns();
    let points = vec![point(
        "pods",
        &[("name", "p1")],
        vec![
            ("cpu_usage", FieldValue::Float(0.5)),
            ("memory_usage", FieldValue::Float(128.0)),
            ("restarts", FieldValue::Float(2.0)),
        ],
        t,
    )];
    write_flush(&st, &b, &points).await;
    let mut q = query(&b, "pods", t, t + 1_000_000_000);
    q.fields = vec![s("restarts"), s("cpu_usage")];
    let rows = run_query(&st, &q).await;
    assert_rows(
        c,
        "two fields",
        &rows,
        "pods",
        &[
            (vec![("name", "p1")], "cpu_usage", FieldValue::Float(0.5), t),
            (vec![("name", "p1")], "restarts", FieldValue::Float(2.0), t),
        ],
    );
    q.fields = vec![s("absent")];
    assert!(run_query(&st, &q).await.is_empty(), "unknown field");
    q.fields.clear();
    assert_eq!(run_query(&st, &q).await.len(), 3, "all fields");
}

pub async fn time_range_bounds(st: Arc<dyn TimeSeriesStore>, b: String) {
    let c = st.capabilities();
    let t = base_time_ns();
    let step = 1_000_000_000;
    let points: Vec<Point> = (0..10)
        .map(|i| {
            point(
                "m",
                &[("k", "v")],
                vec![("x", FieldValue::Float(f64::from(i)))],
                t + i64::from(i) * step,
            )
        })
        .collect();
    write_flush(&st, &b, &points).await;
    // [t+2s, t+5s): 2, 3, 4.
    let rows = run_query(&st, &query(&b, "m", t + 2 * step, t + 5 * step)).await;
    let want: Vec<_> = (2..5)
        .map(|i| {
            (
                vec![("k", "v")],
                "x",
                FieldValue::Float(f64::from(i)),
                t + i64::from(i) * step,
            )
        })
        .collect();
    assert_rows(c, "start inclusive, stop exclusive", &rows, "m", &want);
    let rows = run_query(&st, &query(&b, "m", t + 9 * step, t + 100 * step)).await;
    assert_eq!(rows.len(), 1, "last sample at the start bound");
    assert!(
        run_query(&st, &query(&b, "m", t - 100 * step, t))
            .await
            .is_empty(),
        "stop at the first sample excludes it"
    );
    assert!(
        run_query(&st, &query(&b, "m", t + 5 * step, t + 5 * step))
            .await
            .is_empty(),
        "empty range"
    );
}

pub async fn limit_cuts_after_sorting(st: Arc<dyn TimeSeriesStore>, b: String) {
    let c = st.capabilities();
    let t = base_time_ns();
    let step = 1_000_000_000;
    let mut points = Vec::new();
    // Written newest first and series in reverse order: the limit applies to sorted rows.
    for node in ["n2", "n1"] {
        for i in (0..5).rev() {
            points.push(point(
                "m",
                &[("node", node)],
                vec![("x", FieldValue::Float(f64::from(i)))],
                t + i64::from(i) * step,
            ));
        }
    }
    write_flush(&st, &b, &points).await;
    let mut q = query(&b, "m", t, t + 10 * step);
    q.limit = Some(3);
    let rows = run_query(&st, &q).await;
    let want: Vec<_> = (0..3)
        .map(|i| {
            (
                vec![("node", "n1")],
                "x",
                FieldValue::Float(f64::from(i)),
                t + i64::from(i) * step,
            )
        })
        .collect();
    assert_rows(c, "limit 3", &rows, "m", &want);
    q.limit = Some(7);
    let rows = run_query(&st, &q).await;
    assert_eq!(rows.len(), 7);
    assert_eq!(rows[6].tags, vec![(s("node"), s("n2"))]);
    assert!(same_time(c, rows[6].time_ns, t + step));
    q.limit = Some(1000);
    assert_eq!(run_query(&st, &q).await.len(), 10);
}

pub async fn many_series(st: Arc<dyn TimeSeriesStore>, b: String) {
    let c = st.capabilities();
    let t = base_time_ns();
    let n = 300;
    let points: Vec<Point> = (0..n)
        .flat_map(|i| {
            let node = format!("node-{i:04}");
            (0..3)
                .map(|j| {
                    point(
                        "nodes",
                        &[("node_name", &node), ("group", "cpu")],
                        vec![("idle", FieldValue::Float(f64::from(i * 10 + j)))],
                        t + i64::from(j) * 1_000_000_000,
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    write_flush(&st, &b, &points).await;
    let rows = run_query(&st, &query(&b, "nodes", t, t + 10_000_000_000)).await;
    assert_eq!(rows.len(), (n * 3) as usize);
    for (k, r) in rows.iter().enumerate() {
        let (i, j) = (k / 3, k % 3);
        assert_eq!(r.tags[1].1, format!("node-{i:04}"), "row {k}");
        assert!(same_value(
            c,
            &r.value,
            &FieldValue::Float((i * 10 + j) as f64)
        ));
        assert!(same_time(c, r.time_ns, t + j as i64 * 1_000_000_000));
    }
    let mut q = query(&b, "nodes", t, t + 10_000_000_000);
    q.tags = vec![(s("node_name"), s("node-0123"))];
    assert_eq!(run_query(&st, &q).await.len(), 3);
}

pub async fn buckets_are_isolated(st: Arc<dyn TimeSeriesStore>, b: String) {
    let c = st.capabilities();
    let t = base_time_ns();
    let other = format!("{b}-other");
    write_flush(
        &st,
        &b,
        &[point(
            "m",
            &[("k", "v")],
            vec![("x", FieldValue::Float(1.0))],
            t,
        )],
    )
    .await;
    write_flush(
        &st,
        &other,
        &[point(
            "m",
            &[("k", "v")],
            vec![("x", FieldValue::Float(2.0))],
            t,
        )],
    )
    .await;
    let rows = run_query(&st, &query(&b, "m", t, t + 1_000_000_000)).await;
    assert_rows(
        c,
        "first bucket",
        &rows,
        "m",
        &[(vec![("k", "v")], "x", FieldValue::Float(1.0), t)],
    );
    let rows = run_query(&st, &query(&other, "m", t, t + 1_000_000_000)).await;
    assert_rows(
        c,
        "second bucket",
        &rows,
        "m",
        &[(vec![("k", "v")], "x", FieldValue::Float(2.0), t)],
    );
}

pub async fn malformed_line_stores_nothing(st: Arc<dyn TimeSeriesStore>, b: String) {
    let t = base_time_ns();
    let body = format!("m,k=v x=1 {t}\nm,k=v x= {}\nm,k=v x=3 {}\n", t + 1, t + 2);
    match st
        .write_line_protocol(&b, body.as_bytes(), Precision::Nanoseconds)
        .await
    {
        Err(TsError::Invalid(msg)) => assert!(msg.contains("line 2"), "{msg}"),
        other => panic!("a malformed line must be rejected as invalid, got {other:?}"),
    }
    st.flush().await.expect("flush");
    assert!(
        run_query(&st, &query(&b, "m", t - 1_000_000_000, t + 1_000_000_000))
            .await
            .is_empty(),
        "nothing of the rejected body is stored"
    );
}

pub async fn line_protocol_precision_and_escapes(st: Arc<dyn TimeSeriesStore>, b: String) {
    let c = st.capabilities();
    let t = base_time_ns();
    let secs = t / 1_000_000_000;
    let body = format!(
        "# probe output\r\nedge\\ storage,node=n\\,1,name=a\\ b free=10,used=20i {secs}\r\n\
         \r\nedge\\ storage,name=a\\ b,node=n\\,1 free=11 {}\n",
        secs + 60
    );
    let summary = st
        .write_line_protocol(&b, body.as_bytes(), Precision::Seconds)
        .await
        .expect("write");
    assert_eq!(summary.lines, 2);
    assert_eq!(summary.samples, 3);
    st.flush().await.expect("flush");
    let rows = run_query(&st, &query(&b, "edge storage", t, t + 120_000_000_000)).await;
    let tg = || vec![("name", "a b"), ("node", "n,1")];
    assert_rows(
        c,
        "escaped names, seconds",
        &rows,
        "edge storage",
        &[
            (tg(), "free", FieldValue::Float(10.0), t),
            (tg(), "free", FieldValue::Float(11.0), t + 60_000_000_000),
            (tg(), "used", FieldValue::Int(20), t),
        ],
    );
}

pub async fn unknown_bucket_or_measurement_is_empty(st: Arc<dyn TimeSeriesStore>, b: String) {
    let t = base_time_ns();
    write_flush(
        &st,
        &b,
        &[point(
            "m",
            &[("k", "v")],
            vec![("x", FieldValue::Float(1.0))],
            t,
        )],
    )
    .await;
    assert!(
        run_query(&st, &query(&b, "other", t, t + 1))
            .await
            .is_empty()
    );
    assert!(
        run_query(&st, &query(&format!("{b}-absent"), "m", t, t + 1))
            .await
            .is_empty()
    );
}

pub async fn typed_fields(st: Arc<dyn TimeSeriesStore>, b: String) {
    let c = st.capabilities();
    if !c.typed_fields {
        println!("skipped: {} keeps floats only", st.kind());
        return;
    }
    let t = base_time_ns();
    let points = vec![point(
        "pods",
        &[("name", "p1")],
        vec![
            ("phase", FieldValue::Str(s("Running \"ok\" \\ done"))),
            ("ready", FieldValue::Bool(true)),
            ("restarts", FieldValue::UInt(3)),
            ("delta", FieldValue::Int(-7)),
            ("cpu", FieldValue::Float(0.25)),
        ],
        t,
    )];
    write_flush(&st, &b, &points).await;
    let rows = run_query(&st, &query(&b, "pods", t, t + 1)).await;
    let tg = || vec![("name", "p1")];
    assert_rows(
        c,
        "typed",
        &rows,
        "pods",
        &[
            (tg(), "cpu", FieldValue::Float(0.25), t),
            (tg(), "delta", FieldValue::Int(-7), t),
            (
                tg(),
                "phase",
                FieldValue::Str(s("Running \"ok\" \\ done")),
                t,
            ),
            (tg(), "ready", FieldValue::Bool(true), t),
            (tg(), "restarts", FieldValue::UInt(3), t),
        ],
    );
    // Writing a field with another type is refused.
    let clash = vec![point(
        "pods",
        &[("name", "p1")],
        vec![("ready", FieldValue::Str(s("yes")))],
        t + 1_000_000_000,
    )];
    assert!(
        st.write(&b, &clash).await.is_err(),
        "a field keeps its first type"
    );
}

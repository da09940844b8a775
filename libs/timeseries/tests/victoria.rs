//! The VictoriaMetrics adapter against the real server started by `scripts/infra start
//! victoriametrics` (`SERRANO_TEST_VICTORIAMETRICS_URL`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serrano_timeseries::{
    FieldValue, Point, Precision, Query, TimeSeriesStore, TsError, VictoriaMetrics, now_ns,
};

fn vm_url() -> Option<String> {
    match std::env::var("SERRANO_TEST_VICTORIAMETRICS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("SERRANO_REQUIRE_REAL_SERVERS").as_deref() != Ok("1"),
                "SERRANO_TEST_VICTORIAMETRICS_URL is not set but SERRANO_REQUIRE_REAL_SERVERS=1"
            );
            println!("skipped: SERRANO_TEST_VICTORIAMETRICS_URL is not set");
            None
        }
    }
}

/// A bucket no other test (or earlier run) uses.
fn bucket(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{name}-{}-{}-{}",
        std::process::id(),
        now_ns(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A recent whole millisecond (VictoriaMetrics drops samples outside its retention).
fn base_ns() -> i64 {
    (now_ns() - 3_600_000_000_000) / 1_000_000 * 1_000_000
}

fn point(
    measurement: &str,
    tags: &[(&str, &str)],
    fields: Vec<(&str, FieldValue)>,
    t: i64,
) -> Point {
    let mut tags: Vec<(String, String)> = tags
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tags.sort();
    Point {
        measurement: measurement.into(),
        tags,
        fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        time_ns: t,
    }
}

fn query(bucket: &str, measurement: &str, start_ns: i64, stop_ns: i64) -> Query {
    Query {
        bucket: bucket.into(),
        measurement: measurement.into(),
        start_ns,
        stop_ns,
        ..Query::default()
    }
}

fn values(rows: &[serrano_timeseries::Row]) -> Vec<(String, f64, i64)> {
    rows.iter()
        .map(|r| (r.field.clone(), r.value.as_f64().unwrap(), r.time_ns))
        .collect()
}

#[tokio::test]
async fn round_trip_with_escaped_names_and_dropped_strings() {
    let Some(url) = vm_url() else { return };
    let store = VictoriaMetrics::new(&url).unwrap();
    let b = bucket("vm-rt");
    let t = base_ns();
    let tags = [("host", "a b,c=d\"e\\f"), ("a-b", "x"), ("tä g", "ü")];
    store
        .write(
            &b,
            &[
                point(
                    "cpu load",
                    &tags,
                    vec![
                        ("usage", FieldValue::Float(1.5)),
                        ("idle", FieldValue::Int(-2)),
                        ("ok", FieldValue::Bool(true)),
                        ("name", FieldValue::Str("dropped".into())),
                    ],
                    t,
                ),
                point(
                    "cpu load",
                    &tags,
                    vec![("usage", FieldValue::Float(2.5))],
                    t + 1_000_000,
                ),
                point(
                    "cpu load",
                    &[("host", "other")],
                    vec![("usage", FieldValue::UInt(7))],
                    t,
                ),
            ],
        )
        .await
        .unwrap();
    store.flush().await.unwrap();

    // All fields of one series (tag filter with every kind of special character).
    let mut q = query(&b, "cpu load", t, t + 10_000_000);
    q.tags = vec![
        ("a-b".into(), "x".into()),
        ("host".into(), tags[0].1.into()),
    ];
    let rows = store.query(&q).await.unwrap();
    assert_eq!(
        values(&rows),
        vec![
            ("idle".into(), -2.0, t),
            ("ok".into(), 1.0, t),
            ("usage".into(), 1.5, t),
            ("usage".into(), 2.5, t + 1_000_000),
        ],
        "the string field is not stored"
    );
    let mut expected_tags: Vec<(String, String)> = tags
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    expected_tags.sort();
    assert_eq!(
        rows[0].tags, expected_tags,
        "internal labels are not returned"
    );
    assert_eq!(rows[0].measurement, "cpu load");
    assert!(matches!(rows[0].value, FieldValue::Float(_)));

    // One field across series: sorted by tags, then time; exclusive stop.
    let mut q = query(&b, "cpu load", t, t + 1_000_000);
    q.fields = vec!["usage".into()];
    let rows = store.query(&q).await.unwrap();
    let got: Vec<(String, f64)> = rows
        .iter()
        .map(|r| {
            (
                r.tags.iter().find(|(k, _)| k == "host").unwrap().1.clone(),
                r.value.as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, vec![(tags[0].1.into(), 1.5), ("other".into(), 7.0)]);

    // Limit cuts after sorting.
    let mut q = query(&b, "cpu load", t, t + 10_000_000);
    q.limit = Some(2);
    let rows = store.query(&q).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].field, "idle");

    assert!(!store.capabilities().typed_fields);
    assert_eq!(store.capabilities().time_resolution_ns, 1_000_000);
    assert_eq!(store.kind(), "victoriametrics");
}

#[tokio::test]
async fn buckets_and_measurements_stay_apart() {
    let Some(url) = vm_url() else { return };
    let store = VictoriaMetrics::new(&url).unwrap();
    let (b1, b2) = (bucket("vm-b1"), bucket("vm-b2"));
    let t = base_ns();
    store
        .write(
            &b1,
            &[point(
                "cpu",
                &[("h", "a")],
                vec![("x", FieldValue::Float(1.0))],
                t,
            )],
        )
        .await
        .unwrap();
    store
        .write(
            &b2,
            &[point(
                "cpu",
                &[("h", "a")],
                vec![("x", FieldValue::Float(2.0))],
                t,
            )],
        )
        .await
        .unwrap();
    // `cpu_extra` + field `x` has the same metric name prefix as `cpu` + field `extra_x`.
    store
        .write(
            &b1,
            &[point(
                "cpu_extra",
                &[("h", "a")],
                vec![("x", FieldValue::Float(3.0))],
                t,
            )],
        )
        .await
        .unwrap();
    // Backslashes anywhere (VictoriaMetrics reads `\\` as one backslash).
    store
        .write(
            &b1,
            &[point(
                "back\\sl,ash",
                &[("k\\", "v\\")],
                vec![("f\\", FieldValue::Float(4.0))],
                t,
            )],
        )
        .await
        .unwrap();
    store.flush().await.unwrap();

    let rows = store
        .query(&query(&b1, "back\\sl,ash", t, t + 1))
        .await
        .unwrap();
    assert_eq!(values(&rows), vec![("f\\".into(), 4.0, t)]);
    assert_eq!(rows[0].tags, vec![("k\\".into(), "v\\".into())]);
    let rows = store.query(&query(&b1, "cpu", t, t + 1)).await.unwrap();
    assert_eq!(values(&rows), vec![("x".into(), 1.0, t)]);
    let rows = store.query(&query(&b2, "cpu", t, t + 1)).await.unwrap();
    assert_eq!(values(&rows), vec![("x".into(), 2.0, t)]);
    let rows = store
        .query(&query(&b1, "cpu_extra", t, t + 1))
        .await
        .unwrap();
    assert_eq!(values(&rows), vec![("x".into(), 3.0, t)]);
    let rows = store
        .query(&query(&bucket("vm-never"), "cpu", t, t + 1))
        .await
        .unwrap();
    assert!(rows.is_empty());
    // An empty window asks the server nothing and finds nothing.
    assert!(
        store
            .query(&query(&b1, "cpu", t, t))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn line_protocol_bodies_and_millisecond_times() {
    let Some(url) = vm_url() else { return };
    let store = VictoriaMetrics::new(&url).unwrap();
    let b = bucket("vm-lp");
    let t_s = base_ns() / 1_000_000_000;
    let body = format!(
        "nodes,node_name=n1,group=memory node_memory_MemFree_bytes=18508849152,phase=\"Running\" {t_s}\n\
         nodes,node_name=n2,group=memory node_memory_MemFree_bytes=2i {}\n",
        t_s + 1
    );
    let summary = store
        .write_line_protocol(&b, body.as_bytes(), Precision::Seconds)
        .await
        .unwrap();
    assert_eq!((summary.lines, summary.samples), (2, 3));
    store.flush().await.unwrap();
    let t = t_s * 1_000_000_000;
    let mut q = query(&b, "nodes", t, t + 2_000_000_000);
    q.tags = vec![("group".into(), "memory".into())];
    let rows = store.query(&q).await.unwrap();
    assert_eq!(
        values(&rows),
        vec![
            ("node_memory_MemFree_bytes".into(), 18_508_849_152.0, t),
            ("node_memory_MemFree_bytes".into(), 2.0, t + 1_000_000_000),
        ]
    );
    assert_eq!(
        rows[0].tags,
        vec![
            ("group".into(), "memory".into()),
            ("node_name".into(), "n1".into())
        ]
    );

    // Times are kept in milliseconds: a sub-millisecond time reads back truncated and a
    // window inside that millisecond still finds it.
    let b2 = bucket("vm-ms");
    let t = base_ns() + 123_456;
    store
        .write(
            &b2,
            &[point("m", &[], vec![("v", FieldValue::Float(1.0))], t)],
        )
        .await
        .unwrap();
    store.flush().await.unwrap();
    let rows = store.query(&query(&b2, "m", t, t + 1)).await.unwrap();
    assert_eq!(values(&rows), vec![("v".into(), 1.0, t - 123_456)]);

    // A malformed body stores nothing.
    let err = store
        .write_line_protocol(
            &b,
            b"nodes,node_name=n3 x=1\nbroken line\n",
            Precision::Seconds,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, TsError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn refused_points_and_unreachable_server() {
    // No server needed: a closed port and bad points.
    let store = VictoriaMetrics::new("http://127.0.0.1:9").unwrap();
    let p = point("m", &[], vec![("v", FieldValue::Float(1.0))], 1);
    assert!(matches!(
        store.write("b", std::slice::from_ref(&p)).await,
        Err(TsError::Unavailable(_))
    ));
    assert!(matches!(
        store.query(&query("b", "m", 0, 10)).await,
        Err(TsError::Unavailable(_))
    ));
    assert!(matches!(store.flush().await, Err(TsError::Unavailable(_))));
    let newline = point(
        "m",
        &[("h", "a\nb")],
        vec![("v", FieldValue::Float(1.0))],
        1,
    );
    assert!(matches!(
        store.write("b", &[newline]).await,
        Err(TsError::Invalid(_))
    ));
    assert!(matches!(
        store.write("", &[p]).await,
        Err(TsError::Invalid(_))
    ));
    assert!(matches!(
        store.query(&query("b", "", 0, 10)).await,
        Err(TsError::Invalid(_))
    ));
}

#[tokio::test]
async fn contract_suite() {
    let Some(url) = vm_url() else { return };
    let store: Arc<dyn TimeSeriesStore> = Arc::new(VictoriaMetrics::new(&url).unwrap());
    serrano_timeseries::contract::run_suite(store).await;
}

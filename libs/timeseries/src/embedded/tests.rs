//! Tests of the embedded store: the contract suite in memory and on disk, recovery, retention,
//! type conflicts and bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::contract;

fn mem() -> EmbeddedTsdb {
    EmbeddedTsdb::open(EmbeddedOptions::default()).unwrap()
}

fn on_disk(dir: &Path, sync: SyncMode) -> EmbeddedTsdb {
    EmbeddedTsdb::open(EmbeddedOptions {
        dir: Some(dir.to_path_buf()),
        sync,
        ..Default::default()
    })
    .unwrap()
}

fn q(bucket: &str, m: &str) -> Query {
    Query {
        bucket: bucket.into(),
        measurement: m.into(),
        start_ns: i64::MIN,
        stop_ns: i64::MAX,
        ..Default::default()
    }
}

/// `n` lines per series for `series` series: gauge `g` (2 decimals), counter `c` (int),
/// `s` string (rarely changing), `b` bool; times 10 s apart from `t0`.
fn body(series: usize, from: usize, n: usize, t0: i64) -> String {
    let mut out = String::new();
    for i in from..from + n {
        for s in 0..series {
            let t = t0 + i as i64 * 10_000_000_000;
            let g = (s * 100 + i % 37) as f64 / 100.0;
            let st = if i % 50 < 25 { "Running" } else { "Pending" };
            writeln!(
                out,
                "nodes,node_name=n{s},group=cpu g={g},c={}i,s=\"{st}\",b={} {t}",
                i * 3 + s,
                i % 3 == 0
            )
            .unwrap();
        }
    }
    out
}

fn expected_rows(series: usize, n: usize, t0: i64) -> usize {
    let _ = t0;
    series * n * 4
}

fn check_series(db: &EmbeddedTsdb, bucket: &str, series: usize, n: usize, t0: i64) {
    let rows = db.query_blocking(&q(bucket, "nodes")).unwrap();
    assert_eq!(rows.len(), expected_rows(series, n, t0));
    // Rows: tags (group=cpu, node_name=n0..), then fields b, c, g, s, then time.
    let mut names: Vec<String> = (0..series).map(|s| format!("n{s}")).collect();
    names.sort();
    let mut k = 0;
    for name in &names {
        let s: usize = name[1..].parse().unwrap();
        for field in ["b", "c", "g", "s"] {
            for i in 0..n {
                let r = &rows[k];
                k += 1;
                assert_eq!(r.tags[1].1, *name);
                assert_eq!(r.field, field);
                assert_eq!(
                    r.time_ns,
                    t0 + i as i64 * 10_000_000_000,
                    "{name} {field} {i}"
                );
                let want = match field {
                    "b" => FieldValue::Bool(i % 3 == 0),
                    "c" => FieldValue::Int((i * 3 + s) as i64),
                    "g" => FieldValue::Float((s * 100 + i % 37) as f64 / 100.0),
                    _ => FieldValue::Str(if i % 50 < 25 { "Running" } else { "Pending" }.into()),
                };
                assert_eq!(r.value, want, "{name} {field} {i}");
            }
        }
    }
}

const T0: i64 = 1_700_000_000_000_000_000;

#[tokio::test]
async fn contract_in_memory() {
    contract::run_suite(Arc::new(mem())).await;
}

#[tokio::test]
async fn contract_on_disk_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    contract::run_suite(Arc::new(on_disk(dir.path(), SyncMode::GroupCommit))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_on_disk_no_sync_then_reopened() {
    let dir = tempfile::tempdir().unwrap();
    contract::run_suite(Arc::new(on_disk(dir.path(), SyncMode::None))).await;
    // The same suite on a reopened store (everything replayed from the WAL).
    contract::run_suite(Arc::new(on_disk(dir.path(), SyncMode::None))).await;
}

#[test]
fn samples_round_trip_through_sealing() {
    let db = mem();
    // 300 samples per column: two sealed chunks and a head each.
    let s = db
        .write_lp(
            "b",
            body(5, 0, 300, T0).as_bytes(),
            Precision::Nanoseconds,
            0,
        )
        .unwrap();
    assert_eq!(s.lines, 1500);
    assert_eq!(s.samples, 6000);
    check_series(&db, "b", 5, 300, T0);
    let st = db.stats();
    assert_eq!(st.series, 5);
    assert_eq!(st.columns, 20);
    assert_eq!(st.samples, 6000);
    assert_eq!(st.sealed_chunks, 40);
    assert_eq!(st.head_samples, 20 * 60);
    assert_eq!(st.bytes_on_disk, 0);
    assert!(st.bytes_in_memory > 0);
}

#[test]
fn reopen_after_writes_restores_every_sample() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = on_disk(dir.path(), SyncMode::GroupCommit);
        db.write_lp(
            "b",
            body(4, 0, 200, T0).as_bytes(),
            Precision::Nanoseconds,
            0,
        )
        .unwrap();
    }
    // Only the WAL: replayed (and folded into a checkpoint) at open.
    {
        let db = on_disk(dir.path(), SyncMode::GroupCommit);
        check_series(&db, "b", 4, 200, T0);
        assert!(db.stats().checkpoints >= 1);
        db.write_lp(
            "b",
            body(4, 200, 100, T0).as_bytes(),
            Precision::Nanoseconds,
            0,
        )
        .unwrap();
        db.checkpoint().unwrap();
        db.write_lp(
            "b",
            body(4, 300, 50, T0).as_bytes(),
            Precision::Nanoseconds,
            0,
        )
        .unwrap();
        check_series(&db, "b", 4, 350, T0);
    }
    // Checkpoint + segments + WAL tail.
    let db = on_disk(dir.path(), SyncMode::GroupCommit);
    check_series(&db, "b", 4, 350, T0);
    let st = db.stats();
    assert_eq!(st.samples, 4 * 4 * 350);
    assert!(st.segments >= 1);
    assert!(st.bytes_on_disk > 0);
    // Heads keep growing after a reopen.
    db.write_lp(
        "b",
        body(4, 350, 10, T0).as_bytes(),
        Precision::Nanoseconds,
        0,
    )
    .unwrap();
    check_series(&db, "b", 4, 360, T0);
}

#[test]
fn second_open_of_a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _db = on_disk(dir.path(), SyncMode::None);
    let err = EmbeddedTsdb::open(EmbeddedOptions {
        dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(err, TsError::Unavailable(m) if m.contains("in use")));
}

fn wal_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(wal::parse_wal_name)
                .is_some()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn torn_or_corrupt_wal_tail_is_ignored() {
    for damage in ["truncate", "flip", "garbage"] {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = on_disk(dir.path(), SyncMode::GroupCommit);
            db.write_lp(
                "b",
                b"m,k=a v=1 1\nm,k=a v=2 2\n",
                Precision::Nanoseconds,
                0,
            )
            .unwrap();
            db.write_lp("b", b"m,k=a v=3 3\n", Precision::Nanoseconds, 0)
                .unwrap();
            db.write_lp(
                "b",
                b"m,k=a v=4 4\nm,k=b v=5 5\n",
                Precision::Nanoseconds,
                0,
            )
            .unwrap();
        }
        let wal = wal_files(dir.path()).pop().unwrap();
        let mut data = fs::read(&wal).unwrap();
        match damage {
            "truncate" => data.truncate(data.len() - 5),
            "flip" => {
                let i = data.len() - 3;
                data[i] ^= 0x10;
            }
            _ => data.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 1]),
        }
        fs::write(&wal, &data).unwrap();
        let db = on_disk(dir.path(), SyncMode::GroupCommit);
        let rows = db.query_blocking(&q("b", "m")).unwrap();
        let got: Vec<(String, i64)> = rows
            .iter()
            .map(|r| (r.tags[0].1.clone(), r.time_ns))
            .collect();
        let want: Vec<(String, i64)> = if damage == "garbage" {
            vec![
                ("a".into(), 1),
                ("a".into(), 2),
                ("a".into(), 3),
                ("a".into(), 4),
                ("b".into(), 5),
            ]
        } else {
            // The last record is lost, the ones before it are all there.
            vec![("a".into(), 1), ("a".into(), 2), ("a".into(), 3)]
        };
        assert_eq!(got, want, "{damage}");
        // The store keeps working and a later reopen sees the same plus new writes.
        db.write_lp("b", b"m,k=c v=6 6\n", Precision::Nanoseconds, 0)
            .unwrap();
        drop(db);
        let db = on_disk(dir.path(), SyncMode::GroupCommit);
        assert_eq!(
            db.query_blocking(&q("b", "m")).unwrap().len(),
            want.len() + 1,
            "{damage}"
        );
    }
}

#[test]
fn corrupt_checkpoint_or_segment_fails_loudly() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = on_disk(dir.path(), SyncMode::None);
        db.write_lp(
            "b",
            body(2, 0, 150, T0).as_bytes(),
            Precision::Nanoseconds,
            0,
        )
        .unwrap();
        db.checkpoint().unwrap();
    }
    let seg = fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let mut data = fs::read(&seg).unwrap();
    data[10] ^= 0xff; // inside the first chunk
    fs::write(&seg, &data).unwrap();
    let db = on_disk(dir.path(), SyncMode::None);
    match db.query_blocking(&q("b", "nodes")) {
        Err(TsError::Io(e)) => assert!(e.to_string().contains("checksum"), "{e}"),
        other => panic!("expected a checksum error, got {other:?}"),
    }
}

#[test]
fn type_conflict_rejects_the_whole_body() {
    let db = mem();
    db.write_lp("b", b"m,k=a v=1 1\n", Precision::Nanoseconds, 0)
        .unwrap();
    // New series and values first, the conflict on the last line.
    let bad = b"m,k=b v=2 2\nm,k=a w=3i 3\nm,k=a v=\"x\" 4\n";
    match db.write_lp("b", bad, Precision::Nanoseconds, 0) {
        Err(TsError::Invalid(m)) => {
            assert!(m.starts_with("line 3:"), "{m}");
            assert!(m.contains("string") && m.contains("float"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    let rows = db.query_blocking(&q("b", "m")).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    // The type holds per measurement: another series cannot use v as a string either.
    assert!(
        db.write_lp("b", b"m,k=z v=\"s\" 5\n", Precision::Nanoseconds, 0)
            .is_err()
    );
    // A conflict inside one body, on a field the store has never seen.
    assert!(
        db.write_lp(
            "b",
            b"m,k=a n=1 6\nm,k=a n=true 7\n",
            Precision::Nanoseconds,
            0
        )
        .is_err()
    );
    // ... and since nothing of it was stored, n can still become a bool.
    db.write_lp("b", b"m,k=a n=true 8\n", Precision::Nanoseconds, 0)
        .unwrap();
    // Other buckets and measurements are independent.
    db.write_lp("b2", b"m,k=a v=\"s\" 9\n", Precision::Nanoseconds, 0)
        .unwrap();
    db.write_lp("b", b"m2,k=a v=\"s\" 9\n", Precision::Nanoseconds, 0)
        .unwrap();
    assert_eq!(db.query_blocking(&q("b", "m")).unwrap().len(), 2);
}

#[test]
fn duplicate_times_last_write_wins_and_order_is_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = on_disk(dir.path(), SyncMode::None);
    db.write_lp(
        "b",
        b"m v=1 30\nm v=2 10\nm v=3 20\n",
        Precision::Nanoseconds,
        0,
    )
    .unwrap();
    db.write_lp(
        "b",
        b"m v=9 10\nm v=7 10,v=8 10\n",
        Precision::Nanoseconds,
        0,
    )
    .unwrap_err();
    db.write_lp("b", b"m v=9 10\nm v=7,v=8 10\n", Precision::Nanoseconds, 0)
        .unwrap();
    let vals = |db: &EmbeddedTsdb| -> Vec<(i64, FieldValue)> {
        db.query_blocking(&q("b", "m"))
            .unwrap()
            .into_iter()
            .map(|r| (r.time_ns, r.value))
            .collect()
    };
    let want = vec![
        (10, FieldValue::Float(8.0)),
        (20, FieldValue::Float(3.0)),
        (30, FieldValue::Float(1.0)),
    ];
    assert_eq!(vals(&db), want);
    db.checkpoint().unwrap();
    drop(db);
    assert_eq!(vals(&on_disk(dir.path(), SyncMode::None)), want);
}

#[test]
fn tag_order_and_escaping_variants_are_one_series() {
    let db = mem();
    db.write_lp(
        "b",
        b"m,a=1,b=2 v=1 1\nm,b=2,a=1 v=2 2\nm,a=1,b=2 v=3 3\n",
        Precision::Nanoseconds,
        0,
    )
    .unwrap();
    // `\\x` and `\x` both mean a backslash then x in a field key.
    db.write_lp(
        "b",
        b"m,b=2,a=1 f\\x=1 4\nm,a=1,b=2 f\\\\x=2 5\n",
        Precision::Nanoseconds,
        0,
    )
    .unwrap();
    let rows = db.query_blocking(&q("b", "m")).unwrap();
    assert_eq!(db.stats().series, 1);
    assert_eq!(db.stats().columns, 2);
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0].field, "f\\x");
    assert_eq!(rows[1].value, FieldValue::Float(2.0));
}

#[test]
fn retention_drops_whole_old_chunks() {
    let now = now_ns();
    let hour = 3_600_000_000_000i64;
    let lines = |t0: i64, n: i64| {
        let mut s = String::new();
        for i in 0..n {
            writeln!(s, "m v={i} {}", t0 + i * 1_000_000_000).unwrap();
        }
        s
    };
    for dir in [None, Some(tempfile::tempdir().unwrap())] {
        let db = EmbeddedTsdb::open(EmbeddedOptions {
            dir: dir.as_ref().map(|d| d.path().to_path_buf()),
            retention: Some(Duration::from_secs(24 * 3600)),
            ..Default::default()
        })
        .unwrap();
        // Two days ago: 240 samples (two sealed chunks); now: 10 samples in the head.
        db.write_lp(
            "b",
            lines(now - 48 * hour, 240).as_bytes(),
            Precision::Nanoseconds,
            0,
        )
        .unwrap();
        db.write_lp(
            "b",
            lines(now - hour, 10).as_bytes(),
            Precision::Nanoseconds,
            0,
        )
        .unwrap();
        assert_eq!(db.query_blocking(&q("b", "m")).unwrap().len(), 250);
        db.checkpoint().unwrap();
        let rows = db.query_blocking(&q("b", "m")).unwrap();
        assert_eq!(rows.len(), 10, "dir {}", dir.is_some());
        assert!(rows.iter().all(|r| r.time_ns >= now - hour));
        if let Some(d) = &dir {
            drop(db);
            let db = on_disk(d.path(), SyncMode::None);
            assert_eq!(db.query_blocking(&q("b", "m")).unwrap().len(), 10);
            assert_eq!(db.stats().segments, 0, "the expired segment is deleted");
        }
    }
}

#[test]
fn many_checkpoints_merge_segments_and_keep_data() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = on_disk(dir.path(), SyncMode::None);
        for round in 0..12 {
            // 130 samples per column each round: at least one sealed chunk per round.
            db.write_lp(
                "b",
                body(3, round * 130, 130, T0).as_bytes(),
                Precision::Nanoseconds,
                0,
            )
            .unwrap();
            db.checkpoint().unwrap();
            assert!(db.stats().segments as usize <= MAX_SEGMENTS);
        }
        check_series(&db, "b", 3, 12 * 130, T0);
        let st = db.stats();
        // Merged chunks are larger than sealed ones.
        assert!(st.sealed_chunks < 3 * 4 * 12, "{st:?}");
    }
    let db = on_disk(dir.path(), SyncMode::None);
    check_series(&db, "b", 3, 12 * 130, T0);
    // A range query only over part of the history.
    let mut qq = q("b", "nodes");
    qq.start_ns = T0 + 500 * 10_000_000_000;
    qq.stop_ns = T0 + 510 * 10_000_000_000;
    qq.tags = vec![("node_name".into(), "n1".into())];
    qq.fields = vec!["g".into()];
    let rows = db.query_blocking(&qq).unwrap();
    assert_eq!(rows.len(), 10);
    assert_eq!(
        rows[0].value,
        FieldValue::Float((100 + 500 % 37) as f64 / 100.0)
    );
}

#[test]
fn random_bytes_never_panic_and_store_stays_consistent() {
    let db = mem();
    db.write_lp("b", b"m,k=a v=1 1\n", Precision::Nanoseconds, 0)
        .unwrap();
    let mut rng = StdRng::seed_from_u64(99);
    let alphabet = b"m,k=a v1.5i\"\\ \n#tfu-e\r";
    let mut accepted = 0;
    for _ in 0..20_000 {
        let n = rng.random_range(0..60);
        let body: Vec<u8> = (0..n)
            .map(|_| {
                if rng.random_range(0..8) == 0 {
                    rng.random()
                } else {
                    alphabet[rng.random_range(0..alphabet.len())]
                }
            })
            .collect();
        if db.write_lp("b", &body, Precision::Seconds, 5).is_ok() {
            accepted += 1;
        }
    }
    assert!(accepted > 0);
    // Every stored series is queryable and every value decodes.
    let idx = read(&db.inner.index);
    let ms: Vec<String> = idx[0].keys().map(|k| k.to_string()).collect();
    drop(idx);
    for m in ms {
        db.query_blocking(&q("b", &m)).unwrap();
    }
    assert_eq!(
        db.query_blocking(&q("b", "m")).unwrap()[0].value,
        FieldValue::Float(1.0)
    );
}

#[test]
fn bad_queries_and_buckets() {
    let db = mem();
    assert!(matches!(
        db.query_blocking(&q("", "m")),
        Err(TsError::Invalid(_))
    ));
    assert!(matches!(
        db.query_blocking(&q("b", "")),
        Err(TsError::Invalid(_))
    ));
    assert!(matches!(
        db.write_lp("", b"m v=1", Precision::Nanoseconds, 0),
        Err(TsError::Invalid(_))
    ));
    let mut qq = q("b", "m");
    qq.limit = Some(0);
    assert!(db.query_blocking(&qq).unwrap().is_empty());
}

#[test]
fn empty_and_comment_bodies_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = on_disk(dir.path(), SyncMode::GroupCommit);
    let s = db
        .write_lp("b", b"# nothing\n\n", Precision::Nanoseconds, 0)
        .unwrap();
    assert_eq!(s, WriteSummary::default());
    assert_eq!(db.stats().series, 0);
}

#[test]
fn default_time_is_recorded_for_replay() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = on_disk(dir.path(), SyncMode::GroupCommit);
        db.write_lp("b", b"m v=1\n", Precision::Nanoseconds, 12345)
            .unwrap();
    }
    let db = on_disk(dir.path(), SyncMode::GroupCommit);
    assert_eq!(db.query_blocking(&q("b", "m")).unwrap()[0].time_ns, 12345);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_are_all_durable() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db: Arc<dyn TimeSeriesStore> = Arc::new(on_disk(dir.path(), SyncMode::GroupCommit));
        let mut tasks = Vec::new();
        for w in 0..4 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..50 {
                    let mut b = String::new();
                    for s in 0..20 {
                        writeln!(b, "m,w={w},s={s} v={i} {}", T0 + i).unwrap();
                    }
                    db.write_line_protocol("b", b.as_bytes(), Precision::Nanoseconds)
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    let db = on_disk(dir.path(), SyncMode::GroupCommit);
    assert_eq!(db.query_blocking(&q("b", "m")).unwrap().len(), 4 * 20 * 50);
}

#[test]
fn last_write_wins_across_sealed_chunks_merges_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let rounds = 12;
    {
        let db = on_disk(dir.path(), SyncMode::None);
        for round in 0..rounds {
            // The same 120 times every round: each round seals one chunk that overwrites
            // the previous ones.
            let mut b = String::new();
            for i in 0..120 {
                writeln!(b, "m v={round}i {}", T0 + i * 1_000_000_000).unwrap();
            }
            db.write_lp("b", b.as_bytes(), Precision::Nanoseconds, 0)
                .unwrap();
            db.checkpoint().unwrap();
        }
        assert!(db.stats().segments as usize <= MAX_SEGMENTS);
    }
    let db = on_disk(dir.path(), SyncMode::None);
    let rows = db.query_blocking(&q("b", "m")).unwrap();
    assert_eq!(rows.len(), 120);
    assert!(
        rows.iter().all(|r| r.value == FieldValue::Int(rounds - 1)),
        "{:?}",
        &rows[..3]
    );
    assert_eq!(db.stats().samples, 120 * rounds as u64);
}

#[test]
fn spellings_after_reopen_find_the_same_series() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = on_disk(dir.path(), SyncMode::None);
        db.write_lp("b", b"m,z=1,a=2 v=1 1\n", Precision::Nanoseconds, 0)
            .unwrap();
        db.checkpoint().unwrap();
    }
    let db = on_disk(dir.path(), SyncMode::None);
    db.write_lp(
        "b",
        b"m,z=1,a=2 v=2 2\nm,a=2,z=1 v=3 3\n",
        Precision::Nanoseconds,
        0,
    )
    .unwrap();
    assert_eq!(db.stats().series, 1);
    let vals: Vec<FieldValue> = db
        .query_blocking(&q("b", "m"))
        .unwrap()
        .into_iter()
        .map(|r| r.value)
        .collect();
    assert_eq!(
        vals,
        vec![
            FieldValue::Float(1.0),
            FieldValue::Float(2.0),
            FieldValue::Float(3.0)
        ]
    );
}

#[test]
fn hash_collisions_fall_back_to_the_full_key() {
    let db = mem();
    db.write_lp(
        "b",
        b"m,k=a v=1 1\nm,k=b v=2 2\n",
        Precision::Nanoseconds,
        0,
    )
    .unwrap();
    let (sa, sb) = {
        let find = |key: &[u8]| {
            let h = key_hash(0, key);
            let g = lock(&db.inner.shards[shard_for(h)]);
            g.find(0, key, h).unwrap()
        };
        (find(b"m,k=a"), find(b"m,k=b"))
    };
    assert_ne!(sa, sb);
    // Pretend "m,k=b" hashes like "m,k=a": the fast entry does not verify, the alias does.
    let h = key_hash(0, b"m,k=a");
    let mut g = lock(&db.inner.shards[shard_for(h)]);
    assert_eq!(g.find(0, b"m,k=b", h), None);
    g.add_alias(0, b"m,k=b", sb);
    assert_eq!(g.find(0, b"m,k=b", h), Some(sb));
    assert_eq!(g.find(0, b"m,k=a", h), Some(sa));
    assert_eq!(g.find(1, b"m,k=a", h), None, "another bucket");
}

#[test]
fn writers_checkpoints_and_queries_race_safely() {
    let dir = tempfile::tempdir().unwrap();
    let series = 50usize;
    let per_writer = 300usize;
    {
        let db = Arc::new(on_disk(dir.path(), SyncMode::GroupCommit));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut threads = Vec::new();
        for w in 0..2usize {
            let db = db.clone();
            threads.push(std::thread::spawn(move || {
                for i in 0..per_writer {
                    let mut b = String::new();
                    for s in 0..series {
                        let t = T0 + (i as i64) * 1_000_000_000;
                        writeln!(b, "m,w={w},s={s} v={i}i,g={}.5 {t}", i % 7).unwrap();
                    }
                    db.write_lp("b", b.as_bytes(), Precision::Nanoseconds, 0)
                        .unwrap();
                }
            }));
        }
        let ck = {
            let db = db.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    db.checkpoint().unwrap();
                    n += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
                n
            })
        };
        let qt = {
            let db = db.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut last = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let rows = db.query_blocking(&q("b", "m")).unwrap();
                    // Writes only add rows.
                    assert!(rows.len() >= last);
                    last = rows.len();
                }
            })
        };
        for t in threads {
            t.join().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(ck.join().unwrap() > 0);
        qt.join().unwrap();
        assert_eq!(
            db.query_blocking(&q("b", "m")).unwrap().len(),
            2 * series * per_writer * 2
        );
    }
    let db = on_disk(dir.path(), SyncMode::GroupCommit);
    let rows = db.query_blocking(&q("b", "m")).unwrap();
    assert_eq!(rows.len(), 2 * series * per_writer * 2);
    // Every series has every time once, in order, with the value written.
    for chunk in rows.chunks(per_writer) {
        for (i, r) in chunk.iter().enumerate() {
            assert_eq!(r.time_ns, T0 + i as i64 * 1_000_000_000);
            if r.field == "v" {
                assert_eq!(r.value, FieldValue::Int(i as i64));
            } else {
                assert_eq!(r.value, FieldValue::Float((i % 7) as f64 + 0.5));
            }
        }
    }
}

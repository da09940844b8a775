//! Tests of the embedded store: the contract suite (in memory and on disk) and what only the
//! embedded store has (crash safety, log repair, compaction, persistence of leases).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;

use super::*;
use crate::contract;

fn opts_small() -> EmbeddedOptions {
    EmbeddedOptions {
        compact_min_log_bytes: 8 * 1024,
        compact_ratio: 2,
        ..EmbeddedOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contract_in_memory() {
    contract::run_suite(|| {
        Box::pin(async { Arc::new(EmbeddedStore::in_memory()) as Arc<dyn KvStore> })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contract_on_disk() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let n = Arc::new(AtomicU64::new(0));
    contract::run_suite(move || {
        let path = dir
            .path()
            .join(format!("s{}", n.fetch_add(1, Ordering::SeqCst)));
        Box::pin(async move { Arc::new(EmbeddedStore::open(path).unwrap()) as Arc<dyn KvStore> })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contract_on_disk_shared_store_with_compaction() {
    // One store for every case (as with a shared etcd), compacting very often.
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn KvStore> =
        Arc::new(EmbeddedStore::open_with(dir.path(), opts_small()).unwrap());
    contract::run_suite(move || {
        let s = store.clone();
        Box::pin(async move { s })
    })
    .await;
}

#[tokio::test]
async fn first_write_is_revision_2() {
    let s = EmbeddedStore::in_memory();
    assert_eq!(s.list_prefix("").await.unwrap().revision, 1);
    assert_eq!(s.put("a", vec![1], 0).await.unwrap(), 2);
    assert_eq!(s.put("b", vec![1], 0).await.unwrap(), 3);
    assert_eq!(s.delete("zz").await.unwrap(), None);
    assert_eq!(s.put("c", vec![1], 0).await.unwrap(), 4);
}

/// Copies the files of a live store: the image a `kill -9` right now would leave (every
/// acknowledged write has been written and fsynced).
fn crash_image(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name() != LOCK_FILE && e.file_type().unwrap().is_file() {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn wal_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(WAL_PREFIX)
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let s = EmbeddedStore::open(&live).unwrap();
    let lease = s.grant_lease(120).await.unwrap();
    // Concurrent writers: group commit batches them.
    let mut tasks = Vec::new();
    for t in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in 0..50 {
                let key = format!("k/{t}/{i}");
                let lease = if i % 10 == 0 { lease } else { 0 };
                let rev = s
                    .put(&key, format!("v{t}-{i}").into_bytes(), lease)
                    .await
                    .unwrap();
                out.push((key, rev));
            }
            out
        }));
    }
    let mut written = Vec::new();
    for t in tasks {
        written.extend(t.await.unwrap());
    }
    s.delete("k/0/1").await.unwrap().unwrap();
    let before = s.list_prefix("").await.unwrap();
    assert_eq!(before.revision, 1 + 400 + 1);

    // The store is still running: no graceful close at all.
    let image = dir.path().join("image");
    crash_image(&live, &image);
    let r = EmbeddedStore::open(&image).unwrap();
    let after = r.list_prefix("").await.unwrap();
    assert_eq!(after, before, "same keys, values and revisions");
    for (key, rev) in &written {
        if key != "k/0/1" {
            assert_eq!(r.get(key).await.unwrap().unwrap().mod_revision, *rev);
        }
    }
    assert_eq!(r.get("k/3/10").await.unwrap().unwrap().lease, lease);
    assert_eq!(r.put("next", vec![], 0).await.unwrap(), before.revision + 1);

    // And a plain drop then reopen of the original.
    drop(s);
    let s = EmbeddedStore::open(&live).unwrap();
    assert_eq!(s.list_prefix("").await.unwrap(), before);
}

#[tokio::test]
async fn torn_tail_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(dir.path()).unwrap();
    for i in 0..10u8 {
        s.put(&format!("k{i}"), vec![i; 10], 0).await.unwrap();
    }
    let before = s.list_prefix("").await.unwrap();
    drop(s);
    let wal = wal_files(dir.path()).pop().unwrap();
    let good_len = fs::metadata(&wal).unwrap().len();

    // Half of a valid record (crash in the middle of a write).
    let frame = Record::Put {
        rev: 12,
        key: "torn".into(),
        value: vec![7; 100],
        lease: 0,
    }
    .frame();
    let mut f = OpenOptions::new().append(true).open(&wal).unwrap();
    f.write_all(&frame[..frame.len() / 2]).unwrap();
    drop(f);
    let s = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(s.list_prefix("").await.unwrap(), before);
    assert_eq!(
        fs::metadata(&wal).unwrap().len(),
        good_len,
        "tail truncated"
    );
    assert_eq!(s.get("torn").await.unwrap(), None);
    // The log goes on after the repair.
    assert_eq!(s.put("after", vec![1], 0).await.unwrap(), 12);
    drop(s);

    // Garbage appended.
    let mut f = OpenOptions::new().append(true).open(&wal).unwrap();
    f.write_all(b"\xde\xad\xbe\xef garbage garbage garbage \x00\x01")
        .unwrap();
    drop(f);
    let s = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(s.get("after").await.unwrap().unwrap().mod_revision, 12);
    assert_eq!(s.list_prefix("").await.unwrap().kvs.len(), 11);
    assert_eq!(s.put("after2", vec![1], 0).await.unwrap(), 13);
    drop(s);

    // A complete record with a bad CRC at the very end is a torn tail too.
    let mut frame = Record::Put {
        rev: 14,
        key: "badcrc".into(),
        value: vec![1],
        lease: 0,
    }
    .frame();
    let last = frame.len() - 1;
    frame[last] ^= 0x55;
    let mut f = OpenOptions::new().append(true).open(&wal).unwrap();
    f.write_all(&frame).unwrap();
    drop(f);
    let s = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(s.get("badcrc").await.unwrap(), None);
    assert_eq!(s.list_prefix("").await.unwrap().revision, 13);
}

#[tokio::test]
async fn corruption_in_the_middle_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(dir.path()).unwrap();
    for i in 0..10u8 {
        s.put(&format!("k{i}"), vec![i; 10], 0).await.unwrap();
    }
    drop(s);
    let wal = wal_files(dir.path()).pop().unwrap();
    let mut data = fs::read(&wal).unwrap();
    // Inside the payload of the second record.
    let (_, second) = frame_at(&data, 0).unwrap();
    data[second + FRAME_HEADER + 3] ^= 0x01;
    fs::write(&wal, &data).unwrap();
    match EmbeddedStore::open(dir.path()) {
        Err(StoreError::Corrupt { key, message }) => {
            assert!(key.contains(WAL_PREFIX), "{key}");
            assert!(message.contains("corrupt"), "{message}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn compaction_keeps_data_revisions_and_leases() {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open_with(dir.path(), opts_small()).unwrap();
    let lease = s.grant_lease(300).await.unwrap();
    let mut last = 0;
    for i in 0..600u32 {
        let lease = if i % 5 == 0 { lease } else { 0 };
        last = s
            .put(&format!("k{}", i % 5), vec![(i % 251) as u8; 100], lease)
            .await
            .unwrap();
    }
    s.put("gone", vec![1], 0).await.unwrap();
    s.delete("gone").await.unwrap().unwrap();
    assert_eq!(last, 601);
    let before = s.list_prefix("").await.unwrap();
    assert_eq!(before.revision, 603);
    assert!(
        dir.path().join(SNAPSHOT_FILE).exists(),
        "a snapshot was written"
    );
    let wals = wal_files(dir.path());
    assert_eq!(wals.len(), 1, "old logs removed: {wals:?}");
    assert!(!wals[0].ends_with(wal_name(0)), "a new log generation");
    assert!(fs::metadata(&wals[0]).unwrap().len() < 600 * 100);

    // Crash image and clean reopen both give the same state.
    let image = dir.path().join("image");
    crash_image(dir.path(), &image);
    let r = EmbeddedStore::open(&image).unwrap();
    assert_eq!(r.list_prefix("").await.unwrap(), before);
    drop(s);
    let s = EmbeddedStore::open_with(dir.path(), opts_small()).unwrap();
    assert_eq!(s.list_prefix("").await.unwrap(), before);
    assert_eq!(s.get("k0").await.unwrap().unwrap().lease, lease);
    assert_eq!(s.get("k1").await.unwrap().unwrap().lease, 0);
    s.keep_alive(lease).await.unwrap();
    let other = s.grant_lease(10).await.unwrap();
    assert!(other > lease, "lease ids never reused");
    s.revoke_lease(lease).await.unwrap();
    assert_eq!(s.get("k0").await.unwrap(), None);
    assert_eq!(s.list_prefix("").await.unwrap().revision, 604);
}

#[tokio::test]
async fn leases_persist_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(dir.path()).unwrap();
    let long = s.grant_lease(600).await.unwrap();
    let short = s.grant_lease(2).await.unwrap();
    s.put("long", b"l".to_vec(), long).await.unwrap();
    s.put("short", b"s".to_vec(), short).await.unwrap();
    let revoked = s.grant_lease(600).await.unwrap();
    s.revoke_lease(revoked).await.unwrap();
    drop(s);

    let s = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(s.get("long").await.unwrap().unwrap().lease, long);
    // The short lease got its full TTL again: still there right after the reopen.
    assert_eq!(s.get("short").await.unwrap().unwrap().lease, short);
    s.keep_alive(long).await.unwrap();
    assert!(matches!(
        s.keep_alive(revoked).await,
        Err(StoreError::LeaseNotFound(id)) if id == revoked
    ));
    let fresh = s.grant_lease(5).await.unwrap();
    assert!(fresh > revoked, "ids are unique across restarts");
    // The short lease then expires by itself.
    let started = Instant::now();
    while s.get("short").await.unwrap().is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "lease did not expire"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(s.get("long").await.unwrap().is_some());
    drop(s);
    // The expiry was logged: it stays expired.
    let s = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(s.get("short").await.unwrap(), None);
    assert!(matches!(
        s.keep_alive(short).await,
        Err(StoreError::LeaseNotFound(_))
    ));
}

#[tokio::test]
async fn watch_after_restart_from_old_revision_is_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(dir.path()).unwrap();
    s.put("a", vec![1], 0).await.unwrap();
    let r = s.put("a", vec![2], 0).await.unwrap();
    // Before the restart the history has it.
    let mut w = s.watch_prefix("", Some(2)).await.unwrap();
    assert_eq!(w.next().await.unwrap().unwrap().revision(), 2);
    drop(w);
    drop(s);
    let s = EmbeddedStore::open(dir.path()).unwrap();
    match s.watch_prefix("", Some(2)).await {
        Err(StoreError::Compacted { requested, oldest }) => {
            assert_eq!(requested, 2);
            assert_eq!(oldest, r + 1);
        }
        Ok(_) => panic!("expected Compacted, got a stream"),
        Err(e) => panic!("expected Compacted, got {e}"),
    }
    assert!(matches!(
        s.watch_prefix("", Some(r)).await,
        Err(StoreError::Compacted { .. })
    ));
    let mut w = s.watch_prefix("", Some(r + 1)).await.unwrap();
    let r2 = s.put("b", vec![3], 0).await.unwrap();
    assert_eq!(w.next().await.unwrap().unwrap().revision(), r2);
}

#[tokio::test]
async fn watch_older_than_history_is_compacted() {
    let s = EmbeddedStore::in_memory_with(EmbeddedOptions {
        history_limit: 10,
        ..EmbeddedOptions::default()
    });
    for i in 0..20u8 {
        s.put("k", vec![i], 0).await.unwrap();
    }
    // Revisions 2..=21; the last 10 (12..=21) are retained.
    assert!(matches!(
        s.watch_prefix("", Some(11)).await,
        Err(StoreError::Compacted {
            requested: 11,
            oldest: 12
        })
    ));
    let mut w = s.watch_prefix("", Some(12)).await.unwrap();
    for rev in 12..=21 {
        assert_eq!(w.next().await.unwrap().unwrap().revision(), rev);
    }
}

#[tokio::test]
async fn slow_watcher_is_cut_off_without_blocking_writers() {
    let s = EmbeddedStore::in_memory_with(EmbeddedOptions {
        watch_buffer: 4,
        ..EmbeddedOptions::default()
    });
    let mut slow = s.watch_prefix("", None).await.unwrap();
    let mut fast = s.watch_prefix("", None).await.unwrap();
    let mut fast_seen = 0;
    for i in 0..20u8 {
        // Writers never wait for watchers.
        tokio::time::timeout(Duration::from_secs(1), s.put("k", vec![i], 0))
            .await
            .unwrap()
            .unwrap();
        fast.next().await.unwrap().unwrap();
        fast_seen += 1;
    }
    assert_eq!(fast_seen, 20);
    for rev in 2..6 {
        assert_eq!(slow.next().await.unwrap().unwrap().revision(), rev);
    }
    match slow.next().await {
        Some(Err(StoreError::Backend(m))) => assert!(m.contains("fell behind"), "{m}"),
        other => panic!("expected the fell-behind error, got {other:?}"),
    }
    assert!(slow.next().await.is_none(), "the error ends the stream");
}

#[tokio::test]
async fn dropping_the_store_ends_watches() {
    let s = EmbeddedStore::in_memory();
    let mut w = s.watch_prefix("", None).await.unwrap();
    drop(s);
    assert!(matches!(
        w.next().await,
        Some(Err(StoreError::Unavailable(_)))
    ));
}

#[tokio::test]
async fn directory_is_locked_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(dir.path()).unwrap();
    assert!(matches!(
        EmbeddedStore::open(dir.path()),
        Err(StoreError::Backend(_))
    ));
    let clone = s.clone();
    drop(s);
    assert!(
        EmbeddedStore::open(dir.path()).is_err(),
        "a clone keeps it open"
    );
    drop(clone);
    EmbeddedStore::open(dir.path()).unwrap();
}

#[tokio::test]
async fn garbage_snapshot_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(SNAPSHOT_FILE), b"not a snapshot at all").unwrap();
    assert!(matches!(
        EmbeddedStore::open(dir.path()),
        Err(StoreError::Corrupt { .. })
    ));
}

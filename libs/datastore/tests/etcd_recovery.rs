//! The etcd backend survives etcd going away and coming back: calls fail fast with
//! `Unavailable` while it is down, a live watch ends with `Unavailable`, and the same client
//! works again once etcd is back (no restart of the service).
//!
//! Starts and kills its own etcd, so it needs the binary: `SERRANO_TEST_ETCD_BINARY=/usr/bin/etcd`.
//! Without it the test is skipped, unless `SERRANO_REQUIRE_REAL_SERVERS=1` (then it fails).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serrano_datastore::{EtcdStore, KvStore, StoreError};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Etcd(Child);

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(bin: &str, dir: &str, client: u16, peer: u16) -> Etcd {
    let c = format!("http://127.0.0.1:{client}");
    let p = format!("http://127.0.0.1:{peer}");
    let child = Command::new(bin)
        .args(["--name", "recovery", "--data-dir", dir])
        .args(["--listen-client-urls", &c, "--advertise-client-urls", &c])
        .args([
            "--listen-peer-urls",
            &p,
            "--initial-advertise-peer-urls",
            &p,
        ])
        .args(["--initial-cluster", &format!("recovery={p}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start etcd");
    Etcd(child)
}

async fn wait_healthy(s: &EtcdStore) {
    let started = Instant::now();
    loop {
        match s.health().await {
            Ok(()) => return,
            Err(StoreError::Unavailable(_)) => {}
            Err(e) => panic!("health while starting must be Unavailable, got {e}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "etcd not healthy in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_down_then_back() {
    let Ok(bin) = std::env::var("SERRANO_TEST_ETCD_BINARY") else {
        if std::env::var("SERRANO_REQUIRE_REAL_SERVERS").as_deref() == Ok("1") {
            panic!("SERRANO_REQUIRE_REAL_SERVERS=1 but SERRANO_TEST_ETCD_BINARY is not set");
        }
        println!("skipped: SERRANO_TEST_ETCD_BINARY is not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").to_string_lossy().into_owned();
    let (client, peer) = (free_port(), free_port());
    let s = EtcdStore::connect(
        &[format!("http://127.0.0.1:{client}")],
        Duration::from_secs(2),
    )
    .await
    .expect("connecting does not need etcd");

    // Down at start: fast Unavailable.
    let t = Instant::now();
    assert!(matches!(s.get("k").await, Err(StoreError::Unavailable(_))));
    assert!(matches!(s.health().await, Err(StoreError::Unavailable(_))));
    assert!(t.elapsed() < Duration::from_secs(5));

    let etcd = start(&bin, &data, client, peer);
    wait_healthy(&s).await;
    let r = s.put("k", b"v".to_vec(), 0).await.unwrap();
    let mut w = s.watch_prefix("k", None).await.unwrap();

    drop(etcd);
    match tokio::time::timeout(Duration::from_secs(30), w.next()).await {
        Ok(Some(Err(StoreError::Unavailable(_)))) => {}
        other => panic!("a broken watch ends with Unavailable, got {other:?}"),
    }
    let t = Instant::now();
    assert!(matches!(s.get("k").await, Err(StoreError::Unavailable(_))));
    assert!(matches!(
        s.watch_prefix("k", None).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(t.elapsed() < Duration::from_secs(10));

    // Back: the same client works again.
    let _etcd = start(&bin, &data, client, peer);
    wait_healthy(&s).await;
    let kv = s.get("k").await.unwrap().unwrap();
    assert_eq!(kv.value, b"v");
    assert_eq!(kv.mod_revision, r);
    let mut w = s.watch_prefix("k", Some(r)).await.unwrap();
    match w.next().await {
        Some(Ok(ev)) => assert_eq!(ev.revision(), r),
        other => panic!("watch after recovery: {other:?}"),
    }
}

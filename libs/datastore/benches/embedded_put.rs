//! Throughput of single-key puts on a persistent embedded store with concurrent writers
//! (group commit). Run: `cargo bench -p serrano-datastore --bench embedded_put`.
//! Optional args: `<writers> <puts per writer>` (default 64 and 1000); the store lives in
//! a temporary directory (set TMPDIR to measure another disk).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use serrano_datastore::{EmbeddedStore, KvStore};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let writers: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(64);
    let per_writer: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let value = vec![b'x'; 200];

        // Warm-up, and one writer alone (= one fsync per put).
        let started = Instant::now();
        for i in 0..200 {
            store.put(&format!("warm/{i}"), value.clone(), 0).await.unwrap();
        }
        let single = 200.0 / started.elapsed().as_secs_f64();

        let started = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..writers {
            let store = store.clone();
            let value = value.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..per_writer {
                    store
                        .put(&format!("bench/{w}/{}", i % 100), value.clone(), 0)
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        let total = writers * per_writer;
        println!("embedded_put: 1 writer: {single:.0} puts/s (one fsync each)");
        println!(
            "embedded_put: {writers} writers x {per_writer} puts = {total} in {secs:.2} s: {:.0} puts/s",
            total as f64 / secs
        );
    });
}

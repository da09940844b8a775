#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What only the CPU k-means promises beyond the shared conformance suite
//! (`serrano_kernel_core::conformance::kmeans`): its k-means++ draws through exact `f64`
//! distances, so it picks the reference's centres and ends exactly where the reference does;
//! and its results do not depend on the number of threads.

use serrano_kernel_core::conformance::kmeans::{assert_matches, blob_data, params};
use serrano_kernel_core::kmeans::{Init, KMeansParams};
use serrano_kernel_core::reference::kmeans as reference;
use serrano_kernel_cpu::kmeans::kmeans;

#[test]
fn plus_plus_draws_the_reference_centres() {
    for (s, &(n, d, k)) in [(301, 3, 5), (1000, 8, 20), (999, 17, 64)]
        .iter()
        .enumerate()
    {
        let data = blob_data(n, d, k, 60 + s as u64);
        let p = KMeansParams {
            seed: s as u64,
            ..params(k, Init::KMeansPlusPlus)
        };
        let got = kmeans(&data, None, &p).unwrap();
        let want = reference::kmeans(&data, None, &p).unwrap();
        assert_matches(&got, &want, 1.0, &format!("k-means++ n={n} d={d} k={k}"));
    }
}

#[test]
fn deterministic_across_runs_and_thread_counts() {
    // More points than one chunk of the assignment (4096), so several threads share the work.
    let data = blob_data(10_000, 6, 8, 21);
    let p = params(8, Init::KMeansPlusPlus);
    let a = kmeans(&data, None, &p).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let b = pool.install(|| kmeans(&data, None, &p).unwrap());
    assert_eq!(a, b);
    assert_eq!(a, kmeans(&data, None, &p).unwrap());
}

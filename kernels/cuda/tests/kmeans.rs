#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What only the CUDA k-means has beyond the shared conformance suite
//! (`serrano_kernel_core::conformance::kmeans`, run by `tests/conformance.rs`): the
//! device-resident step ([`GpuStep`]) reused across runs with different `k` (its scratch is
//! sized per `k`), and more points than one GEMM score block. Skipped without a GPU.

use serrano_kernel_core::conformance::Rng;
use serrano_kernel_core::conformance::kmeans::{assert_matches, blob_data, params};
use serrano_kernel_core::kmeans::{Init, KMeansParams, lloyd};
use serrano_kernel_core::reference::kmeans as reference;
use serrano_kernel_cuda::CudaBackend;
use serrano_kernel_cuda::kmeans::{GpuStep, kmeans};

fn gpu() -> Option<CudaBackend> {
    CudaBackend::probe()
        .map_err(|e| eprintln!("SKIPPED: no GPU: {e}"))
        .ok()
}

#[test]
fn a_resident_step_serves_runs_with_other_k() {
    let Some(b) = gpu() else { return };
    let data = blob_data(3000, 5, 8, 31);
    let mut step = GpuStep::new(b.gpu(), &data).unwrap();
    for (k, seed) in [(8, 1), (3, 2), (8, 3), (40, 4)] {
        let init = Rng::new(seed).matrix(k, 5, -10.0, 10.0);
        let p = params(k, Init::Random);
        let got = lloyd(&data, Some(&init), &p, &mut step).unwrap();
        let want = reference::kmeans(&data, Some(&init), &p).unwrap();
        assert_matches(&got, &want, 2.0, &format!("resident step, k={k}"));
    }
}

#[test]
fn more_points_than_one_score_block() {
    let Some(b) = gpu() else { return };
    // k = 4096: a score block holds 2^26 / 4096 = 16,384 points, so 20,000 points take two;
    // 2,500 centres leave some clusters empty at first. Near-ties between the f32 expansion
    // and the exact distances may move single points: compare the inertia.
    let data = blob_data(20_000, 2, 2500, 41);
    let init = Rng::new(42).matrix(4096, 2, -10.0, 10.0);
    let p = KMeansParams {
        max_iter: 2,
        ..params(4096, Init::Random)
    };
    let got = kmeans(b.gpu(), &data, Some(&init), &p).unwrap();
    let want = reference::kmeans(&data, Some(&init), &p).unwrap();
    assert_eq!(got.iterations, want.iterations);
    assert!(
        (got.inertia - want.inertia).abs() <= 1e-3 * want.inertia,
        "inertia {} vs {}",
        got.inertia,
        want.inertia
    );
}

#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What only the OpenCL kNN has beyond the shared conformance suite
//! (`serrano_kernel_core::conformance::knn`, run by `tests/conformance.rs`): more queries than
//! one chunk (4,096) and more points than one score block, and the candidate limit of its
//! local-memory selection. One test, so that pocl sees one context at a time; skipped with a
//! printed reason where there is no OpenCL device.

use serrano_kernel_core::conformance::{Rng, ok};
use serrano_kernel_core::knn::{KnnParams, Metric};
use serrano_kernel_core::reference::knn as reference;
use serrano_kernel_core::{KernelBackend, KernelError, Matrix};
use serrano_kernel_opencl::OpenClBackend;
use serrano_kernel_opencl::knn::MAX_CANDIDATES;

#[test]
fn chunks_blocks_and_the_candidate_limit() {
    let b = match OpenClBackend::probe() {
        Ok(b) => b,
        Err(e) => return eprintln!("SKIPPED: no OpenCL device: {e}"),
    };
    // 4,100 queries: two chunks of at most 4,096; a score block of 2^24 / 4,096 = 4,096
    // points: 4,500 points take two blocks. Coordinates in {0, 1, 2} keep every distance
    // exact, so the result equals the reference's.
    let mut rng = Rng::new(9);
    let mut small_ints = |rows: usize| {
        let data = (0..rows * 3).map(|_| rng.below(3) as f32).collect();
        Matrix::new(rows, 3, data).unwrap()
    };
    let points = small_ints(4500);
    let queries = small_ints(4100);
    let p = KnnParams {
        k: 5,
        metric: Metric::Manhattan,
    };
    let got = ok("opencl knn", b.knn(&points, &queries, &p));
    assert_eq!(got, reference::knn(&points, &queries, &p).unwrap());

    let points = Rng::new(3).matrix(MAX_CANDIDATES + 10, 2, 0.0, 1.0);
    let queries = Rng::new(4).matrix(2, 2, 0.0, 1.0);
    let p = KnnParams {
        k: MAX_CANDIDATES,
        metric: Metric::Euclidean,
    };
    assert!(matches!(
        b.knn(&points, &queries, &p),
        Err(KernelError::Unsupported { .. })
    ));
}

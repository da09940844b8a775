#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What only the OpenCL kNN has beyond the shared conformance suite
//! (`serrano_kernel_core::conformance::knn`, run by `tests/conformance.rs`): more queries than
//! one chunk (4,096) and more points than one score block. Skipped with a printed reason where
//! there is no OpenCL device.

use serrano_kernel_core::KernelBackend;
use serrano_kernel_core::conformance::{Rng, ok, small_ints};
use serrano_kernel_core::knn::{KnnParams, Metric};
use serrano_kernel_core::reference::knn as reference;
use serrano_kernel_opencl::OpenClBackend;

#[test]
fn several_query_chunks_and_point_blocks() {
    let b = match OpenClBackend::probe() {
        Ok(b) => b,
        Err(e) => return eprintln!("SKIPPED: no OpenCL device: {e}"),
    };
    // 4,100 queries: two chunks of at most 4,096; a score block of 2^24 / 4,096 = 4,096
    // points: 4,500 points take two blocks. Coordinates in {0, 1, 2} keep every distance
    // exact, so the result equals the reference's.
    let mut rng = Rng::new(9);
    let points = small_ints(&mut rng, 4500, 3, 3);
    let queries = small_ints(&mut rng, 4100, 3, 3);
    let p = KnnParams {
        k: 5,
        metric: Metric::Manhattan,
    };
    let got = ok("opencl knn", b.knn(&points, &queries, &p));
    assert_eq!(got, reference::knn(&points, &queries, &p).unwrap());
}

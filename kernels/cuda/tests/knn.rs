#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What only the CUDA kNN has beyond the shared conformance suite
//! (`serrano_kernel_core::conformance::knn`, run by `tests/conformance.rs`): a device-resident
//! index searched more than once, and the chunking of queries and points. Skipped with a
//! printed reason without a GPU.

use serrano_kernel_core::conformance::knn::assert_matches;
use serrano_kernel_core::conformance::{Rng, ok};
use serrano_kernel_core::knn::{KnnParams, Metric};
use serrano_kernel_core::{KernelBackend, KernelError};
use serrano_kernel_cuda::CudaBackend;
use serrano_kernel_cuda::knn::GpuKnnIndex;

fn gpu() -> Option<CudaBackend> {
    CudaBackend::probe()
        .map_err(|e| eprintln!("SKIPPED: no GPU: {e}"))
        .ok()
}

#[test]
fn an_index_answers_several_searches() {
    let Some(b) = gpu() else { return };
    let mut rng = Rng::new(5);
    let points = rng.matrix(400, 3, -1.0, 1.0);
    let queries = rng.matrix(40, 3, -1.0, 1.0);
    for metric in [Metric::Euclidean, Metric::Manhattan, Metric::Cosine] {
        let index = GpuKnnIndex::new(b.gpu(), &points, metric).unwrap();
        for k in [12, 1, 12] {
            let got = index.search(&queries, k).unwrap();
            assert_matches(&points, &queries, &KnnParams { k, metric }, &got, 2.0);
        }
        assert!(matches!(
            index.search(&queries, 401),
            Err(KernelError::InvalidArgument(_))
        ));
    }
}

#[test]
fn several_query_chunks_and_point_blocks() {
    let Some(b) = gpu() else { return };
    // 17,000 queries: two chunks of at most 16,384; a score block of 2^26 / 16,384 = 4,096
    // points: two blocks of points.
    let mut rng = Rng::new(9);
    let points = rng.matrix(5000, 4, -1.0, 1.0);
    let queries = rng.matrix(17_000, 4, -1.0, 1.0);
    for metric in [Metric::SqEuclidean, Metric::Manhattan] {
        let p = KnnParams { k: 6, metric };
        let got = ok("cuda knn", b.knn(&points, &queries, &p));
        assert_matches(&points, &queries, &p, &got, 2.0);
    }
}

#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What only the CUDA kNN has beyond the shared conformance suite
//! (`serrano_kernel_core::conformance::knn`, run by `tests/conformance.rs`): a device-resident
//! index searched more than once, the chunking of queries and points, and the candidate limit
//! of its shared-memory selection. Skipped with a printed reason without a GPU.

use serrano_kernel_core::conformance::{Rng, ok};
use serrano_kernel_core::knn::{KnnParams, Metric};
use serrano_kernel_core::reference::knn as reference;
use serrano_kernel_core::{KernelBackend, KernelError, Matrix};
use serrano_kernel_cuda::CudaBackend;
use serrano_kernel_cuda::knn::{GpuKnnIndex, MAX_CANDIDATES};

fn gpu() -> Option<CudaBackend> {
    CudaBackend::probe()
        .map_err(|e| eprintln!("SKIPPED: no GPU: {e}"))
        .ok()
}

/// Coordinates in {0, 1, 2}: exact in `f32`, so results equal the reference's exactly.
fn small_ints(rng: &mut Rng, rows: usize, cols: usize) -> Matrix {
    let data = (0..rows * cols).map(|_| rng.below(3) as f32).collect();
    Matrix::new(rows, cols, data).unwrap()
}

#[test]
fn an_index_answers_several_searches() {
    let Some(b) = gpu() else { return };
    let mut rng = Rng::new(5);
    let points = small_ints(&mut rng, 400, 3);
    let queries = small_ints(&mut rng, 40, 3);
    for metric in [Metric::Euclidean, Metric::Manhattan, Metric::Cosine] {
        let index = GpuKnnIndex::new(b.gpu(), &points, metric).unwrap();
        for k in [12, 1, 12] {
            let want = reference::knn(&points, &queries, &KnnParams { k, metric }).unwrap();
            assert_eq!(index.search(&queries, k).unwrap(), want, "{metric:?} k={k}");
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
    let points = small_ints(&mut rng, 5000, 4);
    let queries = small_ints(&mut rng, 17_000, 4);
    for metric in [Metric::SqEuclidean, Metric::Manhattan] {
        let p = KnnParams { k: 6, metric };
        let got = ok("cuda knn", b.knn(&points, &queries, &p));
        assert_eq!(
            got,
            reference::knn(&points, &queries, &p).unwrap(),
            "{metric:?}"
        );
    }
}

#[test]
fn k_beyond_the_candidate_limit_is_unsupported() {
    let Some(b) = gpu() else { return };
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

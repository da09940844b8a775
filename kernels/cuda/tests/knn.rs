#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CUDA kNN against the reference; skipped with a printed reason without a GPU. Tolerances:
//! distances within 1e-5 relative (+1e-6); an index may differ only where the exact distances
//! tie within that.

use serrano_kernel_core::kmeans::SplitMix64;
use serrano_kernel_core::knn::{KnnOutput, KnnParams, Metric, exact_distance};
use serrano_kernel_core::reference::knn as reference;
use serrano_kernel_core::{KernelError, Matrix};
use serrano_kernel_cuda::CudaBackend;
use serrano_kernel_cuda::knn::{GpuKnnIndex, knn};

fn backend() -> Option<CudaBackend> {
    match CudaBackend::probe() {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("SKIPPED: no GPU: {e}");
            None
        }
    }
}

fn random(rows: usize, cols: usize, seed: u64, lo: f32, hi: f32) -> Matrix {
    let mut rng = SplitMix64::new(seed);
    let data = (0..rows * cols)
        .map(|_| lo + (hi - lo) * rng.unit() as f32)
        .collect();
    Matrix::new(rows, cols, data).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 * a.abs().max(b.abs()) + 1e-6
}

fn check(points: &Matrix, queries: &Matrix, p: &KnnParams, got: &KnnOutput) {
    let want = reference::knn(points, queries, p).unwrap();
    assert_eq!(got.indices.rows(), want.indices.rows());
    for r in 0..queries.rows() {
        for c in 0..p.k {
            let (gi, wi) = (got.indices.row(r)[c], want.indices.row(r)[c]);
            let (gd, wd) = (got.distances.row(r)[c], want.distances.row(r)[c]);
            assert!(
                close(f64::from(gd), f64::from(wd)),
                "{:?} q{r} rank {c}: {gd} vs {wd}",
                p.metric
            );
            if gi != wi {
                let exact = exact_distance(p.metric, queries.row(r), points.row(gi as usize));
                assert!(
                    close(exact, f64::from(wd)),
                    "{:?} q{r} rank {c}: {gi} vs {wi}",
                    p.metric
                );
            }
        }
    }
}

#[test]
fn random_shapes_match_reference() {
    let Some(b) = backend() else { return };
    for (s, &(n, d, q, k)) in [
        (1, 1, 1, 1),
        (5, 3, 7, 5),
        (3000, 17, 9, 10),
        (5000, 128, 300, 20),
        (200, 4, 3, 200),
    ]
    .iter()
    .enumerate()
    {
        let points = random(n, d, 10 + s as u64, -1.0, 1.0);
        let queries = random(q, d, 100 + s as u64, -1.0, 1.0);
        for metric in [
            Metric::Euclidean,
            Metric::SqEuclidean,
            Metric::Manhattan,
            Metric::Cosine,
        ] {
            let p = KnnParams { k, metric };
            let got = knn(b.gpu(), &points, &queries, &p).unwrap();
            check(&points, &queries, &p, &got);
        }
    }
}

#[test]
fn ties_index_reuse_and_errors() {
    let Some(b) = backend() else { return };
    let mut rng = SplitMix64::new(5);
    let points = Matrix::new(400, 3, (0..1200).map(|_| rng.below(3) as f32).collect()).unwrap();
    let queries = Matrix::new(40, 3, (0..120).map(|_| rng.below(3) as f32).collect()).unwrap();
    for metric in [Metric::Euclidean, Metric::Manhattan] {
        let p = KnnParams { k: 12, metric };
        let index = GpuKnnIndex::new(b.gpu(), &points, metric).unwrap();
        for _ in 0..2 {
            let got = index.search(&queries, 12).unwrap();
            assert_eq!(
                got,
                reference::knn(&points, &queries, &p).unwrap(),
                "{metric:?}"
            );
        }
    }
    let p = KnnParams {
        k: 3,
        metric: Metric::Euclidean,
    };
    let out = knn(b.gpu(), &points, &Matrix::new(0, 3, vec![]).unwrap(), &p).unwrap();
    assert_eq!((out.indices.rows(), out.indices.cols()), (0, 3));
    let big = KnnParams {
        k: 401,
        metric: Metric::Euclidean,
    };
    assert!(matches!(
        knn(b.gpu(), &points, &queries, &big),
        Err(KernelError::InvalidArgument(_))
    ));
    let mut bad = queries.clone();
    bad.data_mut()[0] = f32::NAN;
    assert!(matches!(
        knn(b.gpu(), &points, &bad, &p),
        Err(KernelError::InvalidInput(_))
    ));
}

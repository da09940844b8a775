#![allow(clippy::unwrap_used, clippy::expect_used)]
//! OpenCL kNN against the reference, on whatever OpenCL device is found (pocl's CPU device
//! here); skipped with a printed reason where there is none. Tolerances: distances within 1e-5
//! relative (+1e-6); an index may differ only where the exact distances tie within that.

use std::sync::{Mutex, MutexGuard, OnceLock};

use serrano_kernel_core::kmeans::SplitMix64;
use serrano_kernel_core::knn::{KnnOutput, KnnParams, Metric, exact_distance};
use serrano_kernel_core::reference::knn as reference;
use serrano_kernel_core::{KernelError, Matrix};
use serrano_kernel_opencl::OpenClBackend;
use serrano_kernel_opencl::knn::knn;

/// One device for the whole file, used by one test at a time (pocl crashes when several
/// contexts are created concurrently).
fn backend() -> Option<(&'static OpenClBackend, MutexGuard<'static, ()>)> {
    static DEVICE: OnceLock<Option<OpenClBackend>> = OnceLock::new();
    static TURN: Mutex<()> = Mutex::new(());
    let guard = TURN.lock().unwrap_or_else(|e| e.into_inner());
    match DEVICE.get_or_init(|| OpenClBackend::probe().map_err(|e| eprintln!("{e}")).ok()) {
        Some(b) => Some((b, guard)),
        None => {
            eprintln!("SKIPPED: no OpenCL device");
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
    let Some((b, _turn)) = backend() else { return };
    for (s, &(n, d, q, k)) in [
        (1, 1, 1, 1),
        (5, 3, 7, 5),
        (300, 17, 9, 10),
        (1100, 64, 70, 20),
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
            let got = knn(b.cl(), &points, &queries, &p).unwrap();
            check(&points, &queries, &p, &got);
        }
    }
}

#[test]
fn ties_and_zero_vectors() {
    let Some((b, _turn)) = backend() else { return };
    let mut rng = SplitMix64::new(5);
    let points = Matrix::new(400, 3, (0..1200).map(|_| rng.below(3) as f32).collect()).unwrap();
    let queries = Matrix::new(40, 3, (0..120).map(|_| rng.below(3) as f32).collect()).unwrap();
    for metric in [Metric::Euclidean, Metric::Manhattan, Metric::Cosine] {
        let p = KnnParams { k: 12, metric };
        let got = knn(b.cl(), &points, &queries, &p).unwrap();
        let want = reference::knn(&points, &queries, &p).unwrap();
        assert_eq!(got, want, "{metric:?}");
    }
}

#[test]
fn edge_cases_and_errors() {
    let Some((b, _turn)) = backend() else { return };
    let points = random(10, 4, 1, 0.0, 1.0);
    let p = KnnParams {
        k: 3,
        metric: Metric::Euclidean,
    };
    let out = knn(b.cl(), &points, &Matrix::new(0, 4, vec![]).unwrap(), &p).unwrap();
    assert_eq!((out.indices.rows(), out.indices.cols()), (0, 3));
    let q = random(2, 4, 2, 0.0, 1.0);
    let big = KnnParams {
        k: 11,
        metric: Metric::Euclidean,
    };
    assert!(matches!(
        knn(b.cl(), &points, &q, &big),
        Err(KernelError::InvalidArgument(_))
    ));
    let mut bad = q.clone();
    bad.data_mut()[0] = f32::NAN;
    assert!(matches!(
        knn(b.cl(), &points, &bad, &p),
        Err(KernelError::InvalidInput(_))
    ));
    assert!(matches!(
        knn(b.cl(), &points, &random(1, 3, 3, 0.0, 1.0), &p),
        Err(KernelError::InvalidInput(_))
    ));
}

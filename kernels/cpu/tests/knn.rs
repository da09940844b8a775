#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CPU kNN against the reference (`serrano_kernel_core::reference::knn`).
//! Tolerances: distances within 1e-5 relative (+1e-6 absolute); an index may differ from the
//! reference's only where the two points' exact distances tie within that tolerance.

use serrano_kernel_core::kmeans::SplitMix64;
use serrano_kernel_core::knn::{KnnOutput, KnnParams, Metric, exact_distance, majority_vote};
use serrano_kernel_core::reference::knn as reference;
use serrano_kernel_core::{KernelError, Matrix};
use serrano_kernel_cpu::knn::knn;

fn random(rows: usize, cols: usize, seed: u64, lo: f32, hi: f32) -> Matrix {
    let mut rng = SplitMix64::new(seed);
    let data = (0..rows * cols)
        .map(|_| lo + (hi - lo) * rng.unit() as f32)
        .collect();
    Matrix::new(rows, cols, data).unwrap()
}

fn params(k: usize, metric: Metric) -> KnnParams {
    KnnParams { k, metric }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 * a.abs().max(b.abs()) + 1e-6
}

fn check(points: &Matrix, queries: &Matrix, p: &KnnParams, got: &KnnOutput) {
    let want = reference::knn(points, queries, p).unwrap();
    assert_eq!(got.indices.rows(), want.indices.rows());
    assert_eq!(got.indices.cols(), want.indices.cols());
    for r in 0..queries.rows() {
        for c in 0..p.k {
            let (gi, wi) = (got.indices.row(r)[c], want.indices.row(r)[c]);
            let (gd, wd) = (got.distances.row(r)[c], want.distances.row(r)[c]);
            assert!(
                close(f64::from(gd), f64::from(wd)),
                "{:?} query {r} rank {c}: distance {gd} vs {wd}",
                p.metric
            );
            if gi != wi {
                let exact = exact_distance(p.metric, queries.row(r), points.row(gi as usize));
                assert!(
                    close(exact, f64::from(wd)),
                    "{:?} query {r} rank {c}: index {gi} (at {exact}) vs {wi} (at {wd})",
                    p.metric
                );
            }
        }
        let mut seen = got.indices.row(r).to_vec();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), p.k, "query {r} repeats a neighbour");
    }
}

const METRICS: [Metric; 4] = [
    Metric::Euclidean,
    Metric::SqEuclidean,
    Metric::Manhattan,
    Metric::Cosine,
];

#[test]
fn random_shapes_match_reference() {
    // (n, d, q, k): single elements, tails of every tile size, both panel widths, k == n.
    let shapes = [
        (1, 1, 1, 1),
        (5, 3, 7, 5),
        (100, 17, 9, 10),
        (513, 5, 50, 1),
        (700, 128, 70, 10),
        (300, 33, 3, 300),
        (257, 64, 130, 20),
        // k = 1000: several query chunks (the candidate lists are bounded per chunk).
        (2000, 2, 300, 1000),
    ];
    for (s, &(n, d, q, k)) in shapes.iter().enumerate() {
        let points = random(n, d, 10 + s as u64, -1.0, 1.0);
        let queries = random(q, d, 100 + s as u64, -1.0, 1.0);
        for metric in METRICS {
            let p = params(k, metric);
            let got = knn(&points, &queries, &p).unwrap();
            check(&points, &queries, &p, &got);
        }
    }
}

#[test]
fn ties_go_to_the_lower_index_exactly() {
    // Small integers: every expansion is exact in f32, so ties are exact and must resolve
    // exactly as the reference does.
    let mut rng = SplitMix64::new(5);
    let pts: Vec<f32> = (0..600 * 3).map(|_| rng.below(3) as f32).collect();
    let points = Matrix::new(600, 3, pts).unwrap();
    let qs: Vec<f32> = (0..80 * 3).map(|_| rng.below(3) as f32).collect();
    let queries = Matrix::new(80, 3, qs).unwrap();
    for metric in [Metric::Euclidean, Metric::SqEuclidean, Metric::Manhattan] {
        let p = params(12, metric);
        let got = knn(&points, &queries, &p).unwrap();
        let want = reference::knn(&points, &queries, &p).unwrap();
        assert_eq!(got, want, "{metric:?}");
    }
}

#[test]
fn data_far_from_the_origin() {
    // Offsets of 1e4 with unit spread: the centred expansion must still rank correctly.
    let mut points = random(2000, 16, 7, 0.0, 1.0);
    let mut queries = random(64, 16, 8, 0.0, 1.0);
    for v in points.data_mut().iter_mut().chain(queries.data_mut()) {
        *v += 1.0e4;
    }
    let p = params(5, Metric::Euclidean);
    let got = knn(&points, &queries, &p).unwrap();
    // f32 inputs near 1e4 have ulp ~1e-3, so compare with a looser absolute tolerance.
    let want = reference::knn(&points, &queries, &p).unwrap();
    let mut same = 0;
    for (g, w) in got.indices.data().iter().zip(want.indices.data()) {
        same += usize::from(g == w);
    }
    assert!(
        same * 100 >= got.indices.len() * 99,
        "{same} of {}",
        got.indices.len()
    );
    for (g, w) in got.distances.data().iter().zip(want.distances.data()) {
        assert!((g - w).abs() <= 1e-3 * w.abs() + 1e-3, "{g} vs {w}");
    }
}

#[test]
fn cosine_with_zero_vectors() {
    let points = Matrix::new(3, 2, vec![0.0f32, 0.0, 1.0, 0.0, 0.0, 2.0]).unwrap();
    let queries = Matrix::new(2, 2, vec![0.0f32, 0.0, 3.0, 0.1]).unwrap();
    let got = knn(&points, &queries, &params(3, Metric::Cosine)).unwrap();
    // The zero query is at distance 1 from everything: ties → index order.
    assert_eq!(got.indices.row(0), &[0, 1, 2]);
    assert_eq!(got.distances.row(0), &[1.0, 1.0, 1.0]);
    assert_eq!(got.indices.row(1)[0], 1);
    assert_eq!(got.indices.row(1), &[1, 2, 0]);
    assert_eq!(got.distances.row(1)[2], 1.0);
    check(&points, &queries, &params(3, Metric::Cosine), &got);
}

#[test]
fn edge_cases_and_errors() {
    let points = random(10, 4, 1, 0.0, 1.0);
    let none = Matrix::new(0, 4, vec![]).unwrap();
    let out = knn(&points, &none, &params(3, Metric::Euclidean)).unwrap();
    assert_eq!((out.indices.rows(), out.indices.cols()), (0, 3));
    assert_eq!((out.distances.rows(), out.distances.cols()), (0, 3));

    let q = random(2, 4, 2, 0.0, 1.0);
    let e = knn(&points, &q, &params(11, Metric::Euclidean)).unwrap_err();
    assert!(matches!(e, KernelError::InvalidArgument(_)), "{e}");
    assert!(e.to_string().contains("n_neighbors <= n_samples"));
    assert!(matches!(
        knn(&points, &q, &params(0, Metric::Euclidean)),
        Err(KernelError::InvalidArgument(_))
    ));
    let wrong_d = random(2, 3, 2, 0.0, 1.0);
    assert!(matches!(
        knn(&points, &wrong_d, &params(1, Metric::Euclidean)),
        Err(KernelError::InvalidInput(_))
    ));
    let mut bad = q.clone();
    bad.data_mut()[5] = f32::INFINITY;
    let e = knn(&points, &bad, &params(1, Metric::Euclidean)).unwrap_err();
    assert!(e.to_string().contains("row 1, column 1"), "{e}");
    let mut bad = points.clone();
    bad.data_mut()[0] = f32::NAN;
    assert!(matches!(
        knn(&bad, &q, &params(1, Metric::Manhattan)),
        Err(KernelError::InvalidInput(_))
    ));
    let empty = Matrix::new(0, 4, vec![]).unwrap();
    assert!(knn(&empty, &q, &params(1, Metric::Euclidean)).is_err());
    let no_cols = Matrix::new(3, 0, vec![]).unwrap();
    assert!(
        knn(
            &no_cols,
            &Matrix::new(1, 0, vec![]).unwrap(),
            &params(1, Metric::Euclidean)
        )
        .is_err()
    );
}

#[test]
fn labels_vote_on_neighbours() {
    // Two clusters labelled 0 and 1; each query sits in one.
    let points = Matrix::new(6, 1, vec![0.0f32, 0.1, 0.2, 10.0, 10.1, 10.2]).unwrap();
    let labels = [0.0f32, 0.0, 0.0, 1.0, 1.0, 1.0];
    let queries = Matrix::new(2, 1, vec![0.05f32, 9.0]).unwrap();
    let out = knn(&points, &queries, &params(3, Metric::Euclidean)).unwrap();
    assert_eq!(
        majority_vote(&out.indices, &labels).unwrap().data(),
        &[0, 1]
    );
}

//! Conformance checks of knn (see the module docs of `crate::conformance`).
//!
//! Tolerances (times the backend's `tol`): distances within `1e-5` relative plus `1e-6`
//! absolute of the reference's; a returned index may differ from the reference's only where
//! the exact distances of the two points tie within that tolerance; no query repeats a
//! neighbour. On small-integer data every distance is exact, so results must be identical.

use super::{Check, Rng, expect_invalid_argument, expect_invalid_input, ok, small_ints};
use crate::knn::{KnnOutput, KnnParams, Metric, exact_distance, majority_vote};
use crate::reference::knn as reference;
use crate::{KernelBackend, KernelError, KernelName, Matrix};

pub fn checks() -> Vec<Check> {
    vec![
        check("random shapes match the reference", random_shapes),
        check("exact ties go to the lower index", exact_ties),
        check("data far from the origin", far_from_origin),
        check("cosine of zero vectors is 1", cosine_zero_vectors),
        check("no queries, bad shapes, k and values", edges_and_errors),
        check("labels vote on the neighbours", labels_vote),
        check("k of 2048: the neighbours or Unsupported", large_k),
    ]
}

fn check(name: &'static str, run: fn(&dyn KernelBackend, f32)) -> Check {
    Check {
        kernel: KernelName::Knn,
        name,
        run,
    }
}

const METRICS: [Metric; 4] = [
    Metric::Euclidean,
    Metric::SqEuclidean,
    Metric::Manhattan,
    Metric::Cosine,
];

fn params(k: usize, metric: Metric) -> KnnParams {
    KnnParams { k, metric }
}

/// Compares `got` with the reference at the tolerances of the module docs.
#[track_caller]
pub fn assert_matches(points: &Matrix, queries: &Matrix, p: &KnnParams, got: &KnnOutput, tol: f32) {
    let what = format!(
        "knn {}x{} points, {} queries, k={} {:?}",
        points.rows(),
        points.cols(),
        queries.rows(),
        p.k,
        p.metric
    );
    let want = ok(&what, reference::knn(points, queries, p));
    let shape = |m: &Matrix<u32>| (m.rows(), m.cols());
    assert_eq!(shape(&got.indices), shape(&want.indices), "{what}: indices");
    assert_eq!(
        (got.distances.rows(), got.distances.cols()),
        (want.distances.rows(), want.distances.cols()),
        "{what}: distances"
    );
    let close =
        |a: f64, b: f64| (a - b).abs() <= f64::from(tol) * (1e-5 * a.abs().max(b.abs()) + 1e-6);
    for r in 0..queries.rows() {
        for c in 0..p.k {
            let (gi, wi) = (got.indices.row(r)[c], want.indices.row(r)[c]);
            let (gd, wd) = (got.distances.row(r)[c], want.distances.row(r)[c]);
            assert!(
                close(f64::from(gd), f64::from(wd)),
                "{what}: query {r} rank {c}: distance {gd}, want {wd}"
            );
            if gi != wi {
                assert!(
                    (gi as usize) < points.rows(),
                    "{what}: query {r} rank {c}: index {gi} is not a point"
                );
                let exact = exact_distance(p.metric, queries.row(r), points.row(gi as usize));
                assert!(
                    close(exact, f64::from(wd)),
                    "{what}: query {r} rank {c}: index {gi} (at {exact}), want {wi} (at {wd})"
                );
            }
        }
        let mut seen = got.indices.row(r).to_vec();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), p.k, "{what}: query {r} repeats a neighbour");
    }
}

fn random_shapes(b: &dyn KernelBackend, tol: f32) {
    // (n, d, q, k): single elements, k == n, tails of the CPU tiles (blocks of 256 points,
    // panels of 16 and 64 queries), d above and below a GPU tile of 16, enough points for
    // the CPU's seeding pass and thread split, and a large k (several CPU query chunks).
    let shapes = [
        (1, 1, 1, 1),
        (5, 3, 7, 5),
        (100, 17, 9, 10),
        (513, 5, 50, 1),
        (300, 33, 3, 300),
        (257, 64, 130, 20),
        (700, 128, 70, 10),
        (4500, 9, 40, 7),
        (2000, 2, 300, 1000),
    ];
    for (s, &(n, d, q, k)) in shapes.iter().enumerate() {
        let mut rng = Rng::new(100 + s as u64);
        let points = rng.matrix(n, d, -1.0, 1.0);
        let queries = rng.matrix(q, d, -1.0, 1.0);
        for metric in METRICS {
            let p = params(k, metric);
            let got = ok(&format!("knn n={n} k={k}"), b.knn(&points, &queries, &p));
            assert_matches(&points, &queries, &p, &got, tol);
        }
    }
}

fn exact_ties(b: &dyn KernelBackend, _tol: f32) {
    // Coordinates in {0, 1, 2}: every squared difference, sum and expansion is exact in f32,
    // so ties are exact and must resolve to the lower index as in the reference.
    let mut rng = Rng::new(5);
    let points = small_ints(&mut rng, 600, 3, 3);
    let queries = small_ints(&mut rng, 80, 3, 3);
    for metric in [Metric::Euclidean, Metric::SqEuclidean, Metric::Manhattan] {
        let p = params(12, metric);
        let got = ok("knn exact ties", b.knn(&points, &queries, &p));
        let want = ok("reference", reference::knn(&points, &queries, &p));
        assert_eq!(got, want, "knn exact ties {metric:?}");
    }
}

fn far_from_origin(b: &dyn KernelBackend, tol: f32) {
    // Offsets of 1e4 with unit spread: an expansion of |p - q|^2 that is not centred cancels
    // away. f32 inputs near 1e4 have an ulp of 1e-3, so distances compare at that scale and a
    // few near-ties may rank differently.
    let mut rng = Rng::new(7);
    let mut points = rng.matrix(2000, 16, 0.0, 1.0);
    let mut queries = rng.matrix(64, 16, 0.0, 1.0);
    for v in points.data_mut().iter_mut().chain(queries.data_mut()) {
        *v += 1.0e4;
    }
    let p = params(5, Metric::Euclidean);
    let got = ok("knn far from the origin", b.knn(&points, &queries, &p));
    let want = ok("reference", reference::knn(&points, &queries, &p));
    let same = got
        .indices
        .data()
        .iter()
        .zip(want.indices.data())
        .filter(|(g, w)| g == w)
        .count();
    assert!(
        same * 100 >= want.indices.len() * 99,
        "knn far from the origin: {same} of {} indices as the reference",
        want.indices.len()
    );
    super::assert_close(
        "knn far from the origin: distances",
        &got.distances,
        &want.distances,
        1e-3 * tol,
        1e-3 * tol,
    );
}

fn cosine_zero_vectors(b: &dyn KernelBackend, tol: f32) {
    let points = ok(
        "points",
        Matrix::new(3, 2, vec![0.0f32, 0.0, 1.0, 0.0, 0.0, 2.0]),
    );
    let queries = ok("queries", Matrix::new(2, 2, vec![0.0f32, 0.0, 3.0, 0.1]));
    let p = params(3, Metric::Cosine);
    let got = ok("knn cosine", b.knn(&points, &queries, &p));
    // The zero query is at distance 1 from everything (ties in index order); the zero point
    // is at distance 1 from the other query, behind both non-zero points.
    assert_eq!(got.indices.row(0), &[0, 1, 2], "knn cosine: zero query");
    assert_eq!(
        got.distances.row(0),
        &[1.0, 1.0, 1.0],
        "knn cosine: zero query"
    );
    assert_eq!(got.indices.row(1), &[1, 2, 0], "knn cosine: query (3, 0.1)");
    assert_eq!(got.distances.row(1)[2], 1.0, "knn cosine: zero point");
    assert_matches(&points, &queries, &p, &got, tol);
}

fn edges_and_errors(b: &dyn KernelBackend, _tol: f32) {
    let mut rng = Rng::new(1);
    let points = rng.matrix(10, 4, 0.0, 1.0);
    let queries = rng.matrix(2, 4, 0.0, 1.0);
    let euclid = |k| params(k, Metric::Euclidean);

    let none = ok("empty", Matrix::new(0, 4, vec![]));
    let out = ok("knn without queries", b.knn(&points, &none, &euclid(3)));
    assert_eq!(
        (out.indices.rows(), out.indices.cols()),
        (0, 3),
        "knn without queries: indices"
    );
    assert_eq!(
        (out.distances.rows(), out.distances.cols()),
        (0, 3),
        "knn without queries: distances"
    );

    let e = expect_invalid_argument("knn k > n", b.knn(&points, &queries, &euclid(11)));
    assert!(e.to_string().contains("n_neighbors <= n_samples"), "{e}");
    expect_invalid_argument("knn k = 0", b.knn(&points, &queries, &euclid(0)));
    expect_invalid_argument("knn without points", b.knn(&none, &queries, &euclid(1)));
    let wrong_d = rng.matrix(2, 3, 0.0, 1.0);
    expect_invalid_input("knn d mismatch", b.knn(&points, &wrong_d, &euclid(1)));
    let no_cols = ok("no columns", Matrix::new(3, 0, vec![]));
    let no_cols_q = ok("no columns", Matrix::new(1, 0, vec![]));
    expect_invalid_input("knn d = 0", b.knn(&no_cols, &no_cols_q, &euclid(1)));

    let mut bad = queries.clone();
    bad.data_mut()[5] = f32::INFINITY;
    let e = expect_invalid_input("knn Inf query", b.knn(&points, &bad, &euclid(1)));
    assert!(e.to_string().contains("row 1, column 1"), "{e}");
    let mut bad = points.clone();
    bad.data_mut()[0] = f32::NAN;
    let p = params(1, Metric::Manhattan);
    expect_invalid_input("knn NaN point", b.knn(&bad, &queries, &p));
}

fn labels_vote(b: &dyn KernelBackend, _tol: f32) {
    // Two clusters labelled 0 and 1; each query sits nearer one of them.
    let points = ok(
        "points",
        Matrix::new(6, 1, vec![0.0f32, 0.1, 0.2, 10.0, 10.1, 10.2]),
    );
    let labels = [0.0f32, 0.0, 0.0, 1.0, 1.0, 1.0];
    let queries = ok("queries", Matrix::new(2, 1, vec![0.05f32, 9.0]));
    let out = ok(
        "knn",
        b.knn(&points, &queries, &params(3, Metric::Euclidean)),
    );
    let votes = ok("vote", majority_vote(&out.indices, &labels));
    assert_eq!(votes.data(), &[0, 1], "knn labels vote");
}

fn large_k(b: &dyn KernelBackend, tol: f32) {
    // Device selections keep a bounded candidate list per query (2048 on CUDA and OpenCL):
    // beyond it a backend answers Unsupported, so that the registry falls back, never a wrong
    // or partial result.
    let mut rng = Rng::new(11);
    let points = rng.matrix(2058, 2, 0.0, 1.0);
    let queries = rng.matrix(2, 2, 0.0, 1.0);
    let p = params(2048, Metric::Euclidean);
    match b.knn(&points, &queries, &p) {
        Ok(got) => assert_matches(&points, &queries, &p, &got, tol),
        Err(KernelError::Unsupported { .. }) => {}
        Err(e) => panic!("knn k=2048: {e}, want the neighbours or Unsupported"),
    }
}

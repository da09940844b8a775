//! Exact k-nearest neighbours by brute force: validation, semantics and the helpers every backend
//! shares, so that the CPU, CUDA and OpenCL results agree with [`crate::reference::knn`].
//!
//! # Semantics
//! - `points` is `n x d`, `queries` is `q x d`; both must hold finite values only
//!   ([`KernelError::InvalidInput`] names the first bad row and column otherwise).
//! - For each query the output holds the `k` nearest points, nearest first: `indices` (`q x k`,
//!   row numbers of `points`) and `distances` (`q x k`). Ties in distance go to the lower index.
//! - Metrics ([`Metric`]): `euclidean` (the default; true distances, not squared),
//!   `sqeuclidean`, `manhattan` (L1), `cosine` (`1 - cos`, with a zero vector at distance 1 from
//!   everything, as a zero vector has no direction).
//! - Errors: `d` differing between points and queries or `d == 0` → `InvalidInput`; `k == 0` or
//!   `k > n` → `InvalidArgument` (scikit-learn's "Expected n_neighbors <= n_samples").
//!   `q == 0` is not an error: the outputs are `0 x k`.
//! - Distances are computed exactly ([`exact_distance`], `f64` accumulation) for the reported
//!   neighbours. Fast backends may rank the points with the `|x|^2 - 2 x.y + |y|^2` expansion in
//!   `f32`; they keep [`candidate_count`] candidates per query and re-rank those with the exact
//!   distance ([`finish_query`]), so that rounding in the expansion cannot reorder the result
//!   unless more than [`CANDIDATE_MARGIN`] points lie within that rounding of the k-th distance.
//! - Optional labels (the HPC gateway's classifier mode): [`majority_vote`] predicts, for each
//!   query, the most frequent label among its neighbours (ties → the smallest label). Labels must
//!   be non-negative integers.

use crate::{KernelError, Matrix, Params, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Euclidean,
    SqEuclidean,
    Manhattan,
    Cosine,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Euclidean => "euclidean",
            Metric::SqEuclidean => "sqeuclidean",
            Metric::Manhattan => "manhattan",
            Metric::Cosine => "cosine",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct KnnParams {
    pub k: usize,
    pub metric: Metric,
}

/// Neighbours of each query, nearest first: `q x k` indices into the points and their distances.
#[derive(Debug, Clone, PartialEq)]
pub struct KnnOutput {
    pub indices: Matrix<u32>,
    pub distances: Matrix<f32>,
}

impl KnnOutput {
    /// The `0 x k` result of a call without queries.
    pub fn empty(k: usize) -> Self {
        Self {
            indices: Matrix::filled(0, k, 0),
            distances: Matrix::filled(0, k, 0.0),
        }
    }
}

impl KnnParams {
    /// `k` (aliases `k_nearest_neighbor`, `neighbors`; default 7 as the HPC gateway), `metric`.
    pub fn from_params(p: &Params) -> Result<Self> {
        let k = p.usize_or(&["k", "k_nearest_neighbor", "neighbors"], 7)?;
        let metric = p.choice(
            &["metric"],
            &[
                ("euclidean", Metric::Euclidean),
                ("sqeuclidean", Metric::SqEuclidean),
                ("manhattan", Metric::Manhattan),
                ("cosine", Metric::Cosine),
            ],
            Metric::Euclidean,
        )?;
        Ok(Self { k, metric })
    }
}

/// Checks shapes, `k` and finiteness (see the module docs); every backend calls it first.
pub fn validate(points: &Matrix, queries: &Matrix, p: &KnnParams) -> Result<()> {
    let (n, d) = (points.rows(), points.cols());
    if d == 0 {
        return Err(KernelError::input("points have no columns (d == 0)"));
    }
    validate_search(n, d, queries, p.k)?;
    if n > u32::MAX as usize {
        return Err(KernelError::input(format!(
            "{n} points exceed the u32 index range"
        )));
    }
    points.require_finite("points")?;
    queries.require_finite("queries")
}

/// The checks of [`validate`] that concern one search of `n` points of `d` columns: the query
/// columns and `k` (finiteness of the queries is left to the caller), for backends whose
/// points were checked once when they were made resident.
pub fn validate_search(n: usize, d: usize, queries: &Matrix, k: usize) -> Result<()> {
    if queries.cols() != d {
        return Err(KernelError::input(format!(
            "queries have {} columns but points have {d}",
            queries.cols()
        )));
    }
    if k == 0 {
        return Err(KernelError::arg("k must be at least 1"));
    }
    if k > n {
        return Err(KernelError::arg(format!(
            "Expected n_neighbors <= n_samples, but n_samples = {n}, n_neighbors = {k}"
        )));
    }
    Ok(())
}

/// Rows [`centring_mean`] averages at most.
pub const MEAN_SAMPLE: usize = 4096;

/// The mean of up to [`MEAN_SAMPLE`] evenly spaced rows (zeros without rows): the centre that
/// backends ranking with the `|x|^2 - 2 x.y + |y|^2` expansion subtract first, so that data far
/// from the origin does not cancel away (any centre is exact; a near one keeps the terms small).
pub fn centring_mean(m: &Matrix) -> Vec<f32> {
    let (n, d) = (m.rows(), m.cols());
    let step = n.div_ceil(MEAN_SAMPLE).max(1);
    let mut sum = vec![0f64; d];
    let mut count = 0usize;
    for r in (0..n).step_by(step) {
        for (s, &v) in sum.iter_mut().zip(m.row(r)) {
            *s += f64::from(v);
        }
        count += 1;
    }
    sum.iter()
        .map(|s| (s / count.max(1) as f64) as f32)
        .collect()
}

/// `1 / |row|` in `f64`, and 0 for a zero vector (which the cosine metric puts at distance 1
/// from everything).
pub fn inverse_norm(row: &[f32]) -> f64 {
    let n2: f64 = row.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    if n2 > 0.0 { 1.0 / n2.sqrt() } else { 0.0 }
}

/// Extra candidates a backend that ranks with a rounded expansion keeps beyond `k`.
pub const CANDIDATE_MARGIN: usize = 8;

/// How many candidates per query such a backend keeps: `k + CANDIDATE_MARGIN`, at most `n`.
pub fn candidate_count(k: usize, n: usize) -> usize {
    (k + CANDIDATE_MARGIN).min(n)
}

/// [`candidate_count`] for a device whose selection holds at most `max` candidates per query;
/// beyond that `backend` answers `Unsupported` (and the registry falls back to another).
pub fn device_candidate_count(
    k: usize,
    n: usize,
    max: usize,
    backend: &'static str,
) -> Result<usize> {
    let kc = candidate_count(k, n);
    if kc > max {
        return Err(KernelError::Unsupported {
            kernel: "knn",
            backend,
        });
    }
    Ok(kc)
}

/// `sum term(a_i - b_i)` in `f64` with eight interleaved partial sums (a fixed order, so every
/// caller gets the same bits, and a loop that vectorises).
#[inline(always)]
fn sum_of_diffs(a: &[f32], b: &[f32], term: impl Fn(f64) -> f64) -> f64 {
    let mut acc = [0f64; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += term(f64::from(x[l]) - f64::from(y[l]));
        }
    }
    for (l, (x, y)) in ra.iter().zip(rb).enumerate() {
        acc[l] += term(f64::from(*x) - f64::from(*y));
    }
    acc.iter().sum()
}

/// `sum (a_i - b_i)^2` in `f64` (see [`sum_of_diffs`] for the order of additions).
#[inline]
pub fn sq_dist_f64(a: &[f32], b: &[f32]) -> f64 {
    sum_of_diffs(a, b, |t| t * t)
}

fn l1_f64(a: &[f32], b: &[f32]) -> f64 {
    sum_of_diffs(a, b, f64::abs)
}

fn cosine_f64(a: &[f32], b: &[f32]) -> f64 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 1.0;
    }
    (1.0 - dot / (na.sqrt() * nb.sqrt())).clamp(0.0, 2.0)
}

/// The exact distance of the module docs, in `f64` (what neighbours are finally ranked by).
pub fn exact_distance(metric: Metric, a: &[f32], b: &[f32]) -> f64 {
    match metric {
        Metric::Euclidean => sq_dist_f64(a, b).sqrt(),
        Metric::SqEuclidean => sq_dist_f64(a, b),
        Metric::Manhattan => l1_f64(a, b),
        Metric::Cosine => cosine_f64(a, b),
    }
}

/// Re-ranks one query's candidates (point indices, any order, no duplicates) by exact distance
/// and writes the best `out_idx.len()` of them, nearest first, ties to the lower index.
/// Fails if there are fewer candidates than outputs or a candidate is out of range.
pub fn finish_query(
    metric: Metric,
    points: &Matrix,
    query: &[f32],
    candidates: &[u32],
    out_idx: &mut [u32],
    out_dist: &mut [f32],
) -> Result<()> {
    let mut scored: Vec<(f64, u32)> = Vec::with_capacity(candidates.len());
    for &c in candidates {
        let i = c as usize;
        if i >= points.rows() {
            return Err(KernelError::device(format!(
                "candidate {i} is not a point index (n = {})",
                points.rows()
            )));
        }
        scored.push((exact_distance(metric, query, points.row(i)), c));
    }
    if scored.len() < out_idx.len() {
        return Err(KernelError::device(format!(
            "{} candidates for {} neighbours",
            scored.len(),
            out_idx.len()
        )));
    }
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    for ((slot_i, slot_d), (dist, idx)) in out_idx.iter_mut().zip(out_dist.iter_mut()).zip(scored) {
        *slot_i = idx;
        *slot_d = dist as f32;
    }
    Ok(())
}

/// The most frequent label among each query's neighbours (ties → the smallest label): `q x 1`.
/// `labels[i]` is the label of point `i`; labels must be non-negative integers (as `f32`).
pub fn majority_vote(indices: &Matrix<u32>, labels: &[f32]) -> Result<Matrix<u32>> {
    let mut int_labels = Vec::with_capacity(labels.len());
    for (i, &l) in labels.iter().enumerate() {
        if !l.is_finite() || l < 0.0 || l.fract() != 0.0 || l > u32::MAX as f32 {
            return Err(KernelError::input(format!(
                "labels must be non-negative integers, row {i} is {l}"
            )));
        }
        int_labels.push(l as u32);
    }
    let mut out = Vec::with_capacity(indices.rows());
    let mut votes: Vec<u32> = Vec::with_capacity(indices.cols());
    for r in 0..indices.rows() {
        votes.clear();
        for &i in indices.row(r) {
            let l = int_labels.get(i as usize).ok_or_else(|| {
                KernelError::input(format!(
                    "neighbour {i} has no label ({} labels given)",
                    labels.len()
                ))
            })?;
            votes.push(*l);
        }
        votes.sort_unstable();
        // Runs of equal labels in ascending order: the first longest run is the smallest label.
        let (mut best, mut best_n) = (0u32, 0usize);
        let mut j = 0;
        while j < votes.len() {
            let run = votes[j..].iter().take_while(|&&v| v == votes[j]).count();
            if run > best_n {
                (best, best_n) = (votes[j], run);
            }
            j += run;
        }
        out.push(best);
    }
    Matrix::new(indices.rows(), 1, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(rows: usize, cols: usize, v: &[f32]) -> Matrix {
        Matrix::new(rows, cols, v.to_vec()).unwrap()
    }

    #[test]
    fn validation_errors() {
        let p = KnnParams {
            k: 2,
            metric: Metric::Euclidean,
        };
        let pts = m(3, 2, &[0.0, 0.0, 1.0, 1.0, 2.0, 2.0]);
        assert!(validate(&pts, &m(1, 2, &[0.0, 0.0]), &p).is_ok());
        assert!(matches!(
            validate(&pts, &m(1, 3, &[0.0; 3]), &p),
            Err(KernelError::InvalidInput(_))
        ));
        let big = KnnParams { k: 4, ..p.clone() };
        let e = validate(&pts, &m(1, 2, &[0.0; 2]), &big).unwrap_err();
        assert!(e.to_string().contains("n_neighbors <= n_samples"), "{e}");
        let zero = KnnParams { k: 0, ..p.clone() };
        assert!(matches!(
            validate(&pts, &m(1, 2, &[0.0; 2]), &zero),
            Err(KernelError::InvalidArgument(_))
        ));
        let e = validate(&pts, &m(1, 2, &[0.0, f32::NAN]), &p).unwrap_err();
        assert!(e.to_string().contains("row 0, column 1"), "{e}");
        assert!(validate(&m(0, 0, &[]), &m(0, 0, &[]), &p).is_err());
    }

    #[test]
    fn distances_and_cosine_of_zero() {
        let a = [3.0f32, 4.0];
        let z = [0.0f32, 0.0];
        assert_eq!(exact_distance(Metric::Euclidean, &a, &z), 5.0);
        assert_eq!(exact_distance(Metric::SqEuclidean, &a, &z), 25.0);
        assert_eq!(exact_distance(Metric::Manhattan, &a, &z), 7.0);
        assert_eq!(exact_distance(Metric::Cosine, &a, &z), 1.0);
        assert!(exact_distance(Metric::Cosine, &a, &[6.0, 8.0]).abs() < 1e-12);
        assert!((exact_distance(Metric::Cosine, &a, &[-3.0, -4.0]) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn centring_mean_inverse_norm_and_device_limit() {
        let m = Matrix::new(3, 2, vec![1.0f32, 10.0, 2.0, 20.0, 3.0, 30.0]).unwrap();
        assert_eq!(centring_mean(&m), vec![2.0, 20.0]);
        assert_eq!(centring_mean(&Matrix::filled(0, 2, 0.0)), vec![0.0, 0.0]);
        // 10,000 rows: every third is sampled (0, 3, ..., 9999), whose mean is 4999.5.
        let long = Matrix::new(10_000, 1, (0..10_000).map(|i| i as f32).collect()).unwrap();
        assert_eq!(centring_mean(&long), vec![4999.5]);
        assert_eq!(inverse_norm(&[3.0, 4.0]), 0.2);
        assert_eq!(inverse_norm(&[0.0, 0.0]), 0.0);
        assert_eq!(device_candidate_count(3, 5, 2048, "x").unwrap(), 5);
        assert_eq!(device_candidate_count(2040, 5000, 2048, "x").unwrap(), 2048);
        assert!(matches!(
            device_candidate_count(2041, 5000, 2048, "x"),
            Err(KernelError::Unsupported { .. })
        ));
    }

    #[test]
    fn votes_tie_to_smallest_label() {
        let idx = Matrix::new(2, 4, vec![0u32, 1, 2, 3, 3, 2, 1, 0]).unwrap();
        let labels = [2.0f32, 1.0, 2.0, 1.0];
        assert_eq!(majority_vote(&idx, &labels).unwrap().data(), &[1, 1]);
        let labels = [2.0f32, 2.0, 2.0, 1.0];
        assert_eq!(majority_vote(&idx, &labels).unwrap().data(), &[2, 2]);
        assert!(majority_vote(&idx, &[0.5, 1.0, 1.0, 1.0]).is_err());
        assert!(majority_vote(&idx, &[-1.0, 1.0, 1.0, 1.0]).is_err());
        assert!(majority_vote(&idx, &[1.0, 1.0]).is_err());
    }
}

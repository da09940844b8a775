//! Lloyd k-means with k-means++ initialisation; Euclidean or DTW distance. The Lloyd loop,
//! the initialisations and the convergence rule live here once ([`lloyd`]); a backend supplies
//! only the assignment step ([`LloydStep`]), so its data can stay resident on its device.
//!
//! # Semantics
//! - `data` is `n x d` (for DTW: `n` series of length `d`), finite values only; `1 <= k <= n`.
//! - Initial centroids: the `init` input (`k x d`, checked), else `init=k-means++` (the default:
//!   the first centre uniformly at random, each next one drawn with probability proportional to
//!   the squared distance to the nearest centre chosen so far; one draw per centre, not
//!   scikit-learn's greedy variant with local trials) or `init=random` (`k` distinct points).
//!   Both draw from a SplitMix64 generator seeded by `seed` (default 0): the same seed gives the
//!   same centroids on every backend whose distances round alike.
//! - Each iteration assigns every point to its nearest centroid (ties → the lower centroid index)
//!   and moves each centroid to the mean of its points. A cluster left empty is re-seeded with
//!   the point farthest from its own centroid (the farthest distinct points, in cluster order,
//!   ties → the lower point index); that point leaves its old cluster (as scikit-learn does). A
//!   cluster emptied by such a move keeps its previous centroid.
//! - Stops after `max_iter` iterations (alias `iterations`, default 300, at least 1), or once the
//!   sum over centroids of their squared shift is at most `tol x` the mean per-feature variance
//!   of the data (scikit-learn's rule; `tol` default 1e-4, `tol = 0` runs until nothing moves).
//!   If the last iteration moved the centroids, the points are assigned once more so that the
//!   labels and the inertia belong to the returned centroids.
//! - Output: centroids `k x d`, labels `n x 1`, inertia (the sum of squared distances of the
//!   points to their centroid, `f64`), iterations run.
//! - DTW (`metric=dtw`, or any `window`/`w` parameter as in `{"w": 200, "iterations": 2}`):
//!   assignment and k-means++ use the DTW distance of the backend (squared-difference cost,
//!   summed along the optimal path, square root at the end, band `|i - j| <= window`); the
//!   centroid update is the arithmetic mean of the members (tslearn uses DTW barycenter
//!   averaging; the mean is cheaper and keeps the loop the same); inertia is the sum of squared
//!   DTW distances.
//! - Errors: `k == 0`, `k > n`, `max_iter == 0`, a negative `tol` → `InvalidArgument`;
//!   non-finite data, `d == 0` or an `init` of the wrong shape → `InvalidInput`.

use crate::knn::sq_dist_f64;
use crate::{KernelError, Matrix, Params, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KMeansMetric {
    Euclidean,
    /// DTW with a Sakoe-Chiba band of `window` (None: unconstrained).
    Dtw {
        window: Option<usize>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    KMeansPlusPlus,
    Random,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KMeansParams {
    pub k: usize,
    pub max_iter: usize,
    pub tol: f64,
    pub seed: u64,
    pub metric: KMeansMetric,
    pub init: Init,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KMeansOutput {
    pub centroids: Matrix<f32>,
    /// `n x 1` cluster of each point.
    pub labels: Matrix<u32>,
    /// Sum of squared distances of the points to their centroid.
    pub inertia: f64,
    pub iterations: usize,
}

impl KMeansParams {
    pub fn from_params(p: &Params) -> Result<Self> {
        let k = p.usize_or(&["k", "clusters", "cluster_number", "n_clusters"], 2)?;
        let max_iter = p.usize_or(&["max_iter", "iterations"], 300)?;
        let tol = p.f64_or(&["tol", "epsilon_criteria"], 1e-4)?;
        let seed = p.usize_or(&["seed"], 0)? as u64;
        let window = p.usize(&["window", "w"])?;
        let metric = p.choice(
            &["metric"],
            &[("euclidean", false), ("dtw", true)],
            window.is_some(),
        )?;
        let metric = if metric {
            KMeansMetric::Dtw { window }
        } else {
            KMeansMetric::Euclidean
        };
        let init = p.choice(
            &["init"],
            &[
                ("k-means++", Init::KMeansPlusPlus),
                ("kmeans++", Init::KMeansPlusPlus),
                ("random", Init::Random),
            ],
            Init::KMeansPlusPlus,
        )?;
        Ok(Self {
            k,
            max_iter,
            tol,
            seed,
            metric,
            init,
        })
    }
}

/// Checks `k`, `max_iter`, `tol`, the data and the `init` shape (see the module docs).
pub fn validate(data: &Matrix, init: Option<&Matrix>, p: &KMeansParams) -> Result<()> {
    let (n, d) = (data.rows(), data.cols());
    if d == 0 {
        return Err(KernelError::input("data has no columns (d == 0)"));
    }
    if p.k == 0 {
        return Err(KernelError::arg("k must be at least 1"));
    }
    if p.k > n {
        return Err(KernelError::arg(format!(
            "n_samples={n} should be >= n_clusters={}",
            p.k
        )));
    }
    if p.max_iter == 0 {
        return Err(KernelError::arg("max_iter must be at least 1"));
    }
    if p.tol.is_nan() || p.tol < 0.0 {
        return Err(KernelError::arg(format!(
            "tol must be non-negative, got {}",
            p.tol
        )));
    }
    if n > u32::MAX as usize {
        return Err(KernelError::input(format!(
            "{n} points exceed the u32 label range"
        )));
    }
    data.require_finite("data")?;
    if let Some(c) = init {
        if c.rows() != p.k || c.cols() != d {
            return Err(KernelError::input(format!(
                "init has shape {}x{} but k x d is {}x{d}",
                c.rows(),
                c.cols(),
                p.k
            )));
        }
        c.require_finite("init")?;
    }
    Ok(())
}

/// What one assignment pass accumulates.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// `k x d` sums of the points of each cluster, row-major.
    pub sums: Vec<f64>,
    /// Points per cluster.
    pub counts: Vec<u64>,
    /// Sum over points of the squared distance to their centroid.
    pub inertia: f64,
}

impl Assignment {
    pub fn zeros(k: usize, d: usize) -> Self {
        Self {
            sums: vec![0.0; k * d],
            counts: vec![0; k],
            inertia: 0.0,
        }
    }
    /// Adds another partial assignment of the same shape (backends reduce chunks with it).
    pub fn add(&mut self, other: &Assignment) {
        for (a, b) in self.sums.iter_mut().zip(&other.sums) {
            *a += b;
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.inertia += other.inertia;
    }
}

/// The backend-specific part of [`lloyd`]: distances from the (resident) data to centroids.
/// Squared distances are exact ([`sq_dist_f64`]) where the backend can afford it; an `f32`
/// expansion is allowed for ranking.
pub trait LloydStep {
    /// Squared distance of every point to `centre` (a `d`-vector), for k-means++.
    fn dist2_to(&mut self, centre: &[f32]) -> Result<Vec<f64>>;
    /// Assigns every point to its nearest centroid (ties → lower index) and accumulates.
    fn assign(&mut self, centroids: &Matrix) -> Result<Assignment>;
    /// The labels of the last [`LloydStep::assign`].
    fn labels(&mut self) -> Result<Vec<u32>>;
    /// Each point's squared distance to its centroid in the last [`LloydStep::assign`].
    fn min_dist2(&mut self) -> Result<Vec<f64>>;
}

/// SplitMix64: small, seedable, and the same on every platform.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in `0..n` (`n >= 1`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.unit() * n as f64) as usize).min(n.saturating_sub(1))
    }
}

/// The mean over features of the per-feature (population) variance: the scale of `tol`.
pub fn mean_variance(data: &Matrix) -> f64 {
    let (n, d) = (data.rows(), data.cols());
    if n == 0 || d == 0 {
        return 0.0;
    }
    let mut mean = vec![0f64; d];
    for r in 0..n {
        for (m, &v) in mean.iter_mut().zip(data.row(r)) {
            *m += f64::from(v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut var = vec![0f64; d];
    for r in 0..n {
        for ((s, &v), m) in var.iter_mut().zip(data.row(r)).zip(&mean) {
            let t = f64::from(v) - m;
            *s += t * t;
        }
    }
    var.iter().sum::<f64>() / (n as f64 * d as f64)
}

fn rows_of(data: &Matrix, idx: &[usize]) -> Result<Matrix> {
    let mut out = Vec::with_capacity(idx.len() * data.cols());
    for &i in idx {
        out.extend_from_slice(data.row(i));
    }
    Matrix::new(idx.len(), data.cols(), out)
}

/// k-means++ (one draw per centre, see the module docs) through the step's distances.
pub fn kmeans_plus_plus<S: LloydStep + ?Sized>(
    data: &Matrix,
    k: usize,
    seed: u64,
    step: &mut S,
) -> Result<Matrix> {
    let n = data.rows();
    let mut rng = SplitMix64::new(seed);
    let mut chosen = vec![false; n];
    let first = rng.below(n);
    chosen[first] = true;
    let mut picks = vec![first];
    let mut d2 = step.dist2_to(data.row(first))?;
    if d2.len() != n {
        return Err(KernelError::device(format!(
            "{} distances for {n} points",
            d2.len()
        )));
    }
    while picks.len() < k {
        let total: f64 = d2.iter().sum();
        let next = if total > 0.0 {
            let r = rng.unit() * total;
            let mut cum = 0.0;
            let mut pick = None;
            let mut last_positive = 0;
            for (i, &v) in d2.iter().enumerate() {
                if v > 0.0 {
                    last_positive = i;
                    cum += v;
                    if cum > r {
                        pick = Some(i);
                        break;
                    }
                }
            }
            pick.unwrap_or(last_positive)
        } else {
            // Every point sits on a chosen centre: take the next unchosen point after a random one.
            let start = rng.below(n);
            (0..n)
                .map(|o| (start + o) % n)
                .find(|&i| !chosen[i])
                .unwrap_or(start)
        };
        chosen[next] = true;
        picks.push(next);
        if picks.len() < k {
            let nd = step.dist2_to(data.row(next))?;
            for (a, b) in d2.iter_mut().zip(nd) {
                if b < *a {
                    *a = b;
                }
            }
        }
    }
    rows_of(data, &picks)
}

/// `k` distinct points drawn uniformly (partial Fisher-Yates), in draw order.
pub fn random_init(data: &Matrix, k: usize, seed: u64) -> Result<Matrix> {
    let n = data.rows();
    let mut rng = SplitMix64::new(seed);
    let mut idx: Vec<usize> = (0..n).collect();
    for i in 0..k.min(n) {
        let j = i + rng.below(n - i);
        idx.swap(i, j);
    }
    rows_of(data, &idx[..k.min(n)])
}

/// New centroids from an assignment, re-seeding empty clusters (see the module docs).
fn update<S: LloydStep + ?Sized>(
    data: &Matrix,
    old: &Matrix,
    mut a: Assignment,
    step: &mut S,
) -> Result<Matrix> {
    let (k, d) = (old.rows(), old.cols());
    let empties: Vec<usize> = (0..k).filter(|&j| a.counts[j] == 0).collect();
    if !empties.is_empty() {
        let dist = step.min_dist2()?;
        let labels = step.labels()?;
        let n = data.rows();
        if dist.len() != n || labels.len() != n {
            return Err(KernelError::device(
                "step returned a wrong number of labels",
            ));
        }
        let mut order: Vec<usize> = (0..n).collect();
        let far_first = |x: &usize, y: &usize| dist[*y].total_cmp(&dist[*x]).then(x.cmp(y));
        let m = empties.len().min(n);
        if m < n {
            order.select_nth_unstable_by(m, far_first);
        }
        order[..m].sort_by(far_first);
        for (&e, &i) in empties.iter().zip(&order[..m]) {
            let from = labels[i] as usize;
            if from < k && a.counts[from] > 0 {
                a.counts[from] -= 1;
                for (s, &v) in a.sums[from * d..(from + 1) * d].iter_mut().zip(data.row(i)) {
                    *s -= f64::from(v);
                }
            }
            a.counts[e] = 1;
            for (s, &v) in a.sums[e * d..(e + 1) * d].iter_mut().zip(data.row(i)) {
                *s = f64::from(v);
            }
        }
    }
    let mut out = old.clone();
    for j in 0..k {
        if a.counts[j] > 0 {
            let c = a.counts[j] as f64;
            for (o, s) in out.data_mut()[j * d..(j + 1) * d]
                .iter_mut()
                .zip(&a.sums[j * d..(j + 1) * d])
            {
                *o = (s / c) as f32;
            }
        }
    }
    Ok(out)
}

fn check_assignment(a: &Assignment, k: usize, d: usize) -> Result<()> {
    if a.sums.len() != k * d || a.counts.len() != k {
        return Err(KernelError::device(format!(
            "assignment has {} sums and {} counts for k={k}, d={d}",
            a.sums.len(),
            a.counts.len()
        )));
    }
    Ok(())
}

/// The Lloyd loop of the module docs, over any backend's assignment step.
pub fn lloyd<S: LloydStep + ?Sized>(
    data: &Matrix,
    init: Option<&Matrix>,
    p: &KMeansParams,
    step: &mut S,
) -> Result<KMeansOutput> {
    validate(data, init, p)?;
    let (n, d, k) = (data.rows(), data.cols(), p.k);
    let mut centroids = match (init, p.init) {
        (Some(c), _) => c.clone(),
        (None, Init::KMeansPlusPlus) => kmeans_plus_plus(data, k, p.seed, step)?,
        (None, Init::Random) => random_init(data, k, p.seed)?,
    };
    // The variance pass costs as much as a cheap iteration: skip it when tol is 0.
    let tol_abs = if p.tol > 0.0 {
        p.tol * mean_variance(data)
    } else {
        0.0
    };
    let mut iterations = 0;
    let mut settled: Option<Assignment> = None;
    while iterations < p.max_iter {
        let a = step.assign(&centroids)?;
        check_assignment(&a, k, d)?;
        let counts_full = a.counts.iter().all(|&c| c > 0);
        let next = update(data, &centroids, a.clone(), step)?;
        iterations += 1;
        let shift: f64 = next
            .data()
            .iter()
            .zip(centroids.data())
            .map(|(x, y)| {
                let t = f64::from(*x) - f64::from(*y);
                t * t
            })
            .sum();
        centroids = next;
        if shift == 0.0 && counts_full {
            // Nothing moved: the last assignment already belongs to the returned centroids.
            settled = Some(a);
            break;
        }
        if shift <= tol_abs {
            break;
        }
    }
    let last = match settled {
        Some(a) => a,
        None => {
            let a = step.assign(&centroids)?;
            check_assignment(&a, k, d)?;
            a
        }
    };
    let labels = step.labels()?;
    Ok(KMeansOutput {
        centroids,
        labels: Matrix::new(n, 1, labels)?,
        inertia: last.inertia,
        iterations,
    })
}

/// Sums and counts of the points per label (for steps that assign on the host).
pub fn accumulate(data: &Matrix, labels: &[u32], dist2: &[f64], k: usize) -> Assignment {
    let d = data.cols();
    let mut a = Assignment::zeros(k, d);
    for (i, (&l, &dd)) in labels.iter().zip(dist2).enumerate() {
        let l = l as usize;
        if l >= k {
            continue;
        }
        a.counts[l] += 1;
        for (s, &v) in a.sums[l * d..(l + 1) * d].iter_mut().zip(data.row(i)) {
            *s += f64::from(v);
        }
        a.inertia += dd;
    }
    a
}

/// Centroids shifted by a centring mean `m` (see `crate::knn::centring_mean`), for steps that
/// rank with the expansion `|x - c|^2 = |x - m|^2 + (|c'|^2 + 2 m.c') - 2 x.c'` where
/// `c' = c - m`: the `k x d` values `c'` (row-major) and the per-centroid term
/// `|c'|^2 + 2 m.c'` (the `|x - m|^2` term is the same for every centroid), both rounded from
/// `f64`.
pub fn centred_centroids(c: &Matrix, mean: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut shifted = Vec::with_capacity(c.len());
    let mut term = Vec::with_capacity(c.rows());
    for j in 0..c.rows() {
        let mut t = 0f64;
        for (&v, &m) in c.row(j).iter().zip(mean) {
            let s = f64::from(v) - f64::from(m);
            t += s * s + 2.0 * f64::from(m) * s;
            shifted.push(s as f32);
        }
        term.push(t as f32);
    }
    (shifted, term)
}

/// The position of the smallest value, ties → the lower index.
pub fn argmin(row: &[f32]) -> usize {
    let mut best = 0;
    for (j, &v) in row.iter().enumerate() {
        if v < row[best] {
            best = j;
        }
    }
    best
}

/// The DTW assignment step on the host: `dtw(data, centroids)` gives `n x k` DTW distances (a
/// backend's own DTW function); sums and counts are the arithmetic means' (module docs).
pub struct DtwStep<'a, F> {
    data: &'a Matrix,
    dtw: F,
    labels: Vec<u32>,
    dist2: Vec<f64>,
}

impl<'a, F: FnMut(&Matrix, &Matrix) -> Result<Matrix>> DtwStep<'a, F> {
    pub fn new(data: &'a Matrix, dtw: F) -> Self {
        Self {
            data,
            dtw,
            labels: Vec::new(),
            dist2: Vec::new(),
        }
    }
}

impl<F: FnMut(&Matrix, &Matrix) -> Result<Matrix>> LloydStep for DtwStep<'_, F> {
    fn dist2_to(&mut self, centre: &[f32]) -> Result<Vec<f64>> {
        let c = Matrix::new(1, centre.len(), centre.to_vec())?;
        let dist = (self.dtw)(self.data, &c)?;
        if dist.rows() != self.data.rows() || dist.cols() != 1 {
            return Err(KernelError::device("dtw returned a wrong shape"));
        }
        Ok(dist
            .data()
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .collect())
    }
    fn assign(&mut self, centroids: &Matrix) -> Result<Assignment> {
        let dist = (self.dtw)(self.data, centroids)?;
        if dist.rows() != self.data.rows() || dist.cols() != centroids.rows() {
            return Err(KernelError::device("dtw returned a wrong shape"));
        }
        self.labels.clear();
        self.dist2.clear();
        for r in 0..dist.rows() {
            let row = dist.row(r);
            let j = argmin(row);
            self.labels.push(j as u32);
            self.dist2.push(f64::from(row[j]) * f64::from(row[j]));
        }
        Ok(accumulate(
            self.data,
            &self.labels,
            &self.dist2,
            centroids.rows(),
        ))
    }
    fn labels(&mut self) -> Result<Vec<u32>> {
        Ok(self.labels.clone())
    }
    fn min_dist2(&mut self) -> Result<Vec<f64>> {
        Ok(self.dist2.clone())
    }
}

/// A host step with exact squared Euclidean distances: plain loops, the reference's assignment
/// and the fallback of backends for tiny problems.
pub struct ExactStep<'a> {
    data: &'a Matrix,
    labels: Vec<u32>,
    dist2: Vec<f64>,
}

impl<'a> ExactStep<'a> {
    pub fn new(data: &'a Matrix) -> Self {
        Self {
            data,
            labels: Vec::new(),
            dist2: Vec::new(),
        }
    }
}

impl LloydStep for ExactStep<'_> {
    fn dist2_to(&mut self, centre: &[f32]) -> Result<Vec<f64>> {
        Ok((0..self.data.rows())
            .map(|i| sq_dist_f64(self.data.row(i), centre))
            .collect())
    }
    fn assign(&mut self, centroids: &Matrix) -> Result<Assignment> {
        self.labels.clear();
        self.dist2.clear();
        for i in 0..self.data.rows() {
            let x = self.data.row(i);
            let (mut best, mut best_d) = (0usize, f64::INFINITY);
            for j in 0..centroids.rows() {
                let dd = sq_dist_f64(x, centroids.row(j));
                if dd < best_d {
                    (best, best_d) = (j, dd);
                }
            }
            self.labels.push(best as u32);
            self.dist2.push(best_d);
        }
        Ok(accumulate(
            self.data,
            &self.labels,
            &self.dist2,
            centroids.rows(),
        ))
    }
    fn labels(&mut self) -> Result<Vec<u32>> {
        Ok(self.labels.clone())
    }
    fn min_dist2(&mut self) -> Result<Vec<f64>> {
        Ok(self.dist2.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(k: usize) -> KMeansParams {
        KMeansParams {
            k,
            max_iter: 100,
            tol: 1e-4,
            seed: 0,
            metric: KMeansMetric::Euclidean,
            init: Init::KMeansPlusPlus,
        }
    }

    #[test]
    fn window_selects_dtw_and_aliases_work() {
        let p: Params =
            Params::from_map(serde_json::from_str(r#"{"w": 200, "iterations": 2}"#).unwrap());
        let kp = KMeansParams::from_params(&p).unwrap();
        assert_eq!(kp.metric, KMeansMetric::Dtw { window: Some(200) });
        assert_eq!(kp.max_iter, 2);
        let kp = KMeansParams::from_params(&Params::new()).unwrap();
        assert_eq!(kp.metric, KMeansMetric::Euclidean);
        assert_eq!((kp.k, kp.max_iter, kp.init), (2, 300, Init::KMeansPlusPlus));
    }

    #[test]
    fn validation_errors() {
        let data = Matrix::new(3, 2, vec![0.0f32, 0.0, 1.0, 1.0, 5.0, 5.0]).unwrap();
        assert!(validate(&data, None, &params(3)).is_ok());
        assert!(matches!(
            validate(&data, None, &params(4)),
            Err(KernelError::InvalidArgument(_))
        ));
        assert!(matches!(
            validate(&data, None, &params(0)),
            Err(KernelError::InvalidArgument(_))
        ));
        let bad_init = Matrix::new(2, 3, vec![0.0f32; 6]).unwrap();
        assert!(matches!(
            validate(&data, Some(&bad_init), &params(2)),
            Err(KernelError::InvalidInput(_))
        ));
        let nan = Matrix::new(2, 1, vec![0.0f32, f32::INFINITY]).unwrap();
        assert!(matches!(
            validate(&nan, None, &params(1)),
            Err(KernelError::InvalidInput(_))
        ));
        let p0 = KMeansParams {
            max_iter: 0,
            ..params(1)
        };
        assert!(validate(&data, None, &p0).is_err());
    }

    #[test]
    fn two_blobs_by_hand() {
        let data = Matrix::new(4, 1, vec![0.0f32, 1.0, 10.0, 11.0]).unwrap();
        let init = Matrix::new(2, 1, vec![0.0f32, 1.0]).unwrap();
        let out = lloyd(&data, Some(&init), &params(2), &mut ExactStep::new(&data)).unwrap();
        assert_eq!(out.centroids.data(), &[0.5, 10.5]);
        assert_eq!(out.labels.data(), &[0, 0, 1, 1]);
        assert!((out.inertia - 1.0).abs() < 1e-12);
        // Iteration 1 moves to [0, 7.33], 2 to [0.5, 10.5], 3 sees no change.
        assert_eq!(out.iterations, 3);
    }

    #[test]
    fn empty_cluster_takes_the_farthest_point() {
        // Both initial centroids are far left of the data: cluster 1 gets nothing at first.
        let data = Matrix::new(4, 1, vec![0.0f32, 1.0, 2.0, 9.0]).unwrap();
        let init = Matrix::new(2, 1, vec![-10.0f32, -20.0]).unwrap();
        let p = KMeansParams {
            max_iter: 1,
            ..params(2)
        };
        let out = lloyd(&data, Some(&init), &p, &mut ExactStep::new(&data)).unwrap();
        // Point 3 (farthest from centroid 0) re-seeds cluster 1 and leaves cluster 0.
        assert_eq!(out.centroids.data(), &[1.0, 9.0]);
        assert_eq!(out.labels.data(), &[0, 0, 0, 1]);
        assert_eq!(out.iterations, 1);
    }

    #[test]
    fn kmeans_plus_plus_is_seeded_and_distinct() {
        let data = Matrix::new(6, 1, vec![0.0f32, 0.1, 0.2, 100.0, 100.1, 100.2]).unwrap();
        let a = kmeans_plus_plus(&data, 2, 7, &mut ExactStep::new(&data)).unwrap();
        let b = kmeans_plus_plus(&data, 2, 7, &mut ExactStep::new(&data)).unwrap();
        assert_eq!(a, b);
        // The second centre is (almost surely) in the other blob.
        assert!((a.data()[0] - a.data()[1]).abs() > 50.0);
        // All points identical: still k distinct indices, no panic.
        let same = Matrix::new(3, 1, vec![1.0f32; 3]).unwrap();
        let c = kmeans_plus_plus(&same, 3, 1, &mut ExactStep::new(&same)).unwrap();
        assert_eq!(c.data(), &[1.0, 1.0, 1.0]);
        let r = random_init(&data, 6, 3).unwrap();
        let mut v = r.data().to_vec();
        v.sort_by(f32::total_cmp);
        assert_eq!(v, data.data());
    }

    #[test]
    fn centred_centroids_rank_as_the_distance() {
        // |x - c|^2 = |x - m|^2 + term - 2 x.c' for every centroid c.
        let c = Matrix::new(2, 2, vec![1.0f32, 2.0, -3.0, 0.5]).unwrap();
        let m = [1.0f32, 1.0];
        let (shifted, term) = centred_centroids(&c, &m);
        assert_eq!(shifted, vec![0.0, 1.0, -4.0, -0.5]);
        let x = [3.0f32, 5.0];
        let xm = sq_dist_f64(&x, &m);
        for j in 0..2 {
            let dot: f64 = x
                .iter()
                .zip(&shifted[j * 2..j * 2 + 2])
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum();
            let score = xm + f64::from(term[j]) - 2.0 * dot;
            assert!(
                (score - sq_dist_f64(&x, c.row(j))).abs() < 1e-9,
                "centroid {j}"
            );
        }
    }

    #[test]
    fn tolerance_stops_early() {
        let data = Matrix::new(4, 1, vec![0.0f32, 1.0, 10.0, 11.0]).unwrap();
        let init = Matrix::new(2, 1, vec![0.0f32, 1.0]).unwrap();
        let p = KMeansParams {
            tol: 1e9,
            ..params(2)
        };
        let out = lloyd(&data, Some(&init), &p, &mut ExactStep::new(&data)).unwrap();
        assert_eq!(out.iterations, 1);
        // Labels and inertia belong to the returned centroids [0, 7.33].
        assert_eq!(out.labels.data(), &[0, 0, 1, 1]);
    }
}

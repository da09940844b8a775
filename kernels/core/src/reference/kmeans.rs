//! Reference kmeans (see the module docs of `crate::kmeans`): the shared Lloyd driver over
//! plain-loop steps, exact `f64` squared Euclidean distances ([`ExactStep`]) or the plain DTW
//! below. The driver itself is checked against hand-worked cases in `crate::kmeans`.

use crate::kmeans::{DtwStep, ExactStep, KMeansMetric, KMeansOutput, KMeansParams, lloyd};
use crate::{KernelError, Matrix, Result};

pub fn kmeans(data: &Matrix, init: Option<&Matrix>, p: &KMeansParams) -> Result<KMeansOutput> {
    match p.metric {
        KMeansMetric::Euclidean => lloyd(data, init, p, &mut ExactStep::new(data)),
        KMeansMetric::Dtw { window } => lloyd(
            data,
            init,
            p,
            &mut DtwStep::new(data, |a: &Matrix, b: &Matrix| dtw_matrix(a, b, window)),
        ),
    }
}

/// DTW of two series: squared-difference cost, summed along the cheapest path that stays in
/// the band `|i - j| <= window` (None: anywhere), square root at the end. Infinite when the band
/// cannot reach the last cell (lengths differing by more than `window`) or a series is empty.
pub fn dtw_distance(a: &[f32], b: &[f32], window: Option<usize>) -> f64 {
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 {
        return f64::INFINITY;
    }
    let w = window.unwrap_or(usize::MAX);
    let mut prev = vec![f64::INFINITY; m + 1];
    let mut cur = vec![f64::INFINITY; m + 1];
    prev[0] = 0.0;
    for i in 1..=n {
        cur.fill(f64::INFINITY);
        let lo = if i > w { i - w } else { 1 };
        let hi = i.saturating_add(w).min(m);
        for j in lo..=hi {
            let t = f64::from(a[i - 1]) - f64::from(b[j - 1]);
            let best = prev[j - 1].min(prev[j]).min(cur[j - 1]);
            cur[j] = t * t + best;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[m].sqrt()
}

/// `a.rows() x b.rows()` DTW distances (the shape of the backends' `dtw`).
pub fn dtw_matrix(a: &Matrix, b: &Matrix, window: Option<usize>) -> Result<Matrix> {
    if a.cols() != b.cols() {
        return Err(KernelError::input(format!(
            "series lengths differ: {} and {}",
            a.cols(),
            b.cols()
        )));
    }
    let mut out = Vec::with_capacity(a.rows() * b.rows());
    for i in 0..a.rows() {
        for j in 0..b.rows() {
            out.push(dtw_distance(a.row(i), b.row(j), window) as f32);
        }
    }
    Matrix::new(a.rows(), b.rows(), out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmeans::Init;

    #[test]
    fn dtw_by_hand() {
        // A shifted step: warping aligns it exactly; a band of 0 is the Euclidean distance.
        let a = [0.0f32, 0.0, 1.0, 1.0];
        let b = [0.0f32, 1.0, 1.0, 1.0];
        assert_eq!(dtw_distance(&a, &b, None), 0.0);
        assert_eq!(dtw_distance(&a, &b, Some(1)), 0.0);
        assert_eq!(dtw_distance(&a, &b, Some(0)), 1.0);
        assert_eq!(dtw_distance(&[1.0, 2.0], &[4.0, 6.0], None), 5.0);
        assert_eq!(
            dtw_distance(&[1.0], &[1.0, 2.0, 3.0], Some(1)),
            f64::INFINITY
        );
    }

    #[test]
    fn dtw_kmeans_groups_shifted_shapes() {
        // Two shapes (an early and a late bump), each seen with small time shifts.
        let mut rows = Vec::new();
        for s in 0..3 {
            let mut early = vec![0.0f32; 12];
            early[2 + s] = 5.0;
            let mut late = vec![0.0f32; 12];
            late[8 + s] = -5.0;
            rows.push(early);
            rows.push(late);
        }
        let data = Matrix::new(6, 12, rows.concat()).unwrap();
        let p = KMeansParams {
            k: 2,
            max_iter: 10,
            tol: 0.0,
            seed: 3,
            metric: KMeansMetric::Dtw { window: Some(3) },
            init: Init::KMeansPlusPlus,
        };
        let out = kmeans(&data, None, &p).unwrap();
        let l = out.labels.data();
        assert_eq!(l[0], l[2]);
        assert_eq!(l[0], l[4]);
        assert_eq!(l[1], l[3]);
        assert_eq!(l[1], l[5]);
        assert_ne!(l[0], l[1]);
    }
}

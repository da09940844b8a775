//! Reference dtw (see the module docs of `crate::dtw`): the full `L1 x L2` table in `f64`.

use crate::dtw::DtwParams;
use crate::{Matrix, Result};

/// DTW distance of one pair with band half-width `band` (already widened, see
/// [`DtwParams::band`]); `f64` throughout. Empty series give `+inf`.
pub fn dtw_pair(x: &[f32], y: &[f32], band: usize) -> f64 {
    let (n, m) = (x.len(), y.len());
    if n == 0 || m == 0 {
        return f64::INFINITY;
    }
    let mut d = vec![f64::INFINITY; n * m];
    for i in 0..n {
        for j in 0..m {
            if i.abs_diff(j) > band {
                continue;
            }
            let diff = f64::from(x[i]) - f64::from(y[j]);
            let best = if i == 0 && j == 0 {
                0.0
            } else {
                let up = if i > 0 {
                    d[(i - 1) * m + j]
                } else {
                    f64::INFINITY
                };
                let left = if j > 0 {
                    d[i * m + j - 1]
                } else {
                    f64::INFINITY
                };
                let diag = if i > 0 && j > 0 {
                    d[(i - 1) * m + j - 1]
                } else {
                    f64::INFINITY
                };
                up.min(left).min(diag)
            };
            d[i * m + j] = diff * diff + best;
        }
    }
    d[n * m - 1].sqrt()
}

/// The `a.rows() x b.rows()` matrix of DTW distances, after [`DtwParams::validate`].
pub fn dtw(a: &Matrix, b: &Matrix, p: &DtwParams) -> Result<Matrix> {
    p.validate(a, b)?;
    let band = p.band(a.cols(), b.cols());
    let mut out = Vec::with_capacity(a.rows() * b.rows());
    for r in 0..a.rows() {
        for s in 0..b.rows() {
            out.push(dtw_pair(a.row(r), b.row(s), band) as f32);
        }
    }
    Matrix::new(a.rows(), b.rows(), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_pairs() {
        // x = [0, 1, 2], y = [0, 2]: best path (0,0),(1,0)|(1,1),(2,1) costs 0 + 1 + 0.
        assert!((dtw_pair(&[0.0, 1.0, 2.0], &[0.0, 2.0], 3) - 1.0).abs() < 1e-12);
        // Band 0 on equal lengths is the Euclidean distance.
        let e = dtw_pair(&[1.0, 2.0, 3.0], &[2.0, 4.0, 3.0], 0);
        assert!((e - 5f64.sqrt()).abs() < 1e-12);
        // A shifted copy warps onto itself without cost except at the ends.
        let d = dtw_pair(&[0.0, 0.0, 1.0, 2.0], &[0.0, 1.0, 2.0, 2.0], 4);
        assert!(d.abs() < 1e-12);
        assert_eq!(dtw_pair(&[4.0], &[1.0], 0), 3.0);
    }

    #[test]
    fn shape_follows_the_inputs() {
        let p = DtwParams { window: Some(1) };
        let a = Matrix::filled(3, 4, 1.0);
        let b = Matrix::filled(0, 4, 1.0);
        let out = dtw(&a, &b, &p).unwrap();
        assert_eq!((out.rows(), out.cols()), (3, 0));
        let out = dtw(&a, &Matrix::filled(2, 6, 1.0), &p).unwrap();
        assert_eq!((out.rows(), out.cols()), (3, 2));
        assert!(out.data().iter().all(|&v| v == 0.0));
    }
}

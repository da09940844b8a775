//! Reference Savitzky-Golay (see the module docs of `crate::savgol`): every output is the `f64`
//! dot product of its coefficients with its (extended) window, rounded once to `f32`.

use crate::savgol::{EdgeMode, SavgolParams, extend_index, plan};
use crate::{Matrix, Result};

pub fn savgol(signals: &Matrix, p: &SavgolParams) -> Result<Matrix> {
    let (rows, n) = (signals.rows(), signals.cols());
    let Some(c) = plan(signals, p)? else {
        return Matrix::new(rows, n, Vec::new());
    };
    let (w, half) = (c.window, c.half);
    let mut out = Vec::with_capacity(rows * n);
    for r in 0..rows {
        let x = signals.row(r);
        for i in 0..n {
            let v: f64 = if p.mode == EdgeMode::Interp && i < half {
                dot(c.left_row(i), &x[..w])
            } else if p.mode == EdgeMode::Interp && i >= n - half {
                dot(c.right_row(i - (n - half)), &x[n - w..])
            } else {
                c.center
                    .iter()
                    .enumerate()
                    .map(|(k, ck)| {
                        let j = i as i64 - half as i64 + k as i64;
                        let xj = extend_index(p.mode, j, n).map_or(0.0, |idx| f64::from(x[idx]));
                        ck * xj
                    })
                    .sum()
            };
            out.push(v as f32);
        }
    }
    Matrix::new(rows, n, out)
}

fn dot(c: &[f64], x: &[f32]) -> f64 {
    c.iter().zip(x).map(|(a, b)| a * f64::from(*b)).sum()
}

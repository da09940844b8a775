//! Reference FFT (see the module docs of `crate::fft`): the defining sums of the DFT in `f64`,
//! O(n²) per row, so meant for rows of up to a few thousand points.

use std::f64::consts::PI;

use crate::fft::{self, FftKind, FftParams};
use crate::{Matrix, Result};

/// Every row transformed on its own, with numpy.fft's lengths, norms and layout.
pub fn fft(signals: &Matrix, p: &FftParams) -> Result<Matrix> {
    let shape = fft::validate(signals, p)?;
    let n = shape.n;
    let mut out = Vec::with_capacity(signals.rows() * shape.out_cols);
    for r in 0..signals.rows() {
        let row = signals.row(r);
        // The transform's full complex input of length n, from the row.
        let mut x = vec![(0.0f64, 0.0f64); n];
        match (p.kind, p.inverse) {
            (FftKind::Real, false) => {
                for (xi, &v) in x.iter_mut().zip(&row[..shape.used]) {
                    *xi = (v as f64, 0.0);
                }
            }
            (FftKind::Real, true) => {
                // Hermitian extension of the half spectrum; DC and Nyquist are taken as real.
                for k in 0..shape.used {
                    let mut c = (row[2 * k] as f64, row[2 * k + 1] as f64);
                    if k == 0 || 2 * k == n {
                        c.1 = 0.0;
                    }
                    x[k] = c;
                    if k != 0 {
                        x[n - k] = (c.0, -c.1);
                    }
                }
            }
            (FftKind::Complex, _) => {
                for (k, xi) in x.iter_mut().enumerate().take(shape.used) {
                    *xi = (row[2 * k] as f64, row[2 * k + 1] as f64);
                }
            }
        }
        let y = dft(&x, p.inverse);
        match (p.kind, p.inverse) {
            (FftKind::Real, false) => {
                for c in &y[..shape.out_cols / 2] {
                    out.push((c.0 * shape.scale) as f32);
                    out.push((c.1 * shape.scale) as f32);
                }
            }
            (FftKind::Real, true) => out.extend(y.iter().map(|c| (c.0 * shape.scale) as f32)),
            (FftKind::Complex, _) => {
                for c in &y {
                    out.push((c.0 * shape.scale) as f32);
                    out.push((c.1 * shape.scale) as f32);
                }
            }
        }
    }
    Matrix::new(signals.rows(), shape.out_cols, out)
}

/// `y_k = Σ_j x_j e^{∓2πi jk/n}` (minus: forward), unscaled. The angle uses `jk mod n` so that it
/// stays accurate for large `jk`.
pub fn dft(x: &[(f64, f64)], inverse: bool) -> Vec<(f64, f64)> {
    let n = x.len();
    let sign = if inverse { 1.0 } else { -1.0 };
    (0..n)
        .map(|k| {
            let mut acc = (0.0, 0.0);
            for (j, &(re, im)) in x.iter().enumerate() {
                let angle = sign * 2.0 * PI * ((j * k) % n) as f64 / n as f64;
                let (s, c) = angle.sin_cos();
                acc.0 += re * c - im * s;
                acc.1 += re * s + im * c;
            }
            acc
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fft::FftNorm;

    #[test]
    fn rfft_of_a_known_signal() {
        // x = [1, 2, 3, 4]: X = [10, -2+2i, -2].
        let p = FftParams {
            kind: FftKind::Real,
            inverse: false,
            norm: FftNorm::Backward,
            n: None,
        };
        let out = fft(&Matrix::new(1, 4, vec![1.0, 2.0, 3.0, 4.0]).unwrap(), &p).unwrap();
        let expected = [10.0, 0.0, -2.0, 2.0, -2.0, 0.0];
        for (a, b) in out.data().iter().zip(expected) {
            assert!((a - b).abs() < 1e-5, "{:?}", out.data());
        }
        let p = FftParams {
            inverse: true,
            n: Some(4),
            ..p
        };
        let back = fft(&out, &p).unwrap();
        for (a, b) in back.data().iter().zip([1.0, 2.0, 3.0, 4.0]) {
            assert!((a - b).abs() < 1e-5, "{:?}", back.data());
        }
    }
}

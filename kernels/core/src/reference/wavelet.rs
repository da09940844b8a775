//! Reference wavelet transform (see the module docs of `crate::wavelet`): each level is the
//! defining sum with the extension written out index by index, in `f64`.

use crate::wavelet::{self, ExtensionMode, Filters, WaveletLayout, WaveletParams};
use crate::{Matrix, Result};

/// `wavedec` (or `waverec` when `p.inverse`) of every row.
pub fn wavelet(signals: &Matrix, p: &WaveletParams) -> Result<Matrix> {
    let layout = wavelet::validate(signals, p)?;
    let filters = p.wavelet.filters()?;
    let mut out = Vec::with_capacity(signals.rows() * layout.out_cols);
    for r in 0..signals.rows() {
        let row: Vec<f64> = signals.row(r).iter().map(|&v| v as f64).collect();
        let result = if p.inverse {
            waverec(&row, &layout, &filters, p.mode)
        } else {
            wavedec(&row, &layout, &filters, p.mode)
        };
        out.extend(result.into_iter().map(|v| v as f32));
    }
    Matrix::new(signals.rows(), layout.out_cols, out)
}

fn wavedec(x: &[f64], layout: &WaveletLayout, f: &Filters, mode: ExtensionMode) -> Vec<f64> {
    let mut approx = x.to_vec();
    let mut details = Vec::new();
    for _ in 0..layout.levels {
        let (a, d) = dwt(&approx, f, mode);
        details.push(d);
        approx = a;
    }
    let mut out = approx;
    for d in details.iter().rev() {
        out.extend_from_slice(d);
    }
    out
}

/// The extended signal at any integer index.
fn extended(x: &[f64], i: i64, mode: ExtensionMode) -> f64 {
    let n = x.len() as i64;
    match mode {
        ExtensionMode::Zero => {
            if (0..n).contains(&i) {
                x[i as usize]
            } else {
                0.0
            }
        }
        ExtensionMode::Symmetric => {
            // Half-sample mirror, period 2n.
            let m = i.rem_euclid(2 * n);
            let k = if m < n { m } else { 2 * n - 1 - m };
            x[k as usize]
        }
        ExtensionMode::Periodization => {
            // Periodic over the signal padded to even length with its last sample.
            let period = n + n % 2;
            let m = i.rem_euclid(period).min(n - 1);
            x[m as usize]
        }
    }
}

fn dwt(x: &[f64], f: &Filters, mode: ExtensionMode) -> (Vec<f64>, Vec<f64>) {
    let flen = f.dec_lo.len();
    let len = wavelet::dwt_len(x.len(), flen, mode);
    let shift = match mode {
        ExtensionMode::Periodization => (flen / 2) as i64,
        ExtensionMode::Symmetric | ExtensionMode::Zero => 1,
    };
    let mut a = vec![0.0; len];
    let mut d = vec![0.0; len];
    for o in 0..len {
        for j in 0..flen {
            let v = extended(x, 2 * o as i64 + shift - j as i64, mode);
            a[o] += f.dec_lo[j] * v;
            d[o] += f.dec_hi[j] * v;
        }
    }
    (a, d)
}

fn waverec(coeffs: &[f64], layout: &WaveletLayout, f: &Filters, mode: ExtensionMode) -> Vec<f64> {
    let levels = layout.levels;
    let mut approx = coeffs[..layout.lengths[0]].to_vec();
    let mut offset = layout.lengths[0];
    for level in (1..=levels).rev() {
        let len = layout.approx_lengths[level];
        let detail = &coeffs[offset..offset + len];
        offset += len;
        approx = idwt(&approx, detail, f, mode, layout.approx_lengths[level - 1]);
    }
    approx
}

/// One level of reconstruction, cut to `out_len`.
fn idwt(a: &[f64], d: &[f64], f: &Filters, mode: ExtensionMode, out_len: usize) -> Vec<f64> {
    let flen = f.rec_lo.len();
    let len = a.len();
    let mut out;
    match mode {
        ExtensionMode::Periodization => {
            // The transpose of the forward step (which is orthogonal on the padded signal).
            let period = 2 * len as i64;
            out = vec![0.0; 2 * len];
            let shift = (flen / 2) as i64;
            for o in 0..len {
                for j in 0..flen {
                    let t = (2 * o as i64 + shift - j as i64).rem_euclid(period) as usize;
                    out[t] += f.dec_lo[j] * a[o] + f.dec_hi[j] * d[o];
                }
            }
        }
        ExtensionMode::Symmetric | ExtensionMode::Zero => {
            // pywt's idwt: the fully overlapping part of the upsampled convolution.
            let half = flen / 2;
            out = vec![0.0; 2 * len + 2 - flen];
            for m in 0..=(len - half) {
                for k in 0..half {
                    let c = m + half - 1 - k;
                    out[2 * m] += f.rec_lo[2 * k] * a[c] + f.rec_hi[2 * k] * d[c];
                    out[2 * m + 1] += f.rec_lo[2 * k + 1] * a[c] + f.rec_hi[2 * k + 1] * d[c];
                }
            }
        }
    }
    out.truncate(out_len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wavelet::Wavelet;

    #[test]
    fn haar_of_a_known_signal() {
        // pywt.wavedec([1, 2, 3, 4], 'haar', level=1) = [[2.1213, 4.9497], [-0.7071, -0.7071]].
        let p = WaveletParams {
            wavelet: Wavelet::Haar,
            levels: Some(1),
            mode: ExtensionMode::Symmetric,
            inverse: false,
            n: None,
        };
        let out = wavelet(&Matrix::new(1, 4, vec![1.0, 2.0, 3.0, 4.0]).unwrap(), &p).unwrap();
        let s = std::f32::consts::FRAC_1_SQRT_2;
        let expected = [3.0 * s, 7.0 * s, -s, -s];
        for (a, b) in out.data().iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{:?}", out.data());
        }
    }

    #[test]
    fn db2_symmetric_follows_the_definition() {
        // cA[0] = Σ dec_lo[j] x̃[1 - j] with the mirror x̃ = [.., 2, 1 | 1, 2, ..].
        let p = WaveletParams {
            wavelet: Wavelet::Db(2),
            levels: Some(1),
            mode: ExtensionMode::Symmetric,
            inverse: false,
            n: None,
        };
        let x: Vec<f32> = (1..=8).map(|v| v as f32).collect();
        let out = wavelet(&Matrix::new(1, 8, x).unwrap(), &p).unwrap();
        let h = Wavelet::Db(2).dec_lo().unwrap();
        let ca0 = h[0] * 2.0 + h[1] * 1.0 + h[2] * 1.0 + h[3] * 2.0;
        assert_eq!(out.cols(), 10);
        assert!((out.data()[0] as f64 - ca0).abs() < 1e-6);
        // A linear ramp has zero interior details for db2 (two vanishing moments).
        for v in &out.data()[6..9] {
            assert!(v.abs() < 1e-5, "{:?}", out.data());
        }
        assert!(out.data()[5].abs() > 0.1);
    }

    #[test]
    fn round_trips_in_every_mode() {
        let x: Vec<f32> = (0..77).map(|i| ((i * 7919) % 101) as f32 / 10.0).collect();
        for mode in [
            ExtensionMode::Symmetric,
            ExtensionMode::Zero,
            ExtensionMode::Periodization,
        ] {
            for w in [Wavelet::Haar, Wavelet::Db(3), Wavelet::Db(10)] {
                let p = WaveletParams {
                    wavelet: w,
                    levels: None,
                    mode,
                    inverse: false,
                    n: None,
                };
                let c = wavelet(&Matrix::new(1, 77, x.clone()).unwrap(), &p).unwrap();
                let inv = WaveletParams {
                    inverse: true,
                    n: Some(77),
                    ..p
                };
                let back = wavelet(&c, &inv).unwrap();
                for (a, b) in back.data().iter().zip(&x) {
                    assert!((a - b).abs() < 1e-5, "{w:?} {mode:?}: {a} vs {b}");
                }
            }
        }
    }
}

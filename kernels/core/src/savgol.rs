//! Savitzky-Golay filter with the semantics of `scipy.signal.savgol_filter`, applied to **each row**
//! of the input (each row is one signal; the registry turns an `n x 1` column into one row).
//!
//! Parameters (see [`SavgolParams::from_params`]):
//! - `window` (aliases `window_length`, `w`; default 11): odd, greater than `polyorder`;
//! - `polyorder` (alias `order`; default 3): degree of the local least-squares polynomial;
//! - `deriv` (default 0, at most `polyorder`): order of the derivative to compute;
//! - `delta` (default 1.0, finite and positive): sample spacing, used when `deriv > 0`;
//! - `mode`: how the signal is extended at its ends, as in scipy:
//!   - `interp` (default): the first and last `window / 2` outputs are the values (or derivatives)
//!     of a polynomial of degree `polyorder` fitted to the first / last `window` samples; the
//!     signal must then hold at least `window` samples ([`KernelError::InvalidArgument`] otherwise);
//!   - `mirror` (`d c b | a b c d | c b a`), `nearest` (`a a | a b c d | d d`),
//!     `constant` (zeros), `wrap` (`c d | a b c d | a b`): convolution over the extended signal
//!     (`scipy.ndimage.convolve1d`), repeated as often as needed, so any length >= 1 works.
//!
//! The output has the shape of the input; rows with no samples give an empty output. Outputs are
//! plain arithmetic over their window: a NaN (or an infinity, through `0 * inf`) reaches every
//! output whose window (extended as the mode says; for `interp` edges, the whole edge window)
//! contains it.
//!
//! The coefficients are computed here once, in `f64`, for every backend: a least-squares fit on
//! Legendre polynomials of `t = (k - half) / half` (well conditioned for large windows), solved by
//! QR with re-orthogonalised Gram-Schmidt. Backends convert them to `f32`.

use crate::{KernelError, Matrix, Params, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeMode {
    Interp,
    Mirror,
    Nearest,
    Constant,
    Wrap,
}

impl EdgeMode {
    /// The code the GPU kernels use for this mode (`interp` 0 ... `wrap` 4).
    pub fn code(self) -> i32 {
        match self {
            EdgeMode::Interp => 0,
            EdgeMode::Mirror => 1,
            EdgeMode::Nearest => 2,
            EdgeMode::Constant => 3,
            EdgeMode::Wrap => 4,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SavgolParams {
    pub window: usize,
    pub polyorder: usize,
    pub deriv: usize,
    pub delta: f64,
    pub mode: EdgeMode,
}

/// The largest window accepted (coefficients are computed in `O(window * polyorder^2)`).
pub const MAX_WINDOW: usize = 1 << 20;

impl SavgolParams {
    pub fn from_params(p: &Params) -> Result<Self> {
        let params = Self {
            window: p.usize_or(&["window", "window_length", "w"], 11)?,
            polyorder: p.usize_or(&["polyorder", "order"], 3)?,
            deriv: p.usize_or(&["deriv"], 0)?,
            delta: p.f64_or(&["delta"], 1.0)?,
            mode: p.choice(
                &["edge_mode", "mode"],
                &[
                    ("interp", EdgeMode::Interp),
                    ("mirror", EdgeMode::Mirror),
                    ("nearest", EdgeMode::Nearest),
                    ("constant", EdgeMode::Constant),
                    ("wrap", EdgeMode::Wrap),
                ],
                EdgeMode::Interp,
            )?,
        };
        params.validate()?;
        Ok(params)
    }

    /// Checks the parameters on their own (not against a signal).
    pub fn validate(&self) -> Result<()> {
        if self.window.is_multiple_of(2) {
            return Err(KernelError::arg(format!(
                "window must be a positive odd number, got {}",
                self.window
            )));
        }
        if self.window > MAX_WINDOW {
            return Err(KernelError::arg(format!(
                "window must be at most {MAX_WINDOW}, got {}",
                self.window
            )));
        }
        if self.polyorder >= self.window {
            return Err(KernelError::arg(format!(
                "polyorder must be less than window ({}), got {}",
                self.window, self.polyorder
            )));
        }
        if self.deriv > self.polyorder {
            return Err(KernelError::arg(format!(
                "deriv must be at most polyorder ({}), got {}",
                self.polyorder, self.deriv
            )));
        }
        if !self.delta.is_finite() || self.delta <= 0.0 {
            return Err(KernelError::arg(format!(
                "delta must be finite and positive, got {}",
                self.delta
            )));
        }
        Ok(())
    }

    /// Checks the parameters against the signals: mode `interp` needs `window <= length` (scipy's
    /// rule) unless there is nothing to filter.
    pub fn validate_for(&self, signals: &Matrix) -> Result<()> {
        self.validate()?;
        let n = signals.cols();
        if self.mode == EdgeMode::Interp && signals.rows() > 0 && n > 0 && self.window > n {
            return Err(KernelError::arg(format!(
                "mode interp needs window ({}) <= signal length ({n}); use another mode for short signals",
                self.window
            )));
        }
        Ok(())
    }

    /// `window / 2`: outputs `half .. n - half` are interior (no extension needed).
    pub fn half(&self) -> usize {
        self.window / 2
    }
}

/// Index into a signal of length `n >= 1` of position `j` of its extension under `mode`; `None`
/// means the fill value 0 (`constant`; `interp` outside the signal, which callers never read).
pub fn extend_index(mode: EdgeMode, j: i64, n: usize) -> Option<usize> {
    let len = n as i64;
    if n == 0 {
        return None;
    }
    if (0..len).contains(&j) {
        return Some(j as usize);
    }
    match mode {
        EdgeMode::Interp | EdgeMode::Constant => None,
        EdgeMode::Nearest => Some(j.clamp(0, len - 1) as usize),
        EdgeMode::Wrap => Some(j.rem_euclid(len) as usize),
        EdgeMode::Mirror => {
            if n == 1 {
                return Some(0);
            }
            // Whole-sample symmetric extension: period 2(n-1).
            let period = 2 * (len - 1);
            let m = j.rem_euclid(period);
            Some(if m < len { m } else { period - m } as usize)
        }
    }
}

/// The coefficients of one filter: `center[k]` weighs `x[i - half + k]` for output `i`; with mode
/// `interp`, `left` (`half x window`, row-major) gives outputs `0 .. half` from `x[0 .. window]`
/// and `right` (`half x window`) gives outputs `n - half .. n` from `x[n - window .. n]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SavgolCoeffs {
    pub window: usize,
    pub half: usize,
    pub center: Vec<f64>,
    /// Empty unless the mode is `interp`.
    pub left: Vec<f64>,
    /// Empty unless the mode is `interp`.
    pub right: Vec<f64>,
}

impl SavgolCoeffs {
    /// Validates `p` and computes every coefficient the filter needs.
    pub fn new(p: &SavgolParams) -> Result<Self> {
        p.validate()?;
        let w = p.window;
        let half = p.half();
        let fit = Fit::new(w, p.polyorder)?;
        let center = fit.weights(half, p.deriv, p.delta);
        let (mut left, mut right) = (Vec::new(), Vec::new());
        if p.mode == EdgeMode::Interp {
            left.reserve(half * w);
            right.reserve(half * w);
            for e in 0..half {
                left.extend(fit.weights(e, p.deriv, p.delta));
                right.extend(fit.weights(w - half + e, p.deriv, p.delta));
            }
        }
        Ok(Self {
            window: w,
            half,
            center,
            left,
            right,
        })
    }

    /// Row `e` of the left edge matrix (output `e`).
    pub fn left_row(&self, e: usize) -> &[f64] {
        &self.left[e * self.window..(e + 1) * self.window]
    }
    /// Row `e` of the right edge matrix (output `n - half + e`).
    pub fn right_row(&self, e: usize) -> &[f64] {
        &self.right[e * self.window..(e + 1) * self.window]
    }
}

/// What every implementation does first: checks `p` against `signals` and computes the
/// coefficients; `None` when there is nothing to filter (no rows or no samples), where the output
/// is the empty matrix of the input's shape.
pub fn plan(signals: &Matrix, p: &SavgolParams) -> Result<Option<SavgolCoeffs>> {
    p.validate_for(signals)?;
    if signals.rows() == 0 || signals.cols() == 0 {
        return Ok(None);
    }
    SavgolCoeffs::new(p).map(Some)
}

/// Coefficients rounded to `f32` for a kernel. Device buffers cannot be empty, so an empty list
/// (the edge fits of modes other than `interp`) gives one 0, which no kernel reads.
pub fn coeffs_f32(v: &[f64]) -> Vec<f32> {
    if v.is_empty() {
        return vec![0.0];
    }
    v.iter().map(|&x| x as f32).collect()
}

/// The centred `window`-point least-squares fit of degree `polyorder`: an orthonormal basis `q`
/// (`(polyorder + 1) x window`) of the span of the Legendre polynomials on the points, and the
/// triangular `r` with `basis = r^T q`, so that the weights of the fitted polynomial's value (or
/// derivative) at a point are `q^T r^-T g`, `g` the basis (derivatives) at that point.
struct Fit {
    window: usize,
    half: usize,
    order: usize,
    q: Vec<Vec<f64>>,
    r: Vec<Vec<f64>>,
}

/// The scaled abscissa of window position `k`.
fn abscissa(k: usize, half: usize) -> f64 {
    if half == 0 {
        0.0
    } else {
        (k as f64 - half as f64) / half as f64
    }
}

/// Legendre polynomials `P_0 .. P_order` and their `deriv`-th derivatives at `t`
/// (`out[m] = P_m^(deriv)(t)`), by the three-term recurrence differentiated `deriv` times.
fn legendre_derivs(t: f64, order: usize, deriv: usize) -> Vec<f64> {
    // d[j][m] = P_m^(j)(t)
    let mut d = vec![vec![0.0f64; order + 1]; deriv + 1];
    for j in 0..=deriv {
        for m in 0..=order {
            d[j][m] = match m {
                0 => {
                    if j == 0 {
                        1.0
                    } else {
                        0.0
                    }
                }
                1 => match j {
                    0 => t,
                    1 => 1.0,
                    _ => 0.0,
                },
                _ => {
                    // (m) P_m = (2m-1) t P_{m-1} - (m-1) P_{m-2}, differentiated j times.
                    let mf = m as f64;
                    let lower = if j > 0 { d[j - 1][m - 1] } else { 0.0 };
                    ((2.0 * mf - 1.0) * (t * d[j][m - 1] + j as f64 * lower)
                        - (mf - 1.0) * d[j][m - 2])
                        / mf
                }
            };
        }
    }
    d.pop().unwrap_or_default()
}

impl Fit {
    fn new(window: usize, order: usize) -> Result<Self> {
        let half = window / 2;
        let mut q: Vec<Vec<f64>> = Vec::with_capacity(order + 1);
        let mut r = vec![vec![0.0f64; order + 1]; order + 1];
        let columns: Vec<Vec<f64>> = {
            let values: Vec<Vec<f64>> = (0..window)
                .map(|k| legendre_derivs(abscissa(k, half), order, 0))
                .collect();
            (0..=order)
                .map(|m| values.iter().map(|v| v[m]).collect())
                .collect()
        };
        for (m, col) in columns.into_iter().enumerate() {
            let mut v = col;
            // Gram-Schmidt twice: the second pass removes what rounding left of earlier directions.
            for _pass in 0..2 {
                for (i, qi) in q.iter().enumerate() {
                    let proj: f64 = qi.iter().zip(&v).map(|(a, b)| a * b).sum();
                    r[i][m] += proj;
                    for (vk, qk) in v.iter_mut().zip(qi) {
                        *vk -= proj * qk;
                    }
                }
            }
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm.partial_cmp(&1e-300) != Some(std::cmp::Ordering::Greater) {
                return Err(KernelError::arg(format!(
                    "polyorder {order} cannot be fitted on window {window}"
                )));
            }
            r[m][m] = norm;
            for vk in &mut v {
                *vk /= norm;
            }
            q.push(v);
        }
        Ok(Self {
            window,
            half,
            order,
            q,
            r,
        })
    }

    /// Weights over the window of the fitted polynomial's `deriv`-th derivative (per `delta`) at
    /// window position `pos`.
    fn weights(&self, pos: usize, deriv: usize, delta: f64) -> Vec<f64> {
        let g = legendre_derivs(abscissa(pos, self.half), self.order, deriv);
        // Solve r^T z = g (r upper triangular, so r^T is lower).
        let mut z = vec![0.0f64; self.order + 1];
        for m in 0..=self.order {
            let mut s = g[m];
            for (i, zi) in z.iter().enumerate().take(m) {
                s -= self.r[i][m] * zi;
            }
            z[m] = s / self.r[m][m];
        }
        // d/dx = (1 / (half * delta)) d/dt for x = delta * (k - half) = delta * half * t.
        let scale = if deriv == 0 {
            1.0
        } else {
            1.0 / (self.half as f64 * delta).powi(deriv as i32)
        };
        (0..self.window)
            .map(|k| {
                scale
                    * self
                        .q
                        .iter()
                        .zip(&z)
                        .map(|(qm, zm)| qm[k] * zm)
                        .sum::<f64>()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(window: usize, polyorder: usize, deriv: usize, mode: EdgeMode) -> SavgolParams {
        SavgolParams {
            window,
            polyorder,
            deriv,
            delta: 1.0,
            mode,
        }
    }

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn textbook_coefficients() {
        // scipy.signal.savgol_coeffs(5, 2, use="dot") = [-3, 12, 17, 12, -3] / 35
        let c = SavgolCoeffs::new(&params(5, 2, 0, EdgeMode::Mirror)).unwrap();
        let want: Vec<f64> = [-3.0, 12.0, 17.0, 12.0, -3.0]
            .iter()
            .map(|v| v / 35.0)
            .collect();
        close(&c.center, &want);
        // First derivative, quadratic fit: [-2, -1, 0, 1, 2] / 10 (per delta).
        let mut p = params(5, 2, 1, EdgeMode::Mirror);
        p.delta = 0.5;
        let c = SavgolCoeffs::new(&p).unwrap();
        let want: Vec<f64> = [-2.0, -1.0, 0.0, 1.0, 2.0]
            .iter()
            .map(|v| v / 10.0 / 0.5)
            .collect();
        close(&c.center, &want);
        // Window 1: identity.
        let c = SavgolCoeffs::new(&params(1, 0, 0, EdgeMode::Interp)).unwrap();
        close(&c.center, &[1.0]);
        assert!(c.left.is_empty());
    }

    #[test]
    fn edge_fits_reproduce_polynomials() {
        // A cubic is reproduced exactly by a cubic fit, at every position and for its derivative.
        let p = params(9, 3, 1, EdgeMode::Interp);
        let c = SavgolCoeffs::new(&p).unwrap();
        let f = |x: f64| 0.5 * x * x * x - 2.0 * x * x + x - 3.0;
        let df = |x: f64| 1.5 * x * x - 4.0 * x + 1.0;
        let xs: Vec<f64> = (0..9).map(|k| f(k as f64)).collect();
        for e in 0..4 {
            let v: f64 = c.left_row(e).iter().zip(&xs).map(|(a, b)| a * b).sum();
            assert!((v - df(e as f64)).abs() < 1e-9, "left {e}: {v}");
            let v: f64 = c.right_row(e).iter().zip(&xs).map(|(a, b)| a * b).sum();
            assert!((v - df((5 + e) as f64)).abs() < 1e-9, "right {e}: {v}");
        }
        let v: f64 = c.center.iter().zip(&xs).map(|(a, b)| a * b).sum();
        assert!((v - df(4.0)).abs() < 1e-9);
        assert_eq!(c.left.len(), 4 * 9);
    }

    #[test]
    fn large_windows_stay_accurate() {
        // Smoothing weights sum to 1 and reproduce a line, even for a long window and high order.
        let c = SavgolCoeffs::new(&params(1001, 12, 0, EdgeMode::Interp)).unwrap();
        let sum: f64 = c.center.iter().sum();
        assert!((sum - 1.0).abs() < 1e-10, "{sum}");
        let v: f64 = c
            .left_row(0)
            .iter()
            .enumerate()
            .map(|(k, w)| w * k as f64)
            .sum();
        assert!(v.abs() < 1e-8, "{v}");
    }

    #[test]
    fn bad_parameters_are_rejected() {
        for p in [
            params(4, 2, 0, EdgeMode::Interp),
            params(0, 0, 0, EdgeMode::Interp),
            params(5, 5, 0, EdgeMode::Interp),
            params(5, 2, 3, EdgeMode::Interp),
        ] {
            assert!(matches!(p.validate(), Err(KernelError::InvalidArgument(_))));
        }
        let mut p = params(5, 2, 1, EdgeMode::Interp);
        p.delta = 0.0;
        assert!(p.validate().is_err());
        let short = Matrix::new(1, 3, vec![1.0f32, 2.0, 3.0]).unwrap();
        assert!(matches!(
            params(5, 2, 0, EdgeMode::Interp).validate_for(&short),
            Err(KernelError::InvalidArgument(_))
        ));
        assert!(
            params(5, 2, 0, EdgeMode::Mirror)
                .validate_for(&short)
                .is_ok()
        );
        let p = Params::from_pairs(["w=7", "polyorder=2", "mode=wrap"]).unwrap();
        let sp = SavgolParams::from_params(&p).unwrap();
        assert_eq!((sp.window, sp.mode), (7, EdgeMode::Wrap));
        assert!(SavgolParams::from_params(&Params::from_pairs(["w=6"]).unwrap()).is_err());
    }

    #[test]
    fn extension_modes() {
        let ext = |mode, n: usize| -> Vec<Option<usize>> {
            (-5i64..9).map(|j| extend_index(mode, j, n)).collect()
        };
        let s = |v: &[usize]| v.iter().map(|&i| Some(i)).collect::<Vec<_>>();
        // n = 4: a b c d
        assert_eq!(
            ext(EdgeMode::Mirror, 4),
            s(&[1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2])
        );
        assert_eq!(
            ext(EdgeMode::Wrap, 4),
            s(&[3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0])
        );
        assert_eq!(
            ext(EdgeMode::Nearest, 4),
            s(&[0, 0, 0, 0, 0, 0, 1, 2, 3, 3, 3, 3, 3, 3])
        );
        assert_eq!(extend_index(EdgeMode::Constant, -1, 4), None);
        assert_eq!(extend_index(EdgeMode::Mirror, -3, 1), Some(0));
    }
}

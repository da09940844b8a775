//! Batched FFT with numpy.fft semantics in `f32`: one independent signal per row.
//!
//! | `kind`, `inverse` | numpy | input row | output row |
//! | --- | --- | --- | --- |
//! | real, false (default) | `rfft(x, n)` | `cols` reals | `n/2 + 1` complex |
//! | real, true | `irfft(X, n)` | `m = cols/2` complex | `n` reals, `n` default `2(m − 1)` |
//! | complex, false | `fft(X, n)` | `m = cols/2` complex | `n` complex |
//! | complex, true | `ifft(X, n)` | `m = cols/2` complex | `n` complex |
//!
//! - Complex values are interleaved `[re0, im0, re1, im1, ...]`, in and out, so a complex input
//!   needs an even number of columns ([`KernelError::InvalidInput`] otherwise).
//! - `n` is numpy's transform length: the input is cut or zero-padded to it (`n` complex
//!   points, or `n/2 + 1` of them for `irfft`); default the input length (`2(m − 1)` for
//!   `irfft`). Any length works, not only powers of two.
//! - `irfft` treats its input as the half spectrum of a real signal: the imaginary parts of the
//!   DC term and (for even `n`) of the Nyquist term are ignored, as numpy does.
//! - `norm`: `backward` (default) scales the inverse by `1/n`, `ortho` both directions by
//!   `1/√n`, `forward` the forward transform by `1/n`.
//! - A transform of length 0 gives empty rows, except `irfft`, whose `n` must be at least 1
//!   ([`KernelError::InvalidArgument`]; with the default `n` that needs `m ≥ 2`).
//! - NaN and ±Inf are not rejected: they spread through the transform as in IEEE arithmetic.

use crate::{KernelError, Matrix, Params, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FftKind {
    Real,
    Complex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FftNorm {
    Backward,
    Ortho,
    Forward,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FftParams {
    pub kind: FftKind,
    pub inverse: bool,
    pub norm: FftNorm,
    /// Transform length (numpy's `n`); for an inverse real FFT the output length (default `2 * (m - 1)`).
    pub n: Option<usize>,
}

/// What one call does to each row, derived from the parameters and the input width.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FftShape {
    /// Transform length (numpy's `n`).
    pub n: usize,
    /// Input values taken from each row: reals for `rfft`, complex values otherwise (the rest
    /// of the transform's input is zero).
    pub used: usize,
    /// Output columns (`f32` values).
    pub out_cols: usize,
    /// Factor applied to every output value.
    pub scale: f64,
}

/// The longest transform (2^28 points: 2 GiB of complex f32 per row), so that a request
/// cannot make the kernel allocate without bound.
pub const MAX_LEN: usize = 1 << 28;

impl FftParams {
    pub fn from_params(p: &Params) -> Result<Self> {
        Ok(Self {
            kind: p.choice(
                &["kind", "type"],
                &[("real", FftKind::Real), ("complex", FftKind::Complex)],
                FftKind::Real,
            )?,
            inverse: p.bool_or(&["inverse"], false)?,
            norm: p.choice(
                &["norm"],
                &[
                    ("backward", FftNorm::Backward),
                    ("ortho", FftNorm::Ortho),
                    ("forward", FftNorm::Forward),
                ],
                FftNorm::Backward,
            )?,
            n: match p.usize(&["n"])? {
                Some(n) if n > MAX_LEN => {
                    return Err(KernelError::arg(format!(
                        "n = {n} is above the largest transform length, {MAX_LEN}"
                    )));
                }
                n => n,
            },
        })
    }

    /// The factor of a transform of length `n` in this direction and norm.
    pub fn scale(&self, n: usize) -> f64 {
        if n == 0 {
            return 1.0;
        }
        match (self.norm, self.inverse) {
            (FftNorm::Ortho, _) => 1.0 / (n as f64).sqrt(),
            (FftNorm::Backward, true) | (FftNorm::Forward, false) => 1.0 / n as f64,
            (FftNorm::Backward, false) | (FftNorm::Forward, true) => 1.0,
        }
    }

    /// The shape of the transform of rows of `cols` values (see the module docs).
    pub fn shape(&self, cols: usize) -> Result<FftShape> {
        let complex_input = self.kind == FftKind::Complex || self.inverse;
        if complex_input && !cols.is_multiple_of(2) {
            return Err(KernelError::input(format!(
                "complex input is interleaved (re, im), so it needs an even number of columns, got {cols}"
            )));
        }
        let (n, used, out_cols) = match (self.kind, self.inverse) {
            (FftKind::Real, false) => {
                let n = self.n.unwrap_or(cols);
                let out = if n == 0 { 0 } else { 2 * (n / 2 + 1) };
                (n, cols.min(n), out)
            }
            (FftKind::Real, true) => {
                let m = cols / 2;
                let n = match self.n {
                    Some(n) => n,
                    None if m >= 2 => 2 * (m - 1),
                    None => {
                        return Err(KernelError::arg(format!(
                            "an inverse real FFT of {m} complex value(s) needs n >= 1 (default 2(m-1))"
                        )));
                    }
                };
                if n == 0 {
                    return Err(KernelError::arg(
                        "an inverse real FFT needs an output length n >= 1",
                    ));
                }
                (n, m.min(n / 2 + 1), n)
            }
            (FftKind::Complex, _) => {
                let m = cols / 2;
                let n = self.n.unwrap_or(m);
                (n, m.min(n), 2 * n)
            }
        };
        Ok(FftShape {
            n,
            used,
            out_cols,
            scale: self.scale(n),
        })
    }
}

/// Validates `p` against the input and returns the shape of the transform.
pub fn validate(signals: &Matrix, p: &FftParams) -> Result<FftShape> {
    p.shape(signals.cols())
}

/// Floating-point operations of one transform of length `n`, by the usual convention
/// (`5 n log2 n` complex, `2.5 n log2 n` real) used for GFLOP/s figures.
pub fn nominal_flops(n: usize, kind: FftKind) -> f64 {
    if n < 2 {
        return 0.0;
    }
    let c = 5.0 * n as f64 * (n as f64).log2();
    match kind {
        FftKind::Complex => c,
        FftKind::Real => c / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(kind: FftKind, inverse: bool, n: Option<usize>) -> FftParams {
        FftParams {
            kind,
            inverse,
            norm: FftNorm::Backward,
            n,
        }
    }

    #[test]
    fn shapes_follow_numpy() {
        let s = params(FftKind::Real, false, None).shape(7).unwrap();
        assert_eq!((s.n, s.used, s.out_cols, s.scale), (7, 7, 8, 1.0));
        let s = params(FftKind::Real, false, Some(4)).shape(7).unwrap();
        assert_eq!((s.n, s.used, s.out_cols), (4, 4, 6));
        let s = params(FftKind::Real, true, None).shape(10).unwrap();
        assert_eq!((s.n, s.used, s.out_cols, s.scale), (8, 5, 8, 0.125));
        let s = params(FftKind::Real, true, Some(3)).shape(10).unwrap();
        assert_eq!((s.n, s.used, s.out_cols), (3, 2, 3));
        let s = params(FftKind::Complex, true, Some(6)).shape(8).unwrap();
        assert_eq!((s.n, s.used, s.out_cols), (6, 4, 12));
        let s = params(FftKind::Real, false, None).shape(0).unwrap();
        assert_eq!(s.out_cols, 0);
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(matches!(
            params(FftKind::Complex, false, None).shape(3),
            Err(KernelError::InvalidInput(_))
        ));
        for (cols, n) in [(2, None), (0, None), (8, Some(0))] {
            assert!(matches!(
                params(FftKind::Real, true, n).shape(cols),
                Err(KernelError::InvalidArgument(_))
            ));
        }
    }

    #[test]
    fn norms() {
        let mut p = params(FftKind::Complex, false, None);
        p.norm = FftNorm::Ortho;
        assert_eq!(p.scale(4), 0.5);
        p.norm = FftNorm::Forward;
        assert_eq!(p.scale(4), 0.25);
        p.inverse = true;
        assert_eq!(p.scale(4), 1.0);
    }
}

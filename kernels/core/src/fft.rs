//! Batched FFT (numpy.fft semantics).

use crate::{Params, Result};

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
    /// Output length of an inverse real FFT (default `2 * (m - 1)`).
    pub n: Option<usize>,
}

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
            n: p.usize(&["n"])?,
        })
    }
}

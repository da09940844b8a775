//! Batched linear Kalman filters.

use crate::{Params, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KalmanModel {
    /// A constant level observed with noise (1 state, 1 measurement): the signal filter of the HPC kernel.
    Constant,
    /// Constant velocity in `dims` dimensions: state `[pos.., vel..]`, measured positions.
    ConstantVelocity { dims: usize },
}

#[derive(Debug, Clone, PartialEq)]
pub struct KalmanParams {
    pub model: KalmanModel,
    pub dt: f64,
    /// Process noise intensity.
    pub q: f64,
    /// Measurement noise variance (the HPC gateway's `r`).
    pub r: f64,
}

impl KalmanParams {
    pub fn from_params(p: &Params) -> Result<Self> {
        let dims = p.usize_or(&["dims"], 2)?;
        let model = p.choice(
            &["model"],
            &[("constant", 0usize), ("cv", 1), ("constant_velocity", 1)],
            1,
        )?;
        let model = if model == 0 {
            KalmanModel::Constant
        } else {
            KalmanModel::ConstantVelocity { dims }
        };
        Ok(Self {
            model,
            dt: p.f64_or(&["dt"], 1.0)?,
            q: p.f64_or(&["q"], 1.0)?,
            r: p.f64_or(&["r"], 10.0)?,
        })
    }
}

//! Batched linear Kalman filters: one independent track per row.
//!
//! # Layout
//! A row holds `T` steps of `m` measured components, interleaved step by step
//! (`x0, y0, x1, y1, ...` for a 2-D constant-velocity track), so `cols` must be a multiple of `m`.
//! The output row holds `T` filtered states of `s` components each, step by step.
//!
//! | model | `m` (measured) | `s` (state), output per step |
//! | --- | --- | --- |
//! | `constant` | 1 | 1: the filtered level |
//! | `cv`, `dims` = d (1..=3) | d | 2d: `[x, y, .., vx, vy, ..]` (positions, then velocities) |
//!
//! # Model
//! - `constant` (the HPC gateway's signal filter): `x_t = x_{t-1} + w`, `z_t = x_t + v`;
//!   `F = [1]`, `H = [1]`, `Q = q·dt`, `R = r`.
//! - `cv`: per axis, state `[p, v]`, `F = [[1, dt], [0, 1]]`, `H = [1, 0]`, discrete white-noise
//!   acceleration `Q = q·[[dt⁴/4, dt³/2], [dt³/2, dt²]]`, `R = r`; the axes share nothing, so the
//!   full matrices are block-diagonal (see [`KalmanParams::linear_model`]).
//!
//! # Steps
//! - Initialisation at the first step whose measurement is fully observed (no NaN component):
//!   state = that measurement with zero velocity, `P0 = diag(r for positions,
//!   VELOCITY_PRIOR_SCALE · r / dt² for velocities)`. Steps before it output NaN.
//! - Every later step predicts (`x = F x`, `P = F P Fᵀ + Q`), then updates with the measurement
//!   (`K = P Hᵀ (H P Hᵀ + R)⁻¹`, `x += K (z − H x)`, `P = (I − K H) P`); a step with any NaN
//!   component is a missing measurement and only predicts.
//! - ±Inf measurements are rejected ([`KernelError::InvalidInput`]): NaN is the only "missing".
//!
//! Errors ([`KernelError::InvalidArgument`]): `dims` outside 1..=3, `r ≤ 0`, `q < 0`, `dt ≤ 0`;
//! ([`KernelError::InvalidInput`]): `cols` not a multiple of `m`.

use crate::{KernelError, Matrix, Params, Result};

/// The velocity prior of the constant-velocity model, as a multiple of `r / dt²`: a velocity
/// measured from two positions `dt` apart has variance `2r/dt²`, so 1e4 times that scale is
/// effectively uninformative while keeping the covariance well scaled.
pub const VELOCITY_PRIOR_SCALE: f64 = 1e4;

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

/// The full matrices of a model (row-major `f64`), for generic filters such as the reference.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearModel {
    pub state_dim: usize,
    pub meas_dim: usize,
    /// `state_dim x state_dim` transition.
    pub f: Vec<f64>,
    /// `meas_dim x state_dim` observation.
    pub h: Vec<f64>,
    /// `state_dim x state_dim` process noise.
    pub q: Vec<f64>,
    /// `meas_dim x meas_dim` measurement noise.
    pub r: Vec<f64>,
    /// `state_dim x state_dim` initial covariance.
    pub p0: Vec<f64>,
}

/// The one 2x2 block (position, velocity) that every axis of the constant-velocity model shares;
/// symmetric matrices are stored as `[pp, pv, vv]`. Closed-form filters run one covariance
/// recursion with it and apply the gain to every axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AxisModel {
    pub dt: f64,
    pub q: [f64; 3],
    pub r: f64,
    pub p0: [f64; 3],
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
        let params = Self {
            model,
            dt: p.f64_or(&["dt"], 1.0)?,
            q: p.f64_or(&["q"], 1.0)?,
            r: p.f64_or(&["r"], 10.0)?,
        };
        params.validate()?;
        Ok(params)
    }

    /// Checks the model parameters (see the module docs for the rules).
    pub fn validate(&self) -> Result<()> {
        if let KalmanModel::ConstantVelocity { dims } = self.model
            && !(1..=3).contains(&dims)
        {
            return Err(KernelError::arg(format!(
                "dims must be 1, 2 or 3, got {dims}"
            )));
        }
        if !(self.r.is_finite() && self.r > 0.0) {
            return Err(KernelError::arg(format!("r must be > 0, got {}", self.r)));
        }
        if !(self.q.is_finite() && self.q >= 0.0) {
            return Err(KernelError::arg(format!("q must be >= 0, got {}", self.q)));
        }
        if !(self.dt.is_finite() && self.dt > 0.0) {
            return Err(KernelError::arg(format!("dt must be > 0, got {}", self.dt)));
        }
        Ok(())
    }

    /// Measured components per step.
    pub fn meas_dim(&self) -> usize {
        match self.model {
            KalmanModel::Constant => 1,
            KalmanModel::ConstantVelocity { dims } => dims,
        }
    }

    /// State components per step (the output columns per step).
    pub fn state_dim(&self) -> usize {
        match self.model {
            KalmanModel::Constant => 1,
            KalmanModel::ConstantVelocity { dims } => 2 * dims,
        }
    }

    /// The per-axis block of the constant-velocity model (also meaningful for any `dims`).
    pub fn axis_model(&self) -> AxisModel {
        let dt = self.dt;
        AxisModel {
            dt,
            q: [
                self.q * dt.powi(4) / 4.0,
                self.q * dt.powi(3) / 2.0,
                self.q * dt * dt,
            ],
            r: self.r,
            p0: [self.r, 0.0, VELOCITY_PRIOR_SCALE * self.r / (dt * dt)],
        }
    }

    /// The one block that closed-form filters (CPU, CUDA) run per axis: the constant-velocity
    /// block, or for the constant level a position without velocity, where `dt = 0` makes the
    /// prediction `x = x` and the level's process noise `q·dt` takes the position's place.
    pub fn closed_form_axis(&self) -> AxisModel {
        match self.model {
            KalmanModel::Constant => AxisModel {
                dt: 0.0,
                q: [self.q * self.dt, 0.0, 0.0],
                r: self.r,
                p0: [self.r, 0.0, 0.0],
            },
            KalmanModel::ConstantVelocity { .. } => self.axis_model(),
        }
    }

    /// The full `F, H, Q, R, P0` of the model.
    pub fn linear_model(&self) -> LinearModel {
        match self.model {
            KalmanModel::Constant => LinearModel {
                state_dim: 1,
                meas_dim: 1,
                f: vec![1.0],
                h: vec![1.0],
                q: vec![self.q * self.dt],
                r: vec![self.r],
                p0: vec![self.r],
            },
            KalmanModel::ConstantVelocity { dims } => {
                let s = 2 * dims;
                let a = self.axis_model();
                let mut model = LinearModel {
                    state_dim: s,
                    meas_dim: dims,
                    f: vec![0.0; s * s],
                    h: vec![0.0; dims * s],
                    q: vec![0.0; s * s],
                    r: vec![0.0; dims * dims],
                    p0: vec![0.0; s * s],
                };
                for d in 0..s {
                    model.f[d * s + d] = 1.0;
                }
                for axis in 0..dims {
                    let (p, v) = (axis, dims + axis);
                    model.f[p * s + v] = a.dt;
                    model.h[axis * s + p] = 1.0;
                    model.r[axis * dims + axis] = a.r;
                    for (m, block) in [(&mut model.q, a.q), (&mut model.p0, a.p0)] {
                        m[p * s + p] = block[0];
                        m[p * s + v] = block[1];
                        m[v * s + p] = block[1];
                        m[v * s + v] = block[2];
                    }
                }
                model
            }
        }
    }
}

/// Validates `p` and the shape of `tracks` (and rejects ±Inf); returns the number of steps `T`.
pub fn validate(tracks: &Matrix, p: &KalmanParams) -> Result<usize> {
    p.validate()?;
    let m = p.meas_dim();
    if !tracks.cols().is_multiple_of(m) {
        return Err(KernelError::input(format!(
            "a track row holds steps x {m} interleaved measurements, but has {} columns",
            tracks.cols()
        )));
    }
    if let Some(i) = tracks.data().iter().position(|v| v.is_infinite()) {
        let cols = tracks.cols().max(1);
        return Err(KernelError::input(format!(
            "measurement at row {}, column {} is infinite (use NaN for a missing value)",
            i / cols,
            i % cols
        )));
    }
    Ok(tracks.cols() / m)
}

/// Output shape for `tracks` of `cols` columns: `T x state_dim` values per row.
pub fn output_cols(cols: usize, p: &KalmanParams) -> usize {
    cols / p.meas_dim() * p.state_dim()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(model: KalmanModel, dt: f64, q: f64, r: f64) -> KalmanParams {
        KalmanParams { model, dt, q, r }
    }

    fn cv(dims: usize) -> KalmanModel {
        KalmanModel::ConstantVelocity { dims }
    }

    #[test]
    fn params_are_checked() {
        let ok = params(cv(2), 1.0, 0.0, 1.0);
        assert!(ok.validate().is_ok());
        for bad in [
            params(cv(4), 1.0, 0.0, 1.0),
            params(cv(0), 1.0, 0.0, 1.0),
            params(cv(2), 1.0, 0.0, 0.0),
            params(cv(2), 1.0, -1.0, 1.0),
            params(cv(2), 0.0, 0.0, 1.0),
        ] {
            assert!(matches!(
                bad.validate(),
                Err(KernelError::InvalidArgument(_))
            ));
        }
        let p = Params::from_pairs(["model=cv", "dims=5"]).unwrap();
        assert!(KalmanParams::from_params(&p).is_err());
        let p = Params::from_pairs(["model=constant"]).unwrap();
        let k = KalmanParams::from_params(&p).unwrap();
        assert_eq!((k.meas_dim(), k.state_dim(), k.r), (1, 1, 10.0));
    }

    #[test]
    fn cv_matrices_are_block_diagonal() {
        let p = params(cv(2), 2.0, 3.0, 5.0);
        let m = p.linear_model();
        assert_eq!((m.state_dim, m.meas_dim), (4, 2));
        // F: x += dt vx, y += dt vy.
        assert_eq!(m.f[2], 2.0);
        assert_eq!(m.f[4 + 3], 2.0);
        // Q of axis y: q dt^4/4, q dt^3/2, q dt^2.
        assert_eq!(m.q[4 + 1], 12.0);
        assert_eq!(m.q[4 + 3], 12.0);
        assert_eq!(m.q[3 * 4 + 3], 12.0);
        assert_eq!(m.q[1], 0.0);
        assert_eq!(m.h, vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
        assert_eq!(m.p0[0], 5.0);
        assert_eq!(m.p0[2 * 4 + 2], VELOCITY_PRIOR_SCALE * 5.0 / 4.0);
    }

    #[test]
    fn closed_form_axis_of_each_model() {
        let level = params(KalmanModel::Constant, 2.0, 3.0, 5.0);
        let a = level.closed_form_axis();
        assert_eq!(
            (a.dt, a.q, a.r, a.p0),
            (0.0, [6.0, 0.0, 0.0], 5.0, [5.0, 0.0, 0.0])
        );
        let velocity = params(cv(3), 2.0, 3.0, 5.0);
        assert_eq!(velocity.closed_form_axis(), velocity.axis_model());
    }

    #[test]
    fn shapes_are_checked() {
        let p = params(cv(3), 1.0, 1.0, 1.0);
        let m = Matrix::new(1, 7, vec![0.0; 7]).unwrap();
        assert!(matches!(
            validate(&m, &p),
            Err(KernelError::InvalidInput(_))
        ));
        let m = Matrix::new(1, 6, vec![0.0, 1.0, f32::NAN, 0.0, 0.0, 0.0]).unwrap();
        assert_eq!(validate(&m, &p).unwrap(), 2);
        assert_eq!(output_cols(6, &p), 12);
        let m = Matrix::new(1, 3, vec![0.0, f32::INFINITY, 0.0]).unwrap();
        assert!(matches!(
            validate(&m, &p),
            Err(KernelError::InvalidInput(_))
        ));
    }
}

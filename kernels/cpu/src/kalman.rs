//! CPU Kalman filters (see `serrano_kernel_core::kalman`), closed form, tracks over the rayon pool.
//!
//! The constant-velocity model's `F, H, Q, R, P0` are block-diagonal with one identical 2x2
//! block per axis, so `P` keeps that form and the 4x2 (or 2x1, 6x3) gain is one 2-vector
//! `[k_p, k_v]` shared by the axes: the full update is one 2x2 covariance recursion plus, per
//! axis, `x = x + dt·v; e = z − x; x += k_p·e; v += k_v·e`. The covariance depends only on which
//! steps were observed, so it is computed once per call for fully observed tracks (a gain
//! table); a track switches to its own recursion from its first missing step.

use rayon::prelude::*;
use serrano_kernel_core::kalman::{self, AxisModel, KalmanParams};
use serrano_kernel_core::{Matrix, Result};

pub fn kalman(tracks: &Matrix, p: &KalmanParams) -> Result<Matrix> {
    let steps = kalman::validate(tracks, p)?;
    let (m, s) = (p.meas_dim(), p.state_dim());
    let out_cols = steps * s;
    let mut out = vec![0.0f32; tracks.rows() * out_cols];
    if out.is_empty() {
        return Matrix::new(tracks.rows(), out_cols, out);
    }
    let axis = p.closed_form_axis();
    let table = gain_table(&axis, steps);
    // Enough tracks per task to amortise scheduling, few enough to balance two to many cores.
    let per_task = (16384 / out_cols).max(1);
    out.par_chunks_mut(out_cols * per_task)
        .enumerate()
        .for_each(|(chunk, block)| {
            for (i, orow) in block.chunks_exact_mut(out_cols).enumerate() {
                let row = tracks.row(chunk * per_task + i);
                match m {
                    1 => filter::<1>(row, orow, &axis, &table, s == 2),
                    2 => filter::<2>(row, orow, &axis, &table, true),
                    _ => filter::<3>(row, orow, &axis, &table, true),
                }
            }
        });
    Matrix::new(tracks.rows(), out_cols, out)
}

/// The symmetric 2x2 covariance `[pp, pv, vv]` of one axis.
#[derive(Debug, Clone, Copy)]
struct Cov([f64; 3]);

impl Cov {
    fn predict(self, a: &AxisModel) -> Self {
        let [pp, pv, vv] = self.0;
        let dt = a.dt;
        Cov([
            pp + dt * (2.0 * pv + dt * vv) + a.q[0],
            pv + dt * vv + a.q[1],
            vv + a.q[2],
        ])
    }

    /// The update with a measurement: the gain `[k_p, k_v]` and the new covariance `(I − K H) P`.
    fn update(self, a: &AxisModel) -> ([f64; 2], Self) {
        let [pp, pv, vv] = self.0;
        let s = pp + a.r;
        let (kp, kv) = (pp / s, pv / s);
        // pp (1 − k_p) written as pp·r/s so that it cannot cancel to a negative variance.
        let new = Cov([pp * a.r / s, pv * a.r / s, vv - kv * pv]);
        ([kp, kv], new)
    }
}

/// Per step of a track observed at every step from step 0: the gain used at that step and the
/// covariance after it.
struct GainTable {
    gains: Vec<[f64; 2]>,
    covs: Vec<Cov>,
}

fn gain_table(a: &AxisModel, steps: usize) -> GainTable {
    let mut gains = Vec::with_capacity(steps);
    let mut covs = Vec::with_capacity(steps);
    let mut cov = Cov(a.p0);
    gains.push([0.0, 0.0]);
    covs.push(cov);
    for _ in 1..steps {
        let (k, next) = cov.predict(a).update(a);
        cov = next;
        gains.push(k);
        covs.push(cov);
    }
    GainTable { gains, covs }
}

/// One track of `D` measured axes. `velocity`: the state has velocities (constant-velocity
/// model); without, `dt = 0` makes the prediction of the level model `x = x`.
fn filter<const D: usize>(
    row: &[f32],
    out: &mut [f32],
    a: &AxisModel,
    table: &GainTable,
    velocity: bool,
) {
    let s = if velocity { 2 * D } else { D };
    let steps = row.len() / D;
    let mut x = [0.0f64; D];
    let mut v = [0.0f64; D];
    // Start at the first fully observed step; earlier outputs are NaN.
    let Some(first) = (0..steps).find(|&t| row[t * D..(t + 1) * D].iter().all(|z| !z.is_nan()))
    else {
        out.fill(f32::NAN);
        return;
    };
    out[..first * s].fill(f32::NAN);
    for d in 0..D {
        x[d] = row[first * D + d] as f64;
    }
    store(&x, &v, &mut out[first * s..(first + 1) * s], velocity);
    // The shared table is this track's covariance while it has been observed at every step
    // since step 0; `own` takes over from the first step that breaks that.
    let mut own: Option<Cov> = if first == 0 { None } else { Some(Cov(a.p0)) };
    for t in first + 1..steps {
        let z = &row[t * D..(t + 1) * D];
        let observed = z.iter().all(|v| !v.is_nan());
        for d in 0..D {
            x[d] += a.dt * v[d];
        }
        let gain = match (own, observed) {
            (None, true) => Some(table.gains[t]),
            (None, false) => {
                own = Some(table.covs[t - 1].predict(a));
                None
            }
            (Some(cov), true) => {
                let (k, next) = cov.predict(a).update(a);
                own = Some(next);
                Some(k)
            }
            (Some(cov), false) => {
                own = Some(cov.predict(a));
                None
            }
        };
        if let Some([kp, kv]) = gain {
            for d in 0..D {
                let e = z[d] as f64 - x[d];
                x[d] += kp * e;
                v[d] += kv * e;
            }
        }
        store(&x, &v, &mut out[t * s..(t + 1) * s], velocity);
    }
}

fn store<const D: usize>(x: &[f64; D], v: &[f64; D], out: &mut [f32], velocity: bool) {
    for d in 0..D {
        out[d] = x[d] as f32;
    }
    if velocity {
        for d in 0..D {
            out[D + d] = v[d] as f32;
        }
    }
}

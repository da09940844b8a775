//! Reference Kalman filter (see the module docs of `crate::kalman`): the textbook matrix
//! equations on the full `F, H, Q, R, P0` of [`KalmanParams::linear_model`], in `f64`.

use crate::kalman::{self, KalmanParams, LinearModel};
use crate::{KernelError, Matrix, Result};

/// Filters every row of `tracks` on its own; output `rows x (T * state_dim)`.
pub fn kalman(tracks: &Matrix, p: &KalmanParams) -> Result<Matrix> {
    let steps = kalman::validate(tracks, p)?;
    let model = p.linear_model();
    let (s, m) = (model.state_dim, model.meas_dim);
    let mut out = Vec::with_capacity(tracks.rows() * steps * s);
    for r in 0..tracks.rows() {
        let row = tracks.row(r);
        let mut filter: Option<Filter> = None;
        for t in 0..steps {
            let z: Vec<f64> = row[t * m..(t + 1) * m].iter().map(|&v| v as f64).collect();
            let observed = z.iter().all(|v| !v.is_nan());
            match filter.as_mut() {
                None if observed => filter = Some(Filter::start(&model, &z)),
                None => {}
                Some(f) => {
                    f.predict(&model);
                    if observed {
                        f.update(&model, &z)?;
                    }
                }
            }
            match &filter {
                Some(f) => out.extend(f.x.iter().map(|&v| v as f32)),
                None => out.extend(std::iter::repeat_n(f32::NAN, s)),
            }
        }
    }
    Matrix::new(tracks.rows(), steps * s, out)
}

struct Filter {
    x: Vec<f64>,
    p: Vec<f64>,
}

impl Filter {
    /// Positions from the measurement (`Hᵀ z`), velocities zero, `P = P0`.
    fn start(model: &LinearModel, z: &[f64]) -> Self {
        let x = matvec_t(&model.h, model.meas_dim, model.state_dim, z);
        Self {
            x,
            p: model.p0.clone(),
        }
    }

    fn predict(&mut self, model: &LinearModel) {
        let s = model.state_dim;
        self.x = matvec(&model.f, s, s, &self.x);
        let fp = matmul(&model.f, &self.p, s, s, s);
        let mut p = matmul(&fp, &transpose(&model.f, s, s), s, s, s);
        for (pi, qi) in p.iter_mut().zip(&model.q) {
            *pi += qi;
        }
        self.p = p;
    }

    fn update(&mut self, model: &LinearModel, z: &[f64]) -> Result<()> {
        let (s, m) = (model.state_dim, model.meas_dim);
        let ht = transpose(&model.h, m, s);
        let pht = matmul(&self.p, &ht, s, s, m);
        let mut innovation_cov = matmul(&model.h, &pht, m, s, m);
        for (si, ri) in innovation_cov.iter_mut().zip(&model.r) {
            *si += ri;
        }
        let s_inv = invert(&innovation_cov, m)?;
        let gain = matmul(&pht, &s_inv, s, m, m);
        let hx = matvec(&model.h, m, s, &self.x);
        let innovation: Vec<f64> = z.iter().zip(&hx).map(|(a, b)| a - b).collect();
        let dx = matvec(&gain, s, m, &innovation);
        for (xi, d) in self.x.iter_mut().zip(dx) {
            *xi += d;
        }
        let mut i_kh = matmul(&gain, &model.h, s, m, s);
        for v in i_kh.iter_mut() {
            *v = -*v;
        }
        for d in 0..s {
            i_kh[d * s + d] += 1.0;
        }
        self.p = matmul(&i_kh, &self.p, s, s, s);
        Ok(())
    }
}

/// `a (n x k) * b (k x m)`.
fn matmul(a: &[f64], b: &[f64], n: usize, k: usize, m: usize) -> Vec<f64> {
    let mut c = vec![0.0; n * m];
    for i in 0..n {
        for j in 0..m {
            c[i * m + j] = (0..k).map(|l| a[i * k + l] * b[l * m + j]).sum();
        }
    }
    c
}

fn matvec(a: &[f64], n: usize, k: usize, x: &[f64]) -> Vec<f64> {
    (0..n)
        .map(|i| (0..k).map(|l| a[i * k + l] * x[l]).sum())
        .collect()
}

/// `aᵀ x` for `a` of `n x k`.
fn matvec_t(a: &[f64], n: usize, k: usize, x: &[f64]) -> Vec<f64> {
    (0..k)
        .map(|j| (0..n).map(|i| a[i * k + j] * x[i]).sum())
        .collect()
}

fn transpose(a: &[f64], n: usize, k: usize) -> Vec<f64> {
    let mut t = vec![0.0; n * k];
    for i in 0..n {
        for j in 0..k {
            t[j * n + i] = a[i * k + j];
        }
    }
    t
}

/// Gauss-Jordan inverse with partial pivoting (the innovation covariance is at most 3x3 and
/// positive definite, so a zero pivot means the parameters were not validated).
fn invert(a: &[f64], n: usize) -> Result<Vec<f64>> {
    let mut m = a.to_vec();
    let mut inv = vec![0.0; n * n];
    for d in 0..n {
        inv[d * n + d] = 1.0;
    }
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| m[i * n + col].abs().total_cmp(&m[j * n + col].abs()))
            .unwrap_or(col);
        if m[pivot * n + col] == 0.0 {
            return Err(KernelError::input("singular innovation covariance"));
        }
        for j in 0..n {
            m.swap(col * n + j, pivot * n + j);
            inv.swap(col * n + j, pivot * n + j);
        }
        let d = m[col * n + col];
        for j in 0..n {
            m[col * n + j] /= d;
            inv[col * n + j] /= d;
        }
        for i in 0..n {
            if i != col {
                let f = m[i * n + col];
                for j in 0..n {
                    m[i * n + j] -= f * m[col * n + j];
                    inv[i * n + j] -= f * inv[col * n + j];
                }
            }
        }
    }
    Ok(inv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kalman::KalmanModel;

    #[test]
    fn constant_level_matches_a_hand_computation() {
        // r = 1, q = 0: P0 = 1; step 1: P- = 1, K = 1/2, x = (z0 + z1)/2; P = 1/2;
        // step 2: K = (1/2)/(3/2) = 1/3: x = mean of three.
        let p = KalmanParams {
            model: KalmanModel::Constant,
            dt: 1.0,
            q: 0.0,
            r: 1.0,
        };
        let m = Matrix::new(1, 4, vec![1.0, 2.0, 6.0, f32::NAN]).unwrap();
        let out = kalman(&m, &p).unwrap();
        let expected = [1.0, 1.5, 3.0, 3.0];
        for (a, b) in out.data().iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn missing_first_steps_are_nan_and_cv_tracks_a_line() {
        let p = KalmanParams {
            model: KalmanModel::ConstantVelocity { dims: 1 },
            dt: 1.0,
            q: 1e-6,
            r: 1e-4,
        };
        let mut data = vec![f32::NAN];
        data.extend((0..40).map(|t| 2.0 * t as f32));
        let out = kalman(&Matrix::new(1, 41, data).unwrap(), &p).unwrap();
        assert!(out.data()[0].is_nan() && out.data()[1].is_nan());
        assert_eq!(out.data()[2], 0.0);
        let last = &out.data()[80..82];
        assert!(
            (last[0] - 78.0).abs() < 1e-2 && (last[1] - 2.0).abs() < 1e-3,
            "{last:?}"
        );
    }

    #[test]
    fn inverse_of_a_3x3() {
        let a = [4.0, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 2.0];
        let inv = invert(&a, 3).unwrap();
        let id = matmul(&a, &inv, 3, 3, 3);
        for i in 0..3 {
            for j in 0..3 {
                let e = if i == j { 1.0 } else { 0.0 };
                assert!((id[i * 3 + j] - e).abs() < 1e-12);
            }
        }
    }
}

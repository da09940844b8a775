#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CUDA Kalman filters against the reference on random tracks with missing steps (skipped
//! with the reason where there is no GPU). Tolerance as on the CPU: |gpu − ref| ≤ 1e-5 ·
//! (1 + |ref|) (double-precision state on the device), NaN exactly where the reference has it.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serrano_kernel_core::kalman::{KalmanModel, KalmanParams};
use serrano_kernel_core::{KernelBackend, KernelError, Matrix, reference};
use serrano_kernel_cuda::CudaBackend;

fn backend() -> Option<CudaBackend> {
    match CudaBackend::probe() {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("SKIPPED: {e}");
            None
        }
    }
}

#[test]
fn source_exports_the_kernels() {
    if !serrano_kernel_cuda::nvrtc_available() {
        eprintln!("SKIPPED: libnvrtc not found");
        return;
    }
    let ptx =
        serrano_kernel_cuda::compile("kalman", serrano_kernel_cuda::kalman::SOURCE, Some("sm_90"))
            .unwrap()
            .to_src();
    for name in ["kalman_transpose", "kalman_filter"] {
        assert!(ptx.contains(&format!(".entry {name}")), "{name} missing");
    }
}

fn tracks(rng: &mut StdRng, rows: usize, steps: usize, dims: usize, missing: f64) -> Matrix {
    let mut data = Vec::with_capacity(rows * steps * dims);
    for _ in 0..rows {
        let mut pos: Vec<f32> = (0..dims).map(|_| rng.random_range(-100.0..100.0)).collect();
        let vel: Vec<f32> = (0..dims).map(|_| rng.random_range(-3.0..3.0)).collect();
        for _ in 0..steps {
            let gone = rng.random_bool(missing);
            for d in 0..dims {
                pos[d] += vel[d];
                let z = pos[d] + rng.random_range(-2.0..2.0);
                data.push(if gone && rng.random_bool(0.7) {
                    f32::NAN
                } else {
                    z
                });
            }
        }
    }
    Matrix::new(rows, steps * dims, data).unwrap()
}

fn assert_close(got: &Matrix, want: &Matrix, what: &str) {
    assert_eq!(
        (got.rows(), got.cols()),
        (want.rows(), want.cols()),
        "{what}"
    );
    for (i, (&a, &b)) in got.data().iter().zip(want.data()).enumerate() {
        if b.is_nan() {
            assert!(a.is_nan(), "{what}: value {i} is {a}, reference NaN");
        } else {
            assert!(
                (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "{what}: value {i}: gpu {a}, ref {b}"
            );
        }
    }
}

#[test]
fn matches_the_reference() {
    let Some(gpu) = backend() else { return };
    let mut rng = StdRng::seed_from_u64(41);
    let models = [
        (KalmanModel::Constant, 1),
        (KalmanModel::ConstantVelocity { dims: 1 }, 1),
        (KalmanModel::ConstantVelocity { dims: 2 }, 2),
        (KalmanModel::ConstantVelocity { dims: 3 }, 3),
    ];
    for (model, dims) in models {
        for (rows, steps) in [(1, 1), (3, 2), (33, 17), (1000, 40), (70, 300)] {
            for (dt, q, r, missing) in [(1.0, 1.0, 10.0, 0.0), (0.1, 0.01, 2.0, 0.3)] {
                let m = tracks(&mut rng, rows, steps, dims, missing);
                let p = KalmanParams { model, dt, q, r };
                let want = reference::kalman::kalman(&m, &p).unwrap();
                let got = gpu.kalman(&m, &p).unwrap();
                assert_close(
                    &got,
                    &want,
                    &format!("{model:?} {rows}x{steps} missing={missing}"),
                );
            }
        }
    }
}

#[test]
fn edge_cases_and_errors() {
    let Some(gpu) = backend() else { return };
    let p = KalmanParams {
        model: KalmanModel::ConstantVelocity { dims: 2 },
        dt: 1.0,
        q: 1.0,
        r: 10.0,
    };
    let out = gpu.kalman(&Matrix::new(0, 4, vec![]).unwrap(), &p).unwrap();
    assert_eq!((out.rows(), out.cols()), (0, 8));
    let out = gpu.kalman(&Matrix::new(2, 0, vec![]).unwrap(), &p).unwrap();
    assert_eq!((out.rows(), out.cols()), (2, 0));
    let odd = Matrix::new(1, 3, vec![0.0; 3]).unwrap();
    assert!(matches!(
        gpu.kalman(&odd, &p),
        Err(KernelError::InvalidInput(_))
    ));
    let inf = Matrix::new(1, 2, vec![0.0, f32::INFINITY]).unwrap();
    assert!(matches!(
        gpu.kalman(&inf, &p),
        Err(KernelError::InvalidInput(_))
    ));
    let bad = KalmanParams { r: 0.0, ..p };
    assert!(matches!(
        gpu.kalman(&Matrix::new(1, 2, vec![0.0; 2]).unwrap(), &bad),
        Err(KernelError::InvalidArgument(_))
    ));
}

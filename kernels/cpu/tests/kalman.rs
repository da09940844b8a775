#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CPU Kalman filters against the reference (full matrix equations in f64) on random tracks
//! with missing steps, plus edge cases and errors. Tolerance: |cpu − ref| ≤ 1e-5 · (1 + |ref|)
//! (both filter in f64; only the order of operations differs), NaN exactly where the reference
//! has NaN.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serrano_kernel_core::kalman::{KalmanModel, KalmanParams};
use serrano_kernel_core::{KernelError, Matrix, reference};
use serrano_kernel_cpu::kalman::kalman;

fn params(model: KalmanModel, dt: f64, q: f64, r: f64) -> KalmanParams {
    KalmanParams { model, dt, q, r }
}

/// Random walks with noise, `missing` of the steps NaN (sometimes only one component).
fn tracks(rng: &mut StdRng, rows: usize, steps: usize, dims: usize, missing: f64) -> Matrix {
    let mut data = Vec::with_capacity(rows * steps * dims);
    for _ in 0..rows {
        let mut pos: Vec<f32> = (0..dims).map(|_| rng.random_range(-100.0..100.0)).collect();
        let vel: Vec<f32> = (0..dims).map(|_| rng.random_range(-3.0..3.0)).collect();
        for _ in 0..steps {
            let gone = rng.random_bool(missing);
            let one = rng.random_range(0..dims);
            for d in 0..dims {
                pos[d] += vel[d];
                let noisy = pos[d] + rng.random_range(-2.0..2.0);
                data.push(if gone && (d == one || rng.random_bool(0.5)) {
                    f32::NAN
                } else {
                    noisy
                });
            }
        }
    }
    Matrix::new(rows, steps * dims, data).unwrap()
}

fn assert_close(cpu: &Matrix, reference: &Matrix, what: &str) {
    assert_eq!(
        (cpu.rows(), cpu.cols()),
        (reference.rows(), reference.cols()),
        "{what}"
    );
    for (i, (&a, &b)) in cpu.data().iter().zip(reference.data()).enumerate() {
        if b.is_nan() {
            assert!(a.is_nan(), "{what}: value {i} is {a}, reference NaN");
        } else {
            assert!(
                (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "{what}: value {i}: cpu {a}, reference {b}"
            );
        }
    }
}

#[test]
fn matches_the_reference_on_random_tracks() {
    let mut rng = StdRng::seed_from_u64(11);
    let models = [
        (KalmanModel::Constant, 1),
        (KalmanModel::ConstantVelocity { dims: 1 }, 1),
        (KalmanModel::ConstantVelocity { dims: 2 }, 2),
        (KalmanModel::ConstantVelocity { dims: 3 }, 3),
    ];
    for (model, dims) in models {
        for (rows, steps) in [(1, 1), (1, 2), (5, 40), (33, 17), (2, 300)] {
            for (dt, q, r, missing) in [
                (1.0, 1.0, 10.0, 0.0),
                (0.1, 0.01, 2.0, 0.2),
                (2.5, 5.0, 0.5, 0.5),
            ] {
                let m = tracks(&mut rng, rows, steps, dims, missing);
                let p = params(model, dt, q, r);
                let want = reference::kalman::kalman(&m, &p).unwrap();
                let got = kalman(&m, &p).unwrap();
                assert_close(
                    &got,
                    &want,
                    &format!("{model:?} {rows}x{steps} dt={dt} missing={missing}"),
                );
            }
        }
    }
}

#[test]
fn many_tracks_go_through_the_parallel_path() {
    let mut rng = StdRng::seed_from_u64(12);
    let m = tracks(&mut rng, 3000, 20, 2, 0.05);
    let p = params(KalmanModel::ConstantVelocity { dims: 2 }, 1.0, 0.5, 4.0);
    assert_close(
        &kalman(&m, &p).unwrap(),
        &reference::kalman::kalman(&m, &p).unwrap(),
        "3000 tracks",
    );
}

#[test]
fn leading_missing_steps_are_nan_and_late_start_matches() {
    let p = params(KalmanModel::ConstantVelocity { dims: 2 }, 1.0, 0.1, 1.0);
    let data = vec![
        f32::NAN,
        1.0,
        2.0,
        f32::NAN,
        3.0,
        4.0,
        4.0,
        5.0,
        f32::NAN,
        f32::NAN,
        6.0,
        7.0,
    ];
    let m = Matrix::new(1, 12, data).unwrap();
    let got = kalman(&m, &p).unwrap();
    assert!(got.data()[..8].iter().all(|v| v.is_nan()));
    assert_eq!(&got.data()[8..12], &[3.0, 4.0, 0.0, 0.0]);
    assert_close(
        &got,
        &reference::kalman::kalman(&m, &p).unwrap(),
        "late start",
    );
    let all_nan = Matrix::new(2, 2, vec![f32::NAN; 4]).unwrap();
    let p1 = params(KalmanModel::Constant, 1.0, 1.0, 10.0);
    assert!(
        kalman(&all_nan, &p1)
            .unwrap()
            .data()
            .iter()
            .all(|v| v.is_nan())
    );
}

#[test]
fn a_clean_line_gives_its_velocity() {
    let p = params(KalmanModel::ConstantVelocity { dims: 2 }, 0.5, 1e-6, 1e-3);
    let data: Vec<f32> = (0..200)
        .flat_map(|t| [1.5 * t as f32, -0.5 * t as f32])
        .collect();
    let out = kalman(&Matrix::new(1, 400, data).unwrap(), &p).unwrap();
    let last = &out.data()[199 * 4..200 * 4];
    assert!((last[0] - 298.5).abs() < 1e-2, "{last:?}");
    assert!(
        (last[2] - 3.0).abs() < 1e-3 && (last[3] + 1.0).abs() < 1e-3,
        "{last:?}"
    );
}

#[test]
fn empty_and_single_inputs() {
    let p = params(KalmanModel::ConstantVelocity { dims: 2 }, 1.0, 1.0, 10.0);
    let out = kalman(&Matrix::new(0, 4, vec![]).unwrap(), &p).unwrap();
    assert_eq!((out.rows(), out.cols()), (0, 8));
    let out = kalman(&Matrix::new(3, 0, vec![]).unwrap(), &p).unwrap();
    assert_eq!((out.rows(), out.cols()), (3, 0));
    let c = params(KalmanModel::Constant, 1.0, 1.0, 10.0);
    let out = kalman(&Matrix::new(1, 1, vec![4.5]).unwrap(), &c).unwrap();
    assert_eq!(out.data(), &[4.5]);
}

#[test]
fn bad_arguments_are_errors() {
    let m = Matrix::new(1, 6, vec![0.0; 6]).unwrap();
    let cv = |dims| KalmanModel::ConstantVelocity { dims };
    for p in [
        params(cv(0), 1.0, 1.0, 1.0),
        params(cv(4), 1.0, 1.0, 1.0),
        params(cv(2), 1.0, 1.0, 0.0),
        params(cv(2), 1.0, -1.0, 1.0),
        params(cv(2), 0.0, 1.0, 1.0),
        params(cv(2), f64::NAN, 1.0, 1.0),
    ] {
        assert!(
            matches!(kalman(&m, &p), Err(KernelError::InvalidArgument(_))),
            "{p:?}"
        );
    }
    let odd = Matrix::new(1, 5, vec![0.0; 5]).unwrap();
    assert!(matches!(
        kalman(&odd, &params(cv(2), 1.0, 1.0, 1.0)),
        Err(KernelError::InvalidInput(_))
    ));
    let inf = Matrix::new(1, 2, vec![0.0, f32::INFINITY]).unwrap();
    assert!(matches!(
        kalman(&inf, &params(cv(2), 1.0, 1.0, 1.0)),
        Err(KernelError::InvalidInput(_))
    ));
}

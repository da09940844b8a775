//! Conformance checks of kalman (see the module docs of `crate::conformance`).
//!
//! Tolerance: `|got − ref| ≤ 1e-5 · tol · (1 + |ref|)` against the reference (the full matrix
//! equations in f64; backends run the closed-form per-axis recursion, also in f64, so only the
//! order of operations differs), NaN exactly where the reference has NaN.

use super::{
    Check, Rng, assert_close, checks_of, expect_invalid_argument, expect_invalid_input, matrix, ok,
};
use crate::kalman::{KalmanModel, KalmanParams};
use crate::{KernelBackend, KernelName, Matrix, reference};

pub fn checks() -> Vec<Check> {
    checks_of(
        KernelName::Kalman,
        &[
            ("random tracks with missing steps", random_tracks),
            ("many tracks", many_tracks),
            ("leading missing steps", leading_missing_steps),
            ("a clean line gives its velocity", clean_line),
            ("empty and single inputs", empty_and_single),
            ("bad arguments", bad_arguments),
        ],
    )
}

const REL: f32 = 1e-5;

fn params(model: KalmanModel, dt: f64, q: f64, r: f64) -> KalmanParams {
    KalmanParams { model, dt, q, r }
}

fn cv(dims: usize) -> KalmanModel {
    KalmanModel::ConstantVelocity { dims }
}

/// Noisy constant-velocity walks; a step is missing with probability `missing`, and then
/// one or more of its components are NaN (a partly observed step is missing as a whole).
fn tracks(rng: &mut Rng, rows: usize, steps: usize, dims: usize, missing: f32) -> Matrix {
    let mut data = Vec::with_capacity(rows * steps * dims);
    for _ in 0..rows {
        let mut pos: Vec<f32> = (0..dims).map(|_| rng.f32(-100.0, 100.0)).collect();
        let vel: Vec<f32> = (0..dims).map(|_| rng.f32(-3.0, 3.0)).collect();
        for _ in 0..steps {
            let gone = rng.f32(0.0, 1.0) < missing;
            let one = rng.below(dims);
            for d in 0..dims {
                pos[d] += vel[d];
                let noisy = pos[d] + rng.f32(-2.0, 2.0);
                let drop = gone && (d == one || rng.f32(0.0, 1.0) < 0.5);
                data.push(if drop { f32::NAN } else { noisy });
            }
        }
    }
    matrix(rows, steps * dims, data)
}

fn compare(b: &dyn KernelBackend, tol: f32, m: &Matrix, p: &KalmanParams, what: &str) {
    let want = ok(what, reference::kalman::kalman(m, p));
    let got = ok(what, b.kalman(m, p));
    assert_close(what, &got, &want, REL * tol, REL * tol);
}

fn random_tracks(b: &dyn KernelBackend, tol: f32) {
    let mut rng = Rng::new(11);
    let models = [
        (KalmanModel::Constant, 1),
        (cv(1), 1),
        (cv(2), 2),
        (cv(3), 3),
    ];
    for (model, dims) in models {
        for (rows, steps) in [(1, 1), (1, 2), (5, 40), (33, 17), (2, 300)] {
            for (dt, q, r, missing) in [
                (1.0, 1.0, 10.0, 0.0),
                (0.1, 0.01, 2.0, 0.2),
                (2.5, 5.0, 0.5, 0.5),
            ] {
                let m = tracks(&mut rng, rows, steps, dims, missing);
                let what = format!("kalman {model:?} {rows}x{steps} dt={dt} missing={missing}");
                compare(b, tol, &m, &params(model, dt, q, r), &what);
            }
        }
    }
}

/// More tracks than a CPU task or a GPU block holds.
fn many_tracks(b: &dyn KernelBackend, tol: f32) {
    let mut rng = Rng::new(12);
    let m = tracks(&mut rng, 3000, 20, 2, 0.05);
    let p = params(cv(2), 1.0, 0.5, 4.0);
    compare(b, tol, &m, &p, "kalman 3000 tracks x 20 steps");
}

fn leading_missing_steps(b: &dyn KernelBackend, tol: f32) {
    let p = params(cv(2), 1.0, 0.1, 1.0);
    let nan = f32::NAN;
    let data = vec![nan, 1.0, 2.0, nan, 3.0, 4.0, 4.0, 5.0, nan, nan, 6.0, 7.0];
    let m = matrix(1, 12, data);
    let got = ok("kalman late start", b.kalman(&m, &p));
    assert!(
        got.data()[..8].iter().all(|v| v.is_nan()),
        "kalman late start: steps before the first full measurement must be NaN: {:?}",
        got.data()
    );
    assert_eq!(
        &got.data()[8..12],
        &[3.0, 4.0, 0.0, 0.0],
        "kalman late start: the first full measurement with zero velocity"
    );
    compare(b, tol, &m, &p, "kalman late start");
    let all_nan = Matrix::filled(2, 2, f32::NAN);
    let level = params(KalmanModel::Constant, 1.0, 1.0, 10.0);
    let out = ok("kalman all NaN", b.kalman(&all_nan, &level));
    assert!(
        out.data().iter().all(|v| v.is_nan()),
        "kalman all NaN: {:?}",
        out.data()
    );
}

fn clean_line(b: &dyn KernelBackend, tol: f32) {
    let p = params(cv(2), 0.5, 1e-6, 1e-3);
    let data: Vec<f32> = (0..200)
        .flat_map(|t| [1.5 * t as f32, -0.5 * t as f32])
        .collect();
    let m = matrix(1, 400, data);
    let out = ok("kalman clean line", b.kalman(&m, &p));
    let last = &out.data()[199 * 4..200 * 4];
    // x = 1.5 · 199, vx = 1.5 / dt, vy = −0.5 / dt.
    assert!(
        (last[0] - 298.5).abs() < 1e-2 * tol,
        "kalman clean line: {last:?}"
    );
    assert!(
        (last[2] - 3.0).abs() < 1e-3 * tol && (last[3] + 1.0).abs() < 1e-3 * tol,
        "kalman clean line: {last:?}"
    );
}

fn empty_and_single(b: &dyn KernelBackend, _tol: f32) {
    let p = params(cv(2), 1.0, 1.0, 10.0);
    let out = ok("kalman no rows", b.kalman(&Matrix::filled(0, 4, 0.0), &p));
    assert_eq!((out.rows(), out.cols()), (0, 8), "kalman no rows");
    let out = ok("kalman no steps", b.kalman(&Matrix::filled(3, 0, 0.0), &p));
    assert_eq!((out.rows(), out.cols()), (3, 0), "kalman no steps");
    let level = params(KalmanModel::Constant, 1.0, 1.0, 10.0);
    let out = ok(
        "kalman one value",
        b.kalman(&Matrix::filled(1, 1, 4.5), &level),
    );
    assert_eq!(out.data(), &[4.5], "kalman one value");
}

fn bad_arguments(b: &dyn KernelBackend, _tol: f32) {
    let m = Matrix::filled(1, 6, 0.0);
    for p in [
        params(cv(0), 1.0, 1.0, 1.0),
        params(cv(4), 1.0, 1.0, 1.0),
        params(cv(2), 1.0, 1.0, 0.0),
        params(cv(2), 1.0, -1.0, 1.0),
        params(cv(2), 0.0, 1.0, 1.0),
        params(cv(2), f64::NAN, 1.0, 1.0),
    ] {
        expect_invalid_argument(&format!("kalman {p:?}"), b.kalman(&m, &p));
    }
    let p = params(cv(2), 1.0, 1.0, 1.0);
    expect_invalid_input(
        "kalman 5 columns for 2 dims",
        b.kalman(&Matrix::filled(1, 5, 0.0), &p),
    );
    let inf = matrix(1, 2, vec![0.0, f32::INFINITY]);
    expect_invalid_input("kalman infinite measurement", b.kalman(&inf, &p));
}

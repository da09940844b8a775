#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CUDA Savitzky-Golay against the `f64` reference. Skipped, with the reason printed, where
//! `CudaBackend::probe()` fails (no driver or no GPU).
//!
//! Tolerance: `|gpu - reference| <= 4 * window * f32::EPSILON * max|c| * max|x|` per output
//! (`max|x|` over the row, `max|c|` over every coefficient); NaN exactly where the reference has it.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serrano_kernel_core::savgol::{EdgeMode, SavgolCoeffs, SavgolParams};
use serrano_kernel_core::{KernelBackend, KernelError, Matrix, reference};
use serrano_kernel_cuda::CudaBackend;

const MODES: [EdgeMode; 5] = [
    EdgeMode::Interp,
    EdgeMode::Mirror,
    EdgeMode::Nearest,
    EdgeMode::Constant,
    EdgeMode::Wrap,
];

fn backend() -> Option<CudaBackend> {
    match CudaBackend::probe() {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("SKIPPED: no usable GPU: {e}");
            None
        }
    }
}

fn params(window: usize, polyorder: usize, deriv: usize, mode: EdgeMode) -> SavgolParams {
    SavgolParams {
        window,
        polyorder,
        deriv,
        delta: 0.5,
        mode,
    }
}

fn random(rows: usize, cols: usize, seed: u64) -> Matrix {
    let mut rng = StdRng::seed_from_u64(seed);
    let data = (0..rows * cols)
        .map(|_| rng.random_range(-10.0f32..10.0))
        .collect();
    Matrix::new(rows, cols, data).unwrap()
}

fn check(b: &CudaBackend, x: &Matrix, p: &SavgolParams) {
    let want = reference::savgol::savgol(x, p).unwrap();
    let got = b.savgol(x, p).unwrap();
    assert_eq!((got.rows(), got.cols()), (x.rows(), x.cols()));
    let c = SavgolCoeffs::new(p).unwrap();
    let cmax = c
        .center
        .iter()
        .chain(&c.left)
        .chain(&c.right)
        .fold(0.0f64, |m, v| m.max(v.abs()));
    for r in 0..x.rows() {
        let xmax = x.row(r).iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
        let tol = 4.0 * p.window as f64 * f32::EPSILON as f64 * cmax * xmax + 1e-30;
        for (i, (g, w)) in got.row(r).iter().zip(want.row(r)).enumerate() {
            if w.is_nan() {
                assert!(g.is_nan(), "{p:?} row {r} col {i}: {g} vs NaN");
                continue;
            }
            let err = (*g as f64 - *w as f64).abs();
            assert!(
                err <= tol,
                "{p:?} row {r} col {i}: {g} vs {w} (tol {tol:e})"
            );
        }
    }
}

#[test]
fn random_signals_every_mode_match_reference() {
    let Some(b) = backend() else { return };
    let shapes = [(1, 1), (1, 7), (3, 50), (4, 1500), (2, 70_001), (300, 64)];
    let filters = [(1, 0, 0), (5, 2, 0), (11, 3, 1), (31, 3, 0), (101, 5, 2)];
    for (s, &(rows, cols)) in shapes.iter().enumerate() {
        let x = random(rows, cols, s as u64);
        for &(w, po, d) in &filters {
            for mode in MODES {
                if mode == EdgeMode::Interp && w > cols {
                    continue;
                }
                check(&b, &x, &params(w, po, d, mode));
            }
        }
    }
    // A window beyond the constant-memory buffer takes the direct kernel.
    let x = random(1, 8200, 77);
    for mode in [EdgeMode::Interp, EdgeMode::Wrap] {
        check(&b, &x, &params(4097, 2, 0, mode));
    }
}

#[test]
fn edge_cases() {
    let Some(b) = backend() else { return };
    for (r, c) in [(0, 0), (0, 7), (3, 0)] {
        let x = Matrix::new(r, c, Vec::new()).unwrap();
        let y = b.savgol(&x, &params(5, 2, 0, EdgeMode::Interp)).unwrap();
        assert_eq!((y.rows(), y.cols()), (r, c));
    }
    let one = Matrix::new(1, 1, vec![4.0]).unwrap();
    assert!(matches!(
        b.savgol(&one, &params(5, 2, 0, EdgeMode::Interp)),
        Err(KernelError::InvalidArgument(_))
    ));
    for mode in &MODES[1..] {
        check(&b, &one, &params(5, 2, 0, *mode));
        check(&b, &random(2, 9, 3), &params(31, 3, 1, *mode));
    }
    assert!(matches!(
        b.savgol(&one, &params(4, 2, 0, EdgeMode::Mirror)),
        Err(KernelError::InvalidArgument(_))
    ));
    let mut x = random(2, 200, 9);
    x.data_mut()[3] = f32::NAN;
    x.data_mut()[300] = f32::NAN;
    for mode in MODES {
        check(&b, &x, &params(7, 2, 0, mode));
    }
}

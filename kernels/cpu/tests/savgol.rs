#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CPU Savitzky-Golay against the `f64` reference and against values printed by
//! `scipy.signal.savgol_filter` (scipy 1.17.1).
//!
//! Tolerance: `|cpu - reference| <= 4 * window * f32::EPSILON * max|c| * max|x|`, per output, with
//! `max|x|` over the row and `max|c|` over every coefficient (a bound of `f32` summation error);
//! NaN must sit exactly where the reference has NaN.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serrano_kernel_core::savgol::{EdgeMode, SavgolCoeffs, SavgolParams};
use serrano_kernel_core::{KernelError, Matrix, reference};
use serrano_kernel_cpu::savgol::savgol;

const MODES: [EdgeMode; 5] = [
    EdgeMode::Interp,
    EdgeMode::Mirror,
    EdgeMode::Nearest,
    EdgeMode::Constant,
    EdgeMode::Wrap,
];

fn params(
    window: usize,
    polyorder: usize,
    deriv: usize,
    delta: f64,
    mode: EdgeMode,
) -> SavgolParams {
    SavgolParams {
        window,
        polyorder,
        deriv,
        delta,
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

fn check(x: &Matrix, p: &SavgolParams) {
    let want = reference::savgol::savgol(x, p).unwrap();
    let got = savgol(x, p).unwrap();
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
                "{p:?} shape {}x{} row {r} col {i}: {g} vs {w} (err {err:e}, tol {tol:e})",
                x.rows(),
                x.cols()
            );
        }
    }
}

#[test]
fn random_signals_every_mode_match_reference() {
    let shapes = [(1, 1), (1, 2), (1, 7), (3, 50), (4, 333), (2, 70_001)];
    let filters = [
        (1, 0, 0),
        (5, 2, 0),
        (5, 2, 1),
        (11, 3, 0),
        (31, 3, 0),
        (31, 4, 2),
        (101, 5, 1),
    ];
    for (seed, &(rows, cols)) in (1..).zip(shapes.iter()) {
        let x = random(rows, cols, seed);
        for &(w, po, d) in &filters {
            if cols > 10_000 && w > 31 {
                continue; // keeps the f64 reference quick
            }
            for mode in MODES {
                if mode == EdgeMode::Interp && w > cols {
                    continue;
                }
                check(&x, &params(w, po, d, 0.25, mode));
            }
        }
    }
}

#[test]
fn matches_scipy() {
    // scipy.signal.savgol_filter(x, 7, 3, deriv=2, delta=0.5, mode=...) and (x, 5, 2, deriv=1).
    let x = Matrix::new(
        1,
        11,
        vec![0.3, -1.2, 2.5, 0.7, -0.4, 1.9, 3.1, -2.2, 0.05, 1.4, -0.9],
    )
    .unwrap();
    let cases: [(EdgeMode, [f64; 11], [f64; 11]); 5] = [
        (
            EdgeMode::Interp,
            [
                -4.447619047619036,
                -2.7142857142857046,
                -0.980952380952373,
                0.7523809523809527,
                -2.209523809523809,
                -0.2809523809523806,
                -0.09523809523809491,
                -0.6809523809523805,
                1.3523809523809716,
                3.385714285714317,
                5.419047619047665,
            ],
            [
                1.3928571428571457,
                0.721428571428573,
                0.05,
                0.33,
                0.24,
                -0.23,
                -0.32,
                -0.405,
                -0.44,
                0.28857142857142914,
                1.0171428571428578,
            ],
        ),
        (
            EdgeMode::Mirror,
            [
                1.2380952380952381,
                0.6571428571428573,
                -0.47619047619047605,
                0.7523809523809527,
                -2.209523809523809,
                -0.2809523809523806,
                -0.09523809523809491,
                -0.6809523809523805,
                1.7809523809523813,
                1.2095238095238094,
                -2.552380952380952,
            ],
            [
                0.0, 0.6, 0.05, 0.33, 0.24, -0.23, -0.32, -0.405, -0.44, 0.625, 0.0,
            ],
        ),
        (
            EdgeMode::Nearest,
            [
                0.6190476190476192,
                -0.3904761904761902,
                0.23809523809523814,
                0.7523809523809527,
                -2.209523809523809,
                -0.2809523809523806,
                -0.09523809523809491,
                -0.6809523809523805,
                0.6857142857142858,
                0.7571428571428571,
                -1.2761904761904763,
            ],
            [
                0.29, 0.3, 0.05, 0.33, 0.24, -0.23, -0.32, -0.405, -0.44, 0.165, -0.42,
            ],
        ),
        (
            EdgeMode::Constant,
            [
                0.5619047619047619,
                -0.533333333333333,
                0.09523809523809545,
                0.7523809523809527,
                -2.209523809523809,
                -0.2809523809523806,
                -0.09523809523809491,
                -0.6809523809523805,
                1.1142857142857143,
                1.1857142857142857,
                -1.1047619047619048,
            ],
            [
                0.38, 0.36, 0.05, 0.33, 0.24, -0.23, -0.32, -0.405, -0.44, 0.345, -0.15,
            ],
        ),
        (
            EdgeMode::Wrap,
            [
                0.842857142857143,
                0.13333333333333353,
                -0.33333333333333315,
                0.7523809523809527,
                -2.209523809523809,
                -0.2809523809523806,
                -0.09523809523809491,
                -0.6809523809523805,
                1.2571428571428571,
                0.6142857142857143,
                0.0,
            ],
            [
                0.19, 0.54, 0.05, 0.33, 0.24, -0.23, -0.32, -0.405, -0.44, 0.405, -0.36,
            ],
        ),
    ];
    for (mode, d2, d1) in cases {
        for (p, want) in [
            (params(7, 3, 2, 0.5, mode), d2),
            (params(5, 2, 1, 1.0, mode), d1),
        ] {
            for got in [
                savgol(&x, &p).unwrap(),
                reference::savgol::savgol(&x, &p).unwrap(),
            ] {
                for (i, (g, w)) in got.data().iter().zip(want).enumerate() {
                    assert!(
                        (*g as f64 - w).abs() < 2e-5,
                        "{p:?} col {i}: {g} vs scipy {w}"
                    );
                }
            }
        }
    }
    // Signals shorter than the window (scipy: savgol_filter([1, 5, 2], ...)).
    let short = Matrix::new(1, 3, vec![1.0, 5.0, 2.0]).unwrap();
    for (p, want) in [
        (
            params(5, 2, 0, 1.0, EdgeMode::Mirror),
            [3.57142857, 2.6, 4.22857143],
        ),
        (
            params(7, 3, 0, 1.0, EdgeMode::Wrap),
            [3.14285714, 2.0, 2.85714286],
        ),
        (
            params(7, 3, 0, 1.0, EdgeMode::Nearest),
            [2.19047619, 2.66666667, 2.80952381],
        ),
        (
            params(7, 3, 0, 1.0, EdgeMode::Constant),
            [2.04761905, 2.52380952, 2.23809524],
        ),
    ] {
        let got = savgol(&short, &p).unwrap();
        for (g, w) in got.data().iter().zip(want) {
            assert!((*g as f64 - w).abs() < 1e-5, "{p:?}: {g} vs scipy {w}");
        }
    }
}

#[test]
fn edge_cases() {
    let p = params(5, 2, 0, 1.0, EdgeMode::Interp);
    // No signals, or signals with no samples: empty output of the same shape.
    for (r, c) in [(0, 0), (0, 7), (3, 0)] {
        let x = Matrix::new(r, c, Vec::new()).unwrap();
        let y = savgol(&x, &p).unwrap();
        assert_eq!((y.rows(), y.cols(), y.len()), (r, c, 0));
    }
    // One sample: interp needs window <= length; the other modes filter it.
    let one = Matrix::new(1, 1, vec![4.0]).unwrap();
    assert!(matches!(
        savgol(&one, &p),
        Err(KernelError::InvalidArgument(_))
    ));
    for mode in &MODES[1..] {
        check(&one, &params(5, 2, 0, 1.0, *mode));
    }
    // scipy: savgol_filter([4.], 5, 2, mode="mirror") == [4.]
    let y = savgol(&one, &params(5, 2, 0, 1.0, EdgeMode::Mirror)).unwrap();
    assert!((y.data()[0] - 4.0).abs() < 1e-5);
    // Window longer than the signal: interp is an error, the other modes are fine.
    let short = random(2, 9, 99);
    assert!(matches!(
        savgol(&short, &params(11, 3, 0, 1.0, EdgeMode::Interp)),
        Err(KernelError::InvalidArgument(_))
    ));
    for mode in &MODES[1..] {
        check(&short, &params(31, 3, 1, 1.0, *mode));
    }
    // Window 1 is the identity.
    let x = random(3, 17, 5);
    let y = savgol(&x, &params(1, 0, 0, 1.0, EdgeMode::Interp)).unwrap();
    assert_eq!(y, x);
    // Window == length with interp: only edge fits and one interior output.
    check(&random(1, 11, 6), &params(11, 4, 1, 0.1, EdgeMode::Interp));
}

#[test]
fn bad_parameters_are_errors() {
    let x = random(1, 50, 7);
    for p in [
        params(4, 2, 0, 1.0, EdgeMode::Mirror),
        params(5, 5, 0, 1.0, EdgeMode::Mirror),
        params(5, 2, 3, 1.0, EdgeMode::Mirror),
        params(5, 2, 1, 0.0, EdgeMode::Mirror),
        params(5, 2, 1, f64::NAN, EdgeMode::Mirror),
    ] {
        assert!(
            matches!(savgol(&x, &p), Err(KernelError::InvalidArgument(_))),
            "{p:?}"
        );
    }
}

#[test]
fn nan_reaches_exactly_the_windows_that_contain_it() {
    let (n, w) = (40usize, 7usize);
    let half = w / 2;
    for at in [0usize, 2, 20, 38, 39] {
        let mut x = random(1, n, at as u64 + 100);
        x.data_mut()[at] = f32::NAN;
        for mode in MODES {
            let p = params(w, 2, 0, 1.0, mode);
            let y = savgol(&x, &p).unwrap();
            check(&x, &p);
            for (i, v) in y.data().iter().enumerate() {
                let touches = match mode {
                    EdgeMode::Interp if i < half => at < w,
                    EdgeMode::Interp if i >= n - half => at >= n - w,
                    _ => (0..w).any(|k| {
                        serrano_kernel_core::savgol::extend_index(
                            mode,
                            i as i64 - half as i64 + k as i64,
                            n,
                        ) == Some(at)
                    }),
                };
                assert_eq!(v.is_nan(), touches, "{mode:?} NaN at {at}, output {i}");
            }
        }
    }
}

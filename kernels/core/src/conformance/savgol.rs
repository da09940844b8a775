//! Conformance checks of savgol (semantics in [`crate::savgol`]; see the module docs of
//! `crate::conformance`).
//!
//! Tolerances, each times the backend's `tol`:
//! - against the reference, per output: `4 * max(window * max|c|, sqrt(window) * max sum|c|) *
//!   f32::EPSILON * max|x|`, with `max|x|` over the finite samples of the row, `max|c|` over every
//!   coefficient of the filter and `max sum|c|` over its rows (centre and edge fits): the first
//!   term bounds the `f32` rounding of short windows, the second its growth over long sums,
//!   where it adds up like a random walk; NaN and infinities exactly where the reference has them;
//! - against values printed by `scipy.signal.savgol_filter` (scipy 1.17.1): `2e-5` (`1e-5` for the
//!   signals shorter than the window).

use super::{Check, Rng};
use crate::savgol::{EdgeMode, SavgolCoeffs, SavgolParams, extend_index};
use crate::{KernelBackend, KernelError, KernelName, Matrix, reference};

const MODES: [EdgeMode; 5] = [
    EdgeMode::Interp,
    EdgeMode::Mirror,
    EdgeMode::Nearest,
    EdgeMode::Constant,
    EdgeMode::Wrap,
];

fn check(name: &'static str, run: fn(&dyn KernelBackend, f32)) -> Check {
    Check {
        kernel: KernelName::SavitzkyGolay,
        name,
        run,
    }
}

pub fn checks() -> Vec<Check> {
    vec![
        check("random signals, every mode", random_signals),
        check("windows beyond GPU constant memory", long_windows),
        check("scipy values", scipy_values),
        check("empty, short and one-sample signals", edge_cases),
        check("bad parameters", bad_parameters),
        check("NaN reaches exactly its windows", nan_windows),
        check("infinities", infinities),
    ]
}

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

#[track_caller]
fn run(b: &dyn KernelBackend, x: &Matrix, p: &SavgolParams) -> Matrix {
    b.savgol(x, p)
        .unwrap_or_else(|e| panic!("savgol {p:?} on {}x{}: {e}", x.rows(), x.cols()))
}

#[track_caller]
fn expect_invalid_argument(b: &dyn KernelBackend, x: &Matrix, p: &SavgolParams) {
    let got = b.savgol(x, p);
    assert!(
        matches!(got, Err(KernelError::InvalidArgument(_))),
        "savgol {p:?} on {}x{}: want InvalidArgument, got {got:?}",
        x.rows(),
        x.cols()
    );
}

/// Compares the backend with the reference at the tolerance of the module docs.
#[track_caller]
fn compare(b: &dyn KernelBackend, x: &Matrix, p: &SavgolParams, tol: f32) {
    let want = reference::savgol::savgol(x, p)
        .unwrap_or_else(|e| panic!("savgol reference {p:?} on {}x{}: {e}", x.rows(), x.cols()));
    let got = run(b, x, p);
    assert_eq!(
        (got.rows(), got.cols()),
        (x.rows(), x.cols()),
        "savgol {p:?}: output shape"
    );
    let c = SavgolCoeffs::new(p).unwrap_or_else(|e| panic!("savgol coefficients {p:?}: {e}"));
    let cmax = c
        .center
        .iter()
        .chain(&c.left)
        .chain(&c.right)
        .fold(0.0f64, |m, v| m.max(v.abs()));
    let csum = std::iter::once(&c.center[..])
        .chain(c.left.chunks(c.window))
        .chain(c.right.chunks(c.window))
        .map(|f| f.iter().map(|v| v.abs()).sum::<f64>())
        .fold(0.0f64, f64::max);
    let w = p.window as f64;
    let scale = (w * cmax).max(w.sqrt() * csum);
    for r in 0..x.rows() {
        let xmax = x
            .row(r)
            .iter()
            .filter(|v| v.is_finite())
            .fold(0.0f32, |m, v| m.max(v.abs()));
        let bound =
            f64::from(tol) * 4.0 * scale * f64::from(f32::EPSILON) * f64::from(xmax) + 1e-30;
        for (i, (g, w)) in got.row(r).iter().zip(want.row(r)).enumerate() {
            let ok = if w.is_finite() {
                (f64::from(*g) - f64::from(*w)).abs() <= bound
            } else {
                (g.is_nan() && w.is_nan()) || g == w
            };
            assert!(
                ok,
                "savgol {p:?} on {}x{}, row {r} col {i}: {g} vs reference {w} (tolerance {bound:e})",
                x.rows(),
                x.cols()
            );
        }
    }
}

fn random_signals(b: &dyn KernelBackend, tol: f32) {
    let mut rng = Rng::new(1);
    // Long rows span several CPU chunks and GPU tiles; many short rows many blocks.
    let shapes = [
        (1, 1),
        (1, 2),
        (1, 7),
        (3, 50),
        (4, 333),
        (4, 1500),
        (300, 64),
        (2, 70_001),
    ];
    let filters = [
        (1, 0, 0),
        (5, 2, 0),
        (5, 2, 1),
        (11, 3, 0),
        (11, 3, 1),
        (31, 3, 0),
        (31, 4, 2),
        (101, 5, 1),
        (101, 5, 2),
    ];
    for (rows, cols) in shapes {
        let x = rng.matrix(rows, cols, -10.0, 10.0);
        for (w, po, d) in filters {
            if cols > 10_000 && w > 31 {
                continue; // keeps the f64 reference quick
            }
            for mode in MODES {
                let p = params(w, po, d, 0.25, mode);
                if mode == EdgeMode::Interp && w > cols {
                    expect_invalid_argument(b, &x, &p);
                } else {
                    compare(b, &x, &p, tol);
                }
            }
        }
    }
}

/// Windows longer than the 4095 coefficients the GPU kernels keep in constant memory.
fn long_windows(b: &dyn KernelBackend, tol: f32) {
    let x = Rng::new(2).matrix(2, 4200, -1.0, 1.0);
    for mode in MODES {
        compare(b, &x, &params(4097, 2, 0, 1.0, mode), tol);
    }
    compare(b, &x, &params(4099, 3, 1, 0.5, EdgeMode::Interp), tol);
}

fn scipy_values(b: &dyn KernelBackend, tol: f32) {
    let tol = f64::from(tol);
    // scipy.signal.savgol_filter(x, 7, 3, deriv=2, delta=0.5, mode=...) and (x, 5, 2, deriv=1).
    let x = Matrix::new(
        1,
        11,
        vec![0.3, -1.2, 2.5, 0.7, -0.4, 1.9, 3.1, -2.2, 0.05, 1.4, -0.9],
    )
    .unwrap_or_else(|e| panic!("{e}"));
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
            let got = run(b, &x, &p);
            for (i, (g, w)) in got.data().iter().zip(want).enumerate() {
                assert!(
                    (f64::from(*g) - w).abs() < 2e-5 * tol,
                    "savgol {p:?} col {i}: {g} vs scipy {w}"
                );
            }
        }
    }
    // Signals shorter than the window (scipy: savgol_filter([1, 5, 2], ...)).
    let short = Matrix::new(1, 3, vec![1.0, 5.0, 2.0]).unwrap_or_else(|e| panic!("{e}"));
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
        let got = run(b, &short, &p);
        for (i, (g, w)) in got.data().iter().zip(want).enumerate() {
            assert!(
                (f64::from(*g) - w).abs() < 1e-5 * tol,
                "savgol {p:?} col {i}: {g} vs scipy {w}"
            );
        }
    }
}

fn edge_cases(b: &dyn KernelBackend, tol: f32) {
    let mut rng = Rng::new(3);
    // No signals, or signals with no samples: the empty output of the same shape, in every mode.
    for (r, c) in [(0, 0), (0, 7), (3, 0)] {
        let x = Matrix::new(r, c, Vec::new()).unwrap_or_else(|e| panic!("{e}"));
        for mode in MODES {
            let y = run(b, &x, &params(5, 2, 0, 1.0, mode));
            assert_eq!(
                (y.rows(), y.cols(), y.len()),
                (r, c, 0),
                "savgol {mode:?} on {r}x{c}"
            );
        }
    }
    // One sample: interp needs window <= length; the other modes filter it, and smoothing a
    // constant gives the constant (scipy: savgol_filter([4.], 5, 2, mode="mirror") == [4.]).
    let one = Matrix::new(1, 1, vec![4.0]).unwrap_or_else(|e| panic!("{e}"));
    expect_invalid_argument(b, &one, &params(5, 2, 0, 1.0, EdgeMode::Interp));
    for mode in [EdgeMode::Mirror, EdgeMode::Nearest, EdgeMode::Wrap] {
        compare(b, &one, &params(5, 2, 0, 1.0, mode), tol);
        let y = run(b, &one, &params(5, 2, 0, 1.0, mode));
        assert!(
            (y.data()[0] - 4.0).abs() < 1e-5 * tol,
            "savgol {mode:?} of [4]: {}",
            y.data()[0]
        );
    }
    compare(b, &one, &params(5, 2, 0, 1.0, EdgeMode::Constant), tol);
    // Every length around the window (shorter than half of it, shorter than it, equal): interp
    // is an error below the window, the other modes extend the signal as often as needed.
    for n in 1..=13 {
        let x = rng.matrix(3, n, -10.0, 10.0);
        for mode in MODES {
            let p = params(11, 3, 1, 0.5, mode);
            if mode == EdgeMode::Interp && n < 11 {
                expect_invalid_argument(b, &x, &p);
            } else {
                compare(b, &x, &p, tol);
            }
        }
    }
    // Window much longer than the signal.
    let short = rng.matrix(2, 9, -10.0, 10.0);
    for mode in &MODES[1..] {
        compare(b, &short, &params(31, 3, 1, 1.0, *mode), tol);
    }
    // Window 1 is the identity, exactly.
    let x = rng.matrix(3, 17, -10.0, 10.0);
    for mode in MODES {
        let y = run(b, &x, &params(1, 0, 0, 1.0, mode));
        assert_eq!(y, x, "savgol window 1 {mode:?} is not the identity");
    }
    // Window == length with interp: edge fits and a single interior output.
    compare(
        b,
        &rng.matrix(1, 11, -10.0, 10.0),
        &params(11, 4, 1, 0.1, EdgeMode::Interp),
        tol,
    );
}

fn bad_parameters(b: &dyn KernelBackend, _tol: f32) {
    let x = Rng::new(4).matrix(1, 50, -1.0, 1.0);
    let too_long = crate::savgol::MAX_WINDOW + 2;
    for p in [
        params(4, 2, 0, 1.0, EdgeMode::Mirror),
        params(0, 0, 0, 1.0, EdgeMode::Mirror),
        params(too_long, 2, 0, 1.0, EdgeMode::Mirror),
        params(5, 5, 0, 1.0, EdgeMode::Mirror),
        params(5, 2, 3, 1.0, EdgeMode::Mirror),
        params(5, 2, 1, 0.0, EdgeMode::Mirror),
        params(5, 2, 1, -1.0, EdgeMode::Mirror),
        params(5, 2, 1, f64::NAN, EdgeMode::Mirror),
        params(5, 2, 1, f64::INFINITY, EdgeMode::Mirror),
    ] {
        expect_invalid_argument(b, &x, &p);
    }
    // Parameters are checked even where there is nothing to filter.
    let empty = Matrix::new(0, 0, Vec::new()).unwrap_or_else(|e| panic!("{e}"));
    expect_invalid_argument(b, &empty, &params(4, 2, 0, 1.0, EdgeMode::Interp));
}

fn nan_windows(b: &dyn KernelBackend, tol: f32) {
    let (n, w) = (40usize, 7usize);
    let half = w / 2;
    let mut rng = Rng::new(5);
    for at in [0usize, 2, 20, 38, 39] {
        let mut x = rng.matrix(1, n, -10.0, 10.0);
        x.data_mut()[at] = f32::NAN;
        for mode in MODES {
            let p = params(w, 2, 0, 1.0, mode);
            compare(b, &x, &p, tol);
            let y = run(b, &x, &p);
            for (i, v) in y.data().iter().enumerate() {
                let touches = match mode {
                    EdgeMode::Interp if i < half => at < w,
                    EdgeMode::Interp if i >= n - half => at >= n - w,
                    _ => (0..w).any(|k| {
                        extend_index(mode, i as i64 - half as i64 + k as i64, n) == Some(at)
                    }),
                };
                assert_eq!(
                    v.is_nan(),
                    touches,
                    "savgol {mode:?}, NaN at {at}: output {i} is {v}"
                );
            }
        }
    }
    // NaN in one row leaves the other rows alone.
    let mut x = rng.matrix(3, 200, -10.0, 10.0);
    x.data_mut()[200 + 3] = f32::NAN;
    for mode in MODES {
        let y = run(b, &x, &params(7, 2, 0, 1.0, mode));
        for r in [0, 2] {
            assert!(
                y.row(r).iter().all(|v| v.is_finite()),
                "savgol {mode:?}: NaN of row 1 reached row {r}"
            );
        }
    }
}

/// An infinity gives infinities of the coefficients' signs (or NaN through `0 * inf`), exactly
/// where the reference has them.
fn infinities(b: &dyn KernelBackend, tol: f32) {
    let mut x = Rng::new(6).matrix(2, 40, -10.0, 10.0);
    x.data_mut()[20] = f32::INFINITY;
    x.data_mut()[40 + 1] = f32::NEG_INFINITY;
    for mode in MODES {
        for (w, po, d) in [(5, 2, 0), (7, 3, 1)] {
            compare(b, &x, &params(w, po, d, 1.0, mode), tol);
        }
    }
}

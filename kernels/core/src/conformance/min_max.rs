//! Conformance checks of min_max (see the module docs of `crate::conformance`).
//!
//! Tolerance: `|got − ref| ≤ tol · (1e-6 · (max − min) + 1e-6 · max(|min|, |max|))` against the
//! reference (f64; backends find the extent in f32, which is exact, and scale in f64 or f32),
//! NaN exactly where the reference has NaN.

use super::{
    Check, Rng, assert_close, checks_of, expect_invalid_argument, expect_invalid_input, matrix, ok,
};
use crate::min_max::{Axis, MinMaxParams};
use crate::{KernelBackend, KernelName, Matrix, reference};

pub fn checks() -> Vec<Check> {
    checks_of(
        KernelName::MinMax,
        &[
            ("random data with NaN, every axis", random_data),
            ("sklearn's rules", sklearn_rules),
            ("empty and single inputs", empty_and_single),
            ("bad arguments", bad_arguments),
        ],
    )
}

const AXES: [Axis; 3] = [Axis::Columns, Axis::Rows, Axis::All];

fn params(min: f32, max: f32, axis: Axis) -> MinMaxParams {
    MinMaxParams { min, max, axis }
}

/// Values around a random offset (so that `lo` is far from 0), NaN with probability `nan`.
fn random(rng: &mut Rng, rows: usize, cols: usize, nan: f32) -> Matrix {
    let offset = rng.f32(-1e3, 1e3);
    let data = (0..rows * cols)
        .map(|_| {
            if rng.f32(0.0, 1.0) < nan {
                f32::NAN
            } else {
                offset + rng.f32(-50.0, 50.0)
            }
        })
        .collect();
    matrix(rows, cols, data)
}

/// Shapes for every path: one value, one long row or column, few long rows, many short rows.
fn random_data(b: &dyn KernelBackend, tol: f32) {
    let mut rng = Rng::new(31);
    let shapes = [
        (1, 1),
        (1, 100),
        (100, 1),
        (37, 5),
        (1000, 3),
        (3, 40_000),
        (200, 7),
        (5000, 16),
        (3000, 33),
        (1, 100_000),
        (100_000, 1),
    ];
    for (rows, cols) in shapes {
        for axis in AXES {
            for (lo, hi) in [(0.0, 1.0), (-1.0, 1.0), (10.0, 1000.0)] {
                let what = format!("min_max {rows}x{cols} {axis:?} [{lo}, {hi}]");
                let m = random(&mut rng, rows, cols, 0.1);
                let p = params(lo, hi, axis);
                let want = ok(&what, reference::min_max::min_max(&m, &p));
                let got = ok(&what, b.min_max(&m, &p));
                let abs = tol * (1e-6 * (hi - lo) + 1e-6 * hi.abs().max(lo.abs()));
                assert_close(&what, &got, &want, abs, 0.0);
            }
        }
    }
}

fn sklearn_rules(b: &dyn KernelBackend, tol: f32) {
    // Column 0 constant -> min; column 1 only NaN -> NaN; column 2 ordinary with a NaN kept.
    let nan = f32::NAN;
    let m = matrix(3, 3, vec![4.0, nan, 1.0, 4.0, nan, nan, 4.0, nan, 3.0]);
    let out = ok(
        "min_max sklearn rules",
        b.min_max(&m, &params(-2.0, 2.0, Axis::Columns)),
    );
    let d = out.data();
    assert_eq!(
        [d[0], d[3], d[6]],
        [-2.0; 3],
        "a constant column maps to min"
    );
    assert!(
        d[1].is_nan() && d[4].is_nan() && d[7].is_nan(),
        "an all-NaN column stays NaN: {d:?}"
    );
    assert_eq!(
        [d[2], d[8]],
        [-2.0, 2.0],
        "an ordinary column spans [min, max]"
    );
    assert!(d[5].is_nan(), "a NaN stays NaN: {d:?}");
    for axis in AXES {
        let what = format!("min_max all NaN {axis:?}");
        let out = ok(
            &what,
            b.min_max(&Matrix::filled(2, 2, nan), &params(0.0, 1.0, axis)),
        );
        assert!(
            out.data().iter().all(|v| v.is_nan()),
            "{what}: {:?}",
            out.data()
        );
    }
    // Extreme finite values: the range (6e38) overflows f32, not the scaling.
    let wide = matrix(1, 3, vec![-3e38, 0.0, 3e38]);
    let what = "min_max of ±3e38";
    let out = ok(what, b.min_max(&wide, &params(0.0, 1.0, Axis::All)));
    assert_close(
        what,
        &out,
        &matrix(1, 3, vec![0.0, 0.5, 1.0]),
        1e-6 * tol,
        0.0,
    );
}

fn empty_and_single(b: &dyn KernelBackend, _tol: f32) {
    for axis in AXES {
        let what = format!("min_max of no rows {axis:?}");
        let out = ok(
            &what,
            b.min_max(&Matrix::filled(0, 3, 0.0), &params(0.0, 1.0, axis)),
        );
        assert_eq!((out.rows(), out.cols()), (0, 3), "{what}");
        let what = format!("min_max of one value {axis:?}");
        let out = ok(
            &what,
            b.min_max(&matrix(1, 1, vec![7.0]), &params(3.0, 5.0, axis)),
        );
        assert_eq!(out.data(), &[3.0], "{what}");
    }
}

fn bad_arguments(b: &dyn KernelBackend, _tol: f32) {
    let m = matrix(2, 2, vec![1.0, 2.0, 3.0, 4.0]);
    for (lo, hi) in [
        (1.0, 1.0),
        (2.0, 1.0),
        (f32::NAN, 1.0),
        (0.0, f32::INFINITY),
    ] {
        let what = format!("min_max range [{lo}, {hi}]");
        expect_invalid_argument(&what, b.min_max(&m, &params(lo, hi, Axis::All)));
    }
    // The error names the first infinite value, wherever the backend found it.
    for axis in AXES {
        for bad in [f32::INFINITY, f32::NEG_INFINITY] {
            let mut big = Matrix::filled(3, 50_000, 0.5);
            big.data_mut()[77_777] = bad;
            let what = format!("min_max with {bad} {axis:?}");
            let msg = expect_invalid_input(&what, b.min_max(&big, &params(0.0, 1.0, axis)));
            assert!(
                msg.to_string().contains("row 1, column 27777"),
                "{what}: {msg}"
            );
        }
    }
}

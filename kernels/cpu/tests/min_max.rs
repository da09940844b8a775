#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CPU min-max scaling against the reference (f64) on random data with NaN, every axis and
//! several shapes (including the few-long-rows and many-rows paths), plus the sklearn edge
//! rules and errors. Tolerance: |cpu − ref| ≤ 1e-6 · (max − min) + f32 rounding of the value;
//! NaN exactly where the reference has NaN.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serrano_kernel_core::min_max::{Axis, MinMaxParams};
use serrano_kernel_core::{KernelError, Matrix, reference};
use serrano_kernel_cpu::min_max::min_max;

fn params(min: f32, max: f32, axis: Axis) -> MinMaxParams {
    MinMaxParams { min, max, axis }
}

fn random(rng: &mut StdRng, rows: usize, cols: usize, nan: f64) -> Matrix {
    let offset: f32 = rng.random_range(-1e3..1e3);
    let data = (0..rows * cols)
        .map(|_| {
            if rng.random_bool(nan) {
                f32::NAN
            } else {
                offset + rng.random_range(-50.0..50.0)
            }
        })
        .collect();
    Matrix::new(rows, cols, data).unwrap()
}

fn assert_close(got: &Matrix, want: &Matrix, p: &MinMaxParams, what: &str) {
    assert_eq!(
        (got.rows(), got.cols()),
        (want.rows(), want.cols()),
        "{what}"
    );
    let tol = 1e-6 * (p.max - p.min) + 1e-6 * p.max.abs().max(p.min.abs());
    for (i, (&a, &b)) in got.data().iter().zip(want.data()).enumerate() {
        if b.is_nan() {
            assert!(a.is_nan(), "{what}: value {i} is {a}, reference NaN");
        } else {
            assert!((a - b).abs() <= tol, "{what}: value {i}: got {a}, want {b}");
        }
    }
}

#[test]
fn matches_the_reference() {
    let mut rng = StdRng::seed_from_u64(31);
    let shapes = [
        (1, 1),
        (1, 100),
        (100, 1),
        (37, 5),
        (1000, 3),
        (3, 40000),
        (200, 7),
        (5000, 16),
    ];
    for (rows, cols) in shapes {
        for axis in [Axis::Columns, Axis::Rows, Axis::All] {
            for (lo, hi) in [(0.0, 1.0), (-1.0, 1.0), (10.0, 1000.0)] {
                let m = random(&mut rng, rows, cols, 0.1);
                let p = params(lo, hi, axis);
                let want = reference::min_max::min_max(&m, &p).unwrap();
                let got = min_max(&m, &p).unwrap();
                assert_close(
                    &got,
                    &want,
                    &p,
                    &format!("{rows}x{cols} {axis:?} [{lo}, {hi}]"),
                );
            }
        }
    }
}

#[test]
fn sklearn_rules() {
    // Column 0 constant -> min; column 1 only NaN -> NaN; column 2 ordinary with a NaN kept.
    let m = Matrix::new(
        3,
        3,
        vec![
            4.0,
            f32::NAN,
            1.0,
            4.0,
            f32::NAN,
            f32::NAN,
            4.0,
            f32::NAN,
            3.0,
        ],
    )
    .unwrap();
    let out = min_max(&m, &params(-2.0, 2.0, Axis::Columns)).unwrap();
    let d = out.data();
    assert_eq!([d[0], d[3], d[6]], [-2.0, -2.0, -2.0]);
    assert!(d[1].is_nan() && d[4].is_nan() && d[7].is_nan());
    assert_eq!([d[2], d[8]], [-2.0, 2.0]);
    assert!(d[5].is_nan());
    let all_nan = Matrix::new(2, 2, vec![f32::NAN; 4]).unwrap();
    for axis in [Axis::Columns, Axis::Rows, Axis::All] {
        let out = min_max(&all_nan, &params(0.0, 1.0, axis)).unwrap();
        assert!(out.data().iter().all(|v| v.is_nan()));
    }
    // Extreme finite values do not overflow the range.
    let wide = Matrix::new(1, 3, vec![-3e38, 0.0, 3e38]).unwrap();
    let out = min_max(&wide, &params(0.0, 1.0, Axis::All)).unwrap();
    assert_eq!(out.data(), &[0.0, 0.5, 1.0]);
}

#[test]
fn empty_and_single() {
    for axis in [Axis::Columns, Axis::Rows, Axis::All] {
        let out = min_max(&Matrix::new(0, 3, vec![]).unwrap(), &params(0.0, 1.0, axis)).unwrap();
        assert_eq!((out.rows(), out.cols()), (0, 3));
        let out = min_max(
            &Matrix::new(1, 1, vec![7.0]).unwrap(),
            &params(3.0, 5.0, axis),
        )
        .unwrap();
        assert_eq!(out.data(), &[3.0]);
    }
}

#[test]
fn bad_arguments_are_errors() {
    let m = Matrix::new(2, 2, vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    for (lo, hi) in [
        (1.0, 1.0),
        (2.0, 1.0),
        (f32::NAN, 1.0),
        (0.0, f32::INFINITY),
    ] {
        assert!(matches!(
            min_max(&m, &params(lo, hi, Axis::All)),
            Err(KernelError::InvalidArgument(_))
        ));
    }
    for axis in [Axis::Columns, Axis::Rows, Axis::All] {
        for bad in [f32::INFINITY, f32::NEG_INFINITY] {
            let mut big = vec![0.5f32; 3 * 50_000];
            big[77_777] = bad;
            let m = Matrix::new(3, 50_000, big).unwrap();
            let err = min_max(&m, &params(0.0, 1.0, axis)).unwrap_err();
            assert!(
                matches!(&err, KernelError::InvalidInput(msg) if msg.contains("row 1, column 27777")),
                "{err}"
            );
        }
    }
}

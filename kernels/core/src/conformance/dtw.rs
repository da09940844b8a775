//! Conformance checks of dtw (see the module docs of `crate::conformance`).
//!
//! Tolerance (times the backend's `tol`): every distance within `1e-4` relative plus `1e-5`
//! absolute of the `f64` reference's. A series against itself is exactly 0 and the distance
//! matrix of a set against itself is exactly symmetric (both follow from the recurrence, in any
//! rounding).

use super::{Check, Rng, assert_close, expect_invalid_input, ok};
use crate::dtw::DtwParams;
use crate::reference::dtw as reference;
use crate::{KernelBackend, KernelName, Matrix};

pub fn checks() -> Vec<Check> {
    vec![
        check("equal lengths match the reference", equal_lengths),
        check("unequal lengths widen the band", unequal_lengths),
        check("many pairs, a ragged last group", many_pairs),
        check(
            "window 0 is the Euclidean distance",
            window_zero_is_euclidean,
        ),
        check("self distance 0, symmetric matrix", self_and_symmetry),
        check("warping absorbs a shift", warping_absorbs_a_shift),
        check("empty inputs give empty results", empty_inputs),
        check("empty series and non-finite values", bad_inputs),
    ]
}

fn check(name: &'static str, run: fn(&dyn KernelBackend, f32)) -> Check {
    Check {
        kernel: KernelName::Dtw,
        name,
        run,
    }
}

/// `rows` series of length `len`, uniform in `[-2, 2)`.
pub fn series(rows: usize, len: usize, seed: u64) -> Matrix {
    Rng::new(seed).matrix(rows, len, -2.0, 2.0)
}

/// Panics unless `got` matches the reference distances at the tolerance of the module docs.
#[track_caller]
pub fn assert_matches(got: &Matrix, a: &Matrix, b: &Matrix, p: &DtwParams, tol: f32) {
    let what = format!(
        "dtw {}x{} pairs, L1={} L2={}, window {:?}",
        a.rows(),
        b.rows(),
        a.cols(),
        b.cols(),
        p.window
    );
    let want = ok(&what, reference::dtw(a, b, p));
    assert_close(&what, got, &want, 1e-5 * tol, 1e-4 * tol);
}

/// Runs `b.dtw` on random series of the given shape and compares with the reference.
fn compare(
    b: &dyn KernelBackend,
    shape: (usize, usize, usize, usize),
    window: Option<usize>,
    tol: f32,
    seed: u64,
) {
    let (na, nb, l1, l2) = shape;
    let x = series(na, l1, seed);
    let y = series(nb, l2, seed + 1000);
    let p = DtwParams { window };
    let got = ok("dtw", b.dtw(&x, &y, &p));
    assert_matches(&got, &x, &y, &p, tol);
}

fn equal_lengths(b: &dyn KernelBackend, tol: f32) {
    // Lengths around the GPU strips (32 columns per thread, 256 per warp).
    for (s, &len) in [1usize, 2, 7, 32, 33, 128, 257].iter().enumerate() {
        for window in [None, Some(0), Some(1), Some(5), Some(len), Some(len + 100)] {
            compare(b, (9, 7, len, len), window, tol, 10 * s as u64 + 1);
        }
    }
}

fn unequal_lengths(b: &dyn KernelBackend, tol: f32) {
    let shapes = [
        (5usize, 9usize),
        (40, 17),
        (1, 6),
        (6, 1),
        (100, 130),
        (40, 300),
    ];
    for (s, &(l1, l2)) in shapes.iter().enumerate() {
        for window in [None, Some(0), Some(3), Some(50), Some(1000)] {
            compare(b, (6, 11, l1, l2), window, tol, 100 + s as u64);
        }
    }
    // w = 0 on lengths 3 and 5 behaves as w = 2: the end cell stays reachable.
    let x = series(4, 3, 7);
    let y = series(3, 5, 8);
    let narrow = ok("dtw w=0", b.dtw(&x, &y, &DtwParams { window: Some(0) }));
    let widened = ok("dtw w=2", b.dtw(&x, &y, &DtwParams { window: Some(2) }));
    assert_eq!(narrow, widened, "dtw: w=0 on lengths 3 and 5 is w=2");
    assert!(
        narrow.data().iter().all(|v| v.is_finite()),
        "dtw: the widened band reaches the end cell"
    );
}

fn many_pairs(b: &dyn KernelBackend, tol: f32) {
    // 37 x 29 = 1073 pairs: many SIMD groups across threads, the last one partial.
    compare(b, (37, 29, 64, 64), Some(10), tol, 3);
    compare(b, (1, 1, 300, 250), Some(20), tol, 4);
    compare(b, (3, 1, 257, 257), None, tol, 5);
}

fn window_zero_is_euclidean(b: &dyn KernelBackend, tol: f32) {
    let x = series(5, 40, 21);
    let y = series(6, 40, 22);
    let got = ok("dtw w=0", b.dtw(&x, &y, &DtwParams { window: Some(0) }));
    let mut want = Vec::with_capacity(30);
    for r in 0..5 {
        for s in 0..6 {
            let e: f64 = x
                .row(r)
                .iter()
                .zip(y.row(s))
                .map(|(&u, &v)| (f64::from(u) - f64::from(v)).powi(2))
                .sum();
            want.push(e.sqrt() as f32);
        }
    }
    let want = ok("euclidean", Matrix::new(5, 6, want));
    assert_close(
        "dtw w=0 vs the Euclidean distance",
        &got,
        &want,
        1e-5 * tol,
        1e-4 * tol,
    );
}

fn self_and_symmetry(b: &dyn KernelBackend, _tol: f32) {
    let x = series(19, 50, 31);
    for window in [None, Some(0), Some(4)] {
        let d = ok("dtw self", b.dtw(&x, &x, &DtwParams { window }));
        for r in 0..19 {
            assert_eq!(
                d.get(r, r),
                Some(0.0),
                "dtw diagonal {r}, window {window:?}"
            );
            for s in 0..r {
                assert_eq!(
                    d.get(r, s),
                    d.get(s, r),
                    "dtw ({r}, {s}) vs ({s}, {r}), window {window:?}"
                );
            }
        }
        assert!(
            d.data().iter().any(|&v| v > 0.1),
            "dtw self: every distance is 0"
        );
    }
}

fn warping_absorbs_a_shift(b: &dyn KernelBackend, tol: f32) {
    // The same shape delayed by 3 samples: a band of 3 absorbs the delay (only the tail of x,
    // which y lacks, costs); a band of 0 pays for every sample.
    let x: Vec<f32> = (0..60).map(|i| ((i as f32) * 0.3).sin()).collect();
    let mut y = vec![x[0]; 3];
    y.extend_from_slice(&x[..57]);
    let x = ok("x", Matrix::new(1, 60, x));
    let y = ok("y", Matrix::new(1, 60, y));
    let p = DtwParams { window: Some(3) };
    let wide = ok("dtw w=3", b.dtw(&x, &y, &p));
    let narrow = ok("dtw w=0", b.dtw(&x, &y, &DtwParams { window: Some(0) }));
    assert_matches(&wide, &x, &y, &p, tol);
    assert!(
        narrow.data()[0] > wide.data()[0] + 0.1,
        "dtw shift: w=0 gives {}, w=3 {}",
        narrow.data()[0],
        wide.data()[0]
    );
}

fn empty_inputs(b: &dyn KernelBackend, _tol: f32) {
    let p = DtwParams { window: Some(3) };
    let x = series(4, 10, 1);
    let none = Matrix::filled(0, 10, 0.0);
    let shape = |m: Matrix| (m.rows(), m.cols());
    let d = ok("dtw a x none", b.dtw(&x, &none, &p));
    assert_eq!(shape(d), (4, 0), "dtw against no series");
    let d = ok("dtw none x a", b.dtw(&none, &x, &p));
    assert_eq!(shape(d), (0, 4), "dtw of no series");
    let d = ok("dtw 0x0 x a", b.dtw(&Matrix::filled(0, 0, 0.0), &x, &p));
    assert_eq!(shape(d), (0, 4), "dtw of a 0x0 matrix");
}

fn bad_inputs(b: &dyn KernelBackend, _tol: f32) {
    let p = DtwParams { window: None };
    let x = series(3, 8, 2);
    expect_invalid_input(
        "dtw a of length 0",
        b.dtw(&Matrix::filled(2, 0, 0.0), &x, &p),
    );
    expect_invalid_input(
        "dtw b of length 0",
        b.dtw(&x, &Matrix::filled(1, 0, 0.0), &p),
    );
    let mut nan = x.clone();
    nan.data_mut()[2 * 8 + 5] = f32::NAN;
    let e = expect_invalid_input("dtw NaN", b.dtw(&nan, &x, &p));
    assert!(e.to_string().contains("row 2, column 5"), "{e}");
    let mut inf = x.clone();
    inf.data_mut()[3] = f32::NEG_INFINITY;
    let e = expect_invalid_input("dtw -Inf", b.dtw(&x, &inf, &p));
    assert!(
        e.to_string()
            .contains("b has a non-finite value at row 0, column 3"),
        "{e}"
    );
}

#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CPU dtw against the f64 reference: relative tolerance 1e-4 (plus 1e-5 absolute for distances
//! near 0), on random series of several shapes, windows and edge cases.

use serrano_kernel_core::dtw::DtwParams;
use serrano_kernel_core::{KernelError, Matrix, reference};

/// Deterministic uniform values in [-2, 2) (SplitMix64), different per seed.
fn series(rows: usize, cols: usize, seed: u64) -> Matrix {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let data = (0..rows * cols)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect();
    Matrix::new(rows, cols, data).unwrap()
}

fn assert_close(got: &Matrix, want: &Matrix, what: &str) {
    assert_eq!(
        (got.rows(), got.cols()),
        (want.rows(), want.cols()),
        "{what}: shape"
    );
    for (idx, (&g, &w)) in got.data().iter().zip(want.data()).enumerate() {
        let tol = 1e-4 * w.abs() + 1e-5;
        assert!(
            (g - w).abs() <= tol,
            "{what}: pair {idx} ({}, {}): cpu {g} vs reference {w}",
            idx / want.cols().max(1),
            idx % want.cols().max(1)
        );
    }
}

fn check(na: usize, nb: usize, l1: usize, l2: usize, window: Option<usize>, seed: u64) {
    let a = series(na, l1, seed);
    let b = series(nb, l2, seed + 1000);
    let p = DtwParams { window };
    let got = serrano_kernel_cpu::dtw::dtw(&a, &b, &p).unwrap();
    let want = reference::dtw::dtw(&a, &b, &p).unwrap();
    assert_close(
        &got,
        &want,
        &format!("{na}x{nb} pairs, L1={l1} L2={l2}, window {window:?}"),
    );
}

#[test]
fn equal_lengths_match_the_reference() {
    for (k, &len) in [1usize, 2, 7, 33, 128].iter().enumerate() {
        for window in [None, Some(0), Some(1), Some(5), Some(len), Some(len + 100)] {
            check(9, 7, len, len, window, 10 * k as u64 + 1);
        }
    }
}

#[test]
fn unequal_lengths_widen_the_band() {
    for (k, &(l1, l2)) in [(5usize, 9usize), (40, 17), (1, 6), (6, 1), (100, 130)]
        .iter()
        .enumerate()
    {
        for window in [None, Some(0), Some(3), Some(50), Some(1000)] {
            check(6, 11, l1, l2, window, 100 + k as u64);
        }
    }
    // w = 0 on lengths 3 and 5 behaves as w = 2: the end cell stays reachable.
    let a = series(4, 3, 7);
    let b = series(3, 5, 8);
    let got = serrano_kernel_cpu::dtw::dtw(&a, &b, &DtwParams { window: Some(0) }).unwrap();
    let widened = serrano_kernel_cpu::dtw::dtw(&a, &b, &DtwParams { window: Some(2) }).unwrap();
    assert_eq!(got, widened);
    assert!(got.data().iter().all(|v| v.is_finite()));
}

#[test]
fn many_groups_and_a_ragged_last_group() {
    // 37 x 29 = 1073 pairs: many lane groups across threads, the last one partial.
    check(37, 29, 64, 64, Some(10), 3);
    check(1, 1, 300, 250, Some(20), 4);
    check(3, 1, 257, 257, None, 5);
}

#[test]
fn window_zero_is_the_euclidean_distance() {
    let a = series(5, 40, 21);
    let b = series(6, 40, 22);
    let got = serrano_kernel_cpu::dtw::dtw(&a, &b, &DtwParams { window: Some(0) }).unwrap();
    for r in 0..5 {
        for s in 0..6 {
            let e: f64 = a
                .row(r)
                .iter()
                .zip(b.row(s))
                .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
                .sum::<f64>()
                .sqrt();
            let g = f64::from(got.get(r, s).unwrap());
            assert!((g - e).abs() <= 1e-4 * e + 1e-5, "({r}, {s}): {g} vs {e}");
        }
    }
}

#[test]
fn a_series_against_itself_is_zero_and_the_matrix_symmetric() {
    let a = series(19, 50, 31);
    for window in [None, Some(0), Some(4)] {
        let d = serrano_kernel_cpu::dtw::dtw(&a, &a, &DtwParams { window }).unwrap();
        for r in 0..19 {
            assert_eq!(d.get(r, r).unwrap(), 0.0, "diagonal {r}, window {window:?}");
            for s in 0..19 {
                assert_eq!(d.get(r, s), d.get(s, r), "({r}, {s}) window {window:?}");
            }
        }
        assert!(d.data().iter().any(|&v| v > 0.1));
    }
}

#[test]
fn warping_absorbs_a_shift() {
    // The same shape delayed by 3 samples: a band of 3 absorbs the delay (only the tail of x,
    // which y lacks, costs), a band of 0 pays for every sample.
    let x: Vec<f32> = (0..60).map(|i| ((i as f32) * 0.3).sin()).collect();
    let mut y = vec![x[0]; 3];
    y.extend_from_slice(&x[..57]);
    let a = Matrix::new(1, 60, x).unwrap();
    let b = Matrix::new(1, 60, y).unwrap();
    let wide = serrano_kernel_cpu::dtw::dtw(&a, &b, &DtwParams { window: Some(3) }).unwrap();
    let narrow = serrano_kernel_cpu::dtw::dtw(&a, &b, &DtwParams { window: Some(0) }).unwrap();
    let want = reference::dtw::dtw(&a, &b, &DtwParams { window: Some(3) }).unwrap();
    assert_close(&wide, &want, "shift");
    assert!(narrow.data()[0] > wide.data()[0] + 0.1);
}

#[test]
fn empty_inputs_give_empty_results_of_the_right_shape() {
    let p = DtwParams { window: Some(3) };
    let a = series(4, 10, 1);
    let none = Matrix::filled(0, 10, 0.0);
    let d = serrano_kernel_cpu::dtw::dtw(&a, &none, &p).unwrap();
    assert_eq!((d.rows(), d.cols()), (4, 0));
    let d = serrano_kernel_cpu::dtw::dtw(&none, &a, &p).unwrap();
    assert_eq!((d.rows(), d.cols()), (0, 4));
    let d = serrano_kernel_cpu::dtw::dtw(&Matrix::filled(0, 0, 0.0), &a, &p).unwrap();
    assert_eq!((d.rows(), d.cols()), (0, 4));
}

#[test]
fn bad_inputs_are_errors() {
    let p = DtwParams { window: None };
    let a = series(3, 8, 2);
    let err = serrano_kernel_cpu::dtw::dtw(&Matrix::filled(2, 0, 0.0), &a, &p).unwrap_err();
    assert!(matches!(err, KernelError::InvalidInput(_)), "{err}");
    let err = serrano_kernel_cpu::dtw::dtw(&a, &Matrix::filled(1, 0, 0.0), &p).unwrap_err();
    assert!(matches!(err, KernelError::InvalidInput(_)), "{err}");

    let mut nan = a.clone();
    nan.data_mut()[2 * 8 + 5] = f32::NAN;
    let err = serrano_kernel_cpu::dtw::dtw(&nan, &a, &p).unwrap_err();
    assert!(matches!(err, KernelError::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("row 2, column 5"), "{err}");

    let mut inf = a.clone();
    inf.data_mut()[3] = f32::NEG_INFINITY;
    let err = serrano_kernel_cpu::dtw::dtw(&a, &inf, &p).unwrap_err();
    assert!(
        err.to_string()
            .contains("b has a non-finite value at row 0, column 3"),
        "{err}"
    );
}

#[test]
fn window_from_params() {
    let params = serrano_kernel_core::Params::from_pairs(["w=200"]).unwrap();
    assert_eq!(DtwParams::from_params(&params).unwrap().window, Some(200));
    let params = serrano_kernel_core::Params::from_pairs(["window=-3"]).unwrap();
    assert!(matches!(
        DtwParams::from_params(&params),
        Err(KernelError::InvalidArgument(_))
    ));
    let none = DtwParams::from_params(&serrano_kernel_core::Params::new()).unwrap();
    assert_eq!(none.window, None);
}

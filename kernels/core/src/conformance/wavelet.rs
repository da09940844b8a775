//! Conformance checks of wavelet (see the module docs of `crate::conformance`).
//!
//! Tolerances: `|got − ref| ≤ 2e-5 · tol · max(1, max |ref| of the row)` against the reference
//! (the defining sums in f64; backends convolve in f32); round trips `1e-5 · tol` of the row's
//! largest value.

use super::{
    Check, Rng, assert_close_rows, checks_of, expect_invalid_argument, expect_invalid_input,
    matrix, ok,
};
use crate::wavelet::{ExtensionMode, Wavelet, WaveletParams, coefficient_lengths, dwt_max_level};
use crate::{KernelBackend, KernelName, Matrix, reference};

pub fn checks() -> Vec<Check> {
    checks_of(
        KernelName::Wavelet,
        &[
            ("forward and inverse vs the reference", forward_and_inverse),
            ("perfect reconstruction", perfect_reconstruction),
            ("many rows", many_rows),
            ("pywt's layout and values", pywt_layout),
            ("NaN spreads locally", nan_spreads_locally),
            ("bad arguments", bad_arguments),
        ],
    )
}

const REL: f32 = 2e-5;
const ROUND_TRIP: f32 = 1e-5;
const MODES: [ExtensionMode; 3] = [
    ExtensionMode::Symmetric,
    ExtensionMode::Periodization,
    ExtensionMode::Zero,
];

/// `haar` and `db1`..`db10`.
fn wavelets() -> impl Iterator<Item = Wavelet> {
    std::iter::once(Wavelet::Haar).chain((1..=10).map(Wavelet::Db))
}

fn params(wavelet: Wavelet, levels: Option<usize>, mode: ExtensionMode) -> WaveletParams {
    WaveletParams {
        wavelet,
        levels,
        mode,
        inverse: false,
        n: None,
    }
}

fn inverse_of(p: &WaveletParams, n: usize) -> WaveletParams {
    WaveletParams {
        inverse: true,
        n: Some(n),
        ..p.clone()
    }
}

fn compare(b: &dyn KernelBackend, tol: f32, m: &Matrix, p: &WaveletParams, what: &str) -> Matrix {
    let want = ok(what, reference::wavelet::wavelet(m, p));
    let got = ok(what, b.wavelet(m, p));
    assert_close_rows(what, &got, &want, REL * tol);
    got
}

/// Every wavelet and mode on lengths below, at and above the filter length, at the default,
/// zero, one and the maximum level; the inverse on random coefficients (not only on a forward
/// result, so that it cannot pass by undoing a matching forward bug).
fn forward_and_inverse(b: &dyn KernelBackend, tol: f32) {
    let mut rng = Rng::new(21);
    for w in wavelets() {
        let flen = ok("filter length", w.filter_len());
        for n in [1, 2, 3, 5, 17, 40, 64, 100, 257] {
            let max = dwt_max_level(n, flen);
            let mut levels = vec![None, Some(0), Some(max)];
            if max > 1 {
                levels.push(Some(1));
            }
            for level in levels {
                for mode in MODES {
                    let what = format!("wavelet {w:?} n={n} levels={level:?} {mode:?}");
                    let p = params(w, level, mode);
                    let got = compare(b, tol, &rng.matrix(3, n, -10.0, 10.0), &p, &what);
                    let c = rng.matrix(3, got.cols(), -10.0, 10.0);
                    compare(b, tol, &c, &inverse_of(&p, n), &format!("inverse {what}"));
                }
            }
        }
    }
}

fn perfect_reconstruction(b: &dyn KernelBackend, tol: f32) {
    let mut rng = Rng::new(22);
    for w in wavelets() {
        for mode in MODES {
            for n in [1, 7, 64, 99, 1000] {
                let what = format!("wavelet round trip {w:?} {mode:?} n={n}");
                let x = rng.matrix(4, n, -10.0, 10.0);
                let p = params(w, None, mode);
                let c = ok(&what, b.wavelet(&x, &p));
                let lengths = ok(&what, coefficient_lengths(n, w, None, mode));
                assert_eq!(c.cols(), lengths.iter().sum::<usize>(), "{what}");
                let back = ok(&what, b.wavelet(&c, &inverse_of(&p, n)));
                assert_close_rows(&what, &back, &x, ROUND_TRIP * tol);
            }
        }
    }
}

/// More rows than a CPU task or a GPU block holds.
fn many_rows(b: &dyn KernelBackend, tol: f32) {
    let x = Rng::new(23).matrix(500, 300, -10.0, 10.0);
    let p = params(Wavelet::Db(4), Some(3), ExtensionMode::Symmetric);
    let c = compare(b, tol, &x, &p, "wavelet 500 rows");
    compare(b, tol, &c, &inverse_of(&p, 300), "inverse wavelet 500 rows");
}

fn pywt_layout(b: &dyn KernelBackend, tol: f32) {
    // pywt.wavedec(range(20), 'db2', level=2): [cA2 (7), cD2 (7), cD1 (11)].
    let ramp = matrix(1, 20, (0..20).map(|v| v as f32).collect());
    let p = params(Wavelet::Db(2), Some(2), ExtensionMode::Symmetric);
    let out = ok("wavelet db2 of a ramp", b.wavelet(&ramp, &p));
    assert_eq!(out.cols(), 25, "wavelet db2 of 20 samples, 2 levels");
    // A ramp has zero detail away from the edges (two vanishing moments).
    let cd1 = &out.data()[14..25];
    assert!(
        cd1[2..9].iter().all(|v| v.abs() < 1e-4 * tol),
        "wavelet db2 of a ramp, cD1: {cd1:?}"
    );
    // pywt's docs: Haar of [1..8], 2 levels: cA2 = [5, 13], cD2 = [-2, -2].
    let x = matrix(1, 8, (1..=8).map(|v| v as f32).collect());
    let p = params(Wavelet::Haar, Some(2), ExtensionMode::Symmetric);
    let out = ok("wavelet haar of 1..8", b.wavelet(&x, &p));
    let want = matrix(1, 4, vec![5.0, 13.0, -2.0, -2.0]);
    let head = matrix(1, 4, out.data()[..4].to_vec());
    assert_close_rows("wavelet haar of 1..8", &head, &want, 1e-6 * tol);
}

fn nan_spreads_locally(b: &dyn KernelBackend, _tol: f32) {
    let mut x = Matrix::filled(1, 64, 1.0);
    x.data_mut()[10] = f32::NAN;
    let p = params(Wavelet::Db(2), Some(1), ExtensionMode::Periodization);
    let out = ok("wavelet with NaN", b.wavelet(&x, &p));
    let nans = out.data().iter().filter(|v| v.is_nan()).count();
    assert!(
        nans > 0 && nans < out.cols(),
        "wavelet with NaN: only the coefficients whose filter covers it: {:?}",
        out.data()
    );
}

fn bad_arguments(b: &dyn KernelBackend, _tol: f32) {
    let x = Matrix::filled(1, 10, 0.0);
    // db2 on 10 samples: the maximum level is 1.
    let p = params(Wavelet::Db(2), Some(2), ExtensionMode::Symmetric);
    expect_invalid_argument("wavelet above the maximum level", b.wavelet(&x, &p));
    let p = params(Wavelet::Db(11), None, ExtensionMode::Symmetric);
    expect_invalid_argument("wavelet db11", b.wavelet(&x, &p));
    let haar = params(Wavelet::Haar, None, ExtensionMode::Symmetric);
    expect_invalid_argument(
        "wavelet of empty rows",
        b.wavelet(&Matrix::filled(2, 0, 0.0), &haar),
    );
    let no_n = WaveletParams {
        inverse: true,
        ..haar.clone()
    };
    expect_invalid_argument("inverse wavelet without n", b.wavelet(&x, &no_n));
    // 12 samples give 13 haar coefficients (2 + 2 + 3 + 6), not 10.
    expect_invalid_input(
        "inverse wavelet of the wrong width",
        b.wavelet(&x, &inverse_of(&haar, 12)),
    );
    let none = Matrix::filled(0, 10, 0.0);
    let out = ok("wavelet of no rows", b.wavelet(&none, &haar));
    assert_eq!(out.rows(), 0, "wavelet of no rows");
}

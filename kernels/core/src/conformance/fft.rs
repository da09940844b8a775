//! Conformance checks of fft (see the module docs of `crate::conformance`).
//!
//! Tolerances: `|got − ref| ≤ 1e-4 · tol · max(1, max |ref| of the row)` against the reference
//! (the defining DFT sums in f64; backends run f32 FFTs); round trips `1e-5 · tol` of the row's
//! largest value.

use super::{
    Check, Rng, assert_close_rows, checks_of, expect_invalid_argument, expect_invalid_input,
    matrix, ok,
};
use crate::fft::{FftKind, FftNorm, FftParams};
use crate::{KernelBackend, KernelName, Matrix, reference};

pub fn checks() -> Vec<Check> {
    checks_of(
        KernelName::Fft,
        &[
            ("every kind, direction and norm vs the DFT", every_kind),
            ("numpy's cut and zero-pad", cut_and_pad),
            ("irfft ignores imaginary DC and Nyquist", irfft_real_ends),
            ("round trips", round_trips),
            ("NaN, empty and one-point inputs", nan_empty_and_one),
            ("bad arguments", bad_arguments),
        ],
    )
}

const REL: f32 = 1e-4;
const ROUND_TRIP: f32 = 1e-5;
const NORMS: [FftNorm; 3] = [FftNorm::Backward, FftNorm::Ortho, FftNorm::Forward];

fn params(kind: FftKind, inverse: bool, norm: FftNorm, n: Option<usize>) -> FftParams {
    FftParams {
        kind,
        inverse,
        norm,
        n,
    }
}

fn compare(b: &dyn KernelBackend, tol: f32, m: &Matrix, p: &FftParams, what: &str) {
    let want = ok(what, reference::fft::fft(m, p));
    let got = ok(what, b.fft(m, p));
    assert_close_rows(what, &got, &want, REL * tol);
}

/// Powers of two and not, primes, and the lengths where FFT libraries switch algorithms.
fn every_kind(b: &dyn KernelBackend, tol: f32) {
    let mut rng = Rng::new(1);
    for n in [1, 2, 3, 4, 5, 7, 8, 12, 16, 17, 100, 128, 1000, 1024] {
        let rows = if n > 200 { 2 } else { 3 };
        for norm in NORMS {
            for (kind, inverse, cols) in [
                (FftKind::Real, false, n),
                (FftKind::Complex, false, 2 * n),
                (FftKind::Complex, true, 2 * n),
                (FftKind::Real, true, 2 * (n / 2 + 1)),
            ] {
                let m = rng.matrix(rows, cols, -1.0, 1.0);
                // irfft needs n: 2(m − 1) would be even.
                let explicit = (kind == FftKind::Real && inverse).then_some(n);
                let p = params(kind, inverse, norm, explicit);
                let what = format!("fft {kind:?} inverse={inverse} n={n} {norm:?}");
                compare(b, tol, &m, &p, &what);
            }
        }
    }
}

fn cut_and_pad(b: &dyn KernelBackend, tol: f32) {
    let mut rng = Rng::new(2);
    for (kind, inverse, cols, n) in [
        (FftKind::Real, false, 10, Some(16)),
        (FftKind::Real, false, 10, Some(7)),
        (FftKind::Complex, false, 20, Some(13)),
        (FftKind::Complex, true, 20, Some(32)),
        // irfft: default n = 2(m − 1), an odd n, an n needing more than the input gives.
        (FftKind::Real, true, 18, None),
        (FftKind::Real, true, 18, Some(9)),
        (FftKind::Real, true, 18, Some(40)),
        (FftKind::Real, true, 4, Some(1)),
    ] {
        let m = rng.matrix(3, cols, -1.0, 1.0);
        let p = params(kind, inverse, FftNorm::Backward, n);
        let what = format!("fft {kind:?} inverse={inverse} cols={cols} n={n:?}");
        compare(b, tol, &m, &p, &what);
    }
}

fn irfft_real_ends(b: &dyn KernelBackend, tol: f32) {
    let p = params(FftKind::Real, true, FftNorm::Backward, None);
    let clean = matrix(1, 6, vec![1.0, 0.0, 2.0, 1.0, 3.0, 0.0]);
    let noisy = matrix(1, 6, vec![1.0, 5.0, 2.0, 1.0, 3.0, -7.0]);
    let what = "irfft with imaginary DC / Nyquist";
    let want = ok(what, reference::fft::fft(&clean, &p));
    assert_close_rows(what, &ok(what, b.fft(&noisy, &p)), &want, REL * tol);
}

/// Forward then inverse gives the input back, in every norm (long rows included: no
/// reference needed).
fn round_trips(b: &dyn KernelBackend, tol: f32) {
    let mut rng = Rng::new(3);
    for n in [1, 6, 31, 64, 1000, 4096, 4099, 1 << 16] {
        for norm in NORMS {
            let x = rng.matrix(2, 2 * n, -1.0, 1.0);
            let what = format!("fft c2c round trip n={n} {norm:?}");
            let f = ok(
                &what,
                b.fft(&x, &params(FftKind::Complex, false, norm, None)),
            );
            let back = ok(
                &what,
                b.fft(&f, &params(FftKind::Complex, true, norm, None)),
            );
            assert_close_rows(&what, &back, &x, ROUND_TRIP * tol);
            let x = rng.matrix(2, n, -1.0, 1.0);
            let what = format!("fft r2c round trip n={n} {norm:?}");
            let f = ok(&what, b.fft(&x, &params(FftKind::Real, false, norm, None)));
            let back = ok(
                &what,
                b.fft(&f, &params(FftKind::Real, true, norm, Some(n))),
            );
            assert_close_rows(&what, &back, &x, ROUND_TRIP * tol);
        }
    }
}

fn nan_empty_and_one(b: &dyn KernelBackend, _tol: f32) {
    let mut m = Rng::new(6).matrix(2, 16, -1.0, 1.0);
    m.data_mut()[2] = f32::NAN;
    let c2c = params(FftKind::Complex, false, FftNorm::Backward, None);
    let out = ok("fft with NaN", b.fft(&m, &c2c));
    // Which components turn NaN depends on the butterflies (a real-part NaN need not meet an
    // imaginary sum), as in numpy: at least half of them do.
    let nans = out.row(0).iter().filter(|v| v.is_nan()).count();
    assert!(nans >= out.cols() / 2, "fft with NaN: {:?}", out.row(0));
    assert!(
        out.row(1).iter().all(|v| v.is_finite()),
        "fft with NaN: the other row must stay finite: {:?}",
        out.row(1)
    );
    let rfft = params(FftKind::Real, false, FftNorm::Backward, None);
    let empty = Matrix::filled(3, 0, 0.0);
    for kind in [FftKind::Real, FftKind::Complex] {
        let p = params(kind, false, FftNorm::Backward, None);
        let out = ok("fft of empty rows", b.fft(&empty, &p));
        assert_eq!(
            (out.rows(), out.cols()),
            (3, 0),
            "fft {kind:?} of empty rows"
        );
    }
    // Zero-width rows with an explicit n: the zero-padded input transforms to zeros.
    for (kind, inverse, out_cols) in [
        (FftKind::Real, false, 6),
        (FftKind::Real, true, 4),
        (FftKind::Complex, false, 8),
    ] {
        let what = format!("fft {kind:?} inverse={inverse} n=4 of empty rows");
        let p = params(kind, inverse, FftNorm::Backward, Some(4));
        let out = ok(&what, b.fft(&empty, &p));
        assert_close_rows(&what, &out, &Matrix::filled(3, out_cols, 0.0), 0.0);
    }
    let out = ok("fft of no rows", b.fft(&Matrix::filled(0, 8, 0.0), &rfft));
    assert_eq!((out.rows(), out.cols()), (0, 10), "rfft of 0 x 8");
    let out = ok("rfft of one value", b.fft(&matrix(1, 1, vec![2.5]), &rfft));
    assert_eq!(out.data(), &[2.5, 0.0], "rfft of one value");
}

fn bad_arguments(b: &dyn KernelBackend, _tol: f32) {
    let odd = Matrix::filled(1, 5, 0.0);
    for (kind, inverse) in [
        (FftKind::Complex, false),
        (FftKind::Complex, true),
        (FftKind::Real, true),
    ] {
        let p = params(kind, inverse, FftNorm::Backward, None);
        let what = format!("fft {kind:?} inverse={inverse} of 5 interleaved values");
        expect_invalid_input(&what, b.fft(&odd, &p));
    }
    let p = params(FftKind::Real, true, FftNorm::Backward, None);
    expect_invalid_argument(
        "irfft of one bin with the default n",
        b.fft(&matrix(1, 2, vec![1.0, 0.0]), &p),
    );
    let p = params(FftKind::Real, true, FftNorm::Backward, Some(0));
    expect_invalid_argument("irfft with n = 0", b.fft(&Matrix::filled(1, 8, 0.0), &p));
}

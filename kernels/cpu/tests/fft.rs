#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CPU FFT against the reference (naive DFT in f64) for every kind, direction and norm on
//! random rows of many lengths (powers of two and not), numpy's cut / zero-pad, round trips,
//! a long single transform against rustfft in f64, edge cases and errors.
//! Tolerance: |cpu − ref| ≤ 1e-4 · max(1, max |ref| of the row) (f32 FFT vs f64 DFT); round
//! trips 1e-5 of the row's largest value.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rustfft::FftPlanner;
use rustfft::num_complex::Complex;
use serrano_kernel_core::fft::{FftKind, FftNorm, FftParams};
use serrano_kernel_core::{KernelError, Matrix, reference};
use serrano_kernel_cpu::fft::fft;

fn params(kind: FftKind, inverse: bool, norm: FftNorm, n: Option<usize>) -> FftParams {
    FftParams {
        kind,
        inverse,
        norm,
        n,
    }
}

fn random(rng: &mut StdRng, rows: usize, cols: usize) -> Matrix {
    let data = (0..rows * cols)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    Matrix::new(rows, cols, data).unwrap()
}

fn assert_close(got: &Matrix, want: &Matrix, rel: f32, what: &str) {
    assert_eq!(
        (got.rows(), got.cols()),
        (want.rows(), want.cols()),
        "{what}"
    );
    for r in 0..want.rows() {
        let scale = want.row(r).iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for (c, (&a, &b)) in got.row(r).iter().zip(want.row(r)).enumerate() {
            assert!(
                (a - b).abs() <= rel * scale,
                "{what}: row {r} col {c}: got {a}, want {b} (scale {scale})"
            );
        }
    }
}

const LENGTHS: [usize; 14] = [1, 2, 3, 4, 5, 7, 8, 12, 16, 17, 100, 128, 1000, 1024];
const NORMS: [FftNorm; 3] = [FftNorm::Backward, FftNorm::Ortho, FftNorm::Forward];

#[test]
fn forward_and_inverse_match_the_dft() {
    let mut rng = StdRng::seed_from_u64(1);
    for n in LENGTHS {
        let rows = if n > 200 { 2 } else { 3 };
        for norm in NORMS {
            for (kind, inverse, cols) in [
                (FftKind::Real, false, n),
                (FftKind::Complex, false, 2 * n),
                (FftKind::Complex, true, 2 * n),
                (FftKind::Real, true, 2 * (n / 2 + 1)),
            ] {
                let m = random(&mut rng, rows, cols);
                let explicit_n = if kind == FftKind::Real && inverse {
                    Some(n)
                } else {
                    None
                };
                let p = params(kind, inverse, norm, explicit_n);
                let want = reference::fft::fft(&m, &p).unwrap();
                let got = fft(&m, &p).unwrap();
                assert_close(
                    &got,
                    &want,
                    1e-4,
                    &format!("{kind:?} inverse={inverse} n={n} {norm:?}"),
                );
            }
        }
    }
}

#[test]
fn numpy_lengths_cut_and_pad() {
    let mut rng = StdRng::seed_from_u64(2);
    let cases = [
        (FftKind::Real, false, 10, Some(16)),
        (FftKind::Real, false, 10, Some(7)),
        (FftKind::Complex, false, 20, Some(13)),
        (FftKind::Complex, true, 20, Some(32)),
        // irfft: default n = 2(m − 1), explicit odd n, n needing more than the input gives.
        (FftKind::Real, true, 18, None),
        (FftKind::Real, true, 18, Some(9)),
        (FftKind::Real, true, 18, Some(40)),
        (FftKind::Real, true, 4, Some(1)),
    ];
    for (kind, inverse, cols, n) in cases {
        let m = random(&mut rng, 3, cols);
        let p = params(kind, inverse, FftNorm::Backward, n);
        let want = reference::fft::fft(&m, &p).unwrap();
        assert_close(
            &fft(&m, &p).unwrap(),
            &want,
            1e-4,
            &format!("{kind:?} {inverse} {cols} {n:?}"),
        );
    }
}

#[test]
fn irfft_ignores_imaginary_dc_and_nyquist() {
    let p = params(FftKind::Real, true, FftNorm::Backward, None);
    let a = Matrix::new(1, 6, vec![1.0, 0.0, 2.0, 1.0, 3.0, 0.0]).unwrap();
    let b = Matrix::new(1, 6, vec![1.0, 5.0, 2.0, 1.0, 3.0, -7.0]).unwrap();
    assert_close(
        &fft(&b, &p).unwrap(),
        &fft(&a, &p).unwrap(),
        1e-6,
        "imag of DC / Nyquist",
    );
}

#[test]
fn round_trips() {
    let mut rng = StdRng::seed_from_u64(3);
    for n in [1, 6, 31, 64, 1000, 4096, 4099] {
        for norm in NORMS {
            let x = random(&mut rng, 2, 2 * n);
            let f = fft(&x, &params(FftKind::Complex, false, norm, None)).unwrap();
            let back = fft(&f, &params(FftKind::Complex, true, norm, None)).unwrap();
            assert_close(&back, &x, 1e-5, &format!("c2c round trip n={n} {norm:?}"));
            let x = random(&mut rng, 2, n);
            let f = fft(&x, &params(FftKind::Real, false, norm, None)).unwrap();
            let back = fft(&f, &params(FftKind::Real, true, norm, Some(n))).unwrap();
            assert_close(&back, &x, 1e-5, &format!("r2c round trip n={n} {norm:?}"));
        }
    }
}

fn to_complex(m: &[f32]) -> Vec<Complex<f32>> {
    m.chunks_exact(2)
        .map(|c| Complex::new(c[0], c[1]))
        .collect()
}

#[test]
fn a_long_single_transform_matches_f64() {
    // One row of 2^18 points (the one-row-at-a-time path) against rustfft in f64.
    let n = 1 << 18;
    let mut rng = StdRng::seed_from_u64(5);
    let m = random(&mut rng, 1, 2 * n);
    let got = fft(
        &m,
        &params(FftKind::Complex, false, FftNorm::Backward, None),
    )
    .unwrap();
    let mut want: Vec<Complex<f64>> = to_complex(m.data())
        .iter()
        .map(|c| Complex::new(c.re as f64, c.im as f64))
        .collect();
    FftPlanner::<f64>::new()
        .plan_fft_forward(n)
        .process(&mut want);
    let scale = want
        .iter()
        .fold(0.0f64, |s, c| s.max(c.re.abs()).max(c.im.abs()));
    for (k, (g, w)) in got.data().chunks_exact(2).zip(&want).enumerate() {
        let err = (g[0] as f64 - w.re).abs().max((g[1] as f64 - w.im).abs());
        assert!(err <= 1e-4 * scale, "bin {k}: got {g:?}, want {w}");
    }
}

#[test]
fn nan_spreads_and_empty_rows_stay_empty() {
    let mut m = random(&mut StdRng::seed_from_u64(6), 2, 16);
    m.data_mut()[2] = f32::NAN;
    let out = fft(
        &m,
        &params(FftKind::Complex, false, FftNorm::Backward, None),
    )
    .unwrap();
    // Which bins turn NaN depends on the butterflies (a real-part NaN never meets an
    // imaginary sum that skips it), as in numpy: most of them do.
    let nans = out.row(0).iter().filter(|v| v.is_nan()).count();
    assert!(nans >= out.cols() / 2, "{:?}", out.row(0));
    assert!(out.row(1).iter().all(|v| v.is_finite()));
    let empty = Matrix::new(3, 0, vec![]).unwrap();
    for kind in [FftKind::Real, FftKind::Complex] {
        let out = fft(&empty, &params(kind, false, FftNorm::Backward, None)).unwrap();
        assert_eq!((out.rows(), out.cols()), (3, 0));
    }
    let no_rows = Matrix::new(0, 8, vec![]).unwrap();
    let out = fft(
        &no_rows,
        &params(FftKind::Real, false, FftNorm::Backward, None),
    )
    .unwrap();
    assert_eq!((out.rows(), out.cols()), (0, 10));
    let one = Matrix::new(1, 1, vec![2.5]).unwrap();
    let out = fft(&one, &params(FftKind::Real, false, FftNorm::Backward, None)).unwrap();
    assert_eq!(out.data(), &[2.5, 0.0]);
}

#[test]
fn bad_arguments_are_errors() {
    let odd = Matrix::new(1, 5, vec![0.0; 5]).unwrap();
    for (kind, inverse) in [
        (FftKind::Complex, false),
        (FftKind::Complex, true),
        (FftKind::Real, true),
    ] {
        assert!(matches!(
            fft(&odd, &params(kind, inverse, FftNorm::Backward, None)),
            Err(KernelError::InvalidInput(_))
        ));
    }
    let one_bin = Matrix::new(1, 2, vec![1.0, 0.0]).unwrap();
    let p = params(FftKind::Real, true, FftNorm::Backward, None);
    assert!(matches!(
        fft(&one_bin, &p),
        Err(KernelError::InvalidArgument(_))
    ));
    let p = params(FftKind::Real, true, FftNorm::Backward, Some(0));
    assert!(matches!(
        fft(&Matrix::new(1, 8, vec![0.0; 8]).unwrap(), &p),
        Err(KernelError::InvalidArgument(_))
    ));
}

#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What only the CPU FFT has (the shared checks are in `serrano_kernel_core::conformance::fft`):
//! the one-row-at-a-time path of a long transform, against rustfft in f64 (the reference DFT is
//! O(n²)), and `fft_into` with its caller's buffer. Tolerance: 1e-4 of the largest bin.

use rustfft::FftPlanner;
use rustfft::num_complex::Complex;
use serrano_kernel_core::conformance::Rng;
use serrano_kernel_core::fft::{FftKind, FftNorm, FftParams};
use serrano_kernel_core::{KernelError, Matrix};
use serrano_kernel_cpu::fft::{fft, fft_into};

const C2C: FftParams = FftParams {
    kind: FftKind::Complex,
    inverse: false,
    norm: FftNorm::Backward,
    n: None,
};

#[test]
fn a_long_single_transform_matches_f64() {
    let n = 1 << 18;
    let m = Rng::new(5).matrix(1, 2 * n, -1.0, 1.0);
    let got = fft(&m, &C2C).unwrap();
    let mut want: Vec<Complex<f64>> = m
        .data()
        .chunks_exact(2)
        .map(|c| Complex::new(c[0] as f64, c[1] as f64))
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
fn fft_into_fills_the_callers_buffer_and_checks_its_length() {
    let m = Rng::new(7).matrix(3, 40, -1.0, 1.0);
    let real = FftParams {
        kind: FftKind::Real,
        ..C2C
    };
    for p in [
        FftParams {
            n: Some(50),
            ..real.clone()
        },
        FftParams {
            inverse: true,
            ..C2C
        },
        FftParams {
            inverse: true,
            n: Some(30),
            ..real.clone()
        },
    ] {
        let want = fft(&m, &p).unwrap();
        // A dirty buffer: every value must be written.
        let mut out = vec![f32::NAN; want.len()];
        fft_into(&m, &p, &mut out).unwrap();
        assert_eq!(out, want.data(), "{p:?}");
        let mut short = vec![0.0; want.len() - 1];
        assert!(matches!(
            fft_into(&m, &p, &mut short),
            Err(KernelError::InvalidInput(_))
        ));
    }
    let mut none: Vec<f32> = Vec::new();
    let empty = Matrix::filled(0, 8, 0.0);
    fft_into(&empty, &real, &mut none).unwrap();
}

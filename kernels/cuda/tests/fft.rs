#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CUDA FFT (cuFFT) against the reference DFT for every kind, direction and norm, numpy's
//! cut / zero-pad, round trips and errors (skipped with the reason where there is no GPU).
//! Tolerance: |gpu − ref| ≤ 1e-4 · max(1, max |ref| of the row); round trips 1e-5.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serrano_kernel_core::fft::{FftKind, FftNorm, FftParams};
use serrano_kernel_core::{KernelBackend, KernelError, Matrix, reference};
use serrano_kernel_cuda::CudaBackend;

fn backend() -> Option<CudaBackend> {
    match CudaBackend::probe() {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("SKIPPED: {e}");
            None
        }
    }
}

#[test]
fn source_exports_the_kernels() {
    if !serrano_kernel_cuda::nvrtc_available() {
        eprintln!("SKIPPED: libnvrtc not found");
        return;
    }
    let ptx = serrano_kernel_cuda::compile("fft", serrano_kernel_cuda::fft::SOURCE, Some("sm_90"))
        .unwrap()
        .to_src();
    for name in ["fft_stage_real", "fft_stage_complex", "fft_scale"] {
        assert!(ptx.contains(&format!(".entry {name}")), "{name} missing");
    }
}

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
                "{what}: row {r} col {c}: got {a}, want {b}"
            );
        }
    }
}

#[test]
fn matches_the_reference() {
    let Some(gpu) = backend() else { return };
    let mut rng = StdRng::seed_from_u64(51);
    for n in [1, 2, 3, 5, 8, 17, 100, 128, 1000, 1024] {
        for norm in [FftNorm::Backward, FftNorm::Ortho, FftNorm::Forward] {
            for (kind, inverse, cols) in [
                (FftKind::Real, false, n),
                (FftKind::Complex, false, 2 * n),
                (FftKind::Complex, true, 2 * n),
                (FftKind::Real, true, 2 * (n / 2 + 1)),
            ] {
                let m = random(&mut rng, 3, cols);
                let explicit = if kind == FftKind::Real && inverse {
                    Some(n)
                } else {
                    None
                };
                let p = params(kind, inverse, norm, explicit);
                let want = reference::fft::fft(&m, &p).unwrap();
                let got = gpu.fft(&m, &p).unwrap();
                assert_close(
                    &got,
                    &want,
                    1e-4,
                    &format!("{kind:?} inverse={inverse} n={n} {norm:?}"),
                );
            }
        }
    }
    for (kind, inverse, cols, n) in [
        (FftKind::Real, false, 10, Some(16)),
        (FftKind::Complex, false, 20, Some(13)),
        (FftKind::Real, true, 18, None),
        (FftKind::Real, true, 18, Some(9)),
        (FftKind::Real, true, 18, Some(40)),
    ] {
        let m = random(&mut rng, 2, cols);
        let p = params(kind, inverse, FftNorm::Backward, n);
        let want = reference::fft::fft(&m, &p).unwrap();
        assert_close(
            &gpu.fft(&m, &p).unwrap(),
            &want,
            1e-4,
            &format!("{kind:?} {cols} {n:?}"),
        );
    }
}

#[test]
fn round_trips_and_errors() {
    let Some(gpu) = backend() else { return };
    let mut rng = StdRng::seed_from_u64(52);
    for n in [7, 4096, 1 << 16] {
        let x = random(&mut rng, 4, 2 * n);
        let f = gpu
            .fft(&x, &params(FftKind::Complex, false, FftNorm::Ortho, None))
            .unwrap();
        let back = gpu
            .fft(&f, &params(FftKind::Complex, true, FftNorm::Ortho, None))
            .unwrap();
        assert_close(&back, &x, 1e-5, &format!("c2c n={n}"));
        let x = random(&mut rng, 4, n);
        let f = gpu
            .fft(&x, &params(FftKind::Real, false, FftNorm::Backward, None))
            .unwrap();
        let back = gpu
            .fft(&f, &params(FftKind::Real, true, FftNorm::Backward, Some(n)))
            .unwrap();
        assert_close(&back, &x, 1e-5, &format!("r2c n={n}"));
    }
    let odd = Matrix::new(1, 5, vec![0.0; 5]).unwrap();
    let p = params(FftKind::Complex, false, FftNorm::Backward, None);
    assert!(matches!(
        gpu.fft(&odd, &p),
        Err(KernelError::InvalidInput(_))
    ));
    let p = params(FftKind::Real, true, FftNorm::Backward, Some(0));
    assert!(matches!(
        gpu.fft(&Matrix::new(1, 4, vec![0.0; 4]).unwrap(), &p),
        Err(KernelError::InvalidArgument(_))
    ));
    let empty = gpu
        .fft(
            &Matrix::new(2, 0, vec![]).unwrap(),
            &params(FftKind::Real, false, FftNorm::Backward, None),
        )
        .unwrap();
    assert_eq!((empty.rows(), empty.cols()), (2, 0));
}

#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What only the CUDA FFT has (the shared checks are in `serrano_kernel_core::conformance::fft`):
//! [`ResidentFft`], the prepared transform on device-resident data that the benchmark runs
//! again and again. Skipped with the reason where there is no GPU.

use serrano_kernel_core::conformance::{Rng, assert_close_rows};
use serrano_kernel_core::fft::{FftKind, FftNorm, FftParams};
use serrano_kernel_core::{KernelBackend, KernelError, Matrix};
use serrano_kernel_cuda::CudaBackend;
use serrano_kernel_cuda::fft::ResidentFft;

fn params(kind: FftKind, inverse: bool, n: Option<usize>) -> FftParams {
    FftParams {
        kind,
        inverse,
        norm: FftNorm::Ortho,
        n,
    }
}

#[test]
fn a_resident_transform_runs_again_with_the_same_result() {
    let Ok(b) = CudaBackend::probe().inspect_err(|e| eprintln!("SKIPPED: {e}")) else {
        return;
    };
    let gpu = b.gpu();
    let stream = gpu.stream();
    let mut rng = Rng::new(3);
    // Staged (cut / padded, and every irfft) and direct inputs.
    for (p, cols) in [
        (params(FftKind::Complex, false, None), 2 * 256),
        (params(FftKind::Complex, true, Some(300)), 2 * 256),
        (params(FftKind::Real, false, None), 1000),
        (params(FftKind::Real, false, Some(512)), 1000),
        (params(FftKind::Real, true, Some(64)), 2 * 33),
    ] {
        let m = rng.matrix(5, cols, -1.0, 1.0);
        let want = b.fft(&m, &p).unwrap();
        let mut plan = ResidentFft::new(gpu, m.rows(), m.cols(), &p).unwrap();
        assert_eq!(plan.out_cols(), want.cols(), "{p:?}");
        for run in 0..2 {
            // A fresh copy each time: cuFFT may overwrite a complex input.
            let mut input = stream.clone_htod(m.data()).unwrap();
            plan.run(gpu, &mut input).unwrap();
            let got = stream.clone_dtoh(plan.output()).unwrap();
            let got = Matrix::new(m.rows(), plan.out_cols(), got).unwrap();
            assert_close_rows(&format!("{p:?} run {run}"), &got, &want, 1e-6);
        }
        let mut short = stream.alloc_zeros::<f32>(m.len() - 1).unwrap();
        assert!(matches!(
            plan.run(gpu, &mut short),
            Err(KernelError::InvalidInput(_))
        ));
    }
    assert!(matches!(
        ResidentFft::new(gpu, 2, 2, &params(FftKind::Complex, false, None)),
        Err(KernelError::InvalidArgument(_))
    ));
}

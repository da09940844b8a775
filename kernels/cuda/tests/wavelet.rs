#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CUDA wavelet transform against the reference for every wavelet and mode, forward and
//! inverse, and perfect reconstruction (skipped with the reason where there is no GPU).
//! Tolerance: |gpu − ref| ≤ 2e-5 · max(1, max |ref| of the row); round trips 1e-5.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serrano_kernel_core::wavelet::{ExtensionMode, Wavelet, WaveletParams, dwt_max_level};
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
    let ptx = serrano_kernel_cuda::compile(
        "wavelet",
        serrano_kernel_cuda::wavelet::SOURCE,
        Some("sm_90"),
    )
    .unwrap()
    .to_src();
    for name in ["dwt_level", "idwt_level"] {
        assert!(ptx.contains(&format!(".entry {name}")), "{name} missing");
    }
}

fn random(rng: &mut StdRng, rows: usize, cols: usize) -> Matrix {
    let data = (0..rows * cols)
        .map(|_| rng.random_range(-10.0..10.0))
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
fn matches_the_reference_and_reconstructs() {
    let Some(gpu) = backend() else { return };
    let mut rng = StdRng::seed_from_u64(61);
    let mut wavelets = vec![Wavelet::Haar];
    wavelets.extend((1..=10).map(Wavelet::Db));
    for w in wavelets {
        for mode in [
            ExtensionMode::Symmetric,
            ExtensionMode::Periodization,
            ExtensionMode::Zero,
        ] {
            for n in [1, 5, 40, 257, 1000] {
                let max = dwt_max_level(n, w.filter_len().unwrap());
                for levels in [None, Some(0), Some(max.min(1))] {
                    let what = format!("{w:?} {mode:?} n={n} levels={levels:?}");
                    let x = random(&mut rng, 5, n);
                    let p = WaveletParams {
                        wavelet: w,
                        levels,
                        mode,
                        inverse: false,
                        n: None,
                    };
                    let want = reference::wavelet::wavelet(&x, &p).unwrap();
                    let got = gpu.wavelet(&x, &p).unwrap();
                    assert_close(&got, &want, 2e-5, &what);
                    let inv = WaveletParams {
                        inverse: true,
                        n: Some(n),
                        ..p
                    };
                    let back = gpu.wavelet(&got, &inv).unwrap();
                    assert_close(&back, &x, 1e-5, &format!("round trip {what}"));
                    let c = random(&mut rng, 5, got.cols());
                    let want = reference::wavelet::wavelet(&c, &inv).unwrap();
                    assert_close(
                        &gpu.wavelet(&c, &inv).unwrap(),
                        &want,
                        2e-5,
                        &format!("inverse {what}"),
                    );
                }
            }
        }
    }
}

#[test]
fn errors() {
    let Some(gpu) = backend() else { return };
    let x = Matrix::new(1, 10, vec![0.0; 10]).unwrap();
    let p = WaveletParams {
        wavelet: Wavelet::Db(2),
        levels: Some(2),
        mode: ExtensionMode::Symmetric,
        inverse: false,
        n: None,
    };
    assert!(matches!(
        gpu.wavelet(&x, &p),
        Err(KernelError::InvalidArgument(_))
    ));
    let inv = WaveletParams {
        inverse: true,
        n: Some(12),
        levels: None,
        ..p
    };
    assert!(matches!(
        gpu.wavelet(&x, &inv),
        Err(KernelError::InvalidInput(_))
    ));
}

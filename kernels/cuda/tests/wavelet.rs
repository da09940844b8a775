#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What only the CUDA wavelet transform has (the shared checks are in
//! `serrano_kernel_core::conformance::wavelet`): the device-resident entry point, including the
//! zero-level copy that the host entry point answers without the GPU. Skipped with the reason
//! where there is no GPU.

use serrano_kernel_core::conformance::Rng;
use serrano_kernel_core::wavelet::{ExtensionMode, Wavelet, WaveletParams};
use serrano_kernel_core::{KernelBackend, KernelError};
use serrano_kernel_cuda::CudaBackend;
use serrano_kernel_cuda::wavelet::wavelet_resident;

fn params(levels: usize, inverse: bool) -> WaveletParams {
    WaveletParams {
        wavelet: Wavelet::Db(3),
        levels: Some(levels),
        mode: ExtensionMode::Periodization,
        inverse,
        n: inverse.then_some(100),
    }
}

#[test]
fn resident_transform_matches_the_host_entry_point() {
    let Ok(b) = CudaBackend::probe().inspect_err(|e| eprintln!("SKIPPED: {e}")) else {
        return;
    };
    let gpu = b.gpu();
    let stream = gpu.stream();
    let x = Rng::new(4).matrix(6, 100, -10.0, 10.0);
    for levels in [0, 2] {
        let fwd = params(levels, false);
        let layout = fwd.layout(100).unwrap();
        let input = stream.clone_htod(x.data()).unwrap();
        let coeffs = wavelet_resident(gpu, &input, 6, &fwd, &layout).unwrap();
        let got = stream.clone_dtoh(&coeffs).unwrap();
        assert_eq!(got, b.wavelet(&x, &fwd).unwrap().data(), "levels {levels}");
        let inv = params(levels, true);
        let inv_layout = inv.layout(layout.out_cols).unwrap();
        let back = wavelet_resident(gpu, &coeffs, 6, &inv, &inv_layout).unwrap();
        let back = stream.clone_dtoh(&back).unwrap();
        for (a, e) in back.iter().zip(x.data()) {
            assert!((a - e).abs() <= 2e-5 * 10.0, "levels {levels}: {a} vs {e}");
        }
        if levels > 0 {
            // A layout made for other parameters is refused, not followed out of the buffers.
            let symmetric = WaveletParams {
                mode: ExtensionMode::Symmetric,
                ..fwd.clone()
            };
            let other = symmetric.layout(100).unwrap();
            assert!(matches!(
                wavelet_resident(gpu, &input, 6, &fwd, &other),
                Err(KernelError::InvalidArgument(_))
            ));
        }
        let short = stream.alloc_zeros::<f32>(6 * 100 - 1).unwrap();
        assert!(matches!(
            wavelet_resident(gpu, &short, 6, &fwd, &layout),
            Err(KernelError::InvalidInput(_))
        ));
    }
}

#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What is particular to the CUDA Savitzky-Golay (the shared checks, against the reference, are in
//! `serrano_kernel_core::conformance::savgol`): the names the host looks up in the source (with
//! NVRTC alone), the one constant-memory coefficient buffer under concurrent calls, and the
//! device-resident benchmark path (skipped, with the reason printed, where
//! `CudaBackend::probe()` fails: no driver or no GPU).

use serrano_kernel_core::savgol::{EdgeMode, SavgolParams};
use serrano_kernel_core::{KernelBackend, Matrix, reference};
use serrano_kernel_cuda::CudaBackend;

/// The host looks the kernels and the constant buffer up by name, and sizes its copies by
/// SG_MAX_CONST = 4095 floats; checked without a GPU.
#[test]
fn source_exports_the_kernels_and_the_constant_buffer() {
    if !serrano_kernel_cuda::nvrtc_available() {
        eprintln!("SKIPPED: libnvrtc not found");
        return;
    }
    let ptx =
        serrano_kernel_cuda::compile("savgol", serrano_kernel_cuda::savgol::SOURCE, Some("sm_90"))
            .unwrap()
            .to_src();
    for name in ["savgol_tiled", "savgol_direct"] {
        assert!(ptx.contains(&format!(".entry {name}")), "{name} missing");
    }
    assert!(
        ptx.contains("SG_COEFFS[16380]"),
        "SG_COEFFS is not 4095 floats"
    );
}

fn params(window: usize, mode: EdgeMode) -> SavgolParams {
    SavgolParams {
        window,
        polyorder: 3,
        deriv: 0,
        delta: 1.0,
        mode,
    }
}

/// Threads filtering with different windows at once must each see their own coefficients (they
/// share SG_COEFFS): every result matches the reference.
#[test]
fn concurrent_calls_keep_their_coefficients() {
    let Ok(b) = CudaBackend::probe().inspect_err(|e| eprintln!("SKIPPED: no usable GPU: {e}"))
    else {
        return;
    };
    let x = Matrix::new(
        4,
        3000,
        (0..12_000)
            .map(|i| ((i * 7919) % 2001) as f32 * 1e-3 - 1.0)
            .collect(),
    )
    .unwrap();
    std::thread::scope(|s| {
        for (t, w) in [5usize, 11, 31, 101].into_iter().enumerate() {
            let (b, x) = (&b, &x);
            s.spawn(move || {
                let mode = if t % 2 == 0 {
                    EdgeMode::Interp
                } else {
                    EdgeMode::Mirror
                };
                let p = params(w, mode);
                let want = reference::savgol::savgol(x, &p).unwrap();
                for round in 0..20 {
                    let got = b.savgol(x, &p).unwrap();
                    for (i, (g, r)) in got.data().iter().zip(want.data()).enumerate() {
                        assert!(
                            (g - r).abs() < 1e-4,
                            "window {w}, round {round}, value {i}: {g} vs reference {r}"
                        );
                    }
                }
            });
        }
    });
}

#[test]
fn device_resident_bench_runs() {
    let Ok(b) = CudaBackend::probe().inspect_err(|e| eprintln!("SKIPPED: no usable GPU: {e}"))
    else {
        return;
    };
    for w in [31, 4097] {
        let t = serrano_kernel_cuda::savgol::bench_device(
            b.gpu(),
            2,
            1 << 16,
            &params(w, EdgeMode::Interp),
        )
        .unwrap();
        eprintln!("2 x 64k samples, window {w}, on the device: {t:?}");
        assert!(t.as_nanos() > 0);
    }
    assert!(
        serrano_kernel_cuda::savgol::bench_device(b.gpu(), 1, 10, &params(31, EdgeMode::Interp))
            .is_err()
    );
}

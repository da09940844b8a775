#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What is particular to the CUDA Black-Scholes (the shared checks, against the reference, are in
//! `serrano_kernel_core::conformance::black_scholes`): the kernel names the host looks up, and
//! the device-resident, structure-of-arrays benchmark path (skipped, with the reason printed,
//! where `CudaBackend::probe()` fails).

use serrano_kernel_cuda::CudaBackend;

#[test]
fn source_exports_the_kernels() {
    if !serrano_kernel_cuda::nvrtc_available() {
        eprintln!("SKIPPED: libnvrtc not found");
        return;
    }
    let ptx = serrano_kernel_cuda::compile(
        "black_scholes",
        serrano_kernel_cuda::black_scholes::SOURCE,
        Some("sm_90"),
    )
    .unwrap()
    .to_src();
    for name in ["bs_strided", "bs_soa4"] {
        assert!(ptx.contains(&format!(".entry {name}")), "{name} missing");
    }
}

#[test]
fn device_resident_bench_runs() {
    let Ok(b) = CudaBackend::probe().inspect_err(|e| eprintln!("SKIPPED: no usable GPU: {e}"))
    else {
        return;
    };
    let t = serrano_kernel_cuda::black_scholes::bench_device(b.gpu(), 1 << 20).unwrap();
    eprintln!("1M options on the device: {t:?}");
    assert!(t.as_nanos() > 0);
    assert!(serrano_kernel_cuda::black_scholes::bench_device(b.gpu(), 3).is_err());
}

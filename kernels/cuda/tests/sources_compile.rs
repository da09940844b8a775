//! Every CUDA source compiles with NVRTC for the GPUs we target. Needs only libnvrtc (no GPU):
//! `scripts/install-deps` installs it from PyPI (nvidia-cuda-nvrtc) and `scripts/test` puts it on
//! LD_LIBRARY_PATH. Skipped with a printed reason where NVRTC is absent, unless
//! SERRANO_REQUIRE_NVRTC=1.

#[test]
fn every_source_compiles_for_sm80_and_sm90() {
    if !serrano_kernel_cuda::nvrtc_available() {
        assert!(
            std::env::var("SERRANO_REQUIRE_NVRTC").as_deref() != Ok("1"),
            "SERRANO_REQUIRE_NVRTC=1 but libnvrtc cannot be loaded"
        );
        eprintln!("SKIPPED: libnvrtc not found (install nvidia-cuda-nvrtc or a CUDA toolkit)");
        return;
    }
    for arch in ["sm_80", "sm_90"] {
        for (name, src) in serrano_kernel_cuda::SOURCES {
            if let Err(e) = serrano_kernel_cuda::compile(name, src, Some(arch)) {
                panic!("{name}.cu does not compile for {arch}: {e}");
            }
        }
    }
}

#[test]
fn a_broken_source_is_an_error_not_a_panic() {
    if !serrano_kernel_cuda::nvrtc_available() {
        eprintln!("SKIPPED: libnvrtc not found");
        return;
    }
    let err = serrano_kernel_cuda::compile(
        "broken",
        "extern \"C\" __global__ void f( { }",
        Some("sm_90"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("broken.cu"), "{err}");
}

#[test]
fn probe_without_gpu_is_an_error() {
    match serrano_kernel_cuda::CudaBackend::probe() {
        Ok(b) => eprintln!("GPU present: {:?}", b.gpu()),
        Err(e) => eprintln!("no GPU (expected here): {e}"),
    }
}

#[test]
fn launched_kernels_are_exported() {
    if !serrano_kernel_cuda::nvrtc_available() {
        eprintln!("SKIPPED: libnvrtc not found");
        return;
    }
    use serrano_kernel_cuda::{fft, kalman, min_max, wavelet};
    // The names each module launches, so that a typo fails here and not first on a GPU.
    for (name, src, kernels) in [
        ("kalman", kalman::SOURCE, kalman::KERNELS),
        ("fft", fft::SOURCE, fft::KERNELS),
        ("wavelet", wavelet::SOURCE, wavelet::KERNELS),
        ("min_max", min_max::SOURCE, min_max::KERNELS),
    ] {
        let ptx = serrano_kernel_cuda::compile(name, src, Some("sm_90"))
            .unwrap()
            .to_src();
        for kernel in kernels {
            assert!(
                ptx.contains(&format!(".entry {kernel}(")),
                "{name}.cu does not export {kernel}"
            );
        }
    }
}

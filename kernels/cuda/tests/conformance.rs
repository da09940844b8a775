//! The shared conformance suite on the CUDA family; skipped with the reason where no GPU is present.

serrano_kernel_core::conformance_tests!(
    || match serrano_kernel_cuda::CudaBackend::probe() {
        Ok(b) => Some(Box::new(b)),
        Err(e) => {
            eprintln!("no CUDA GPU: {e}");
            None
        }
    },
    2.0
);

//! The shared conformance suite on the OpenCL family (pocl's CPU device where no GPU is present;
//! skipped with the reason where no OpenCL platform is installed).

serrano_kernel_core::conformance_tests!(
    || match serrano_kernel_opencl::OpenClBackend::probe() {
        Ok(b) => Some(Box::new(b)),
        Err(e) => {
            eprintln!("no OpenCL device: {e}");
            None
        }
    },
    2.0
);

//! The shared conformance suite (`serrano_kernel_core::conformance`) on the CPU family.

serrano_kernel_core::conformance_tests!(
    || Some(Box::new(serrano_kernel_cpu::CpuBackend::new())),
    1.0
);

//! CPU black_scholes (placeholder until implemented).

use serrano_kernel_core::black_scholes::BsParams;
use serrano_kernel_core::{KernelError, Matrix, Result};

pub fn black_scholes(_options: &Matrix, _p: &BsParams) -> Result<Matrix> {
    Err(KernelError::Unsupported {
        kernel: "black_scholes",
        backend: "cpu",
    })
}

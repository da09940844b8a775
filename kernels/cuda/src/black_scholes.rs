//! CUDA black_scholes (placeholder until implemented).

use crate::Gpu;
use serrano_kernel_core::black_scholes::BsParams;
use serrano_kernel_core::{KernelError, Matrix, Result};

pub const SOURCE: &str = include_str!("cu/black_scholes.cu");

pub fn black_scholes(_gpu: &Gpu, _options: &Matrix, _p: &BsParams) -> Result<Matrix> {
    Err(KernelError::Unsupported {
        kernel: "black_scholes",
        backend: "cuda",
    })
}

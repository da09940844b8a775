//! CUDA min_max (placeholder until implemented).

use crate::Gpu;
use serrano_kernel_core::min_max::MinMaxParams;
use serrano_kernel_core::{KernelError, Matrix, Result};

pub const SOURCE: &str = include_str!("cu/min_max.cu");

pub fn min_max(_gpu: &Gpu, _data: &Matrix, _p: &MinMaxParams) -> Result<Matrix> {
    Err(KernelError::Unsupported {
        kernel: "min_max",
        backend: "cuda",
    })
}

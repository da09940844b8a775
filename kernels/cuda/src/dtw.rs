//! CUDA dtw (placeholder until implemented).

use crate::Gpu;
use serrano_kernel_core::dtw::DtwParams;
use serrano_kernel_core::{KernelError, Matrix, Result};

pub const SOURCE: &str = include_str!("cu/dtw.cu");

pub fn dtw(_gpu: &Gpu, _a: &Matrix, _b: &Matrix, _p: &DtwParams) -> Result<Matrix> {
    Err(KernelError::Unsupported {
        kernel: "dtw",
        backend: "cuda",
    })
}

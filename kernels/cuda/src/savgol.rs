//! CUDA savgol (placeholder until implemented).

use crate::Gpu;
use serrano_kernel_core::savgol::SavgolParams;
use serrano_kernel_core::{KernelError, Matrix, Result};

pub const SOURCE: &str = include_str!("cu/savgol.cu");

pub fn savgol(_gpu: &Gpu, _signals: &Matrix, _p: &SavgolParams) -> Result<Matrix> {
    Err(KernelError::Unsupported {
        kernel: "savgol",
        backend: "cuda",
    })
}

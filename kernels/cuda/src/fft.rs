//! CUDA fft (placeholder until implemented).

use crate::Gpu;
use serrano_kernel_core::fft::FftParams;
use serrano_kernel_core::{KernelError, Matrix, Result};

pub const SOURCE: &str = include_str!("cu/fft.cu");

pub fn fft(_gpu: &Gpu, _signals: &Matrix, _p: &FftParams) -> Result<Matrix> {
    Err(KernelError::Unsupported {
        kernel: "fft",
        backend: "cuda",
    })
}

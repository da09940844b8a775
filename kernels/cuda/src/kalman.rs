//! CUDA kalman (placeholder until implemented).

use crate::Gpu;
use serrano_kernel_core::kalman::KalmanParams;
use serrano_kernel_core::{KernelError, Matrix, Result};

pub const SOURCE: &str = include_str!("cu/kalman.cu");

pub fn kalman(_gpu: &Gpu, _tracks: &Matrix, _p: &KalmanParams) -> Result<Matrix> {
    Err(KernelError::Unsupported {
        kernel: "kalman",
        backend: "cuda",
    })
}

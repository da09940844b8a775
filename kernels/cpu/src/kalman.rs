//! CPU kalman (placeholder until implemented).

use serrano_kernel_core::kalman::KalmanParams;
use serrano_kernel_core::{KernelError, Matrix, Result};

pub fn kalman(_tracks: &Matrix, _p: &KalmanParams) -> Result<Matrix> {
    Err(KernelError::Unsupported {
        kernel: "kalman",
        backend: "cpu",
    })
}

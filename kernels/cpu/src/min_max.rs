//! CPU min_max (placeholder until implemented).

use serrano_kernel_core::min_max::MinMaxParams;
use serrano_kernel_core::{KernelError, Matrix, Result};

pub fn min_max(_data: &Matrix, _p: &MinMaxParams) -> Result<Matrix> {
    Err(KernelError::Unsupported {
        kernel: "min_max",
        backend: "cpu",
    })
}

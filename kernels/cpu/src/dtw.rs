//! CPU dtw (placeholder until implemented).

use serrano_kernel_core::dtw::DtwParams;
use serrano_kernel_core::{KernelError, Matrix, Result};

pub fn dtw(_a: &Matrix, _b: &Matrix, _p: &DtwParams) -> Result<Matrix> {
    Err(KernelError::Unsupported {
        kernel: "dtw",
        backend: "cpu",
    })
}

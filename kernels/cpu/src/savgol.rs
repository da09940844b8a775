//! CPU savgol (placeholder until implemented).

use serrano_kernel_core::savgol::SavgolParams;
use serrano_kernel_core::{KernelError, Matrix, Result};

pub fn savgol(_signals: &Matrix, _p: &SavgolParams) -> Result<Matrix> {
    Err(KernelError::Unsupported {
        kernel: "savgol",
        backend: "cpu",
    })
}

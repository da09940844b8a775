//! CPU fft (placeholder until implemented).

use serrano_kernel_core::fft::FftParams;
use serrano_kernel_core::{KernelError, Matrix, Result};

pub fn fft(_signals: &Matrix, _p: &FftParams) -> Result<Matrix> {
    Err(KernelError::Unsupported {
        kernel: "fft",
        backend: "cpu",
    })
}

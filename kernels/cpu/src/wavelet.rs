//! CPU wavelet (placeholder until implemented).

use serrano_kernel_core::wavelet::WaveletParams;
use serrano_kernel_core::{KernelError, Matrix, Result};

pub fn wavelet(_signals: &Matrix, _p: &WaveletParams) -> Result<Matrix> {
    Err(KernelError::Unsupported {
        kernel: "wavelet",
        backend: "cpu",
    })
}

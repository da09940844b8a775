//! CUDA wavelet (placeholder until implemented).

use crate::Gpu;
use serrano_kernel_core::wavelet::WaveletParams;
use serrano_kernel_core::{KernelError, Matrix, Result};

pub const SOURCE: &str = include_str!("cu/wavelet.cu");

pub fn wavelet(_gpu: &Gpu, _signals: &Matrix, _p: &WaveletParams) -> Result<Matrix> {
    Err(KernelError::Unsupported {
        kernel: "wavelet",
        backend: "cuda",
    })
}

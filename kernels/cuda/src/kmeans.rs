//! CUDA kmeans (placeholder until implemented).

use crate::Gpu;
use serrano_kernel_core::kmeans::{KMeansOutput, KMeansParams};
use serrano_kernel_core::{KernelError, Matrix, Result};

pub const SOURCE: &str = include_str!("cu/kmeans.cu");

pub fn kmeans(
    _gpu: &Gpu,
    _data: &Matrix,
    _init: Option<&Matrix>,
    _p: &KMeansParams,
) -> Result<KMeansOutput> {
    Err(KernelError::Unsupported {
        kernel: "kmeans",
        backend: "cuda",
    })
}

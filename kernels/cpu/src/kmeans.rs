//! CPU kmeans (placeholder until implemented).

use serrano_kernel_core::kmeans::{KMeansOutput, KMeansParams};
use serrano_kernel_core::{KernelError, Matrix, Result};

pub fn kmeans(_data: &Matrix, _init: Option<&Matrix>, _p: &KMeansParams) -> Result<KMeansOutput> {
    Err(KernelError::Unsupported {
        kernel: "kmeans",
        backend: "cpu",
    })
}

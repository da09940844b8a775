//! CUDA knn (placeholder until implemented).

use crate::Gpu;
use serrano_kernel_core::knn::{KnnOutput, KnnParams};
use serrano_kernel_core::{KernelError, Matrix, Result};

pub const SOURCE: &str = include_str!("cu/knn.cu");

pub fn knn(_gpu: &Gpu, _points: &Matrix, _queries: &Matrix, _p: &KnnParams) -> Result<KnnOutput> {
    Err(KernelError::Unsupported {
        kernel: "knn",
        backend: "cuda",
    })
}

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

pub struct GpuKnnIndex;
impl GpuKnnIndex {
    pub fn new(
        _gpu: &std::sync::Arc<Gpu>,
        _p: &Matrix,
        _m: serrano_kernel_core::knn::Metric,
    ) -> Result<Self> {
        Err(KernelError::device("todo"))
    }
    pub fn search(&self, _q: &Matrix, _k: usize) -> Result<KnnOutput> {
        Err(KernelError::device("todo"))
    }
}

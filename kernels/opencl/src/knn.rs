//! OpenCL knn (placeholder until implemented).

use crate::ClDevice;
use serrano_kernel_core::knn::{KnnOutput, KnnParams};
use serrano_kernel_core::{KernelError, Matrix, Result};

pub const SOURCE: &str = include_str!("cl/knn.cl");

pub fn knn(
    _dev: &ClDevice,
    _points: &Matrix,
    _queries: &Matrix,
    _p: &KnnParams,
) -> Result<KnnOutput> {
    Err(KernelError::Unsupported {
        kernel: "knn",
        backend: "opencl",
    })
}

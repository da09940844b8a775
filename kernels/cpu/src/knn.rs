//! CPU knn (placeholder until implemented).

use serrano_kernel_core::knn::{KnnOutput, KnnParams};
use serrano_kernel_core::{KernelError, Matrix, Result};

pub fn knn(_points: &Matrix, _queries: &Matrix, _p: &KnnParams) -> Result<KnnOutput> {
    Err(KernelError::Unsupported {
        kernel: "knn",
        backend: "cpu",
    })
}

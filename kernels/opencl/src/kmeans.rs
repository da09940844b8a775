//! OpenCL kmeans (placeholder until implemented).

use crate::ClDevice;
use serrano_kernel_core::kmeans::{KMeansOutput, KMeansParams};
use serrano_kernel_core::{KernelError, Matrix, Result};

pub const SOURCE: &str = include_str!("cl/kmeans.cl");

pub fn kmeans(
    _dev: &ClDevice,
    _data: &Matrix,
    _init: Option<&Matrix>,
    _p: &KMeansParams,
) -> Result<KMeansOutput> {
    Err(KernelError::Unsupported {
        kernel: "kmeans",
        backend: "opencl",
    })
}

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

pub struct GpuStep;
impl GpuStep {
    pub fn new(_gpu: &std::sync::Arc<Gpu>, _d: &Matrix) -> Result<Self> {
        Err(KernelError::device("todo"))
    }
}
impl serrano_kernel_core::kmeans::LloydStep for GpuStep {
    fn dist2_to(&mut self, _c: &[f32]) -> Result<Vec<f64>> {
        todo!()
    }
    fn assign(&mut self, _c: &Matrix) -> Result<serrano_kernel_core::kmeans::Assignment> {
        todo!()
    }
    fn labels(&mut self) -> Result<Vec<u32>> {
        todo!()
    }
    fn min_dist2(&mut self) -> Result<Vec<f64>> {
        todo!()
    }
}

//! The OpenCL implementation family (D6.7 4.7): kNN, k-means, Savitzky-Golay and Black-Scholes on
//! any OpenCL 1.2 device (a GPU, or a CPU runtime such as pocl). Sources live in `src/cl/*.cl`.

use std::sync::Arc;

use serrano_kernel_core::backend::BackendKind;
use serrano_kernel_core::black_scholes::BsParams;
use serrano_kernel_core::kmeans::{KMeansOutput, KMeansParams};
use serrano_kernel_core::knn::{KnnOutput, KnnParams};
use serrano_kernel_core::savgol::SavgolParams;
use serrano_kernel_core::{KernelBackend, KernelName, Matrix, Result};

pub mod device;

pub mod black_scholes;
pub mod kmeans;
pub mod knn;
pub mod savgol;

pub use device::ClDevice;

pub const SOURCES: &[(&str, &str)] = &[
    ("knn", knn::SOURCE),
    ("kmeans", kmeans::SOURCE),
    ("savgol", savgol::SOURCE),
    ("black_scholes", black_scholes::SOURCE),
];

#[derive(Debug, Clone)]
pub struct OpenClBackend {
    dev: Arc<ClDevice>,
}

impl OpenClBackend {
    pub fn probe() -> Result<Self> {
        Ok(Self {
            dev: Arc::new(ClDevice::probe()?),
        })
    }
    pub fn cl(&self) -> &ClDevice {
        &self.dev
    }
}

impl KernelBackend for OpenClBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::OpenCl
    }
    fn device(&self) -> String {
        self.dev.description().to_string()
    }
    fn supports(&self, kernel: KernelName) -> bool {
        matches!(
            kernel,
            KernelName::Knn
                | KernelName::KMeans
                | KernelName::SavitzkyGolay
                | KernelName::BlackScholes
        )
    }
    fn warm_up(&self, kernel: KernelName) -> Result<()> {
        if let Some((name, src)) = SOURCES
            .iter()
            .find(|(n, _)| KernelName::parse(n) == Some(kernel))
        {
            self.dev.program(name, src)?;
        }
        Ok(())
    }
    fn knn(&self, points: &Matrix, queries: &Matrix, p: &KnnParams) -> Result<KnnOutput> {
        knn::knn(&self.dev, points, queries, p)
    }
    fn kmeans(
        &self,
        data: &Matrix,
        init: Option<&Matrix>,
        p: &KMeansParams,
    ) -> Result<KMeansOutput> {
        kmeans::kmeans(&self.dev, data, init, p)
    }
    fn savgol(&self, signals: &Matrix, p: &SavgolParams) -> Result<Matrix> {
        savgol::savgol(&self.dev, signals, p)
    }
    fn black_scholes(&self, options: &Matrix, p: &BsParams) -> Result<Matrix> {
        black_scholes::black_scholes(&self.dev, options, p)
    }
}

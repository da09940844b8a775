//! The CUDA implementation family of the SERRANO kernels (D6.7 4.7). Kernel sources live in
//! `src/cu/*.cu`, are compiled with NVRTC for the GPU found at run time and cached per process
//! (a warm FaaS runner compiles nothing). The crate builds and its tests pass on machines
//! without a GPU or CUDA toolkit: [`CudaBackend::probe`] returns an error saying what is missing.

use std::sync::Arc;

use serrano_kernel_core::backend::BackendKind;
use serrano_kernel_core::black_scholes::BsParams;
use serrano_kernel_core::dtw::DtwParams;
use serrano_kernel_core::fft::FftParams;
use serrano_kernel_core::kalman::KalmanParams;
use serrano_kernel_core::kmeans::{KMeansOutput, KMeansParams};
use serrano_kernel_core::knn::{KnnOutput, KnnParams};
use serrano_kernel_core::min_max::MinMaxParams;
use serrano_kernel_core::savgol::SavgolParams;
use serrano_kernel_core::wavelet::WaveletParams;
use serrano_kernel_core::{KernelBackend, KernelName, Matrix, Result};

pub mod device;

pub mod black_scholes;
pub mod dtw;
pub mod fft;
pub mod kalman;
pub mod kmeans;
pub mod knn;
pub mod min_max;
pub mod savgol;
pub mod wavelet;

pub use device::{Gpu, compile, driver_available, nvrtc_available};

/// Every CUDA source of the crate, by module name (each compiles on its own).
pub const SOURCES: &[(&str, &str)] = &[
    ("knn", knn::SOURCE),
    ("kmeans", kmeans::SOURCE),
    ("dtw", dtw::SOURCE),
    ("savgol", savgol::SOURCE),
    ("black_scholes", black_scholes::SOURCE),
    ("kalman", kalman::SOURCE),
    ("fft", fft::SOURCE),
    ("wavelet", wavelet::SOURCE),
    ("min_max", min_max::SOURCE),
];

#[derive(Debug, Clone)]
pub struct CudaBackend {
    gpu: Arc<Gpu>,
}

impl CudaBackend {
    /// The backend on GPU 0, or why there is none.
    pub fn probe() -> Result<Self> {
        Ok(Self {
            gpu: Gpu::probe(0)?,
        })
    }
    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }
}

impl KernelBackend for CudaBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Cuda
    }
    fn device(&self) -> String {
        format!("{} ({})", self.gpu.name(), self.gpu.arch())
    }
    fn supports(&self, _kernel: KernelName) -> bool {
        true
    }
    fn warm_up(&self, kernel: KernelName) -> Result<()> {
        let (name, src) = match kernel {
            KernelName::Knn => ("knn", knn::SOURCE),
            KernelName::KMeans => ("kmeans", kmeans::SOURCE),
            KernelName::Dtw => ("dtw", dtw::SOURCE),
            KernelName::SavitzkyGolay => ("savgol", savgol::SOURCE),
            KernelName::BlackScholes => ("black_scholes", black_scholes::SOURCE),
            KernelName::Kalman => ("kalman", kalman::SOURCE),
            KernelName::Fft => ("fft", fft::SOURCE),
            KernelName::Wavelet => ("wavelet", wavelet::SOURCE),
            KernelName::MinMax => ("min_max", min_max::SOURCE),
        };
        self.gpu.module(name, src).map(|_| ())
    }
    fn knn(&self, points: &Matrix, queries: &Matrix, p: &KnnParams) -> Result<KnnOutput> {
        knn::knn(&self.gpu, points, queries, p)
    }
    fn kmeans(
        &self,
        data: &Matrix,
        init: Option<&Matrix>,
        p: &KMeansParams,
    ) -> Result<KMeansOutput> {
        kmeans::kmeans(&self.gpu, data, init, p)
    }
    fn dtw(&self, a: &Matrix, b: &Matrix, p: &DtwParams) -> Result<Matrix> {
        dtw::dtw(&self.gpu, a, b, p)
    }
    fn savgol(&self, signals: &Matrix, p: &SavgolParams) -> Result<Matrix> {
        savgol::savgol(&self.gpu, signals, p)
    }
    fn black_scholes(&self, options: &Matrix, p: &BsParams) -> Result<Matrix> {
        black_scholes::black_scholes(&self.gpu, options, p)
    }
    fn kalman(&self, tracks: &Matrix, p: &KalmanParams) -> Result<Matrix> {
        kalman::kalman(&self.gpu, tracks, p)
    }
    fn fft(&self, signals: &Matrix, p: &FftParams) -> Result<Matrix> {
        fft::fft(&self.gpu, signals, p)
    }
    fn wavelet(&self, signals: &Matrix, p: &WaveletParams) -> Result<Matrix> {
        wavelet::wavelet(&self.gpu, signals, p)
    }
    fn min_max(&self, data: &Matrix, p: &MinMaxParams) -> Result<Matrix> {
        min_max::min_max(&self.gpu, data, p)
    }
}

//! The CPU implementation family of the SERRANO kernels (D6.7 4.7): every kernel, on all cores
//! through rayon, written so that the hot loops vectorise.

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

pub mod black_scholes;
pub mod dtw;
pub mod fft;
pub mod kalman;
pub mod kmeans;
pub mod knn;
pub mod min_max;
pub mod savgol;
pub mod wavelet;

/// The CPU backend: always available.
#[derive(Debug, Default, Clone)]
pub struct CpuBackend;

impl CpuBackend {
    pub fn new() -> Self {
        Self
    }
}

impl KernelBackend for CpuBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }
    fn device(&self) -> String {
        format!("{} CPU threads", rayon::current_num_threads())
    }
    fn supports(&self, _kernel: KernelName) -> bool {
        true
    }
    fn knn(&self, points: &Matrix, queries: &Matrix, p: &KnnParams) -> Result<KnnOutput> {
        knn::knn(points, queries, p)
    }
    fn kmeans(
        &self,
        data: &Matrix,
        init: Option<&Matrix>,
        p: &KMeansParams,
    ) -> Result<KMeansOutput> {
        kmeans::kmeans(data, init, p)
    }
    fn dtw(&self, a: &Matrix, b: &Matrix, p: &DtwParams) -> Result<Matrix> {
        dtw::dtw(a, b, p)
    }
    fn savgol(&self, signals: &Matrix, p: &SavgolParams) -> Result<Matrix> {
        savgol::savgol(signals, p)
    }
    fn black_scholes(&self, options: &Matrix, p: &BsParams) -> Result<Matrix> {
        black_scholes::black_scholes(options, p)
    }
    fn kalman(&self, tracks: &Matrix, p: &KalmanParams) -> Result<Matrix> {
        kalman::kalman(tracks, p)
    }
    fn fft(&self, signals: &Matrix, p: &FftParams) -> Result<Matrix> {
        fft::fft(signals, p)
    }
    fn wavelet(&self, signals: &Matrix, p: &WaveletParams) -> Result<Matrix> {
        wavelet::wavelet(signals, p)
    }
    fn min_max(&self, data: &Matrix, p: &MinMaxParams) -> Result<Matrix> {
        min_max::min_max(data, p)
    }
}

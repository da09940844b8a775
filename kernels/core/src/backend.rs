//! The trait every implementation family (CPU, CUDA, OpenCL) implements. A method a backend does
//! not override answers [`KernelError::Unsupported`], which the registry uses to fall back.

use crate::black_scholes::BsParams;
use crate::dtw::DtwParams;
use crate::fft::FftParams;
use crate::kalman::KalmanParams;
use crate::kmeans::{KMeansOutput, KMeansParams};
use crate::knn::{KnnOutput, KnnParams};
use crate::min_max::MinMaxParams;
use crate::savgol::SavgolParams;
use crate::wavelet::WaveletParams;
use crate::{KernelError, KernelName, Matrix, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackendKind {
    Cpu,
    Cuda,
    OpenCl,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Cuda => "cuda",
            BackendKind::OpenCl => "opencl",
        }
    }
}

fn unsupported<T>(kind: BackendKind, kernel: KernelName) -> Result<T> {
    Err(KernelError::Unsupported {
        kernel: kernel.as_str(),
        backend: kind.as_str(),
    })
}

/// One implementation family on one device. Implementations validate their arguments with the
/// `validate` functions of the kernel modules before they allocate or launch anything.
pub trait KernelBackend: Send + Sync {
    fn kind(&self) -> BackendKind;
    /// Human-readable device, e.g. "2 CPU threads (avx512f)", "NVIDIA H100 80GB HBM3 (sm_90)".
    fn device(&self) -> String;
    fn supports(&self, kernel: KernelName) -> bool;
    /// Compiles / loads what `kernel` needs so that the first call pays no build cost.
    fn warm_up(&self, _kernel: KernelName) -> Result<()> {
        Ok(())
    }

    fn knn(&self, _points: &Matrix, _queries: &Matrix, _p: &KnnParams) -> Result<KnnOutput> {
        unsupported(self.kind(), KernelName::Knn)
    }
    fn kmeans(
        &self,
        _data: &Matrix,
        _init: Option<&Matrix>,
        _p: &KMeansParams,
    ) -> Result<KMeansOutput> {
        unsupported(self.kind(), KernelName::KMeans)
    }
    /// `a.rows() x b.rows()` DTW distances.
    fn dtw(&self, _a: &Matrix, _b: &Matrix, _p: &DtwParams) -> Result<Matrix> {
        unsupported(self.kind(), KernelName::Dtw)
    }
    fn savgol(&self, _signals: &Matrix, _p: &SavgolParams) -> Result<Matrix> {
        unsupported(self.kind(), KernelName::SavitzkyGolay)
    }
    fn black_scholes(&self, _options: &Matrix, _p: &BsParams) -> Result<Matrix> {
        unsupported(self.kind(), KernelName::BlackScholes)
    }
    fn kalman(&self, _tracks: &Matrix, _p: &KalmanParams) -> Result<Matrix> {
        unsupported(self.kind(), KernelName::Kalman)
    }
    fn fft(&self, _signals: &Matrix, _p: &FftParams) -> Result<Matrix> {
        unsupported(self.kind(), KernelName::Fft)
    }
    fn wavelet(&self, _signals: &Matrix, _p: &WaveletParams) -> Result<Matrix> {
        unsupported(self.kind(), KernelName::Wavelet)
    }
    fn min_max(&self, _data: &Matrix, _p: &MinMaxParams) -> Result<Matrix> {
        unsupported(self.kind(), KernelName::MinMax)
    }
}

//! The vocabulary every SERRANO kernel implementation shares (D6.7 4.7, Table 10; originals 1.7,
//! 1.8, 6): row-major `f32` arrays, named typed parameters, validation, a straightforward
//! reference implementation per kernel (the oracle of every backend's tests), and the
//! [`KernelBackend`] trait that the CPU, CUDA and OpenCL crates implement.
//!
//! Conventions shared by all backends (so that any backend can stand in for another):
//! - Signal kernels (Savitzky-Golay, Kalman, FFT, wavelet) treat **each row as one signal**;
//!   the registry turns an `n x 1` column into one row before calling a backend.
//! - Distance kernels (kNN, k-means, DTW) reject NaN/Inf inputs with [`KernelError::InvalidInput`];
//!   element-wise kernels propagate NaN as IEEE arithmetic does, unless their module says otherwise.
//! - A backend validates its arguments (through the functions here) before touching a device, so
//!   bad arguments are an error, never an out-of-bounds access.

pub mod backend;
pub mod error;
pub mod kernel;
pub mod matrix;
pub mod params;

pub mod black_scholes;
pub mod dtw;
pub mod fft;
pub mod kalman;
pub mod kmeans;
pub mod knn;
pub mod min_max;
pub mod savgol;
pub mod wavelet;

pub mod reference;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use backend::KernelBackend;
pub use error::KernelError;
pub use kernel::KernelName;
pub use matrix::{Matrix, Table};
pub use params::Params;

pub type Result<T, E = KernelError> = std::result::Result<T, E>;

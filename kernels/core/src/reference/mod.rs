//! Straightforward reference implementations (plain loops, `f64` accumulation): the oracle that
//! every backend's tests compare against, with the tolerances stated next to each test.

pub mod black_scholes;
pub mod dtw;
pub mod fft;
pub mod kalman;
pub mod kmeans;
pub mod knn;
pub mod min_max;
pub mod savgol;
pub mod wavelet;

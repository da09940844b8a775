//! OpenCL savgol (placeholder until implemented).

use crate::ClDevice;
use serrano_kernel_core::savgol::SavgolParams;
use serrano_kernel_core::{KernelError, Matrix, Result};

pub const SOURCE: &str = include_str!("cl/savgol.cl");

pub fn savgol(_dev: &ClDevice, _signals: &Matrix, _p: &SavgolParams) -> Result<Matrix> {
    Err(KernelError::Unsupported {
        kernel: "savgol",
        backend: "opencl",
    })
}

//! OpenCL black_scholes (placeholder until implemented).

use crate::ClDevice;
use serrano_kernel_core::black_scholes::BsParams;
use serrano_kernel_core::{KernelError, Matrix, Result};

pub const SOURCE: &str = include_str!("cl/black_scholes.cl");

pub fn black_scholes(_dev: &ClDevice, _options: &Matrix, _p: &BsParams) -> Result<Matrix> {
    Err(KernelError::Unsupported {
        kernel: "black_scholes",
        backend: "opencl",
    })
}

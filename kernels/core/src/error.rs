/// Why a kernel call failed. Every variant carries a message a user can act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KernelError {
    /// A parameter is missing, malformed or out of range (`k=0`, an even window, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The input data cannot be processed (wrong shape, NaN where a distance is needed, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// This backend has no implementation of this kernel.
    #[error("kernel '{kernel}' has no {backend} implementation")]
    Unsupported {
        kernel: &'static str,
        backend: &'static str,
    },
    /// The accelerator, its driver or its compiler failed.
    #[error("device error: {0}")]
    Device(String),
    /// Reading or writing an array in CSV or the binary format failed.
    #[error("format error: {0}")]
    Format(String),
}

impl KernelError {
    pub fn arg(msg: impl Into<String>) -> Self {
        Self::InvalidArgument(msg.into())
    }
    pub fn input(msg: impl Into<String>) -> Self {
        Self::InvalidInput(msg.into())
    }
    pub fn device(msg: impl std::fmt::Display) -> Self {
        Self::Device(msg.to_string())
    }
}

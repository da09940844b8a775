//! SERRANO kernels behind one registry (D6.7 4.7): `Registry::exec("knn", inputs, params, mode)`
//! runs the CPU, CUDA or OpenCL implementation and reports which one ran; [`formats`] reads and
//! writes the arrays (CSV, the compact binary format, `.npy`).

pub mod formats;
pub mod registry;

pub use formats::Format;
pub use registry::{
    DeviceInfo, Execution, KernelInfo, Mode, NamedInput, Registry, RegistryOptions,
};
pub use serrano_kernel_core::{KernelError, KernelName, Matrix, Params, Table};

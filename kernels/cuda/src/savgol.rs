//! CUDA Savitzky-Golay (semantics in `serrano_kernel_core::savgol`; kernels in `cu/savgol.cu`):
//! centre coefficients in constant memory, a shared-memory tile of the signal with its halo per
//! block; windows longer than the constant buffer use a direct kernel.

use std::sync::Mutex;
use std::time::Duration;

use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};
use serrano_kernel_core::savgol::{EdgeMode, SavgolCoeffs, SavgolParams, coeffs_f32, plan};
use serrano_kernel_core::{KernelError, Matrix, Result};

use crate::Gpu;

pub const SOURCE: &str = include_str!("cu/savgol.cu");

/// Must match `cu/savgol.cu` (SG_MAX_CONST, SG_THREADS, SG_TILE).
const MAX_CONST: usize = 4095;
const THREADS: u32 = 256;
const TILE: usize = THREADS as usize * 4;
/// Blocks launched at most (the kernels loop over the rest).
const MAX_BLOCKS: usize = 1 << 20;

/// The constant-memory coefficients are one buffer per process: a copy and the launch that reads
/// it must not interleave with another call's.
static CONST_LOCK: Mutex<()> = Mutex::new(());

fn dev_err(what: &'static str) -> impl Fn(cudarc::driver::DriverError) -> KernelError {
    move |e| KernelError::Device(format!("savgol {what}: {e}"))
}

/// Coefficients of one call, on the device.
struct DeviceFilter {
    window: usize,
    mode: i32,
    center: CudaSlice<f32>,
    left: CudaSlice<f32>,
    right: CudaSlice<f32>,
}

impl DeviceFilter {
    fn new(gpu: &Gpu, c: &SavgolCoeffs, mode: EdgeMode) -> Result<Self> {
        let s = gpu.stream();
        Ok(Self {
            window: c.window,
            mode: mode.code(),
            center: s
                .clone_htod(&coeffs_f32(&c.center))
                .map_err(dev_err("copy"))?,
            left: s
                .clone_htod(&coeffs_f32(&c.left))
                .map_err(dev_err("copy"))?,
            right: s
                .clone_htod(&coeffs_f32(&c.right))
                .map_err(dev_err("copy"))?,
        })
    }

    /// Filters `rows` signals of `n > 0` samples from `x` into `y` (launches only; no sync).
    #[allow(unsafe_code)]
    fn launch(
        &self,
        gpu: &Gpu,
        x: &CudaSlice<f32>,
        y: &mut CudaSlice<f32>,
        rows: usize,
        n: usize,
    ) -> Result<()> {
        let stream = gpu.stream();
        let w = self.window;
        let (rows_i, n_i, w_i) = (rows as i64, n as i64, w as i32);
        // Windows that fit constant memory take the tiled kernel; longer ones the direct one.
        let tiled = w <= MAX_CONST;
        let (name, items, shared) = if tiled {
            ("savgol_tiled", rows * n.div_ceil(TILE), (TILE + w - 1) * 4)
        } else {
            ("savgol_direct", (rows * n).div_ceil(THREADS as usize), 0)
        };
        let func = gpu.function("savgol", SOURCE, name)?;
        let cfg = LaunchConfig {
            // The kernels loop over the blocks beyond the grid.
            grid_dim: (items.clamp(1, MAX_BLOCKS) as u32, 1, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: shared as u32,
        };
        // Held from the coefficient copy to the launch (see CONST_LOCK).
        let _guard = if tiled {
            let module = gpu.module("savgol", SOURCE)?;
            let guard = CONST_LOCK
                .lock()
                .map_err(|_| KernelError::Device("savgol constant lock poisoned".into()))?;
            let mut symbol = module
                .get_global("SG_COEFFS", stream)
                .map_err(dev_err("constant memory"))?;
            // SAFETY: SG_COEFFS is a __constant__ float[MAX_CONST] array, so its bytes are f32s
            // and w <= MAX_CONST of them fit.
            let mut coeffs = unsafe { symbol.transmute_mut::<f32>(w) }
                .ok_or_else(|| KernelError::Device("SG_COEFFS is smaller than expected".into()))?;
            // Device to device: ordered on the stream after earlier launches, no host stall.
            stream
                .memcpy_dtod(&self.center, &mut coeffs)
                .map_err(dev_err("constant copy"))?;
            Some(guard)
        } else {
            None
        };
        let mut b = stream.launch_builder(&func);
        b.arg(x)
            .arg(y)
            .arg(&rows_i)
            .arg(&n_i)
            .arg(&w_i)
            .arg(&self.mode);
        if !tiled {
            b.arg(&self.center);
        }
        b.arg(&self.left).arg(&self.right);
        // SAFETY: x and y hold rows * n floats (checked by the callers); the kernels read
        // x[row * n + idx] with idx in [0, n), write y[row * n + i] with i < n, read w centre
        // coefficients (constant memory, copied above, or the device buffer of w floats) and the
        // half x w edge matrices (or nothing for other modes); the tiled kernel uses
        // (TILE + w - 1) floats of shared memory (at most 20 KiB), which is what is requested.
        unsafe { b.launch(cfg) }.map_err(dev_err("launch"))?;
        Ok(())
    }
}

pub fn savgol(gpu: &Gpu, signals: &Matrix, p: &SavgolParams) -> Result<Matrix> {
    let (rows, n) = (signals.rows(), signals.cols());
    let Some(c) = plan(signals, p)? else {
        return Matrix::new(rows, n, Vec::new());
    };
    let f = DeviceFilter::new(gpu, &c, p.mode)?;
    let stream = gpu.stream();
    let x = stream.clone_htod(signals.data()).map_err(dev_err("copy"))?;
    let mut y = stream
        .alloc_zeros::<f32>(rows * n)
        .map_err(dev_err("alloc"))?;
    f.launch(gpu, &x, &mut y, rows, n)?;
    let out = stream.clone_dtoh(&y).map_err(dev_err("copy back"))?;
    Matrix::new(rows, n, out)
}

/// Kernel time of filtering `rows x n` samples already on the device (the best of several runs),
/// for throughput figures comparable with a library call on device arrays.
pub fn bench_device(gpu: &Gpu, rows: usize, n: usize, p: &SavgolParams) -> Result<Duration> {
    p.validate()?;
    if rows == 0 || n < p.window {
        return Err(KernelError::arg(
            "bench_device needs rows >= 1 and n >= window",
        ));
    }
    let f = DeviceFilter::new(gpu, &SavgolCoeffs::new(p)?, p.mode)?;
    let stream = gpu.stream();
    // Deterministic data without a host round trip per run.
    let host: Vec<f32> = (0..rows * n)
        .map(|i| ((i.wrapping_mul(2_654_435_761) % 2001) as f32 - 1000.0) * 1e-3)
        .collect();
    let x = stream.clone_htod(&host).map_err(dev_err("copy"))?;
    let mut y = stream
        .alloc_zeros::<f32>(rows * n)
        .map_err(dev_err("alloc"))?;
    gpu.best_time(10, || f.launch(gpu, &x, &mut y, rows, n))
}

//! CUDA Savitzky-Golay (semantics in `serrano_kernel_core::savgol`; kernels in `cu/savgol.cu`):
//! centre coefficients in constant memory, a shared-memory tile of the signal with its halo per
//! block; windows longer than the constant buffer use a direct kernel.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};
use serrano_kernel_core::savgol::{SavgolCoeffs, SavgolParams};
use serrano_kernel_core::{KernelError, Matrix, Result};

use crate::Gpu;

pub const SOURCE: &str = include_str!("cu/savgol.cu");

/// Must match `cu/savgol.cu`.
const MAX_CONST: usize = 4095;
const THREADS: u32 = 256;
const TILE: usize = 256 * 4;
/// Blocks launched at most (the kernels loop over the rest).
const MAX_BLOCKS: usize = 1 << 20;

/// The constant-memory coefficients are one buffer per process: a copy and the launch that reads
/// it must not interleave with another call's.
static CONST_LOCK: Mutex<()> = Mutex::new(());

fn dev_err(what: &'static str) -> impl Fn(cudarc::driver::DriverError) -> KernelError {
    move |e| KernelError::Device(format!("savgol {what}: {e}"))
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    // Kernels always get a valid pointer, even where they read nothing.
    if v.is_empty() {
        return vec![0.0];
    }
    v.iter().map(|&x| x as f32).collect()
}

/// Coefficients of one call, on the device.
struct DeviceFilter {
    c: SavgolCoeffs,
    mode: i32,
    center: CudaSlice<f32>,
    left: CudaSlice<f32>,
    right: CudaSlice<f32>,
}

impl DeviceFilter {
    fn new(gpu: &Gpu, p: &SavgolParams) -> Result<Self> {
        let c = SavgolCoeffs::new(p)?;
        let s = gpu.stream();
        Ok(Self {
            mode: p.mode.code(),
            center: s.clone_htod(&to_f32(&c.center)).map_err(dev_err("copy"))?,
            left: s.clone_htod(&to_f32(&c.left)).map_err(dev_err("copy"))?,
            right: s.clone_htod(&to_f32(&c.right)).map_err(dev_err("copy"))?,
            c,
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
        let w = self.c.window;
        let (rows_i, n_i, w_i) = (rows as i64, n as i64, w as i32);
        if w <= MAX_CONST {
            let func = gpu.function("savgol", SOURCE, "savgol_tiled")?;
            let module = gpu.module("savgol", SOURCE)?;
            let tiles = rows * n.div_ceil(TILE);
            let cfg = LaunchConfig {
                grid_dim: (tiles.clamp(1, MAX_BLOCKS) as u32, 1, 1),
                block_dim: (THREADS, 1, 1),
                shared_mem_bytes: ((TILE + w - 1) * 4) as u32,
            };
            let _guard = CONST_LOCK
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
            let mut b = stream.launch_builder(&func);
            b.arg(x)
                .arg(y)
                .arg(&rows_i)
                .arg(&n_i)
                .arg(&w_i)
                .arg(&self.mode)
                .arg(&self.left)
                .arg(&self.right);
            // SAFETY: x and y hold rows * n floats (checked by the callers); the kernel reads
            // x[row * n + idx] with idx in [0, n), writes y[row * n + i] with i < n, reads w
            // coefficients and the half x w edge matrices (or nothing for other modes), and uses
            // (TILE + w - 1) floats of shared memory, which is what is requested.
            unsafe { b.launch(cfg) }.map_err(dev_err("launch"))?;
        } else {
            let func = gpu.function("savgol", SOURCE, "savgol_direct")?;
            let total = rows * n;
            let cfg = LaunchConfig {
                grid_dim: (
                    total.div_ceil(THREADS as usize).clamp(1, MAX_BLOCKS) as u32,
                    1,
                    1,
                ),
                block_dim: (THREADS, 1, 1),
                shared_mem_bytes: 0,
            };
            let mut b = stream.launch_builder(&func);
            b.arg(x)
                .arg(y)
                .arg(&rows_i)
                .arg(&n_i)
                .arg(&w_i)
                .arg(&self.mode)
                .arg(&self.center)
                .arg(&self.left)
                .arg(&self.right);
            // SAFETY: as above; the centre coefficients are a device buffer of w floats.
            unsafe { b.launch(cfg) }.map_err(dev_err("launch"))?;
        }
        Ok(())
    }
}

pub fn savgol(gpu: &Gpu, signals: &Matrix, p: &SavgolParams) -> Result<Matrix> {
    p.validate_for(signals)?;
    let (rows, n) = (signals.rows(), signals.cols());
    if rows == 0 || n == 0 {
        return Matrix::new(rows, n, Vec::new());
    }
    let f = DeviceFilter::new(gpu, p)?;
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
    let f = DeviceFilter::new(gpu, p)?;
    let stream = gpu.stream();
    // Deterministic data without a host round trip per run.
    let host: Vec<f32> = (0..rows * n)
        .map(|i| ((i.wrapping_mul(2_654_435_761) % 2001) as f32 - 1000.0) * 1e-3)
        .collect();
    let x = stream.clone_htod(&host).map_err(dev_err("copy"))?;
    let mut y = stream
        .alloc_zeros::<f32>(rows * n)
        .map_err(dev_err("alloc"))?;
    f.launch(gpu, &x, &mut y, rows, n)?;
    stream.synchronize().map_err(dev_err("sync"))?;
    let mut best = Duration::MAX;
    let reps = 10;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..reps {
            f.launch(gpu, &x, &mut y, rows, n)?;
        }
        stream.synchronize().map_err(dev_err("sync"))?;
        best = best.min(t.elapsed() / reps);
    }
    Ok(best)
}

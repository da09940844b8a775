//! CUDA Black-Scholes (semantics in `serrano_kernel_core::black_scholes`; kernels in
//! `cu/black_scholes.cu`): options are validated on the host once, then priced one thread per
//! option with strided loads (row-major matrices) or, for data already on the device in
//! structure-of-arrays layout, four options per thread with 16-byte loads ([`bench_device`]).

use std::time::Duration;

use cudarc::driver::{LaunchConfig, PushKernelArg};
use serrano_kernel_core::black_scholes::{BsParams, validate};
use serrano_kernel_core::{KernelError, Matrix, Result};

use crate::Gpu;

pub const SOURCE: &str = include_str!("cu/black_scholes.cu");

const THREADS: u32 = 256;
/// Blocks launched at most (the kernels loop over the rest).
const MAX_BLOCKS: usize = 1 << 20;

fn dev_err(what: &'static str) -> impl Fn(cudarc::driver::DriverError) -> KernelError {
    move |e| KernelError::Device(format!("black_scholes {what}: {e}"))
}

fn grid(items: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (
            items.div_ceil(THREADS as usize).clamp(1, MAX_BLOCKS) as u32,
            1,
            1,
        ),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

#[allow(unsafe_code)]
pub fn black_scholes(gpu: &Gpu, options: &Matrix, p: &BsParams) -> Result<Matrix> {
    let l = validate(options, p)?;
    let oc = l.out_cols();
    if l.rows == 0 {
        return Matrix::new(0, oc, Vec::new());
    }
    let stream = gpu.stream();
    let func = gpu.function("black_scholes", SOURCE, "bs_strided")?;
    let x = stream.clone_htod(options.data()).map_err(dev_err("copy"))?;
    let mut y = stream
        .alloc_zeros::<f32>(l.rows * oc)
        .map_err(dev_err("alloc"))?;
    let (n, in_row, in_col) = (l.rows as i64, l.in_cols as i64, 1i64);
    let (fixed, rate, vol) = l.kernel_args();
    let (out_row, out_col, greeks) = (oc as i64, 1i64, i32::from(l.greeks));
    let mut b = stream.launch_builder(&func);
    b.arg(&x)
        .arg(&n)
        .arg(&in_row)
        .arg(&in_col)
        .arg(&fixed)
        .arg(&rate)
        .arg(&vol)
        .arg(&mut y)
        .arg(&out_row)
        .arg(&out_col)
        .arg(&greeks);
    // SAFETY: x holds rows * in_cols floats and the kernel reads x[i * in_cols + c] for i < rows,
    // c < in_cols (columns 3, 4 only when fixed == 0, i.e. in_cols == 5); y holds rows * out_cols
    // floats and the kernel writes y[i * out_cols + c] for c < out_cols (10 only with greeks).
    unsafe { b.launch(grid(l.rows)) }.map_err(dev_err("launch"))?;
    let out = stream.clone_dtoh(&y).map_err(dev_err("copy back"))?;
    Matrix::new(l.rows, oc, out)
}

/// Kernel time of pricing `n` options (prices only) already on the device as separate spot,
/// strike and years arrays with a fixed rate and volatility: the layout of the CuPy baseline in
/// notes/speeds.md. The best of several runs.
#[allow(unsafe_code)]
pub fn bench_device(gpu: &Gpu, n: usize) -> Result<Duration> {
    let n4 = n / 4;
    if n4 == 0 {
        return Err(KernelError::arg("bench_device needs n >= 4"));
    }
    let n = n4 * 4;
    let stream = gpu.stream();
    let func = gpu.function("black_scholes", SOURCE, "bs_soa4")?;
    let gen_col = |lo: f32, hi: f32, seed: usize| -> Vec<f32> {
        (0..n)
            .map(|i| {
                let u =
                    (i.wrapping_mul(2_654_435_761).wrapping_add(seed) % 65_536) as f32 / 65_536.0;
                lo + (hi - lo) * u
            })
            .collect()
    };
    let s = stream
        .clone_htod(&gen_col(10.0, 200.0, 1))
        .map_err(dev_err("copy"))?;
    let k = stream
        .clone_htod(&gen_col(10.0, 200.0, 7))
        .map_err(dev_err("copy"))?;
    let t = stream
        .clone_htod(&gen_col(0.1, 3.0, 13))
        .map_err(dev_err("copy"))?;
    let mut call = stream.alloc_zeros::<f32>(n).map_err(dev_err("alloc"))?;
    let mut put = stream.alloc_zeros::<f32>(n).map_err(dev_err("alloc"))?;
    let (n4_i, rate, vol) = (n4 as i64, 0.03f32, 0.25f32);
    let run = || -> Result<()> {
        let mut b = stream.launch_builder(&func);
        b.arg(&s)
            .arg(&k)
            .arg(&t)
            .arg(&n4_i)
            .arg(&rate)
            .arg(&vol)
            .arg(&mut call)
            .arg(&mut put);
        // SAFETY: every buffer holds n = 4 * n4 floats from a fresh allocation (aligned far beyond
        // 16 bytes), read and written as n4 float4s.
        unsafe { b.launch(grid(n4)) }.map_err(dev_err("launch"))?;
        Ok(())
    };
    gpu.best_time(20, run)
}

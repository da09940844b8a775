//! CUDA Kalman filters (see `serrano_kernel_core::kalman`): one thread per track with the
//! closed-form per-axis update of `kalman.cu`, on a structure-of-arrays copy of the tracks made
//! by a tiled device transpose (and transposed back), so every load and store is coalesced.

use cudarc::driver::{CudaSlice, LaunchArgs, LaunchConfig, PushKernelArg};
use serrano_kernel_core::kalman::{self, KalmanParams};
use serrano_kernel_core::{KernelError, Matrix, Result};

use crate::Gpu;

pub const SOURCE: &str = include_str!("cu/kalman.cu");
const TRANSPOSE: &str = "kalman_transpose";
const FILTER: &str = "kalman_filter";
/// The entry points of [`SOURCE`] this module launches.
pub const KERNELS: &[&str] = &[TRANSPOSE, FILTER];

pub fn kalman(gpu: &Gpu, tracks: &Matrix, p: &KalmanParams) -> Result<Matrix> {
    kalman::validate(tracks, p)?;
    let out_cols = kalman::output_cols(tracks.cols(), p);
    if tracks.rows() == 0 || out_cols == 0 {
        return Matrix::new(tracks.rows(), out_cols, vec![0.0; tracks.rows() * out_cols]);
    }
    let stream = gpu.stream();
    let input = stream
        .clone_htod(tracks.data())
        .map_err(KernelError::device)?;
    let out = kalman_resident(gpu, &input, tracks.rows(), tracks.cols(), p)?;
    let data = stream.clone_dtoh(&out).map_err(KernelError::device)?;
    Matrix::new(tracks.rows(), out_cols, data)
}

/// Filters `rows x cols` device-resident tracks (validated parameters, no ±Inf: see
/// [`kalman::validate`]) into a new `rows x output_cols` buffer; asynchronous on the stream.
pub fn kalman_resident(
    gpu: &Gpu,
    input: &CudaSlice<f32>,
    rows: usize,
    cols: usize,
    p: &KalmanParams,
) -> Result<CudaSlice<f32>> {
    p.validate()?;
    let (m, s) = (p.meas_dim(), p.state_dim());
    if !cols.is_multiple_of(m) || input.len() < rows * cols {
        return Err(KernelError::input(format!(
            "device tracks: {} values for {rows} x {cols} with {m} measurements per step",
            input.len()
        )));
    }
    let steps = cols / m;
    let out_cols = steps * s;
    let stream = gpu.stream();
    let alloc = |len: usize| {
        stream
            .alloc_zeros::<f32>(len.max(1))
            .map_err(KernelError::device)
    };
    let mut out = alloc(rows * out_cols)?;
    if rows == 0 || out_cols == 0 {
        return Ok(out);
    }
    let mut meas_soa = alloc(rows * cols)?;
    let mut out_soa = alloc(rows * out_cols)?;
    transpose(gpu, input, rows, cols, &mut meas_soa)?;

    let axis = p.closed_form_axis();
    let velocity = i32::from(s == 2 * m);
    let dims = m as i32;
    let (ntracks, steps_ll) = (rows as i64, steps as i64);
    let f = gpu.function("kalman", SOURCE, FILTER)?;
    let mut b = stream.launch_builder(&f);
    b.arg(&meas_soa)
        .arg(&ntracks)
        .arg(&steps_ll)
        .arg(&dims)
        .arg(&velocity)
        .arg(&axis.dt)
        .arg(&axis.q[0])
        .arg(&axis.q[1])
        .arg(&axis.q[2])
        .arg(&axis.r)
        .arg(&axis.p0[0])
        .arg(&axis.p0[1])
        .arg(&axis.p0[2])
        .arg(&mut out_soa);
    // 128 threads: the double-precision state keeps register use high.
    let blocks = rows.div_ceil(128).min(1 << 20) as u32;
    launch(
        b,
        LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (128, 1, 1),
            shared_mem_bytes: 0,
        },
    )?;
    transpose(gpu, &out_soa, out_cols, rows, &mut out)?;
    Ok(out)
}

/// `input` (`rows x cols`) into `output` (`cols x rows`).
fn transpose(
    gpu: &Gpu,
    input: &CudaSlice<f32>,
    rows: usize,
    cols: usize,
    output: &mut CudaSlice<f32>,
) -> Result<()> {
    let f = gpu.function("kalman", SOURCE, TRANSPOSE)?;
    let (rows_ll, cols_ll) = (rows as i64, cols as i64);
    let mut b = gpu.stream().launch_builder(&f);
    b.arg(input).arg(&rows_ll).arg(&cols_ll).arg(output);
    let grid_x = cols.div_ceil(32).clamp(1, i32::MAX as usize) as u32;
    let grid_y = rows.div_ceil(32).clamp(1, 65535) as u32;
    launch(
        b,
        LaunchConfig {
            grid_dim: (grid_x, grid_y, 1),
            block_dim: (32, 8, 1),
            shared_mem_bytes: 0,
        },
    )
}

#[allow(unsafe_code)]
fn launch(mut builder: LaunchArgs<'_>, cfg: LaunchConfig) -> Result<()> {
    // SAFETY: the kernels of kalman.cu bound every index by the 64-bit sizes passed with the
    // buffers, which were allocated (or checked) to hold rows x cols values.
    unsafe { builder.launch(cfg) }
        .map(|_| ())
        .map_err(KernelError::device)
}

//! CUDA min-max scaling (sklearn MinMaxScaler semantics, see `serrano_kernel_core::min_max`):
//! a partial min/max reduction per (group, chunk), a finalize per group, one scaling pass.

use cudarc::driver::{CudaSlice, LaunchArgs, LaunchConfig, PushKernelArg};
use serrano_kernel_core::min_max::{self, Axis, MinMaxParams};
use serrano_kernel_core::{KernelError, Matrix, Result};

use crate::Gpu;
use crate::device::grid_stride;

pub const SOURCE: &str = include_str!("cu/min_max.cu");
const COLS_PARTIAL: &str = "minmax_cols_partial";
const ROWS_PARTIAL: &str = "minmax_rows_partial";
const FINALIZE: &str = "minmax_finalize";
const APPLY: &str = "minmax_apply";
/// The entry points of [`SOURCE`] this module launches.
pub const KERNELS: &[&str] = &[COLS_PARTIAL, ROWS_PARTIAL, FINALIZE, APPLY];

/// Values one block of the row reduction covers (256 threads x 32).
const ROW_CHUNK: usize = 8192;

pub fn min_max(gpu: &Gpu, data: &Matrix, p: &MinMaxParams) -> Result<Matrix> {
    p.validate()?;
    let (rows, cols) = (data.rows(), data.cols());
    if data.is_empty() {
        return Matrix::new(rows, cols, Vec::new());
    }
    let stream = gpu.stream();
    let input = stream
        .clone_htod(data.data())
        .map_err(KernelError::device)?;
    let out = match min_max_resident(gpu, &input, rows, cols, p) {
        Err(KernelError::InvalidInput(_)) => {
            // Name the first infinite value, as every backend does.
            min_max::validate(data, p)?;
            return Err(KernelError::input("infinite value in the input"));
        }
        other => other?,
    };
    let values = stream.clone_dtoh(&out).map_err(KernelError::device)?;
    Matrix::new(rows, cols, values)
}

/// Scales `rows x cols` device-resident values into a new buffer; an infinite value is
/// [`KernelError::InvalidInput`] (this waits for the reduction to read the flag).
pub fn min_max_resident(
    gpu: &Gpu,
    input: &CudaSlice<f32>,
    rows: usize,
    cols: usize,
    p: &MinMaxParams,
) -> Result<CudaSlice<f32>> {
    p.validate()?;
    let len = rows * cols;
    if input.len() < len {
        return Err(KernelError::input(format!(
            "device data: {} values for {rows} x {cols}",
            input.len()
        )));
    }
    let stream = gpu.stream();
    let mut out = stream
        .alloc_zeros::<f32>(len.max(1))
        .map_err(KernelError::device)?;
    if len == 0 {
        return Ok(out);
    }
    let mut flag = stream.alloc_zeros::<i32>(1).map_err(KernelError::device)?;
    // Reduction shape: groups, chunks per group and where partial (g, k) lives.
    let (groups, nchunks, group_stride, chunk_stride, partials);
    match p.axis {
        Axis::Columns => {
            // One block per 32 columns in x (the kernel does not stride over columns).
            let col_tiles = u32::try_from(cols.div_ceil(32))
                .ok()
                .filter(|&t| t <= i32::MAX as u32)
                .ok_or_else(|| KernelError::input(format!("{cols} columns exceed the grid")))?;
            // About 1024 blocks in all, at least 8 rows per chunk.
            let chunks = 1024usize
                .div_ceil(col_tiles as usize)
                .clamp(1, rows.div_ceil(8))
                .min(65535);
            let rows_per_chunk = rows.div_ceil(chunks);
            let chunks = rows.div_ceil(rows_per_chunk);
            let mut pmin = alloc(gpu, chunks * cols)?;
            let mut pmax = alloc(gpu, chunks * cols)?;
            let f = gpu.function("min_max", SOURCE, COLS_PARTIAL)?;
            let (rows_ll, cols_ll, rpc) = (rows as i64, cols as i64, rows_per_chunk as i64);
            let mut b = stream.launch_builder(&f);
            b.arg(input)
                .arg(&rows_ll)
                .arg(&cols_ll)
                .arg(&rpc)
                .arg(&mut pmin)
                .arg(&mut pmax)
                .arg(&mut flag);
            launch(
                b,
                LaunchConfig {
                    grid_dim: (col_tiles, chunks as u32, 1),
                    block_dim: (32, 8, 1),
                    shared_mem_bytes: 0,
                },
            )?;
            (groups, nchunks, group_stride, chunk_stride) = (cols, chunks, 1, cols);
            partials = (pmin, pmax);
        }
        Axis::Rows | Axis::All => {
            let (r, c) = if p.axis == Axis::All {
                (1, len)
            } else {
                (rows, cols)
            };
            let chunks = c.div_ceil(ROW_CHUNK);
            let mut pmin = alloc(gpu, r * chunks)?;
            let mut pmax = alloc(gpu, r * chunks)?;
            let f = gpu.function("min_max", SOURCE, ROWS_PARTIAL)?;
            let (rows_ll, cols_ll, chunk_ll, nchunks_ll) =
                (r as i64, c as i64, ROW_CHUNK as i64, chunks as i64);
            let mut b = stream.launch_builder(&f);
            b.arg(input)
                .arg(&rows_ll)
                .arg(&cols_ll)
                .arg(&chunk_ll)
                .arg(&nchunks_ll)
                .arg(&mut pmin)
                .arg(&mut pmax)
                .arg(&mut flag);
            let blocks = (r * chunks).clamp(1, 1 << 20) as u32;
            launch(
                b,
                LaunchConfig {
                    grid_dim: (blocks, 1, 1),
                    block_dim: (256, 1, 1),
                    shared_mem_bytes: 0,
                },
            )?;
            (groups, nchunks, group_stride, chunk_stride) = (r, chunks, chunks, 1);
            partials = (pmin, pmax);
        }
    }
    let flag_host = stream.clone_dtoh(&flag).map_err(KernelError::device)?;
    if flag_host.first().copied().unwrap_or(0) != 0 {
        return Err(KernelError::input(
            "min-max scaling needs finite values (NaN is ignored), got an infinite value",
        ));
    }
    let mut maps = stream
        .alloc_zeros::<f64>(2 * groups)
        .map_err(KernelError::device)?;
    let (tmin, tmax) = (p.min as f64, p.max as f64);
    let f = gpu.function("min_max", SOURCE, FINALIZE)?;
    let (groups_ll, nchunks_ll, gs, cs) = (
        groups as i64,
        nchunks as i64,
        group_stride as i64,
        chunk_stride as i64,
    );
    let mut b = stream.launch_builder(&f);
    b.arg(&partials.0)
        .arg(&partials.1)
        .arg(&groups_ll)
        .arg(&nchunks_ll)
        .arg(&gs)
        .arg(&cs)
        .arg(&tmin)
        .arg(&tmax)
        .arg(&mut maps);
    launch(b, grid_stride(groups))?;
    let axis = match p.axis {
        Axis::Columns => 0i32,
        Axis::Rows => 1,
        Axis::All => 2,
    };
    let f = gpu.function("min_max", SOURCE, APPLY)?;
    let (rows_ll, cols_ll) = (rows as i64, cols as i64);
    let mut b = stream.launch_builder(&f);
    b.arg(input)
        .arg(&rows_ll)
        .arg(&cols_ll)
        .arg(&axis)
        .arg(&maps)
        .arg(&tmin)
        .arg(&mut out);
    launch(b, grid_stride(len))?;
    Ok(out)
}

fn alloc(gpu: &Gpu, len: usize) -> Result<CudaSlice<f32>> {
    gpu.stream()
        .alloc_zeros::<f32>(len.max(1))
        .map_err(KernelError::device)
}

#[allow(unsafe_code)]
fn launch(mut builder: LaunchArgs<'_>, cfg: LaunchConfig) -> Result<()> {
    // SAFETY: the kernels of min_max.cu bound every index by the 64-bit sizes passed with the
    // buffers, which were allocated for (or checked against) those sizes.
    unsafe { builder.launch(cfg) }
        .map(|_| ())
        .map_err(KernelError::device)
}

//! OpenCL Savitzky-Golay (semantics in `serrano_kernel_core::savgol`; kernels in
//! `cl/savgol.cl`): one work-item per output, a branch-free kernel for the interior outputs and
//! one for the `window - 1` edge outputs of each row; the centre coefficients in `__constant`
//! memory when they fit (else `__global`).

use ocl::{Buffer, Kernel, flags};
use serrano_kernel_core::savgol::{SavgolParams, coeffs_f32, plan};
use serrano_kernel_core::{Matrix, Result};

use crate::ClDevice;
use crate::device::cl_err;

pub const SOURCE: &str = include_str!("cl/savgol.cl");

/// Windows up to this many coefficients go to `__constant` memory (16 KiB; OpenCL 1.2 devices
/// offer at least 64 KiB).
const MAX_CONST: usize = 4095;
/// Work-group size along a row: a multiple of every vendor's SIMD width, and what lets pocl
/// vectorise the work-group loop (the global size is padded to it; extra work-items return).
const LOCAL: usize = 64;

fn input(dev: &ClDevice, data: &[f32]) -> Result<Buffer<f32>> {
    Buffer::<f32>::builder()
        .queue(dev.queue().clone())
        .flags(flags::MEM_READ_ONLY)
        .len(data.len())
        .copy_host_slice(data)
        .build()
        .map_err(cl_err("savgol buffer"))
}

#[allow(unsafe_code)]
pub fn savgol(dev: &ClDevice, signals: &Matrix, p: &SavgolParams) -> Result<Matrix> {
    let (rows, n) = (signals.rows(), signals.cols());
    let Some(c) = plan(signals, p)? else {
        return Matrix::new(rows, n, Vec::new());
    };
    let program = dev.program("savgol", SOURCE)?;
    let x = input(dev, signals.data())?;
    let y = Buffer::<f32>::builder()
        .queue(dev.queue().clone())
        .flags(flags::MEM_WRITE_ONLY)
        .len(rows * n)
        .build()
        .map_err(cl_err("savgol buffer"))?;
    let center = input(dev, &coeffs_f32(&c.center))?;
    let left = input(dev, &coeffs_f32(&c.left))?;
    let right = input(dev, &coeffs_f32(&c.right))?;
    let space = if c.window <= MAX_CONST {
        "const"
    } else {
        "global"
    };
    let (w, half) = (c.window, c.half);
    let interior = n.saturating_sub(w - 1);
    if interior > 0 {
        let kernel = Kernel::builder()
            .program(&program)
            .name(format!("savgol_interior_{space}"))
            .queue(dev.queue().clone())
            .global_work_size([interior.div_ceil(LOCAL) * LOCAL, rows])
            .local_work_size([LOCAL, 1])
            .arg(&x)
            .arg(&y)
            .arg(n as i64)
            .arg(w as i32)
            .arg(&center)
            .build()
            .map_err(cl_err("savgol kernel"))?;
        // SAFETY: x and y hold rows * n floats; work-item (j, row) with j < n - (w - 1) reads
        // x[row * n + j .. + w] and the w coefficients, and writes y[row * n + j + w / 2].
        unsafe { kernel.enq() }.map_err(cl_err("savgol launch"))?;
    }
    let edges = if n <= 2 * half { n } else { 2 * half };
    if edges > 0 {
        let kernel = Kernel::builder()
            .program(&program)
            .name(format!("savgol_edges_{space}"))
            .queue(dev.queue().clone())
            .global_work_size([edges, rows])
            .arg(&x)
            .arg(&y)
            .arg(n as i64)
            .arg(w as i32)
            .arg(p.mode.code())
            .arg(&center)
            .arg(&left)
            .arg(&right)
            .build()
            .map_err(cl_err("savgol kernel"))?;
        // SAFETY: work-item (e, row) writes one edge output i < n of row `row` of y (rows * n
        // floats) and reads row `row` of x at indices in [0, n) (through sg_extend or, for
        // interp, x[0 .. w] / x[n - w .. n] with n >= w checked above), the w centre
        // coefficients and the half x w edge matrices.
        unsafe { kernel.enq() }.map_err(cl_err("savgol launch"))?;
    }
    let mut out = vec![0.0f32; rows * n];
    y.read(&mut out).enq().map_err(cl_err("savgol read"))?;
    Matrix::new(rows, n, out)
}

//! OpenCL Black-Scholes (semantics in `serrano_kernel_core::black_scholes`; kernel in
//! `cl/black_scholes.cl`): validated on the host once, then one work-item per option.

use ocl::{Buffer, Kernel, flags};
use serrano_kernel_core::black_scholes::{BsParams, validate};
use serrano_kernel_core::{Matrix, Result};

use crate::ClDevice;
use crate::device::cl_err;

pub const SOURCE: &str = include_str!("cl/black_scholes.cl");

/// Work-group size: a multiple of every vendor's SIMD width, and what lets pocl vectorise the
/// work-group loop (the global size is padded to it; extra work-items return at once).
const LOCAL: usize = 64;

#[allow(unsafe_code)]
pub fn black_scholes(dev: &ClDevice, options: &Matrix, p: &BsParams) -> Result<Matrix> {
    let l = validate(options, p)?;
    let oc = l.out_cols();
    if l.rows == 0 {
        return Matrix::new(0, oc, Vec::new());
    }
    let program = dev.program("black_scholes", SOURCE)?;
    let x = Buffer::<f32>::builder()
        .queue(dev.queue().clone())
        .flags(flags::MEM_READ_ONLY)
        .len(options.len())
        .copy_host_slice(options.data())
        .build()
        .map_err(cl_err("black_scholes buffer"))?;
    let y = Buffer::<f32>::builder()
        .queue(dev.queue().clone())
        .flags(flags::MEM_WRITE_ONLY)
        .len(l.rows * oc)
        .build()
        .map_err(cl_err("black_scholes buffer"))?;
    let (fixed, rate, vol) = l.kernel_args();
    let kernel = Kernel::builder()
        .program(&program)
        .name("bs_rows")
        .queue(dev.queue().clone())
        .global_work_size(l.rows.div_ceil(LOCAL) * LOCAL)
        .local_work_size(LOCAL)
        .arg(&x)
        .arg(l.rows as i64)
        .arg(l.in_cols as i32)
        .arg(fixed)
        .arg(rate)
        .arg(vol)
        .arg(&y)
        .arg(i32::from(l.greeks))
        .build()
        .map_err(cl_err("black_scholes kernel"))?;
    // SAFETY: x holds rows * in_cols floats and work-item i < rows reads x[i * in_cols + c] for
    // c < in_cols (columns 3, 4 only when not fixed, i.e. in_cols == 5); y holds rows * out_cols
    // floats and the work-item writes y[i * out_cols + c], c < out_cols (10 only with greeks).
    unsafe { kernel.enq() }.map_err(cl_err("black_scholes launch"))?;
    let mut out = vec![0.0f32; l.rows * oc];
    y.read(&mut out)
        .enq()
        .map_err(cl_err("black_scholes read"))?;
    Matrix::new(l.rows, oc, out)
}

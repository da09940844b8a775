//! CPU FFT (numpy.fft semantics, see `serrano_kernel_core::fft`): rustfft / realfft plans
//! (AVX, any length), cached per length for the life of the process, rows spread over the
//! rayon pool. A single long transform runs on one core: rustfft's own cache-aware algorithm
//! already reaches several times the numpy baseline there, and a four-step split across cores
//! would need two more passes over a buffer as large as the signal.
//!
//! Memory is the real cost at these sizes: fresh pages fault in at a few µs each on the VMs we
//! run on (a 128 MB buffer costs ~90 ms, more than a 2^24-point transform). So transforms
//! write straight into the output matrix (seen as complex values through `bytemuck`), and the
//! one working buffer per thread (a copy of the row, which rustfft's out-of-place algorithms
//! consume) is kept between calls, up to [`KEPT_BUFFER_LEN`] values.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, OnceLock};

use num_complex::Complex;
use rayon::prelude::*;
use realfft::RealFftPlanner;
use rustfft::{Fft, FftDirection, FftPlanner};
use serrano_kernel_core::fft::{self, FftKind, FftParams, FftShape};
use serrano_kernel_core::{KernelError, Matrix, Result};

type C32 = Complex<f32>;

/// The largest working buffer (complex values) a thread keeps between calls: 128 MB, the
/// size of a 2^24-point transform.
pub const KEPT_BUFFER_LEN: usize = 1 << 24;

pub fn fft(signals: &Matrix, p: &FftParams) -> Result<Matrix> {
    let shape = fft::validate(signals, p)?;
    let mut out = vec![0.0f32; signals.rows() * shape.out_cols];
    fft_into(signals, p, &mut out)?;
    Matrix::new(signals.rows(), shape.out_cols, out)
}

/// [`fft`] into a caller's buffer of `rows x out_cols` values (see
/// `FftParams::shape`), so that a caller that transforms repeatedly can reuse one output.
pub fn fft_into(signals: &Matrix, p: &FftParams, out: &mut [f32]) -> Result<()> {
    let shape = fft::validate(signals, p)?;
    let expected = signals.rows() * shape.out_cols;
    if out.len() != expected {
        return Err(KernelError::input(format!(
            "the output buffer holds {} values, {expected} needed",
            out.len()
        )));
    }
    if out.is_empty() {
        return Ok(());
    }
    match (p.kind, p.inverse) {
        (FftKind::Complex, inverse) => c2c(signals, &shape, inverse, out),
        (FftKind::Real, false) => r2c(signals, &shape, out),
        (FftKind::Real, true) => c2r(signals, &shape, out),
    }
}

fn planner() -> &'static Mutex<FftPlanner<f32>> {
    static PLANNER: OnceLock<Mutex<FftPlanner<f32>>> = OnceLock::new();
    PLANNER.get_or_init(|| Mutex::new(FftPlanner::new()))
}

fn real_planner() -> &'static Mutex<RealFftPlanner<f32>> {
    static PLANNER: OnceLock<Mutex<RealFftPlanner<f32>>> = OnceLock::new();
    PLANNER.get_or_init(|| Mutex::new(RealFftPlanner::new()))
}

fn poisoned() -> KernelError {
    KernelError::Device("the FFT plan cache is poisoned".into())
}

fn realfft_error(e: realfft::FftError) -> KernelError {
    KernelError::Device(format!("realfft: {e}"))
}

/// Per-thread working buffers, kept between calls (see the module docs).
#[derive(Default)]
struct Buffers {
    complex: Vec<C32>,
    scratch: Vec<C32>,
    real: Vec<f32>,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
}

/// Runs `f` with this thread's buffers (or fresh ones if they are in use); buffers larger than
/// [`KEPT_BUFFER_LEN`] are dropped afterwards.
fn with_buffers<R>(f: impl FnOnce(&mut Buffers) -> R) -> R {
    BUFFERS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffers) => {
            let result = f(&mut buffers);
            if buffers.complex.len() > KEPT_BUFFER_LEN
                || buffers.scratch.len() > KEPT_BUFFER_LEN
                || buffers.real.len() > 2 * KEPT_BUFFER_LEN
            {
                *buffers = Buffers::default();
            }
            result
        }
        Err(_) => f(&mut Buffers::default()),
    })
}

fn sized<T: Copy + Default>(v: &mut Vec<T>, len: usize) -> &mut [T] {
    if v.len() < len {
        v.resize(len, T::default());
    }
    &mut v[..len]
}

/// Interleaved `(re, im)` values into complex ones; the rest of `dst` becomes zero.
fn load_complex(src: &[f32], dst: &mut [C32]) -> Result<()> {
    let src: &[C32] = bytemuck::try_cast_slice(src).map_err(cast_error)?;
    dst[..src.len()].copy_from_slice(src);
    dst[src.len()..].fill(C32::new(0.0, 0.0));
    Ok(())
}

/// An output row seen as complex values.
fn as_complex(row: &mut [f32]) -> Result<&mut [C32]> {
    bytemuck::try_cast_slice_mut(row).map_err(cast_error)
}

fn cast_error(e: bytemuck::PodCastError) -> KernelError {
    KernelError::Device(format!("interleaved complex layout: {e:?}"))
}

fn scale_all(values: &mut [f32], scale: f32) {
    if scale != 1.0 {
        for v in values {
            *v *= scale;
        }
    }
}

/// Rows in parallel, unless there are fewer rows than threads: then one row at a time on the
/// calling thread (its transform is long, and the row buffers stay with one thread).
fn for_each_row(
    out: &mut [f32],
    out_cols: usize,
    work: impl Fn(usize, &mut [f32]) -> Result<()> + Sync,
) -> Result<()> {
    let rows = out.len() / out_cols;
    if rows < rayon::current_num_threads() {
        return out
            .chunks_exact_mut(out_cols)
            .enumerate()
            .try_for_each(|(r, orow)| work(r, orow));
    }
    out.par_chunks_exact_mut(out_cols)
        .enumerate()
        .try_for_each(|(r, orow)| work(r, orow))
}

fn c2c(signals: &Matrix, shape: &FftShape, inverse: bool, out: &mut [f32]) -> Result<()> {
    let n = shape.n;
    let direction = if inverse {
        FftDirection::Inverse
    } else {
        FftDirection::Forward
    };
    let plan: Arc<dyn Fft<f32>> = planner()
        .lock()
        .map_err(|_| poisoned())?
        .plan_fft(n, direction);
    let scratch_len = plan.get_outofplace_scratch_len();
    for_each_row(out, 2 * n, |r, orow| {
        with_buffers(|b| {
            let input = sized(&mut b.complex, n);
            load_complex(&signals.row(r)[..2 * shape.used], input)?;
            let scratch = sized(&mut b.scratch, scratch_len);
            plan.process_outofplace_with_scratch(input, as_complex(orow)?, scratch);
            Ok::<(), KernelError>(())
        })?;
        scale_all(orow, shape.scale as f32);
        Ok(())
    })
}

fn r2c(signals: &Matrix, shape: &FftShape, out: &mut [f32]) -> Result<()> {
    let n = shape.n;
    let plan = real_planner()
        .lock()
        .map_err(|_| poisoned())?
        .plan_fft_forward(n);
    let scratch_len = plan.get_scratch_len();
    for_each_row(out, shape.out_cols, |r, orow| {
        with_buffers(|b| {
            let input = sized(&mut b.real, n);
            input[..shape.used].copy_from_slice(&signals.row(r)[..shape.used]);
            input[shape.used..].fill(0.0);
            let scratch = sized(&mut b.scratch, scratch_len);
            plan.process_with_scratch(input, as_complex(orow)?, scratch)
                .map_err(realfft_error)
        })?;
        scale_all(orow, shape.scale as f32);
        Ok(())
    })
}

fn c2r(signals: &Matrix, shape: &FftShape, out: &mut [f32]) -> Result<()> {
    let n = shape.n;
    let plan = real_planner()
        .lock()
        .map_err(|_| poisoned())?
        .plan_fft_inverse(n);
    let scratch_len = plan.get_scratch_len();
    let half = n / 2 + 1;
    for_each_row(out, n, |r, orow| {
        with_buffers(|b| {
            let spectrum = sized(&mut b.complex, half);
            load_complex(&signals.row(r)[..2 * shape.used], spectrum)?;
            // The half spectrum of a real signal: DC (and Nyquist for even n) are real; numpy
            // ignores their imaginary parts, so drop them rather than let realfft object.
            spectrum[0].im = 0.0;
            if n.is_multiple_of(2) {
                spectrum[half - 1].im = 0.0;
            }
            let scratch = sized(&mut b.scratch, scratch_len);
            plan.process_with_scratch(spectrum, orow, scratch)
                .map_err(realfft_error)
        })?;
        scale_all(orow, shape.scale as f32);
        Ok(())
    })
}

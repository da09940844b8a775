//! CPU FFT (numpy.fft semantics, see `serrano_kernel_core::fft`): rustfft / realfft plans
//! (SIMD, any length), cached per length for the life of the process, rows spread over the
//! rayon pool. A single long complex transform with fewer rows than threads uses a four-step
//! decomposition (`n = n1 · n2`: column FFTs, twiddles, row FFTs, transposes) so that every
//! core works on cache-sized sub-transforms.

use std::f64::consts::PI;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;
use realfft::RealFftPlanner;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftDirection, FftPlanner};
use serrano_kernel_core::fft::{self, FftKind, FftParams, FftShape};
use serrano_kernel_core::{KernelError, Matrix, Result};

type C32 = Complex<f32>;

/// Transforms at least this long, in a call with fewer rows than threads, use four steps.
pub const FOUR_STEP_MIN_LEN: usize = 1 << 18;

pub fn fft(signals: &Matrix, p: &FftParams) -> Result<Matrix> {
    let shape = fft::validate(signals, p)?;
    let rows = signals.rows();
    let mut out = vec![0.0f32; rows * shape.out_cols];
    if !out.is_empty() {
        match (p.kind, p.inverse) {
            (FftKind::Complex, inverse) => c2c(signals, &shape, inverse, &mut out)?,
            (FftKind::Real, false) => r2c(signals, &shape, &mut out)?,
            (FftKind::Real, true) => c2r(signals, &shape, &mut out)?,
        }
    }
    Matrix::new(rows, shape.out_cols, out)
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

fn plan(n: usize, direction: FftDirection) -> Result<Arc<dyn Fft<f32>>> {
    Ok(planner()
        .lock()
        .map_err(|_| poisoned())?
        .plan_fft(n, direction))
}

fn direction(inverse: bool) -> FftDirection {
    if inverse {
        FftDirection::Inverse
    } else {
        FftDirection::Forward
    }
}

/// Interleaved `(re, im)` values into complex ones; the rest of `dst` becomes zero.
fn load_complex(src: &[f32], dst: &mut [C32]) {
    let used = src.len() / 2;
    for (d, s) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *d = C32::new(s[0], s[1]);
    }
    for d in &mut dst[used..] {
        *d = C32::new(0.0, 0.0);
    }
}

fn store_complex(src: &[C32], dst: &mut [f32], scale: f32) {
    for (d, s) in dst.chunks_exact_mut(2).zip(src) {
        d[0] = s.re * scale;
        d[1] = s.im * scale;
    }
}

fn c2c(signals: &Matrix, shape: &FftShape, inverse: bool, out: &mut [f32]) -> Result<()> {
    let n = shape.n;
    let scale = shape.scale as f32;
    let rows = signals.rows();
    if n >= FOUR_STEP_MIN_LEN
        && rows < rayon::current_num_threads()
        && let Some((n1, n2)) = four_step_split(n)
    {
        let mut buf = vec![C32::new(0.0, 0.0); n];
        for (r, orow) in out.chunks_exact_mut(2 * n).enumerate() {
            load_complex(&signals.row(r)[..2 * shape.used], &mut buf);
            four_step(&mut buf, n1, n2, inverse)?;
            store_complex(&buf, orow, scale);
        }
        return Ok(());
    }
    let plan = plan(n, direction(inverse))?;
    let scratch_len = plan.get_inplace_scratch_len();
    out.par_chunks_mut(2 * n).enumerate().for_each_init(
        || {
            (
                vec![C32::new(0.0, 0.0); n],
                vec![C32::new(0.0, 0.0); scratch_len],
            )
        },
        |(buf, scratch), (r, orow)| {
            load_complex(&signals.row(r)[..2 * shape.used], buf);
            plan.process_with_scratch(buf, scratch);
            store_complex(buf, orow, scale);
        },
    );
    Ok(())
}

fn r2c(signals: &Matrix, shape: &FftShape, out: &mut [f32]) -> Result<()> {
    let n = shape.n;
    let plan = real_planner()
        .lock()
        .map_err(|_| poisoned())?
        .plan_fft_forward(n);
    let scale = shape.scale as f32;
    let scratch_len = plan.get_scratch_len();
    out.par_chunks_mut(shape.out_cols)
        .enumerate()
        .try_for_each_init(
            || {
                (
                    vec![0.0f32; n],
                    vec![C32::new(0.0, 0.0); n / 2 + 1],
                    vec![C32::new(0.0, 0.0); scratch_len],
                )
            },
            |(input, spectrum, scratch), (r, orow)| {
                let row = &signals.row(r)[..shape.used];
                input[..shape.used].copy_from_slice(row);
                input[shape.used..].fill(0.0);
                plan.process_with_scratch(input, spectrum, scratch)
                    .map_err(|e| KernelError::Device(format!("realfft: {e}")))?;
                store_complex(spectrum, orow, scale);
                Ok(())
            },
        )
}

fn c2r(signals: &Matrix, shape: &FftShape, out: &mut [f32]) -> Result<()> {
    let n = shape.n;
    let plan = real_planner()
        .lock()
        .map_err(|_| poisoned())?
        .plan_fft_inverse(n);
    let scale = shape.scale as f32;
    let scratch_len = plan.get_scratch_len();
    let half = n / 2 + 1;
    out.par_chunks_mut(n).enumerate().try_for_each_init(
        || {
            (
                vec![C32::new(0.0, 0.0); half],
                vec![C32::new(0.0, 0.0); scratch_len],
            )
        },
        |(spectrum, scratch), (r, orow)| {
            load_complex(&signals.row(r)[..2 * shape.used], spectrum);
            // The half spectrum of a real signal: DC (and Nyquist for even n) are real; numpy
            // ignores their imaginary parts, so drop them rather than let realfft object.
            spectrum[0].im = 0.0;
            if n.is_multiple_of(2) {
                spectrum[half - 1].im = 0.0;
            }
            plan.process_with_scratch(spectrum, orow, scratch)
                .map_err(|e| KernelError::Device(format!("realfft: {e}")))?;
            if scale != 1.0 {
                for v in orow.iter_mut() {
                    *v *= scale;
                }
            }
            Ok(())
        },
    )
}

/// `n = n1 · n2` with both factors as close to `√n` as the divisors allow (each at least 64),
/// or None when `n` has no such split.
fn four_step_split(n: usize) -> Option<(usize, usize)> {
    let mut n1 = (n as f64).sqrt() as usize;
    while n1 >= 64 {
        if n.is_multiple_of(n1) && n / n1 >= 64 {
            return Some((n1, n / n1));
        }
        n1 -= 1;
    }
    None
}

/// Blocked transpose of `src` (`rows x cols`) into `dst` (`cols x rows`), rows of `dst` in
/// parallel.
fn transpose(src: &[C32], dst: &mut [C32], rows: usize, cols: usize) {
    const BLOCK: usize = 32;
    dst.par_chunks_mut(BLOCK * rows)
        .enumerate()
        .for_each(|(cb, dst_block)| {
            let c0 = cb * BLOCK;
            let cn = dst_block.len() / rows;
            for r0 in (0..rows).step_by(BLOCK) {
                let rn = BLOCK.min(rows - r0);
                for c in 0..cn {
                    let drow = &mut dst_block[c * rows + r0..c * rows + r0 + rn];
                    for (i, d) in drow.iter_mut().enumerate() {
                        *d = src[(r0 + i) * cols + c0 + c];
                    }
                }
            }
        });
}

/// In-place DFT of `data` (`n1 · n2` points) by the four-step method: with `j = n2·j1 + j2`
/// and `k = k1 + n1·k2`, `X[k] = Σ_j2 w_n2^(j2 k2) · w_n^(j2 k1) · Σ_j1 w_n1^(j1 k1) x[j]`.
pub fn four_step(data: &mut [C32], n1: usize, n2: usize, inverse: bool) -> Result<()> {
    let n = n1 * n2;
    if data.len() != n {
        return Err(KernelError::input(format!(
            "four-step FFT of {n1} x {n2} points got {}",
            data.len()
        )));
    }
    let dir = direction(inverse);
    let (fft1, fft2) = (plan(n1, dir)?, plan(n2, dir)?);
    let sign = if inverse { 1.0 } else { -1.0 };
    let mut work = vec![C32::new(0.0, 0.0); n];
    // x as n1 rows of n2: columns j2 become rows of length n1.
    transpose(data, &mut work, n1, n2);
    let scratch1 = fft1.get_inplace_scratch_len();
    work.par_chunks_mut(n1).enumerate().for_each_init(
        || vec![C32::new(0.0, 0.0); scratch1],
        |scratch, (j2, row)| {
            fft1.process_with_scratch(row, scratch);
            // Twiddles w_n^(j2 k1), by a recurrence restarted every 64 steps from an exact value
            // so that the error stays at a few ulps.
            let step = sign * 2.0 * PI * j2 as f64 / n as f64;
            for (c0, chunk) in row.chunks_mut(64).enumerate() {
                let (s, c) = (step * (c0 * 64) as f64).sin_cos();
                let mut w = Complex::new(c, s);
                let (ds, dc) = step.sin_cos();
                let dw = Complex::new(dc, ds);
                for v in chunk.iter_mut() {
                    let t = Complex::new(v.re as f64, v.im as f64) * w;
                    *v = C32::new(t.re as f32, t.im as f32);
                    w *= dw;
                }
            }
        },
    );
    // Rows k1 of length n2, then back to k = k1 + n1·k2.
    transpose(&work, data, n2, n1);
    let scratch2 = fft2.get_inplace_scratch_len();
    data.par_chunks_mut(n2).for_each_init(
        || vec![C32::new(0.0, 0.0); scratch2],
        |scratch, row| fft2.process_with_scratch(row, scratch),
    );
    transpose(data, &mut work, n1, n2);
    data.copy_from_slice(&work);
    Ok(())
}

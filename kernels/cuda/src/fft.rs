//! CUDA FFT through cuFFT (numpy.fft semantics, see `serrano_kernel_core::fft`). Plans are
//! cached per (GPU, n, batch, type) for the life of the process; `fft.cu` stages inputs that
//! need numpy's cut / zero-pad (and every `irfft` input, whose DC and Nyquist terms must be
//! real) and applies the norm's scale. Inputs that need no staging go to cuFFT as they are.
//!
//! [`ResidentFft`] runs a transform on device-resident data (what the benchmark measures);
//! [`fft`] wraps it with the copies to and from the host.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::cufft::sys::{cufftType, float2};
use cudarc::cufft::{CudaFft, FftDirection};
use cudarc::driver::{CudaSlice, PushKernelArg};
use serrano_kernel_core::fft::{self, FftKind, FftParams, FftShape};
use serrano_kernel_core::{KernelError, Matrix, Result};

use crate::Gpu;
use crate::device::grid_stride;

pub const SOURCE: &str = include_str!("cu/fft.cu");
const STAGE_REAL: &str = "fft_stage_real";
const STAGE_COMPLEX: &str = "fft_stage_complex";
const SCALE: &str = "fft_scale";
/// The entry points of [`SOURCE`] this module launches.
pub const KERNELS: &[&str] = &[STAGE_REAL, STAGE_COMPLEX, SCALE];

/// Host-to-device-to-host FFT of every row.
pub fn fft(gpu: &Gpu, signals: &Matrix, p: &FftParams) -> Result<Matrix> {
    let shape = fft::validate(signals, p)?;
    if signals.rows() == 0 || shape.out_cols == 0 || shape.used == 0 {
        // Nothing in (no rows, or an all-zero padded input) and nothing to copy to the GPU:
        // a zero-byte allocation is an error there.
        return Ok(Matrix::filled(signals.rows(), shape.out_cols, 0.0));
    }
    if shape.n == 1 {
        return length_one(signals, p, &shape);
    }
    let stream = gpu.stream();
    let mut input = stream
        .clone_htod(signals.data())
        .map_err(KernelError::device)?;
    let mut plan = ResidentFft::new(gpu, signals.rows(), signals.cols(), p)?;
    plan.run(gpu, &mut input)?;
    let out = stream
        .clone_dtoh(plan.output())
        .map_err(KernelError::device)?;
    Matrix::new(signals.rows(), shape.out_cols, out)
}

/// One-point transforms are the (scaled) first value; cuFFT does not plan them everywhere.
fn length_one(signals: &Matrix, p: &FftParams, shape: &FftShape) -> Result<Matrix> {
    let scale = shape.scale as f32;
    let mut out = Vec::with_capacity(signals.rows() * shape.out_cols);
    for r in 0..signals.rows() {
        let row = signals.row(r);
        let first = |i: usize| if shape.used > 0 { row[i] } else { 0.0 };
        match (p.kind, p.inverse) {
            (FftKind::Real, false) => out.extend([first(0) * scale, 0.0]),
            // irfft: the imaginary part of DC is ignored.
            (FftKind::Real, true) => out.push(first(0) * scale),
            (FftKind::Complex, _) => out.extend([first(0) * scale, first(1) * scale]),
        }
    }
    Matrix::new(signals.rows(), shape.out_cols, out)
}

/// cuFFT's 32-bit plans: a batch holds at most this many values in or out.
const MAX_PLAN_VALUES: usize = i32::MAX as usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct PlanKey {
    context: usize,
    n: usize,
    batch: usize,
    kind: i32,
}

type PlanCache = Mutex<HashMap<PlanKey, Arc<Mutex<CudaFft>>>>;

fn plan_cache() -> &'static PlanCache {
    static PLANS: OnceLock<PlanCache> = OnceLock::new();
    PLANS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn cached_plan(gpu: &Gpu, n: usize, batch: usize, kind: cufftType) -> Result<Arc<Mutex<CudaFft>>> {
    let key = PlanKey {
        context: Arc::as_ptr(gpu.context()) as usize,
        n,
        batch,
        kind: kind as i32,
    };
    let mut plans = plan_cache()
        .lock()
        .map_err(|_| KernelError::Device("cuFFT plan cache poisoned".into()))?;
    if let Some(plan) = plans.get(&key) {
        return Ok(plan.clone());
    }
    // Plans hold GPU work areas: keep the cache small (a service sees few distinct shapes).
    if plans.len() >= 32 {
        plans.clear();
    }
    let n_i32 = i32::try_from(n).map_err(|_| KernelError::arg("FFT length above 2^31"))?;
    let batch_i32 = i32::try_from(batch).map_err(|_| KernelError::arg("FFT batch above 2^31"))?;
    let plan = CudaFft::plan_1d(n_i32, kind, batch_i32, gpu.stream().clone())
        .map_err(|e| KernelError::Device(format!("cuFFT plan ({n} x {batch}): {e}")))?;
    let plan = Arc::new(Mutex::new(plan));
    plans.insert(key, plan.clone());
    Ok(plan)
}

#[allow(unsafe_code)]
fn cufft_available() -> bool {
    // SAFETY: only tries to dlopen the library; no cuFFT call is made.
    unsafe { cudarc::cufft::sys::is_culib_present() }
}

/// A transform prepared for `rows x cols` device-resident inputs: cuFFT plans for row chunks,
/// the staging buffer when the input needs one, and the output buffer.
pub struct ResidentFft {
    rows: usize,
    cols: usize,
    kind: FftKind,
    inverse: bool,
    shape: FftShape,
    /// The transform's input per row: `n` reals (r2c) or complex values (`n`, or `n/2 + 1`
    /// for c2r) as float pairs; None when the caller's input is already that.
    staged: Option<CudaSlice<f32>>,
    out: CudaSlice<f32>,
    /// `(first row, rows, plan)` per chunk of rows.
    chunks: Vec<(usize, usize, Arc<Mutex<CudaFft>>)>,
}

impl std::fmt::Debug for ResidentFft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResidentFft")
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("shape", &self.shape)
            .finish()
    }
}

impl ResidentFft {
    /// Plans the transform of `p` on rows of `cols` values; the transform length must be at
    /// least 2 ([`fft`] handles one-point transforms on the host).
    pub fn new(gpu: &Gpu, rows: usize, cols: usize, p: &FftParams) -> Result<Self> {
        let shape = p.shape(cols)?;
        if shape.n == 1 {
            return Err(KernelError::arg(
                "one-point transforms are not planned on the GPU",
            ));
        }
        if !cufft_available() {
            return Err(KernelError::Device(
                "cuFFT (libcufft) is not installed".into(),
            ));
        }
        let n = shape.n;
        let half = n / 2 + 1;
        // Floats per row of the transform's input, and whether the caller's rows are that.
        let (staged_row, kind, direct) = match (p.kind, p.inverse) {
            (FftKind::Real, false) => (n, cufftType::CUFFT_R2C, cols == n),
            (FftKind::Real, true) => (2 * half, cufftType::CUFFT_C2R, false),
            (FftKind::Complex, _) => (2 * n, cufftType::CUFFT_C2C, cols == 2 * n),
        };
        let stream = gpu.stream();
        let staged = if direct || rows == 0 || n == 0 {
            None
        } else {
            Some(
                stream
                    .alloc_zeros::<f32>(rows * staged_row)
                    .map_err(KernelError::device)?,
            )
        };
        let out = stream
            .alloc_zeros::<f32>((rows * shape.out_cols).max(1))
            .map_err(KernelError::device)?;
        let per_row = staged_row.max(shape.out_cols).max(1);
        let chunk_rows = (MAX_PLAN_VALUES / per_row).max(1);
        let mut chunks = Vec::new();
        if n > 0 {
            let mut r0 = 0;
            while r0 < rows {
                let len = chunk_rows.min(rows - r0);
                chunks.push((r0, len, cached_plan(gpu, n, len, kind)?));
                r0 += len;
            }
        }
        Ok(Self {
            rows,
            cols,
            kind: p.kind,
            inverse: p.inverse,
            shape,
            staged,
            out,
            chunks,
        })
    }

    pub fn output(&self) -> &CudaSlice<f32> {
        &self.out
    }

    pub fn out_cols(&self) -> usize {
        self.shape.out_cols
    }

    /// Transforms `input` (`rows x cols`, row-major) into [`Self::output`]; asynchronous on the
    /// GPU's stream (`input` may be overwritten by cuFFT's complex-to-complex pass).
    pub fn run(&mut self, gpu: &Gpu, input: &mut CudaSlice<f32>) -> Result<()> {
        let (rows, n) = (self.rows, self.shape.n);
        if input.len() < rows * self.cols {
            return Err(KernelError::input(format!(
                "device input holds {} values, {rows} x {} expected",
                input.len(),
                self.cols
            )));
        }
        if rows == 0 || self.shape.out_cols == 0 {
            return Ok(());
        }
        let stream = gpu.stream();
        let half = n / 2 + 1;
        if let Some(staged) = self.staged.as_mut() {
            let (rows_ll, cols_ll, used_ll) =
                (rows as i64, self.cols as i64, self.shape.used as i64);
            // Values per staged row (reals for r2c, complex values otherwise) and the complex
            // staging's `real_len`: for a half spectrum the real length, whose DC and Nyquist
            // terms it makes real; 0 otherwise.
            let (kernel, m, real_len) = match (self.kind, self.inverse) {
                (FftKind::Real, false) => (STAGE_REAL, n, None),
                (FftKind::Real, true) => (STAGE_COMPLEX, half, Some(n as i64)),
                (FftKind::Complex, _) => (STAGE_COMPLEX, n, Some(0)),
            };
            let f = gpu.function("fft", SOURCE, kernel)?;
            let m_ll = m as i64;
            let mut b = stream.launch_builder(&f);
            b.arg(&*input)
                .arg(&rows_ll)
                .arg(&cols_ll)
                .arg(&used_ll)
                .arg(&mut *staged)
                .arg(&m_ll);
            if let Some(real_len) = &real_len {
                b.arg(real_len);
            }
            launch(b, rows * m)?;
        }
        let source: &mut CudaSlice<f32> = match self.staged.as_mut() {
            Some(s) => s,
            None => input,
        };
        for (r0, len, plan) in &self.chunks {
            let plan = plan
                .lock()
                .map_err(|_| KernelError::Device("cuFFT plan poisoned".into()))?;
            let out_cols = self.shape.out_cols;
            let mut out = self.out.slice_mut(r0 * out_cols..(r0 + len) * out_cols);
            let err = |e: cudarc::cufft::result::CufftError| {
                KernelError::Device(format!("cuFFT ({n} x {len}): {e}"))
            };
            match (self.kind, self.inverse) {
                (FftKind::Real, false) => {
                    let src = source.slice(r0 * n..(r0 + len) * n);
                    let mut dst = as_complex_mut(&mut out, len * half)?;
                    plan.exec_r2c(&src, &mut dst).map_err(err)?;
                }
                (FftKind::Real, true) => {
                    let mut src_floats = source.slice_mut(r0 * 2 * half..(r0 + len) * 2 * half);
                    let mut src = as_complex_mut(&mut src_floats, len * half)?;
                    plan.exec_c2r(&mut src, &mut out).map_err(err)?;
                }
                (FftKind::Complex, inverse) => {
                    let mut src_floats = source.slice_mut(r0 * 2 * n..(r0 + len) * 2 * n);
                    let mut src = as_complex_mut(&mut src_floats, len * n)?;
                    let mut dst = as_complex_mut(&mut out, len * n)?;
                    let dir = if inverse {
                        FftDirection::Inverse
                    } else {
                        FftDirection::Forward
                    };
                    plan.exec_c2c(&mut src, &mut dst, dir).map_err(err)?;
                }
            }
        }
        if self.shape.scale != 1.0 {
            let f = gpu.function("fft", SOURCE, SCALE)?;
            let len = rows * self.shape.out_cols;
            let (len_ll, scale) = (len as i64, self.shape.scale as f32);
            let mut b = stream.launch_builder(&f);
            b.arg(&mut self.out).arg(&len_ll).arg(&scale);
            launch(b, len)?;
        }
        Ok(())
    }
}

/// Interleaved floats seen as cuFFT complex values.
#[allow(unsafe_code)]
fn as_complex_mut<'a>(
    floats: &'a mut cudarc::driver::CudaViewMut<'_, f32>,
    complex_len: usize,
) -> Result<cudarc::driver::CudaViewMut<'a, float2>> {
    // SAFETY: float2 is `repr(C)` {x: f32, y: f32}: any pair of floats is a valid value, and
    // device allocations are 256-byte aligned while every view here starts at an even float
    // offset (8-byte aligned). The length is checked by `transmute_mut`.
    unsafe { floats.transmute_mut::<float2>(complex_len) }
        .ok_or_else(|| KernelError::Device("FFT buffer too small for its complex view".into()))
}

#[allow(unsafe_code)]
fn launch(mut builder: cudarc::driver::LaunchArgs<'_>, len: usize) -> Result<()> {
    // SAFETY: every kernel of fft.cu bounds its grid-stride loop by the 64-bit length passed
    // with the buffers, which were allocated (or checked) to hold that many values.
    unsafe { builder.launch(grid_stride(len)) }
        .map(|_| ())
        .map_err(KernelError::device)
}

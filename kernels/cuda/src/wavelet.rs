//! CUDA wavelet transform (pywt.wavedec / waverec semantics, see
//! `serrano_kernel_core::wavelet`): one kernel launch per level, each thread computing one
//! coefficient (or one reconstructed sample) with the extension mode, every row at once.

use cudarc::driver::{CudaSlice, LaunchArgs, PushKernelArg};
use serrano_kernel_core::wavelet::{self, ExtensionMode, WaveletLayout, WaveletParams};
use serrano_kernel_core::{KernelError, Matrix, Result};

use crate::Gpu;
use crate::device::grid_stride;

pub const SOURCE: &str = include_str!("cu/wavelet.cu");
const DWT: &str = "dwt_level";
const IDWT: &str = "idwt_level";
/// The entry points of [`SOURCE`] this module launches.
pub const KERNELS: &[&str] = &[DWT, IDWT];

pub fn wavelet(gpu: &Gpu, signals: &Matrix, p: &WaveletParams) -> Result<Matrix> {
    let layout = wavelet::validate(signals, p)?;
    if signals.rows() == 0 || layout.levels == 0 {
        // Nothing to transform: zero levels are the identity.
        return Matrix::new(signals.rows(), layout.out_cols, signals.data().to_vec());
    }
    let stream = gpu.stream();
    let input = stream
        .clone_htod(signals.data())
        .map_err(KernelError::device)?;
    let out = wavelet_resident(gpu, &input, signals.rows(), p, &layout)?;
    let data = stream.clone_dtoh(&out).map_err(KernelError::device)?;
    Matrix::new(signals.rows(), layout.out_cols, data)
}

/// Transforms `rows x layout.in_cols` device-resident values (the layout from
/// [`wavelet::validate`] or `p.layout`, checked against `p`) into a new `rows x layout.out_cols`
/// buffer; asynchronous.
pub fn wavelet_resident(
    gpu: &Gpu,
    input: &CudaSlice<f32>,
    rows: usize,
    p: &WaveletParams,
    layout: &WaveletLayout,
) -> Result<CudaSlice<f32>> {
    // The kernels address rows through the layout: one made for other parameters would take
    // them out of the buffers.
    if p.layout(layout.in_cols)? != *layout {
        return Err(KernelError::arg(
            "the wavelet layout was not made for these parameters",
        ));
    }
    if input.len() < rows * layout.in_cols {
        return Err(KernelError::input(format!(
            "device signals: {} values for {rows} x {}",
            input.len(),
            layout.in_cols
        )));
    }
    let f = p.wavelet.filters()?;
    let flen = f.dec_lo.len();
    let table: Vec<f32> = [&f.dec_lo, &f.dec_hi, &f.rec_lo, &f.rec_hi]
        .iter()
        .flat_map(|v| v.iter().map(|&x| x as f32))
        .collect();
    let stream = gpu.stream();
    let filters = stream.clone_htod(&table).map_err(KernelError::device)?;
    let mut out = stream
        .alloc_zeros::<f32>((rows * layout.out_cols).max(1))
        .map_err(KernelError::device)?;
    if rows == 0 {
        return Ok(out);
    }
    if layout.levels == 0 {
        stream
            .memcpy_dtod(&input.slice(..rows * layout.in_cols), &mut out)
            .map_err(KernelError::device)?;
        return Ok(out);
    }
    // Approximations between levels, ping-ponged; the largest is level 1's (or level L−1's
    // reconstruction), never longer than the signal.
    let widest = layout.approx_lengths.iter().copied().max().unwrap_or(0);
    let mut temp = [
        stream
            .alloc_zeros::<f32>(rows * widest)
            .map_err(KernelError::device)?,
        stream
            .alloc_zeros::<f32>(rows * widest)
            .map_err(KernelError::device)?,
    ];
    let mode = match p.mode {
        ExtensionMode::Symmetric => 0i32,
        ExtensionMode::Periodization => 1,
        ExtensionMode::Zero => 2,
    };
    let flen_i = flen as i32;
    let rows_ll = rows as i64;
    if p.inverse {
        let idwt = gpu.function("wavelet", SOURCE, IDWT)?;
        let total = layout.in_cols as i64;
        let periodization = i32::from(p.mode == ExtensionMode::Periodization);
        // Level L reads cA_L from the input; later levels read the previous reconstruction.
        let mut d_off = layout.lengths[0] as i64;
        for level in (1..=layout.levels).rev() {
            let len = layout.approx_lengths[level] as i64;
            let out_len = layout.approx_lengths[level - 1] as i64;
            let last = level == 1;
            let cur = level % 2;
            let (src, dst) = split_pair(&mut temp, cur);
            let (a_buf, a_off, a_stride): (&CudaSlice<f32>, i64, i64) = if level == layout.levels {
                (input, 0, total)
            } else {
                (src, 0, len)
            };
            let mut b = stream.launch_builder(&idwt);
            b.arg(a_buf)
                .arg(&a_off)
                .arg(&a_stride)
                .arg(input)
                .arg(&d_off)
                .arg(&total)
                .arg(&len)
                .arg(&rows_ll);
            let zero = 0i64;
            if last {
                b.arg(&mut out);
            } else {
                b.arg(dst);
            }
            b.arg(&zero)
                .arg(&out_len)
                .arg(&out_len)
                .arg(&filters)
                .arg(&flen_i)
                .arg(&periodization);
            launch(b, rows * out_len as usize)?;
            d_off += len;
        }
    } else {
        let dwt = gpu.function("wavelet", SOURCE, DWT)?;
        let total = layout.out_cols as i64;
        let shift = if p.mode == ExtensionMode::Periodization {
            (flen / 2) as i32
        } else {
            1
        };
        // cD_j sits after cA_L and cD_L..cD_{j+1}: offsets from the end of the row.
        let mut end = layout.out_cols as i64;
        for level in 1..=layout.levels {
            let n = layout.approx_lengths[level - 1] as i64;
            let len = layout.approx_lengths[level] as i64;
            let last = level == layout.levels;
            let cur = level % 2;
            let (src, dst) = split_pair(&mut temp, cur);
            let (in_buf, in_stride): (&CudaSlice<f32>, i64) =
                if level == 1 { (input, n) } else { (src, n) };
            let d_off = end - len;
            let zero = 0i64;
            let mut b = stream.launch_builder(&dwt);
            b.arg(in_buf)
                .arg(&zero)
                .arg(&in_stride)
                .arg(&n)
                .arg(&rows_ll);
            // The last level's approximation goes to the front of the output rows.
            let a_stride = if last { total } else { len };
            if last {
                // Same buffer for cA and cD: two pointer arguments to one allocation, written at
                // disjoint offsets.
                let out_ref: &CudaSlice<f32> = &out;
                b.arg(out_ref).arg(&zero).arg(&a_stride).arg(out_ref);
            } else {
                b.arg(dst).arg(&zero).arg(&a_stride).arg(&mut out);
            }
            b.arg(&d_off)
                .arg(&total)
                .arg(&len)
                .arg(&filters)
                .arg(&flen_i)
                .arg(&mode)
                .arg(&shift);
            launch(b, rows * len as usize)?;
            end -= len;
        }
    }
    Ok(out)
}

/// `(read, write)` views of the two ping-pong buffers: level parity picks which is which.
fn split_pair(
    temp: &mut [CudaSlice<f32>; 2],
    cur: usize,
) -> (&CudaSlice<f32>, &mut CudaSlice<f32>) {
    let [a, b] = temp;
    if cur == 0 { (&*b, a) } else { (&*a, b) }
}

#[allow(unsafe_code)]
fn launch(mut builder: LaunchArgs<'_>, len: usize) -> Result<()> {
    // SAFETY: the kernels of wavelet.cu bound their grid-stride loops by rows x length and
    // address rows through the offsets and strides of buffers allocated for the layout.
    unsafe { builder.launch(grid_stride(len)) }
        .map(|_| ())
        .map_err(KernelError::device)
}

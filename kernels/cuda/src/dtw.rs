//! CUDA dtw (see `cu/dtw.cu`): one thread per pair with DP strips in registers when there are
//! enough pairs to fill the GPU, else a warp per pair sweeping anti-diagonals of column blocks.
//!
//! [`DeviceDtw`] holds the inputs, the output and the kernel's scratch on the device, so that a
//! benchmark (or a caller running many assignments) times only the kernel; [`dtw`] uploads,
//! runs once and downloads.

use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg, sys};
use serrano_kernel_core::dtw::DtwParams;
use serrano_kernel_core::{KernelError, Matrix, Result};

use crate::Gpu;

pub const SOURCE: &str = include_str!("cu/dtw.cu");

const BLOCK: u32 = 128;
/// Upper bound of the per-thread scratch columns (bytes): long series get fewer threads.
const SCRATCH_BYTES: usize = 1 << 30;
/// Longest series the kernel's `int` index arithmetic (`j0 + 31 + w`) takes without overflow.
const MAX_LEN: usize = 1 << 29;

/// The `a.rows() x b.rows()` matrix of DTW distances (see `serrano_kernel_core::dtw`).
pub fn dtw(gpu: &Gpu, a: &Matrix, b: &Matrix, p: &DtwParams) -> Result<Matrix> {
    let mut job = DeviceDtw::new(gpu, a, b, p, Strategy::Auto)?;
    job.run(gpu)?;
    job.download(gpu)
}

/// Which kernel computes the pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Warps per pair when the pairs are too few to give every SM 128 threads and the series
    /// are long enough (64+ columns) to spread over a warp; threads per pair otherwise.
    Auto,
    /// `dtw_pairs`: one thread per pair.
    ThreadPerPair,
    /// `dtw_pairs_warp`: one warp per pair.
    WarpPerPair,
}

/// Device-resident inputs, output and scratch of one all-pairs DTW.
#[derive(Debug)]
pub struct DeviceDtw {
    na: usize,
    nb: usize,
    /// Nothing to compute (no pairs): no device memory is held.
    buffers: Option<Buffers>,
}

#[derive(Debug)]
struct Buffers {
    kernel: &'static str,
    /// `a` transposed (`[i][row]`) for the thread kernel, row-major for the warp kernel.
    a: CudaSlice<f32>,
    b: CudaSlice<f32>,
    out: CudaSlice<f32>,
    col: CudaSlice<f32>,
    l1: i32,
    l2: i32,
    band: i32,
    grid: u32,
}

impl DeviceDtw {
    /// Validates the inputs, picks the kernel and uploads the inputs in its layout.
    pub fn new(
        gpu: &Gpu,
        a: &Matrix,
        b: &Matrix,
        p: &DtwParams,
        strategy: Strategy,
    ) -> Result<Self> {
        p.validate(a, b)?;
        let (na, nb) = (a.rows(), b.rows());
        if na == 0 || nb == 0 {
            return Ok(Self {
                na,
                nb,
                buffers: None,
            });
        }
        let (l1, l2) = (a.cols(), b.cols());
        if l1 > MAX_LEN || l2 > MAX_LEN {
            return Err(KernelError::input(format!(
                "series of length {} exceed the CUDA dtw limit of {MAX_LEN}",
                l1.max(l2)
            )));
        }
        let pairs = na
            .checked_mul(nb)
            .ok_or_else(|| KernelError::input(format!("{na} x {nb} pairs overflow")))?;
        let band = p.band(l1, l2);

        let sms = gpu
            .context()
            .attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(KernelError::device)?
            .max(1) as usize;
        let warps = match strategy {
            Strategy::Auto => l2 >= 64 && pairs < sms * 128,
            Strategy::ThreadPerPair => false,
            Strategy::WarpPerPair => true,
        };
        let kernel = if warps { "dtw_pairs_warp" } else { "dtw_pairs" };
        let func = gpu.function("dtw", SOURCE, kernel)?;
        let per_sm = func
            .occupancy_max_active_blocks_per_multiprocessor(BLOCK, 0, None)
            .map_err(KernelError::device)?
            .max(1) as usize;
        // Persistent threads: as many as fit at once, fewer if there are fewer pairs or the
        // scratch columns (one per thread, or per warp) would not fit the budget.
        let block = BLOCK as usize;
        let owners_per_block = if warps { block / 32 } else { block };
        let by_scratch = (SCRATCH_BYTES / (4 * l1 * owners_per_block)).max(1);
        let grid = (sms * per_sm)
            .min(pairs.div_ceil(owners_per_block))
            .min(by_scratch)
            .max(1);
        let owners = grid * owners_per_block;

        let stream = gpu.stream();
        let dev = |e| KernelError::device(format!("dtw upload: {e}"));
        let a_dev = if warps {
            stream.clone_htod(a.data()).map_err(dev)?
        } else {
            let mut a_t = vec![0f32; l1 * na];
            for r in 0..na {
                for (i, &v) in a.row(r).iter().enumerate() {
                    a_t[i * na + r] = v;
                }
            }
            stream.clone_htod(&a_t).map_err(dev)?
        };
        let b_dev = stream.clone_htod(b.data()).map_err(dev)?;
        let out = stream.alloc_zeros::<f32>(pairs).map_err(dev)?;
        let col = stream.alloc_zeros::<f32>(owners * l1).map_err(dev)?;
        Ok(Self {
            na,
            nb,
            buffers: Some(Buffers {
                kernel,
                a: a_dev,
                b: b_dev,
                out,
                col,
                l1: l1 as i32,
                l2: l2 as i32,
                band: band as i32,
                grid: grid as u32,
            }),
        })
    }

    /// Runs the kernel and waits for it.
    pub fn run(&mut self, gpu: &Gpu) -> Result<()> {
        let Some(buf) = self.buffers.as_mut() else {
            return Ok(());
        };
        let func = gpu.function("dtw", SOURCE, buf.kernel)?;
        let stream = gpu.stream();
        let (na, nb) = (self.na as i64, self.nb as i64);
        let cfg = LaunchConfig {
            grid_dim: (buf.grid, 1, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut launch = stream.launch_builder(&func);
        launch
            .arg(&buf.a)
            .arg(&buf.b)
            .arg(&mut buf.out)
            .arg(&mut buf.col)
            .arg(&na)
            .arg(&nb)
            .arg(&buf.l1)
            .arg(&buf.l2)
            .arg(&buf.band);
        // SAFETY: the argument list matches `dtw_pairs` and `dtw_pairs_warp` in cu/dtw.cu (three
        // device pointers to f32, the scratch, two i64 and three i32). `a` holds l1*na values,
        // `b` nb*l2, `out` na*nb and `col` l1 per thread (per warp for the warp kernel) of the
        // launched grid, which are exactly the index ranges the kernels use.
        #[allow(unsafe_code)]
        unsafe { launch.launch(cfg) }
            .map_err(|e| KernelError::device(format!("dtw launch: {e}")))?;
        stream
            .synchronize()
            .map_err(|e| KernelError::device(format!("dtw kernel: {e}")))
    }

    /// The distances computed by the last [`DeviceDtw::run`].
    pub fn download(&self, gpu: &Gpu) -> Result<Matrix> {
        let Some(buf) = self.buffers.as_ref() else {
            return Ok(Matrix::filled(self.na, self.nb, 0.0));
        };
        let out = gpu
            .stream()
            .clone_dtoh(&buf.out)
            .map_err(|e| KernelError::device(format!("dtw download: {e}")))?;
        Matrix::new(self.na, self.nb, out)
    }
}

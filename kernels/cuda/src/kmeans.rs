//! CUDA k-means (semantics in `serrano_kernel_core::kmeans`): the shared Lloyd driver on the
//! host over [`GpuStep`], which keeps the data, labels and distances on the device. Per
//! iteration only the centroids go up and the `k x d` sums, counts and inertia come down
//! (`src/cu/kmeans.cu`: cuBLAS SGEMM scores, a warp-per-point argmin with an exact distance
//! recomputation, and per-chunk partial sums added in a fixed order). DTW runs through the CUDA
//! `dtw` kernel ([`crate::dtw::dtw`]).

use cudarc::cublas::sys::cublasOperation_t;
use cudarc::cublas::{CudaBlas, Gemm, GemmConfig};
use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};
use serrano_kernel_core::dtw::DtwParams;
use serrano_kernel_core::kmeans::{
    Assignment, DtwStep, KMeansMetric, KMeansOutput, KMeansParams, LloydStep, centred_centroids,
    lloyd, validate,
};
use serrano_kernel_core::knn::centring_mean;
use serrano_kernel_core::{KernelError, Matrix, Result};

use crate::Gpu;

pub const SOURCE: &str = include_str!("cu/kmeans.cu");

/// Raw scores (points x centroids) per GEMM block.
const SCORE_BUDGET: usize = 1 << 26;
/// Partial sums (chunks x k x d doubles) at most.
const PARTIAL_BUDGET: usize = 1 << 23;

fn dev_err(what: &'static str) -> impl Fn(cudarc::driver::DriverError) -> KernelError {
    move |e| KernelError::Device(format!("CUDA {what}: {e}"))
}

/// The Euclidean assignment step with the data resident on the GPU.
pub struct GpuStep<'a> {
    gpu: &'a Gpu,
    blas: CudaBlas,
    n: usize,
    d: usize,
    mean: Vec<f32>,
    data: CudaSlice<f32>,
    labels: CudaSlice<u32>,
    dist2: CudaSlice<f32>,
    /// Score block and partial sums, kept across iterations (sized for the last `k`).
    scratch: Option<Scratch>,
}

struct Scratch {
    k: usize,
    raw: CudaSlice<f32>,
    psum: CudaSlice<f64>,
    pcount: CudaSlice<u32>,
    pinertia: CudaSlice<f64>,
    sums: CudaSlice<f64>,
    counts: CudaSlice<u64>,
}

impl<'a> GpuStep<'a> {
    pub fn new(gpu: &'a Gpu, data: &Matrix) -> Result<Self> {
        let (n, d) = (data.rows(), data.cols());
        if n == 0 || d == 0 {
            return Err(KernelError::input(
                "k-means needs at least one point and one column",
            ));
        }
        // `int` sizes in the kernels; k <= n, and k rounded up to 4 (`kpad`) must fit too.
        if n > i32::MAX as usize - 3 || d > i32::MAX as usize {
            return Err(KernelError::input(
                "too many points or columns for the CUDA kernels",
            ));
        }
        let mean = centring_mean(data);
        let stream = gpu.stream();
        let dev_data = stream.clone_htod(data.data()).map_err(dev_err("upload"))?;
        let labels = stream.alloc_zeros::<u32>(n).map_err(dev_err("alloc"))?;
        let dist2 = stream.alloc_zeros::<f32>(n).map_err(dev_err("alloc"))?;
        let blas = CudaBlas::new(stream.clone())
            .map_err(|e| KernelError::Device(format!("cuBLAS: {e}")))?;
        gpu.module("kmeans", SOURCE)?;
        Ok(Self {
            gpu,
            blas,
            n,
            d,
            mean,
            data: dev_data,
            labels,
            dist2,
            scratch: None,
        })
    }

    fn warps(rows: usize) -> LaunchConfig {
        LaunchConfig {
            grid_dim: ((rows * 32).div_ceil(256) as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        }
    }
}

impl LloydStep for GpuStep<'_> {
    fn dist2_to(&mut self, centre: &[f32]) -> Result<Vec<f64>> {
        if centre.len() != self.d {
            return Err(KernelError::input("centre does not have d values"));
        }
        let stream = self.gpu.stream();
        let f = self.gpu.function("kmeans", SOURCE, "kmeans_dist_to")?;
        let c = stream.clone_htod(centre).map_err(dev_err("upload"))?;
        let (n_i, d_i) = (self.n as i32, self.d as i32);
        let mut lb = stream.launch_builder(&f);
        lb.arg(&self.data)
            .arg(&c)
            .arg(&n_i)
            .arg(&d_i)
            .arg(&mut self.dist2);
        // SAFETY: one warp per point (n), reading its d values and the d-long centre, writing
        // out[i] for i < n.
        #[allow(unsafe_code)]
        unsafe { lb.launch(Self::warps(self.n)) }.map_err(dev_err("kmeans_dist_to"))?;
        let out = stream
            .clone_dtoh(&self.dist2)
            .map_err(dev_err("download"))?;
        Ok(out.into_iter().map(f64::from).collect())
    }

    fn assign(&mut self, centroids: &Matrix) -> Result<Assignment> {
        let (n, d, k) = (self.n, self.d, centroids.rows());
        if k == 0 || centroids.cols() != d {
            return Err(KernelError::input("centroids do not have d columns"));
        }
        let stream = self.gpu.stream();
        let (shifted, add) = centred_centroids(centroids, &self.mean);
        let dev_shifted = stream.clone_htod(&shifted).map_err(dev_err("upload"))?;
        let dev_add = stream.clone_htod(&add).map_err(dev_err("upload"))?;
        let dev_cent = stream
            .clone_htod(centroids.data())
            .map_err(dev_err("upload"))?;
        let kpad = k.next_multiple_of(4);
        let rows_per = (SCORE_BUDGET / kpad).clamp(1, n);
        let max_chunks = (PARTIAL_BUDGET / (k * d)).max(1);
        let chunk = n.div_ceil(max_chunks).max(1024).min(n);
        let chunks = n.div_ceil(chunk);
        if self.scratch.as_ref().is_none_or(|s| s.k != k) {
            self.scratch = None;
            self.scratch = Some(Scratch {
                k,
                raw: stream
                    .alloc_zeros::<f32>(rows_per * kpad)
                    .map_err(dev_err("alloc"))?,
                psum: stream
                    .alloc_zeros::<f64>(chunks * k * d)
                    .map_err(dev_err("alloc"))?,
                pcount: stream
                    .alloc_zeros::<u32>(chunks * k)
                    .map_err(dev_err("alloc"))?,
                pinertia: stream
                    .alloc_zeros::<f64>(chunks)
                    .map_err(dev_err("alloc"))?,
                sums: stream
                    .alloc_zeros::<f64>(k * d + 1)
                    .map_err(dev_err("alloc"))?,
                counts: stream.alloc_zeros::<u64>(k).map_err(dev_err("alloc"))?,
            });
        }
        let Some(Scratch {
            raw,
            psum,
            pcount,
            pinertia,
            sums,
            counts,
            ..
        }) = self.scratch.as_mut()
        else {
            return Err(KernelError::device("k-means scratch buffers missing"));
        };
        let argmin = self.gpu.function("kmeans", SOURCE, "kmeans_argmin")?;
        let (k_i, d_i, kpad_i) = (k as i32, d as i32, kpad as i32);
        for start in (0..n).step_by(rows_per) {
            let rows = (n - start).min(rows_per);
            let rows_i = rows as i32;
            // Column-major C (k x rows, ldc = kpad) = -2 * C'(k x d) * X_blk^T (d x rows):
            // raw[row * kpad + j] = -2 c'_j . x_row.
            let cfg = GemmConfig {
                transa: cublasOperation_t::CUBLAS_OP_T,
                transb: cublasOperation_t::CUBLAS_OP_N,
                m: k_i,
                n: rows_i,
                k: d_i,
                alpha: -2.0f32,
                lda: d_i,
                ldb: d_i,
                beta: 0.0,
                ldc: kpad_i,
            };
            let x = self.data.slice(start * d..(start + rows) * d);
            // SAFETY: A holds k x d values (lda = d), B rows x d (ldb = d), C rows_per x kpad
            // >= (rows - 1) * kpad + k values.
            #[allow(unsafe_code)]
            unsafe { self.blas.gemm(cfg, &dev_shifted, &x, raw) }
                .map_err(|e| KernelError::Device(format!("cuBLAS sgemm: {e}")))?;
            let base = start as i64;
            let mut lb = stream.launch_builder(&argmin);
            lb.arg(&*raw)
                .arg(&dev_add)
                .arg(&self.data)
                .arg(&dev_cent)
                .arg(&rows_i)
                .arg(&kpad_i)
                .arg(&k_i)
                .arg(&d_i)
                .arg(&base)
                .arg(&mut self.labels)
                .arg(&mut self.dist2);
            // SAFETY: one warp per row < rows; reads raw[row * kpad + j] (j < k), add[j],
            // point base + row < n and centroid best_j < k; writes labels/dist2 at base + row.
            #[allow(unsafe_code)]
            unsafe { lb.launch(Self::warps(rows)) }.map_err(dev_err("kmeans_argmin"))?;
        }
        let partial = self.gpu.function("kmeans", SOURCE, "kmeans_partial")?;
        let (n_i, chunk_i, chunks_i) = (n as i32, chunk as i32, chunks as i32);
        let mut lb = stream.launch_builder(&partial);
        lb.arg(&self.data)
            .arg(&self.labels)
            .arg(&self.dist2)
            .arg(&n_i)
            .arg(&d_i)
            .arg(&k_i)
            .arg(&chunk_i)
            .arg(&mut *psum)
            .arg(&mut *pcount)
            .arg(&mut *pinertia);
        // SAFETY: block c < chunks writes only its own k x d sums, k counts and one inertia;
        // points read are below n, labels checked against k.
        #[allow(unsafe_code)]
        unsafe {
            lb.launch(LaunchConfig {
                grid_dim: (chunks as u32, 1, 1),
                block_dim: (d.next_multiple_of(32).min(256) as u32, 1, 1),
                shared_mem_bytes: 0,
            })
        }
        .map_err(dev_err("kmeans_partial"))?;
        let reduce = self.gpu.function("kmeans", SOURCE, "kmeans_reduce")?;
        let mut lb = stream.launch_builder(&reduce);
        lb.arg(&*psum)
            .arg(&*pcount)
            .arg(&*pinertia)
            .arg(&chunks_i)
            .arg(&k_i)
            .arg(&d_i)
            .arg(&mut *sums)
            .arg(&mut *counts);
        // SAFETY: thread x writes sums[x] (x < k*d), counts[x] (x < k) and sums[k*d] (x == 0).
        #[allow(unsafe_code)]
        unsafe {
            lb.launch(LaunchConfig {
                grid_dim: ((k * d).max(1).div_ceil(256) as u32, 1, 1),
                block_dim: (256, 1, 1),
                shared_mem_bytes: 0,
            })
        }
        .map_err(dev_err("kmeans_reduce"))?;
        let mut sums = stream.clone_dtoh(&*sums).map_err(dev_err("download"))?;
        let counts = stream.clone_dtoh(&*counts).map_err(dev_err("download"))?;
        let inertia = sums.pop().unwrap_or(0.0);
        Ok(Assignment {
            sums,
            counts,
            inertia,
        })
    }

    fn labels(&mut self) -> Result<Vec<u32>> {
        self.gpu
            .stream()
            .clone_dtoh(&self.labels)
            .map_err(dev_err("download"))
    }

    fn min_dist2(&mut self) -> Result<Vec<f64>> {
        let out = self
            .gpu
            .stream()
            .clone_dtoh(&self.dist2)
            .map_err(dev_err("download"))?;
        Ok(out.into_iter().map(f64::from).collect())
    }
}

pub fn kmeans(
    gpu: &Gpu,
    data: &Matrix,
    init: Option<&Matrix>,
    p: &KMeansParams,
) -> Result<KMeansOutput> {
    validate(data, init, p)?;
    match p.metric {
        KMeansMetric::Euclidean => lloyd(data, init, p, &mut GpuStep::new(gpu, data)?),
        KMeansMetric::Dtw { window } => {
            let dp = DtwParams { window };
            let mut step = DtwStep::new(data, |a: &Matrix, b: &Matrix| {
                crate::dtw::dtw(gpu, a, b, &dp)
            });
            lloyd(data, init, p, &mut step)
        }
    }
}

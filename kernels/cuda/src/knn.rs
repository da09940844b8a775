//! CUDA kNN (semantics in `serrano_kernel_core::knn`). [`GpuKnnIndex`] keeps the points, a
//! per-point term and a centring mean on the device; [`GpuKnnIndex::search`] scores blocks of
//! points against chunks of queries with cuBLAS SGEMM (L1: a tiled kernel), and `knn_select`
//! (`src/cu/knn.cu`, a block per query) merges each block into the queries' best
//! `candidate_count` lists on the device. The host re-ranks those by exact distance
//! ([`finish_query`]). Up to [`MAX_CANDIDATES`] candidates per query (shared memory); larger
//! `k` answers `Unsupported`.

use cudarc::cublas::sys::cublasOperation_t;
use cudarc::cublas::{CudaBlas, Gemm, GemmConfig};
use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};
use serrano_kernel_core::knn::{
    KnnOutput, KnnParams, Metric, centring_mean, device_candidate_count, finish_query,
    inverse_norm, sq_dist_f64, validate, validate_search,
};
use serrano_kernel_core::{KernelError, Matrix, Result};

use crate::Gpu;

pub const SOURCE: &str = include_str!("cu/knn.cu");

/// Candidates per query `knn_select` keeps in shared memory at most.
pub const MAX_CANDIDATES: usize = 2048;
/// Raw scores (queries x points) per GEMM block.
const SCORE_BUDGET: usize = 1 << 26;
const MAX_QUERY_CHUNK: usize = 16_384;
const SEL_THREADS: u32 = 128;

fn dev_err(what: &'static str) -> impl Fn(cudarc::driver::DriverError) -> KernelError {
    move |e| KernelError::Device(format!("CUDA {what}: {e}"))
}

/// Points resident on the GPU, ready for any number of searches.
pub struct GpuKnnIndex<'a> {
    gpu: &'a Gpu,
    blas: CudaBlas,
    points: &'a Matrix,
    metric: Metric,
    mean: Vec<f32>,
    dev_points: CudaSlice<f32>,
    /// Euclidean: `|p - m|^2`; cosine: `1/|p|` (0 for a zero vector); L1: unused.
    dev_add: CudaSlice<f32>,
}

impl<'a> GpuKnnIndex<'a> {
    /// Uploads `points` (which must stay alive: the final re-ranking reads them on the host).
    pub fn new(gpu: &'a Gpu, points: &'a Matrix, metric: Metric) -> Result<Self> {
        let (n, d) = (points.rows(), points.cols());
        if n == 0 || d == 0 {
            return Err(KernelError::input(
                "kNN needs at least one point and one column",
            ));
        }
        // Point indices are u32, feature offsets int in the kernels.
        if n > u32::MAX as usize || d > i32::MAX as usize {
            return Err(KernelError::input(format!(
                "{n} x {d} points exceed the CUDA kernels' index range"
            )));
        }
        points.require_finite("points")?;
        let stream = gpu.stream();
        let mean = if matches!(metric, Metric::Euclidean | Metric::SqEuclidean) {
            centring_mean(points)
        } else {
            vec![0.0; d]
        };
        let add: Vec<f32> = (0..n)
            .map(|r| match metric {
                Metric::Euclidean | Metric::SqEuclidean => sq_dist_f64(points.row(r), &mean) as f32,
                Metric::Cosine => inverse_norm(points.row(r)) as f32,
                Metric::Manhattan => 0.0,
            })
            .collect();
        let dev_points = stream
            .clone_htod(points.data())
            .map_err(dev_err("upload"))?;
        let dev_add = stream.clone_htod(&add).map_err(dev_err("upload"))?;
        let blas = CudaBlas::new(stream.clone())
            .map_err(|e| KernelError::Device(format!("cuBLAS: {e}")))?;
        gpu.module("knn", SOURCE)?;
        Ok(Self {
            gpu,
            blas,
            points,
            metric,
            mean,
            dev_points,
            dev_add,
        })
    }

    /// The `k` nearest points of every query.
    pub fn search(&self, queries: &Matrix, k: usize) -> Result<KnnOutput> {
        let (n, d, nq) = (self.points.rows(), self.points.cols(), queries.rows());
        // The points were checked when the index was built; check the rest as `validate` does.
        validate_search(n, d, queries, k)?;
        queries.require_finite("queries")?;
        if nq == 0 {
            return Ok(KnnOutput::empty(k));
        }
        let kc = device_candidate_count(k, n, MAX_CANDIDATES, "cuda")?;
        let stream = self.gpu.stream();
        let select = self.gpu.function("knn", SOURCE, "knn_select")?;
        let fill = self.gpu.function("knn", SOURCE, "knn_fill")?;
        let l1 = self.gpu.function("knn", SOURCE, "knn_l1")?;
        let qc_max = nq.min(MAX_QUERY_CHUNK);
        let block = (SCORE_BUDGET / qc_max).clamp(1, n);
        let mut scores = stream
            .alloc_zeros::<f32>(qc_max * block)
            .map_err(dev_err("alloc"))?;
        let mut best_s = stream
            .alloc_zeros::<f32>(qc_max * kc)
            .map_err(dev_err("alloc"))?;
        let mut best_i = stream
            .alloc_zeros::<u32>(qc_max * kc)
            .map_err(dev_err("alloc"))?;
        let (mode, alpha) = match self.metric {
            Metric::Euclidean | Metric::SqEuclidean => (0i32, -2.0f32),
            Metric::Cosine => (1, -1.0),
            Metric::Manhattan => (2, 1.0),
        };
        let mut indices = vec![0u32; nq * k];
        let mut distances = vec![0f32; nq * k];
        for q0 in (0..nq).step_by(qc_max) {
            let qc = (nq - q0).min(qc_max);
            // Queries as the GEMM expects them: centred (Euclidean) or unit length (cosine).
            let mut packed = queries.data()[q0 * d..(q0 + qc) * d].to_vec();
            for row in packed.chunks_exact_mut(d) {
                match self.metric {
                    Metric::Euclidean | Metric::SqEuclidean => {
                        row.iter_mut().zip(&self.mean).for_each(|(v, m)| *v -= m)
                    }
                    Metric::Cosine => {
                        let inv = inverse_norm(row);
                        row.iter_mut()
                            .for_each(|v| *v = (f64::from(*v) * inv) as f32);
                    }
                    Metric::Manhattan => {}
                }
            }
            let dev_q = stream.clone_htod(&packed).map_err(dev_err("upload"))?;
            let len = (qc * kc) as i64;
            let mut lb = stream.launch_builder(&fill);
            lb.arg(&mut best_s).arg(&mut best_i).arg(&len);
            // SAFETY: knn_fill writes indices < len = qc * kc <= the length of both lists.
            #[allow(unsafe_code)]
            unsafe {
                lb.launch(LaunchConfig {
                    grid_dim: ((len as u32).div_ceil(256), 1, 1),
                    block_dim: (256, 1, 1),
                    shared_mem_bytes: 0,
                })
            }
            .map_err(dev_err("knn_fill"))?;
            for start in (0..n).step_by(block) {
                let valid = (n - start).min(block);
                let base = start as i64;
                let (b_i, valid_i, qc_i, d_i) = (block as i32, valid as i32, qc as i32, d as i32);
                if mode == 2 {
                    let mut lb = stream.launch_builder(&l1);
                    lb.arg(&self.dev_points)
                        .arg(&dev_q)
                        .arg(&mut scores)
                        .arg(&d_i)
                        .arg(&b_i)
                        .arg(&valid_i)
                        .arg(&qc_i)
                        .arg(&base);
                    // SAFETY: the kernel bound-checks rows (< valid, < qc) and features (< d);
                    // points hold n x d, queries qc x d, scores qc_max x block.
                    #[allow(unsafe_code)]
                    unsafe {
                        lb.launch(LaunchConfig {
                            grid_dim: ((valid as u32).div_ceil(16), (qc as u32).div_ceil(16), 1),
                            block_dim: (16, 16, 1),
                            shared_mem_bytes: 0,
                        })
                    }
                    .map_err(dev_err("knn_l1"))?;
                } else {
                    // Column-major: C (valid x qc, ldc = block) = alpha * P_blk^T (valid x d)
                    // * Q (d x qc), i.e. scores[q * block + p] = alpha * dot(q, p).
                    let cfg = GemmConfig {
                        transa: cublasOperation_t::CUBLAS_OP_T,
                        transb: cublasOperation_t::CUBLAS_OP_N,
                        m: valid_i,
                        n: qc_i,
                        k: d_i,
                        alpha,
                        lda: d_i,
                        ldb: d_i,
                        beta: 0.0,
                        ldc: b_i,
                    };
                    let a = self.dev_points.slice(start * d..(start + valid) * d);
                    // SAFETY: A holds valid x d values (lda = d), B qc x d (ldb = d), C
                    // qc x block >= (qc - 1) * block + valid values.
                    #[allow(unsafe_code)]
                    unsafe { self.blas.gemm(cfg, &a, &dev_q, &mut scores) }
                        .map_err(|e| KernelError::Device(format!("cuBLAS sgemm: {e}")))?;
                }
                let kc_i = kc as i32;
                let mut lb = stream.launch_builder(&select);
                lb.arg(&scores)
                    .arg(&self.dev_add)
                    .arg(&b_i)
                    .arg(&valid_i)
                    .arg(&base)
                    .arg(&mode)
                    .arg(&mut best_s)
                    .arg(&mut best_i)
                    .arg(&kc_i);
                // SAFETY: one block per query (qc), reading scores[q * block + p] for
                // p < valid, add[base + p] < n, and its own kc-long lists; dynamic shared
                // memory holds kc floats and kc indices (<= 16 KiB for MAX_CANDIDATES).
                #[allow(unsafe_code)]
                unsafe {
                    lb.launch(LaunchConfig {
                        grid_dim: (qc as u32, 1, 1),
                        block_dim: (SEL_THREADS, 1, 1),
                        shared_mem_bytes: (kc * 8) as u32,
                    })
                }
                .map_err(dev_err("knn_select"))?;
            }
            let ids = stream
                .clone_dtoh(&best_i.slice(0..qc * kc))
                .map_err(dev_err("download"))?;
            self.finish(
                queries,
                q0,
                &ids,
                kc,
                &mut indices[q0 * k..(q0 + qc) * k],
                &mut distances[q0 * k..(q0 + qc) * k],
            )?;
        }
        Ok(KnnOutput {
            indices: Matrix::new(nq, k, indices)?,
            distances: Matrix::new(nq, k, distances)?,
        })
    }
}

impl GpuKnnIndex<'_> {
    /// Exact re-ranking of a chunk's candidates on the host, on all cores.
    fn finish(
        &self,
        queries: &Matrix,
        q0: usize,
        ids: &[u32],
        kc: usize,
        indices: &mut [u32],
        distances: &mut [f32],
    ) -> Result<()> {
        let k = indices.len() / (ids.len() / kc).max(1);
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
        let per = (ids.len() / kc).div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let handles: Vec<_> = indices
                .chunks_mut(per * k)
                .zip(distances.chunks_mut(per * k))
                .enumerate()
                .map(|(c, (idx, dist))| {
                    scope.spawn(move || -> Result<()> {
                        for (r, (i, d)) in idx.chunks_mut(k).zip(dist.chunks_mut(k)).enumerate() {
                            let row = c * per + r;
                            finish_query(
                                self.metric,
                                self.points,
                                queries.row(q0 + row),
                                &ids[row * kc..(row + 1) * kc],
                                i,
                                d,
                            )?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for h in handles {
                h.join()
                    .map_err(|_| KernelError::device("re-ranking thread panicked"))??;
            }
            Ok(())
        })
    }
}

pub fn knn(gpu: &Gpu, points: &Matrix, queries: &Matrix, p: &KnnParams) -> Result<KnnOutput> {
    validate(points, queries, p)?;
    if queries.rows() == 0 {
        return Ok(KnnOutput::empty(p.k));
    }
    GpuKnnIndex::new(gpu, points, p.metric)?.search(queries, p.k)
}

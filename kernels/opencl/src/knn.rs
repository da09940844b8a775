//! OpenCL kNN (semantics in `serrano_kernel_core::knn`): for each block of points, a score
//! kernel fills a `queries x block` matrix and a selection kernel (a work-group per query,
//! `src/cl/knn.cl`) merges it into each query's best `candidate_count` list on the device. The
//! host re-ranks the candidates by exact distance ([`finish_query`]). Supports up to
//! [`MAX_CANDIDATES`] candidates per query (local memory); larger `k` answers `Unsupported`.

use ocl::{Buffer, Kernel, Queue};
use serrano_kernel_core::knn::{
    KnnOutput, KnnParams, Metric, device_candidate_count, finish_query, inverse_norm, validate,
};
use serrano_kernel_core::{Matrix, Result};

use crate::ClDevice;
use crate::device::cl_err;

pub const SOURCE: &str = include_str!("cl/knn.cl");

/// Candidates per query the selection kernel keeps in local memory at most.
pub const MAX_CANDIDATES: usize = 2048;
/// Scores per block (queries x points) kept on the device at once.
const SCORE_BUDGET: usize = 1 << 24;
const MAX_QUERY_CHUNK: usize = 4096;
/// Work-group size of `knn_select` (`SEL_WG` in the source).
const SEL_WG: usize = 64;
/// Tile edge of `knn_scores` (`TILE` in the source).
const TILE: usize = 16;

/// A device buffer holding a copy of `data` (one default value when `data` is empty: OpenCL
/// has no empty buffers). Shared with `crate::kmeans`.
pub(crate) fn upload<T: ocl::OclPrm>(queue: &Queue, data: &[T]) -> Result<Buffer<T>> {
    let fill;
    let data = if data.is_empty() {
        fill = vec![T::default()];
        &fill[..]
    } else {
        data
    };
    Buffer::<T>::builder()
        .queue(queue.clone())
        .len(data.len())
        .copy_host_slice(data)
        .build()
        .map_err(cl_err("buffer"))
}

/// A device buffer of `len` values (at least one) for a kernel to fill.
pub(crate) fn scratch<T: ocl::OclPrm>(queue: &Queue, len: usize) -> Result<Buffer<T>> {
    Buffer::<T>::builder()
        .queue(queue.clone())
        .len(len.max(1))
        .build()
        .map_err(cl_err("buffer"))
}

fn inverse_norms(m: &Matrix) -> Vec<f32> {
    (0..m.rows())
        .map(|r| inverse_norm(m.row(r)) as f32)
        .collect()
}

pub fn knn(dev: &ClDevice, points: &Matrix, queries: &Matrix, p: &KnnParams) -> Result<KnnOutput> {
    validate(points, queries, p)?;
    let (n, d, nq, k) = (points.rows(), points.cols(), queries.rows(), p.k);
    if nq == 0 {
        return Ok(KnnOutput::empty(k));
    }
    let kc = device_candidate_count(k, n, MAX_CANDIDATES, "opencl")?;
    let metric = match p.metric {
        Metric::Euclidean | Metric::SqEuclidean => 0i32,
        Metric::Cosine => 1,
        Metric::Manhattan => 2,
    };
    let program = dev.program("knn", SOURCE)?;
    let queue = dev.queue().clone();
    let points_buf = upload(&queue, points.data())?;
    let inv_pn = upload(
        &queue,
        &if metric == 1 {
            inverse_norms(points)
        } else {
            vec![1.0]
        },
    )?;
    let qc_max = nq.min(MAX_QUERY_CHUNK);
    let block = (SCORE_BUDGET / qc_max).clamp(1, n);
    let scores = scratch::<f32>(&queue, qc_max * block)?;

    let mut indices = vec![0u32; nq * k];
    let mut distances = vec![0f32; nq * k];
    for q0 in (0..nq).step_by(qc_max) {
        let qc = (nq - q0).min(qc_max);
        let chunk = Matrix::new(qc, d, queries.data()[q0 * d..(q0 + qc) * d].to_vec())?;
        let queries_buf = upload(&queue, chunk.data())?;
        let inv_qn = upload(
            &queue,
            &if metric == 1 {
                inverse_norms(&chunk)
            } else {
                vec![1.0]
            },
        )?;
        let best_s = upload(&queue, &vec![f32::INFINITY; qc * kc])?;
        let best_i = upload(&queue, &vec![u32::MAX; qc * kc])?;
        let score_kernel = Kernel::builder()
            .program(&program)
            .name("knn_scores")
            .queue(queue.clone())
            .global_work_size([block.next_multiple_of(TILE), qc.next_multiple_of(TILE)])
            .local_work_size([TILE, TILE])
            .arg(&points_buf)
            .arg(&queries_buf)
            .arg(&inv_pn)
            .arg(&inv_qn)
            .arg(&scores)
            .arg(d as i32)
            .arg(block as i32)
            .arg(0i32)
            .arg(qc as i32)
            .arg(0u32)
            .arg(metric)
            .build()
            .map_err(cl_err("knn_scores"))?;
        let select_kernel = Kernel::builder()
            .program(&program)
            .name("knn_select")
            .queue(queue.clone())
            .global_work_size(qc * SEL_WG)
            .local_work_size(SEL_WG)
            .arg(&scores)
            .arg(block as i32)
            .arg(0i32)
            .arg(0u32)
            .arg(&best_s)
            .arg(&best_i)
            .arg(kc as i32)
            .arg_local::<f32>(kc)
            .arg_local::<u32>(kc)
            .build()
            .map_err(cl_err("knn_select"))?;
        for start in (0..n).step_by(block) {
            let valid = (n - start).min(block);
            // The block's size and first point: arguments (7, 9) of knn_scores, (2, 3) of
            // knn_select.
            for (kernel, at_valid, at_base) in [(&score_kernel, 7, 9), (&select_kernel, 2, 3)] {
                kernel
                    .set_arg(at_valid, valid as i32)
                    .and_then(|_| kernel.set_arg(at_base, start as u32))
                    .map_err(cl_err("knn block arguments"))?;
            }
            // SAFETY: every buffer argument is sized for the rows the kernels touch: points n x d,
            // queries qc x d, scores qc x block (valid <= block), lists qc x kc; the kernels
            // bound-check p < valid, q < qc and features < d (the range is rounded to tiles).
            #[allow(unsafe_code)]
            unsafe {
                score_kernel
                    .cmd()
                    .global_work_size([valid.next_multiple_of(TILE), qc.next_multiple_of(TILE)])
                    .enq()
                    .map_err(cl_err("knn_scores"))?;
                select_kernel.enq().map_err(cl_err("knn_select"))?;
            }
        }
        let mut ids = vec![0u32; qc * kc];
        best_i
            .read(&mut ids)
            .enq()
            .map_err(cl_err("reading candidates"))?;
        for r in 0..qc {
            let row = q0 + r;
            finish_query(
                p.metric,
                points,
                queries.row(row),
                &ids[r * kc..(r + 1) * kc],
                &mut indices[row * k..(row + 1) * k],
                &mut distances[row * k..(row + 1) * k],
            )?;
        }
    }
    Ok(KnnOutput {
        indices: Matrix::new(nq, k, indices)?,
        distances: Matrix::new(nq, k, distances)?,
    })
}

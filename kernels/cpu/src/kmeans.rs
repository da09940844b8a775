//! CPU k-means: the shared Lloyd driver (`serrano_kernel_core::kmeans::lloyd`) over a
//! multi-threaded assignment step.
//!
//! The step ranks centroids with the register-blocked kernel of [`crate::knn`] (lanes =
//! centroids, rows = points): `|c'|^2 + 2 m.c' - 2 x.c'` with `c' = c - m` and `m` a mean of
//! sampled points, which orders centroids as `|x - c|^2` does but keeps data far from the origin
//! from cancelling away. The distance to the chosen centroid is then recomputed exactly (`f64`),
//! so inertia and the empty-cluster rule see true distances. Points are split into a bounded
//! number of fixed chunks whose partial sums are added in chunk order: results do not depend on
//! the thread count. DTW runs through the CPU `dtw` kernel ([`crate::dtw::dtw`]).

// Index loops over fixed-size register tiles read as the math and vectorise predictably.
#![allow(clippy::needless_range_loop)]
use pulp::{Arch, Simd, WithSimd};
use rayon::prelude::*;
use serrano_kernel_core::dtw::DtwParams;
use serrano_kernel_core::kmeans::{
    Assignment, DtwStep, KMeansMetric, KMeansOutput, KMeansParams, LloydStep, centred_centroids,
    lloyd,
};
use serrano_kernel_core::knn::{centring_mean, sq_dist_f64};
use serrano_kernel_core::{Matrix, Result};

use crate::knn::micro;

/// The Euclidean assignment step on the CPU (data borrowed in place).
pub struct CpuStep<'a> {
    data: &'a Matrix,
    mean: Vec<f32>,
    labels: Vec<u32>,
    dist2: Vec<f64>,
    arch: Arch,
}

impl<'a> CpuStep<'a> {
    pub fn new(data: &'a Matrix) -> Self {
        let n = data.rows();
        Self {
            data,
            mean: centring_mean(data),
            labels: vec![0; n],
            dist2: vec![0.0; n],
            arch: Arch::new(),
        }
    }

    /// Points per chunk: enough chunks to balance threads, few enough that the per-chunk
    /// `k x d` partial sums stay small.
    fn chunk_rows(&self, k: usize) -> usize {
        let (n, d) = (self.data.rows(), self.data.cols());
        let by_memory = ((1usize << 25) / (k * d).max(1)).max(1);
        let chunks = n.div_ceil(4096).clamp(1, 64).min(by_memory);
        n.div_ceil(chunks).max(1)
    }
}

/// Centroids shifted by `m`, packed in panels of `nr` lanes scaled by -2, and the per-centroid
/// term `|c'|^2 + 2 m.c'` (padding lanes: +inf, never chosen); see
/// `serrano_kernel_core::kmeans::centred_centroids`.
fn pack_centroids(c: &Matrix, mean: &[f32], nr: usize) -> (Vec<f32>, Vec<f32>) {
    let (k, d) = (c.rows(), c.cols());
    let (shifted, term) = centred_centroids(c, mean);
    let npan = k.div_ceil(nr);
    let mut panels = vec![0f32; npan * d * nr];
    let mut add = vec![f32::INFINITY; npan * nr];
    for (j, (row, &t)) in shifted.chunks_exact(d).zip(&term).enumerate() {
        let (pan, lane) = (j / nr, j % nr);
        for (i, &s) in row.iter().enumerate() {
            panels[pan * d * nr + i * nr + lane] = -2.0 * s;
        }
        add[j] = t;
    }
    (panels, add)
}

struct AssignChunk<'a> {
    rows: &'a [f32],
    d: usize,
    panels: &'a [f32],
    add: &'a [f32],
}

impl AssignChunk<'_> {
    /// Nearest centroid of every row (ties → lower index), into `labels`.
    #[inline(always)]
    fn run<const MR: usize, const NR: usize>(&self, labels: &mut [u32]) {
        // Sub-blocks of SB rows: every panel visits the sub-block (panel-outer, like the kNN
        // scan, which keeps the accumulators in registers); scores go to a buffer whose rows
        // are then reduced 16 lanes at a time.
        const SB: usize = 128;
        let d = self.d;
        let kpad = self.add.len();
        let mut scores = vec![0f32; SB * kpad];
        for (rows, labels) in self.rows.chunks(SB * d).zip(labels.chunks_mut(SB)) {
            let n = rows.len() / d;
            let full = n - n % MR;
            let mut pad = vec![0f32; if full < n { MR * d } else { 0 }];
            if full < n {
                pad[..(n - full) * d].copy_from_slice(&rows[full * d..]);
            }
            for (pi, (panel, add)) in self
                .panels
                .chunks_exact(d * NR)
                .zip(self.add.chunks_exact(NR))
                .enumerate()
            {
                for t in (0..n).step_by(MR) {
                    let tile: &[f32] = if t < full {
                        &rows[t * d..(t + MR) * d]
                    } else {
                        &pad
                    };
                    let tile_rows: [&[f32]; MR] =
                        std::array::from_fn(|i| &tile[i * d..(i + 1) * d]);
                    let acc = micro::<MR, NR, false>(tile_rows, panel);
                    store::<MR, NR>(acc, add, &mut scores, t * kpad + pi * NR, kpad);
                }
            }
            for (i, label) in labels.iter_mut().enumerate() {
                *label = argmin16(&scores[i * kpad..(i + 1) * kpad]);
            }
        }
    }
}

/// Writes a tile's scores (`acc + add`) at `at`, rows `kpad` apart.
#[inline(always)]
fn store<const MR: usize, const NR: usize>(
    acc: [[f32; NR]; MR],
    add: &[f32],
    scores: &mut [f32],
    at: usize,
    kpad: usize,
) {
    let Ok(add) = <&[f32; NR]>::try_from(add) else {
        return;
    };
    for (i, row) in acc.iter().enumerate() {
        let Some(dst) = scores.get_mut(at + i * kpad..at + i * kpad + NR) else {
            return;
        };
        for j in 0..NR {
            dst[j] = row[j] + add[j];
        }
    }
}

/// The index of the smallest value (ties → lower index); `row.len()` is a multiple of 16.
#[inline(always)]
fn argmin16(row: &[f32]) -> u32 {
    let mut bv = [f32::INFINITY; 16];
    let mut bi = [0u32; 16];
    for (c, chunk) in row.chunks_exact(16).enumerate() {
        for l in 0..16 {
            let better = chunk[l] < bv[l];
            bv[l] = if better { chunk[l] } else { bv[l] };
            bi[l] = if better { (c * 16 + l) as u32 } else { bi[l] };
        }
    }
    let (mut v, mut i) = (bv[0], bi[0]);
    for l in 1..16 {
        if bv[l] < v || (bv[l] == v && bi[l] < i) {
            (v, i) = (bv[l], bi[l]);
        }
    }
    i
}

/// [`AssignChunk::run`] compiled per SIMD level by `pulp`.
struct AssignOp<'a, 'b> {
    chunk: &'a AssignChunk<'b>,
    labels: &'a mut [u32],
    wide: bool,
}

impl WithSimd for AssignOp<'_, '_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        if self.wide {
            self.chunk.run::<4, 64>(self.labels);
        } else {
            self.chunk.run::<8, 16>(self.labels);
        }
    }
}

impl LloydStep for CpuStep<'_> {
    fn dist2_to(&mut self, centre: &[f32]) -> Result<Vec<f64>> {
        let d = self.data.cols();
        let mut out = vec![0f64; self.data.rows()];
        out.par_chunks_mut(4096)
            .zip(self.data.data().par_chunks(4096 * d))
            .for_each(|(o, rows)| {
                for (v, row) in o.iter_mut().zip(rows.chunks_exact(d)) {
                    *v = sq_dist_f64(row, centre);
                }
            });
        Ok(out)
    }

    fn assign(&mut self, centroids: &Matrix) -> Result<Assignment> {
        let (k, d) = (centroids.rows(), self.data.cols());
        let wide = k > 32;
        let nr = if wide { 64 } else { 16 };
        let (panels, add) = pack_centroids(centroids, &self.mean, nr);
        let rows_per = self.chunk_rows(k);
        let arch = self.arch;
        let partials: Vec<Assignment> = self
            .data
            .data()
            .par_chunks(rows_per * d)
            .zip(self.labels.par_chunks_mut(rows_per))
            .zip(self.dist2.par_chunks_mut(rows_per))
            .map(|((rows, labels), dist2)| {
                let chunk = AssignChunk {
                    rows,
                    d,
                    panels: &panels,
                    add: &add,
                };
                // Sub-chunks keep a thread's labels and rows in cache between the two passes.
                let mut part = Assignment::zeros(k, d);
                for ((rows, labels), dist2) in rows
                    .chunks(1024 * d)
                    .zip(labels.chunks_mut(1024))
                    .zip(dist2.chunks_mut(1024))
                {
                    let sub = AssignChunk { rows, ..chunk };
                    arch.dispatch(AssignOp {
                        chunk: &sub,
                        labels,
                        wide,
                    });
                    for ((row, &l), dd) in rows.chunks_exact(d).zip(labels.iter()).zip(dist2) {
                        let l = (l as usize).min(k - 1);
                        *dd = sq_dist_f64(row, centroids.row(l));
                        part.counts[l] += 1;
                        part.inertia += *dd;
                        for (s, &v) in part.sums[l * d..(l + 1) * d].iter_mut().zip(row) {
                            *s += f64::from(v);
                        }
                    }
                }
                part
            })
            .collect();
        let mut total = Assignment::zeros(k, d);
        for part in &partials {
            total.add(part);
        }
        Ok(total)
    }

    fn labels(&mut self) -> Result<Vec<u32>> {
        Ok(self.labels.clone())
    }

    fn min_dist2(&mut self) -> Result<Vec<f64>> {
        Ok(self.dist2.clone())
    }
}

/// Lloyd k-means (semantics in `serrano_kernel_core::kmeans`).
pub fn kmeans(data: &Matrix, init: Option<&Matrix>, p: &KMeansParams) -> Result<KMeansOutput> {
    match p.metric {
        KMeansMetric::Euclidean => lloyd(data, init, p, &mut CpuStep::new(data)),
        KMeansMetric::Dtw { window } => {
            let dp = DtwParams { window };
            let mut step = DtwStep::new(data, |a: &Matrix, b: &Matrix| crate::dtw::dtw(a, b, &dp));
            lloyd(data, init, p, &mut step)
        }
    }
}

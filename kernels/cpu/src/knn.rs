//! CPU kNN: a register-blocked distance kernel fused with per-query top-k selection, so the
//! `n x q` distance matrix never exists.
//!
//! Queries are packed into panels of `NR` lanes (`d x NR`, lane = query); points are read in
//! place, `MR` rows at a time, and each coordinate is broadcast against a panel row. For the
//! Euclidean metrics the kernel computes `|p - m|^2 - 2 (q - m).p` (the expansion of
//! `|p - q|^2` less a per-query constant, with `m` a mean of sampled points so that data far
//! from the origin does not cancel away); for cosine `-(q/|q|).p / |p|`; for Manhattan the L1
//! sum directly. Each tile's scores are compared with the per-query thresholds in one vector
//! pass; the rare winners enter a bounded list of [`candidate_count`] entries. Threads (rayon)
//! take contiguous blocks of points and keep their own lists, merged at the end; the final `k`
//! are re-ranked by exact distance ([`finish_query`]). The hot loops run inside a `pulp`
//! dispatch, so they are compiled for AVX-512 / AVX2+FMA and picked at run time.

// Index loops over fixed-size register tiles read as the math and vectorise predictably.
#![allow(clippy::needless_range_loop)]
use pulp::{Arch, Simd, WithSimd};
use rayon::prelude::*;
use serrano_kernel_core::knn::{
    KnnOutput, KnnParams, Metric, candidate_count, centring_mean, finish_query, inverse_norm,
    validate,
};
use serrano_kernel_core::{Matrix, Result};

/// Points per block: one block (`NB x d` floats) stays in L2 while every query panel visits it.
const NB: usize = 256;
/// Candidate entries (queries x kc) per query chunk: bounds the memory of the task lists.
const QUERY_CHUNK_VALUES: usize = 1 << 17;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `aux[i] + acc` with `aux = |p - m|^2` and panels holding `-2 (q - m)`.
    Dot,
    /// `aux[i] * acc` with `aux = 1/|p|` and panels holding `-q/|q|`.
    Cosine,
    /// `acc` = L1 distance.
    L1,
}

/// One task's candidates for every query: `kc` (score, index) pairs per query, sorted, padded
/// with `(+inf, u32::MAX)`, in flat arrays (one allocation, not one per query); and per panel
/// lane the score a new point must beat (`-inf` on padding lanes, so they never fire).
#[derive(Clone)]
struct State {
    kc: usize,
    scores: Vec<f32>,
    ids: Vec<u32>,
    thr: Vec<f32>,
}

impl State {
    fn new(nq: usize, kc: usize, lanes: usize) -> Self {
        let mut thr = vec![f32::NEG_INFINITY; lanes];
        thr[..nq].fill(f32::INFINITY);
        Self {
            kc,
            scores: vec![f32::INFINITY; nq * kc],
            ids: vec![u32::MAX; nq * kc],
            thr,
        }
    }

    /// Inserts a candidate that beats the worst of query `q`; returns the new worst score.
    #[inline(always)]
    fn push(&mut self, q: usize, score: f32, id: u32) -> f32 {
        let kc = self.kc;
        let (Some(sc), Some(ids)) = (
            self.scores.get_mut(q * kc..(q + 1) * kc),
            self.ids.get_mut(q * kc..(q + 1) * kc),
        ) else {
            return f32::NEG_INFINITY;
        };
        let before = |i: usize| sc[i] < score || (sc[i] == score && ids[i] < id);
        let pos = if kc <= 32 {
            // Short lists: a linear scan from the end predicts well.
            let mut pos = kc - 1;
            while pos > 0 && !before(pos - 1) {
                pos -= 1;
            }
            pos
        } else {
            let (mut lo, mut hi) = (0, kc - 1);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if before(mid) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            lo
        };
        sc.copy_within(pos..kc - 1, pos + 1);
        ids.copy_within(pos..kc - 1, pos + 1);
        sc[pos] = score;
        ids[pos] = id;
        sc[kc - 1]
    }

    /// Adds another task's lists (which may share seed entries with this one).
    fn merge(&mut self, other: &State) {
        let kc = self.kc;
        for q in 0..self.scores.len() / kc {
            for c in q * kc..(q + 1) * kc {
                let (s, id) = (other.scores[c], other.ids[c]);
                let (ws, wi) = (self.scores[(q + 1) * kc - 1], self.ids[(q + 1) * kc - 1]);
                if id == u32::MAX || (s, id) >= (ws, wi) {
                    break;
                }
                if !self.ids[q * kc..(q + 1) * kc].contains(&id) {
                    self.push(q, s, id);
                }
            }
        }
    }

    fn candidates(&self, q: usize) -> Vec<u32> {
        self.ids[q * self.kc..(q + 1) * self.kc]
            .iter()
            .copied()
            .filter(|&i| i != u32::MAX)
            .collect()
    }
}

/// Queries as panels of `nr` lanes, `d x nr` each, transformed for `kind` (padding lanes zero).
fn pack_queries(queries: &Matrix, kind: Kind, mean: &[f32], nr: usize) -> Vec<f32> {
    let (q, d) = (queries.rows(), queries.cols());
    let npan = q.div_ceil(nr);
    let mut out = vec![0f32; npan * d * nr];
    for r in 0..q {
        let row = queries.row(r);
        let (pan, lane) = (r / nr, r % nr);
        let base = pan * d * nr + lane;
        let inv = match kind {
            Kind::Cosine => -inverse_norm(row),
            _ => 0.0,
        };
        for (t, &v) in row.iter().enumerate() {
            out[base + t * nr] = match kind {
                Kind::Dot => -2.0 * (v - mean[t]),
                Kind::Cosine => (f64::from(v) * inv) as f32,
                Kind::L1 => v,
            };
        }
    }
    out
}

/// `MR x NR` scores of `rows` against one panel: dot products or L1 sums over `d`.
#[inline(always)]
pub(crate) fn micro<const MR: usize, const NR: usize, const L1: bool>(
    rows: [&[f32]; MR],
    panel: &[f32],
) -> [[f32; NR]; MR] {
    let mut acc = [[0f32; NR]; MR];
    for (t, qv) in panel.chunks_exact(NR).enumerate() {
        let Ok(qv) = <&[f32; NR]>::try_from(qv) else {
            continue;
        };
        for i in 0..MR {
            let a = rows[i][t];
            for j in 0..NR {
                acc[i][j] = if L1 {
                    acc[i][j] + (a - qv[j]).abs()
                } else {
                    a.mul_add(qv[j], acc[i][j])
                };
            }
        }
    }
    acc
}

/// Per-point term of the score: `|p - m|^2` (Dot), `1/|p|` or 0 (Cosine), unused (L1).
#[inline(always)]
fn point_aux(kind: Kind, row: &[f32], mean: &[f32]) -> f32 {
    match kind {
        Kind::Dot => {
            let mut acc = [0f32; 16];
            let mut it = row.chunks_exact(16).zip(mean.chunks_exact(16));
            for (r, m) in &mut it {
                for l in 0..16 {
                    let t = r[l] - m[l];
                    acc[l] = t.mul_add(t, acc[l]);
                }
            }
            let tail = row.len() - row.len() % 16;
            let mut s: f32 = acc.iter().sum();
            for (r, m) in row[tail..].iter().zip(&mean[tail..]) {
                s += (r - m) * (r - m);
            }
            s
        }
        Kind::Cosine => inverse_norm(row) as f32,
        Kind::L1 => 0.0,
    }
}

struct Scan<'a> {
    kind: Kind,
    d: usize,
    panels: &'a [f32],
    mean: &'a [f32],
}

impl Scan<'_> {
    /// Offers the points of one block (`rows`, first index `base`) to every query.
    #[inline(always)]
    fn block<const MR: usize, const NR: usize>(&self, rows: &[f32], base: usize, st: &mut State) {
        let d = self.d;
        let nb = rows.len() / d;
        let mut aux = [0f32; NB];
        for (i, a) in aux.iter_mut().enumerate().take(nb) {
            *a = point_aux(self.kind, &rows[i * d..(i + 1) * d], self.mean);
        }
        // The last partial tile is copied into a zero-padded scratch tile.
        let full = nb - nb % MR;
        let mut pad = vec![0f32; if full < nb { MR * d } else { 0 }];
        if full < nb {
            pad[..(nb - full) * d].copy_from_slice(&rows[full * d..]);
        }
        for (pi, panel) in self.panels.chunks_exact(d * NR).enumerate() {
            for t in (0..nb).step_by(MR) {
                let tile: &[f32] = if t < full {
                    &rows[t * d..(t + MR) * d]
                } else {
                    &pad
                };
                let tile_rows: [&[f32]; MR] = std::array::from_fn(|i| &tile[i * d..(i + 1) * d]);
                let acc = if self.kind == Kind::L1 {
                    micro::<MR, NR, true>(tile_rows, panel)
                } else {
                    micro::<MR, NR, false>(tile_rows, panel)
                };
                self.select::<MR, NR>(acc, &aux, t, (nb - t).min(MR), pi, base, st);
            }
        }
    }

    /// Scores of one tile against the thresholds; winners go to the lists.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn select<const MR: usize, const NR: usize>(
        &self,
        acc: [[f32; NR]; MR],
        aux: &[f32; NB],
        t: usize,
        valid: usize,
        pi: usize,
        base: usize,
        st: &mut State,
    ) {
        let mut s = [[0f32; NR]; MR];
        for i in 0..MR {
            let a = aux[(t + i).min(NB - 1)];
            for j in 0..NR {
                s[i][j] = match self.kind {
                    Kind::Dot => acc[i][j] + a,
                    Kind::Cosine => acc[i][j] * a,
                    Kind::L1 => acc[i][j],
                };
            }
        }
        let mut thr_copy = [f32::NEG_INFINITY; NR];
        let Some(thr_src) = st.thr.get(pi * NR..(pi + 1) * NR) else {
            return;
        };
        thr_copy.copy_from_slice(thr_src);
        let thr = &mut thr_copy;
        // One compare per lane into a bit mask; the rare set bits go to the lists.
        let mut changed = false;
        for (i, row) in s.iter().enumerate().take(valid) {
            let mut mask = 0u64;
            for j in 0..NR {
                mask |= u64::from(row[j] < thr[j]) << j;
            }
            while mask != 0 {
                let j = mask.trailing_zeros() as usize;
                mask &= mask - 1;
                thr[j] = st.push(pi * NR + j, row[j], (base + t + i) as u32);
                changed = true;
            }
        }
        if changed {
            st.thr[pi * NR..(pi + 1) * NR].copy_from_slice(thr);
        }
    }
}

/// One block of points through [`Scan::block`], compiled per SIMD level by `pulp`.
struct BlockOp<'a, 'b, const MR: usize, const NR: usize> {
    scan: &'a Scan<'b>,
    rows: &'a [f32],
    base: usize,
    st: &'a mut State,
}

impl<const MR: usize, const NR: usize> WithSimd for BlockOp<'_, '_, MR, NR> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        self.scan.block::<MR, NR>(self.rows, self.base, self.st);
    }
}

fn search<const MR: usize, const NR: usize>(
    points: &Matrix,
    queries: &Matrix,
    kind: Kind,
    kc: usize,
) -> State {
    let (nq, d) = (queries.rows(), queries.cols());
    let mean = if kind == Kind::Dot {
        centring_mean(points)
    } else {
        vec![0.0; d]
    };
    let panels = pack_queries(queries, kind, &mean, NR);
    let lanes = panels.len() / d;
    let scan = Scan {
        kind,
        d,
        panels: &panels,
        mean: &mean,
    };
    let arch = Arch::new();
    let run = |st: &mut State, first_block: usize, rows: &[f32]| {
        for (b, block) in rows.chunks(NB * d).enumerate() {
            arch.dispatch(BlockOp::<MR, NR> {
                scan: &scan,
                rows: block,
                base: (first_block + b) * NB,
                st,
            });
        }
    };
    // A short sequential pass over the first blocks gives every task thresholds that already
    // reject most points; then a few contiguous ranges per thread, merged in order.
    let nblocks = points.rows().div_ceil(NB);
    let seed_blocks = (nblocks / 16).min(8);
    let mut seed = State::new(nq, kc, lanes);
    let (head, tail) = points
        .data()
        .split_at((seed_blocks * NB * d).min(points.data().len()));
    run(&mut seed, 0, head);
    let rest = nblocks - seed_blocks;
    if rest == 0 {
        return seed;
    }
    let tasks = (4 * rayon::current_num_threads()).clamp(1, rest);
    let per_task = rest.div_ceil(tasks) * NB * d;
    let states: Vec<State> = tail
        .par_chunks(per_task)
        .enumerate()
        .map(|(t, rows)| {
            let mut st = seed.clone();
            run(&mut st, seed_blocks + t * (per_task / (NB * d)), rows);
            st
        })
        .collect();
    let mut iter = states.into_iter();
    let Some(mut total) = iter.next() else {
        return seed;
    };
    for st in iter {
        total.merge(&st);
    }
    total
}

/// Exact k-nearest neighbours (module docs; semantics in `serrano_kernel_core::knn`).
pub fn knn(points: &Matrix, queries: &Matrix, p: &KnnParams) -> Result<KnnOutput> {
    validate(points, queries, p)?;
    let (nq, k) = (queries.rows(), p.k);
    if nq == 0 {
        return Ok(KnnOutput::empty(k));
    }
    let kc = candidate_count(k, points.rows());
    let kind = match p.metric {
        Metric::Euclidean | Metric::SqEuclidean => Kind::Dot,
        Metric::Cosine => Kind::Cosine,
        Metric::Manhattan => Kind::L1,
    };
    let mut indices = vec![0u32; nq * k];
    let mut distances = vec![0f32; nq * k];
    let d = queries.cols();
    // Chunks of queries bound the per-task candidate lists (tasks x chunk x kc entries).
    let chunk_rows = (QUERY_CHUNK_VALUES / kc).clamp(64, nq.max(64));
    for q0 in (0..nq).step_by(chunk_rows) {
        let qc = (nq - q0).min(chunk_rows);
        let chunk = Matrix::new(qc, d, queries.data()[q0 * d..(q0 + qc) * d].to_vec())?;
        // Wide panels pay off once there are enough queries to fill them.
        let state = if qc >= 48 {
            search::<4, 64>(points, &chunk, kind, kc)
        } else {
            search::<8, 16>(points, &chunk, kind, kc)
        };
        indices[q0 * k..(q0 + qc) * k]
            .par_chunks_mut(k)
            .zip(distances[q0 * k..(q0 + qc) * k].par_chunks_mut(k))
            .enumerate()
            .try_for_each(|(r, (idx, dist))| {
                finish_query(
                    p.metric,
                    points,
                    chunk.row(r),
                    &state.candidates(r),
                    idx,
                    dist,
                )
            })?;
    }
    Ok(KnnOutput {
        indices: Matrix::new(nq, k, indices)?,
        distances: Matrix::new(nq, k, distances)?,
    })
}

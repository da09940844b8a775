//! CPU dtw: many pairs at once, one pair per SIMD lane.
//!
//! The `a.rows() x b.rows()` pairs are taken in row-major order in groups of `N` lanes; every lane
//! of a group walks the same `(i, j)` cells, so the DP update is the same instruction on `N`
//! different pairs and the lane loops vectorise. Only one DP row is kept (updated in place, the
//! diagonal carried in a register) and only cells inside the band are visited. Groups run in
//! parallel through rayon. The group function is compiled for AVX-512, AVX2 and the baseline and
//! picked at run time (`multiversion`), with 32 lanes where AVX2 or better is present: each cell is
//! a `min` then an `add` on the previous cell's result, so several vectors per cell are needed to
//! hide that latency.

use multiversion::multiversion;
use rayon::prelude::*;
use serrano_kernel_core::dtw::DtwParams;
use serrano_kernel_core::{Matrix, Result};

pub fn dtw(a: &Matrix, b: &Matrix, p: &DtwParams) -> Result<Matrix> {
    p.validate(a, b)?;
    let (na, nb) = (a.rows(), b.rows());
    if na == 0 || nb == 0 {
        return Ok(Matrix::filled(na, nb, 0.0));
    }
    let mut out = vec![0f32; na * nb];
    if wide_simd() {
        all_pairs::<32>(a, b, p.band(a.cols(), b.cols()), &mut out);
    } else {
        all_pairs::<16>(a, b, p.band(a.cols(), b.cols()), &mut out);
    }
    Matrix::new(na, nb, out)
}

/// Whether 256-bit (or wider) vectors are available: then 32 lanes, else 16.
fn wide_simd() -> bool {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
    {
        false
    }
}

/// Fills `out` (`a.rows() x b.rows()`, row-major) with the distances, `N` pairs per group.
fn all_pairs<const N: usize>(a: &Matrix, b: &Matrix, band: usize, out: &mut [f32]) {
    let (nb, l1, l2) = (b.rows(), a.cols(), b.cols());
    let pairs = out.len();
    out.par_chunks_mut(N).enumerate().for_each_init(
        || Scratch::<N>::new(l1, l2),
        |s, (g, chunk)| {
            // Lanes past the last pair repeat it: same work, results dropped.
            for lane in 0..N {
                let pair = (g * N + lane).min(pairs - 1);
                let (x, y) = (a.row(pair / nb), b.row(pair % nb));
                for (dst, &v) in s.a.iter_mut().zip(x) {
                    dst[lane] = v;
                }
                for (dst, &v) in s.b.iter_mut().zip(y) {
                    dst[lane] = v;
                }
            }
            let d = group(&s.a, &s.b, band, &mut s.row);
            chunk.copy_from_slice(&d[..chunk.len()]);
        },
    );
}

/// Per-thread buffers: the two series of each lane transposed (`[position][lane]`) and the DP row.
struct Scratch<const N: usize> {
    a: Vec<[f32; N]>,
    b: Vec<[f32; N]>,
    row: Vec<[f32; N]>,
}

impl<const N: usize> Scratch<N> {
    fn new(l1: usize, l2: usize) -> Self {
        Self {
            a: vec![[0.0; N]; l1],
            b: vec![[0.0; N]; l2],
            row: vec![[0.0; N]; l2],
        }
    }
}

/// `x < y ? x : y` is one `minps`; `f32::min` adds NaN handling the inputs (finite) never need.
#[inline(always)]
fn min(x: f32, y: f32) -> f32 {
    if x < y { x } else { y }
}

/// DTW distances of the `N` pairs whose series are `a[i][lane]`, `b[j][lane]`, band `w`.
/// `row` has `b.len()` entries; `a` and `b` are not empty (validated).
#[multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma"))]
fn group<const N: usize>(
    a: &[[f32; N]],
    b: &[[f32; N]],
    w: usize,
    row: &mut [[f32; N]],
) -> [f32; N] {
    let l2 = b.len();
    // Cells never written (right of the band so far) read as unreachable.
    row.fill([f32::INFINITY; N]);
    for (i, ai) in a.iter().enumerate() {
        let lo = i.saturating_sub(w);
        let hi = (i + w).min(l2 - 1);
        if lo > hi {
            continue;
        }
        // D(i-1, lo-1): still in `row` because the band moves right by at most one per row.
        let mut diag = match lo {
            0 if i == 0 => [0.0; N],
            0 => [f32::INFINITY; N],
            _ => row[lo - 1],
        };
        let mut left = [f32::INFINITY; N];
        for (cell, bj) in row[lo..=hi].iter_mut().zip(&b[lo..=hi]) {
            let up = *cell;
            let mut c = [0.0; N];
            for k in 0..N {
                let d = ai[k] - bj[k];
                c[k] = d * d + min(min(up[k], diag[k]), left[k]);
            }
            *cell = c;
            diag = up;
            left = c;
        }
    }
    let mut out = row[l2 - 1];
    for v in &mut out {
        *v = v.sqrt();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every lane count gives the same distances (the dispatch picks one per machine).
    #[test]
    fn lane_counts_agree() {
        let values = |n: usize, k: usize| -> Vec<f32> {
            (0..n)
                .map(|i| ((i * 7919 + k) % 101) as f32 / 50.0 - 1.0)
                .collect()
        };
        let a = Matrix::new(5, 23, values(5 * 23, 1)).unwrap_or_else(|_| unreachable!());
        let b = Matrix::new(7, 31, values(7 * 31, 2)).unwrap_or_else(|_| unreachable!());
        for band in [8, 10, 31] {
            let mut one = vec![0f32; 35];
            let mut sixteen = vec![0f32; 35];
            let mut wide = vec![0f32; 35];
            all_pairs::<1>(&a, &b, band, &mut one);
            all_pairs::<16>(&a, &b, band, &mut sixteen);
            all_pairs::<32>(&a, &b, band, &mut wide);
            assert_eq!(one, sixteen, "band {band}");
            assert_eq!(one, wide, "band {band}");
            assert!(one.iter().all(|v| v.is_finite() && *v > 0.0));
        }
    }
}

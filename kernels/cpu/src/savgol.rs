//! CPU Savitzky-Golay (semantics in `serrano_kernel_core::savgol`): rayon across rows and across
//! chunks of long rows. Interior outputs are a straight `f32` dot product with the coefficients,
//! computed [`BLOCK`] outputs at a time so that the loop over those outputs vectorises; edge
//! outputs either use the `interp` edge fits or run the same loop over a small copy of the
//! extended signal. The loops are compiled for AVX-512, AVX2+FMA and the baseline, picked at run
//! time (`pulp`).

use rayon::prelude::*;
use serrano_kernel_core::savgol::{EdgeMode, SavgolParams, coeffs_f32, extend_index, plan};
use serrano_kernel_core::{Matrix, Result};

/// Outputs accumulated together (their accumulators stay in registers).
const BLOCK: usize = 32;
/// Outputs per rayon task within one long row.
const CHUNK: usize = 1 << 15;

struct Filter {
    w: usize,
    half: usize,
    mode: EdgeMode,
    center: Vec<f32>,
    left: Vec<f32>,
    right: Vec<f32>,
}

/// `out[j] = sum_k c[k] x[j + k]`; needs `x.len() >= out.len() + c.len() - 1`.
#[inline(always)]
fn correlate(c: &[f32], x: &[f32], out: &mut [f32]) {
    let w = c.len();
    let mut blocks = out.chunks_exact_mut(BLOCK);
    let mut base = 0;
    for ob in &mut blocks {
        let mut acc = [0.0f32; BLOCK];
        for (k, &ck) in c.iter().enumerate() {
            let xs = &x[base + k..base + k + BLOCK];
            for (a, &xv) in acc.iter_mut().zip(xs) {
                *a += ck * xv;
            }
        }
        ob.copy_from_slice(&acc);
        base += BLOCK;
    }
    for (j, o) in blocks.into_remainder().iter_mut().enumerate() {
        let i = base + j;
        *o = dot(c, &x[i..i + w]);
    }
}

/// A dot product with 8 partial sums (vectorises).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (xa, xb) in ac.zip(bc) {
        for ((s, x), y) in acc.iter_mut().zip(xa).zip(xb) {
            *s += x * y;
        }
    }
    acc.iter().sum::<f32>() + tail
}

impl Filter {
    /// Outputs `start .. start + out.len()` of the signal `x`.
    #[inline(always)]
    fn range(&self, x: &[f32], out: &mut [f32], start: usize) {
        let n = x.len();
        let end = start + out.len();
        // Interior: outputs whose window lies inside the signal.
        let lo = self.half.min(n);
        let hi = n.saturating_sub(self.half).max(lo);
        let clip = |a: usize, b: usize| (a.max(start), b.min(end).max(a.max(start)));
        let (a, b) = clip(0, lo);
        if a < b {
            self.edge(x, &mut out[a - start..b - start], a);
        }
        let (a, b) = clip(lo, hi);
        if a < b {
            correlate(
                &self.center,
                &x[a - self.half..b + self.half],
                &mut out[a - start..b - start],
            );
        }
        let (a, b) = clip(hi, n);
        if a < b {
            self.edge(x, &mut out[a - start..b - start], a);
        }
    }

    /// Edge outputs `first .. first + out.len()`.
    #[inline(always)]
    fn edge(&self, x: &[f32], out: &mut [f32], first: usize) {
        let (n, w, half) = (x.len(), self.w, self.half);
        if self.mode == EdgeMode::Interp {
            // Validation guarantees n >= w here.
            for (j, o) in out.iter_mut().enumerate() {
                let i = first + j;
                *o = if i < half {
                    dot(&self.left[i * w..(i + 1) * w], &x[..w])
                } else {
                    let e = i - (n - half);
                    dot(&self.right[e * w..(e + 1) * w], &x[n - w..])
                };
            }
            return;
        }
        // The extended signal under these outputs, then the interior loop over it.
        let from = first as i64 - half as i64;
        let padded: Vec<f32> = (0..out.len() + w - 1)
            .map(|j| extend_index(self.mode, from + j as i64, n).map_or(0.0, |idx| x[idx]))
            .collect();
        correlate(&self.center, &padded, out);
    }
}

/// Outputs `start ..` of one signal, run through `pulp` so that the loops are compiled for
/// AVX-512, AVX2+FMA and the baseline (a closure would not be inlined into those versions).
struct Range<'a> {
    f: &'a Filter,
    x: &'a [f32],
    out: &'a mut [f32],
    start: usize,
}

impl pulp::WithSimd for Range<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        self.f.range(self.x, self.out, self.start);
    }
}

pub fn savgol(signals: &Matrix, p: &SavgolParams) -> Result<Matrix> {
    let (rows, n) = (signals.rows(), signals.cols());
    let Some(c) = plan(signals, p)? else {
        return Matrix::new(rows, n, Vec::new());
    };
    let f = Filter {
        w: c.window,
        half: c.half,
        mode: p.mode,
        center: coeffs_f32(&c.center),
        left: coeffs_f32(&c.left),
        right: coeffs_f32(&c.right),
    };
    let arch = pulp::Arch::new();
    let run = |x: &[f32], out: &mut [f32], start: usize| {
        arch.dispatch(Range {
            f: &f,
            x,
            out,
            start,
        })
    };
    let mut out = vec![0.0f32; rows * n];
    out.par_chunks_mut(n)
        .zip(signals.data().par_chunks(n))
        .for_each(|(o, x)| {
            if n <= CHUNK {
                run(x, o, 0);
            } else {
                o.par_chunks_mut(CHUNK)
                    .enumerate()
                    .for_each(|(ci, oc)| run(x, oc, ci * CHUNK));
            }
        });
    Matrix::new(rows, n, out)
}

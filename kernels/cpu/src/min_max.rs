//! CPU min-max scaling (sklearn MinMaxScaler semantics, see `serrano_kernel_core::min_max`):
//! a parallel NaN-ignoring min/max pass per group, then a parallel scaling pass.

use rayon::prelude::*;
use serrano_kernel_core::min_max::{self, Axis, GroupScale, MinMaxParams};
use serrano_kernel_core::{Matrix, Result};

/// Values per parallel task.
const CHUNK: usize = 1 << 15;

pub fn min_max(data: &Matrix, p: &MinMaxParams) -> Result<Matrix> {
    p.validate()?;
    let (rows, cols) = (data.rows(), data.cols());
    let mut out = vec![0.0f32; rows * cols];
    if out.is_empty() {
        return Matrix::new(rows, cols, out);
    }
    let values = data.data();
    let infinite = match p.axis {
        Axis::Columns => {
            let per_task = (CHUNK / cols).max(1);
            let (lo, hi, infinite) = values
                .par_chunks(per_task * cols)
                .map(|block| {
                    let mut acc = Extent::new(cols);
                    for row in block.chunks_exact(cols) {
                        acc.add_row(row);
                    }
                    acc
                })
                .reduce(|| Extent::new(cols), Extent::merge)
                .into_parts();
            if !infinite {
                let maps: Vec<GroupScale> = lo
                    .iter()
                    .zip(&hi)
                    .map(|(&l, &h)| GroupScale::new(l as f64, h as f64, p))
                    .collect();
                out.par_chunks_mut(per_task * cols)
                    .zip(values.par_chunks(per_task * cols))
                    .for_each(|(o, x)| {
                        for (orow, xrow) in o.chunks_exact_mut(cols).zip(x.chunks_exact(cols)) {
                            for ((y, &v), g) in orow.iter_mut().zip(xrow).zip(&maps) {
                                *y = apply(g, v);
                            }
                        }
                    });
            }
            infinite
        }
        Axis::Rows if rows >= 4 * rayon::current_num_threads() => {
            let per_task = (CHUNK / cols).max(1);
            out.par_chunks_mut(per_task * cols)
                .zip(values.par_chunks(per_task * cols))
                .map(|(o, x)| {
                    let mut infinite = false;
                    for (orow, xrow) in o.chunks_exact_mut(cols).zip(x.chunks_exact(cols)) {
                        let e = extent(xrow);
                        infinite |= e.2;
                        scale_slice(xrow, orow, &GroupScale::new(e.0 as f64, e.1 as f64, p));
                    }
                    infinite
                })
                .reduce(|| false, |a, b| a || b)
        }
        Axis::Rows | Axis::All => {
            // Few long groups: parallel within each.
            let group = if p.axis == Axis::All {
                values.len()
            } else {
                cols
            };
            let mut infinite = false;
            for (o, x) in out.chunks_mut(group).zip(values.chunks(group)) {
                let (lo, hi, inf) = x.par_chunks(CHUNK).map(extent).reduce(
                    || (f32::INFINITY, f32::NEG_INFINITY, false),
                    |a, b| (a.0.min(b.0), a.1.max(b.1), a.2 || b.2),
                );
                infinite |= inf;
                if inf {
                    break;
                }
                let g = GroupScale::new(lo as f64, hi as f64, p);
                o.par_chunks_mut(CHUNK)
                    .zip(x.par_chunks(CHUNK))
                    .for_each(|(o, x)| scale_slice(x, o, &g));
            }
            infinite
        }
    };
    if infinite {
        // Only to name the first infinite value in the error.
        min_max::validate(data, p)?;
    }
    Matrix::new(rows, cols, out)
}

#[inline]
fn apply(g: &GroupScale, v: f32) -> f32 {
    (g.min + (v as f64 - g.lo) * g.scale) as f32
}

fn scale_slice(x: &[f32], out: &mut [f32], g: &GroupScale) {
    for (y, &v) in out.iter_mut().zip(x) {
        *y = apply(g, v);
    }
}

/// `(min, max, any infinite)` of the non-NaN values, in 16 independent lanes so that the
/// compiler vectorises it (a comparison with NaN is false, so NaN never replaces a bound).
fn extent(x: &[f32]) -> (f32, f32, bool) {
    const LANES: usize = 16;
    let mut lo = [f32::INFINITY; LANES];
    let mut hi = [f32::NEG_INFINITY; LANES];
    let mut infinite = [false; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for i in 0..LANES {
            let v = chunk[i];
            lo[i] = if v < lo[i] { v } else { lo[i] };
            hi[i] = if v > hi[i] { v } else { hi[i] };
            infinite[i] |= v.abs() == f32::INFINITY;
        }
    }
    for (i, &v) in tail.iter().enumerate() {
        lo[i] = if v < lo[i] { v } else { lo[i] };
        hi[i] = if v > hi[i] { v } else { hi[i] };
        infinite[i] |= v.abs() == f32::INFINITY;
    }
    let lo = lo.iter().fold(f32::INFINITY, |a, &b| a.min(b));
    let hi = hi.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    (lo, hi, infinite.iter().any(|&b| b))
}

/// Per-column running extent.
struct Extent {
    lo: Vec<f32>,
    hi: Vec<f32>,
    infinite: bool,
}

impl Extent {
    fn new(cols: usize) -> Self {
        Self {
            lo: vec![f32::INFINITY; cols],
            hi: vec![f32::NEG_INFINITY; cols],
            infinite: false,
        }
    }

    fn add_row(&mut self, row: &[f32]) {
        let mut infinite = false;
        for ((lo, hi), &v) in self.lo.iter_mut().zip(self.hi.iter_mut()).zip(row) {
            *lo = lo.min(v);
            *hi = hi.max(v);
            infinite |= v.abs() == f32::INFINITY;
        }
        self.infinite |= infinite;
    }

    fn merge(mut self, other: Self) -> Self {
        for (a, b) in self.lo.iter_mut().zip(&other.lo) {
            *a = a.min(*b);
        }
        for (a, b) in self.hi.iter_mut().zip(&other.hi) {
            *a = a.max(*b);
        }
        self.infinite |= other.infinite;
        self
    }

    fn into_parts(self) -> (Vec<f32>, Vec<f32>, bool) {
        (self.lo, self.hi, self.infinite)
    }
}

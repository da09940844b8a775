//! CPU wavelet transform (pywt.wavedec / waverec semantics, see `serrano_kernel_core::wavelet`),
//! rows over the rayon pool. Each level works in polyphase form: the extended signal is split
//! into its even and odd samples once, so the strided convolution becomes `F/2` unit-stride
//! multiply-adds per output vector, which the compiler vectorises.

use rayon::prelude::*;
use serrano_kernel_core::wavelet::{self, ExtensionMode, Filters, WaveletLayout, WaveletParams};
use serrano_kernel_core::{Matrix, Result};

pub fn wavelet(signals: &Matrix, p: &WaveletParams) -> Result<Matrix> {
    let layout = wavelet::validate(signals, p)?;
    let t = Transform {
        filters: F32Filters::new(&p.wavelet.filters()?),
        mode: p.mode,
        layout,
    };
    let out_cols = t.layout.out_cols;
    let mut out = vec![0.0f32; signals.rows() * out_cols];
    if out.is_empty() {
        return Matrix::new(signals.rows(), out_cols, out);
    }
    let per_task = (16384 / out_cols).max(1);
    out.par_chunks_mut(out_cols * per_task)
        .enumerate()
        .for_each_init(Scratch::default, |scratch, (chunk, block)| {
            for (i, orow) in block.chunks_exact_mut(out_cols).enumerate() {
                let row = signals.row(chunk * per_task + i);
                if p.inverse {
                    t.waverec(row, orow, scratch);
                } else {
                    t.wavedec(row, orow, scratch);
                }
            }
        });
    Matrix::new(signals.rows(), out_cols, out)
}

/// What every row of one call shares.
struct Transform {
    layout: WaveletLayout,
    filters: F32Filters,
    mode: ExtensionMode,
}

struct F32Filters {
    dec_lo: Vec<f32>,
    dec_hi: Vec<f32>,
    rec_lo: Vec<f32>,
    rec_hi: Vec<f32>,
}

impl F32Filters {
    fn new(f: &Filters) -> Self {
        let conv = |v: &[f64]| v.iter().map(|&x| x as f32).collect();
        Self {
            dec_lo: conv(&f.dec_lo),
            dec_hi: conv(&f.dec_hi),
            rec_lo: conv(&f.rec_lo),
            rec_hi: conv(&f.rec_hi),
        }
    }
}

/// Per-thread buffers, reused across rows.
#[derive(Default)]
struct Scratch {
    even: Vec<f32>,
    odd: Vec<f32>,
    approx: Vec<f32>,
    next: Vec<f32>,
    ext_a: Vec<f32>,
    ext_d: Vec<f32>,
}

/// The extended signal at index `i` (see the module docs of the core crate).
fn extended(x: &[f32], i: i64, mode: ExtensionMode) -> f32 {
    let n = x.len() as i64;
    if (0..n).contains(&i) {
        return x[i as usize];
    }
    match mode {
        ExtensionMode::Zero => 0.0,
        ExtensionMode::Symmetric => {
            let m = i.rem_euclid(2 * n);
            x[(if m < n { m } else { 2 * n - 1 - m }) as usize]
        }
        ExtensionMode::Periodization => {
            let m = i.rem_euclid(n + n % 2).min(n - 1);
            x[m as usize]
        }
    }
}

/// One analysis level: `a[o] = Σ_j lo[j] x̃[2o + s − j]`, `d` likewise with `hi`.
fn dwt_level(
    x: &[f32],
    a: &mut [f32],
    d: &mut [f32],
    f: &F32Filters,
    mode: ExtensionMode,
    even: &mut Vec<f32>,
    odd: &mut Vec<f32>,
) {
    let flen = f.dec_lo.len();
    let half = flen / 2;
    let len = a.len();
    let shift = match mode {
        ExtensionMode::Periodization => half as i64,
        ExtensionMode::Symmetric | ExtensionMode::Zero => 1,
    };
    // e[i] = x̃[i + base] with a[o] = Σ_p lo[F-1-p] e[2o + p]; split into even / odd samples.
    let base = shift - (flen as i64 - 1);
    let phase_len = len + half - 1;
    even.clear();
    even.resize(phase_len, 0.0);
    odd.clear();
    odd.resize(phase_len, 0.0);
    // Pairs (2i + base, 2i + 1 + base) inside the signal: i in [lo, hi). Those deinterleave in
    // one vectorisable pass; the few outside go through the extension.
    let n = x.len() as i64;
    let lo = ((-base).max(0) as usize).div_ceil(2).min(phase_len);
    let hi = (((n - base).max(0) / 2) as usize).clamp(lo, phase_len);
    if hi > lo {
        let start = (2 * lo as i64 + base) as usize;
        let pairs = x[start..start + 2 * (hi - lo)].chunks_exact(2);
        for ((e, o), pair) in even[lo..hi].iter_mut().zip(&mut odd[lo..hi]).zip(pairs) {
            *e = pair[0];
            *o = pair[1];
        }
    }
    for i in (0..lo).chain(hi..phase_len) {
        let ie = 2 * i as i64 + base;
        even[i] = extended(x, ie, mode);
        odd[i] = extended(x, ie + 1, mode);
    }
    // Blocks of outputs that stay in L1 while every tap adds into them.
    const BLOCK: usize = 512;
    for o0 in (0..len).step_by(BLOCK) {
        let o1 = (o0 + BLOCK).min(len);
        let (ab, db) = (&mut a[o0..o1], &mut d[o0..o1]);
        ab.fill(0.0);
        db.fill(0.0);
        for k in 0..half {
            let (le, lo) = (f.dec_lo[flen - 1 - 2 * k], f.dec_lo[flen - 2 - 2 * k]);
            let (he, ho) = (f.dec_hi[flen - 1 - 2 * k], f.dec_hi[flen - 2 - 2 * k]);
            let (ev, ov) = (&even[o0 + k..o1 + k], &odd[o0 + k..o1 + k]);
            for (((ai, di), &e), &o) in ab.iter_mut().zip(db.iter_mut()).zip(ev).zip(ov) {
                *ai += le * e + lo * o;
                *di += he * e + ho * o;
            }
        }
    }
}

impl Transform {
    fn wavedec(&self, row: &[f32], out: &mut [f32], s: &mut Scratch) {
        let (layout, f, mode) = (&self.layout, &self.filters, self.mode);
        let levels = layout.levels;
        s.approx.clear();
        s.approx.extend_from_slice(row);
        // cD_j sits after cA_L and cD_L..cD_{j+1}.
        let mut end = out.len();
        for level in 1..=levels {
            let len = layout.approx_lengths[level];
            s.next.clear();
            s.next.resize(len, 0.0);
            dwt_level(
                &s.approx,
                &mut s.next,
                &mut out[end - len..end],
                f,
                mode,
                &mut s.even,
                &mut s.odd,
            );
            end -= len;
            std::mem::swap(&mut s.approx, &mut s.next);
        }
        out[..end].copy_from_slice(&s.approx);
    }

    fn waverec(&self, row: &[f32], out: &mut [f32], s: &mut Scratch) {
        let (layout, f, mode) = (&self.layout, &self.filters, self.mode);
        let levels = layout.levels;
        let mut approx = std::mem::take(&mut s.approx);
        let mut next = std::mem::take(&mut s.next);
        approx.clear();
        approx.extend_from_slice(&row[..layout.lengths[0]]);
        let mut offset = layout.lengths[0];
        for level in (1..=levels).rev() {
            let len = layout.approx_lengths[level];
            let detail = &row[offset..offset + len];
            offset += len;
            next.clear();
            next.resize(layout.approx_lengths[level - 1], 0.0);
            idwt_level(&approx, detail, &mut next, f, mode, s);
            std::mem::swap(&mut approx, &mut next);
        }
        out.copy_from_slice(&approx);
        s.approx = approx;
        s.next = next;
    }
}

/// One synthesis level into `out` (its length is the forward input's length).
fn idwt_level(
    a: &[f32],
    d: &[f32],
    out: &mut [f32],
    f: &F32Filters,
    mode: ExtensionMode,
    s: &mut Scratch,
) {
    let flen = f.rec_lo.len();
    let half = flen / 2;
    let len = a.len();
    match mode {
        ExtensionMode::Symmetric | ExtensionMode::Zero => {
            // pywt's idwt: x[2m + e] = Σ_k rec[2k + e] c[m + F/2 − 1 − k], m = 0..=L − F/2.
            let pairs = len + 1 - half;
            let even = &mut s.even;
            let odd = &mut s.odd;
            even.clear();
            even.resize(pairs, 0.0);
            odd.clear();
            odd.resize(pairs, 0.0);
            for k in 0..half {
                let c0 = half - 1 - k;
                let (ca, cd) = (&a[c0..c0 + pairs], &d[c0..c0 + pairs]);
                let (le, lo) = (f.rec_lo[2 * k], f.rec_lo[2 * k + 1]);
                let (he, ho) = (f.rec_hi[2 * k], f.rec_hi[2 * k + 1]);
                for (((ev, ov), &av), &dv) in even.iter_mut().zip(odd.iter_mut()).zip(ca).zip(cd) {
                    *ev += le * av + he * dv;
                    *ov += lo * av + ho * dv;
                }
            }
            for (t, v) in out.iter_mut().enumerate() {
                *v = if t % 2 == 0 { even[t / 2] } else { odd[t / 2] };
            }
        }
        ExtensionMode::Periodization => {
            // The transpose of the periodic analysis step: x[t] gathers lo[j]·a[o] + hi[j]·d[o]
            // over 2o + s − j ≡ t (mod 2L). For t = 2m + e, j = 2k + jp with jp ≡ s − e, and
            // o = m + k + (e − s + jp)/2, taken mod L through circularly extended copies.
            let shift = half as i64;
            let l = len as i64;
            let c = |e: i64| (e - shift + (shift - e).rem_euclid(2)) / 2;
            let base = c(0).min(c(1));
            let ext_len = len + half + 1 + (c(0).max(c(1)) - base) as usize;
            s.ext_a.clear();
            s.ext_d.clear();
            for i in 0..ext_len as i64 {
                let o = (i + base).rem_euclid(l) as usize;
                s.ext_a.push(a[o]);
                s.ext_d.push(d[o]);
            }
            for (t, v) in out.iter_mut().enumerate() {
                let (m, e) = ((t / 2) as i64, (t % 2) as i64);
                let jp = (shift - e).rem_euclid(2) as usize;
                let start = (m + c(e) - base) as usize;
                let mut acc = 0.0f32;
                for k in 0..(flen - jp).div_ceil(2) {
                    let j = 2 * k + jp;
                    acc += f.dec_lo[j] * s.ext_a[start + k] + f.dec_hi[j] * s.ext_d[start + k];
                }
                *v = acc;
            }
        }
    }
}

//! CPU Black-Scholes (semantics in `serrano_kernel_core::black_scholes`): rayon over tasks of
//! options; inside a task, blocks of [`LANES`] options are gathered into structure-of-arrays
//! buffers and priced by one branch-free loop that LLVM vectorises. `exp`, `ln` and the normal
//! CDF are `f32` approximations written here (no libm call in the loop), accurate to about 1e-7
//! (exp, ln: relative) and 2e-7 (CDF: relative in the lower tail, absolute near 1); validation of
//! every option is fused into the same pass.

use rayon::prelude::*;
use serrano_kernel_core::black_scholes::{BsLayout, BsParams, layout, option_error, option_ok};
use serrano_kernel_core::{Matrix, Result};

/// Options priced together by one vectorised loop.
const LANES: usize = 128;
/// Options per rayon task.
const TASK: usize = 16 * 1024;

const LOG2E: f32 = std::f32::consts::LOG2_E;
// ln 2 split so that `n * LN2_HI` is exact for |n| < 2^11 (Cody-Waite reduction).
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;
/// 1.5 * 2^23: adding and subtracting it rounds an f32 of magnitude < 2^22 to an integer.
const ROUND_MAGIC: f32 = 12_582_912.0;
const SQRT_2: f32 = std::f32::consts::SQRT_2;
const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// `e^x` for finite `x`, relative error about 2e-7 on `[-87, 88]`; below -87 it returns
/// `e^-87` (about 1.6e-38) instead of underflowing, above 88 `e^88`. Branch-free, vectorisable.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    exp_split(x, 0.0)
}

/// `e^(hi + lo)` where `hi + lo` is not rounded first: `hi` is reduced exactly, so an argument
/// known to more than `f32` precision (`-z^2` in the CDF) keeps its accuracy.
#[inline(always)]
fn exp_split(hi: f32, lo: f32) -> f32 {
    let x = hi + lo;
    let xc = x.clamp(-87.0, 88.0);
    let (hi, lo) = if xc == x { (hi, lo) } else { (xc, 0.0) };
    // x = n ln2 + r, |r| <= ln2 / 2; the rounded n's integer value sits in the low mantissa bits.
    let shifted = xc * LOG2E + ROUND_MAGIC;
    let n = shifted - ROUND_MAGIC;
    let ni = (shifted.to_bits() as i32).wrapping_sub(ROUND_MAGIC.to_bits() as i32);
    // n * LN2_HI is exact and close to hi, so the first difference is exact.
    let r = (hi - n * LN2_HI) + (lo - n * LN2_LO);
    // Taylor series to degree 6: truncation error (ln2/2)^7 / 7! = 1.2e-7.
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((ni + 127) << 23) as u32)
}

/// `ln x` for normal positive finite `x`, absolute error about 1e-7 (relative near 1).
/// Branch-free, vectorisable; subnormal, zero, infinite or NaN `x` give meaningless values.
#[inline(always)]
pub fn ln_f32(x: f32) -> f32 {
    let bits = x.to_bits() as i32;
    let e = (bits >> 23) - 127;
    let m = f32::from_bits(((bits & 0x007f_ffff) | 0x3f80_0000) as u32);
    // m in [1, 2); fold to [sqrt(1/2), sqrt 2) so that |s| <= 0.172.
    let big = m > SQRT_2;
    let m = if big { 0.5 * m } else { m };
    let e = (if big { e + 1 } else { e }) as f32;
    // ln m = 2 atanh s, s = (m - 1) / (m + 1): odd series to s^9 (truncation 7e-10).
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let p = s * (2.0 + s2 * (2.0 / 3.0 + s2 * (0.4 + s2 * (2.0 / 7.0 + s2 * (2.0 / 9.0)))));
    e * LN2_HI + (p + e * LN2_LO)
}

/// `(N(x), N(-x))` of the standard normal, from one `erfc` evaluation:
/// `erfc(z) = t exp(-z^2 + P(t))`, `t = 1 / (1 + z/2)`, `P` a degree-9 polynomial fitted here
/// (weighted least squares on Chebyshev nodes; fit error 1e-7). `N` of `|x| > 19` is exactly 0/1.
#[inline(always)]
pub fn norm_cdf_pair(x: f32) -> (f32, f32) {
    let z = x.abs() * FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let p = -1.265_512_2
        + t * (1.000_022_6
            + t * (0.374_125_04
                + t * (0.096_388_13
                    + t * (-0.183_966_18
                        + t * (0.271_351_6
                            + t * (-1.121_1
                                + t * (1.473_255_7 + t * (-0.813_325_9 + t * 0.168_761_1))))))));
    // z^2 = (ah^2 + al (a + ah)) / 2 with a = |x| = ah + al and ah^2 exact (ah keeps 12
    // significant bits): z^2 itself would carry the rounding of z and of the square.
    let a = x.abs();
    let ah = f32::from_bits(a.to_bits() & 0xffff_f000);
    let al = a - ah;
    let tail = 0.5 * t * exp_split(-0.5 * (ah * ah), p - 0.5 * (al * (a + ah)));
    let tail = if z < 13.5 { tail } else { 0.0 };
    if x < 0.0 {
        (tail, 1.0 - tail)
    } else {
        (1.0 - tail, tail)
    }
}

/// `N(x)`, see [`norm_cdf_pair`].
#[inline(always)]
pub fn norm_cdf_f32(x: f32) -> f32 {
    norm_cdf_pair(x).0
}

/// Everything one option needs, computed branch-free.
struct Priced {
    call: f32,
    put: f32,
    n1: f32,
    n2: f32,
    nm2: f32,
    pdf: f32,
    sqrt_t: f32,
    kd: f32,
    limit: bool,
}

#[inline(always)]
fn price_one(s: f32, k: f32, t: f32, r: f32, v: f32, with_pdf: bool) -> Priced {
    let sqrt_t = t.sqrt();
    let vt = v * sqrt_t;
    let kd = k * exp_f32(-r * t);
    // vt == 0: the limit (N(d1) = N(d2) = 1, 1/2 or 0 by moneyness): d = +-40 or 0.
    let limit = vt <= 0.0;
    let d_limit = if s > kd {
        40.0
    } else if s < kd {
        -40.0
    } else {
        0.0
    };
    let safe_vt = if limit { 1.0 } else { vt };
    let d1 = (ln_f32(s / k) + (r + 0.5 * v * v) * t) / safe_vt;
    let (d1, d2) = if limit {
        (d_limit, d_limit)
    } else {
        (d1, d1 - vt)
    };
    let (n1, nm1) = norm_cdf_pair(d1);
    let (n2, nm2) = norm_cdf_pair(d2);
    let pdf = if with_pdf && !limit {
        FRAC_1_SQRT_2PI * exp_f32(-0.5 * d1 * d1)
    } else {
        0.0
    };
    Priced {
        call: s * n1 - kd * n2,
        put: kd * nm2 - s * nm1,
        n1,
        n2,
        nm2,
        pdf,
        sqrt_t,
        kd,
        limit,
    }
}

/// One option from `row` (in the layout's columns).
#[inline(always)]
fn load(l: &BsLayout, row: &[f32]) -> [f32; 5] {
    l.option(row)
}

/// Prices the options of `inp` (whole rows) into `out`; returns the index (within `inp`) of
/// the first invalid option, if any (its outputs are then meaningless).
fn price_task(l: &BsLayout, inp: &[f32], out: &mut [f32]) -> Option<usize> {
    let (ic, oc) = (l.in_cols, l.out_cols());
    let mut first_bad = None;
    for (b, (ib, ob)) in inp
        .chunks(LANES * ic)
        .zip(out.chunks_mut(LANES * oc))
        .enumerate()
    {
        let m = ib.len() / ic;
        // Structure of arrays; lanes past `m` hold a harmless option.
        let mut soa = [[1.0f32; LANES]; 5];
        for (j, row) in ib.chunks_exact(ic).enumerate() {
            let o = load(l, row);
            for (c, v) in o.into_iter().enumerate() {
                soa[c][j] = v;
            }
        }
        let [s, k, t, r, v] = &soa;
        let mut ok = [true; LANES];
        for j in 0..LANES {
            ok[j] = option_ok([s[j], k[j], t[j], r[j], v[j]]);
        }
        if first_bad.is_none()
            && let Some(j) = ok[..m].iter().position(|&g| !g)
        {
            first_bad = Some(b * LANES + j);
        }
        if l.greeks {
            let mut g = [[0.0f32; LANES]; 10];
            for j in 0..LANES {
                let p = price_one(s[j], k[j], t[j], r[j], v[j], true);
                let (gamma, vega, decay) = if p.limit {
                    (0.0, 0.0, 0.0)
                } else {
                    let vt = v[j] * p.sqrt_t;
                    (
                        p.pdf / (s[j] * vt),
                        s[j] * p.pdf * p.sqrt_t,
                        -s[j] * p.pdf * v[j] / (2.0 * p.sqrt_t),
                    )
                };
                let kt = t[j] * p.kd;
                g[0][j] = p.call;
                g[1][j] = p.put;
                g[2][j] = p.n1;
                g[3][j] = p.n1 - 1.0;
                g[4][j] = gamma;
                g[5][j] = vega;
                g[6][j] = decay - r[j] * p.kd * p.n2;
                g[7][j] = decay + r[j] * p.kd * p.nm2;
                g[8][j] = kt * p.n2;
                g[9][j] = -kt * p.nm2;
            }
            for (j, orow) in ob.chunks_exact_mut(oc).enumerate() {
                for (c, o) in orow.iter_mut().enumerate() {
                    *o = g[c][j];
                }
            }
        } else {
            let mut call = [0.0f32; LANES];
            let mut put = [0.0f32; LANES];
            for j in 0..LANES {
                let p = price_one(s[j], k[j], t[j], r[j], v[j], false);
                call[j] = p.call;
                put[j] = p.put;
            }
            for (j, orow) in ob.chunks_exact_mut(2).enumerate() {
                orow[0] = call[j];
                orow[1] = put[j];
            }
        }
    }
    first_bad
}

pub fn black_scholes(options: &Matrix, p: &BsParams) -> Result<Matrix> {
    let l = layout(options, p)?;
    let oc = l.out_cols();
    let mut out = vec![0.0f32; l.rows * oc];
    if l.rows == 0 {
        return Matrix::new(0, oc, out);
    }
    let bad = out
        .par_chunks_mut(TASK * oc)
        .zip(options.data().par_chunks(TASK * l.in_cols))
        .enumerate()
        .filter_map(|(i, (o, inp))| price_task(&l, inp, o).map(|j| i * TASK + j))
        .min();
    if let Some(row) = bad {
        return Err(option_error(row, l.option(options.row(row))));
    }
    Matrix::new(l.rows, oc, out)
}

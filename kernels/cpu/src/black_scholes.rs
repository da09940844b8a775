//! CPU Black-Scholes (semantics in `serrano_kernel_core::black_scholes`): rayon over tasks of
//! options; inside a task, blocks of [`LANES`] options are gathered into structure-of-arrays
//! buffers and priced by short branch-free loops that LLVM vectorises, compiled for AVX-512,
//! AVX2+FMA and the baseline and picked at run time (`pulp`). `exp`, `ln` and the normal
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
/// (weighted least squares on Chebyshev nodes; fit error 1e-7). Beyond `|x| = 9 sqrt 2`, where
/// the tail is below 1e-36, it is exactly 0 (and the other value 1): computing it would produce
/// subnormal numbers, which cost x86 cores a hundred cycles per operation.
#[inline(always)]
pub fn norm_cdf_pair(x: f32) -> (f32, f32) {
    const Z_MAX: f32 = 9.0;
    let z_true = x.abs() * FRAC_1_SQRT_2;
    let z = z_true.min(Z_MAX);
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
    let a = x.abs().min(Z_MAX * SQRT_2);
    let ah = f32::from_bits(a.to_bits() & 0xffff_f000);
    let al = a - ah;
    let tail = 0.5 * t * exp_split(-0.5 * (ah * ah), p - 0.5 * (al * (a + ah)));
    let tail = if z_true < Z_MAX { tail } else { 0.0 };
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

/// Working arrays of one block. The pricing runs as several short loops over the block rather
/// than one long loop per option: each short loop vectorises and its iterations are independent,
/// so the core overlaps them, where one long body would wait on its chains of dependent
/// multiplications (Horner schemes, divisions) one option group at a time.
struct Block {
    sqrt_t: [f32; LANES],
    vt: [f32; LANES],
    kd: [f32; LANES],
    d1: [f32; LANES],
    d2: [f32; LANES],
    n1: [f32; LANES],
    nm1: [f32; LANES],
    n2: [f32; LANES],
    nm2: [f32; LANES],
}

impl Block {
    fn new() -> Self {
        let z = [0.0f32; LANES];
        Self {
            sqrt_t: z,
            vt: z,
            kd: z,
            d1: z,
            d2: z,
            n1: z,
            nm1: z,
            n2: z,
            nm2: z,
        }
    }

    /// `d1`, `d2`, the discounted strike and `v sqrt t` of every lane; in the limit `v sqrt t
    /// == 0`, `d1 = d2 = +-40 or 0` by moneyness, so that `N(d)` is the limit's 1, 0 or 1/2.
    #[inline(always)]
    fn prepare(&mut self, soa: &[[f32; LANES]; 5]) {
        let [s, k, t, r, v] = soa;
        for j in 0..LANES {
            self.sqrt_t[j] = t[j].sqrt();
            self.vt[j] = v[j] * self.sqrt_t[j];
            self.kd[j] = k[j] * exp_f32(-r[j] * t[j]);
        }
        for j in 0..LANES {
            self.d1[j] = ln_f32(s[j] / k[j]);
        }
        for j in 0..LANES {
            let vt = self.vt[j];
            let limit = vt <= 0.0;
            let kd = self.kd[j];
            let d_limit = if s[j] > kd {
                40.0
            } else if s[j] < kd {
                -40.0
            } else {
                0.0
            };
            let safe_vt = if limit { 1.0 } else { vt };
            let d1 = (self.d1[j] + (r[j] + 0.5 * v[j] * v[j]) * t[j]) / safe_vt;
            self.d1[j] = if limit { d_limit } else { d1 };
            self.d2[j] = if limit { d_limit } else { d1 - vt };
        }
        for j in 0..LANES {
            (self.n1[j], self.nm1[j]) = norm_cdf_pair(self.d1[j]);
        }
        for j in 0..LANES {
            (self.n2[j], self.nm2[j]) = norm_cdf_pair(self.d2[j]);
        }
    }
}

/// Prices the options of `inp` (whole rows) into `out`; returns the index (within `inp`) of
/// the first invalid option, if any (its outputs are then meaningless). Inlined into the
/// caller's SIMD dispatch so that its loops are compiled for the widest vectors available.
#[inline(always)]
fn price_task(l: &BsLayout, inp: &[f32], out: &mut [f32]) -> Option<usize> {
    let (ic, oc) = (l.in_cols, l.out_cols());
    let mut first_bad = None;
    let mut blk = Block::new();
    for (b, (ib, ob)) in inp
        .chunks(LANES * ic)
        .zip(out.chunks_mut(LANES * oc))
        .enumerate()
    {
        let m = ib.len() / ic;
        // Structure of arrays; lanes past `m` hold a harmless option.
        let mut soa = [[1.0f32; LANES]; 5];
        for (j, row) in ib.chunks_exact(ic).enumerate() {
            for (c, v) in l.option(row).into_iter().enumerate() {
                soa[c][j] = v;
            }
        }
        let mut ok = [true; LANES];
        {
            let [s, k, t, r, v] = &soa;
            for j in 0..LANES {
                ok[j] = option_ok([s[j], k[j], t[j], r[j], v[j]]);
            }
        }
        if first_bad.is_none()
            && let Some(j) = ok[..m].iter().position(|&g| !g)
        {
            first_bad = Some(b * LANES + j);
        }
        blk.prepare(&soa);
        let [s, _, t, r, v] = &soa;
        let bk = &blk;
        if l.greeks {
            let mut g = [[0.0f32; LANES]; 10];
            for j in 0..LANES {
                g[0][j] = s[j] * bk.n1[j] - bk.kd[j] * bk.n2[j];
                g[1][j] = bk.kd[j] * bk.nm2[j] - s[j] * bk.nm1[j];
                g[2][j] = bk.n1[j];
                g[3][j] = bk.n1[j] - 1.0;
                let kt = t[j] * bk.kd[j];
                g[8][j] = kt * bk.n2[j];
                g[9][j] = -kt * bk.nm2[j];
            }
            for j in 0..LANES {
                // The density is below 1e-31 past |d1| = 12: 0 there, without subnormal values.
                let d1 = bk.d1[j];
                let d1c = d1.abs().min(12.0);
                let limit = bk.vt[j] <= 0.0;
                let pdf = if !limit && d1.abs() < 12.0 {
                    FRAC_1_SQRT_2PI * exp_f32(-0.5 * d1c * d1c)
                } else {
                    0.0
                };
                let safe_vt = if limit { 1.0 } else { bk.vt[j] };
                let safe_sqrt_t = if limit { 1.0 } else { bk.sqrt_t[j] };
                let decay = -s[j] * pdf * v[j] / (2.0 * safe_sqrt_t);
                g[4][j] = pdf / (s[j] * safe_vt);
                g[5][j] = s[j] * pdf * bk.sqrt_t[j];
                g[6][j] = decay - r[j] * bk.kd[j] * bk.n2[j];
                g[7][j] = decay + r[j] * bk.kd[j] * bk.nm2[j];
            }
            for (j, orow) in ob.chunks_exact_mut(oc).enumerate() {
                for (c, o) in orow.iter_mut().enumerate() {
                    *o = g[c][j];
                }
            }
        } else {
            for (j, orow) in ob.chunks_exact_mut(2).enumerate() {
                orow[0] = s[j] * bk.n1[j] - bk.kd[j] * bk.n2[j];
                orow[1] = bk.kd[j] * bk.nm2[j] - s[j] * bk.nm1[j];
            }
        }
    }
    first_bad
}

/// One rayon task, run through `pulp` (a closure would not be inlined into the SIMD versions).
struct Task<'a> {
    l: &'a BsLayout,
    inp: &'a [f32],
    out: &'a mut [f32],
}

impl pulp::WithSimd for Task<'_> {
    type Output = Option<usize>;
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> Self::Output {
        price_task(self.l, self.inp, self.out)
    }
}

pub fn black_scholes(options: &Matrix, p: &BsParams) -> Result<Matrix> {
    let l = layout(options, p)?;
    let oc = l.out_cols();
    let mut out = vec![0.0f32; l.rows * oc];
    if l.rows == 0 {
        return Matrix::new(0, oc, out);
    }
    // AVX-512 / AVX2+FMA / baseline versions of the loops, picked at run time.
    let arch = pulp::Arch::new();
    let bad = out
        .par_chunks_mut(TASK * oc)
        .zip(options.data().par_chunks(TASK * l.in_cols))
        .enumerate()
        .filter_map(|(i, (o, inp))| {
            arch.dispatch(Task { l: &l, inp, out: o })
                .map(|j| i * TASK + j)
        })
        .min();
    if let Some(row) = bad {
        return Err(option_error(row, l.option(options.row(row))));
    }
    Matrix::new(l.rows, oc, out)
}

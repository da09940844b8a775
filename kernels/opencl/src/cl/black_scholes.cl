// Black-Scholes prices and Greeks (semantics: serrano_kernel_core::black_scholes), one work-item
// per option. Options were validated on the host. Input row i is in[i * in_cols ..], columns
// [spot, strike, years, rate, volatility] (in_cols 5) or [spot, strike, years] with the rate and
// volatility as arguments (fixed != 0, in_cols 3). Output row i is out[i * out_cols ..]:
// [call, put] or, with greeks, the 10 columns of the core module.

// exp, ln and the normal CDF in plain arithmetic (the approximations of the CPU kernels, about
// 1e-7 relative): CPU runtimes such as pocl call scalar library code for the builtins exp, log
// and erfc, which stops the work-group loop from vectorising (five times slower); GPUs lose
// nothing, the kernel being bound by memory there.

// e^(hi + lo) without rounding hi + lo first (hi is reduced exactly); clamped to [-87, 88].
inline float bs_exp2(float hi, float lo) {
    float x = hi + lo;
    float xc = clamp(x, -87.0f, 88.0f);
    if (xc != x) {
        hi = xc;
        lo = 0.0f;
    }
    // x = n ln2 + r; adding 1.5 * 2^23 rounds x log2(e) to the integer n, kept in the low bits.
    float shifted = xc * 1.44269504f + 12582912.0f;
    float n = shifted - 12582912.0f;
    int ni = as_int(shifted) - as_int(12582912.0f);
    float r = (hi - n * 0.693145751953125f) + (lo - n * 1.4286068203094172e-6f);
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6.0f + r * (1.0f / 24.0f
            + r * (1.0f / 120.0f + r * (1.0f / 720.0f))))));
    return p * as_float((ni + 127) << 23);
}

inline float bs_exp(float x) {
    return bs_exp2(x, 0.0f);
}

// ln x for normal positive x: x = m 2^e, m in [sqrt(1/2), sqrt 2), ln m = 2 atanh((m-1)/(m+1)).
inline float bs_ln(float x) {
    int bits = as_int(x);
    int e = (bits >> 23) - 127;
    float m = as_float((bits & 0x007fffff) | 0x3f800000);
    int big = m > 1.41421356f;
    m = big ? 0.5f * m : m;
    float ef = (float)(e + big);
    float s = (m - 1.0f) / (m + 1.0f);
    float s2 = s * s;
    float p = s * (2.0f + s2 * (2.0f / 3.0f + s2 * (0.4f + s2 * (2.0f / 7.0f + s2 * (2.0f / 9.0f)))));
    return ef * 0.693145751953125f + (p + ef * 1.4286068203094172e-6f);
}

// (N(x), N(-x)) from one erfc evaluation, erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2), P of
// degree 9 fitted for this project (fit error 1e-7). z^2 is formed as (ah^2 + al (a + ah)) / 2
// with a = |x| = ah + al and ah^2 exact, so the tail keeps its relative accuracy. Past
// |x| = 9 sqrt 2 the tail (below 1e-36) is 0, without subnormal intermediates.
inline float2 bs_cdf_pair(float x) {
    float a = fmin(fabs(x), 12.727922f);
    float z = a * 0.70710678118654752f;
    float t = 1.0f / (1.0f + 0.5f * z);
    float p = -1.2655122f + t * (1.0000226f + t * (0.37412504f + t * (0.09638813f
            + t * (-0.18396618f + t * (0.2713516f + t * (-1.1211f + t * (1.4732557f
            + t * (-0.8133259f + t * 0.1687611f))))))));
    float ah = as_float(as_uint(a) & 0xfffff000u);
    float al = a - ah;
    float tail = 0.5f * t * bs_exp2(-0.5f * (ah * ah), p - 0.5f * (al * (a + ah)));
    tail = fabs(x) < 12.727922f ? tail : 0.0f;
    return x < 0.0f ? (float2)(tail, 1.0f - tail) : (float2)(1.0f - tail, tail);
}

__kernel void bs_rows(__global const float* in, long n, int in_cols, int fixed, float rate,
                      float vol, __global float* out, int greeks) {
    long i = get_global_id(0);
    if (i >= n) return;
    __global const float* o = in + i * in_cols;
    float s = o[0], k = o[1], t = o[2];
    float r = fixed ? rate : o[3];
    float v = fixed ? vol : o[4];
    float sqrt_t = sqrt(t);
    float vt = v * sqrt_t;
    float kd = k * bs_exp(-r * t);
    // vt == 0: the limit, N(d1) = N(d2) = 1, 1/2 or 0 by moneyness.
    int limit = !(vt > 0.0f);
    float d_limit = s > kd ? 40.0f : (s < kd ? -40.0f : 0.0f);
    float d = (bs_ln(s / k) + (r + 0.5f * v * v) * t) / (limit ? 1.0f : vt);
    float d1 = limit ? d_limit : d;
    float d2 = limit ? d_limit : d - vt;
    float2 c1 = bs_cdf_pair(d1);
    float2 c2 = bs_cdf_pair(d2);
    int oc = greeks ? 10 : 2;
    __global float* w = out + i * oc;
    w[0] = s * c1.x - kd * c2.x;
    w[1] = kd * c2.y - s * c1.y;
    if (!greeks) return;
    float gamma = 0.0f, vega = 0.0f, decay = 0.0f;
    if (!limit) {
        // Below 1e-31 past |d1| = 12: 0 there, without subnormal intermediates.
        float d1c = fmin(fabs(d1), 12.0f);
        float pdf = fabs(d1) < 12.0f ? 0.3989422804014327f * bs_exp(-0.5f * d1c * d1c) : 0.0f;
        gamma = pdf / (s * vt);
        vega = s * pdf * sqrt_t;
        decay = -s * pdf * v / (2.0f * sqrt_t);
    }
    float kt = t * kd;
    w[2] = c1.x;
    w[3] = c1.x - 1.0f;
    w[4] = gamma;
    w[5] = vega;
    w[6] = decay - r * kd * c2.x;
    w[7] = decay + r * kd * c2.y;
    w[8] = kt * c2.x;
    w[9] = -kt * c2.y;
}

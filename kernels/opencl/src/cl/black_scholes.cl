// Black-Scholes prices and Greeks (semantics: serrano_kernel_core::black_scholes), one work-item
// per option. Options were validated on the host. Input row i is in[i * in_cols ..], columns
// [spot, strike, years, rate, volatility] (in_cols 5) or [spot, strike, years] with the rate and
// volatility as arguments (fixed != 0, in_cols 3). Output row i is out[i * out_cols ..]:
// [call, put] or, with greeks, the 10 columns of the core module.

// (N(x), N(-x)) from one erfc, which keeps relative accuracy in the lower tail.
inline float2 bs_cdf_pair(float x) {
    float tail = 0.5f * erfc(fabs(x) * 0.70710678118654752f);
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
    float kd = k * exp(-r * t);
    // vt == 0: the limit, N(d1) = N(d2) = 1, 1/2 or 0 by moneyness.
    int limit = !(vt > 0.0f);
    float d1, d2;
    if (limit) {
        d1 = s > kd ? 40.0f : (s < kd ? -40.0f : 0.0f);
        d2 = d1;
    } else {
        d1 = (log(s / k) + (r + 0.5f * v * v) * t) / vt;
        d2 = d1 - vt;
    }
    float2 c1 = bs_cdf_pair(d1);
    float2 c2 = bs_cdf_pair(d2);
    int oc = greeks ? 10 : 2;
    __global float* w = out + i * oc;
    w[0] = s * c1.x - kd * c2.x;
    w[1] = kd * c2.y - s * c1.y;
    if (!greeks) return;
    float gamma = 0.0f, vega = 0.0f, decay = 0.0f;
    if (!limit) {
        float pdf = 0.3989422804014327f * exp(-0.5f * d1 * d1);
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

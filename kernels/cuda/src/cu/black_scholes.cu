// Black-Scholes prices and Greeks (semantics: serrano_kernel_core::black_scholes). Options were
// validated on the host. Element (i, c) of the input is in[i * in_row + c * in_col] and of the
// output out[i * out_row + c * out_col], so the same code reads row-major n x 5 / n x 3 matrices
// (in_row = 5 or 3, in_col = 1) and structure-of-arrays buffers (in_row = 1, in_col = n).
// With fixed != 0 the rate and volatility are the arguments, not columns 3 and 4.

struct BsOut {
    float call, put, n1, n2, nm2, pdf, sqrt_t, kd;
    bool limit;
};

// (N(x), N(-x)) from one erfc: erfcf keeps relative accuracy in the lower tail.
__device__ __forceinline__ void bs_cdf_pair(float x, float* nx, float* nmx) {
    float tail = 0.5f * erfcf(fabsf(x) * 0.70710678118654752f);
    if (x < 0.0f) {
        *nx = tail;
        *nmx = 1.0f - tail;
    } else {
        *nx = 1.0f - tail;
        *nmx = tail;
    }
}

__device__ __forceinline__ BsOut bs_price_one(float s, float k, float t, float r, float v,
                                              bool with_pdf) {
    BsOut o;
    o.sqrt_t = sqrtf(t);
    float vt = v * o.sqrt_t;
    o.kd = k * expf(-r * t);
    // vt == 0: the limit, N(d1) = N(d2) = 1, 1/2 or 0 by moneyness.
    o.limit = !(vt > 0.0f);
    float d1, d2;
    if (o.limit) {
        d1 = s > o.kd ? 40.0f : (s < o.kd ? -40.0f : 0.0f);
        d2 = d1;
    } else {
        d1 = (logf(s / k) + (r + 0.5f * v * v) * t) / vt;
        d2 = d1 - vt;
    }
    float n1, nm1;
    bs_cdf_pair(d1, &n1, &nm1);
    bs_cdf_pair(d2, &o.n2, &o.nm2);
    o.n1 = n1;
    o.pdf = (with_pdf && !o.limit) ? 0.3989422804014327f * expf(-0.5f * d1 * d1) : 0.0f;
    o.call = s * n1 - o.kd * o.n2;
    o.put = o.kd * o.nm2 - s * nm1;
    return o;
}

__device__ __forceinline__ void bs_store(float* __restrict__ w, long long oc, const BsOut& p,
                                         float s, float t, float r, float v, int greeks) {
    w[0] = p.call;
    w[oc] = p.put;
    if (!greeks) return;
    float gamma = 0.0f, vega = 0.0f, decay = 0.0f;
    if (!p.limit) {
        gamma = p.pdf / (s * v * p.sqrt_t);
        vega = s * p.pdf * p.sqrt_t;
        decay = -s * p.pdf * v / (2.0f * p.sqrt_t);
    }
    float kt = t * p.kd;
    w[2 * oc] = p.n1;
    w[3 * oc] = p.n1 - 1.0f;
    w[4 * oc] = gamma;
    w[5 * oc] = vega;
    w[6 * oc] = decay - r * p.kd * p.n2;
    w[7 * oc] = decay + r * p.kd * p.nm2;
    w[8 * oc] = kt * p.n2;
    w[9 * oc] = -kt * p.nm2;
}

extern "C" __global__ void bs_strided(const float* __restrict__ in, long long n, long long in_row,
                                      long long in_col, int fixed, float rate, float vol,
                                      float* __restrict__ out, long long out_row,
                                      long long out_col, int greeks) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        const float* o = in + i * in_row;
        float s = __ldg(o);
        float k = __ldg(o + in_col);
        float t = __ldg(o + 2 * in_col);
        float r = fixed ? rate : __ldg(o + 3 * in_col);
        float v = fixed ? vol : __ldg(o + 4 * in_col);
        BsOut p = bs_price_one(s, k, t, r, v, greeks != 0);
        bs_store(out + i * out_row, out_col, p, s, t, r, v, greeks);
    }
}

// Prices only, structure of arrays, four options per thread through 16-byte loads and stores:
// s, k, t, call, put are separate device arrays of n floats, 16-byte aligned; n % 4 == 0.
extern "C" __global__ void bs_soa4(const float4* __restrict__ s4, const float4* __restrict__ k4,
                                   const float4* __restrict__ t4, long long n4, float rate,
                                   float vol, float4* __restrict__ call4,
                                   float4* __restrict__ put4) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n4;
         i += (long long)gridDim.x * blockDim.x) {
        float4 s = __ldg(s4 + i), k = __ldg(k4 + i), t = __ldg(t4 + i);
        BsOut a = bs_price_one(s.x, k.x, t.x, rate, vol, false);
        BsOut b = bs_price_one(s.y, k.y, t.y, rate, vol, false);
        BsOut c = bs_price_one(s.z, k.z, t.z, rate, vol, false);
        BsOut d = bs_price_one(s.w, k.w, t.w, rate, vol, false);
        call4[i] = make_float4(a.call, b.call, c.call, d.call);
        put4[i] = make_float4(a.put, b.put, c.put, d.put);
    }
}

// One level of the discrete wavelet transform (pywt semantics, serrano_kernel_core::wavelet),
// one thread per output coefficient, rows x length flattened over a grid-stride loop. Rows
// are addressed as base + offset + row * stride so that a level can read the previous level's
// approximation and write its details straight into their place in the output layout.
//
// filters: 4 x F floats [dec_lo | dec_hi | rec_lo | rec_hi].

#define MODE_SYMMETRIC 0
#define MODE_PERIODIZATION 1
#define MODE_ZERO 2

__device__ __forceinline__ float extended(const float* __restrict__ x, long long n, long long i,
                                          int mode) {
    if (i >= 0 && i < n) return x[i];
    if (mode == MODE_ZERO) return 0.0f;
    if (mode == MODE_SYMMETRIC) {
        long long p = 2 * n;
        long long m = ((i % p) + p) % p;
        return x[m < n ? m : p - 1 - m];
    }
    // Periodization: periodic over the signal padded to even length with its last sample.
    long long p = n + (n & 1);
    long long m = ((i % p) + p) % p;
    return x[m < n ? m : n - 1];
}

// a[o] = sum_j dec_lo[j] x~[2o + shift - j], d likewise with dec_hi.
extern "C" __global__ void dwt_level(const float* __restrict__ in, long long in_off,
                                     long long in_stride, long long n, long long rows,
                                     float* __restrict__ out_a, long long a_off,
                                     long long a_stride, float* __restrict__ out_d,
                                     long long d_off, long long d_stride, long long len,
                                     const float* __restrict__ filters, int flen, int mode,
                                     int shift) {
    long long total = rows * len;
    const float* lo = filters;
    const float* hi = filters + flen;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        long long r = i / len;
        long long o = i - r * len;
        const float* x = in + in_off + r * in_stride;
        float a = 0.0f, d = 0.0f;
        long long first = 2 * o + shift;
        for (int j = 0; j < flen; ++j) {
            float v = extended(x, n, first - j, mode);
            a = fmaf(lo[j], v, a);
            d = fmaf(hi[j], v, d);
        }
        out_a[a_off + r * a_stride + o] = a;
        out_d[d_off + r * d_stride + o] = d;
    }
}

// One synthesis level into out_len samples (the forward input's length).
// Symmetric / zero: pywt's idwt, x[2m + e] = sum_k rec[2k + e] c[m + F/2 - 1 - k].
// Periodization: the transpose of the periodic analysis step.
extern "C" __global__ void idwt_level(const float* __restrict__ coef_a, long long a_off,
                                      long long a_stride, const float* __restrict__ coef_d,
                                      long long d_off, long long d_stride, long long len,
                                      long long rows, float* __restrict__ out, long long out_off,
                                      long long out_stride, long long out_len,
                                      const float* __restrict__ filters, int flen,
                                      int periodization) {
    long long total = rows * out_len;
    const float* dec_lo = filters;
    const float* dec_hi = filters + flen;
    const float* rec_lo = filters + 2 * flen;
    const float* rec_hi = filters + 3 * flen;
    int half = flen / 2;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        long long r = i / out_len;
        long long t = i - r * out_len;
        const float* a = coef_a + a_off + r * a_stride;
        const float* d = coef_d + d_off + r * d_stride;
        float acc = 0.0f;
        if (periodization) {
            int e = (int)(t & 1);
            int jp = ((half - e) % 2 + 2) % 2;
            for (int j = jp; j < flen; j += 2) {
                long long o2 = t - half + j;  // even by the choice of jp
                long long o = ((o2 / 2) % len + len) % len;
                acc = fmaf(dec_lo[j], a[o], acc);
                acc = fmaf(dec_hi[j], d[o], acc);
            }
        } else {
            long long m = t / 2;
            int e = (int)(t & 1);
            for (int k = 0; k < half; ++k) {
                long long c = m + half - 1 - k;
                if (c >= 0 && c < len) {
                    acc = fmaf(rec_lo[2 * k + e], a[c], acc);
                    acc = fmaf(rec_hi[2 * k + e], d[c], acc);
                }
            }
        }
        out[out_off + r * out_stride + t] = acc;
    }
}

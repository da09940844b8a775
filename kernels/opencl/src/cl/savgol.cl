// Savitzky-Golay filter, one signal per row (semantics: serrano_kernel_core::savgol).
// Two kernels over (outputs, rows) ranges, one work-item per output: interior outputs (a dot
// product of the centre coefficients with the row) and edge outputs (mode interp's edge-fit
// matrices, half x w each in global memory, or the extended signal through sg_extend).
// mode: 0 interp, 1 mirror, 2 nearest, 3 constant, 4 wrap. hw is w / 2 (`half` is a type here).
// The *_const kernels take the centre coefficients in __constant memory (windows that fit the
// device's constant buffer), the *_global ones in __global memory.

// Index of extended position j in a row of n samples, or -1 for the fill value 0.
inline long sg_extend(int mode, long j, long n) {
    if (j >= 0 && j < n) return j;
    if (mode == 1) {
        if (n == 1) return 0;
        long period = 2 * (n - 1);
        long m = j % period;
        if (m < 0) m += period;
        return m < n ? m : period - m;
    }
    if (mode == 2) return j < 0 ? 0 : n - 1;
    if (mode == 4) {
        long m = j % n;
        return m < 0 ? m + n : m;
    }
    return -1;
}

inline float sg_edge_fit(__global const float* xr, long n, long i, int w,
                         __global const float* left, __global const float* right) {
    int hw = w / 2;
    __global const float* c;
    __global const float* x;
    if (i < hw) {
        c = left + i * w;
        x = xr;
    } else {
        c = right + (i - (n - hw)) * w;
        x = xr + (n - w);
    }
    float acc = 0.0f;
    for (int k = 0; k < w; ++k) acc = fma(c[k], x[k], acc);
    return acc;
}

// Interior outputs hw .. n - hw of every row (work-item (j, row) computes output hw + j): a plain
// dot product without branches, which CPU runtimes vectorise across work-items.
#define SG_INTERIOR(NAME, SPACE)                                                                \
    __kernel void NAME(__global const float* x, __global float* y, long n, int w,               \
                       SPACE const float* coeffs) {                                             \
        long j = get_global_id(0);                                                              \
        long row = get_global_id(1);                                                            \
        if (j >= n - (w - 1)) return;                                                           \
        __global const float* xs = x + row * n + j;                                             \
        float acc = 0.0f;                                                                       \
        for (int k = 0; k < w; ++k) acc = fma(coeffs[k], xs[k], acc);                           \
        y[row * n + j + w / 2] = acc;                                                           \
    }

// Edge outputs: work-item (e, row) computes output e if e < hw, else output n - 2 hw + e (when
// the row is shorter than the window, every output: e < n). Mode interp uses the edge fits.
#define SG_EDGES(NAME, SPACE)                                                                   \
    __kernel void NAME(__global const float* x, __global float* y, long n, int w, int mode,     \
                       SPACE const float* coeffs, __global const float* left,                   \
                       __global const float* right) {                                           \
        long e = get_global_id(0);                                                              \
        long row = get_global_id(1);                                                            \
        int hw = w / 2;                                                                         \
        long i;                                                                                 \
        if (n <= 2 * (long)hw) {                                                                \
            if (e >= n) return;                                                                 \
            i = e;                                                                              \
        } else {                                                                                \
            if (e >= 2 * (long)hw) return;                                                      \
            i = e < hw ? e : n - 2 * (long)hw + e;                                              \
        }                                                                                       \
        __global const float* xr = x + row * n;                                                 \
        float acc = 0.0f;                                                                       \
        if (mode == 0) {                                                                        \
            acc = sg_edge_fit(xr, n, i, w, left, right);                                        \
        } else {                                                                                \
            for (int k = 0; k < w; ++k) {                                                       \
                long idx = sg_extend(mode, i - hw + k, n);                                      \
                acc = fma(coeffs[k], idx >= 0 ? xr[idx] : 0.0f, acc);                           \
            }                                                                                   \
        }                                                                                       \
        y[row * n + i] = acc;                                                                   \
    }

SG_INTERIOR(savgol_interior_const, __constant)
SG_INTERIOR(savgol_interior_global, __global)
SG_EDGES(savgol_edges_const, __constant)
SG_EDGES(savgol_edges_global, __global)

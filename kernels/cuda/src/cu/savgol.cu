// Savitzky-Golay filter, one signal per row (semantics: serrano_kernel_core::savgol).
//
// savgol_tiled: one block per tile of SG_TILE outputs of one row. The block copies the tile's
// extended input (SG_TILE + w - 1 samples, edge mode applied) into shared memory once, then every
// thread computes SG_OUTS outputs spaced by the block size (no bank conflicts) as a dot product
// with the centre coefficients, which sit in constant memory (every thread reads the same one:
// a broadcast). With mode interp (0) the first and last w/2 outputs of a row use the edge-fit
// matrices (global memory) on the row's first / last w samples instead.
// savgol_direct: the same filter without shared memory or constant memory, for windows too long
// for either (w > SG_MAX_CONST).

#define SG_MAX_CONST 4095
#define SG_THREADS 256
#define SG_OUTS 4
#define SG_TILE (SG_THREADS * SG_OUTS)

__constant__ float SG_COEFFS[SG_MAX_CONST];

// Index of extended position j in a row of n samples, or -1 for the fill value 0.
// mode: 0 interp (positions outside are never used), 1 mirror, 2 nearest, 3 constant, 4 wrap.
__device__ __forceinline__ long long sg_extend(int mode, long long j, long long n) {
    if (j >= 0 && j < n) return j;
    switch (mode) {
    case 1: {
        if (n == 1) return 0;
        long long period = 2 * (n - 1);
        long long m = j % period;
        if (m < 0) m += period;
        return m < n ? m : period - m;
    }
    case 2:
        return j < 0 ? 0 : n - 1;
    case 4: {
        long long m = j % n;
        return m < 0 ? m + n : m;
    }
    default:
        return -1;
    }
}

// Output i of row xr with mode interp's edge fits (i < half or i >= n - half).
__device__ __forceinline__ float sg_edge(const float* __restrict__ xr, long long n, long long i,
                                         int w, const float* __restrict__ left,
                                         const float* __restrict__ right) {
    int half = w / 2;
    const float* c;
    const float* x;
    if (i < half) {
        c = left + (long long)i * w;
        x = xr;
    } else {
        c = right + (long long)(i - (n - half)) * w;
        x = xr + (n - w);
    }
    float acc = 0.0f;
    for (int k = 0; k < w; ++k) acc = fmaf(__ldg(c + k), __ldg(x + k), acc);
    return acc;
}

extern "C" __global__ void savgol_tiled(const float* __restrict__ x, float* __restrict__ y,
                                        long long rows, long long n, int w, int mode,
                                        const float* __restrict__ left,
                                        const float* __restrict__ right) {
    extern __shared__ float tile[];
    const int half = w / 2;
    const int len = SG_TILE + w - 1;
    const long long tiles_per_row = (n + SG_TILE - 1) / SG_TILE;
    const long long total = rows * tiles_per_row;
    for (long long b = blockIdx.x; b < total; b += gridDim.x) {
        const long long row = b / tiles_per_row;
        const long long start = (b % tiles_per_row) * SG_TILE;
        const float* xr = x + row * n;
        float* yr = y + row * n;
        const long long from = start - half;
        for (int j = threadIdx.x; j < len; j += blockDim.x) {
            long long idx = sg_extend(mode, from + j, n);
            tile[j] = idx >= 0 ? __ldg(xr + idx) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int m = 0; m < SG_OUTS; ++m) {
            const int local = threadIdx.x + m * blockDim.x;
            const long long i = start + local;
            if (i < n) {
                float acc;
                if (mode == 0 && (i < half || i >= n - half)) {
                    acc = sg_edge(xr, n, i, w, left, right);
                } else {
                    acc = 0.0f;
                    const float* t = tile + local;
#pragma unroll 8
                    for (int k = 0; k < w; ++k) acc = fmaf(SG_COEFFS[k], t[k], acc);
                }
                yr[i] = acc;
            }
        }
        __syncthreads();
    }
}

extern "C" __global__ void savgol_direct(const float* __restrict__ x, float* __restrict__ y,
                                         long long rows, long long n, int w, int mode,
                                         const float* __restrict__ coeffs,
                                         const float* __restrict__ left,
                                         const float* __restrict__ right) {
    const int half = w / 2;
    const long long total = rows * n;
    for (long long g = blockIdx.x * (long long)blockDim.x + threadIdx.x; g < total;
         g += (long long)gridDim.x * blockDim.x) {
        const long long row = g / n;
        const long long i = g % n;
        const float* xr = x + row * n;
        float acc = 0.0f;
        if (mode == 0 && (i < half || i >= n - half)) {
            acc = sg_edge(xr, n, i, w, left, right);
        } else {
            for (int k = 0; k < w; ++k) {
                long long idx = sg_extend(mode, i - half + k, n);
                float v = idx >= 0 ? __ldg(xr + idx) : 0.0f;
                acc = fmaf(__ldg(coeffs + k), v, acc);
            }
        }
        y[g] = acc;
    }
}

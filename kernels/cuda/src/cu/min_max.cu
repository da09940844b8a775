// Min-max scaling (sklearn MinMaxScaler semantics, serrano_kernel_core::min_max) in two
// passes: partial NaN-ignoring min/max per (group, chunk) with a block reduction, a tiny
// finalize per group, then one element-wise scaling pass. fminf/fmaxf return the other
// operand when one is NaN, which is exactly "ignore NaN". An infinite value sets *flag.

// Columns: block (32, 8) covers 32 columns x one chunk of rows; coalesced along the row.
// pmin/pmax: nchunks x cols.
extern "C" __global__ void minmax_cols_partial(const float* __restrict__ x, long long rows,
                                               long long cols, long long rows_per_chunk,
                                               float* __restrict__ pmin,
                                               float* __restrict__ pmax, int* flag) {
    __shared__ float smin[8][32];
    __shared__ float smax[8][32];
    long long c = blockIdx.x * 32LL + threadIdx.x;
    long long chunk = blockIdx.y;
    long long r0 = chunk * rows_per_chunk;
    long long r1 = min(rows, r0 + rows_per_chunk);
    float lo = __int_as_float(0x7f800000), hi = -__int_as_float(0x7f800000);
    bool inf = false;
    if (c < cols) {
        for (long long r = r0 + threadIdx.y; r < r1; r += 8) {
            float v = x[r * cols + c];
            lo = fminf(lo, v);
            hi = fmaxf(hi, v);
            inf |= isinf(v);
        }
    }
    if (inf) atomicOr(flag, 1);
    smin[threadIdx.y][threadIdx.x] = lo;
    smax[threadIdx.y][threadIdx.x] = hi;
    __syncthreads();
    if (threadIdx.y == 0 && c < cols) {
        for (int i = 1; i < 8; ++i) {
            lo = fminf(lo, smin[i][threadIdx.x]);
            hi = fmaxf(hi, smax[i][threadIdx.x]);
        }
        pmin[chunk * cols + c] = lo;
        pmax[chunk * cols + c] = hi;
    }
}

// Rows (and "all" as one long row): work item = (row, chunk of chunk_len values), one block
// each, 256 threads. pmin/pmax: rows x nchunks.
extern "C" __global__ void minmax_rows_partial(const float* __restrict__ x, long long rows,
                                               long long cols, long long chunk_len,
                                               long long nchunks, float* __restrict__ pmin,
                                               float* __restrict__ pmax, int* flag) {
    __shared__ float smin[256];
    __shared__ float smax[256];
    long long items = rows * nchunks;
    for (long long item = blockIdx.x; item < items; item += gridDim.x) {
        long long r = item / nchunks;
        long long chunk = item - r * nchunks;
        long long c0 = chunk * chunk_len;
        long long c1 = min(cols, c0 + chunk_len);
        const float* row = x + r * cols;
        float lo = __int_as_float(0x7f800000), hi = -__int_as_float(0x7f800000);
        bool inf = false;
        for (long long c = c0 + threadIdx.x; c < c1; c += blockDim.x) {
            float v = row[c];
            lo = fminf(lo, v);
            hi = fmaxf(hi, v);
            inf |= isinf(v);
        }
        if (inf) atomicOr(flag, 1);
        smin[threadIdx.x] = lo;
        smax[threadIdx.x] = hi;
        __syncthreads();
        for (int s = blockDim.x / 2; s > 0; s >>= 1) {
            if (threadIdx.x < s) {
                smin[threadIdx.x] = fminf(smin[threadIdx.x], smin[threadIdx.x + s]);
                smax[threadIdx.x] = fmaxf(smax[threadIdx.x], smax[threadIdx.x + s]);
            }
            __syncthreads();
        }
        if (threadIdx.x == 0) {
            pmin[item] = smin[0];
            pmax[item] = smax[0];
        }
        __syncthreads();
    }
}

// maps[2g] = lo, maps[2g + 1] = scale of group g, from its nchunks partials at
// p[g * group_stride + k * chunk_stride]. No finite value: NaN map (the group is all NaN).
extern "C" __global__ void minmax_finalize(const float* __restrict__ pmin,
                                           const float* __restrict__ pmax, long long groups,
                                           long long nchunks, long long group_stride,
                                           long long chunk_stride, double target_min,
                                           double target_max, double* __restrict__ maps) {
    for (long long g = blockIdx.x * (long long)blockDim.x + threadIdx.x; g < groups;
         g += (long long)gridDim.x * blockDim.x) {
        float lo = __int_as_float(0x7f800000), hi = -__int_as_float(0x7f800000);
        for (long long k = 0; k < nchunks; ++k) {
            lo = fminf(lo, pmin[g * group_stride + k * chunk_stride]);
            hi = fmaxf(hi, pmax[g * group_stride + k * chunk_stride]);
        }
        double dlo = lo, dhi = hi;
        double nan = __longlong_as_double(0x7ff8000000000000LL);
        if (dlo > dhi) {
            maps[2 * g] = nan;
            maps[2 * g + 1] = nan;
        } else {
            double range = dhi - dlo;
            maps[2 * g] = dlo;
            maps[2 * g + 1] = range > 0.0 ? (target_max - target_min) / range : 0.0;
        }
    }
}

// y = min + (x - lo) * scale with the map of the element's group (axis 0: column, 1: row,
// 2: all).
extern "C" __global__ void minmax_apply(const float* __restrict__ x, long long rows,
                                        long long cols, int axis,
                                        const double* __restrict__ maps, double target_min,
                                        float* __restrict__ out) {
    long long total = rows * cols;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        long long g = axis == 0 ? i % cols : (axis == 1 ? i / cols : 0);
        out[i] = (float)(target_min + ((double)x[i] - maps[2 * g]) * maps[2 * g + 1]);
    }
}

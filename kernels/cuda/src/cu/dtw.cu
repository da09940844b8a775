// CUDA dtw: one thread per pair (series ia of a, series ib of b), for the all-pairs shape of a
// DTW k-means assignment (many pairs, so every thread has its own DP).
//
// Each thread walks the DP table in column strips of DTW_TJ columns: the strip's row of DP values
// and the strip's b values live in registers (fully unrolled loops), rows are scanned top to
// bottom, and the strip's last column is handed to the next strip through `col`, a per-thread
// scratch column of L1 values laid out `col[i * nthreads + tid]` so a warp's accesses coalesce.
// Rows of a strip outside the band are skipped; rows only partly inside it are masked.
//
// Layouts: aT is a transposed (aT[i * na + ia]) so that a warp, whose threads take consecutive ia
// for the same ib, reads one coalesced line per row; b is row-major (b[ib * L2 + j]), read as a
// warp-wide broadcast. out is na x nb row-major.

#define DTW_TJ 32
#define DTW_INF __int_as_float(0x7f800000)

// One DP cell from its three predecessors: (x - y)^2 + min(up, diag, left), or +inf outside
// the band. Both kernels unroll their strips over it, so the values stay in registers.
__device__ __forceinline__ float dtw_cell(float x, float y, float up, float diag, float left,
                                         bool inside)
{
    const float d = x - y;
    const float m = fminf(fminf(up, diag), left);
    return inside ? fmaf(d, d, m) : DTW_INF;
}

extern "C" __global__ void dtw_pairs(const float* __restrict__ aT,
                                     const float* __restrict__ b,
                                     float* __restrict__ out,
                                     float* __restrict__ col,
                                     long long na, long long nb,
                                     int L1, int L2, int w)
{
    const long long nthreads = (long long)gridDim.x * blockDim.x;
    const long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long pairs = na * nb;
    if (L1 <= 0 || L2 <= 0 || w < 0) return;

    for (long long pair = tid; pair < pairs; pair += nthreads) {
        // Consecutive threads: consecutive ia, same ib.
        const long long ib = pair / na;
        const long long ia = pair - ib * na;
        const float* __restrict__ bs = b + ib * (long long)L2;
        float result = DTW_INF;

        for (int j0 = 0; j0 < L2; j0 += DTW_TJ) {
            float bj[DTW_TJ];
            float r[DTW_TJ];
#pragma unroll
            for (int t = 0; t < DTW_TJ; ++t) {
                // Columns past L2 only feed columns further right: any value will do.
                bj[t] = (j0 + t < L2) ? bs[j0 + t] : 0.0f;
                r[t] = DTW_INF;  // row i_lo - 1 is outside the band (or row -1)
            }
            const int i_lo = max(0, j0 - w);
            const int i_hi = min(L1 - 1, j0 + DTW_TJ - 1 + w);
            const bool last_strip = j0 + DTW_TJ >= L2;
            // Rows whose strip cells all lie inside the band need no mask.
            const int full_lo = j0 + DTW_TJ - 1 - w;
            const int full_hi = j0 + w;
            // D(i_lo - 1, j0 - 1): 0 for the virtual start cell, else from the previous strip.
            float diag;
            if (j0 == 0) {
                diag = 0.0f;
            } else if (i_lo == 0) {
                diag = DTW_INF;
            } else {
                diag = col[(long long)(i_lo - 1) * nthreads + tid];
            }
            for (int i = i_lo; i <= i_hi; ++i) {
                const long long ci = (long long)i * nthreads + tid;
                // D(i, j0 - 1); cells right of the previous strip's band were never written.
                const float left0 = (j0 == 0 || i > j0 - 1 + w) ? DTW_INF : col[ci];
                const float ai = aT[(long long)i * na + ia];
                float left = left0;
                float dg = diag;
                if (i >= full_lo && i <= full_hi) {
#pragma unroll
                    for (int t = 0; t < DTW_TJ; ++t) {
                        const float c = dtw_cell(ai, bj[t], r[t], dg, left, true);
                        dg = r[t];
                        r[t] = c;
                        left = c;
                    }
                } else {
#pragma unroll
                    for (int t = 0; t < DTW_TJ; ++t) {
                        const int j = j0 + t;
                        const float c = dtw_cell(ai, bj[t], r[t], dg, left, j >= i - w && j <= i + w);
                        dg = r[t];
                        r[t] = c;
                        left = c;
                    }
                }
                if (!last_strip) col[ci] = r[DTW_TJ - 1];
                diag = left0;
            }
            if (last_strip) {
                // Row L1 - 1 is the strip's last row: w >= |L1 - L2| puts it inside i_hi.
                const int tl = L2 - 1 - j0;
#pragma unroll
                for (int t = 0; t < DTW_TJ; ++t) {
                    if (t == tl) result = r[t];
                }
            }
        }
        out[ia * nb + ib] = sqrtf(result);
    }
}

// Few pairs (fewer than the GPU has threads to keep busy): a warp per pair, walking the table in
// strips of 32 * DTW_S columns. Lane t owns DTW_S columns of the strip (values in registers) and
// processes row i at step i + t: it takes D(i, first column - 1) from lane t - 1, which computed
// it one step earlier (a shuffle per step), so the warp sweeps anti-diagonals of column blocks.
// Lane 0 reads the strip's left boundary from `col` (per-warp scratch column of L1 values),
// lane 31 writes the strip's right boundary there for the next strip.
// Layouts: a and b row-major; out na x nb row-major.

#define DTW_S 8
#define DTW_FULL_MASK 0xffffffffu

extern "C" __global__ void dtw_pairs_warp(const float* __restrict__ a,
                                          const float* __restrict__ b,
                                          float* __restrict__ out,
                                          float* __restrict__ col,
                                          long long na, long long nb,
                                          int L1, int L2, int w)
{
    const int lane = threadIdx.x & 31;
    const long long warp = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const long long nwarps = ((long long)gridDim.x * blockDim.x) >> 5;
    const long long pairs = na * nb;
    if (L1 <= 0 || L2 <= 0 || w < 0) return;
    const int strip = 32 * DTW_S;
    float* __restrict__ cw = col + warp * (long long)L1;

    // The loop bounds are warp-uniform, so every lane reaches every shuffle.
    for (long long pair = warp; pair < pairs; pair += nwarps) {
        const long long ia = pair / nb;
        const long long ib = pair - ia * nb;
        const float* __restrict__ xs = a + ia * (long long)L1;
        const float* __restrict__ ys = b + ib * (long long)L2;
        float result = DTW_INF;

        for (int j0 = 0; j0 < L2; j0 += strip) {
            const int jl = j0 + lane * DTW_S;
            float yv[DTW_S];
            float r[DTW_S];
#pragma unroll
            for (int t = 0; t < DTW_S; ++t) {
                yv[t] = (jl + t < L2) ? ys[jl + t] : 0.0f;
                r[t] = DTW_INF;  // row i_lo - 1: outside the band (or row -1)
            }
            const int i_lo = max(0, j0 - w);
            const int i_hi = min(L1 - 1, j0 + strip - 1 + w);
            const bool last_strip = j0 + strip >= L2;
            // D(i_lo - 1, jl - 1): the virtual start cell for lane 0 of the first strip, the
            // previous strip's boundary for lane 0 of later strips, outside the band otherwise.
            float diag = DTW_INF;
            if (lane == 0) {
                if (j0 == 0) {
                    diag = 0.0f;
                } else if (i_lo > 0) {
                    diag = cw[i_lo - 1];
                }
            }
            float carry = DTW_INF;  // D(i, jl - 1) for this step's row, from lane - 1
            const int steps = i_hi - i_lo + 1 + 31;
            for (int s = 0; s < steps; ++s) {
                const int i = i_lo + s - lane;
                const bool active = i >= i_lo && i <= i_hi;
                float last = DTW_INF;
                if (active) {
                    float left = carry;
                    if (lane == 0) {
                        left = (j0 == 0 || i > j0 - 1 + w) ? DTW_INF : cw[i];
                    }
                    const float xi = xs[i];
                    float lf = left;
                    float dg = diag;
#pragma unroll
                    for (int t = 0; t < DTW_S; ++t) {
                        const int j = jl + t;
                        const float c = dtw_cell(xi, yv[t], r[t], dg, lf, j >= i - w && j <= i + w);
                        dg = r[t];
                        r[t] = c;
                        lf = c;
                    }
                    last = r[DTW_S - 1];
                    diag = left;
                    if (lane == 31 && !last_strip) cw[i] = last;
                }
                carry = __shfl_up_sync(DTW_FULL_MASK, last, 1);
            }
            // Lane 31's boundary writes must be visible to lane 0 in the next strip.
            __syncwarp();
            if (last_strip) {
                // Every lane's last active row was L1 - 1 (w >= |L1 - L2|).
                const int owner = (L2 - 1 - j0) / DTW_S;
                const int tl = (L2 - 1 - j0) - owner * DTW_S;
                float mine = DTW_INF;
#pragma unroll
                for (int t = 0; t < DTW_S; ++t) {
                    if (t == tl) mine = r[t];
                }
                result = __shfl_sync(DTW_FULL_MASK, mine, owner);
            }
        }
        if (lane == 0) out[ia * nb + ib] = sqrtf(result);
    }
}

// Exact kNN on OpenCL: distance scores of a block of points against a chunk of queries, then
// a per-query selection of the best `kc` candidates (a work-group per query), merged across
// blocks in global memory. The host re-ranks the candidates by exact distance.
//
// Scores (smaller is nearer; ranking only):
//   metric 0: squared Euclidean, summed directly (no expansion: no cancellation)
//   metric 1: -dot(q, p) / (|q| |p|)  (inverse norms precomputed; 0 for zero vectors)
//   metric 2: L1

#define TILE 16

// A 16 x 16 tile of (points, queries) per work-group, features staged through local memory.
// The global size is rounded up to whole tiles; out-of-range rows load zeros and store nothing.
__kernel __attribute__((reqd_work_group_size(TILE, TILE, 1)))
void knn_scores(__global const float* points,   // n x d
                __global const float* queries,  // qc x d (this chunk)
                __global const float* inv_pn,   // n (metric 1)
                __global const float* inv_qn,   // qc (metric 1)
                __global float* scores,         // qc x b
                const int d,
                const int b,                    // scores row stride
                const int valid,                // points in this block
                const int qc,
                const uint base,                // first point of the block
                const int metric)
{
    __local float ps[TILE][TILE + 1];
    __local float qs[TILE][TILE + 1];
    const int tx = get_local_id(0);
    const int ty = get_local_id(1);
    const int p = get_group_id(0) * TILE + tx;
    const int q = get_group_id(1) * TILE + ty;
    const int prow = get_group_id(0) * TILE + ty;
    const int qrow = get_group_id(1) * TILE + ty;
    float acc = 0.0f;
    for (int t0 = 0; t0 < d; t0 += TILE) {
        ps[ty][tx] = (prow < valid && t0 + tx < d)
            ? points[((long)base + prow) * (long)d + t0 + tx] : 0.0f;
        qs[ty][tx] = (qrow < qc && t0 + tx < d) ? queries[(long)qrow * (long)d + t0 + tx] : 0.0f;
        barrier(CLK_LOCAL_MEM_FENCE);
        const int lim = min(TILE, d - t0);
        if (metric == 0) {
            for (int t = 0; t < lim; ++t) {
                const float diff = ps[tx][t] - qs[ty][t];
                acc = fma(diff, diff, acc);
            }
        } else if (metric == 1) {
            for (int t = 0; t < lim; ++t) acc = fma(ps[tx][t], qs[ty][t], acc);
        } else {
            for (int t = 0; t < lim; ++t) acc += fabs(ps[tx][t] - qs[ty][t]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (p < valid && q < qc) {
        if (metric == 1) acc = -acc * inv_pn[base + p] * inv_qn[q];
        scores[(long)q * (long)b + p] = acc;
    }
}

#define SEL_WG 64
#define SEL_BUF 256

// One work-group per query: candidates below the current threshold are appended to a local
// buffer; work-item 0 merges the buffer into the sorted list (ties: lower index first).
__kernel __attribute__((reqd_work_group_size(SEL_WG, 1, 1)))
void knn_select(__global const float* scores,  // qc x b
                const int b,
                const int valid,
                const uint base,
                __global float* best_s,        // qc x kc, sorted, +inf padded
                __global uint* best_i,
                const int kc,
                __local float* ls,             // kc
                __local uint* li)              // kc
{
    __local float bs[SEL_BUF];
    __local uint bi[SEL_BUF];
    __local int count;
    __local float thr;
    const int q = get_group_id(0);
    const int lid = get_local_id(0);
    const long lbase = (long)q * (long)kc;
    for (int c = lid; c < kc; c += SEL_WG) {
        ls[c] = best_s[lbase + c];
        li[c] = best_i[lbase + c];
    }
    if (lid == 0) {
        count = 0;
        thr = best_s[lbase + kc - 1];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const long srow = (long)q * (long)b;
    for (int start = 0; start < valid; start += SEL_WG) {
        const int p = start + lid;
        if (p < valid) {
            const float s = scores[srow + p];
            if (s < thr) {
                const int slot = atomic_inc(&count);
                bs[slot] = s;
                bi[slot] = base + (uint)p;
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        const int pending = count;
        barrier(CLK_LOCAL_MEM_FENCE);
        if (pending > SEL_BUF - SEL_WG || (start + SEL_WG >= valid && pending > 0)) {
            if (lid == 0) {
                for (int c = 0; c < pending; ++c) {
                    const float s = bs[c];
                    const uint id = bi[c];
                    if (s > ls[kc - 1] || (s == ls[kc - 1] && id >= li[kc - 1])) continue;
                    int pos = kc - 1;
                    while (pos > 0 && (s < ls[pos - 1] || (s == ls[pos - 1] && id < li[pos - 1]))) {
                        ls[pos] = ls[pos - 1];
                        li[pos] = li[pos - 1];
                        --pos;
                    }
                    ls[pos] = s;
                    li[pos] = id;
                }
                count = 0;
                thr = ls[kc - 1];
            }
            barrier(CLK_LOCAL_MEM_FENCE);
        }
    }
    for (int c = lid; c < kc; c += SEL_WG) {
        best_s[lbase + c] = ls[c];
        best_i[lbase + c] = li[c];
    }
}

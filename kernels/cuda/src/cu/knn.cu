// Exact kNN on CUDA. The host computes raw scores for a block of points against a chunk of
// queries with cuBLAS SGEMM (Euclidean: -2 (q - m).p; cosine: -(q/|q|).p) or with knn_l1
// (Manhattan), laid out as scores[q * b + p]. knn_select turns raw scores into ranking scores
// (mode 0: add[p] + raw with add = |p - m|^2; mode 1: raw * add[p] with add = 1/|p|; mode 2:
// raw) and merges them into each query's sorted best-kc list (a block per query). The host
// re-ranks the final candidates by exact distance. The selection mirrors src/cl/knn.cl, which
// the OpenCL tests exercise.

#define SEL_THREADS 128
#define SEL_BUF 512

extern "C" __global__ void knn_l1(const float* __restrict__ points,   // n x d (whole set)
                                  const float* __restrict__ queries,  // qc x d
                                  float* __restrict__ scores,         // qc x b
                                  int d, int b, int valid, int qc, long long base)
{
    // 16 x 16 tiles of (points, queries) with the features staged through shared memory.
    __shared__ float ps[16][17];
    __shared__ float qs[16][17];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int p = blockIdx.x * 16 + tx;
    const int q = blockIdx.y * 16 + ty;
    float acc = 0.0f;
    for (int t0 = 0; t0 < d; t0 += 16) {
        const int prow = blockIdx.x * 16 + ty;
        const int qrow = blockIdx.y * 16 + ty;
        ps[ty][tx] = (prow < valid && t0 + tx < d)
            ? points[(base + prow) * (long long)d + t0 + tx] : 0.0f;
        qs[ty][tx] = (qrow < qc && t0 + tx < d) ? queries[(long long)qrow * d + t0 + tx] : 0.0f;
        __syncthreads();
        const int lim = min(16, d - t0);
        for (int t = 0; t < lim; ++t) acc += fabsf(ps[tx][t] - qs[ty][t]);
        __syncthreads();
    }
    if (p < valid && q < qc) scores[(long long)q * b + p] = acc;
}

extern "C" __global__ void knn_select(const float* __restrict__ scores,  // qc x b
                                      const float* __restrict__ add,     // n (modes 0, 1)
                                      int b, int valid, long long base, int mode,
                                      float* __restrict__ best_s,        // qc x kc
                                      unsigned int* __restrict__ best_i,
                                      int kc)
{
    extern __shared__ unsigned char smem[];
    float* ls = reinterpret_cast<float*>(smem);
    unsigned int* li = reinterpret_cast<unsigned int*>(smem + sizeof(float) * kc);
    __shared__ float bs[SEL_BUF];
    __shared__ unsigned int bi[SEL_BUF];
    __shared__ int count;
    __shared__ float thr;
    const int q = blockIdx.x;
    const int tid = threadIdx.x;
    const long long lbase = (long long)q * kc;
    for (int c = tid; c < kc; c += SEL_THREADS) {
        ls[c] = best_s[lbase + c];
        li[c] = best_i[lbase + c];
    }
    if (tid == 0) {
        count = 0;
        thr = best_s[lbase + kc - 1];
    }
    __syncthreads();
    const long long srow = (long long)q * b;
    for (int start = 0; start < valid; start += SEL_THREADS) {
        const int p = start + tid;
        if (p < valid) {
            const float raw = scores[srow + p];
            float s = raw;
            if (mode == 0) s = add[base + p] + raw;
            else if (mode == 1) s = raw * add[base + p];
            if (s < thr) {
                const int slot = atomicAdd(&count, 1);
                bs[slot] = s;
                bi[slot] = (unsigned int)(base + p);
            }
        }
        __syncthreads();
        const int pending = count;
        __syncthreads();
        if (pending > SEL_BUF - SEL_THREADS || (start + SEL_THREADS >= valid && pending > 0)) {
            if (tid == 0) {
                for (int c = 0; c < pending; ++c) {
                    const float s = bs[c];
                    const unsigned int id = bi[c];
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
            __syncthreads();
        }
    }
    for (int c = tid; c < kc; c += SEL_THREADS) {
        best_s[lbase + c] = ls[c];
        best_i[lbase + c] = li[c];
    }
}

extern "C" __global__ void knn_fill(float* s, unsigned int* i, long long len)
{
    const long long x = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (x < len) {
        s[x] = __int_as_float(0x7f800000);
        i[x] = 0xffffffffu;
    }
}

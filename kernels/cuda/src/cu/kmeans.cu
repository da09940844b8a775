// k-means on CUDA: the host runs the Lloyd loop (serrano_kernel_core::kmeans::lloyd). Per
// iteration: cuBLAS SGEMM gives raw = -2 x.c' for a block of points (c' = c - m, m a centring
// mean), kmeans_argmin picks each point's centroid by add[j] + raw (add = |c'|^2 + 2 m.c';
// ties -> lower index) and recomputes its exact squared distance; then kmeans_partial sums the
// points of each cluster per chunk (a thread per feature: fixed order, no atomics) and
// kmeans_reduce adds the chunks. Index arithmetic is 64-bit wherever n * d or n * k may exceed
// 2^31.

// One warp per point: lanes stride over the k scores, then reduce (value, index).
extern "C" __global__ void kmeans_argmin(const float* __restrict__ raw,   // rows x kpad
                                         const float* __restrict__ add,   // k
                                         const float* __restrict__ data,  // n x d
                                         const float* __restrict__ cent,  // k x d
                                         int rows, int kpad, int k, int d, long long base,
                                         unsigned int* __restrict__ labels,
                                         float* __restrict__ dist2)
{
    const long long warp = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (warp >= rows) return;
    const float* r = raw + warp * (long long)kpad;
    float best = __int_as_float(0x7f800000);
    int best_j = 0x7fffffff;
    for (int j = lane; j < k; j += 32) {
        const float s = add[j] + r[j];
        if (s < best) { best = s; best_j = j; }
    }
    for (int off = 16; off > 0; off >>= 1) {
        const float ov = __shfl_down_sync(0xffffffffu, best, off);
        const int oj = __shfl_down_sync(0xffffffffu, best_j, off);
        if (ov < best || (ov == best && oj < best_j)) { best = ov; best_j = oj; }
    }
    best_j = __shfl_sync(0xffffffffu, best_j, 0);
    if (best_j >= k) best_j = 0;
    const long long i = base + warp;
    const float* x = data + i * (long long)d;
    const float* c = cent + (long long)best_j * d;
    float acc = 0.0f;
    for (int t = lane; t < d; t += 32) {
        const float diff = x[t] - c[t];
        acc = fmaf(diff, diff, acc);
    }
    for (int off = 16; off > 0; off >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, off);
    if (lane == 0) {
        labels[i] = (unsigned int)best_j;
        dist2[i] = acc;
    }
}

// Squared distance of every point to one centre (k-means++).
extern "C" __global__ void kmeans_dist_to(const float* __restrict__ data, const float* __restrict__ c,
                                          int n, int d, float* __restrict__ out)
{
    const long long warp = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (warp >= n) return;
    const float* x = data + warp * (long long)d;
    float acc = 0.0f;
    for (int t = lane; t < d; t += 32) {
        const float diff = x[t] - c[t];
        acc = fmaf(diff, diff, acc);
    }
    for (int off = 16; off > 0; off >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, off);
    if (lane == 0) out[warp] = acc;
}

// Block c sums chunk c: thread t owns feature t (and t + blockDim.x, ...) of every cluster.
extern "C" __global__ void kmeans_partial(const float* __restrict__ data,
                                          const unsigned int* __restrict__ labels,
                                          const float* __restrict__ dist2,
                                          int n, int d, int k, int chunk,
                                          double* __restrict__ psum,             // chunks x k x d
                                          unsigned int* __restrict__ pcount,     // chunks x k
                                          double* __restrict__ pinertia)         // chunks
{
    const int c = blockIdx.x;
    const long long start = (long long)c * chunk;
    const long long end = min((long long)n, start + chunk);
    double* s = psum + (long long)c * k * d;
    for (int t = threadIdx.x; t < d; t += blockDim.x) {
        for (int j = 0; j < k; ++j) s[(long long)j * d + t] = 0.0;
        for (long long i = start; i < end; ++i) {
            const unsigned int l = labels[i];
            if (l < (unsigned int)k) s[(long long)l * d + t] += (double)data[i * d + t];
        }
    }
    if (threadIdx.x == 0) {
        unsigned int* cnt = pcount + (long long)c * k;
        for (int j = 0; j < k; ++j) cnt[j] = 0;
        double inertia = 0.0;
        for (long long i = start; i < end; ++i) {
            const unsigned int l = labels[i];
            if (l < (unsigned int)k) cnt[l] += 1;
            inertia += (double)dist2[i];
        }
        pinertia[c] = inertia;
    }
}

// Thread per (cluster, feature): adds the chunks in order. Element k*d of `sums` gets the
// inertia, counts go to `counts`.
extern "C" __global__ void kmeans_reduce(const double* __restrict__ psum,
                                         const unsigned int* __restrict__ pcount,
                                         const double* __restrict__ pinertia,
                                         int chunks, int k, int d,
                                         double* __restrict__ sums,            // k * d + 1
                                         unsigned long long* __restrict__ counts)  // k
{
    const long long x = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long kd = (long long)k * d;
    if (x < kd) {
        double acc = 0.0;
        for (int c = 0; c < chunks; ++c) acc += psum[(long long)c * kd + x];
        sums[x] = acc;
    }
    if (x < k) {
        unsigned long long acc = 0;
        for (int c = 0; c < chunks; ++c) acc += pcount[(long long)c * k + x];
        counts[x] = acc;
    }
    if (x == 0) {
        double acc = 0.0;
        for (int c = 0; c < chunks; ++c) acc += pinertia[c];
        sums[kd] = acc;
    }
}

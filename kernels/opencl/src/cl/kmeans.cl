// k-means on OpenCL: the host runs the Lloyd loop (serrano_kernel_core::kmeans::lloyd); the
// device assigns points and reduces per-cluster sums per chunk of points (no atomics: each
// work-item owns one feature of one chunk, so the order of additions is fixed).

// One work-item per point: exact squared Euclidean distance to every centroid (ties -> lower).
__kernel void kmeans_assign(__global const float* data,   // n x d
                            __global const float* cent,   // k x d
                            const int n,
                            const int d,
                            const int k,
                            __global uint* labels,        // n
                            __global float* dist2)        // n
{
    const int i = get_global_id(0);
    if (i >= n) return;
    const long row = (long)i * (long)d;
    float best = INFINITY;
    uint best_j = 0;
    for (int j = 0; j < k; ++j) {
        const long crow = (long)j * (long)d;
        float acc = 0.0f;
        for (int t = 0; t < d; ++t) {
            const float diff = data[row + t] - cent[crow + t];
            acc = fma(diff, diff, acc);
        }
        if (acc < best) {
            best = acc;
            best_j = (uint)j;
        }
    }
    labels[i] = best_j;
    dist2[i] = best;
}

// Work-item (t, c): feature t of chunk c (points [c*chunk, (c+1)*chunk)). Work-item t == 0
// also counts the points per cluster and sums their squared distances.
__kernel void kmeans_partial(__global const float* data,
                             __global const uint* labels,
                             __global const float* dist2,
                             const int n,
                             const int d,
                             const int k,
                             const int chunk,
                             __global float* psum,        // chunks x k x d
                             __global uint* pcount,       // chunks x k
                             __global float* pinertia)    // chunks
{
    const int t = get_global_id(0);
    const int c = get_global_id(1);
    if (t >= d) return;
    const long start = (long)c * (long)chunk;
    const long end = min((long)n, start + (long)chunk);
    __global float* s = psum + (long)c * (long)k * (long)d;
    for (int j = 0; j < k; ++j) s[(long)j * d + t] = 0.0f;
    for (long i = start; i < end; ++i) {
        const uint l = labels[i];
        if (l < (uint)k) s[(long)l * d + t] += data[i * (long)d + t];
    }
    if (t == 0) {
        __global uint* cnt = pcount + (long)c * (long)k;
        for (int j = 0; j < k; ++j) cnt[j] = 0;
        float inertia = 0.0f;
        for (long i = start; i < end; ++i) {
            const uint l = labels[i];
            if (l < (uint)k) cnt[l] += 1;
            inertia += dist2[i];
        }
        pinertia[c] = inertia;
    }
}

// Batched Kalman filters, one thread per track, on a structure-of-arrays layout so that a
// warp's 32 tracks read and write 32 consecutive floats per step (coalesced). The host-side
// row-per-track arrays are turned around by `kalman_transpose` on the device.
//
// The constant-velocity model is block-diagonal with one identical 2x2 block per axis
// (serrano_kernel_core::kalman), so the 4x2 update is unrolled to one 2x2 covariance
// recursion [pp, pv, vv] and a shared gain [kp, kv] applied per axis. The covariance is in
// double: the first update cancels a large velocity prior, which float cannot resolve.

// in: rows x cols -> out: cols x rows, through 32x33 shared tiles (no bank conflicts).
extern "C" __global__ void kalman_transpose(const float* __restrict__ in, long long rows,
                                            long long cols, float* __restrict__ out) {
    __shared__ float tile[32][33];
    long long row_tiles = (rows + 31) / 32;
    long long col_tiles = (cols + 31) / 32;
    for (long long rt = blockIdx.y; rt < row_tiles; rt += gridDim.y) {
        for (long long ct = blockIdx.x; ct < col_tiles; ct += gridDim.x) {
            long long r0 = rt * 32, c0 = ct * 32;
            for (int i = threadIdx.y; i < 32; i += blockDim.y) {
                long long r = r0 + i, c = c0 + threadIdx.x;
                if (r < rows && c < cols) tile[i][threadIdx.x] = in[r * cols + c];
            }
            __syncthreads();
            for (int i = threadIdx.y; i < 32; i += blockDim.y) {
                long long c = c0 + i, r = r0 + threadIdx.x;
                if (r < rows && c < cols) out[c * rows + r] = tile[threadIdx.x][i];
            }
            __syncthreads();
        }
    }
}

struct Model {
    double dt, q0, q1, q2, r, p00, p01, p11;
};

// One track of D measured axes. meas: (steps*D) x ntracks, out: (steps*S) x ntracks with
// S = 2D (velocity) or D (the constant level: dt = 0 and no velocity output).
template <int D>
__device__ void filter_track(const float* __restrict__ meas, long long ntracks, long long steps,
                             bool velocity, Model m, float* __restrict__ out, long long track) {
    const int S = velocity ? 2 * D : D;
    double x[D], v[D];
    double pp = 0.0, pv = 0.0, vv = 0.0;
    bool started = false;
    for (long long t = 0; t < steps; ++t) {
        float z[D];
        bool observed = true;
#pragma unroll
        for (int d = 0; d < D; ++d) {
            z[d] = meas[(t * D + d) * ntracks + track];
            observed = observed && !isnan(z[d]);
        }
        if (!started) {
            if (observed) {
                started = true;
#pragma unroll
                for (int d = 0; d < D; ++d) {
                    x[d] = (double)z[d];
                    v[d] = 0.0;
                }
                pp = m.p00;
                pv = m.p01;
                vv = m.p11;
            }
        } else {
            // Predict.
#pragma unroll
            for (int d = 0; d < D; ++d) x[d] += m.dt * v[d];
            double npp = pp + m.dt * (2.0 * pv + m.dt * vv) + m.q0;
            double npv = pv + m.dt * vv + m.q1;
            double nvv = vv + m.q2;
            pp = npp;
            pv = npv;
            vv = nvv;
            if (observed) {
                double s = pp + m.r;
                double kp = pp / s, kv = pv / s;
#pragma unroll
                for (int d = 0; d < D; ++d) {
                    double e = (double)z[d] - x[d];
                    x[d] += kp * e;
                    v[d] += kv * e;
                }
                double rs = m.r / s;
                vv = vv - kv * pv;
                pp = pp * rs;
                pv = pv * rs;
            }
        }
#pragma unroll
        for (int d = 0; d < D; ++d) {
            out[(t * S + d) * ntracks + track] = started ? (float)x[d] : __int_as_float(0x7fc00000);
            if (velocity)
                out[(t * S + D + d) * ntracks + track] =
                    started ? (float)v[d] : __int_as_float(0x7fc00000);
        }
    }
}

extern "C" __global__ void kalman_filter(const float* __restrict__ meas, long long ntracks,
                                         long long steps, int dims, int velocity, double dt,
                                         double q0, double q1, double q2, double r, double p00,
                                         double p01, double p11, float* __restrict__ out) {
    Model m = {dt, q0, q1, q2, r, p00, p01, p11};
    for (long long track = blockIdx.x * (long long)blockDim.x + threadIdx.x; track < ntracks;
         track += (long long)gridDim.x * blockDim.x) {
        switch (dims) {
            case 1: filter_track<1>(meas, ntracks, steps, velocity != 0, m, out, track); break;
            case 2: filter_track<2>(meas, ntracks, steps, velocity != 0, m, out, track); break;
            case 3: filter_track<3>(meas, ntracks, steps, velocity != 0, m, out, track); break;
            default: break;
        }
    }
}

// Helpers around cuFFT for the FFT kernel: staging (numpy's cut / zero-pad to the transform
// length, real DC and Nyquist terms for a complex-to-real input) and the norm's scaling.
// Complex values are float pairs (re, im), as cufftComplex lays them out. Sizes are 64-bit.

// Real rows of `in_cols` values -> rows of `n` reals: the first `used` copied, the rest zero.
extern "C" __global__ void fft_stage_real(const float* __restrict__ in, long long rows,
                                          long long in_cols, long long used,
                                          float* __restrict__ out, long long n) {
    long long total = rows * n;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        long long r = i / n;
        long long k = i - r * n;
        out[i] = k < used ? in[r * in_cols + k] : 0.0f;
    }
}

// Interleaved complex rows of `in_cols` floats -> rows of `m` complex values: the first `used`
// copied, the rest zero. `real_len` > 0 marks a half spectrum of a real signal of that length:
// the imaginary parts of DC and (even length) Nyquist are dropped, as numpy's irfft does.
extern "C" __global__ void fft_stage_complex(const float* __restrict__ in, long long rows,
                                             long long in_cols, long long used,
                                             float* __restrict__ out, long long m,
                                             long long real_len) {
    long long total = rows * m;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        long long r = i / m;
        long long k = i - r * m;
        float re = 0.0f, im = 0.0f;
        if (k < used) {
            re = in[r * in_cols + 2 * k];
            im = in[r * in_cols + 2 * k + 1];
        }
        if (real_len > 0 && (k == 0 || (real_len % 2 == 0 && k == real_len / 2))) {
            im = 0.0f;
        }
        out[2 * i] = re;
        out[2 * i + 1] = im;
    }
}

extern "C" __global__ void fft_scale(float* __restrict__ data, long long len, float scale) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < len;
         i += (long long)gridDim.x * blockDim.x) {
        data[i] *= scale;
    }
}

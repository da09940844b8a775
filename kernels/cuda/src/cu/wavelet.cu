// CUDA wavelet kernels (placeholder).

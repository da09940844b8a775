// CUDA fft kernels (placeholder).

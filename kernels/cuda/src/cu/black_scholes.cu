// CUDA black_scholes kernels (placeholder).

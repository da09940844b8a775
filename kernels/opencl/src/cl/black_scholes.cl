// OpenCL black_scholes kernels (placeholder).

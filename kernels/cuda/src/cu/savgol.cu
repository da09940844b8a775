// CUDA savgol kernels (placeholder).

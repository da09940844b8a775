// CUDA kalman kernels (placeholder).

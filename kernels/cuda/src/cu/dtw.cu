// CUDA dtw kernels (placeholder).

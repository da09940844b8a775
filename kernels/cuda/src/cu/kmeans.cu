// CUDA kmeans kernels (placeholder).

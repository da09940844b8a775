// CUDA knn kernels (placeholder).

// OpenCL knn kernels (placeholder).

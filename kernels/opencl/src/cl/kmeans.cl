// OpenCL kmeans kernels (placeholder).

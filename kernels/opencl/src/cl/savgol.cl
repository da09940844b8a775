// OpenCL savgol kernels (placeholder).

//! Kernel throughput in opencl mode vs notes/speeds.md (`--quick`, `--only knn,fft`).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    serrano_kernel_bench::main_for(serrano_kernel_bench::Mode::OpenCl);
}

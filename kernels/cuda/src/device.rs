//! One GPU: its context, a stream, and the modules compiled for it. Nothing here panics when the
//! machine has no driver, no GPU or no NVRTC: [`Gpu::probe`] reports why instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream, LaunchConfig};
use cudarc::nvrtc::{CompileOptions, Ptx};
use serrano_kernel_core::{KernelError, Result};

/// Whether the NVRTC library can be loaded (kernel sources can be compiled, GPU or not).
#[allow(unsafe_code)]
pub fn nvrtc_available() -> bool {
    // SAFETY: only tries to dlopen the library; no CUDA call is made.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// Whether the CUDA driver library can be loaded.
#[allow(unsafe_code)]
pub fn driver_available() -> bool {
    // SAFETY: only tries to dlopen the library; no CUDA call is made.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// Compiles CUDA C to PTX for `arch` (e.g. "sm_90"; None: NVRTC's default).
pub fn compile(name: &str, src: &str, arch: Option<&'static str>) -> Result<Ptx> {
    if !nvrtc_available() {
        return Err(KernelError::Device(
            "NVRTC (libnvrtc) is not installed".into(),
        ));
    }
    let opts = CompileOptions {
        arch,
        options: vec!["--std=c++17".into(), "-default-device".into()],
        ..Default::default()
    };
    cudarc::nvrtc::compile_ptx_with_opts(src, opts)
        .map_err(|e| KernelError::Device(format!("NVRTC failed on {name}.cu: {e}")))
}

pub struct Gpu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    name: String,
    arch: &'static str,
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("name", &self.name)
            .field("arch", &self.arch)
            .finish()
    }
}

/// NVRTC wants a `'static` arch string; these cover every GPU CUDA 13 supports (7.5 and newer,
/// checked in [`Gpu::probe`]).
fn arch_name(major: i32, minor: i32) -> &'static str {
    match (major, minor) {
        (7, 5) => "sm_75",
        (8, 0) => "sm_80",
        (8, 6) => "sm_86",
        (8, 7) => "sm_87",
        (8, 9) => "sm_89",
        (9, 0) => "sm_90",
        (10, 0) => "sm_100",
        (10, 3) => "sm_103",
        (12, 0) => "sm_120",
        (12, 1) => "sm_121",
        (m, _) if m >= 12 => "sm_120",
        (m, _) if m >= 10 => "sm_100",
        (9, _) => "sm_90",
        (8, _) => "sm_80",
        _ => "sm_75",
    }
}

impl Gpu {
    /// Opens GPU `ordinal`, or says why it cannot be used.
    pub fn probe(ordinal: usize) -> Result<Arc<Gpu>> {
        if !driver_available() {
            return Err(KernelError::Device(
                "no CUDA driver (libcuda) on this machine".into(),
            ));
        }
        if !nvrtc_available() {
            return Err(KernelError::Device(
                "NVRTC (libnvrtc) is not installed".into(),
            ));
        }
        // cudarc panics in a few driver-less corners; keep that from taking the process down.
        let ctx = std::panic::catch_unwind(|| CudaContext::new(ordinal))
            .map_err(|_| KernelError::Device("CUDA initialisation panicked".into()))?
            .map_err(|e| KernelError::Device(format!("no usable GPU {ordinal}: {e}")))?;
        let name = ctx.name().unwrap_or_else(|_| "NVIDIA GPU".into());
        let (major, minor) = ctx.compute_capability().map_err(KernelError::device)?;
        // CUDA 13 (our NVRTC target) compiles for sm_75 and newer only: an older GPU would probe
        // fine and then fail every kernel, so it is not offered.
        if (major, minor) < (7, 5) {
            return Err(KernelError::Device(format!(
                "GPU compute capability {major}.{minor} is below 7.5, the oldest CUDA 13 supports"
            )));
        }
        let stream = ctx.default_stream();
        Ok(Arc::new(Gpu {
            ctx,
            stream,
            name,
            arch: arch_name(major, minor),
            modules: Mutex::new(HashMap::new()),
        }))
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn arch(&self) -> &'static str {
        self.arch
    }
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// The module built from `src`, compiled on first use and cached for the life of the process.
    pub fn module(&self, name: &'static str, src: &str) -> Result<Arc<CudaModule>> {
        let mut modules = self
            .modules
            .lock()
            .map_err(|_| KernelError::Device("module cache poisoned".into()))?;
        if let Some(m) = modules.get(name) {
            return Ok(m.clone());
        }
        let ptx = compile(name, src, Some(self.arch))?;
        let module = self
            .ctx
            .load_module(ptx)
            .map_err(|e| KernelError::Device(format!("loading {name}: {e}")))?;
        modules.insert(name, module.clone());
        Ok(module)
    }

    /// Function `function` of the module built from `src`.
    pub fn function(
        &self,
        module: &'static str,
        src: &str,
        function: &str,
    ) -> Result<CudaFunction> {
        self.module(module, src)?
            .load_function(function)
            .map_err(|e| KernelError::Device(format!("{module}.{function}: {e}")))
    }
}

impl Gpu {
    /// Time per call of `launch` (which only enqueues work on [`Gpu::stream`]): one warm-up call,
    /// then the best of five rounds of `reps` calls, each round ended by a synchronisation. For
    /// the `bench_device` figures of the kernel modules.
    pub fn best_time(
        &self,
        reps: u32,
        mut launch: impl FnMut() -> Result<()>,
    ) -> Result<std::time::Duration> {
        let sync = || {
            self.stream
                .synchronize()
                .map_err(|e| KernelError::Device(format!("synchronize: {e}")))
        };
        launch()?;
        sync()?;
        let reps = reps.max(1);
        let mut best = std::time::Duration::MAX;
        for _ in 0..5 {
            let start = std::time::Instant::now();
            for _ in 0..reps {
                launch()?;
            }
            sync()?;
            best = best.min(start.elapsed() / reps);
        }
        Ok(best)
    }
}

/// A launch of 256-thread blocks for a kernel with a grid-stride loop over `items`: at most
/// 2^20 blocks (the loop covers the rest) and at least one, so any `items` is a valid grid.
pub fn grid_stride(items: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (items.div_ceil(256).clamp(1, 1 << 20) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

//! Kernel benchmarks: one function per kernel family and mode, each printing figures in the units
//! of `notes/speeds.md` at its problem sizes, with the ratio to the recorded baseline. The
//! binaries `kernel-bench-cpu`, `kernel-bench-gpu` and `kernel-bench-opencl` run them.

use std::time::{Duration, Instant};

pub mod black_scholes;
pub mod dtw;
pub mod fft;
pub mod kalman;
pub mod kmeans;
pub mod knn;
pub mod min_max;
pub mod savgol;
pub mod wavelet;

/// Which implementation family a benchmark measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Cpu,
    Gpu,
    OpenCl,
}

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Figure {
    pub kernel: &'static str,
    /// Problem size in words, e.g. "N=1M d=128 k=10".
    pub size: String,
    pub value: f64,
    /// Unit of `value`, e.g. "queries/s", "G options/s".
    pub unit: &'static str,
    /// The baseline of notes/speeds.md in the same unit, if one is recorded.
    pub baseline: Option<f64>,
    /// The aim as a ratio to the baseline (e.g. 2.0) or None.
    pub aim_ratio: Option<f64>,
    pub note: String,
}

impl Figure {
    pub fn ratio(&self) -> Option<f64> {
        self.baseline.map(|b| self.value / b)
    }
    pub fn line(&self) -> String {
        let ratio = self
            .ratio()
            .map(|r| format!("{r:.2}x"))
            .unwrap_or_else(|| "-".into());
        let base = self
            .baseline
            .map(|b| format!("{b:.4}"))
            .unwrap_or_else(|| "-".into());
        let aim = match (self.ratio(), self.aim_ratio) {
            (Some(r), Some(a)) if r >= a => format!("aim {a}x met"),
            (Some(_), Some(a)) => format!("aim {a}x NOT met"),
            _ => String::new(),
        };
        format!(
            "| {} | {} | {:.4} {} | {} | {} | {} {} |",
            self.kernel, self.size, self.value, self.unit, base, ratio, aim, self.note
        )
    }
}

/// Runs `f` until `min_time` has passed (at least `min_runs` times) and returns the best run.
pub fn best_of(min_runs: usize, min_time: Duration, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    let mut best = Duration::MAX;
    let mut runs = 0;
    while runs < min_runs || start.elapsed() < min_time {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed());
        runs += 1;
    }
    best
}

/// Deterministic pseudo-random `f32`s in `[lo, hi)` (SplitMix64), so that every run and every
/// backend sees the same data without a heavy RNG dependency in the bench binaries.
pub fn random_f32(len: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut state = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    (0..len)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let u = (z >> 40) as f32 / (1u64 << 24) as f32;
            lo + (hi - lo) * u
        })
        .collect()
}

/// A family's benchmark entry point.
pub type FamilyRun = fn(Mode, bool) -> Vec<Figure>;

/// Every family's figures in `mode`, printed as a Markdown table as they come.
/// `SERRANO_BENCH_QUICK=1` or `--quick` shrinks sizes; `--only NAME[,NAME]` picks kernels.
pub fn main_for(mode: Mode) {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick")
        || std::env::var("SERRANO_BENCH_QUICK").as_deref() == Ok("1");
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split(',').map(str::to_string).collect());
    let families: [(&str, FamilyRun); 9] = [
        ("knn", knn::run),
        ("kmeans", kmeans::run),
        ("dtw", dtw::run),
        ("savgol", savgol::run),
        ("black_scholes", black_scholes::run),
        ("kalman", kalman::run),
        ("fft", fft::run),
        ("wavelet", wavelet::run),
        ("min_max", min_max::run),
    ];
    println!("| kernel | size | measured | baseline | ratio | aim / note |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (name, run) in families {
        if only.as_ref().is_some_and(|o| !o.iter().any(|n| n == name)) {
            continue;
        }
        for figure in run(mode, quick) {
            println!("{}", figure.line());
        }
    }
}

// ---- The scaffold of a figure ----

/// `items` per second over `t`.
pub fn per_second(items: usize, t: Duration) -> f64 {
    items as f64 / t.as_secs_f64().max(1e-12)
}

/// The backend of a host-driven mode: the CPU one, or the OpenCL one (`None`, after printing
/// why, where no OpenCL device is present); `None` for [`Mode::Gpu`] (see [`cuda_or_skip`]).
pub fn host_backend(
    kernel: &str,
    mode: Mode,
) -> Option<Box<dyn serrano_kernel_core::KernelBackend>> {
    if mode == Mode::Gpu {
        return None;
    }
    Device::probe(mode, kernel).map(Device::into_backend)
}

/// The best time of `call` (see [`best_of`], at least 3 runs) after one call that must succeed;
/// `None`, after printing `what` and the error, when it fails.
pub fn time_call<T>(
    what: &str,
    min_time: Duration,
    mut call: impl FnMut() -> serrano_kernel_core::Result<T>,
) -> Option<Duration> {
    time_checked(3, min_time, || call().map(|_| ()))
        .inspect_err(|e| eprintln!("{what}: {e}"))
        .ok()
}

// ---- Shared scaffold of the kalman, fft, wavelet and min_max benchmarks (signal family group) ----

/// A family run with one function per mode and no OpenCL implementation.
pub fn cpu_or_gpu(
    mode: Mode,
    quick: bool,
    cpu: fn(bool) -> Vec<Figure>,
    gpu: fn(bool) -> Vec<Figure>,
) -> Vec<Figure> {
    match mode {
        Mode::Cpu => cpu(quick),
        Mode::Gpu => gpu(quick),
        Mode::OpenCl => Vec::new(),
    }
}

/// [`best_of`] a fallible call, after one untimed run (plans, caches, first-touch pages); the
/// first error ends the measurement and is returned.
pub fn time_checked(
    min_runs: usize,
    min_time: Duration,
    mut f: impl FnMut() -> serrano_kernel_core::Result<()>,
) -> serrano_kernel_core::Result<Duration> {
    f()?;
    best_ok(min_runs, min_time, f).map(|(time, ())| time)
}

/// A host-array CPU call timed as the CPU figures are (3 runs, 2 s at least).
pub fn time_cpu(
    f: impl FnMut() -> serrano_kernel_core::Result<()>,
) -> serrano_kernel_core::Result<Duration> {
    time_checked(3, Duration::from_secs(2), f)
}

/// The note of CPU figures on host arrays.
pub fn cpu_note() -> String {
    format!("{} threads, host arrays", rayon::current_num_threads())
}

/// The CUDA backend, or `None` after saying why `what`'s GPU figures are skipped.
pub fn cuda_or_skip(what: &str) -> Option<serrano_kernel_cuda::CudaBackend> {
    match Device::probe(Mode::Gpu, what)? {
        Device::Cuda(b) => Some(b),
        _ => None,
    }
}

/// A device-resident GPU call timed as the GPU figures are (5 runs, 1 s at least), each run
/// waiting for the stream so that the time is the GPU's.
pub fn time_gpu(
    gpu: &serrano_kernel_cuda::Gpu,
    mut f: impl FnMut() -> serrano_kernel_core::Result<()>,
) -> serrano_kernel_core::Result<Duration> {
    let stream = gpu.stream().clone();
    time_checked(5, Duration::from_secs(1), || {
        f()?;
        stream
            .synchronize()
            .map_err(serrano_kernel_core::KernelError::device)
    })
}

// ---- Helpers of the knn, kmeans and dtw benchmarks (usable by any family) ----

/// `n` in words: "1M", "200k", or the number itself.
pub fn count_label(n: usize) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// Runs `f` until `min_time` has passed (at least `min_runs` times, at least once) and returns
/// the best time with the last output, or the first error (which ends the runs).
pub fn best_ok<T, E>(
    min_runs: usize,
    min_time: Duration,
    mut f: impl FnMut() -> Result<T, E>,
) -> Result<(Duration, T), E> {
    let start = Instant::now();
    let mut best = Duration::MAX;
    let mut runs = 0;
    loop {
        let t = Instant::now();
        let out = f()?;
        best = best.min(t.elapsed());
        runs += 1;
        if runs >= min_runs && start.elapsed() >= min_time {
            return Ok((best, out));
        }
    }
}

/// Runs and least total time of a figure in `mode` (kernel calls of up to seconds): 2 runs over
/// 2 s on the CPU, 3 over 2 s on a GPU, 1 over 1 s through OpenCL (pocl is slow).
pub fn standard_runs(mode: Mode) -> (usize, Duration) {
    match mode {
        Mode::Cpu => (2, Duration::from_secs(2)),
        Mode::Gpu => (3, Duration::from_secs(2)),
        Mode::OpenCl => (1, Duration::from_secs(1)),
    }
}

/// The device a benchmark mode runs on, probed once per family.
pub enum Device {
    Cpu(serrano_kernel_cpu::CpuBackend),
    Cuda(serrano_kernel_cuda::CudaBackend),
    OpenCl(serrano_kernel_opencl::OpenClBackend),
}

impl Device {
    /// The device of `mode`, or None (after saying why `kernel` is skipped) when it is absent.
    pub fn probe(mode: Mode, kernel: &str) -> Option<Device> {
        let found = match mode {
            Mode::Cpu => Ok(Device::Cpu(serrano_kernel_cpu::CpuBackend::new())),
            Mode::Gpu => serrano_kernel_cuda::CudaBackend::probe().map(Device::Cuda),
            Mode::OpenCl => serrano_kernel_opencl::OpenClBackend::probe().map(Device::OpenCl),
        };
        found
            .map_err(|e| eprintln!("{kernel} {mode:?}: no device: {e}"))
            .ok()
    }

    pub fn into_backend(self) -> Box<dyn serrano_kernel_core::KernelBackend> {
        match self {
            Device::Cpu(b) => Box::new(b),
            Device::Cuda(b) => Box::new(b),
            Device::OpenCl(b) => Box::new(b),
        }
    }

    pub fn backend(&self) -> &dyn serrano_kernel_core::KernelBackend {
        match self {
            Device::Cpu(b) => b,
            Device::Cuda(b) => b,
            Device::OpenCl(b) => b,
        }
    }

    /// What a figure's note says about the device: threads, GPU name, or the OpenCL device
    /// (whose figures compare with the CPU baselines).
    pub fn note(&self) -> String {
        match self {
            Device::Cpu(_) => format!("{} threads", rayon::current_num_threads()),
            Device::Cuda(b) => b.gpu().name().to_string(),
            Device::OpenCl(b) => format!("{} (baseline: CPU table)", b.cl().description()),
        }
    }
}

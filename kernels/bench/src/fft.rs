//! FFT benchmarks: c2c fp32 of one 2^24-point signal and of 256 x 64k, in GFLOP/s by the
//! `5 n log2 n` convention (notes/speeds.md), plus a batched real transform (no baseline).

use std::time::Duration;

use serrano_kernel_core::fft::{self, FftKind, FftNorm, FftParams};
use serrano_kernel_core::{KernelBackend, Matrix};

use crate::{Figure, Mode, best_of, random_f32};

struct Case {
    size: String,
    rows: usize,
    n: usize,
    kind: FftKind,
    /// Baseline in GFLOP/s: (CPU, GPU).
    baseline: (Option<f64>, Option<f64>),
}

fn cases(quick: bool) -> Vec<Case> {
    let (big, rows, len): (usize, usize, usize) = if quick {
        (1 << 20, 16, 1 << 16)
    } else {
        (1 << 24, 256, 1 << 16)
    };
    let full = !quick;
    vec![
        Case {
            size: format!("c2c 1 x 2^{}", big.ilog2()),
            rows: 1,
            n: big,
            kind: FftKind::Complex,
            baseline: if full {
                (Some(4.8), Some(6900.0))
            } else {
                (None, None)
            },
        },
        Case {
            size: format!("c2c {rows} x {}k", len / 1024),
            rows,
            n: len,
            kind: FftKind::Complex,
            baseline: if full {
                (Some(25.9), Some(6400.0))
            } else {
                (None, None)
            },
        },
        Case {
            size: format!("r2c {rows} x {}k", len / 1024),
            rows,
            n: len,
            kind: FftKind::Real,
            baseline: (None, None),
        },
    ]
}

fn params(kind: FftKind) -> FftParams {
    FftParams {
        kind,
        inverse: false,
        norm: FftNorm::Backward,
        n: None,
    }
}

fn input(case: &Case) -> Matrix {
    let cols = match case.kind {
        FftKind::Complex => 2 * case.n,
        FftKind::Real => case.n,
    };
    let data = random_f32(case.rows * cols, 7, -1.0, 1.0);
    Matrix::new(case.rows, cols, data).unwrap_or_else(|_| Matrix::filled(0, 0, 0.0))
}

fn gflops(case: &Case, time: Duration) -> f64 {
    case.rows as f64 * fft::nominal_flops(case.n, case.kind) / time.as_secs_f64() / 1e9
}

/// Figures of fft in `mode`; `quick` shrinks the sizes for a smoke run.
pub fn run(mode: Mode, quick: bool) -> Vec<Figure> {
    match mode {
        Mode::Cpu => run_cpu(quick),
        Mode::Gpu => run_gpu(quick),
        Mode::OpenCl => Vec::new(),
    }
}

fn run_cpu(quick: bool) -> Vec<Figure> {
    let backend = serrano_kernel_cpu::CpuBackend::new();
    let mut figures = Vec::new();
    for case in cases(quick) {
        let m = input(&case);
        let p = params(case.kind);
        let mut failed = None;
        let time = best_of(3, Duration::from_secs(2), || {
            if let Err(e) = backend.fft(&m, &p) {
                failed = Some(e);
            }
        });
        if let Some(e) = failed {
            eprintln!("fft {}: {e}", case.size);
            continue;
        }
        figures.push(Figure {
            kernel: "fft",
            size: case.size.clone(),
            value: gflops(&case, time),
            unit: "GFLOP/s",
            baseline: case.baseline.0,
            aim_ratio: case.baseline.0.map(|_| 2.0),
            note: format!(
                "{} threads, host arrays, new output per call",
                rayon::current_num_threads()
            ),
        });
        // The same transform into a reused output: what is left once the output's fresh pages
        // (page faults, several µs each on a VM) are paid for.
        let Ok(shape) = p.shape(m.cols()) else {
            continue;
        };
        let mut out = vec![0.0f32; m.rows() * shape.out_cols];
        let time = best_of(3, Duration::from_secs(2), || {
            if let Err(e) = serrano_kernel_cpu::fft::fft_into(&m, &p, &mut out) {
                failed = Some(e);
            }
        });
        if failed.is_none() {
            figures.push(Figure {
                kernel: "fft",
                size: format!("{} (into)", case.size),
                value: gflops(&case, time),
                unit: "GFLOP/s",
                baseline: None,
                aim_ratio: None,
                note: "reused output buffer".into(),
            });
        }
    }
    figures
}

fn run_gpu(quick: bool) -> Vec<Figure> {
    let backend = match serrano_kernel_cuda::CudaBackend::probe() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("fft gpu: skipped, {e}");
            return Vec::new();
        }
    };
    let gpu = backend.gpu();
    let mut figures = Vec::new();
    for case in cases(quick) {
        let m = input(&case);
        let p = params(case.kind);
        let measured = (|| -> serrano_kernel_core::Result<Duration> {
            let stream = gpu.stream();
            let mut dev_in = stream
                .clone_htod(m.data())
                .map_err(serrano_kernel_core::KernelError::device)?;
            let mut plan = serrano_kernel_cuda::fft::ResidentFft::new(gpu, m.rows(), m.cols(), &p)?;
            plan.run(gpu, &mut dev_in)?;
            stream
                .synchronize()
                .map_err(serrano_kernel_core::KernelError::device)?;
            let mut failed = None;
            let time = best_of(5, Duration::from_secs(1), || {
                let r = plan.run(gpu, &mut dev_in).and_then(|_| {
                    stream
                        .synchronize()
                        .map_err(serrano_kernel_core::KernelError::device)
                });
                if let Err(e) = r {
                    failed = Some(e);
                }
            });
            match failed {
                Some(e) => Err(e),
                None => Ok(time),
            }
        })();
        match measured {
            Ok(time) => figures.push(Figure {
                kernel: "fft",
                size: case.size.clone(),
                value: gflops(&case, time) / 1e3,
                unit: "TFLOP/s",
                baseline: case.baseline.1.map(|g| g / 1e3),
                // cuFFT is the baseline's engine too: the aim is to lose nothing around it.
                aim_ratio: case.baseline.1.map(|_| 1.0),
                note: format!("{}, data resident", backend.device()),
            }),
            Err(e) => eprintln!("fft gpu {}: {e}", case.size),
        }
    }
    figures
}

//! FFT benchmarks: c2c fp32 of one 2^24-point signal and of 256 x 64k, in GFLOP/s by the
//! `5 n log2 n` convention (notes/speeds.md), plus a batched real transform (no baseline).

use std::time::Duration;

use serrano_kernel_core::fft::{self, FftKind, FftNorm, FftParams};
use serrano_kernel_core::{KernelBackend, KernelError, Matrix};

use crate::{Figure, Mode, cpu_note, cpu_or_gpu, cuda_or_skip, random_f32, time_cpu, time_gpu};

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
    let batch = format!("{rows} x {}k", len / 1024);
    // (size, rows, n, kind, (CPU, GPU) baselines, which are for the full sizes only).
    let table = [
        (
            format!("c2c 1 x 2^{}", big.ilog2()),
            1,
            big,
            FftKind::Complex,
            Some((4.8, 6900.0)),
        ),
        (
            format!("c2c {batch}"),
            rows,
            len,
            FftKind::Complex,
            Some((25.9, 6400.0)),
        ),
        (format!("r2c {batch}"), rows, len, FftKind::Real, None),
    ];
    table
        .into_iter()
        .map(|(size, rows, n, kind, baseline)| Case {
            size,
            rows,
            n,
            kind,
            baseline: match baseline {
                Some((cpu, gpu)) if !quick => (Some(cpu), Some(gpu)),
                _ => (None, None),
            },
        })
        .collect()
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
    cpu_or_gpu(mode, quick, run_cpu, run_gpu)
}

fn run_cpu(quick: bool) -> Vec<Figure> {
    let backend = serrano_kernel_cpu::CpuBackend::new();
    let mut figures = Vec::new();
    for case in cases(quick) {
        let m = input(&case);
        let p = params(case.kind);
        match time_cpu(|| backend.fft(&m, &p).map(drop)) {
            Ok(time) => figures.push(Figure {
                kernel: "fft",
                size: case.size.clone(),
                value: gflops(&case, time),
                unit: "GFLOP/s",
                baseline: case.baseline.0,
                aim_ratio: case.baseline.0.map(|_| 2.0),
                note: format!("{}, new output per call", cpu_note()),
            }),
            Err(e) => {
                eprintln!("fft {}: {e}", case.size);
                continue;
            }
        }
        // The same transform into a reused output: what is left once the output's fresh pages
        // (page faults, several µs each on a VM) are paid for.
        let Ok(shape) = p.shape(m.cols()) else {
            continue;
        };
        let mut out = vec![0.0f32; m.rows() * shape.out_cols];
        if let Ok(time) = time_cpu(|| serrano_kernel_cpu::fft::fft_into(&m, &p, &mut out)) {
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
    let Some(backend) = cuda_or_skip("fft") else {
        return Vec::new();
    };
    let gpu = backend.gpu();
    let mut figures = Vec::new();
    for case in cases(quick) {
        let m = input(&case);
        let p = params(case.kind);
        let measured = (|| -> serrano_kernel_core::Result<Duration> {
            let mut dev_in = gpu
                .stream()
                .clone_htod(m.data())
                .map_err(KernelError::device)?;
            let mut plan = serrano_kernel_cuda::fft::ResidentFft::new(gpu, m.rows(), m.cols(), &p)?;
            time_gpu(gpu, || plan.run(gpu, &mut dev_in))
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

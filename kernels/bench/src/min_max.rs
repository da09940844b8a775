//! Min-max benchmarks: per-column (sklearn's default), per-row and overall scaling of 16M
//! values on the CPU (64M on the GPU), in samples/s (no baseline in notes/speeds.md).

use std::time::Duration;

use serrano_kernel_core::min_max::{Axis, MinMaxParams};
use serrano_kernel_core::{KernelBackend, KernelError, Matrix};

use crate::{Figure, Mode, best_of, random_f32};

const CASES: [(&str, Axis, usize); 3] = [
    ("columns", Axis::Columns, 16),
    ("rows", Axis::Rows, 4096),
    ("all", Axis::All, 16),
];

fn params(axis: Axis) -> MinMaxParams {
    MinMaxParams {
        min: 0.0,
        max: 1.0,
        axis,
    }
}

/// Figures of min_max in `mode`; `quick` shrinks the sizes for a smoke run.
pub fn run(mode: Mode, quick: bool) -> Vec<Figure> {
    match mode {
        Mode::Cpu => run_cpu(quick),
        Mode::Gpu => run_gpu(quick),
        Mode::OpenCl => Vec::new(),
    }
}

fn run_cpu(quick: bool) -> Vec<Figure> {
    let backend = serrano_kernel_cpu::CpuBackend::new();
    let total = if quick { 1 << 20 } else { 1 << 24 };
    let data = random_f32(total, 9, -100.0, 100.0);
    let mut figures = Vec::new();
    for (name, axis, cols) in CASES {
        let Ok(m) = Matrix::new(total / cols, cols, data.clone()) else {
            continue;
        };
        let p = params(axis);
        let mut failed = None;
        let time = best_of(3, Duration::from_secs(2), || {
            if let Err(e) = backend.min_max(&m, &p) {
                failed = Some(e);
            }
        });
        if let Some(e) = failed {
            eprintln!("min_max {name}: {e}");
            continue;
        }
        figures.push(Figure {
            kernel: "min_max",
            size: format!("axis={name}, {} x {cols}", total / cols),
            value: total as f64 / time.as_secs_f64() / 1e6,
            unit: "M samples/s",
            baseline: None,
            aim_ratio: None,
            note: format!("{} threads, host arrays", rayon::current_num_threads()),
        });
    }
    figures
}

fn run_gpu(quick: bool) -> Vec<Figure> {
    let backend = match serrano_kernel_cuda::CudaBackend::probe() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("min_max gpu: skipped, {e}");
            return Vec::new();
        }
    };
    let gpu = backend.gpu();
    let total = if quick { 1 << 22 } else { 1 << 26 };
    let data = random_f32(total, 9, -100.0, 100.0);
    let mut figures = Vec::new();
    for (name, axis, cols) in CASES {
        let rows = total / cols;
        let p = params(axis);
        let measured = (|| -> serrano_kernel_core::Result<Duration> {
            let stream = gpu.stream();
            let input = stream.clone_htod(&data).map_err(KernelError::device)?;
            serrano_kernel_cuda::min_max::min_max_resident(gpu, &input, rows, cols, &p)?;
            let mut failed = None;
            let time = best_of(5, Duration::from_secs(1), || {
                let r = serrano_kernel_cuda::min_max::min_max_resident(gpu, &input, rows, cols, &p)
                    .and_then(|_| stream.synchronize().map_err(KernelError::device));
                if let Err(e) = r {
                    failed = Some(e);
                }
            });
            failed.map_or(Ok(time), Err)
        })();
        match measured {
            Ok(time) => figures.push(Figure {
                kernel: "min_max",
                size: format!("axis={name}, {rows} x {cols}"),
                value: total as f64 / time.as_secs_f64() / 1e9,
                unit: "G samples/s",
                baseline: None,
                aim_ratio: None,
                note: format!("{}, data resident", backend.device()),
            }),
            Err(e) => eprintln!("min_max gpu {name}: {e}"),
        }
    }
    figures
}

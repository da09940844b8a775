//! Min-max benchmarks: per-column (sklearn's default), per-row and overall scaling of 16M
//! values on the CPU (64M on the GPU), in samples/s (no baseline in notes/speeds.md).

use serrano_kernel_core::min_max::{Axis, MinMaxParams};
use serrano_kernel_core::{KernelBackend, Matrix};

use crate::{Figure, Mode, cpu_note, cpu_or_gpu, cuda_or_skip, random_f32, time_cpu, time_gpu};

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
    cpu_or_gpu(mode, quick, run_cpu, run_gpu)
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
        match time_cpu(|| backend.min_max(&m, &p).map(drop)) {
            Ok(time) => figures.push(Figure {
                kernel: "min_max",
                size: format!("axis={name}, {} x {cols}", total / cols),
                value: total as f64 / time.as_secs_f64() / 1e6,
                unit: "M samples/s",
                baseline: None,
                aim_ratio: None,
                note: cpu_note(),
            }),
            Err(e) => eprintln!("min_max {name}: {e}"),
        }
    }
    figures
}

fn run_gpu(quick: bool) -> Vec<Figure> {
    let Some(backend) = cuda_or_skip("min_max") else {
        return Vec::new();
    };
    let gpu = backend.gpu();
    let total = if quick { 1 << 22 } else { 1 << 26 };
    let data = random_f32(total, 9, -100.0, 100.0);
    let input = match gpu.stream().clone_htod(&data) {
        Ok(input) => input,
        Err(e) => {
            eprintln!("min_max gpu: {e}");
            return Vec::new();
        }
    };
    let mut figures = Vec::new();
    for (name, axis, cols) in CASES {
        let rows = total / cols;
        let p = params(axis);
        let measured = time_gpu(gpu, || {
            serrano_kernel_cuda::min_max::min_max_resident(gpu, &input, rows, cols, &p).map(drop)
        });
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

//! Kalman benchmarks: batched constant-velocity 4x2 tracks in track-updates/s (one update =
//! one track advanced by one step), against notes/speeds.md.

use serrano_kernel_core::kalman::{KalmanModel, KalmanParams};
use serrano_kernel_core::{KernelBackend, KernelError, Matrix};

use crate::{Figure, Mode, cpu_note, cpu_or_gpu, cuda_or_skip, random_f32, time_cpu, time_gpu};

/// numpy batched CV 4x2 on 2 cores, M updates/s.
const CPU_BASELINE: f64 = 1.5;
/// Unfused torch on the H100, M updates/s.
const GPU_BASELINE: f64 = 110.0;
/// The GPU aim: 1 G updates/s.
const GPU_AIM: f64 = 1000.0;

fn params(model: KalmanModel) -> KalmanParams {
    KalmanParams {
        model,
        dt: 1.0,
        q: 1.0,
        r: 10.0,
    }
}

/// `rows` tracks of `steps` steps of `dims` positions (a drifting walk).
fn tracks(rows: usize, steps: usize, dims: usize) -> Matrix {
    let mut data = random_f32(rows * steps * dims, 3, -1.0, 1.0);
    for row in data.chunks_mut(steps * dims) {
        for i in dims..row.len() {
            row[i] += row[i - dims];
        }
    }
    Matrix::new(rows, steps * dims, data).unwrap_or_else(|_| Matrix::filled(0, 0, 0.0))
}

/// Figures of kalman in `mode`; `quick` shrinks the sizes for a smoke run.
pub fn run(mode: Mode, quick: bool) -> Vec<Figure> {
    cpu_or_gpu(mode, quick, run_cpu, run_gpu)
}

fn run_cpu(quick: bool) -> Vec<Figure> {
    let backend = serrano_kernel_cpu::CpuBackend::new();
    let (rows, steps) = if quick { (10_000, 50) } else { (100_000, 100) };
    let cases = [
        (
            "cv 4x2",
            KalmanModel::ConstantVelocity { dims: 2 },
            2,
            Some(CPU_BASELINE),
        ),
        ("constant 1x1", KalmanModel::Constant, 1, None),
    ];
    let mut figures = Vec::new();
    for (name, model, dims, baseline) in cases {
        let m = tracks(rows, steps, dims);
        let p = params(model);
        match time_cpu(|| backend.kalman(&m, &p).map(drop)) {
            Ok(time) => figures.push(Figure {
                kernel: "kalman",
                size: format!("{name}, {rows} tracks x {steps} steps"),
                value: (rows * steps) as f64 / time.as_secs_f64() / 1e6,
                unit: "M updates/s",
                baseline,
                aim_ratio: baseline.map(|_| 2.0),
                note: cpu_note(),
            }),
            Err(e) => eprintln!("kalman {name}: {e}"),
        }
    }
    figures
}

fn run_gpu(quick: bool) -> Vec<Figure> {
    let Some(backend) = cuda_or_skip("kalman") else {
        return Vec::new();
    };
    let gpu = backend.gpu();
    let (rows, steps) = if quick { (65_536, 50) } else { (1 << 20, 100) };
    let m = tracks(rows, steps, 2);
    let p = params(KalmanModel::ConstantVelocity { dims: 2 });
    let measured = gpu
        .stream()
        .clone_htod(m.data())
        .map_err(KernelError::device)
        .and_then(|input| {
            time_gpu(gpu, || {
                serrano_kernel_cuda::kalman::kalman_resident(gpu, &input, rows, m.cols(), &p)
                    .map(drop)
            })
        });
    match measured {
        Ok(time) => vec![Figure {
            kernel: "kalman",
            size: format!("cv 4x2, {rows} tracks x {steps} steps"),
            value: (rows * steps) as f64 / time.as_secs_f64() / 1e6,
            unit: "M updates/s",
            baseline: Some(GPU_BASELINE),
            aim_ratio: Some(GPU_AIM / GPU_BASELINE),
            note: format!("{}, data resident, incl. SoA transposes", backend.device()),
        }],
        Err(e) => {
            eprintln!("kalman gpu: {e}");
            Vec::new()
        }
    }
}

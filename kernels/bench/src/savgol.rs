//! Savitzky-Golay throughput: one signal of 16M samples (1M with `quick`), polyorder 3, mode
//! interp, windows 11 / 31 / 101, against notes/speeds.md (CPU: scipy on 2 cores; GPU: CuPy w31).
//! GPU figures are for data resident on the device (as the CuPy baseline); the API path with its
//! host-device copies is reported beside them without a baseline.

use std::time::Duration;

use serrano_kernel_core::savgol::{EdgeMode, SavgolParams};
use serrano_kernel_core::{KernelBackend, Matrix};

use crate::{Figure, Mode, cuda_or_skip, host_backend, per_second, random_f32, time_call};

const KERNEL: &str = "savgol";
/// scipy.signal.savgol_filter on 2 cores, M samples/s, by window.
const CPU_BASELINE: [(usize, f64); 3] = [(11, 77.9), (31, 48.7), (101, 27.6)];
/// CuPy on an H100, G samples/s, window 31.
const GPU_BASELINE_W31: f64 = 10.3;
const GPU_AIM: f64 = 50.0;

fn params(window: usize) -> SavgolParams {
    SavgolParams {
        window,
        polyorder: 3,
        deriv: 0,
        delta: 1.0,
        mode: EdgeMode::Interp,
    }
}

/// Figures of savgol in `mode`; `quick` shrinks the sizes for a smoke run.
pub fn run(mode: Mode, quick: bool) -> Vec<Figure> {
    let n = if quick { 1 << 20 } else { 16 << 20 };
    let size = |w: usize| format!("{}M samples, w={w} poly=3", n >> 20);
    let min_time = Duration::from_millis(if quick { 200 } else { 1500 });
    let signal = match Matrix::new(1, n, random_f32(n, 31, -1.0, 1.0)) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{KERNEL}: {e}");
            return Vec::new();
        }
    };
    let mut figures = Vec::new();
    if mode == Mode::Gpu {
        let Some(backend) = cuda_or_skip(KERNEL) else {
            return figures;
        };
        for (w, _) in CPU_BASELINE {
            let p = params(w);
            match serrano_kernel_cuda::savgol::bench_device(backend.gpu(), 1, n, &p) {
                Ok(t) => figures.push(Figure {
                    kernel: KERNEL,
                    size: size(w),
                    value: per_second(n, t) / 1e9,
                    unit: "G samples/s",
                    baseline: (w == 31).then_some(GPU_BASELINE_W31),
                    aim_ratio: (w == 31).then_some(GPU_AIM / GPU_BASELINE_W31),
                    note: format!("{}, data on the device", backend.device()),
                }),
                Err(e) => eprintln!("{KERNEL} w={w} (device-resident): {e}"),
            }
        }
        let p = params(31);
        if let Some(t) = time_call("savgol w=31", min_time, || backend.savgol(&signal, &p)) {
            figures.push(Figure {
                kernel: KERNEL,
                size: size(31),
                value: per_second(n, t) / 1e9,
                unit: "G samples/s",
                baseline: None,
                aim_ratio: None,
                note: "API call: host-device copies included".into(),
            });
        }
        return figures;
    }
    let Some(backend) = host_backend(KERNEL, mode) else {
        return figures;
    };
    for (w, baseline) in CPU_BASELINE {
        let p = params(w);
        let what = format!("{KERNEL} w={w}");
        let Some(t) = time_call(&what, min_time, || backend.savgol(&signal, &p)) else {
            continue;
        };
        let (aim_ratio, note) = if mode == Mode::Cpu {
            (Some(2.0), backend.device())
        } else {
            (
                None,
                format!("{}; baseline is scipy on the CPU", backend.device()),
            )
        };
        figures.push(Figure {
            kernel: KERNEL,
            size: size(w),
            value: per_second(n, t) / 1e6,
            unit: "M samples/s",
            baseline: Some(baseline),
            aim_ratio,
            note,
        });
    }
    figures
}

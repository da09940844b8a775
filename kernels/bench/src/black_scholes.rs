//! Black-Scholes throughput: 10M options (1M with `quick`) as `n x 5` rows, prices only (the
//! baseline's case) and with Greeks, against notes/speeds.md (CPU: numpy/scipy on 2 cores; GPU:
//! CuPy on an H100). The GPU baseline figure is for data resident on the device in
//! structure-of-arrays layout, so the GPU figure is measured that way; the API path with its
//! host-device copies is reported beside it without a baseline.

use std::time::Duration;

use serrano_kernel_core::black_scholes::BsParams;
use serrano_kernel_core::{KernelBackend, Matrix};

use crate::{Figure, Mode, cuda_or_skip, host_backend, per_second, random_f32, time_call};

const KERNEL: &str = "black_scholes";
/// numpy/scipy on 2 cores, M options/s.
const CPU_BASELINE: f64 = 15.8;
/// CuPy on an H100, G options/s.
const GPU_BASELINE: f64 = 98.9;
const GPU_AIM: f64 = 120.0;

/// `n x 5` options `[spot, strike, years, rate, volatility]`, deterministic.
pub fn options(n: usize) -> Matrix {
    let cols = [
        random_f32(n, 1, 10.0, 200.0),
        random_f32(n, 2, 10.0, 200.0),
        random_f32(n, 3, 0.1, 3.0),
        random_f32(n, 4, 0.0, 0.1),
        random_f32(n, 5, 0.1, 0.6),
    ];
    let mut data = Vec::with_capacity(n * 5);
    for i in 0..n {
        data.extend(cols.iter().map(|c| c[i]));
    }
    Matrix::new(n, 5, data).unwrap_or_else(|_| Matrix::filled(0, 5, 0.0))
}

/// Figures of black_scholes in `mode`; `quick` shrinks the sizes for a smoke run.
pub fn run(mode: Mode, quick: bool) -> Vec<Figure> {
    let n = if quick { 1_000_000 } else { 10_000_000 };
    let size = format!("{}M options", n / 1_000_000);
    let min_time = Duration::from_millis(if quick { 200 } else { 1500 });
    let mut figures = Vec::new();
    let backend: Box<dyn KernelBackend> = if mode == Mode::Gpu {
        let Some(b) = cuda_or_skip(KERNEL) else {
            return figures;
        };
        match serrano_kernel_cuda::black_scholes::bench_device(b.gpu(), n) {
            Ok(t) => figures.push(Figure {
                kernel: KERNEL,
                size: size.clone(),
                value: per_second(n, t) / 1e9,
                unit: "G options/s",
                baseline: Some(GPU_BASELINE),
                aim_ratio: Some(GPU_AIM / GPU_BASELINE),
                note: format!(
                    "{}, prices, SoA [spot, strike, years] on the device, fixed rate/vol",
                    b.device()
                ),
            }),
            Err(e) => eprintln!("{KERNEL} (device-resident): {e}"),
        }
        Box::new(b)
    } else {
        match host_backend(KERNEL, mode) {
            Some(b) => b,
            None => return figures,
        }
    };
    let data = options(n);
    for greeks in [false, true] {
        let p = BsParams {
            greeks,
            ..BsParams::default()
        };
        let what = if greeks { "prices + Greeks" } else { "prices" };
        let Some(t) = time_call(&format!("{KERNEL} {what}"), min_time, || {
            backend.black_scholes(&data, &p)
        }) else {
            continue;
        };
        let (value, unit, baseline, aim_ratio, note) = match mode {
            Mode::Cpu => (
                per_second(n, t) / 1e6,
                "M options/s",
                (!greeks).then_some(CPU_BASELINE),
                (!greeks).then_some(2.0),
                format!("{}, {what}", backend.device()),
            ),
            Mode::OpenCl => (
                per_second(n, t) / 1e6,
                "M options/s",
                (!greeks).then_some(CPU_BASELINE),
                None,
                format!("{}, {what}; baseline is numpy on the CPU", backend.device()),
            ),
            Mode::Gpu => (
                per_second(n, t) / 1e9,
                "G options/s",
                None,
                None,
                format!("API call, {what}: host-device copies included"),
            ),
        };
        figures.push(Figure {
            kernel: KERNEL,
            size: size.clone(),
            value,
            unit,
            baseline,
            aim_ratio,
            note,
        });
    }
    figures
}

//! Wavelet benchmarks: db4, 5 levels, symmetric (pywt's default mode), forward and inverse, in
//! samples/s (no baseline in notes/speeds.md).

use std::time::Duration;

use serrano_kernel_core::wavelet::{self, ExtensionMode, Wavelet, WaveletParams};
use serrano_kernel_core::{KernelBackend, KernelError, Matrix};

use crate::{Figure, Mode, best_of, random_f32};

fn params(inverse: bool, n: usize) -> WaveletParams {
    WaveletParams {
        wavelet: Wavelet::Db(4),
        levels: Some(5),
        mode: ExtensionMode::Symmetric,
        inverse,
        n: inverse.then_some(n),
    }
}

fn sizes(quick: bool) -> (usize, usize) {
    if quick { (64, 16_384) } else { (256, 65_536) }
}

/// Figures of wavelet in `mode`; `quick` shrinks the sizes for a smoke run.
pub fn run(mode: Mode, quick: bool) -> Vec<Figure> {
    match mode {
        Mode::Cpu => run_cpu(quick),
        Mode::Gpu => run_gpu(quick),
        Mode::OpenCl => Vec::new(),
    }
}

fn run_cpu(quick: bool) -> Vec<Figure> {
    let backend = serrano_kernel_cpu::CpuBackend::new();
    let (rows, n) = sizes(quick);
    let signals = Matrix::new(rows, n, random_f32(rows * n, 5, -1.0, 1.0))
        .unwrap_or_else(|_| Matrix::filled(0, 0, 0.0));
    let coeffs = match backend.wavelet(&signals, &params(false, n)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wavelet: {e}");
            return Vec::new();
        }
    };
    let mut figures = Vec::new();
    for (name, input, p) in [
        ("wavedec", &signals, params(false, n)),
        ("waverec", &coeffs, params(true, n)),
    ] {
        let mut failed = None;
        let time = best_of(3, Duration::from_secs(2), || {
            if let Err(e) = backend.wavelet(input, &p) {
                failed = Some(e);
            }
        });
        if let Some(e) = failed {
            eprintln!("wavelet {name}: {e}");
            continue;
        }
        figures.push(Figure {
            kernel: "wavelet",
            size: format!("{name} db4 L5 symmetric, {rows} x {n}"),
            value: (rows * n) as f64 / time.as_secs_f64() / 1e6,
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
            eprintln!("wavelet gpu: skipped, {e}");
            return Vec::new();
        }
    };
    let gpu = backend.gpu();
    let (rows, n) = if quick { (256, 65_536) } else { (4096, 65_536) };
    let data = random_f32(rows * n, 5, -1.0, 1.0);
    let measured = (|| -> serrano_kernel_core::Result<Vec<(&'static str, Duration)>> {
        let stream = gpu.stream();
        let signals = stream.clone_htod(&data).map_err(KernelError::device)?;
        let fwd = params(false, n);
        let fwd_layout = fwd.layout(n)?;
        let coeffs =
            serrano_kernel_cuda::wavelet::wavelet_resident(gpu, &signals, rows, &fwd, &fwd_layout)?;
        let inv = params(true, n);
        let inv_layout = inv.layout(
            wavelet::coefficient_lengths(n, fwd.wavelet, fwd.levels, fwd.mode)?
                .iter()
                .sum(),
        )?;
        let mut times = Vec::new();
        for (name, input, p, layout) in [
            ("wavedec", &signals, &fwd, &fwd_layout),
            ("waverec", &coeffs, &inv, &inv_layout),
        ] {
            let mut failed = None;
            let time = best_of(5, Duration::from_secs(1), || {
                let r = serrano_kernel_cuda::wavelet::wavelet_resident(gpu, input, rows, p, layout)
                    .and_then(|_| stream.synchronize().map_err(KernelError::device));
                if let Err(e) = r {
                    failed = Some(e);
                }
            });
            if let Some(e) = failed {
                return Err(e);
            }
            times.push((name, time));
        }
        Ok(times)
    })();
    match measured {
        Ok(times) => times
            .into_iter()
            .map(|(name, time)| Figure {
                kernel: "wavelet",
                size: format!("{name} db4 L5 symmetric, {rows} x {n}"),
                value: (rows * n) as f64 / time.as_secs_f64() / 1e9,
                unit: "G samples/s",
                baseline: None,
                aim_ratio: None,
                note: format!("{}, data resident", backend.device()),
            })
            .collect(),
        Err(e) => {
            eprintln!("wavelet gpu: {e}");
            Vec::new()
        }
    }
}

//! Wavelet benchmarks: db4, 5 levels, symmetric (pywt's default mode), forward and inverse, in
//! samples/s (no baseline in notes/speeds.md).

use std::time::Duration;

use serrano_kernel_core::wavelet::{self, ExtensionMode, Wavelet, WaveletParams};
use serrano_kernel_core::{KernelBackend, KernelError, Matrix};

use crate::{Figure, Mode, cpu_note, cpu_or_gpu, cuda_or_skip, random_f32, time_cpu, time_gpu};

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
    cpu_or_gpu(mode, quick, run_cpu, run_gpu)
}

fn size(name: &str, rows: usize, n: usize) -> String {
    format!("{name} db4 L5 symmetric, {rows} x {n}")
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
        match time_cpu(|| backend.wavelet(input, &p).map(drop)) {
            Ok(time) => figures.push(Figure {
                kernel: "wavelet",
                size: size(name, rows, n),
                value: (rows * n) as f64 / time.as_secs_f64() / 1e6,
                unit: "M samples/s",
                baseline: None,
                aim_ratio: None,
                note: cpu_note(),
            }),
            Err(e) => eprintln!("wavelet {name}: {e}"),
        }
    }
    figures
}

fn run_gpu(quick: bool) -> Vec<Figure> {
    let Some(backend) = cuda_or_skip("wavelet") else {
        return Vec::new();
    };
    let gpu = backend.gpu();
    let (rows, n) = if quick { (256, 65_536) } else { (4096, 65_536) };
    let data = random_f32(rows * n, 5, -1.0, 1.0);
    let measured = (|| -> serrano_kernel_core::Result<Vec<(&'static str, Duration)>> {
        let signals = gpu
            .stream()
            .clone_htod(&data)
            .map_err(KernelError::device)?;
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
            let time = time_gpu(gpu, || {
                serrano_kernel_cuda::wavelet::wavelet_resident(gpu, input, rows, p, layout)
                    .map(drop)
            })?;
            times.push((name, time));
        }
        Ok(times)
    })();
    match measured {
        Ok(times) => times
            .into_iter()
            .map(|(name, time)| Figure {
                kernel: "wavelet",
                size: size(name, rows, n),
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

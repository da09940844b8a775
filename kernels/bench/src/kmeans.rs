//! Benchmarks of k-means: Lloyd iterations per second, d=32, K=256 (notes/speeds.md: CPU
//! baseline 0.42 it/s at N=1M and 2.09 at 200k; H100 258 it/s at 1M). The initial centroids
//! are given (the first K points), `tol = 0`, and the time of the whole call (including the
//! final assignment that makes labels match the centroids) is divided by the iterations run.
//! On the GPU the data is uploaded once, outside the timed loop.

use serrano_kernel_core::Matrix;
use serrano_kernel_core::kmeans::{Init, KMeansMetric, KMeansParams, lloyd};

use crate::{Device, Figure, Mode, best_ok, count_label, random_f32, standard_runs};

const D: usize = 32;
const K: usize = 256;

struct Case {
    n: usize,
    iters: usize,
    baseline: Option<f64>,
    aim: Option<f64>,
}

fn inputs(n: usize) -> Option<(Matrix, Matrix)> {
    let data = Matrix::new(n, D, random_f32(n * D, 3, 0.0, 1.0)).ok()?;
    let init = Matrix::new(K, D, data.data()[..K * D].to_vec()).ok()?;
    Some((data, init))
}

/// Figures of kmeans in `mode`; `quick` shrinks the sizes for a smoke run.
pub fn run(mode: Mode, quick: bool) -> Vec<Figure> {
    let Some(device) = Device::probe(mode, "kmeans") else {
        return Vec::new();
    };
    let (runs, min_time) = standard_runs(mode);
    let mut out = Vec::new();
    for c in cases(mode, quick) {
        let Some((data, init)) = inputs(c.n) else {
            continue;
        };
        let p = KMeansParams {
            k: K,
            max_iter: c.iters,
            tol: 0.0,
            seed: 0,
            metric: KMeansMetric::Euclidean,
            init: Init::KMeansPlusPlus,
        };
        // Each run returns its iteration count (the same every run: tol = 0, given init).
        let timed = match &device {
            // The data is uploaded once, outside the timed runs.
            Device::Cuda(b) => {
                serrano_kernel_cuda::kmeans::GpuStep::new(b.gpu(), &data).and_then(|mut step| {
                    best_ok(runs, min_time, || {
                        lloyd(&data, Some(&init), &p, &mut step).map(|o| o.iterations)
                    })
                })
            }
            _ => best_ok(runs, min_time, || {
                device
                    .backend()
                    .kmeans(&data, Some(&init), &p)
                    .map(|o| o.iterations)
            }),
        };
        match timed {
            Ok((t, iterations)) => out.push(Figure {
                kernel: "kmeans",
                size: format!("N={} d={D} K={K}", count_label(c.n)),
                value: iterations as f64 / t.as_secs_f64(),
                unit: "iterations/s",
                baseline: c.baseline,
                aim_ratio: c.aim,
                note: device.note(),
            }),
            Err(e) => eprintln!("kmeans {mode:?} failed: {e}"),
        }
    }
    out
}

fn case(n: usize, iters: usize, baseline: Option<f64>, aim: Option<f64>) -> Case {
    Case {
        n,
        iters,
        baseline,
        aim,
    }
}

fn cases(mode: Mode, quick: bool) -> Vec<Case> {
    if quick {
        return vec![case(20_000, 2, None, None)];
    }
    match mode {
        Mode::Cpu => vec![
            case(1_000_000, 5, Some(0.42), Some(2.0)),
            case(200_000, 10, Some(2.09), Some(2.0)),
        ],
        Mode::Gpu => vec![
            case(1_000_000, 100, Some(258.0), Some(1.55)),
            case(200_000, 100, None, None),
        ],
        Mode::OpenCl => vec![case(200_000, 3, Some(2.09), None)],
    }
}

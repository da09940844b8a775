//! Benchmarks of k-means: Lloyd iterations per second, d=32, K=256 (notes/speeds.md: CPU
//! baseline 0.42 it/s at N=1M and 2.09 at 200k; H100 258 it/s at 1M). The initial centroids
//! are given (the first K points), `tol = 0`, and the time of the whole call (including the
//! final assignment that makes labels match the centroids) is divided by the iterations run.
//! On the GPU the data is uploaded once, outside the timed loop.

use std::time::{Duration, Instant};

use serrano_kernel_core::Matrix;
use serrano_kernel_core::kmeans::{Init, KMeansMetric, KMeansOutput, KMeansParams};

use crate::{Figure, Mode, best_of, random_f32};

const D: usize = 32;
const K: usize = 256;

struct Case {
    n: usize,
    iters: usize,
    baseline: Option<f64>,
    aim: Option<f64>,
}

fn size(n: usize) -> String {
    let n = if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    };
    format!("N={n} d={D} K={K}")
}

fn inputs(n: usize) -> Option<(Matrix, Matrix)> {
    let data = Matrix::new(n, D, random_f32(n * D, 3, 0.0, 1.0)).ok()?;
    let init = Matrix::new(K, D, data.data()[..K * D].to_vec()).ok()?;
    Some((data, init))
}

fn params(iters: usize) -> KMeansParams {
    KMeansParams {
        k: K,
        max_iter: iters,
        tol: 0.0,
        seed: 0,
        metric: KMeansMetric::Euclidean,
        init: Init::KMeansPlusPlus,
    }
}

/// Figures of kmeans in `mode`; `quick` shrinks the sizes for a smoke run.
pub fn run(mode: Mode, quick: bool) -> Vec<Figure> {
    match mode {
        Mode::Cpu => cpu(quick),
        Mode::Gpu => gpu(quick),
        Mode::OpenCl => opencl(quick),
    }
}

fn cases(mode: Mode, quick: bool) -> Vec<Case> {
    if quick {
        return vec![Case {
            n: 20_000,
            iters: 2,
            baseline: None,
            aim: None,
        }];
    }
    match mode {
        Mode::Cpu => vec![
            Case {
                n: 1_000_000,
                iters: 5,
                baseline: Some(0.42),
                aim: Some(2.0),
            },
            Case {
                n: 200_000,
                iters: 10,
                baseline: Some(2.09),
                aim: Some(2.0),
            },
        ],
        Mode::Gpu => vec![
            Case {
                n: 1_000_000,
                iters: 100,
                baseline: Some(258.0),
                aim: Some(1.55),
            },
            Case {
                n: 200_000,
                iters: 100,
                baseline: None,
                aim: None,
            },
        ],
        Mode::OpenCl => vec![Case {
            n: 200_000,
            iters: 3,
            baseline: Some(2.09),
            aim: None,
        }],
    }
}

fn figure(c: &Case, it_per_s: f64, note: String) -> Figure {
    Figure {
        kernel: "kmeans",
        size: size(c.n),
        value: it_per_s,
        unit: "iterations/s",
        baseline: c.baseline,
        aim_ratio: c.aim,
        note,
    }
}

/// Best iterations/s of `f` over a few runs.
fn time_runs(
    runs: usize,
    min: Duration,
    mut f: impl FnMut() -> serrano_kernel_core::Result<KMeansOutput>,
) -> Result<f64, String> {
    let mut best = 0f64;
    let mut err = None;
    best_of(runs, min, || {
        let t = Instant::now();
        match f() {
            Ok(out) => best = best.max(out.iterations as f64 / t.elapsed().as_secs_f64()),
            Err(e) => err = Some(e.to_string()),
        }
    });
    match err {
        Some(e) => Err(e),
        None => Ok(best),
    }
}

fn cpu(quick: bool) -> Vec<Figure> {
    let mut out = Vec::new();
    for c in cases(Mode::Cpu, quick) {
        let Some((data, init)) = inputs(c.n) else {
            continue;
        };
        let p = params(c.iters);
        match time_runs(2, Duration::from_secs(2), || {
            serrano_kernel_cpu::kmeans::kmeans(&data, Some(&init), &p)
        }) {
            Ok(v) => out.push(figure(
                &c,
                v,
                format!("{} threads", rayon::current_num_threads()),
            )),
            Err(e) => eprintln!("kmeans cpu failed: {e}"),
        }
    }
    out
}

fn gpu(quick: bool) -> Vec<Figure> {
    let backend = match serrano_kernel_cuda::CudaBackend::probe() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("kmeans gpu: no CUDA device: {e}");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for c in cases(Mode::Gpu, quick) {
        let Some((data, init)) = inputs(c.n) else {
            continue;
        };
        let p = params(c.iters);
        let mut step = match serrano_kernel_cuda::kmeans::GpuStep::new(backend.gpu(), &data) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("kmeans gpu: {e}");
                return out;
            }
        };
        match time_runs(3, Duration::from_secs(2), || {
            serrano_kernel_core::kmeans::lloyd(&data, Some(&init), &p, &mut step)
        }) {
            Ok(v) => out.push(figure(&c, v, backend.gpu().name().to_string())),
            Err(e) => eprintln!("kmeans gpu failed: {e}"),
        }
    }
    out
}

fn opencl(quick: bool) -> Vec<Figure> {
    let backend = match serrano_kernel_opencl::OpenClBackend::probe() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("kmeans opencl: no OpenCL device: {e}");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for c in cases(Mode::OpenCl, quick) {
        let Some((data, init)) = inputs(c.n) else {
            continue;
        };
        let p = params(c.iters);
        match time_runs(1, Duration::from_secs(1), || {
            serrano_kernel_opencl::kmeans::kmeans(backend.cl(), &data, Some(&init), &p)
        }) {
            Ok(v) => out.push(figure(
                &c,
                v,
                format!("{} (baseline: CPU table)", backend.cl().description()),
            )),
            Err(e) => eprintln!("kmeans opencl failed: {e}"),
        }
    }
    out
}

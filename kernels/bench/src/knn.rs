//! Benchmarks of kNN: exact brute force, d=128, k=10, in queries per second over `N` points
//! (notes/speeds.md: CPU baseline 323 q/s at N=1M and 1,615 q/s at 200k; H100 40k q/s at 1M).
//! On the GPU the points are uploaded once and the timed search starts from host queries.

use std::time::Duration;

use serrano_kernel_core::Matrix;
use serrano_kernel_core::knn::{KnnParams, Metric};

use crate::{Figure, Mode, best_of, random_f32};

const D: usize = 128;
const K: usize = 10;

struct Case {
    n: usize,
    q: usize,
    baseline: Option<f64>,
    aim: Option<f64>,
}

fn size(n: usize, q: usize) -> String {
    let n = if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    };
    format!("N={n} d={D} k={K}, {q} queries")
}

fn inputs(n: usize, q: usize) -> Option<(Matrix, Matrix)> {
    let points = Matrix::new(n, D, random_f32(n * D, 1, 0.0, 1.0)).ok()?;
    let queries = Matrix::new(q, D, random_f32(q * D, 2, 0.0, 1.0)).ok()?;
    Some((points, queries))
}

fn params() -> KnnParams {
    KnnParams {
        k: K,
        metric: Metric::Euclidean,
    }
}

/// Figures of knn in `mode`; `quick` shrinks the sizes for a smoke run.
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
            q: 200,
            baseline: None,
            aim: None,
        }];
    }
    match mode {
        Mode::Cpu => vec![
            Case {
                n: 1_000_000,
                q: 1000,
                baseline: Some(323.0),
                aim: Some(2.0),
            },
            Case {
                n: 200_000,
                q: 2000,
                baseline: Some(1615.0),
                aim: Some(2.0),
            },
        ],
        Mode::Gpu => vec![
            Case {
                n: 1_000_000,
                q: 10_000,
                baseline: Some(40_000.0),
                aim: Some(1.5),
            },
            Case {
                n: 200_000,
                q: 10_000,
                baseline: None,
                aim: None,
            },
        ],
        // pocl on this machine's CPU is a correctness target, not a fast one: smaller runs.
        Mode::OpenCl => vec![Case {
            n: 200_000,
            q: 200,
            baseline: Some(1615.0),
            aim: None,
        }],
    }
}

fn figure(c: &Case, secs: f64, note: String) -> Figure {
    Figure {
        kernel: "knn",
        size: size(c.n, c.q),
        value: c.q as f64 / secs,
        unit: "queries/s",
        baseline: c.baseline,
        aim_ratio: c.aim,
        note,
    }
}

fn cpu(quick: bool) -> Vec<Figure> {
    let mut out = Vec::new();
    for c in cases(Mode::Cpu, quick) {
        let Some((points, queries)) = inputs(c.n, c.q) else {
            continue;
        };
        let p = params();
        let mut failed = None;
        let t = best_of(2, Duration::from_secs(2), || {
            if let Err(e) = serrano_kernel_cpu::knn::knn(&points, &queries, &p) {
                failed = Some(e);
            }
        });
        if let Some(e) = failed {
            eprintln!("knn cpu failed: {e}");
            continue;
        }
        out.push(figure(
            &c,
            t.as_secs_f64(),
            format!("{} threads", rayon::current_num_threads()),
        ));
    }
    out
}

fn gpu(quick: bool) -> Vec<Figure> {
    let backend = match serrano_kernel_cuda::CudaBackend::probe() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("knn gpu: no CUDA device: {e}");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for c in cases(Mode::Gpu, quick) {
        let Some((points, queries)) = inputs(c.n, c.q) else {
            continue;
        };
        let p = params();
        let index =
            match serrano_kernel_cuda::knn::GpuKnnIndex::new(backend.gpu(), &points, p.metric) {
                Ok(i) => i,
                Err(e) => {
                    eprintln!("knn gpu: {e}");
                    return out;
                }
            };
        let mut failed = None;
        let t = best_of(3, Duration::from_secs(2), || {
            if let Err(e) = index.search(&queries, p.k) {
                failed = Some(e);
            }
        });
        if let Some(e) = failed {
            eprintln!("knn gpu failed: {e}");
            continue;
        }
        out.push(figure(
            &c,
            t.as_secs_f64(),
            backend.gpu().name().to_string(),
        ));
    }
    out
}

fn opencl(quick: bool) -> Vec<Figure> {
    let backend = match serrano_kernel_opencl::OpenClBackend::probe() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("knn opencl: no OpenCL device: {e}");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for c in cases(Mode::OpenCl, quick) {
        let Some((points, queries)) = inputs(c.n, c.q) else {
            continue;
        };
        let p = params();
        let mut failed = None;
        let t = best_of(1, Duration::from_secs(1), || {
            if let Err(e) = serrano_kernel_opencl::knn::knn(backend.cl(), &points, &queries, &p) {
                failed = Some(e);
            }
        });
        if let Some(e) = failed {
            eprintln!("knn opencl failed: {e}");
            continue;
        }
        out.push(figure(
            &c,
            t.as_secs_f64(),
            format!("{} (baseline: CPU table)", backend.cl().description()),
        ));
    }
    out
}

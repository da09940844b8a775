//! Benchmarks of kNN: exact brute force, d=128, k=10, in queries per second over `N` points
//! (notes/speeds.md: CPU baseline 323 q/s at N=1M and 1,615 q/s at 200k; H100 40k q/s at 1M).
//! On the GPU the points are uploaded once and the timed search starts from host queries.

use serrano_kernel_core::Matrix;
use serrano_kernel_core::knn::{KnnParams, Metric};

use crate::{Device, Figure, Mode, best_ok, count_label, random_f32, standard_runs};

const D: usize = 128;
const K: usize = 10;

struct Case {
    n: usize,
    q: usize,
    baseline: Option<f64>,
    aim: Option<f64>,
}

fn inputs(n: usize, q: usize) -> Option<(Matrix, Matrix)> {
    let points = Matrix::new(n, D, random_f32(n * D, 1, 0.0, 1.0)).ok()?;
    let queries = Matrix::new(q, D, random_f32(q * D, 2, 0.0, 1.0)).ok()?;
    Some((points, queries))
}

/// Figures of knn in `mode`; `quick` shrinks the sizes for a smoke run.
pub fn run(mode: Mode, quick: bool) -> Vec<Figure> {
    let Some(device) = Device::probe(mode, "knn") else {
        return Vec::new();
    };
    let (runs, min_time) = standard_runs(mode);
    let p = KnnParams {
        k: K,
        metric: Metric::Euclidean,
    };
    let mut out = Vec::new();
    for c in cases(mode, quick) {
        let Some((points, queries)) = inputs(c.n, c.q) else {
            continue;
        };
        let timed = match &device {
            // The points are uploaded once; the timed search starts from host queries.
            Device::Cuda(b) => {
                serrano_kernel_cuda::knn::GpuKnnIndex::new(b.gpu(), &points, p.metric).and_then(
                    |index| best_ok(runs, min_time, || index.search(&queries, p.k).map(drop)),
                )
            }
            _ => best_ok(runs, min_time, || {
                device.backend().knn(&points, &queries, &p).map(drop)
            }),
        };
        match timed {
            Ok((t, ())) => out.push(Figure {
                kernel: "knn",
                size: format!("N={} d={D} k={K}, {} queries", count_label(c.n), c.q),
                value: c.q as f64 / t.as_secs_f64(),
                unit: "queries/s",
                baseline: c.baseline,
                aim_ratio: c.aim,
                note: device.note(),
            }),
            Err(e) => eprintln!("knn {mode:?} failed: {e}"),
        }
    }
    out
}

fn case(n: usize, q: usize, baseline: Option<f64>, aim: Option<f64>) -> Case {
    Case {
        n,
        q,
        baseline,
        aim,
    }
}

fn cases(mode: Mode, quick: bool) -> Vec<Case> {
    if quick {
        return vec![case(20_000, 200, None, None)];
    }
    match mode {
        Mode::Cpu => vec![
            case(1_000_000, 1000, Some(323.0), Some(2.0)),
            case(200_000, 2000, Some(1615.0), Some(2.0)),
        ],
        Mode::Gpu => vec![
            case(1_000_000, 10_000, Some(40_000.0), Some(1.5)),
            case(200_000, 10_000, None, None),
        ],
        // pocl on this machine's CPU is a correctness target, not a fast one: smaller runs.
        Mode::OpenCl => vec![case(200_000, 200, Some(1615.0), None)],
    }
}

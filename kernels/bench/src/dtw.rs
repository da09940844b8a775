//! Benchmarks of dtw: all-pairs DTW distances between `n` series and `k` others (the shape of a
//! DTW k-means assignment), in cell updates per second. A cell update is one DP cell actually
//! computed, i.e. inside the (widened) band: `DtwParams::cells` per pair. The L^2-equivalent rate
//! (every cell of the full table counted) is given in the note where the band is narrower.

use std::time::Duration;

use serrano_kernel_core::Matrix;
use serrano_kernel_core::dtw::DtwParams;

use crate::{Figure, Mode, best_of, random_f32};

/// notes/speeds.md: DTW length 128 on 2 cores (tslearn), G cell updates/s.
const CPU_BASELINE_G: f64 = 0.143;
/// notes/speeds.md: naive CUDA kernel on an H100, T cell updates/s, by length.
const GPU_BASELINE_T_128: f64 = 2.4;
const GPU_BASELINE_T_256: f64 = 0.23;

struct Case {
    n: usize,
    k: usize,
    len: usize,
    window: Option<usize>,
    baseline: Option<f64>,
}

impl Case {
    fn size(&self) -> String {
        let w = self
            .window
            .map(|w| format!("w={w}"))
            .unwrap_or_else(|| "full window".into());
        format!("{}x{} pairs, L={}, {w}", self.n, self.k, self.len)
    }
    fn inputs(&self) -> (Matrix, Matrix, DtwParams) {
        let a = random_f32(self.n * self.len, 11, -1.0, 1.0);
        let b = random_f32(self.k * self.len, 12, -1.0, 1.0);
        // Shapes are consistent by construction.
        let a = Matrix::new(self.n, self.len, a).unwrap_or_else(|_| Matrix::filled(0, 0, 0.0));
        let b = Matrix::new(self.k, self.len, b).unwrap_or_else(|_| Matrix::filled(0, 0, 0.0));
        (
            a,
            b,
            DtwParams {
                window: self.window,
            },
        )
    }
    /// (band cells, full-table cells) over all pairs.
    fn cells(&self, p: &DtwParams) -> (f64, f64) {
        let pairs = (self.n * self.k) as f64;
        (
            pairs * p.cells(self.len, self.len) as f64,
            pairs * (self.len * self.len) as f64,
        )
    }
}

/// Figures of dtw in `mode`; `quick` shrinks the sizes for a smoke run.
pub fn run(mode: Mode, quick: bool) -> Vec<Figure> {
    match mode {
        Mode::Cpu => cpu(quick),
        Mode::Gpu => gpu(quick),
        Mode::OpenCl => Vec::new(),
    }
}

fn note(band: f64, full: f64, secs: f64, scale: f64, unit: &str, extra: &str) -> String {
    let mut s = "counts cells inside the band".to_string();
    if band < full {
        s.push_str(&format!(
            "; L^2-equivalent {:.3} {unit}",
            full / secs / scale
        ));
    }
    s.push_str(extra);
    s
}

fn cpu(quick: bool) -> Vec<Figure> {
    let cases = if quick {
        vec![
            Case {
                n: 64,
                k: 32,
                len: 128,
                window: None,
                baseline: Some(CPU_BASELINE_G),
            },
            Case {
                n: 16,
                k: 8,
                len: 1000,
                window: Some(200),
                baseline: None,
            },
        ]
    } else {
        vec![
            Case {
                n: 2000,
                k: 256,
                len: 128,
                window: None,
                baseline: Some(CPU_BASELINE_G),
            },
            Case {
                n: 256,
                k: 64,
                len: 1000,
                window: Some(200),
                baseline: None,
            },
            Case {
                n: 64,
                k: 32,
                len: 1000,
                window: None,
                baseline: None,
            },
        ]
    };
    let (runs, min_time) = if quick {
        (1, Duration::ZERO)
    } else {
        (2, Duration::from_millis(500))
    };
    let threads = rayon::current_num_threads();
    let mut figures = Vec::new();
    for case in cases {
        let (a, b, p) = case.inputs();
        let mut failed = None;
        let t = best_of(runs, min_time, || {
            if let Err(e) = serrano_kernel_cpu::dtw::dtw(&a, &b, &p) {
                failed = Some(e);
            }
        });
        let (band, full) = case.cells(&p);
        let secs = t.as_secs_f64();
        figures.push(Figure {
            kernel: "dtw",
            size: case.size(),
            value: band / secs / 1e9,
            unit: "G cell updates/s",
            baseline: case.baseline,
            aim_ratio: case.baseline.map(|_| 10.0),
            note: match failed {
                Some(e) => format!("FAILED: {e}"),
                None => note(
                    band,
                    full,
                    secs,
                    1e9,
                    "G/s",
                    &format!("; {threads} threads"),
                ),
            },
        });
    }
    figures
}

fn gpu(quick: bool) -> Vec<Figure> {
    use serrano_kernel_cuda::dtw::{DeviceDtw, Strategy};
    let backend = match serrano_kernel_cuda::CudaBackend::probe() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("dtw gpu benchmark skipped: {e}");
            return Vec::new();
        }
    };
    let gpu = backend.gpu();
    let cases = if quick {
        vec![
            Case {
                n: 512,
                k: 64,
                len: 128,
                window: None,
                baseline: Some(GPU_BASELINE_T_128),
            },
            Case {
                n: 64,
                k: 16,
                len: 1000,
                window: Some(200),
                baseline: None,
            },
        ]
    } else {
        vec![
            Case {
                n: 20_000,
                k: 256,
                len: 128,
                window: None,
                baseline: Some(GPU_BASELINE_T_128),
            },
            Case {
                n: 10_000,
                k: 256,
                len: 256,
                window: None,
                baseline: Some(GPU_BASELINE_T_256),
            },
            Case {
                n: 10_000,
                k: 64,
                len: 1000,
                window: Some(200),
                baseline: None,
            },
            Case {
                n: 2_000,
                k: 64,
                len: 1000,
                window: None,
                baseline: None,
            },
        ]
    };
    let (runs, min_time) = if quick {
        (1, Duration::ZERO)
    } else {
        (3, Duration::from_millis(500))
    };
    let mut figures = Vec::new();
    for case in cases {
        let (a, b, p) = case.inputs();
        let (band, full) = case.cells(&p);
        // Data resident on the device: only the kernel (and its completion) is timed.
        let result = DeviceDtw::new(gpu, &a, &b, &p, Strategy::Auto).and_then(|mut job| {
            job.run(gpu)?; // warm-up: compiles the module
            let mut failed = None;
            let t = best_of(runs, min_time, || {
                if let Err(e) = job.run(gpu) {
                    failed = Some(e);
                }
            });
            failed.map_or(Ok(t), Err)
        });
        let (value, text) = match result {
            Ok(t) => {
                let secs = t.as_secs_f64();
                (
                    band / secs / 1e12,
                    note(band, full, secs, 1e12, "T/s", "; aim >= 1 T/s"),
                )
            }
            Err(e) => (0.0, format!("FAILED: {e}")),
        };
        figures.push(Figure {
            kernel: "dtw",
            size: case.size(),
            value,
            unit: "T cell updates/s",
            baseline: case.baseline,
            aim_ratio: None,
            note: text,
        });
    }
    figures
}

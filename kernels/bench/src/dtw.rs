//! Benchmarks of dtw: all-pairs DTW distances between `n` series and `k` others (the shape of a
//! DTW k-means assignment), in cell updates per second. A cell update is one DP cell actually
//! computed, i.e. inside the (widened) band: `DtwParams::cells` per pair. The L^2-equivalent rate
//! (every cell of the full table counted) is given in the note where the band is narrower.

use std::time::Duration;

use serrano_kernel_core::Matrix;
use serrano_kernel_core::dtw::DtwParams;

use serrano_kernel_cuda::dtw::{DeviceDtw, Strategy};

use crate::{Device, Figure, Mode, best_ok, random_f32};

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

/// Figures of dtw in `mode`; `quick` shrinks the sizes for a smoke run. OpenCL has no dtw.
pub fn run(mode: Mode, quick: bool) -> Vec<Figure> {
    if mode == Mode::OpenCl {
        return Vec::new();
    }
    let Some(device) = Device::probe(mode, "dtw") else {
        return Vec::new();
    };
    let (runs, min_time) = match (quick, mode) {
        (true, _) => (1, Duration::ZERO),
        (false, Mode::Cpu) => (2, Duration::from_millis(500)),
        (false, _) => (3, Duration::from_millis(500)),
    };
    // CPU figures in G cell updates/s against the tslearn baseline (aim 10x); GPU in T/s.
    let (scale, unit, short, aim) = match mode {
        Mode::Cpu => (1e9, "G cell updates/s", "G/s", Some(10.0)),
        _ => (1e12, "T cell updates/s", "T/s", None),
    };
    let mut figures = Vec::new();
    for case in cases(mode, quick) {
        let (a, b, p) = case.inputs();
        let (band, full) = case.cells(&p);
        let timed = match &device {
            Device::Cuda(cuda) => {
                // Data resident on the device: only the kernel (and its completion) is timed,
                // after a warm-up run that compiles the module.
                let gpu = cuda.gpu();
                DeviceDtw::new(gpu, &a, &b, &p, Strategy::Auto).and_then(|mut job| {
                    job.run(gpu)?;
                    best_ok(runs, min_time, || job.run(gpu))
                })
            }
            _ => best_ok(runs, min_time, || {
                device.backend().dtw(&a, &b, &p).map(drop)
            }),
        };
        let (value, note) = match timed {
            Ok((t, ())) => {
                let secs = t.as_secs_f64();
                let mut note = "counts cells inside the band".to_string();
                if band < full {
                    note.push_str(&format!(
                        "; L^2-equivalent {:.3} {short}",
                        full / secs / scale
                    ));
                }
                note.push_str(&match mode {
                    Mode::Cpu => format!("; {}", device.note()),
                    _ => "; aim >= 1 T/s".to_string(),
                });
                (band / secs / scale, note)
            }
            Err(e) => (0.0, format!("FAILED: {e}")),
        };
        figures.push(Figure {
            kernel: "dtw",
            size: case.size(),
            value,
            unit,
            baseline: case.baseline,
            aim_ratio: case.baseline.and(aim),
            note,
        });
    }
    figures
}

fn case(n: usize, k: usize, len: usize, window: Option<usize>, baseline: Option<f64>) -> Case {
    Case {
        n,
        k,
        len,
        window,
        baseline,
    }
}

fn cases(mode: Mode, quick: bool) -> Vec<Case> {
    match (mode, quick) {
        (Mode::Cpu, true) => vec![
            case(64, 32, 128, None, Some(CPU_BASELINE_G)),
            case(16, 8, 1000, Some(200), None),
        ],
        (Mode::Cpu, false) => vec![
            case(2000, 256, 128, None, Some(CPU_BASELINE_G)),
            case(256, 64, 1000, Some(200), None),
            case(64, 32, 1000, None, None),
        ],
        (_, true) => vec![
            case(512, 64, 128, None, Some(GPU_BASELINE_T_128)),
            case(64, 16, 1000, Some(200), None),
        ],
        (_, false) => vec![
            case(20_000, 256, 128, None, Some(GPU_BASELINE_T_128)),
            case(10_000, 256, 256, None, Some(GPU_BASELINE_T_256)),
            case(10_000, 64, 1000, Some(200), None),
            case(2_000, 64, 1000, None, None),
        ],
    }
}

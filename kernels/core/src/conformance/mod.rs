//! The one conformance suite every implementation family passes (like the datastore and bus
//! contract suites): each kernel module here has checks that take a `&dyn KernelBackend`, run it
//! on random inputs of several shapes and on the edge cases, and compare with
//! [`crate::reference`] at the tolerances stated next to each check, times the backend's `tol`
//! factor (1 for the CPU; accelerators may use 2 for their different rounding).
//!
//! A backend crate runs it with [`conformance_tests!`] in one test file:
//! `serrano_kernel_core::conformance_tests!(|| Some(Box::new(CpuBackend::new())), 1.0);`
//! The closure returns `None` (after printing why) when the device is absent: the tests then
//! pass as skipped. Enabled by the `conformance` feature (dev-dependency only).

use crate::{KernelBackend, KernelName, Matrix};

pub mod black_scholes;
pub mod dtw;
pub mod fft;
pub mod kalman;
pub mod kmeans;
pub mod knn;
pub mod min_max;
pub mod savgol;
pub mod wavelet;

/// Deterministic SplitMix64 numbers, so that a failure reproduces from its seed.
#[derive(Debug, Clone)]
pub struct Rng(crate::kmeans::SplitMix64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(crate::kmeans::SplitMix64::new(seed ^ 0x5DEE_CE66_D1CE_4E5B))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    /// Uniform in `[lo, hi)`.
    pub fn f32(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    pub fn matrix(&mut self, rows: usize, cols: usize, lo: f32, hi: f32) -> Matrix {
        let data = (0..rows * cols).map(|_| self.f32(lo, hi)).collect();
        Matrix::new(rows, cols, data).unwrap_or_else(|_| unreachable!("shape matches"))
    }
}

/// Panics unless `got` and `want` have the same shape and every value is within
/// `abs + rel * |want|` (NaN matches NaN; infinities must be equal).
#[track_caller]
pub fn assert_close(what: &str, got: &Matrix, want: &Matrix, abs: f32, rel: f32) {
    assert_eq!(
        (got.rows(), got.cols()),
        (want.rows(), want.cols()),
        "{what}: shape {}x{} vs {}x{}",
        got.rows(),
        got.cols(),
        want.rows(),
        want.cols()
    );
    for (i, (g, w)) in got.data().iter().zip(want.data()).enumerate() {
        let ok = if w.is_nan() {
            g.is_nan()
        } else if w.is_infinite() {
            g == w
        } else {
            (g - w).abs() <= abs + rel * w.abs()
        };
        assert!(
            ok,
            "{what}: value {i} (row {}, col {}) is {g}, want {w}",
            i / got.cols().max(1),
            i % got.cols().max(1)
        );
    }
}

/// One named check of the suite.
pub struct Check {
    pub kernel: KernelName,
    pub name: &'static str,
    pub run: fn(&dyn KernelBackend, f32),
}

/// Every check of the suite, for `conformance_tests!` and for ad-hoc runs.
pub fn all_checks() -> Vec<Check> {
    let mut all = Vec::new();
    all.extend(knn::checks());
    all.extend(kmeans::checks());
    all.extend(dtw::checks());
    all.extend(savgol::checks());
    all.extend(black_scholes::checks());
    all.extend(kalman::checks());
    all.extend(fft::checks());
    all.extend(wavelet::checks());
    all.extend(min_max::checks());
    all
}

/// Runs every check of `kernel` that `backend` supports; returns how many ran.
pub fn run_kernel(backend: &dyn KernelBackend, kernel: KernelName, tol: f32) -> usize {
    if !backend.supports(kernel) {
        return 0;
    }
    let mut ran = 0;
    for check in all_checks().into_iter().filter(|c| c.kernel == kernel) {
        (check.run)(backend, tol);
        ran += 1;
    }
    ran
}

/// One `#[test]` per kernel running its checks against the backend the closure makes (once per
/// test binary; calls are serialised because some runtimes, e.g. pocl, dislike concurrent use).
#[macro_export]
macro_rules! conformance_tests {
    (@tests $($test:ident: $kernel:ident),*) => {
        $(
            #[test]
            fn $test() {
                __conformance_run($crate::KernelName::$kernel)
            }
        )*
    };
    ($make:expr, $tol:expr) => {
        fn __conformance_backend() -> Option<&'static (dyn $crate::KernelBackend + 'static)> {
            static BACKEND: std::sync::OnceLock<Option<Box<dyn $crate::KernelBackend>>> =
                std::sync::OnceLock::new();
            let make: fn() -> Option<Box<dyn $crate::KernelBackend>> = $make;
            BACKEND.get_or_init(make).as_deref()
        }
        fn __conformance_run(kernel: $crate::KernelName) {
            static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
            let _guard = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
            match __conformance_backend() {
                Some(b) => {
                    let ran = $crate::conformance::run_kernel(b, kernel, $tol);
                    eprintln!(
                        "{}: {} checks of {} passed on {}",
                        kernel,
                        ran,
                        kernel,
                        b.device()
                    );
                }
                None => eprintln!("SKIPPED {kernel}: no device"),
            }
        }
        $crate::conformance_tests!(@tests
            conformance_knn: Knn,
            conformance_kmeans: KMeans,
            conformance_dtw: Dtw,
            conformance_savgol: SavitzkyGolay,
            conformance_black_scholes: BlackScholes,
            conformance_kalman: Kalman,
            conformance_fft: Fft,
            conformance_wavelet: Wavelet,
            conformance_min_max: MinMax
        );
    };
}

// ---- Shared helpers of the checks ----

/// A matrix from literal data whose length the check states (`rows · cols`).
#[track_caller]
pub fn matrix(rows: usize, cols: usize, data: Vec<f32>) -> Matrix {
    match Matrix::new(rows, cols, data) {
        Ok(m) => m,
        Err(e) => panic!("a check's own {rows}x{cols} matrix: {e}"),
    }
}

/// The value of a call that must succeed, or a panic naming the case and the error.
#[track_caller]
pub fn ok<T>(what: &str, result: crate::Result<T>) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{what}: unexpected error: {e}"),
    }
}

/// Like [`assert_close`] with a tolerance per row of `rel · max(1, max |want| of the row)`:
/// the error of a transform (FFT, wavelet) grows with the magnitude of the whole row, not
/// of each value. NaN matches NaN.
#[track_caller]
pub fn assert_close_rows(what: &str, got: &Matrix, want: &Matrix, rel: f32) {
    assert_eq!(
        (got.rows(), got.cols()),
        (want.rows(), want.cols()),
        "{what}: shape {}x{} vs {}x{}",
        got.rows(),
        got.cols(),
        want.rows(),
        want.cols()
    );
    for r in 0..want.rows() {
        let scale = want
            .row(r)
            .iter()
            .filter(|v| v.is_finite())
            .fold(1.0f32, |m, v| m.max(v.abs()));
        for (c, (&g, &w)) in got.row(r).iter().zip(want.row(r)).enumerate() {
            let ok = if w.is_nan() {
                g.is_nan()
            } else {
                (g - w).abs() <= rel * scale
            };
            assert!(
                ok,
                "{what}: row {r}, col {c} is {g}, want {w} (tolerance {})",
                rel * scale
            );
        }
    }
}

// ---- Helpers of the knn, kmeans and dtw checks (distance kernels) ----

/// Panics unless `r` is an error that `is_kind` accepts (`kind` names it); returns the error.
#[track_caller]
pub fn expect_error<T>(
    what: &str,
    r: crate::Result<T>,
    kind: &str,
    is_kind: fn(&crate::KernelError) -> bool,
) -> crate::KernelError {
    match r {
        Ok(_) => panic!("{what}: succeeded, want {kind}"),
        Err(e) if is_kind(&e) => e,
        Err(e) => panic!("{what}: {e}, want {kind}"),
    }
}

/// Panics unless `r` is `KernelError::InvalidInput`; returns the error.
#[track_caller]
pub fn expect_invalid_input<T>(what: &str, r: crate::Result<T>) -> crate::KernelError {
    expect_error(what, r, "InvalidInput", |e| {
        matches!(e, crate::KernelError::InvalidInput(_))
    })
}

/// Panics unless `r` is `KernelError::InvalidArgument`; returns the error.
#[track_caller]
pub fn expect_invalid_argument<T>(what: &str, r: crate::Result<T>) -> crate::KernelError {
    expect_error(what, r, "InvalidArgument", |e| {
        matches!(e, crate::KernelError::InvalidArgument(_))
    })
}

/// A `rows x cols` matrix of integers in `0..levels` (as `f32`): direct sums of squared or
/// absolute differences on it are exact in `f32` in any order, so equal distances tie exactly.
pub fn small_ints(rng: &mut Rng, rows: usize, cols: usize, levels: usize) -> Matrix {
    let data = (0..rows * cols).map(|_| rng.below(levels) as f32).collect();
    Matrix::new(rows, cols, data).unwrap_or_else(|_| unreachable!("shape matches"))
}

// ---- Shared helpers of the kalman, fft, wavelet and min_max checks (signal family group) ----

/// What [`Check::run`] holds: a check on a backend with its tolerance factor.
pub type CheckFn = fn(&dyn KernelBackend, f32);

/// The checks of `kernel`, from `(name, check)` pairs.
pub fn checks_of(kernel: KernelName, list: &[(&'static str, CheckFn)]) -> Vec<Check> {
    list.iter()
        .map(|&(name, run)| Check { kernel, name, run })
        .collect()
}

/// The savgol and black_scholes checks hold for the reference itself (their scipy and textbook
/// values, limits and error cases are facts about the semantics, not about one backend).
#[cfg(test)]
mod reference_savgol_black_scholes {
    use crate::backend::BackendKind;
    use crate::black_scholes::BsParams;
    use crate::savgol::SavgolParams;
    use crate::{KernelBackend, KernelName, Matrix, Result, reference};

    struct Reference;

    impl KernelBackend for Reference {
        fn kind(&self) -> BackendKind {
            BackendKind::Cpu
        }
        fn device(&self) -> String {
            "the f64 reference".into()
        }
        fn supports(&self, kernel: KernelName) -> bool {
            matches!(kernel, KernelName::SavitzkyGolay | KernelName::BlackScholes)
        }
        fn savgol(&self, signals: &Matrix, p: &SavgolParams) -> Result<Matrix> {
            reference::savgol::savgol(signals, p)
        }
        fn black_scholes(&self, options: &Matrix, p: &BsParams) -> Result<Matrix> {
            reference::black_scholes::black_scholes(options, p)
        }
    }

    #[test]
    fn savgol_checks_hold_for_the_reference() {
        assert_eq!(
            super::run_kernel(&Reference, KernelName::SavitzkyGolay, 1.0),
            super::savgol::checks().len()
        );
    }

    #[test]
    fn black_scholes_checks_hold_for_the_reference() {
        assert_eq!(
            super::run_kernel(&Reference, KernelName::BlackScholes, 1.0),
            super::black_scholes::checks().len()
        );
    }
}

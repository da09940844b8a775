#![allow(clippy::unwrap_used, clippy::expect_used)]
//! OpenCL Black-Scholes against the `f64` reference (pocl here). Skipped, with the reason printed,
//! where `OpenClBackend::probe()` fails (no OpenCL platform or device).
//!
//! Tolerances as the CPU tests, doubled (OpenCL's exp/log/erfc are within a few ulp): per
//! output plus `1e-6 * |ref|` (gamma `4e-5 * |ref|`): prices `1e-6 * (spot + strike)`, deltas
//! `2e-6`, gamma `4e-8 / (spot * vol * sqrt years)`, vega `4e-6 * spot * sqrt years`, theta
//! `8e-7 * (spot * vol / sqrt years + strike)`, rho `4e-6 * strike * years`.

use std::sync::OnceLock;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serrano_kernel_core::black_scholes::BsParams;
use serrano_kernel_core::reference::black_scholes as refbs;
use serrano_kernel_core::{KernelBackend, KernelError, Matrix};
use serrano_kernel_opencl::OpenClBackend;

/// One device for the whole file: pocl has crashed here when several test threads created their
/// own contexts at once.
fn backend() -> Option<OpenClBackend> {
    static BACKEND: OnceLock<Option<OpenClBackend>> = OnceLock::new();
    let b = BACKEND.get_or_init(|| match OpenClBackend::probe() {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("SKIPPED: no OpenCL device: {e}");
            None
        }
    });
    b.clone()
}

fn params(greeks: bool) -> BsParams {
    BsParams {
        rate: None,
        volatility: None,
        greeks,
    }
}

fn random_options(n: usize, seed: u64) -> Matrix {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut data = Vec::with_capacity(n * 5);
    for _ in 0..n {
        data.push(rng.random_range(10.0f32..200.0));
        data.push(rng.random_range(10.0f32..200.0));
        data.push(rng.random_range(0.01f32..5.0));
        data.push(rng.random_range(-0.02f32..0.1));
        data.push(rng.random_range(0.05f32..1.0));
    }
    Matrix::new(n, 5, data).unwrap()
}

fn check(options: &[[f32; 5]], got: &Matrix) {
    for (i, o) in options.iter().enumerate() {
        let [s, k, t, r, v] = o.map(f64::from);
        let want = refbs::price(s, k, t, r, v);
        let vt = v * t.sqrt();
        let price = 1e-6 * (s + k);
        let theta = 8e-7 * (s * v / t.sqrt().max(1e-3) + k);
        let tols = [
            price,
            price,
            2e-6,
            2e-6,
            if vt > 0.0 { 4e-8 / (s * vt) } else { 0.0 },
            4e-6 * s * t.sqrt(),
            theta,
            theta,
            4e-6 * k * t,
            4e-6 * k * t,
        ];
        for (c, g) in got.row(i).iter().enumerate() {
            let w = want[c];
            let tol = tols[c] + if c == 4 { 4e-5 } else { 1e-6 } * w.abs();
            assert!(
                (*g as f64 - w).abs() <= tol,
                "row {i} {o:?} column {c}: {g} vs {w} (tol {tol:e})"
            );
        }
    }
}

fn rows_of(m: &Matrix) -> Vec<[f32; 5]> {
    (0..m.rows())
        .map(|i| {
            let r = m.row(i);
            [r[0], r[1], r[2], r[3], r[4]]
        })
        .collect()
}

#[test]
fn random_options_match_reference() {
    let Some(b) = backend() else { return };
    for (n, seed) in [(1, 1), (257, 2), (100_003, 3)] {
        let m = random_options(n, seed);
        for greeks in [false, true] {
            let y = b.black_scholes(&m, &params(greeks)).unwrap();
            assert_eq!((y.rows(), y.cols()), (n, if greeks { 10 } else { 2 }));
            check(&rows_of(&m), &y);
        }
    }
    // 3 columns with the rate and volatility as parameters.
    let m5 = random_options(1000, 4);
    let m3 = Matrix::new(
        1000,
        3,
        (0..1000).flat_map(|i| m5.row(i)[..3].to_vec()).collect(),
    )
    .unwrap();
    let mut p = params(true);
    p.rate = Some(0.03);
    p.volatility = Some(0.25);
    let y = b.black_scholes(&m3, &p).unwrap();
    let rows: Vec<[f32; 5]> = (0..1000)
        .map(|i| [m3.row(i)[0], m3.row(i)[1], m3.row(i)[2], 0.03, 0.25])
        .collect();
    check(&rows, &y);
}

#[test]
fn textbook_limits_and_errors() {
    let Some(b) = backend() else { return };
    let rows = [
        [100.0f32, 100.0, 1.0, 0.05, 0.2],
        [120.0, 100.0, 0.0, 0.05, 0.3],
        [90.0, 100.0, 1.0, 0.05, 0.0],
        [100.0, 100.0, 0.0, 0.05, 0.2],
    ];
    let m = Matrix::new(4, 5, rows.iter().flatten().copied().collect()).unwrap();
    let y = b.black_scholes(&m, &params(true)).unwrap();
    check(&rows, &y);
    assert!((y.row(0)[0] - 10.4506).abs() < 1e-3 && (y.row(0)[1] - 5.5735).abs() < 1e-3);
    assert_eq!(&y.row(1)[2..6], &[1.0, 0.0, 0.0, 0.0]);
    assert_eq!(&y.row(2)[2..6], &[0.0, -1.0, 0.0, 0.0]);
    assert_eq!(&y.row(3)[2..6], &[0.5, -0.5, 0.0, 0.0]);
    let mut bad = random_options(10, 5);
    bad.data_mut()[7 * 5 + 4] = -0.1;
    match b.black_scholes(&bad, &params(false)) {
        Err(KernelError::InvalidInput(msg)) => assert!(msg.contains("row 7 "), "{msg}"),
        other => panic!("{other:?}"),
    }
    let four = Matrix::new(2, 4, vec![1.0; 8]).unwrap();
    assert!(matches!(
        b.black_scholes(&four, &params(false)),
        Err(KernelError::InvalidInput(_))
    ));
    let empty = Matrix::new(0, 5, Vec::new()).unwrap();
    assert_eq!(b.black_scholes(&empty, &params(false)).unwrap().cols(), 2);
}

#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CPU Black-Scholes against the `f64` reference, textbook values and put-call parity; its `f32`
//! approximations of exp, ln and the normal CDF against `f64` std / the reference CDF.
//!
//! Tolerances (f32 arithmetic; random inputs: spot, strike in [10, 200], years in [0.01, 5], rate
//! in [-0.02, 0.1], volatility in [0.05, 1]); each plus `5e-7 * |ref|` (gamma: `2e-5 * |ref|`):
//! - prices: `5e-7 * (spot + strike)`; deltas: `1e-6`; gamma: `2e-8 / (spot * vol * sqrt years)`;
//! - vega: `2e-6 * spot * sqrt years`; theta: `4e-7 * (spot * vol / sqrt years + strike)`;
//! - rho: `2e-6 * strike * years`.
//!
//! Measured on 40k random options the worst error is below a third of each tolerance.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serrano_kernel_core::black_scholes::BsParams;
use serrano_kernel_core::reference::black_scholes::{self as refbs, norm_cdf};
use serrano_kernel_core::{KernelError, Matrix};
use serrano_kernel_cpu::black_scholes::{
    black_scholes, exp_f32, ln_f32, norm_cdf_f32, norm_cdf_pair,
};

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

/// Compares every output of `got` (rows of `options` with `[s, k, t, r, v]`) with the reference.
fn check(options: &[[f32; 5]], got: &Matrix) {
    for (i, o) in options.iter().enumerate() {
        let [s, k, t, r, v] = o.map(f64::from);
        let want = refbs::price(s, k, t, r, v);
        let vt = v * t.sqrt();
        let price_scale = 5e-7 * (s + k);
        let theta_scale = 4e-7 * (s * v / t.sqrt().max(1e-3) + k);
        let tols = [
            price_scale,
            price_scale,
            1e-6,
            1e-6,
            if vt > 0.0 { 2e-8 / (s * vt) } else { 0.0 },
            2e-6 * s * t.sqrt(),
            theta_scale,
            theta_scale,
            2e-6 * k * t,
            2e-6 * k * t,
        ];
        for (c, g) in got.row(i).iter().enumerate() {
            let w = want[c];
            let tol = tols[c] + if c == 4 { 2e-5 } else { 5e-7 } * w.abs();
            let err = (*g as f64 - w).abs();
            assert!(
                err <= tol,
                "row {i} {o:?} column {c}: {g} vs {w} (err {err:e}, tol {tol:e})"
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
fn approximations_match_f64() {
    let mut worst = [0.0f64; 4];
    for i in 0..=200_000 {
        let x = -87.0 + 175.0 * i as f64 / 200_000.0;
        let e = ((exp_f32(x as f32) as f64) / (x as f32 as f64).exp() - 1.0).abs();
        worst[0] = worst[0].max(e);
        let y = (-40.0 + 80.0 * i as f64 / 200_000.0).exp2() as f32;
        let e = (ln_f32(y) as f64 - (y as f64).ln()).abs();
        worst[1] = worst[1].max(e);
        let z = (-9.0 + 18.0 * i as f64 / 200_000.0) as f32;
        let exact = norm_cdf(z as f64);
        let got = norm_cdf_f32(z) as f64;
        if z <= 0.0 {
            worst[2] = worst[2].max(((got - exact) / exact).abs());
        }
        worst[3] = worst[3].max((got - exact).abs());
        let (a, b) = norm_cdf_pair(z);
        assert_eq!((a, b), (norm_cdf_f32(z), norm_cdf_f32(-z)));
    }
    // ln near 1, relative (what ln(spot/strike) needs at the money).
    for i in 1..1000 {
        let y = 1.0f32 + i as f32 * 1e-5;
        let exact = (y as f64).ln();
        assert!(((ln_f32(y) as f64 - exact) / exact).abs() < 1e-6, "ln({y})");
    }
    eprintln!(
        "worst: exp rel {:e}, ln abs {:e}, cdf rel (x <= 0) {:e}, cdf abs {:e}",
        worst[0], worst[1], worst[2], worst[3]
    );
    assert!(worst[0] < 3e-7, "exp {:e}", worst[0]);
    assert!(worst[1] < 2e-7 * 30.0, "ln {:e}", worst[1]); // |ln y| <= 28: a few ulp of the result
    assert!(worst[2] < 1e-6, "cdf relative {:e}", worst[2]);
    assert!(worst[3] < 3e-7, "cdf absolute {:e}", worst[3]);
    assert_eq!(exp_f32(0.0), 1.0);
    assert_eq!(norm_cdf_f32(-30.0), 0.0);
    assert_eq!(norm_cdf_f32(30.0), 1.0);
}

#[test]
fn random_options_match_reference() {
    for (n, seed) in [(1, 1), (7, 2), (129, 3), (40_000, 4)] {
        let m = random_options(n, seed);
        let rows = rows_of(&m);
        let prices = black_scholes(&m, &params(false)).unwrap();
        assert_eq!((prices.rows(), prices.cols()), (n, 2));
        check(&rows, &prices);
        let all = black_scholes(&m, &params(true)).unwrap();
        assert_eq!((all.rows(), all.cols()), (n, 10));
        check(&rows, &all);
        // The greeks run prices exactly as the price-only run.
        for i in 0..n {
            assert_eq!(&all.row(i)[..2], prices.row(i));
        }
    }
}

#[test]
fn textbook_values_and_parity() {
    let m = Matrix::new(1, 5, vec![100.0, 100.0, 1.0, 0.05, 0.2]).unwrap();
    let y = black_scholes(&m, &params(true)).unwrap();
    let v = y.row(0);
    assert!((v[0] - 10.4506).abs() < 1e-3, "call {}", v[0]);
    assert!((v[1] - 5.5735).abs() < 1e-3, "put {}", v[1]);
    assert!((v[2] - 0.6368).abs() < 1e-4, "delta {}", v[2]);
    assert!((v[4] - 0.018_762).abs() < 1e-5, "gamma {}", v[4]);
    assert!((v[5] - 37.524).abs() < 1e-2, "vega {}", v[5]);
    assert!((v[6] - -6.414).abs() < 1e-2, "call theta {}", v[6]);
    assert!((v[8] - 53.232).abs() < 1e-2, "call rho {}", v[8]);
    // Put-call parity on random options: C - P = S - K e^(-rT).
    let m = random_options(5000, 11);
    let y = black_scholes(&m, &params(false)).unwrap();
    for i in 0..m.rows() {
        let [s, k, t, r, _] = rows_of(&m)[i].map(f64::from);
        let parity = s - k * (-r * t).exp();
        let [c, p] = [y.row(i)[0] as f64, y.row(i)[1] as f64];
        assert!((c - p - parity).abs() < 4e-6 * (s + k), "row {i}");
    }
}

#[test]
fn three_columns_with_rate_and_volatility_params() {
    let m5 = random_options(300, 21);
    let mut p = params(true);
    p.rate = Some(0.03);
    p.volatility = Some(0.25);
    let m3 = Matrix::new(
        300,
        3,
        (0..300).flat_map(|i| m5.row(i)[..3].to_vec()).collect(),
    )
    .unwrap();
    let y = black_scholes(&m3, &p).unwrap();
    let rows: Vec<[f32; 5]> = (0..300)
        .map(|i| {
            let r = m3.row(i);
            [r[0], r[1], r[2], 0.03, 0.25]
        })
        .collect();
    check(&rows, &y);
    // Missing parameters are argument errors.
    p.volatility = None;
    assert!(matches!(
        black_scholes(&m3, &p),
        Err(KernelError::InvalidArgument(_))
    ));
    assert!(matches!(
        black_scholes(&m3, &params(false)),
        Err(KernelError::InvalidArgument(_))
    ));
}

#[test]
fn zero_time_and_zero_volatility_limits() {
    let d = (-0.05f64).exp();
    // [s, k, t, r, v]: expired ITM call, expired OTM call, zero vol ITM/OTM, at the money.
    let rows = [
        [120.0f32, 100.0, 0.0, 0.05, 0.3],
        [80.0, 100.0, 0.0, 0.05, 0.3],
        [110.0, 100.0, 1.0, 0.05, 0.0],
        [90.0, 100.0, 1.0, 0.05, 0.0],
        [100.0, 100.0, 0.0, 0.05, 0.2],
    ];
    let m = Matrix::new(5, 5, rows.iter().flatten().copied().collect()).unwrap();
    let y = black_scholes(&m, &params(true)).unwrap();
    check(&rows, &y);
    let close = |a: f32, b: f64| (a as f64 - b).abs() < 1e-4;
    assert!(close(y.row(0)[0], 20.0) && close(y.row(0)[1], 0.0));
    assert!(close(y.row(1)[0], 0.0) && close(y.row(1)[1], 20.0));
    assert!(close(y.row(2)[0], 110.0 - 100.0 * d) && close(y.row(2)[1], 0.0));
    assert!(close(y.row(3)[0], 0.0) && close(y.row(3)[1], 100.0 * d - 90.0));
    // Deltas 0 / +-1 by moneyness, 1/2 at the money; gamma = vega = 0.
    assert_eq!(&y.row(0)[2..6], &[1.0, 0.0, 0.0, 0.0]);
    assert_eq!(&y.row(1)[2..6], &[0.0, -1.0, 0.0, 0.0]);
    assert_eq!(&y.row(3)[2..6], &[0.0, -1.0, 0.0, 0.0]);
    assert_eq!(&y.row(4)[2..6], &[0.5, -0.5, 0.0, 0.0]);
    assert!(y.data().iter().all(|v| v.is_finite()));
}

#[test]
fn bad_inputs_are_errors_naming_the_row() {
    let good = [100.0f32, 100.0, 1.0, 0.05, 0.2];
    let bads: [(usize, f32); 8] = [
        (0, 0.0),
        (0, -1.0),
        (1, 0.0),
        (2, -0.5),
        (4, -0.1),
        (3, f32::NAN),
        (0, f32::INFINITY),
        (2, f32::NEG_INFINITY),
    ];
    for (col, value) in bads {
        for n in [3usize, 50_000] {
            let at = n - 2;
            let mut data: Vec<f32> = (0..n).flat_map(|_| good).collect();
            data[at * 5 + col] = value;
            // A later bad row must not hide the first one.
            data[(n - 1) * 5] = -3.0;
            let m = Matrix::new(n, 5, data).unwrap();
            match black_scholes(&m, &params(false)) {
                Err(KernelError::InvalidInput(msg)) => {
                    assert!(msg.contains(&format!("row {at} ")), "{msg}")
                }
                other => panic!("column {col} = {value}: {other:?}"),
            }
        }
    }
    for cols in [0usize, 1, 2, 4, 6, 10] {
        let m = Matrix::new(2, cols, vec![1.0; 2 * cols]).unwrap();
        assert!(
            matches!(
                black_scholes(&m, &params(false)),
                Err(KernelError::InvalidInput(_))
            ),
            "{cols} columns"
        );
    }
    // No options: empty output with the output's columns.
    let empty = Matrix::new(0, 5, Vec::new()).unwrap();
    let y = black_scholes(&empty, &params(true)).unwrap();
    assert_eq!((y.rows(), y.cols()), (0, 10));
}

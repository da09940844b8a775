#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What is particular to the CPU Black-Scholes (the shared checks, against the reference, are in
//! `serrano_kernel_core::conformance::black_scholes`): its own `f32` approximations of exp, ln
//! and the normal CDF against `f64` std / the reference CDF, and its two pricing loops (prices
//! only, prices with Greeks) giving the same prices to the bit.

use serrano_kernel_core::black_scholes::BsParams;
use serrano_kernel_core::reference::black_scholes::norm_cdf;
use serrano_kernel_core::{KernelBackend, Matrix};
use serrano_kernel_cpu::CpuBackend;
use serrano_kernel_cpu::black_scholes::{exp_f32, ln_f32, norm_cdf_f32, norm_cdf_pair};

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
fn greeks_run_gives_the_prices_of_the_prices_run() {
    // Several rayon tasks and a partial block, with options in and out of the money and limits.
    let n = 40_003;
    let data: Vec<f32> = (0..n)
        .flat_map(|i| {
            let f = i as f32;
            [
                10.0 + (f * 7.3) % 190.0,
                10.0 + (f * 3.1) % 190.0,
                (f * 0.37) % 5.0,
                -0.02 + (f * 0.013) % 0.12,
                (f * 0.071) % 1.0,
            ]
        })
        .collect();
    let m = Matrix::new(n, 5, data).unwrap();
    let b = CpuBackend::new();
    let prices = b.black_scholes(&m, &BsParams::default()).unwrap();
    let greeks = BsParams {
        greeks: true,
        ..BsParams::default()
    };
    let all = b.black_scholes(&m, &greeks).unwrap();
    for i in 0..n {
        assert_eq!(&all.row(i)[..2], prices.row(i), "row {i}");
    }
}

//! Conformance checks of black_scholes (semantics in [`crate::black_scholes`]; see the module
//! docs of `crate::conformance`).
//!
//! Tolerances against the `f64` reference, for options in the random ranges (spot, strike in
//! [10, 200], years in [0.01, 5], rate in [-0.02, 0.1], volatility in [0.05, 1]) and the limits
//! `years == 0` / `volatility == 0`; each is plus `5e-7 * |ref|` (gamma: `2e-5 * |ref|`), and all
//! of it times the backend's `tol`:
//! - prices: `5e-7 * (spot + strike)`; deltas: `1e-6`; gamma: `2e-8 / (spot * vol * sqrt years)`;
//! - vega: `2e-6 * spot * sqrt years`; theta: `4e-7 * (spot * vol / sqrt years + strike)`;
//! - rho: `2e-6 * strike * years`.
//!
//! The CPU's worst error on 40k random options is below a third of each.

use super::{Check, Rng};
use crate::black_scholes::BsParams;
use crate::reference::black_scholes::price;
use crate::{KernelBackend, KernelError, KernelName, Matrix};

fn check(name: &'static str, run: fn(&dyn KernelBackend, f32)) -> Check {
    Check {
        kernel: KernelName::BlackScholes,
        name,
        run,
    }
}

pub fn checks() -> Vec<Check> {
    vec![
        check("random options, prices and Greeks", random_options_match),
        check("3 columns with rate and volatility", three_columns),
        check("textbook option and put-call parity", textbook_and_parity),
        check("zero time, zero volatility, deep tails", limits_and_tails),
        check("bad options name the first bad row", bad_inputs),
    ]
}

fn params(greeks: bool) -> BsParams {
    BsParams {
        greeks,
        ..BsParams::default()
    }
}

#[track_caller]
fn run(b: &dyn KernelBackend, options: &Matrix, p: &BsParams) -> Matrix {
    b.black_scholes(options, p).unwrap_or_else(|e| {
        panic!(
            "black_scholes {p:?} on {}x{}: {e}",
            options.rows(),
            options.cols()
        )
    })
}

/// `n x 5` options in the ranges of the module docs.
fn random_options(rng: &mut Rng, n: usize) -> Matrix {
    let rows: Vec<[f32; 5]> = (0..n)
        .map(|_| {
            [
                rng.f32(10.0, 200.0),
                rng.f32(10.0, 200.0),
                rng.f32(0.01, 5.0),
                rng.f32(-0.02, 0.1),
                rng.f32(0.05, 1.0),
            ]
        })
        .collect();
    matrix(&rows)
}

fn matrix(rows: &[[f32; 5]]) -> Matrix {
    Matrix::new(rows.len(), 5, rows.iter().flatten().copied().collect())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn rows_of(m: &Matrix) -> Vec<[f32; 5]> {
    (0..m.rows())
        .map(|i| match m.row(i) {
            [s, k, t, r, v, ..] => [*s, *k, *t, *r, *v],
            short => panic!("option row {i} has {} columns, not 5", short.len()),
        })
        .collect()
}

/// Compares every output of `got` (row `i` priced from `options[i] = [s, k, t, r, v]`) with the
/// reference at the tolerances of the module docs.
#[track_caller]
fn compare(what: &str, options: &[[f32; 5]], got: &Matrix, greeks: bool, tol: f32) {
    let cols = if greeks { 10 } else { 2 };
    assert_eq!(
        (got.rows(), got.cols()),
        (options.len(), cols),
        "black_scholes {what}: output shape"
    );
    let tol = f64::from(tol);
    for (i, o) in options.iter().enumerate() {
        let [s, k, t, r, v] = o.map(f64::from);
        let want = price(s, k, t, r, v);
        let vt = v * t.sqrt();
        let price_scale = 5e-7 * (s + k);
        let theta_scale = 4e-7 * (s * v / t.sqrt().max(1e-3) + k);
        let abs = [
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
            let rel = if c == 4 { 2e-5 } else { 5e-7 };
            let bound = tol * (abs[c] + rel * w.abs());
            let err = (f64::from(*g) - w).abs();
            assert!(
                err <= bound,
                "black_scholes {what}, row {i} {o:?} column {c}: {g} vs reference {w} \
                 (error {err:e}, tolerance {bound:e})"
            );
        }
    }
}

#[track_caller]
fn assert_error(
    b: &dyn KernelBackend,
    options: &Matrix,
    p: &BsParams,
    want: fn(&KernelError) -> bool,
    kind: &str,
) {
    let got = b.black_scholes(options, p);
    assert!(
        matches!(&got, Err(e) if want(e)),
        "black_scholes {p:?} on {}x{}: want {kind}, got {got:?}",
        options.rows(),
        options.cols()
    );
}

fn is_argument(e: &KernelError) -> bool {
    matches!(e, KernelError::InvalidArgument(_))
}

fn is_input(e: &KernelError) -> bool {
    matches!(e, KernelError::InvalidInput(_))
}

fn random_options_match(b: &dyn KernelBackend, tol: f32) {
    let mut rng = Rng::new(11);
    // Sizes around the CPU's blocks (128) and tasks (16384) and GPU work-groups, and not a
    // multiple of any of them.
    for n in [1, 7, 129, 100_003] {
        let m = random_options(&mut rng, n);
        let rows = rows_of(&m);
        for greeks in [false, true] {
            let y = run(b, &m, &params(greeks));
            compare(&format!("{n} random options"), &rows, &y, greeks, tol);
        }
    }
}

fn three_columns(b: &dyn KernelBackend, tol: f32) {
    let mut rng = Rng::new(12);
    let m5 = random_options(&mut rng, 300);
    let m3 = Matrix::new(
        300,
        3,
        (0..300).flat_map(|i| m5.row(i)[..3].to_vec()).collect(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut p = params(true);
    p.rate = Some(0.03);
    p.volatility = Some(0.25);
    let y = run(b, &m3, &p);
    let rows: Vec<[f32; 5]> = rows_of(&m5)
        .into_iter()
        .map(|[s, k, t, _, _]| [s, k, t, 0.03, 0.25])
        .collect();
    compare("3 columns", &rows, &y, true, tol);
    // Rate and volatility parameters are ignored for 5-column inputs.
    let y = run(b, &m5, &p);
    compare("5 columns with parameters", &rows_of(&m5), &y, true, tol);
    // A 3-column input needs both parameters, finite, with volatility >= 0.
    for (rate, vol) in [
        (Some(0.03), None),
        (None, Some(0.25)),
        (None, None),
        (Some(f32::NAN), Some(0.25)),
        (Some(f32::INFINITY), Some(0.25)),
        (Some(0.03), Some(-0.1)),
        (Some(0.03), Some(f32::NAN)),
        (Some(0.03), Some(f32::INFINITY)),
    ] {
        let bad = BsParams {
            rate,
            volatility: vol,
            greeks: false,
        };
        assert_error(b, &m3, &bad, is_argument, "InvalidArgument");
    }
    // Zero volatility as a parameter is the limit, not an error.
    let mut p0 = params(false);
    p0.rate = Some(0.03);
    p0.volatility = Some(0.0);
    let y = run(b, &m3, &p0);
    let rows: Vec<[f32; 5]> = rows
        .iter()
        .map(|&[s, k, t, r, _]| [s, k, t, r, 0.0])
        .collect();
    compare("3 columns, volatility 0", &rows, &y, false, tol);
}

fn textbook_and_parity(b: &dyn KernelBackend, tol: f32) {
    // Hull's textbook option: S = K = 100, T = 1, r = 5%, sigma = 20%.
    let m = matrix(&[[100.0, 100.0, 1.0, 0.05, 0.2]]);
    let y = run(b, &m, &params(true));
    let v = y.row(0);
    for (c, name, want, within) in [
        (0, "call", 10.4506, 1e-3),
        (1, "put", 5.5735, 1e-3),
        (2, "call delta", 0.6368, 1e-4),
        (4, "gamma", 0.018_762, 1e-5),
        (5, "vega", 37.524, 1e-2),
        (6, "call theta", -6.414, 1e-2),
        (8, "call rho", 53.232, 1e-2),
    ] {
        assert!(
            (v[c] - want).abs() < within * tol,
            "black_scholes textbook {name}: {} vs {want}",
            v[c]
        );
    }
    // Put-call parity on random options: C - P = S - K e^(-rT).
    let m = random_options(&mut Rng::new(13), 5000);
    let y = run(b, &m, &params(false));
    for (i, o) in rows_of(&m).into_iter().enumerate() {
        let [s, k, t, r, _] = o.map(f64::from);
        let parity = s - k * (-r * t).exp();
        let (c, p) = (f64::from(y.row(i)[0]), f64::from(y.row(i)[1]));
        assert!(
            (c - p - parity).abs() < 4e-6 * (s + k) * f64::from(tol),
            "black_scholes parity, row {i} {o:?}: call {c} - put {p} vs {parity}"
        );
    }
}

fn limits_and_tails(b: &dyn KernelBackend, tol: f32) {
    let d = (-0.05f64).exp();
    let rows = [
        // Expired in / out of the money, zero volatility in / out of the money, at the money.
        [120.0f32, 100.0, 0.0, 0.05, 0.3],
        [80.0, 100.0, 0.0, 0.05, 0.3],
        [110.0, 100.0, 1.0, 0.05, 0.0],
        [90.0, 100.0, 1.0, 0.05, 0.0],
        [100.0, 100.0, 0.0, 0.05, 0.2],
        // Deep in / out of the money: N(d) in its far tails.
        [10.0, 200.0, 0.01, 0.05, 0.05],
        [200.0, 10.0, 0.01, 0.05, 0.05],
        [200.0, 10.0, 5.0, -0.02, 1.0],
        [10.0, 200.0, 5.0, 0.1, 1.0],
        [10.0, 200.0, 0.01, -0.02, 1.0],
    ];
    let m = matrix(&rows);
    let y = run(b, &m, &params(true));
    compare("limits and tails", &rows, &y, true, tol);
    let close = |a: f32, want: f64| (f64::from(a) - want).abs() < 1e-4 * f64::from(tol);
    let prices = [
        (0, 20.0, 0.0),
        (1, 0.0, 20.0),
        (2, 110.0 - 100.0 * d, 0.0),
        (3, 0.0, 100.0 * d - 90.0),
    ];
    for (i, call, put) in prices {
        assert!(
            close(y.row(i)[0], call) && close(y.row(i)[1], put),
            "black_scholes limit row {i} {:?}: prices {:?}, want [{call}, {put}]",
            rows[i],
            &y.row(i)[..2]
        );
    }
    // Deltas 0 or +-1 by moneyness, 1/2 at the money; gamma = vega = 0: exactly.
    for (i, want) in [
        (0, [1.0, 0.0, 0.0, 0.0]),
        (1, [0.0, -1.0, 0.0, 0.0]),
        (2, [1.0, 0.0, 0.0, 0.0]),
        (3, [0.0, -1.0, 0.0, 0.0]),
        (4, [0.5, -0.5, 0.0, 0.0]),
    ] {
        assert_eq!(
            &y.row(i)[2..6],
            &want,
            "black_scholes limit row {i} {:?}: [deltas, gamma, vega]",
            rows[i]
        );
    }
    assert!(
        y.data().iter().all(|v| v.is_finite()),
        "black_scholes limits and tails: non-finite output"
    );
}

fn bad_inputs(b: &dyn KernelBackend, _tol: f32) {
    let good = [100.0f32, 100.0, 1.0, 0.05, 0.2];
    let bads: [(usize, f32); 10] = [
        (0, 0.0),
        (0, -1.0),
        (1, 0.0),
        (2, -0.5),
        (4, -0.1),
        (3, f32::NAN),
        (4, f32::NAN),
        (0, f32::INFINITY),
        (1, f32::INFINITY),
        (2, f32::NEG_INFINITY),
    ];
    for (col, value) in bads {
        // Small, and large enough to span several CPU tasks.
        for n in [3usize, 50_000] {
            let at = n - 2;
            let mut data: Vec<f32> = (0..n).flat_map(|_| good).collect();
            data[at * 5 + col] = value;
            // A later bad row must not hide the first one.
            data[(n - 1) * 5] = -3.0;
            let m = Matrix::new(n, 5, data).unwrap_or_else(|e| panic!("{e}"));
            match b.black_scholes(&m, &params(false)) {
                Err(KernelError::InvalidInput(msg)) => assert!(
                    msg.contains(&format!("row {at} ")),
                    "black_scholes, column {col} = {value} at row {at} of {n}: {msg}"
                ),
                other => panic!(
                    "black_scholes, column {col} = {value} at row {at} of {n}: want InvalidInput, got {other:?}"
                ),
            }
        }
    }
    // A bad spot in a 3-column input.
    let m3 = Matrix::new(2, 3, vec![100.0, 100.0, 1.0, -5.0, 100.0, 1.0])
        .unwrap_or_else(|e| panic!("{e}"));
    let p3 = BsParams {
        rate: Some(0.01),
        volatility: Some(0.2),
        greeks: true,
    };
    assert_error(b, &m3, &p3, is_input, "InvalidInput");
    for cols in [0usize, 1, 2, 4, 6, 10] {
        let m = Matrix::new(2, cols, vec![1.0; 2 * cols]).unwrap_or_else(|e| panic!("{e}"));
        assert_error(b, &m, &p3, is_input, "InvalidInput");
    }
    // No options: the empty output with the output's columns.
    for (cols, greeks, want) in [(5, true, 10), (5, false, 2), (3, false, 2)] {
        let empty = Matrix::new(0, cols, Vec::new()).unwrap_or_else(|e| panic!("{e}"));
        let mut p = p3.clone();
        p.greeks = greeks;
        let y = run(b, &empty, &p);
        assert_eq!(
            (y.rows(), y.cols()),
            (0, want),
            "black_scholes of 0x{cols} options, greeks {greeks}"
        );
    }
}

//! Black-Scholes prices and Greeks of European options (no dividends).
//!
//! Input: one option per row, either `n x 5` `[spot, strike, years, rate, volatility]`, or
//! `n x 3` `[spot, strike, years]` with the parameters `rate` (alias `r`) and `volatility`
//! (aliases `sigma`, `v`), both required then (for 5-column inputs they are ignored). Any other
//! column count is [`KernelError::InvalidInput`].
//!
//! Every option must be finite with `spot > 0`, `strike > 0`, `years >= 0`, `volatility >= 0`
//! (the rate may be any finite number); otherwise the call fails with
//! [`KernelError::InvalidInput`] naming the first bad row.
//!
//! Output: `n x 2` `[call, put]`, or with `greeks=true` `n x 10`
//! `[call, put, call_delta, put_delta, gamma, vega, call_theta, put_theta, call_rho, put_rho]`:
//! - delta and gamma are per unit of spot; vega is per 1.0 of volatility (not per 1%); rho is
//!   per 1.0 of rate; theta is per year of calendar time (`-dV/d years`, usually negative).
//! - With `d1 = (ln(S/K) + (r + v^2/2) T) / (v sqrt T)`, `d2 = d1 - v sqrt T`, `D = e^(-rT)`:
//!   `call = S N(d1) - K D N(d2)`, `put = K D N(-d2) - S N(-d1)`, `call_delta = N(d1)`,
//!   `put_delta = N(d1) - 1`, `gamma = phi(d1) / (S v sqrt T)`, `vega = S phi(d1) sqrt T`,
//!   `call_theta = -S phi(d1) v / (2 sqrt T) - r K D N(d2)`,
//!   `put_theta = -S phi(d1) v / (2 sqrt T) + r K D N(-d2)`, `call_rho = K T D N(d2)`,
//!   `put_rho = -K T D N(-d2)`.
//! - `years == 0` or `volatility == 0` (`v sqrt T == 0`) gives the limit: `N(d1) = N(d2) = H`
//!   with `H = 1` when `S > K D`, `0` when `S < K D` and `1/2` at the money (`S == K D`), and the
//!   `phi` terms 0. So the prices are the discounted intrinsic values `max(S - K D, 0)` and
//!   `max(K D - S, 0)`, deltas are 0 or +-1 by moneyness, gamma = vega = 0.
//!
//! Backends compute in `f32` (the reference in `f64`); inputs so large that `K e^(-rT)` or
//! `S / K` overflow `f32` give infinite or NaN outputs.

use crate::{KernelError, Matrix, Params, Result};

/// The default is what 5-column inputs need: no rate or volatility parameter, prices only.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BsParams {
    /// Risk-free rate for 3-column inputs.
    pub rate: Option<f32>,
    /// Volatility for 3-column inputs.
    pub volatility: Option<f32>,
    /// Adds the Greeks columns to the output.
    pub greeks: bool,
}

/// Output columns without Greeks.
pub const PRICE_COLUMNS: [&str; 2] = ["call", "put"];
/// Output columns with `greeks=true`.
pub const GREEK_COLUMNS: [&str; 10] = [
    "call",
    "put",
    "call_delta",
    "put_delta",
    "gamma",
    "vega",
    "call_theta",
    "put_theta",
    "call_rho",
    "put_rho",
];

impl BsParams {
    pub fn from_params(p: &Params) -> Result<Self> {
        Ok(Self {
            rate: p.f64(&["rate", "r"])?.map(|v| v as f32),
            volatility: p.f64(&["volatility", "sigma", "v"])?.map(|v| v as f32),
            greeks: p.bool_or(&["greeks"], false)?,
        })
    }

    /// Output columns: 2, or 10 with Greeks.
    pub fn out_cols(&self) -> usize {
        if self.greeks {
            GREEK_COLUMNS.len()
        } else {
            PRICE_COLUMNS.len()
        }
    }
}

/// What a backend needs to know about a validated input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BsLayout {
    pub rows: usize,
    /// 5, or 3 with `fixed` set.
    pub in_cols: usize,
    /// `(rate, volatility)` of 3-column inputs.
    pub fixed: Option<(f32, f32)>,
    pub greeks: bool,
}

impl BsLayout {
    pub fn out_cols(&self) -> usize {
        if self.greeks {
            GREEK_COLUMNS.len()
        } else {
            PRICE_COLUMNS.len()
        }
    }

    /// `(fixed, rate, volatility)` as the GPU kernels take them: `fixed` is 1 with the parameters
    /// of a 3-column input, 0 (rate and volatility unused) when they are columns.
    pub fn kernel_args(&self) -> (i32, f32, f32) {
        match self.fixed {
            Some((r, v)) => (1, r, v),
            None => (0, 0.0, 0.0),
        }
    }

    /// `[spot, strike, years, rate, volatility]` of `row` (which must hold `in_cols` values).
    pub fn option(&self, row: &[f32]) -> [f32; 5] {
        match (self.fixed, row) {
            (Some((r, v)), [s, k, t, ..]) => [*s, *k, *t, r, v],
            (None, [s, k, t, r, v, ..]) => [*s, *k, *t, *r, *v],
            _ => [f32::NAN; 5],
        }
    }
}

/// Checks the shape and the parameters (not the values): what a backend does before anything.
pub fn layout(options: &Matrix, p: &BsParams) -> Result<BsLayout> {
    let fixed = match options.cols() {
        5 => None,
        3 => {
            let rate = p.rate.ok_or_else(|| {
                KernelError::arg("3-column options [spot, strike, years] need the rate parameter")
            })?;
            let vol = p.volatility.ok_or_else(|| {
                KernelError::arg(
                    "3-column options [spot, strike, years] need the volatility parameter",
                )
            })?;
            if !rate.is_finite() {
                return Err(KernelError::arg(format!(
                    "rate must be finite (as f32), got {rate}"
                )));
            }
            if !(vol.is_finite() && vol >= 0.0) {
                return Err(KernelError::arg(format!(
                    "volatility must be finite and >= 0, got {vol}"
                )));
            }
            Some((rate, vol))
        }
        c => {
            return Err(KernelError::input(format!(
                "options must have 5 columns [spot, strike, years, rate, volatility] or 3 [spot, strike, years], got {c}"
            )));
        }
    };
    Ok(BsLayout {
        rows: options.rows(),
        in_cols: options.cols(),
        fixed,
        greeks: p.greeks,
    })
}

/// Whether one option is valid (finite, `spot > 0`, `strike > 0`, `years >= 0`, `vol >= 0`).
#[inline]
pub fn option_ok(o: [f32; 5]) -> bool {
    let [s, k, t, r, v] = o;
    // Comparisons with NaN are false, so NaN fails every test below.
    s > 0.0
        && s < f32::INFINITY
        && k > 0.0
        && k < f32::INFINITY
        && (0.0..f32::INFINITY).contains(&t)
        && r.abs() < f32::INFINITY
        && (0.0..f32::INFINITY).contains(&v)
}

/// The error for invalid option `row` (values as given).
pub fn option_error(row: usize, o: [f32; 5]) -> KernelError {
    let [s, k, t, r, v] = o;
    KernelError::input(format!(
        "option at row {row} is invalid (spot {s}, strike {k}, years {t}, rate {r}, volatility {v}): \
         need finite values with spot > 0, strike > 0, years >= 0, volatility >= 0"
    ))
}

/// The full host-side validation: [`layout`] and every row. Backends that cannot check rows where
/// they compute (a GPU) call this once before copying anything.
pub fn validate(options: &Matrix, p: &BsParams) -> Result<BsLayout> {
    let l = layout(options, p)?;
    if l.in_cols > 0 {
        for (i, row) in options.data().chunks_exact(l.in_cols).enumerate() {
            let o = l.option(row);
            if !option_ok(o) {
                return Err(option_error(i, o));
            }
        }
    }
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_params() {
        let p = BsParams {
            rate: None,
            volatility: None,
            greeks: false,
        };
        let m5 = Matrix::new(1, 5, vec![100.0, 100.0, 1.0, 0.05, 0.2]).unwrap();
        assert_eq!(validate(&m5, &p).unwrap().out_cols(), 2);
        let m3 = Matrix::new(1, 3, vec![100.0, 100.0, 1.0]).unwrap();
        assert!(matches!(
            validate(&m3, &p),
            Err(KernelError::InvalidArgument(_))
        ));
        let p3 = BsParams {
            rate: Some(0.05),
            volatility: Some(0.2),
            greeks: true,
        };
        let l = validate(&m3, &p3).unwrap();
        assert_eq!(l.option(m3.row(0)), [100.0, 100.0, 1.0, 0.05, 0.2]);
        assert_eq!(l.out_cols(), 10);
        let m4 = Matrix::new(1, 4, vec![1.0; 4]).unwrap();
        assert!(matches!(
            validate(&m4, &p3),
            Err(KernelError::InvalidInput(_))
        ));
        let bad = Matrix::new(
            2,
            5,
            vec![1.0, 1.0, 1.0, 0.0, 0.1, 1.0, -1.0, 1.0, 0.0, 0.1],
        )
        .unwrap();
        let e = validate(&bad, &p).unwrap_err();
        assert!(e.to_string().contains("row 1"), "{e}");
        let nan = Matrix::new(1, 5, vec![1.0, 1.0, 1.0, f32::NAN, 0.1]).unwrap();
        assert!(validate(&nan, &p).is_err());
        let params = Params::from_pairs(["r=0.01", "sigma=0.3", "greeks=1"]).unwrap();
        let bp = BsParams::from_params(&params).unwrap();
        assert_eq!(
            (bp.rate, bp.volatility, bp.greeks),
            (Some(0.01), Some(0.3), true)
        );
    }
}

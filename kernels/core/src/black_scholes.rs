//! Black-Scholes European option prices and Greeks.

use crate::{Params, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct BsParams {
    /// Risk-free rate for 3-column inputs.
    pub rate: Option<f32>,
    /// Volatility for 3-column inputs.
    pub volatility: Option<f32>,
    /// Adds the Greeks columns to the output.
    pub greeks: bool,
}

impl BsParams {
    pub fn from_params(p: &Params) -> Result<Self> {
        Ok(Self {
            rate: p.f64(&["rate", "r"])?.map(|v| v as f32),
            volatility: p.f64(&["volatility", "sigma", "v"])?.map(|v| v as f32),
            greeks: p.bool_or(&["greeks"], false)?,
        })
    }
}

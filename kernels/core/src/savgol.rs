//! Savitzky-Golay filter (scipy.signal.savgol_filter semantics).

use crate::{Params, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeMode {
    Interp,
    Mirror,
    Nearest,
    Constant,
    Wrap,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SavgolParams {
    pub window: usize,
    pub polyorder: usize,
    pub deriv: usize,
    pub delta: f64,
    pub mode: EdgeMode,
}

impl SavgolParams {
    pub fn from_params(p: &Params) -> Result<Self> {
        Ok(Self {
            window: p.usize_or(&["window", "window_length", "w"], 11)?,
            polyorder: p.usize_or(&["polyorder", "order"], 3)?,
            deriv: p.usize_or(&["deriv"], 0)?,
            delta: p.f64_or(&["delta"], 1.0)?,
            mode: p.choice(
                &["mode"],
                &[
                    ("interp", EdgeMode::Interp),
                    ("mirror", EdgeMode::Mirror),
                    ("nearest", EdgeMode::Nearest),
                    ("constant", EdgeMode::Constant),
                    ("wrap", EdgeMode::Wrap),
                ],
                EdgeMode::Interp,
            )?,
        })
    }
}

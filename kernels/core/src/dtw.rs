//! Dynamic time warping distance with a Sakoe-Chiba band.

use crate::{Params, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct DtwParams {
    /// Band half-width (`|i - j| <= window`); None: unconstrained.
    pub window: Option<usize>,
}

impl DtwParams {
    pub fn from_params(p: &Params) -> Result<Self> {
        Ok(Self {
            window: p.usize(&["window", "w"])?,
        })
    }
}

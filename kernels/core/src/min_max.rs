//! Min-max normalisation (sklearn MinMaxScaler semantics, NaN-aware).

use crate::{Params, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    Columns,
    Rows,
    All,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MinMaxParams {
    pub min: f32,
    pub max: f32,
    pub axis: Axis,
}

impl MinMaxParams {
    pub fn from_params(p: &Params) -> Result<Self> {
        Ok(Self {
            min: p.f64_or(&["min"], 0.0)? as f32,
            max: p.f64_or(&["max"], 1.0)? as f32,
            axis: p.choice(
                &["axis"],
                &[
                    ("columns", Axis::Columns),
                    ("rows", Axis::Rows),
                    ("all", Axis::All),
                ],
                Axis::Columns,
            )?,
        })
    }
}

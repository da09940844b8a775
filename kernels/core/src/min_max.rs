//! Min-max normalisation with sklearn MinMaxScaler semantics, NaN-aware.
//!
//! Each group of values (a column for `axis = columns`, the default and sklearn's per-feature
//! scaling; a row for `rows`; the whole array for `all`) is mapped linearly so that its minimum
//! becomes `min` and its maximum `max`: `y = min + (x − lo) · (max − min) / (hi − lo)`.
//!
//! - NaN values are ignored when finding `lo` and `hi` and stay NaN in the output.
//! - A constant group (`hi = lo`) maps to `min` (sklearn's zero-range rule).
//! - A group with only NaN stays NaN.
//! - ±Inf is rejected ([`KernelError::InvalidInput`]): it has no place on a finite scale.
//! - `min < max`, both finite, else [`KernelError::InvalidArgument`].
//!
//! The output has the shape of the input; an empty input gives an empty output.

use crate::{KernelError, Matrix, Params, Result};

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

/// The affine map of one group: `y = min + (x − lo) · scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupScale {
    pub lo: f64,
    pub scale: f64,
    pub min: f64,
}

impl GroupScale {
    /// The map of a group whose finite values span `[lo, hi]`; `lo > hi` (no finite value, as
    /// from an all-NaN group) gives a map whose every output is NaN.
    pub fn new(lo: f64, hi: f64, p: &MinMaxParams) -> Self {
        let (min, max) = (p.min as f64, p.max as f64);
        if lo > hi {
            return Self {
                lo: f64::NAN,
                scale: f64::NAN,
                min,
            };
        }
        let range = hi - lo;
        let scale = if range > 0.0 {
            (max - min) / range
        } else {
            0.0
        };
        Self { lo, scale, min }
    }

    pub fn apply(&self, x: f64) -> f64 {
        self.min + (x - self.lo) * self.scale
    }
}

impl MinMaxParams {
    pub fn from_params(p: &Params) -> Result<Self> {
        let params = Self {
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
        };
        params.validate()?;
        Ok(params)
    }

    pub fn validate(&self) -> Result<()> {
        if !(self.min.is_finite() && self.max.is_finite() && self.min < self.max) {
            return Err(KernelError::arg(format!(
                "the feature range needs finite min < max, got [{}, {}]",
                self.min, self.max
            )));
        }
        Ok(())
    }
}

/// Validates `p` and rejects ±Inf in `data`.
pub fn validate(data: &Matrix, p: &MinMaxParams) -> Result<()> {
    p.validate()?;
    if let Some(i) = data.data().iter().position(|v| v.is_infinite()) {
        return Err(infinite_at(i, data.cols()));
    }
    Ok(())
}

/// The error for an infinite value at flat index `i` of an array of `cols` columns.
pub fn infinite_at(i: usize, cols: usize) -> KernelError {
    let cols = cols.max(1);
    KernelError::input(format!(
        "min-max scaling needs finite values (NaN is ignored), got an infinite value at row {}, column {}",
        i / cols,
        i % cols
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_is_checked() {
        let p = Params::from_pairs(["min=1", "max=1"]).unwrap();
        assert!(MinMaxParams::from_params(&p).is_err());
        let p = Params::from_pairs(["min=-1", "max=1", "axis=rows"]).unwrap();
        assert_eq!(MinMaxParams::from_params(&p).unwrap().axis, Axis::Rows);
    }

    #[test]
    fn group_maps() {
        let p = MinMaxParams {
            min: -1.0,
            max: 1.0,
            axis: Axis::All,
        };
        let g = GroupScale::new(2.0, 6.0, &p);
        assert_eq!((g.apply(2.0), g.apply(4.0), g.apply(6.0)), (-1.0, 0.0, 1.0));
        assert_eq!(GroupScale::new(3.0, 3.0, &p).apply(3.0), -1.0);
        assert!(
            GroupScale::new(f64::INFINITY, f64::NEG_INFINITY, &p)
                .apply(1.0)
                .is_nan()
        );
        assert!(g.apply(f64::NAN).is_nan());
    }
}

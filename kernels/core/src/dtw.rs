//! Dynamic time warping distance with a Sakoe-Chiba band (tslearn `dtw` semantics).
//!
//! Every row of `a` (length `L1 = a.cols()`) is compared with every row of `b` (length
//! `L2 = b.cols()`); the result is the `a.rows() x b.rows()` matrix of distances.
//!
//! For one pair `x` (length `L1`) and `y` (length `L2`):
//! - the cost of matching `x[i]` with `y[j]` is `(x[i] - y[j])^2`;
//! - `D(i, j) = cost(i, j) + min(D(i-1, j), D(i, j-1), D(i-1, j-1))` with `D(0, 0) = cost(0, 0)`
//!   (a warping path starts at `(0, 0)`, ends at `(L1-1, L2-1)` and moves by those three steps);
//! - the distance is `sqrt(D(L1-1, L2-1))`.
//!
//! Band: with `window = Some(w)` only cells with `|i - j| <= w'` are on a path, where
//! `w' = max(w, |L1 - L2|)`: the band is widened for series of different lengths so that the end
//! cell is always reachable (tslearn would return infinity instead). `window = None` is
//! unconstrained. `w = 0` with equal lengths is the Euclidean distance.
//!
//! Inputs: a series of length 0 (`cols() == 0` with at least one row) and NaN/Inf values are
//! [`KernelError::InvalidInput`]; `a` or `b` with no rows gives an empty result of the right
//! shape. Values whose squared differences overflow `f32` give `+inf` distances on `f32` backends.

use crate::{KernelError, Matrix, Params, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct DtwParams {
    /// Band half-width (`|i - j| <= window`, widened to `|L1 - L2|`); None: unconstrained.
    pub window: Option<usize>,
}

impl DtwParams {
    /// `window` (alias `w`); absent: unconstrained.
    pub fn from_params(p: &Params) -> Result<Self> {
        Ok(Self {
            window: p.usize(&["window", "w"])?,
        })
    }

    /// Checks the inputs of a `dtw(a, b)` call (see the module docs).
    pub fn validate(&self, a: &Matrix, b: &Matrix) -> Result<()> {
        for (what, m) in [("a", a), ("b", b)] {
            if m.rows() > 0 && m.cols() == 0 {
                return Err(KernelError::input(format!(
                    "{what} holds {} series of length 0",
                    m.rows()
                )));
            }
            m.require_finite(what)?;
        }
        Ok(())
    }

    /// The effective band half-width for lengths `len_a`, `len_b`: `max(window, |L1 - L2|)`,
    /// capped at `max(L1, L2)` (which is unconstrained).
    pub fn band(&self, len_a: usize, len_b: usize) -> usize {
        let full = len_a.max(len_b);
        match self.window {
            None => full,
            Some(w) => w.max(len_a.abs_diff(len_b)).min(full),
        }
    }

    /// Number of DP cells inside the band for one pair (what throughput figures count).
    pub fn cells(&self, len_a: usize, len_b: usize) -> u64 {
        let w = self.band(len_a, len_b);
        (0..len_a)
            .map(|i| {
                let lo = i.saturating_sub(w);
                let hi = (i + w).min(len_b.saturating_sub(1));
                if lo > hi { 0 } else { (hi - lo + 1) as u64 }
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_is_widened_for_unequal_lengths() {
        let p = DtwParams { window: Some(2) };
        assert_eq!(p.band(10, 10), 2);
        assert_eq!(p.band(10, 15), 5);
        assert_eq!(p.band(3, 3), 2);
        assert_eq!(DtwParams { window: Some(50) }.band(3, 4), 4);
        assert_eq!(DtwParams { window: None }.band(7, 5), 7);
    }

    #[test]
    fn cells_count_the_band() {
        assert_eq!(DtwParams { window: None }.cells(4, 6), 24);
        assert_eq!(DtwParams { window: Some(0) }.cells(5, 5), 5);
        // 3x3 with |i-j| <= 1: 3 + 2 + 2
        assert_eq!(DtwParams { window: Some(1) }.cells(3, 3), 7);
        assert_eq!(DtwParams { window: Some(0) }.cells(0, 3), 0);
    }

    #[test]
    fn window_from_params() {
        let params = Params::from_pairs(["w=200"]).unwrap();
        assert_eq!(DtwParams::from_params(&params).unwrap().window, Some(200));
        let params = Params::from_pairs(["window=-3"]).unwrap();
        assert!(matches!(
            DtwParams::from_params(&params),
            Err(KernelError::InvalidArgument(_))
        ));
        let none = DtwParams::from_params(&Params::new()).unwrap();
        assert_eq!(none.window, None);
    }

    #[test]
    fn empty_series_and_non_finite_values_are_rejected() {
        let p = DtwParams { window: None };
        let ok = Matrix::filled(2, 3, 1.0);
        assert!(p.validate(&ok, &Matrix::filled(0, 0, 0.0)).is_ok());
        assert!(matches!(
            p.validate(&Matrix::filled(2, 0, 0.0), &ok),
            Err(KernelError::InvalidInput(_))
        ));
        let mut bad = ok.clone();
        bad.data_mut()[4] = f32::INFINITY;
        let err = p.validate(&ok, &bad).unwrap_err();
        assert!(
            err.to_string()
                .contains("b has a non-finite value at row 1, column 1")
        );
    }
}

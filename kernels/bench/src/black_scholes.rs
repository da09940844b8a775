//! Benchmarks of black_scholes (placeholder until written).

use crate::{Figure, Mode};

/// Figures of black_scholes in `mode`; `quick` shrinks the sizes for a smoke run.
pub fn run(_mode: Mode, _quick: bool) -> Vec<Figure> {
    Vec::new()
}

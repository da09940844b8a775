//! Benchmarks of kalman (placeholder until written).

use crate::{Figure, Mode};

/// Figures of kalman in `mode`; `quick` shrinks the sizes for a smoke run.
pub fn run(_mode: Mode, _quick: bool) -> Vec<Figure> {
    Vec::new()
}

//! Benchmarks of fft (placeholder until written).

use crate::{Figure, Mode};

/// Figures of fft in `mode`; `quick` shrinks the sizes for a smoke run.
pub fn run(_mode: Mode, _quick: bool) -> Vec<Figure> {
    Vec::new()
}

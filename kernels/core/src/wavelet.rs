//! Multi-level discrete wavelet transform (pywt.wavedec / waverec semantics).

use crate::{Params, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wavelet {
    Haar,
    /// Daubechies with `n` vanishing moments (`db1` is Haar).
    Db(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionMode {
    Periodization,
    Symmetric,
    Zero,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WaveletParams {
    pub wavelet: Wavelet,
    pub levels: Option<usize>,
    pub mode: ExtensionMode,
    pub inverse: bool,
    /// Original signal length, for the inverse.
    pub n: Option<usize>,
}

impl WaveletParams {
    pub fn from_params(p: &Params) -> Result<Self> {
        let name = p
            .str(&["wavelet"])?
            .unwrap_or_else(|| "haar".to_string())
            .to_ascii_lowercase();
        let wavelet = match name.as_str() {
            "haar" => Wavelet::Haar,
            other => match other.strip_prefix("db").and_then(|n| n.parse::<u8>().ok()) {
                Some(n) => Wavelet::Db(n),
                None => return Err(crate::KernelError::arg(format!("unknown wavelet '{name}'"))),
            },
        };
        Ok(Self {
            wavelet,
            levels: p.usize(&["levels", "level"])?,
            mode: p.choice(
                &["mode"],
                &[
                    ("periodization", ExtensionMode::Periodization),
                    ("symmetric", ExtensionMode::Symmetric),
                    ("zero", ExtensionMode::Zero),
                ],
                ExtensionMode::Symmetric,
            )?,
            inverse: p.bool_or(&["inverse"], false)?,
            n: p.usize(&["n"])?,
        })
    }
}

//! Multi-level discrete wavelet transform with pywt.wavedec / pywt.waverec semantics, one
//! independent signal per row.
//!
//! # Forward (`inverse = false`)
//! A row of `n` samples becomes `[cA_L, cD_L, cD_{L-1}, ..., cD_1]` (pywt's list, concatenated);
//! [`coefficient_lengths`] gives the lengths so that a caller can split it. One level maps a
//! signal `x` of length `N` to `cA[o] = Σ_j dec_lo[j] · x̃[2o + s − j]` (and `cD` with `dec_hi`),
//! where `x̃` is `x` extended by the mode:
//!
//! | `mode` | extension `x̃` | `s` | length per level |
//! | --- | --- | --- | --- |
//! | `symmetric` (default) | half-sample mirror, repeated (`x1 x0 \| x0 x1 .. xN-1 \| xN-1 xN-2`) | 1 | `⌊(N + F − 1)/2⌋` |
//! | `zero` | zeros | 1 | `⌊(N + F − 1)/2⌋` |
//! | `periodization` | periodic, after repeating the last sample once when `N` is odd | `F/2` | `⌈N/2⌉` |
//!
//! `F` is the filter length (2 × the number of vanishing moments).
//!
//! # Levels
//! `levels` defaults to pywt's `dwt_max_level(n, F) = ⌊log2(n / (F − 1))⌋` (0 when
//! `n < F − 1`). pywt only warns when asked for more ("all coefficients will experience
//! boundary effects"); here that is an [`KernelError::InvalidArgument`] naming the maximum.
//! `levels = 0` returns the signal itself.
//!
//! # Inverse (`inverse = true`)
//! Takes the forward layout plus `n` (the original length, required) and `levels`/`mode`/
//! `wavelet` as used forward; the row length must equal the sum of [`coefficient_lengths`]
//! ([`KernelError::InvalidInput`] otherwise). Each level is pywt's `idwt`
//! (`x[2m + e] = Σ_k rec[2k + e] · c[m + F/2 − 1 − k]` over cA and cD, or the periodic
//! transpose of the forward step for `periodization`), cut to the length the forward pass had,
//! as `waverec` does. The result is the original signal up to rounding, in every mode.
//!
//! # Wavelets
//! `haar` and `db1`..`db10` (Daubechies, extremal phase; `db1` is `haar`). The decomposition
//! low-pass filters below are stored to full double precision in pywt's order; the other three
//! filters follow from them (`rec_lo` = reversed `dec_lo`, `dec_hi[k] = (−1)^(k+1) rec_lo[k]`,
//! `rec_hi` = reversed `dec_hi`).
//!
//! Errors: unknown wavelet, `n = 0`, levels above the maximum ([`KernelError::InvalidArgument`]);
//! a row length that does not fit the layout ([`KernelError::InvalidInput`]). NaN and ±Inf are
//! not rejected: they spread through the filters.

use std::f64::consts::FRAC_1_SQRT_2;

use crate::{KernelError, Matrix, Params, Result};

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

/// The four filters of an orthogonal wavelet, in pywt's order and naming.
#[derive(Debug, Clone, PartialEq)]
pub struct Filters {
    pub dec_lo: Vec<f64>,
    pub dec_hi: Vec<f64>,
    pub rec_lo: Vec<f64>,
    pub rec_hi: Vec<f64>,
}

/// What one call does to each row.
#[derive(Debug, Clone, PartialEq)]
pub struct WaveletLayout {
    /// Original signal length.
    pub n: usize,
    pub levels: usize,
    /// `[len cA_L, len cD_L, ..., len cD_1]` (just `[n]` for 0 levels).
    pub lengths: Vec<usize>,
    /// Approximation lengths per level, `[n, len cA_1, ..., len cA_L]`.
    pub approx_lengths: Vec<usize>,
    pub in_cols: usize,
    pub out_cols: usize,
}

impl Wavelet {
    pub fn name(self) -> String {
        match self {
            Wavelet::Haar => "haar".into(),
            Wavelet::Db(n) => format!("db{n}"),
        }
    }

    /// The decomposition low-pass filter, or an error for an unknown wavelet.
    pub fn dec_lo(self) -> Result<&'static [f64]> {
        Ok(match self {
            Wavelet::Haar | Wavelet::Db(1) => &DB1,
            Wavelet::Db(2) => &DB2,
            Wavelet::Db(3) => &DB3,
            Wavelet::Db(4) => &DB4,
            Wavelet::Db(5) => &DB5,
            Wavelet::Db(6) => &DB6,
            Wavelet::Db(7) => &DB7,
            Wavelet::Db(8) => &DB8,
            Wavelet::Db(9) => &DB9,
            Wavelet::Db(10) => &DB10,
            Wavelet::Db(n) => {
                return Err(KernelError::arg(format!(
                    "unknown wavelet 'db{n}' (haar and db1..db10 are available)"
                )));
            }
        })
    }

    pub fn filter_len(self) -> Result<usize> {
        Ok(self.dec_lo()?.len())
    }

    pub fn filters(self) -> Result<Filters> {
        let dec_lo = self.dec_lo()?.to_vec();
        let rec_lo: Vec<f64> = dec_lo.iter().rev().copied().collect();
        let dec_hi: Vec<f64> = rec_lo
            .iter()
            .enumerate()
            .map(|(k, &v)| if k % 2 == 0 { -v } else { v })
            .collect();
        let rec_hi = dec_hi.iter().rev().copied().collect();
        Ok(Filters {
            dec_lo,
            dec_hi,
            rec_lo,
            rec_hi,
        })
    }
}

/// pywt's `dwt_max_level`: `⌊log2(n / (F − 1))⌋`, 0 when `n < F − 1`.
pub fn dwt_max_level(n: usize, filter_len: usize) -> usize {
    if filter_len <= 1 || n < filter_len - 1 {
        return 0;
    }
    (n / (filter_len - 1)).ilog2() as usize
}

/// Length of the coefficients of one level applied to `n` samples (pywt's `dwt_coeff_len`).
pub fn dwt_len(n: usize, filter_len: usize, mode: ExtensionMode) -> usize {
    if n == 0 {
        return 0;
    }
    match mode {
        ExtensionMode::Periodization => n.div_ceil(2),
        ExtensionMode::Symmetric | ExtensionMode::Zero => (n + filter_len - 1) / 2,
    }
}

/// `[len cA_L, len cD_L, len cD_{L-1}, ..., len cD_1]` of a signal of `n` samples (levels
/// default to [`dwt_max_level`]); the forward output row is their concatenation.
pub fn coefficient_lengths(
    n: usize,
    wavelet: Wavelet,
    levels: Option<usize>,
    mode: ExtensionMode,
) -> Result<Vec<usize>> {
    Ok(layout_for(n, wavelet, levels, mode)?.lengths)
}

fn layout_for(
    n: usize,
    wavelet: Wavelet,
    levels: Option<usize>,
    mode: ExtensionMode,
) -> Result<WaveletLayout> {
    let f = wavelet.filter_len()?;
    if n == 0 {
        return Err(KernelError::arg("a wavelet transform needs n >= 1 samples"));
    }
    let max = dwt_max_level(n, f);
    let levels = levels.unwrap_or(max);
    if levels > max {
        return Err(KernelError::arg(format!(
            "levels = {levels} is above the maximum {max} for {n} samples and {} (filter length {f})",
            wavelet.name()
        )));
    }
    let mut approx_lengths = vec![n];
    for _ in 0..levels {
        let last = approx_lengths[approx_lengths.len() - 1];
        approx_lengths.push(dwt_len(last, f, mode));
    }
    let mut lengths = vec![approx_lengths[levels]];
    lengths.extend(approx_lengths[1..].iter().rev());
    let total = lengths.iter().sum();
    Ok(WaveletLayout {
        n,
        levels,
        lengths,
        approx_lengths,
        in_cols: n,
        out_cols: total,
    })
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
                None => return Err(KernelError::arg(format!("unknown wavelet '{name}'"))),
            },
        };
        wavelet.dec_lo()?;
        Ok(Self {
            wavelet,
            levels: p.usize(&["levels", "level"])?,
            mode: p.choice(
                &["extension", "mode"],
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

    /// The layout of a call on rows of `cols` values (see the module docs).
    pub fn layout(&self, cols: usize) -> Result<WaveletLayout> {
        if !self.inverse {
            if let Some(n) = self.n
                && n != cols
            {
                return Err(KernelError::arg(format!(
                    "n = {n} does not match the {cols} samples of the forward transform's rows"
                )));
            }
            return layout_for(cols, self.wavelet, self.levels, self.mode);
        }
        let n = self.n.ok_or_else(|| {
            KernelError::arg("the inverse wavelet transform needs n, the original signal length")
        })?;
        let mut layout = layout_for(n, self.wavelet, self.levels, self.mode)?;
        if cols != layout.out_cols {
            return Err(KernelError::input(format!(
                "{} levels of {} ({:?}) on {n} samples give {} coefficients {:?}, but rows have {cols}",
                layout.levels,
                self.wavelet.name(),
                self.mode,
                layout.out_cols,
                layout.lengths
            )));
        }
        std::mem::swap(&mut layout.in_cols, &mut layout.out_cols);
        Ok(layout)
    }
}

/// Validates `p` against the input and returns the layout of the call.
pub fn validate(signals: &Matrix, p: &WaveletParams) -> Result<WaveletLayout> {
    p.layout(signals.cols())
}

// Decomposition low-pass filters (pywt's `dec_lo` order), computed by the spectral factorisation
// of Daubechies' polynomial with 60-digit arithmetic and rounded once to f64.
const DB1: [f64; 2] = [FRAC_1_SQRT_2, FRAC_1_SQRT_2];
const DB2: [f64; 4] = [
    -0.12940952255126037,
    0.2241438680420134,
    0.8365163037378079,
    0.48296291314453416,
];
const DB3: [f64; 6] = [
    0.03522629188570953,
    -0.08544127388202666,
    -0.13501102001025458,
    0.45987750211849154,
    0.8068915093110925,
    0.33267055295008263,
];
const DB4: [f64; 8] = [
    -0.010597401785069032,
    0.0328830116668852,
    0.030841381835560764,
    -0.18703481171909309,
    -0.027983769416859854,
    0.6308807679298589,
    0.7148465705529157,
    0.2303778133088965,
];
const DB5: [f64; 10] = [
    0.0033357252854737712,
    -0.012580751999081999,
    -0.006241490212798274,
    0.07757149384004572,
    -0.032244869584638375,
    -0.24229488706638203,
    0.13842814590132074,
    0.7243085284377729,
    0.6038292697971896,
    0.16010239797419293,
];
const DB6: [f64; 12] = [
    -0.0010773010853084796,
    0.004777257510945511,
    0.0005538422011614961,
    -0.03158203931748603,
    0.027522865530305727,
    0.09750160558732304,
    -0.12976686756726194,
    -0.22626469396543983,
    0.31525035170919763,
    0.7511339080210954,
    0.49462389039845306,
    0.11154074335010947,
];
const DB7: [f64; 14] = [
    0.00035371379997452024,
    -0.0018016407040474908,
    0.0004295779729213665,
    0.01255099855609984,
    -0.01657454163066688,
    -0.03802993693501441,
    0.08061260915108308,
    0.07130921926683026,
    -0.22403618499387498,
    -0.14390600392856498,
    0.4697822874051931,
    0.7291320908462351,
    0.3965393194819173,
    0.07785205408500918,
];
const DB8: [f64; 16] = [
    -0.00011747678412476953,
    0.0006754494064505693,
    -0.00039174037337694705,
    -0.004870352993451574,
    0.008746094047405777,
    0.013981027917398282,
    -0.044088253930794755,
    -0.017369301001807547,
    0.12874742662047847,
    0.0004724845739132828,
    -0.2840155429615469,
    -0.015829105256349306,
    0.5853546836542067,
    0.6756307362972898,
    0.31287159091429995,
    0.05441584224310401,
];
const DB9: [f64; 18] = [
    3.93473203162716e-05,
    -0.0002519631889427101,
    0.00023038576352319597,
    0.0018476468830562265,
    -0.00428150368246343,
    -0.004723204757751397,
    0.022361662123679096,
    0.00025094711483145197,
    -0.06763282906132997,
    0.03072568147933338,
    0.14854074933810638,
    -0.09684078322297646,
    -0.2932737832791749,
    0.13319738582500756,
    0.6572880780513005,
    0.6048231236901112,
    0.24383467461259034,
    0.038077947363878345,
];
const DB10: [f64; 20] = [
    -1.3264202894521244e-05,
    9.358867032006959e-05,
    -0.00011646685512928545,
    -0.0006858566949597116,
    0.001992405295185056,
    0.001395351747052901,
    -0.010733175483330575,
    0.0036065535669561697,
    0.033212674059341,
    -0.029457536821875813,
    -0.07139414716639708,
    0.09305736460357235,
    0.12736934033579325,
    -0.19594627437737705,
    -0.24984642432731538,
    0.2811723436605775,
    0.6884590394536035,
    0.5272011889317256,
    0.1881768000776915,
    0.026670057900555554,
];

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Wavelet; 11] = [
        Wavelet::Haar,
        Wavelet::Db(1),
        Wavelet::Db(2),
        Wavelet::Db(3),
        Wavelet::Db(4),
        Wavelet::Db(5),
        Wavelet::Db(6),
        Wavelet::Db(7),
        Wavelet::Db(8),
        Wavelet::Db(9),
        Wavelet::Db(10),
    ];

    /// Σh = √2, Σh² = 1, Σ h_k h_{k+2m} = 0 and N vanishing moments of the high-pass filter:
    /// any mistyped digit in the tables breaks one of them far above 1e-14.
    #[test]
    fn filters_are_orthonormal_daubechies() {
        for w in ALL {
            let h = w.dec_lo().unwrap();
            let f = h.len();
            let sum: f64 = h.iter().sum();
            assert!((sum - 2f64.sqrt()).abs() < 1e-14, "{w:?} sum {sum}");
            let energy: f64 = h.iter().map(|v| v * v).sum();
            assert!((energy - 1.0).abs() < 1e-14, "{w:?} energy {energy}");
            for m in 1..f / 2 {
                let dot: f64 = (0..f - 2 * m).map(|k| h[k] * h[k + 2 * m]).sum();
                assert!(dot.abs() < 1e-14, "{w:?} shift {m}: {dot}");
            }
            let filters = w.filters().unwrap();
            for p in 0..f / 2 {
                let moment: f64 = filters
                    .dec_hi
                    .iter()
                    .enumerate()
                    .map(|(k, v)| v * (k as f64).powi(p as i32))
                    .sum();
                let scale = (f as f64).powi(p as i32);
                assert!(moment.abs() < 1e-10 * scale, "{w:?} moment {p}: {moment}");
            }
        }
        assert_eq!(
            Wavelet::Db(1).dec_lo().unwrap(),
            Wavelet::Haar.dec_lo().unwrap()
        );
        assert!(Wavelet::Db(11).dec_lo().is_err());
        assert!(Wavelet::Db(0).dec_lo().is_err());
    }

    #[test]
    fn filters_follow_pywt_conventions() {
        let f = Wavelet::Db(2).filters().unwrap();
        // pywt.Wavelet('db2'): dec_hi = [-0.4830, 0.8365, -0.2241, -0.1294].
        let expected = [
            -0.48296291314453416,
            0.8365163037378079,
            -0.2241438680420134,
            -0.12940952255126037,
        ];
        for (a, b) in f.dec_hi.iter().zip(expected) {
            assert!((a - b).abs() < 1e-16);
        }
        assert_eq!(f.rec_lo[0], f.dec_lo[3]);
        assert_eq!(f.rec_hi[0], f.dec_hi[3]);
        let haar = Wavelet::Haar.filters().unwrap();
        assert_eq!(haar.dec_hi, vec![-FRAC_1_SQRT_2, FRAC_1_SQRT_2]);
    }

    #[test]
    fn lengths_follow_pywt() {
        assert_eq!(dwt_max_level(1000, 8), 7);
        assert_eq!(dwt_max_level(6, 8), 0);
        assert_eq!(dwt_max_level(1, 2), 0);
        // pywt.wavedec(np.zeros(1000), 'db4', level=3): lengths [131, 131, 255, 503].
        let l = coefficient_lengths(1000, Wavelet::Db(4), Some(3), ExtensionMode::Symmetric);
        assert_eq!(l.unwrap(), vec![131, 131, 255, 503]);
        let l = coefficient_lengths(1001, Wavelet::Db(4), Some(3), ExtensionMode::Periodization);
        assert_eq!(l.unwrap(), vec![126, 126, 251, 501]);
        let l = coefficient_lengths(5, Wavelet::Haar, None, ExtensionMode::Zero).unwrap();
        assert_eq!(l, vec![2, 2, 3]);
        assert_eq!(
            coefficient_lengths(5, Wavelet::Haar, Some(0), ExtensionMode::Zero).unwrap(),
            vec![5]
        );
        assert!(coefficient_lengths(5, Wavelet::Haar, Some(3), ExtensionMode::Zero).is_err());
        assert!(coefficient_lengths(0, Wavelet::Haar, None, ExtensionMode::Zero).is_err());
    }

    #[test]
    fn layouts_check_the_inverse() {
        let p = WaveletParams {
            wavelet: Wavelet::Db(2),
            levels: Some(2),
            mode: ExtensionMode::Symmetric,
            inverse: true,
            n: Some(20),
        };
        // 20 -> 11 -> 7: [7, 7, 11].
        let l = p.layout(25).unwrap();
        assert_eq!((l.in_cols, l.out_cols, l.levels), (25, 20, 2));
        assert!(matches!(p.layout(24), Err(KernelError::InvalidInput(_))));
        let too_deep = WaveletParams {
            n: Some(10),
            ..p.clone()
        };
        assert!(matches!(
            too_deep.layout(14),
            Err(KernelError::InvalidArgument(_))
        ));
        let no_n = WaveletParams {
            n: None,
            ..p.clone()
        };
        assert!(matches!(
            no_n.layout(25),
            Err(KernelError::InvalidArgument(_))
        ));
        let fwd = WaveletParams {
            inverse: false,
            n: None,
            ..p
        };
        assert_eq!(fwd.layout(20).unwrap().out_cols, 25);
        let params = Params::from_pairs(["wavelet=db11"]).unwrap();
        assert!(WaveletParams::from_params(&params).is_err());
        let params = Params::from_pairs(["wavelet=sym4"]).unwrap();
        assert!(WaveletParams::from_params(&params).is_err());
    }
}

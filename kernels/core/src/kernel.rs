//! The kernel catalogue: the names callers use (SDK, HPC gateway services of originals 6.1,
//! Table 10 of D6.7 4.7) and the inputs each kernel takes, in positional order.

/// One named input of a kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputSpec {
    pub name: &'static str,
    pub required: bool,
    /// Bound only to an input of this name, never by position (optional extras such as labels
    /// or initial centroids, which a stray argument must not silently become).
    pub by_name_only: bool,
    pub doc: &'static str,
}

const fn req(name: &'static str, doc: &'static str) -> InputSpec {
    InputSpec {
        name,
        required: true,
        by_name_only: false,
        doc,
    }
}
const fn opt(name: &'static str, doc: &'static str) -> InputSpec {
    InputSpec {
        name,
        required: false,
        by_name_only: false,
        doc,
    }
}
const fn named(name: &'static str, doc: &'static str) -> InputSpec {
    InputSpec {
        name,
        required: false,
        by_name_only: true,
        doc,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KernelName {
    Knn,
    KMeans,
    Dtw,
    SavitzkyGolay,
    BlackScholes,
    Kalman,
    Fft,
    Wavelet,
    MinMax,
}

impl KernelName {
    pub const ALL: [KernelName; 9] = [
        KernelName::Knn,
        KernelName::KMeans,
        KernelName::Dtw,
        KernelName::SavitzkyGolay,
        KernelName::BlackScholes,
        KernelName::Kalman,
        KernelName::Fft,
        KernelName::Wavelet,
        KernelName::MinMax,
    ];

    /// The canonical name (`exec("knn", ...)`, `serrano-kernel run knn`).
    pub fn as_str(self) -> &'static str {
        match self {
            KernelName::Knn => "knn",
            KernelName::KMeans => "kmeans",
            KernelName::Dtw => "dtw",
            KernelName::SavitzkyGolay => "savgol",
            KernelName::BlackScholes => "black_scholes",
            KernelName::Kalman => "kalman",
            KernelName::Fft => "fft",
            KernelName::Wavelet => "wavelet",
            KernelName::MinMax => "min_max",
        }
    }

    /// The HPC gateway's service name (originals 6.1); DTW runs inside `kmean`.
    pub fn hpc_service(self) -> &'static str {
        match self {
            KernelName::Knn => "knn",
            KernelName::KMeans | KernelName::Dtw => "kmean",
            KernelName::SavitzkyGolay => "savitzky_golay",
            KernelName::BlackScholes => "black_scholes",
            KernelName::Kalman => "kalman",
            KernelName::Fft => "fft",
            KernelName::Wavelet => "wavelet",
            KernelName::MinMax => "min_max",
        }
    }

    /// Accepts the canonical names and the aliases of the SDK and the HPC gateway.
    pub fn parse(name: &str) -> Option<Self> {
        let lower = name.trim().to_ascii_lowercase().replace('-', "_");
        Some(match lower.as_str() {
            "knn" | "k_nn" => KernelName::Knn,
            "kmeans" | "kmean" | "k_means" => KernelName::KMeans,
            "dtw" => KernelName::Dtw,
            "savgol" | "savitzky_golay" | "savitzkygolay" => KernelName::SavitzkyGolay,
            "black_scholes" | "blackscholes" | "bs" => KernelName::BlackScholes,
            "kalman" => KernelName::Kalman,
            "fft" => KernelName::Fft,
            "wavelet" | "dwt" => KernelName::Wavelet,
            "min_max" | "minmax" => KernelName::MinMax,
            _ => return None,
        })
    }

    pub fn summary(self) -> &'static str {
        match self {
            KernelName::Knn => {
                "exact k-nearest neighbours (brute force), optional majority-vote labels"
            }
            KernelName::KMeans => {
                "Lloyd k-means with k-means++ init; Euclidean or DTW (Sakoe-Chiba window)"
            }
            KernelName::Dtw => "pairwise dynamic time warping distances with a Sakoe-Chiba window",
            KernelName::SavitzkyGolay => "Savitzky-Golay smoothing / derivative filter per signal",
            KernelName::BlackScholes => "European call/put prices and Greeks",
            KernelName::Kalman => {
                "batched linear Kalman filters (constant level or constant velocity)"
            }
            KernelName::Fft => "batched real or complex FFT and its inverse",
            KernelName::Wavelet => {
                "multi-level discrete wavelet transform (Haar, Daubechies) and inverse"
            }
            KernelName::MinMax => "min-max normalisation per column, per row or overall",
        }
    }

    /// Positional inputs; required ones first.
    pub fn inputs(self) -> &'static [InputSpec] {
        const KNN: &[InputSpec] = &[
            req("points", "n x d reference points"),
            req("queries", "q x d query points"),
            named(
                "labels",
                "n x 1 labels of the points: adds majority-vote predictions",
            ),
        ];
        const KMEANS: &[InputSpec] = &[
            req("data", "n x d points (or n series of length d)"),
            named("init", "k x d initial centroids"),
        ];
        const DTW: &[InputSpec] = &[
            req("a", "n x L1 series"),
            opt("b", "m x L2 series (default: a)"),
        ];
        const SIGNAL: &[InputSpec] = &[req("signal", "one signal per row, or an n x 1 column")];
        const BS: &[InputSpec] = &[req(
            "options",
            "n x 5 [spot, strike, years, rate, volatility] or n x 3 [spot, strike, years] with rate/volatility params",
        )];
        const KALMAN: &[InputSpec] = &[req(
            "measurements",
            "one track per row (steps x dims interleaved), or an n x 1 column",
        )];
        const MINMAX: &[InputSpec] = &[req("data", "n x d values")];
        match self {
            KernelName::Knn => KNN,
            KernelName::KMeans => KMEANS,
            KernelName::Dtw => DTW,
            KernelName::SavitzkyGolay | KernelName::Fft | KernelName::Wavelet => SIGNAL,
            KernelName::BlackScholes => BS,
            KernelName::Kalman => KALMAN,
            KernelName::MinMax => MINMAX,
        }
    }
}

impl std::fmt::Display for KernelName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_aliases() {
        for k in KernelName::ALL {
            assert_eq!(KernelName::parse(k.as_str()), Some(k));
            assert!(KernelName::parse(k.hpc_service()).is_some());
        }
        assert_eq!(
            KernelName::parse("savitzky_golay"),
            Some(KernelName::SavitzkyGolay)
        );
        assert_eq!(KernelName::parse("kmean"), Some(KernelName::KMeans));
        assert_eq!(KernelName::parse("nope"), None);
    }
}

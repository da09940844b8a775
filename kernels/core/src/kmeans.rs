//! Lloyd k-means with k-means++ initialisation; Euclidean or DTW distance.

use crate::{Matrix, Params, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KMeansMetric {
    Euclidean,
    /// DTW with a Sakoe-Chiba band of `window` (None: unconstrained).
    Dtw {
        window: Option<usize>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    KMeansPlusPlus,
    Random,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KMeansParams {
    pub k: usize,
    pub max_iter: usize,
    pub tol: f64,
    pub seed: u64,
    pub metric: KMeansMetric,
    pub init: Init,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KMeansOutput {
    pub centroids: Matrix<f32>,
    /// `n x 1` cluster of each point.
    pub labels: Matrix<u32>,
    /// Sum of squared distances of the points to their centroid.
    pub inertia: f64,
    pub iterations: usize,
}

impl KMeansParams {
    pub fn from_params(p: &Params) -> Result<Self> {
        let k = p.usize_or(&["k", "clusters", "cluster_number", "n_clusters"], 2)?;
        let max_iter = p.usize_or(&["max_iter", "iterations"], 300)?;
        let tol = p.f64_or(&["tol", "epsilon_criteria"], 1e-4)?;
        let seed = p.usize_or(&["seed"], 0)? as u64;
        let window = p.usize(&["window", "w"])?;
        let metric = p.choice(
            &["metric"],
            &[("euclidean", false), ("dtw", true)],
            window.is_some(),
        )?;
        let metric = if metric {
            KMeansMetric::Dtw { window }
        } else {
            KMeansMetric::Euclidean
        };
        let init = p.choice(
            &["init"],
            &[
                ("k-means++", Init::KMeansPlusPlus),
                ("kmeans++", Init::KMeansPlusPlus),
                ("random", Init::Random),
            ],
            Init::KMeansPlusPlus,
        )?;
        Ok(Self {
            k,
            max_iter,
            tol,
            seed,
            metric,
            init,
        })
    }
}

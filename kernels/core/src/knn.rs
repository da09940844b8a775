//! Exact k-nearest neighbours (brute force). Owned by the knn/kmeans/dtw work: validation and
//! semantics live here so that every backend agrees.

use crate::{Matrix, Params, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Euclidean,
    SqEuclidean,
    Manhattan,
    Cosine,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KnnParams {
    pub k: usize,
    pub metric: Metric,
}

/// Neighbours of each query, nearest first: `q x k` indices into the points and their distances.
#[derive(Debug, Clone, PartialEq)]
pub struct KnnOutput {
    pub indices: Matrix<u32>,
    pub distances: Matrix<f32>,
}

impl KnnParams {
    /// `k` (aliases `k_nearest_neighbor`, `neighbors`; default 7 as the HPC gateway), `metric`.
    pub fn from_params(p: &Params) -> Result<Self> {
        let k = p.usize_or(&["k", "k_nearest_neighbor", "neighbors"], 7)?;
        let metric = p.choice(
            &["metric"],
            &[
                ("euclidean", Metric::Euclidean),
                ("sqeuclidean", Metric::SqEuclidean),
                ("manhattan", Metric::Manhattan),
                ("cosine", Metric::Cosine),
            ],
            Metric::Euclidean,
        )?;
        Ok(Self { k, metric })
    }
}

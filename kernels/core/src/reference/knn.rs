//! Reference knn (see the module docs of `crate::knn`): every point's exact `f64` distance to
//! every query, sorted by `(distance, index)`.

use crate::knn::{KnnOutput, KnnParams, exact_distance, validate};
use crate::{Matrix, Result};

pub fn knn(points: &Matrix, queries: &Matrix, p: &KnnParams) -> Result<KnnOutput> {
    validate(points, queries, p)?;
    let (q, k) = (queries.rows(), p.k);
    let mut indices = Vec::with_capacity(q * k);
    let mut distances = Vec::with_capacity(q * k);
    let mut all: Vec<(f64, u32)> = Vec::with_capacity(points.rows());
    for r in 0..q {
        let query = queries.row(r);
        all.clear();
        all.extend(
            (0..points.rows()).map(|i| (exact_distance(p.metric, query, points.row(i)), i as u32)),
        );
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for &(dist, i) in &all[..k] {
            indices.push(i);
            distances.push(dist as f32);
        }
    }
    Ok(KnnOutput {
        indices: Matrix::new(q, k, indices)?,
        distances: Matrix::new(q, k, distances)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knn::Metric;

    #[test]
    fn small_case_by_hand() {
        let pts = Matrix::new(4, 1, vec![0.0f32, 10.0, 3.0, -3.0]).unwrap();
        let qs = Matrix::new(2, 1, vec![1.0f32, 0.0]).unwrap();
        let p = KnnParams {
            k: 3,
            metric: Metric::Euclidean,
        };
        let out = knn(&pts, &qs, &p).unwrap();
        assert_eq!(out.indices.data(), &[0, 2, 3, 0, 2, 3]);
        assert_eq!(out.distances.data(), &[1.0, 2.0, 4.0, 0.0, 3.0, 3.0]);
        let none = knn(&pts, &Matrix::new(0, 1, vec![]).unwrap(), &p).unwrap();
        assert_eq!((none.indices.rows(), none.indices.cols()), (0, 3));
    }
}

//! Reference kmeans (see the module docs of `crate::kmeans`): the shared Lloyd driver over
//! plain-loop steps, exact `f64` squared Euclidean distances ([`ExactStep`]) or the reference
//! DTW of `crate::reference::dtw`. The driver itself is checked against hand-worked cases in `crate::kmeans`.

use crate::kmeans::{DtwStep, ExactStep, KMeansMetric, KMeansOutput, KMeansParams, lloyd};
use crate::{Matrix, Result};

pub fn kmeans(data: &Matrix, init: Option<&Matrix>, p: &KMeansParams) -> Result<KMeansOutput> {
    match p.metric {
        KMeansMetric::Euclidean => lloyd(data, init, p, &mut ExactStep::new(data)),
        KMeansMetric::Dtw { window } => lloyd(
            data,
            init,
            p,
            &mut DtwStep::new(data, |a: &Matrix, b: &Matrix| {
                crate::reference::dtw::dtw(a, b, &crate::dtw::DtwParams { window })
            }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmeans::Init;

    #[test]
    fn dtw_kmeans_groups_shifted_shapes() {
        // Two shapes (an early and a late bump), each seen with small time shifts.
        let mut rows = Vec::new();
        for s in 0..3 {
            let mut early = vec![0.0f32; 12];
            early[2 + s] = 5.0;
            let mut late = vec![0.0f32; 12];
            late[8 + s] = -5.0;
            rows.push(early);
            rows.push(late);
        }
        let data = Matrix::new(6, 12, rows.concat()).unwrap();
        let p = KMeansParams {
            k: 2,
            max_iter: 10,
            tol: 0.0,
            seed: 3,
            metric: KMeansMetric::Dtw { window: Some(3) },
            init: Init::KMeansPlusPlus,
        };
        let out = kmeans(&data, None, &p).unwrap();
        let l = out.labels.data();
        assert_eq!(l[0], l[2]);
        assert_eq!(l[0], l[4]);
        assert_eq!(l[1], l[3]);
        assert_eq!(l[1], l[5]);
        assert_ne!(l[0], l[1]);
    }
}

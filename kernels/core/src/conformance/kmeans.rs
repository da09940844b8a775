//! Conformance checks of kmeans (see the module docs of `crate::conformance`).
//!
//! Accelerators may rank centroids with an `f32` expansion and draw k-means++ centres through
//! `f32` distances, so exact agreement with the reference is asked for only where no draw
//! depends on distances (given or random initial centroids) and the data has no near-ties
//! (separated blobs, small integers). Tolerances (times the backend's `tol`): labels and
//! iteration counts equal, centroids within `1e-4` (relative above 1), inertia within `5e-6`
//! relative plus `1e-6`; runs whose path may legitimately differ (k-means++ draws, uniform
//! data) compare the inertia within `1e-4` relative.

use super::{Check, Rng, expect_invalid_argument, expect_invalid_input, ok};
use crate::kmeans::{Init, KMeansMetric, KMeansOutput, KMeansParams};
use crate::reference::kmeans as reference;
use crate::{KernelBackend, KernelError, KernelName, Matrix};

pub fn checks() -> Vec<Check> {
    vec![
        check("separated blobs: random, given and k-means++ init", blobs),
        check("uniform data, a few iterations", uniform_few_iterations),
        check("data far from the origin", far_from_origin),
        check("empty clusters, k == n, identical points", degenerate),
        check("ties go to the lower centroid", ties),
        check("bad k, max_iter, init and values", errors),
        check("DTW metric", dtw_metric),
    ]
}

fn check(name: &'static str, run: fn(&dyn KernelBackend, f32)) -> Check {
    Check {
        kernel: KernelName::KMeans,
        name,
        run,
    }
}

/// Euclidean k-means with `k` clusters, at most 50 iterations, `tol = 1e-4`, seed 2.
pub fn params(k: usize, init: Init) -> KMeansParams {
    KMeansParams {
        k,
        max_iter: 50,
        tol: 1e-4,
        seed: 2,
        metric: KMeansMetric::Euclidean,
        init,
    }
}

/// `n` points around `centres` random centres in `[-10, 10]^d`, noise of about 0.3 (point `i`
/// belongs to centre `i % centres`).
pub fn blob_data(n: usize, d: usize, centres: usize, seed: u64) -> Matrix {
    let mut rng = Rng::new(seed);
    let c = rng.matrix(centres, d, -10.0, 10.0);
    let mut data = Vec::with_capacity(n * d);
    for i in 0..n {
        for &v in c.row(i % centres.max(1)) {
            let noise = (rng.f32(0.0, 1.0) + rng.f32(0.0, 1.0) + rng.f32(0.0, 1.0) - 1.5) * 0.6;
            data.push(v + noise);
        }
    }
    ok("blobs", Matrix::new(n, d, data))
}

/// Panics unless `got` is the reference's result at the strict tolerances of the module docs.
#[track_caller]
pub fn assert_matches(got: &KMeansOutput, want: &KMeansOutput, tol: f32, what: &str) {
    assert_eq!(got.iterations, want.iterations, "{what}: iterations");
    assert_eq!(got.labels, want.labels, "{what}: labels");
    assert_eq!(
        (got.centroids.rows(), got.centroids.cols()),
        (want.centroids.rows(), want.centroids.cols()),
        "{what}: centroid shape"
    );
    for (i, (g, w)) in got
        .centroids
        .data()
        .iter()
        .zip(want.centroids.data())
        .enumerate()
    {
        assert!(
            (g - w).abs() <= 1e-4 * tol * w.abs().max(1.0),
            "{what}: centroid value {i} is {g}, want {w}"
        );
    }
    assert_inertia(
        got,
        want,
        5e-6 * f64::from(tol),
        1e-6 * f64::from(tol),
        what,
    );
}

#[track_caller]
fn assert_inertia(got: &KMeansOutput, want: &KMeansOutput, rel: f64, abs: f64, what: &str) {
    assert!(
        (got.inertia - want.inertia).abs() <= rel * want.inertia.abs() + abs,
        "{what}: inertia {}, want {}",
        got.inertia,
        want.inertia
    );
}

fn run(
    b: &dyn KernelBackend,
    data: &Matrix,
    init: Option<&Matrix>,
    p: &KMeansParams,
    what: &str,
) -> (KMeansOutput, KMeansOutput) {
    let got = ok(what, b.kmeans(data, init, p));
    let want = ok(what, reference::kmeans(data, init, p));
    (got, want)
}

/// (n, d, k): one cluster, tails of the CPU tiles (8 points, panels of 16 and 64 centroids),
/// and more points than one chunk of the partial sums (1024).
const BLOB_SHAPES: [(usize, usize, usize); 5] = [
    (50, 1, 1),
    (301, 3, 5),
    (1000, 8, 20),
    (2048, 32, 40),
    (999, 17, 64),
];

fn blobs(b: &dyn KernelBackend, tol: f32) {
    for (s, &(n, d, k)) in BLOB_SHAPES.iter().enumerate() {
        let data = blob_data(n, d, k, 40 + s as u64);
        let p = KMeansParams {
            seed: s as u64,
            ..params(k, Init::Random)
        };
        let what = format!("kmeans n={n} d={d} k={k}");
        let (got, want) = run(b, &data, None, &p, &what);
        assert_matches(&got, &want, tol, &format!("{what} random init"));
        let init = Rng::new(7 + s as u64).matrix(k, d, -10.0, 10.0);
        let (got, want) = run(b, &data, Some(&init), &p, &what);
        assert_matches(&got, &want, tol, &format!("{what} given init"));
        // k-means++ draws through rounded distances may pick other centres, but on
        // separated blobs every run ends in the same optimum.
        let p = KMeansParams {
            init: Init::KMeansPlusPlus,
            ..p
        };
        let (got, want) = run(b, &data, None, &p, &what);
        let what = format!("{what} k-means++");
        assert_inertia(&got, &want, 1e-4 * f64::from(tol), 1e-6, &what);
    }
}

fn uniform_few_iterations(b: &dyn KernelBackend, tol: f32) {
    // No cluster structure: near-ties are possible, so only the inertia is compared.
    let what = "kmeans uniform data";
    let mut rng = Rng::new(3);
    let data = rng.matrix(3000, 10, 0.0, 1.0);
    let init = rng.matrix(16, 10, 0.0, 1.0);
    let p = KMeansParams {
        max_iter: 5,
        ..params(16, Init::Random)
    };
    let (got, want) = run(b, &data, Some(&init), &p, what);
    assert_eq!(got.iterations, want.iterations, "{what}");
    assert_inertia(&got, &want, 1e-4 * f64::from(tol), 0.0, what);
}

fn far_from_origin(b: &dyn KernelBackend, tol: f32) {
    // Offsets of 5e3: an uncentred expansion of |x - c|^2 would cancel away.
    let what = "kmeans far from the origin";
    let mut data = blob_data(600, 4, 3, 9);
    for v in data.data_mut() {
        *v += 5.0e3;
    }
    let (got, want) = run(b, &data, None, &params(3, Init::Random), what);
    assert_eq!(got.labels, want.labels, "{what}");
    assert_inertia(&got, &want, 1e-5 * f64::from(tol), 0.0, what);
}

fn degenerate(b: &dyn KernelBackend, tol: f32) {
    // Two centroids start far from all data: both are re-seeded from the farthest points.
    let data = blob_data(200, 2, 4, 11);
    let mut init = Rng::new(12).matrix(4, 2, -1.0, 1.0);
    init.data_mut()[4..].copy_from_slice(&[1.0e3, 1.0e3, -1.0e3, 1.0e3]);
    let p = params(4, Init::Random);
    let (got, want) = run(b, &data, Some(&init), &p, "kmeans empty clusters");
    assert_matches(&got, &want, tol, "kmeans empty clusters");

    // k == n: every point its own cluster, zero inertia.
    let data = Rng::new(13).matrix(7, 3, 0.0, 1.0);
    for init in [Init::KMeansPlusPlus, Init::Random] {
        let out = ok("kmeans k == n", b.kmeans(&data, None, &params(7, init)));
        assert!(
            out.inertia.abs() < 1e-12,
            "kmeans k == n {init:?}: inertia {}",
            out.inertia
        );
        let mut l = out.labels.data().to_vec();
        l.sort_unstable();
        assert_eq!(
            l,
            (0..7).collect::<Vec<u32>>(),
            "kmeans k == n {init:?}: labels"
        );
    }

    // Identical points: no panic, zero inertia, and one point (k = n = 1).
    let same = ok("same", Matrix::new(5, 2, vec![3.0f32; 10]));
    let out = ok(
        "kmeans identical points",
        b.kmeans(&same, None, &params(3, Init::KMeansPlusPlus)),
    );
    assert_eq!(out.inertia, 0.0, "kmeans identical points");
    assert_eq!(out.centroids.data(), &[3.0; 6], "kmeans identical points");
    let one = ok("one", Matrix::new(1, 3, vec![1.0f32, -2.0, 0.5]));
    let out = ok(
        "kmeans one point",
        b.kmeans(&one, None, &params(1, Init::KMeansPlusPlus)),
    );
    assert_eq!(out.centroids, one, "kmeans one point");
    assert_eq!(out.labels.data(), &[0], "kmeans one point");
}

fn ties(b: &dyn KernelBackend, tol: f32) {
    // Copies of centroid 0 at 16 and 32 (the same SIMD lane on the CPU, for both panel
    // widths) and an exactly equidistant point. Small integers keep every product and sum
    // exact whatever order a device adds in, so the ties are exact.
    for k in [20, 40] {
        let mut data = blob_data(600, 4, k, 17);
        data.data_mut().iter_mut().for_each(|v| *v = v.round());
        let mut init = Rng::new(18).matrix(k, 4, -10.0, 10.0);
        init.data_mut().iter_mut().for_each(|v| *v = v.round());
        let first: Vec<f32> = init.row(0).to_vec();
        for j in (16..k).step_by(16) {
            init.data_mut()[j * 4..(j + 1) * 4].copy_from_slice(&first);
        }
        let p = KMeansParams {
            max_iter: 1,
            ..params(k, Init::Random)
        };
        let what = format!("kmeans duplicated centroid, k={k}");
        let (got, want) = run(b, &data, Some(&init), &p, &what);
        assert_matches(&got, &want, tol, &what);
    }
    let data = ok("data", Matrix::new(5, 1, vec![0.0f32, 2.0, -2.0, 0.0, 3.0]));
    let init = ok("init", Matrix::new(2, 1, vec![-1.0f32, 1.0]));
    let p = KMeansParams {
        max_iter: 1,
        ..params(2, Init::Random)
    };
    let (got, want) = run(b, &data, Some(&init), &p, "kmeans equidistant point");
    assert_matches(&got, &want, tol, "kmeans equidistant point");
    assert_eq!(got.labels.data()[0], 0, "kmeans equidistant point");
}

fn errors(b: &dyn KernelBackend, _tol: f32) {
    let data = Rng::new(1).matrix(10, 3, 0.0, 1.0);
    for k in [0, 11] {
        expect_invalid_argument(
            &format!("kmeans k={k}"),
            b.kmeans(&data, None, &params(k, Init::Random)),
        );
    }
    let p = KMeansParams {
        max_iter: 0,
        ..params(2, Init::Random)
    };
    expect_invalid_argument("kmeans max_iter=0", b.kmeans(&data, None, &p));
    let p = KMeansParams {
        tol: -1.0,
        ..params(2, Init::Random)
    };
    expect_invalid_argument("kmeans tol<0", b.kmeans(&data, None, &p));
    let mut bad = data.clone();
    bad.data_mut()[4] = f32::NAN;
    let e = expect_invalid_input("kmeans NaN", b.kmeans(&bad, None, &params(2, Init::Random)));
    assert!(e.to_string().contains("row 1, column 1"), "{e}");
    let mut bad = data.clone();
    bad.data_mut()[3] = f32::INFINITY;
    expect_invalid_input("kmeans Inf", b.kmeans(&bad, None, &params(2, Init::Random)));
    let wrong = Rng::new(2).matrix(2, 4, 0.0, 1.0);
    expect_invalid_input(
        "kmeans init of the wrong shape",
        b.kmeans(&data, Some(&wrong), &params(2, Init::Random)),
    );
    let empty = ok("empty", Matrix::new(0, 3, vec![]));
    expect_invalid_argument(
        "kmeans without points",
        b.kmeans(&empty, None, &params(1, Init::Random)),
    );
    let no_cols = ok("no columns", Matrix::new(4, 0, vec![]));
    expect_invalid_input(
        "kmeans d = 0",
        b.kmeans(&no_cols, None, &params(1, Init::Random)),
    );
}

fn dtw_metric(b: &dyn KernelBackend, tol: f32) {
    // Early and late bumps with small time shifts: DTW groups them by shape.
    let mut rows = Vec::new();
    for s in 0..4 {
        let mut early = vec![0.0f32; 16];
        early[2 + s] = 4.0;
        let mut late = vec![0.0f32; 16];
        late[10 + s] = -4.0;
        rows.push(early);
        rows.push(late);
    }
    let data = ok("series", Matrix::new(8, 16, rows.concat()));
    let p = KMeansParams {
        metric: KMeansMetric::Dtw { window: Some(4) },
        max_iter: 10,
        ..params(2, Init::KMeansPlusPlus)
    };
    if !b.supports(KernelName::Dtw) {
        // Without a DTW kernel the backend says so (the registry then falls back).
        let r = b.kmeans(&data, None, &p);
        assert!(
            matches!(r, Err(KernelError::Unsupported { .. })),
            "kmeans DTW without a DTW kernel: {:?}, want Unsupported",
            r.map(|o| o.iterations)
        );
        return;
    }
    let (got, want) = run(b, &data, None, &p, "kmeans DTW");
    assert_eq!(got.labels, want.labels, "kmeans DTW");
    assert_inertia(&got, &want, 1e-4 * f64::from(tol), 1e-4, "kmeans DTW");
    let l = got.labels.data();
    let early_together = l.iter().step_by(2).all(|&x| x == l[0]);
    let late_together = l.iter().skip(1).step_by(2).all(|&x| x == l[1]);
    assert!(
        early_together && late_together && l[0] != l[1],
        "kmeans DTW: labels {l:?} do not split early and late bumps"
    );
}

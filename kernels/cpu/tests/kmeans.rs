#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CPU k-means against the reference (`serrano_kernel_core::reference::kmeans`, the shared
//! driver over exact `f64` distances). Tolerances: centroids within 1e-4 (absolute, data of unit
//! scale), inertia within 1e-6 relative; labels and iteration counts equal on separated blobs.

use serrano_kernel_core::kmeans::{Init, KMeansMetric, KMeansOutput, KMeansParams, SplitMix64};
use serrano_kernel_core::reference::kmeans as reference;
use serrano_kernel_core::{KernelError, Matrix};
use serrano_kernel_cpu::kmeans::kmeans;

fn random(rows: usize, cols: usize, seed: u64, lo: f32, hi: f32) -> Matrix {
    let mut rng = SplitMix64::new(seed);
    let data = (0..rows * cols)
        .map(|_| lo + (hi - lo) * rng.unit() as f32)
        .collect();
    Matrix::new(rows, cols, data).unwrap()
}

/// `n` points around `centres` random centres in [-10, 10]^d, noise of about 0.3.
fn blobs(n: usize, d: usize, centres: usize, seed: u64) -> Matrix {
    let c = random(centres, d, seed, -10.0, 10.0);
    let mut rng = SplitMix64::new(seed + 1);
    let mut data = Vec::with_capacity(n * d);
    for i in 0..n {
        let row = c.row(i % centres);
        for &v in row {
            let noise = (rng.unit() + rng.unit() + rng.unit() - 1.5) as f32 * 0.6;
            data.push(v + noise);
        }
    }
    Matrix::new(n, d, data).unwrap()
}

fn params(k: usize) -> KMeansParams {
    KMeansParams {
        k,
        max_iter: 50,
        tol: 1e-4,
        seed: 0,
        metric: KMeansMetric::Euclidean,
        init: Init::KMeansPlusPlus,
    }
}

fn assert_matches(got: &KMeansOutput, want: &KMeansOutput, what: &str) {
    assert_eq!(got.iterations, want.iterations, "{what}: iterations");
    assert_eq!(got.labels, want.labels, "{what}: labels");
    assert_eq!(got.centroids.rows(), want.centroids.rows());
    for (g, w) in got.centroids.data().iter().zip(want.centroids.data()) {
        assert!(
            (g - w).abs() <= 1e-4 * w.abs().max(1.0),
            "{what}: centroid {g} vs {w}"
        );
    }
    let tol = 1e-6 * want.inertia.abs() + 1e-9;
    assert!(
        (got.inertia - want.inertia).abs() <= tol,
        "{what}: inertia {} vs {}",
        got.inertia,
        want.inertia
    );
}

#[test]
fn blobs_match_reference_for_every_init() {
    // (n, d, k): one cluster, tails of the tile sizes, both panel widths.
    for (s, &(n, d, k)) in [
        (50, 1, 1),
        (301, 3, 5),
        (1000, 8, 20),
        (2048, 32, 40),
        (999, 17, 64),
    ]
    .iter()
    .enumerate()
    {
        let data = blobs(n, d, k, 40 + s as u64);
        for init in [Init::KMeansPlusPlus, Init::Random] {
            let p = KMeansParams {
                init,
                seed: s as u64,
                ..params(k)
            };
            let got = kmeans(&data, None, &p).unwrap();
            let want = reference::kmeans(&data, None, &p).unwrap();
            assert_matches(&got, &want, &format!("n={n} d={d} k={k} {init:?}"));
        }
        let init = random(k, d, 7, -10.0, 10.0);
        let got = kmeans(&data, Some(&init), &params(k)).unwrap();
        let want = reference::kmeans(&data, Some(&init), &params(k)).unwrap();
        assert_matches(&got, &want, &format!("n={n} d={d} k={k} given init"));
    }
}

#[test]
fn uniform_data_few_iterations() {
    // No cluster structure: near-ties are possible, so compare inertia only, loosely.
    let data = random(3000, 10, 3, 0.0, 1.0);
    let init = random(16, 10, 4, 0.0, 1.0);
    let p = KMeansParams {
        max_iter: 5,
        ..params(16)
    };
    let got = kmeans(&data, Some(&init), &p).unwrap();
    let want = reference::kmeans(&data, Some(&init), &p).unwrap();
    assert_eq!(got.iterations, want.iterations);
    assert!((got.inertia - want.inertia).abs() <= 1e-4 * want.inertia);
}

#[test]
fn data_far_from_the_origin() {
    let mut data = blobs(600, 4, 3, 9);
    for v in data.data_mut() {
        *v += 5.0e3;
    }
    let p = params(3);
    let got = kmeans(&data, None, &p).unwrap();
    let want = reference::kmeans(&data, None, &p).unwrap();
    assert_eq!(got.labels, want.labels);
    assert!((got.inertia - want.inertia).abs() <= 1e-5 * want.inertia);
}

#[test]
fn empty_clusters_and_k_equal_n() {
    // Two centroids start far away from all data: both get re-seeded from the farthest points.
    let data = blobs(200, 2, 4, 11);
    let mut init = random(4, 2, 12, -1.0, 1.0);
    init.data_mut()[4..].copy_from_slice(&[1.0e3, 1.0e3, -1.0e3, 1.0e3]);
    let got = kmeans(&data, Some(&init), &params(4)).unwrap();
    let want = reference::kmeans(&data, Some(&init), &params(4)).unwrap();
    assert_matches(&got, &want, "empty clusters");

    let data = random(7, 3, 13, 0.0, 1.0);
    let out = kmeans(&data, None, &params(7)).unwrap();
    assert!(out.inertia.abs() < 1e-12);
    let mut l = out.labels.data().to_vec();
    l.sort_unstable();
    assert_eq!(l, (0..7).collect::<Vec<u32>>());

    // Identical points: no panic, zero inertia.
    let same = Matrix::new(5, 2, vec![3.0f32; 10]).unwrap();
    let out = kmeans(&same, None, &params(3)).unwrap();
    assert_eq!(out.inertia, 0.0);
}

#[test]
fn deterministic_across_runs_and_thread_counts() {
    let data = blobs(5000, 6, 8, 21);
    let p = params(8);
    let a = kmeans(&data, None, &p).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let b = pool.install(|| kmeans(&data, None, &p).unwrap());
    assert_eq!(a, b);
    let c = kmeans(&data, None, &KMeansParams { seed: 1, ..p }).unwrap();
    assert!(c.inertia > 0.0);
}

#[test]
fn errors() {
    let data = random(10, 3, 1, 0.0, 1.0);
    for k in [0, 11] {
        assert!(matches!(
            kmeans(&data, None, &params(k)),
            Err(KernelError::InvalidArgument(_))
        ));
    }
    let mut bad = data.clone();
    bad.data_mut()[4] = f32::NAN;
    let e = kmeans(&bad, None, &params(2)).unwrap_err();
    assert!(e.to_string().contains("row 1, column 1"), "{e}");
    let init = random(2, 4, 2, 0.0, 1.0);
    assert!(matches!(
        kmeans(&data, Some(&init), &params(2)),
        Err(KernelError::InvalidInput(_))
    ));
    let p = KMeansParams {
        max_iter: 0,
        ..params(2)
    };
    assert!(matches!(
        kmeans(&data, None, &p),
        Err(KernelError::InvalidArgument(_))
    ));
    let empty = Matrix::new(0, 3, vec![]).unwrap();
    assert!(kmeans(&empty, None, &params(1)).is_err());
}

#[test]
fn dtw_metric_uses_the_cpu_dtw() {
    let mut rows = Vec::new();
    for s in 0..4 {
        let mut early = vec![0.0f32; 16];
        early[2 + s] = 4.0;
        let mut late = vec![0.0f32; 16];
        late[10 + s] = -4.0;
        rows.push(early);
        rows.push(late);
    }
    let data = Matrix::new(8, 16, rows.concat()).unwrap();
    let p = KMeansParams {
        metric: KMeansMetric::Dtw { window: Some(4) },
        max_iter: 10,
        ..params(2)
    };
    let got = kmeans(&data, None, &p).unwrap();
    let want = reference::kmeans(&data, None, &p).unwrap();
    assert_eq!(got.labels, want.labels);
    assert!((got.inertia - want.inertia).abs() <= 1e-4 * want.inertia.max(1.0));
    // The early bumps and the late bumps end in different clusters.
    let l = got.labels.data();
    assert!(
        l.iter().step_by(2).all(|&x| x == l[0]) && l.iter().skip(1).step_by(2).all(|&x| x == l[1])
    );
    assert_ne!(l[0], l[1]);
}

#[test]
fn ties_go_to_the_lower_centroid() {
    // Point 0.0 is equidistant from both centroids; duplicated centroids tie everywhere.
    let data = Matrix::new(5, 1, vec![0.0f32, 2.0, -2.0, 0.0, 3.0]).unwrap();
    let init = Matrix::new(2, 1, vec![-1.0f32, 1.0]).unwrap();
    let p = KMeansParams {
        max_iter: 1,
        ..params(2)
    };
    let got = kmeans(&data, Some(&init), &p).unwrap();
    let want = reference::kmeans(&data, Some(&init), &p).unwrap();
    assert_matches(&got, &want, "equidistant point");
    // Copies of centroid 0 at 16 and 32 share a SIMD lane with it (both panel widths).
    for k in [20, 40] {
        let data = blobs(600, 4, k, 17);
        let mut init = random(k, 4, 18, -10.0, 10.0);
        let first: Vec<f32> = init.row(0).to_vec();
        for j in (16..k).step_by(16) {
            init.data_mut()[j * 4..(j + 1) * 4].copy_from_slice(&first);
        }
        let p = KMeansParams { k, ..p.clone() };
        let got = kmeans(&data, Some(&init), &p).unwrap();
        let want = reference::kmeans(&data, Some(&init), &p).unwrap();
        assert_matches(&got, &want, &format!("duplicated centroid, k={k}"));
    }
}

#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CUDA k-means against the reference; skipped with a printed reason without a GPU. The GPU
//! ranks with an `f32` expansion and k-means++ draws through `f32` distances, so comparisons use
//! given or random initial centroids on separated blobs. Tolerances: centroids 1e-4, inertia
//! 1e-5 relative, labels and iterations equal.

use serrano_kernel_core::kmeans::{Init, KMeansMetric, KMeansOutput, KMeansParams, SplitMix64};
use serrano_kernel_core::reference::kmeans as reference;
use serrano_kernel_core::{KernelError, Matrix};
use serrano_kernel_cuda::CudaBackend;
use serrano_kernel_cuda::kmeans::kmeans;

fn backend() -> Option<CudaBackend> {
    match CudaBackend::probe() {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("SKIPPED: no GPU: {e}");
            None
        }
    }
}

fn random(rows: usize, cols: usize, seed: u64, lo: f32, hi: f32) -> Matrix {
    let mut rng = SplitMix64::new(seed);
    let data = (0..rows * cols)
        .map(|_| lo + (hi - lo) * rng.unit() as f32)
        .collect();
    Matrix::new(rows, cols, data).unwrap()
}

fn blobs(n: usize, d: usize, centres: usize, seed: u64) -> Matrix {
    let c = random(centres, d, seed, -10.0, 10.0);
    let mut rng = SplitMix64::new(seed + 1);
    let mut data = Vec::with_capacity(n * d);
    for i in 0..n {
        for &v in c.row(i % centres) {
            data.push(v + (rng.unit() + rng.unit() + rng.unit() - 1.5) as f32 * 0.6);
        }
    }
    Matrix::new(n, d, data).unwrap()
}

fn params(k: usize, init: Init) -> KMeansParams {
    KMeansParams {
        k,
        max_iter: 50,
        tol: 1e-4,
        seed: 2,
        metric: KMeansMetric::Euclidean,
        init,
    }
}

fn assert_matches(got: &KMeansOutput, want: &KMeansOutput, what: &str) {
    assert_eq!(got.iterations, want.iterations, "{what}");
    assert_eq!(got.labels, want.labels, "{what}");
    for (g, w) in got.centroids.data().iter().zip(want.centroids.data()) {
        assert!(
            (g - w).abs() <= 1e-4 * w.abs().max(1.0),
            "{what}: {g} vs {w}"
        );
    }
    assert!(
        (got.inertia - want.inertia).abs() <= 1e-5 * want.inertia + 1e-6,
        "{what}: {} vs {}",
        got.inertia,
        want.inertia
    );
}

#[test]
fn blobs_match_reference() {
    let Some(b) = backend() else { return };
    for (s, &(n, d, k)) in [(40, 1, 1), (301, 3, 5), (20_000, 32, 64)]
        .iter()
        .enumerate()
    {
        let data = blobs(n, d, k, 30 + s as u64);
        let p = params(k, Init::Random);
        let got = kmeans(b.gpu(), &data, None, &p).unwrap();
        let want = reference::kmeans(&data, None, &p).unwrap();
        assert_matches(&got, &want, &format!("n={n} d={d} k={k} random init"));
        let init = random(k, d, 5, -10.0, 10.0);
        let p = params(k, Init::KMeansPlusPlus);
        let got = kmeans(b.gpu(), &data, Some(&init), &p).unwrap();
        let want = reference::kmeans(&data, Some(&init), &p).unwrap();
        assert_matches(&got, &want, &format!("n={n} d={d} k={k} given init"));
        let got = kmeans(b.gpu(), &data, None, &p).unwrap();
        let want = reference::kmeans(&data, None, &p).unwrap();
        assert!((got.inertia - want.inertia).abs() <= 1e-4 * want.inertia + 1e-6);
    }
}

#[test]
fn empty_clusters_and_errors() {
    let Some(b) = backend() else { return };
    let data = blobs(200, 2, 4, 11);
    let mut init = random(4, 2, 12, -1.0, 1.0);
    init.data_mut()[4..].copy_from_slice(&[1.0e3, 1.0e3, -1.0e3, 1.0e3]);
    let p = params(4, Init::KMeansPlusPlus);
    let got = kmeans(b.gpu(), &data, Some(&init), &p).unwrap();
    let want = reference::kmeans(&data, Some(&init), &p).unwrap();
    assert_matches(&got, &want, "empty clusters");
    for k in [0, 201] {
        assert!(matches!(
            kmeans(b.gpu(), &data, None, &params(k, Init::Random)),
            Err(KernelError::InvalidArgument(_))
        ));
    }
    let mut bad = data.clone();
    bad.data_mut()[3] = f32::INFINITY;
    assert!(matches!(
        kmeans(b.gpu(), &bad, None, &params(2, Init::Random)),
        Err(KernelError::InvalidInput(_))
    ));
}

#[test]
fn ties_go_to_the_lower_centroid() {
    let Some(b) = backend() else { return };
    // Copies of centroid 0 at 16 and 32; an exactly equidistant point. Small integers keep
    // every product and sum exact whatever order the device adds in, so ties are exact.
    for k in [20, 40] {
        let mut data = blobs(600, 4, k, 17);
        data.data_mut().iter_mut().for_each(|v| *v = v.round());
        let mut init = random(k, 4, 18, -10.0, 10.0);
        init.data_mut().iter_mut().for_each(|v| *v = v.round());
        let first: Vec<f32> = init.row(0).to_vec();
        for j in (16..k).step_by(16) {
            init.data_mut()[j * 4..(j + 1) * 4].copy_from_slice(&first);
        }
        let p = KMeansParams {
            max_iter: 1,
            ..params(k, Init::Random)
        };
        let got = kmeans(b.gpu(), &data, Some(&init), &p).unwrap();
        let want = reference::kmeans(&data, Some(&init), &p).unwrap();
        assert_matches(&got, &want, &format!("duplicated centroid, k={k}"));
    }
    let data = Matrix::new(5, 1, vec![0.0f32, 2.0, -2.0, 0.0, 3.0]).unwrap();
    let init = Matrix::new(2, 1, vec![-1.0f32, 1.0]).unwrap();
    let p = KMeansParams {
        max_iter: 1,
        ..params(2, Init::Random)
    };
    let got = kmeans(b.gpu(), &data, Some(&init), &p).unwrap();
    let want = reference::kmeans(&data, Some(&init), &p).unwrap();
    assert_matches(&got, &want, "equidistant point");
}

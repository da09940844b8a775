#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CPU wavelet transform against the reference (the defining sums in f64) for every wavelet
//! and mode on random rows of many lengths and levels, perfect reconstruction, edge cases and
//! errors. Tolerance: |cpu − ref| ≤ 2e-5 · max(1, max |ref| of the row) (f32 polyphase
//! convolution vs f64 sums); round trips 1e-5 of the row's largest value.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serrano_kernel_core::wavelet::{
    ExtensionMode, Wavelet, WaveletParams, coefficient_lengths, dwt_max_level,
};
use serrano_kernel_core::{KernelError, Matrix, Params, reference};
use serrano_kernel_cpu::wavelet::wavelet;

const MODES: [ExtensionMode; 3] = [
    ExtensionMode::Symmetric,
    ExtensionMode::Periodization,
    ExtensionMode::Zero,
];

fn wavelets() -> Vec<Wavelet> {
    let mut w = vec![Wavelet::Haar];
    w.extend((1..=10).map(Wavelet::Db));
    w
}

fn params(wavelet: Wavelet, levels: Option<usize>, mode: ExtensionMode) -> WaveletParams {
    WaveletParams {
        wavelet,
        levels,
        mode,
        inverse: false,
        n: None,
    }
}

fn random(rng: &mut StdRng, rows: usize, cols: usize) -> Matrix {
    let data = (0..rows * cols)
        .map(|_| rng.random_range(-10.0..10.0))
        .collect();
    Matrix::new(rows, cols, data).unwrap()
}

fn assert_close(got: &Matrix, want: &Matrix, rel: f32, what: &str) {
    assert_eq!(
        (got.rows(), got.cols()),
        (want.rows(), want.cols()),
        "{what}"
    );
    for r in 0..want.rows() {
        let scale = want.row(r).iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for (c, (&a, &b)) in got.row(r).iter().zip(want.row(r)).enumerate() {
            assert!(
                (a - b).abs() <= rel * scale,
                "{what}: row {r} col {c}: got {a}, want {b}"
            );
        }
    }
}

#[test]
fn forward_and_inverse_match_the_reference() {
    let mut rng = StdRng::seed_from_u64(21);
    for w in wavelets() {
        let flen = w.filter_len().unwrap();
        for n in [1, 2, 3, 5, 17, 40, 64, 100, 257] {
            let max = dwt_max_level(n, flen);
            let mut level_choices = vec![None, Some(0), Some(max)];
            if max > 1 {
                level_choices.push(Some(1));
            }
            for levels in level_choices {
                for mode in MODES {
                    let what = format!("{w:?} n={n} levels={levels:?} {mode:?}");
                    let x = random(&mut rng, 3, n);
                    let p = params(w, levels, mode);
                    let want = reference::wavelet::wavelet(&x, &p).unwrap();
                    let got = wavelet(&x, &p).unwrap();
                    assert_close(&got, &want, 2e-5, &what);
                    let inv = WaveletParams {
                        inverse: true,
                        n: Some(n),
                        ..p
                    };
                    let c = random(&mut rng, 3, got.cols());
                    let want = reference::wavelet::wavelet(&c, &inv).unwrap();
                    assert_close(
                        &wavelet(&c, &inv).unwrap(),
                        &want,
                        2e-5,
                        &format!("inverse {what}"),
                    );
                }
            }
        }
    }
}

#[test]
fn perfect_reconstruction_in_every_mode() {
    let mut rng = StdRng::seed_from_u64(22);
    for w in wavelets() {
        for mode in MODES {
            for n in [1, 7, 64, 99, 1000] {
                let x = random(&mut rng, 4, n);
                let p = params(w, None, mode);
                let c = wavelet(&x, &p).unwrap();
                let lengths = coefficient_lengths(n, w, None, mode).unwrap();
                assert_eq!(c.cols(), lengths.iter().sum::<usize>());
                let inv = WaveletParams {
                    inverse: true,
                    n: Some(n),
                    ..p
                };
                let back = wavelet(&c, &inv).unwrap();
                assert_close(&back, &x, 1e-5, &format!("{w:?} {mode:?} n={n}"));
            }
        }
    }
}

#[test]
fn many_rows_go_through_the_parallel_path() {
    let mut rng = StdRng::seed_from_u64(23);
    let x = random(&mut rng, 500, 300);
    let p = params(Wavelet::Db(4), Some(3), ExtensionMode::Symmetric);
    let want = reference::wavelet::wavelet(&x, &p).unwrap();
    assert_close(&wavelet(&x, &p).unwrap(), &want, 2e-5, "500 rows");
}

#[test]
fn layout_is_pywt_s() {
    // pywt.wavedec(x, 'db2', level=2) of 20 samples: [cA2 (7), cD2 (7), cD1 (11)].
    let x = Matrix::new(1, 20, (0..20).map(|v| v as f32).collect()).unwrap();
    let out = wavelet(
        &x,
        &params(Wavelet::Db(2), Some(2), ExtensionMode::Symmetric),
    )
    .unwrap();
    assert_eq!(out.cols(), 25);
    // A ramp has zero detail away from the edges (two vanishing moments).
    let cd1 = &out.data()[14..25];
    assert!(cd1[2..9].iter().all(|v| v.abs() < 1e-4), "{cd1:?}");
    // Haar on [1..8], 2 levels (pywt docs): cA2 = [5, 13], cD2 = [-2, -2].
    let x = Matrix::new(1, 8, (1..=8).map(|v| v as f32).collect()).unwrap();
    let out = wavelet(
        &x,
        &params(Wavelet::Haar, Some(2), ExtensionMode::Symmetric),
    )
    .unwrap();
    for (a, b) in out.data()[..4].iter().zip([5.0, 13.0, -2.0, -2.0]) {
        assert!((a - b).abs() < 1e-5, "{:?}", out.data());
    }
}

#[test]
fn nan_spreads_locally() {
    let mut x = Matrix::new(1, 64, vec![1.0; 64]).unwrap();
    x.data_mut()[10] = f32::NAN;
    let out = wavelet(
        &x,
        &params(Wavelet::Db(2), Some(1), ExtensionMode::Periodization),
    )
    .unwrap();
    let nans = out.data().iter().filter(|v| v.is_nan()).count();
    assert!(nans > 0 && nans < out.cols(), "{:?}", out.data());
}

#[test]
fn bad_arguments_are_errors() {
    let x = Matrix::new(1, 10, vec![0.0; 10]).unwrap();
    // db2 on 10 samples: max level 1.
    let p = params(Wavelet::Db(2), Some(2), ExtensionMode::Symmetric);
    assert!(matches!(
        wavelet(&x, &p),
        Err(KernelError::InvalidArgument(_))
    ));
    let p = params(Wavelet::Db(11), None, ExtensionMode::Symmetric);
    assert!(matches!(
        wavelet(&x, &p),
        Err(KernelError::InvalidArgument(_))
    ));
    let empty = Matrix::new(2, 0, vec![]).unwrap();
    let p = params(Wavelet::Haar, None, ExtensionMode::Symmetric);
    assert!(matches!(
        wavelet(&empty, &p),
        Err(KernelError::InvalidArgument(_))
    ));
    let inv = WaveletParams {
        inverse: true,
        n: None,
        ..params(Wavelet::Haar, None, ExtensionMode::Symmetric)
    };
    assert!(matches!(
        wavelet(&x, &inv),
        Err(KernelError::InvalidArgument(_))
    ));
    let inv = WaveletParams { n: Some(12), ..inv };
    assert!(matches!(
        wavelet(&x, &inv),
        Err(KernelError::InvalidInput(_))
    ));
    let unknown = Params::from_pairs(["wavelet=coif3"]).unwrap();
    assert!(WaveletParams::from_params(&unknown).is_err());
    // No rows: fine, whatever the width.
    let none = Matrix::new(0, 10, vec![]).unwrap();
    let out = wavelet(&none, &params(Wavelet::Haar, None, ExtensionMode::Zero)).unwrap();
    assert_eq!(out.rows(), 0);
}

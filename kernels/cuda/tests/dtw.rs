#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CUDA dtw against the f64 reference (relative tolerance 1e-4, plus 1e-5 absolute near 0).
//! Skipped with a printed reason where there is no usable GPU; the source itself is compiled by
//! `sources_compile.rs` wherever NVRTC is present.

use serrano_kernel_core::dtw::DtwParams;
use serrano_kernel_core::{KernelError, Matrix, reference};
use serrano_kernel_cuda::CudaBackend;
use serrano_kernel_cuda::dtw::{DeviceDtw, Strategy};

fn backend() -> Option<CudaBackend> {
    match CudaBackend::probe() {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("SKIPPED: no GPU: {e}");
            None
        }
    }
}

/// Deterministic uniform values in [-2, 2) (SplitMix64), different per seed.
fn series(rows: usize, cols: usize, seed: u64) -> Matrix {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let data = (0..rows * cols)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect();
    Matrix::new(rows, cols, data).unwrap()
}

fn check(b: &CudaBackend, shape: (usize, usize, usize, usize), window: Option<usize>, seed: u64) {
    let (na, nb, l1, l2) = shape;
    let x = series(na, l1, seed);
    let y = series(nb, l2, seed + 1000);
    let p = DtwParams { window };
    let want = reference::dtw::dtw(&x, &y, &p).unwrap();
    for strategy in [
        Strategy::ThreadPerPair,
        Strategy::WarpPerPair,
        Strategy::Auto,
    ] {
        let mut job = DeviceDtw::new(b.gpu(), &x, &y, &p, strategy).unwrap();
        job.run(b.gpu()).unwrap();
        let got = job.download(b.gpu()).unwrap();
        assert_eq!((got.rows(), got.cols()), (na, nb));
        for (idx, (&g, &w)) in got.data().iter().zip(want.data()).enumerate() {
            assert!(
                (g - w).abs() <= 1e-4 * w.abs() + 1e-5,
                "{strategy:?} {na}x{nb} L1={l1} L2={l2} window {window:?}: pair {idx}: \
                 gpu {g} vs reference {w}"
            );
        }
    }
}

#[test]
fn matches_the_reference_on_many_shapes() {
    let Some(b) = backend() else { return };
    // Lengths around the thread kernel's 32-column strips and the warp kernel's 256-column
    // strips; windows narrower and wider than a strip.
    for (k, &(l1, l2)) in [
        (1usize, 1usize),
        (7, 7),
        (31, 31),
        (32, 32),
        (33, 33),
        (100, 100),
        (5, 40),
        (70, 33),
        (1, 65),
        (129, 128),
        (256, 256),
        (300, 257),
        (40, 530),
    ]
    .iter()
    .enumerate()
    {
        for window in [
            None,
            Some(0),
            Some(1),
            Some(7),
            Some(20),
            Some(40),
            Some(1000),
        ] {
            check(&b, (13, 11, l1, l2), window, k as u64 + 1);
        }
    }
}

#[test]
fn more_pairs_than_resident_threads() {
    let Some(b) = backend() else { return };
    // 700 x 501 pairs: several pairs per persistent thread (and warp), a ragged last warp.
    check(&b, (700, 501, 24, 24), Some(5), 77);
    check(&b, (300, 150, 70, 70), Some(9), 78);
}

#[test]
fn a_series_against_itself_is_zero() {
    let Some(b) = backend() else { return };
    let a = series(40, 90, 5);
    let d = serrano_kernel_cuda::dtw::dtw(b.gpu(), &a, &a, &DtwParams { window: Some(9) }).unwrap();
    for r in 0..40 {
        assert_eq!(d.get(r, r).unwrap(), 0.0, "diagonal {r}");
    }
}

#[test]
fn empty_and_bad_inputs() {
    let Some(b) = backend() else { return };
    let p = DtwParams { window: None };
    let a = series(3, 8, 2);
    let d = serrano_kernel_cuda::dtw::dtw(b.gpu(), &a, &Matrix::filled(0, 8, 0.0), &p).unwrap();
    assert_eq!((d.rows(), d.cols()), (3, 0));
    let err = serrano_kernel_cuda::dtw::dtw(b.gpu(), &Matrix::filled(2, 0, 0.0), &a, &p);
    assert!(matches!(err, Err(KernelError::InvalidInput(_))));
    let mut nan = a.clone();
    nan.data_mut()[9] = f32::NAN;
    let err = serrano_kernel_cuda::dtw::dtw(b.gpu(), &a, &nan, &p).unwrap_err();
    assert!(err.to_string().contains("row 1, column 1"), "{err}");
}

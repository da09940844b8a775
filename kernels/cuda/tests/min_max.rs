#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CUDA min-max scaling against the reference on random data with NaN for every axis and
//! several shapes, plus the sklearn rules and errors (skipped with the reason where there is
//! no GPU). Tolerance: 1e-6 of the target range, NaN exactly where the reference has it.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serrano_kernel_core::min_max::{Axis, MinMaxParams};
use serrano_kernel_core::{KernelBackend, KernelError, Matrix, reference};
use serrano_kernel_cuda::CudaBackend;

fn backend() -> Option<CudaBackend> {
    match CudaBackend::probe() {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("SKIPPED: {e}");
            None
        }
    }
}

#[test]
fn source_exports_the_kernels() {
    if !serrano_kernel_cuda::nvrtc_available() {
        eprintln!("SKIPPED: libnvrtc not found");
        return;
    }
    let ptx = serrano_kernel_cuda::compile(
        "min_max",
        serrano_kernel_cuda::min_max::SOURCE,
        Some("sm_90"),
    )
    .unwrap()
    .to_src();
    for name in [
        "minmax_cols_partial",
        "minmax_rows_partial",
        "minmax_finalize",
        "minmax_apply",
    ] {
        assert!(ptx.contains(&format!(".entry {name}")), "{name} missing");
    }
}

fn random(rng: &mut StdRng, rows: usize, cols: usize, nan: f64) -> Matrix {
    let offset: f32 = rng.random_range(-1e3..1e3);
    let data = (0..rows * cols)
        .map(|_| {
            if rng.random_bool(nan) {
                f32::NAN
            } else {
                offset + rng.random_range(-50.0..50.0)
            }
        })
        .collect();
    Matrix::new(rows, cols, data).unwrap()
}

#[test]
fn matches_the_reference() {
    let Some(gpu) = backend() else { return };
    let mut rng = StdRng::seed_from_u64(71);
    for (rows, cols) in [
        (1, 1),
        (1, 100_000),
        (100_000, 1),
        (37, 5),
        (3000, 33),
        (3, 40000),
    ] {
        for axis in [Axis::Columns, Axis::Rows, Axis::All] {
            let m = random(&mut rng, rows, cols, 0.1);
            let p = MinMaxParams {
                min: -1.0,
                max: 1.0,
                axis,
            };
            let want = reference::min_max::min_max(&m, &p).unwrap();
            let got = gpu.min_max(&m, &p).unwrap();
            for (i, (&a, &b)) in got.data().iter().zip(want.data()).enumerate() {
                if b.is_nan() {
                    assert!(a.is_nan(), "{rows}x{cols} {axis:?}: value {i} is {a}");
                } else {
                    assert!(
                        (a - b).abs() <= 4e-6,
                        "{rows}x{cols} {axis:?}: value {i}: {a} vs {b}"
                    );
                }
            }
        }
    }
}

#[test]
fn rules_and_errors() {
    let Some(gpu) = backend() else { return };
    let m = Matrix::new(2, 3, vec![4.0, f32::NAN, 1.0, 4.0, f32::NAN, 3.0]).unwrap();
    let out = gpu
        .min_max(
            &m,
            &MinMaxParams {
                min: 0.0,
                max: 1.0,
                axis: Axis::Columns,
            },
        )
        .unwrap();
    assert_eq!([out.data()[0], out.data()[3]], [0.0, 0.0]);
    assert!(out.data()[1].is_nan() && out.data()[4].is_nan());
    assert_eq!([out.data()[2], out.data()[5]], [0.0, 1.0]);
    let inf = Matrix::new(2, 2, vec![1.0, 2.0, f32::NEG_INFINITY, 3.0]).unwrap();
    let err = gpu
        .min_max(
            &inf,
            &MinMaxParams {
                min: 0.0,
                max: 1.0,
                axis: Axis::Rows,
            },
        )
        .unwrap_err();
    assert!(
        matches!(&err, KernelError::InvalidInput(msg) if msg.contains("row 1, column 0")),
        "{err}"
    );
    let bad = MinMaxParams {
        min: 1.0,
        max: 0.0,
        axis: Axis::All,
    };
    assert!(matches!(
        gpu.min_max(&m, &bad),
        Err(KernelError::InvalidArgument(_))
    ));
    let empty = gpu
        .min_max(
            &Matrix::new(0, 2, vec![]).unwrap(),
            &MinMaxParams {
                min: 0.0,
                max: 1.0,
                axis: Axis::All,
            },
        )
        .unwrap();
    assert_eq!((empty.rows(), empty.cols()), (0, 2));
}

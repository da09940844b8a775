#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What only the CUDA Kalman filter has (the shared checks are in
//! `serrano_kernel_core::conformance::kalman`): the device-resident entry point and the tiled
//! transposes past grid y's 65535 blocks. Skipped with the reason where there is no GPU.
//! Tolerance as in the conformance suite on an accelerator: 2e-5 · (1 + |ref|).

use serrano_kernel_core::conformance::{Rng, assert_close};
use serrano_kernel_core::kalman::{KalmanModel, KalmanParams};
use serrano_kernel_core::{KernelBackend, KernelError, reference};
use serrano_kernel_cuda::CudaBackend;
use serrano_kernel_cuda::kalman::kalman_resident;

fn level() -> KalmanParams {
    KalmanParams {
        model: KalmanModel::Constant,
        dt: 1.0,
        q: 0.5,
        r: 2.0,
    }
}

#[test]
fn more_tracks_than_one_grid_of_transpose_tiles() {
    let Ok(b) = CudaBackend::probe().inspect_err(|e| eprintln!("SKIPPED: {e}")) else {
        return;
    };
    // 65535 tiles of 32 tracks in grid y, and some more: the transpose loops over tiles.
    let rows = 65_535 * 32 + 33;
    let m = Rng::new(1).matrix(rows, 3, -5.0, 5.0);
    let want = reference::kalman::kalman(&m, &level()).unwrap();
    let got = b.kalman(&m, &level()).unwrap();
    assert_close("2M tracks", &got, &want, 2e-5, 2e-5);
}

#[test]
fn resident_input_is_checked() {
    let Ok(b) = CudaBackend::probe().inspect_err(|e| eprintln!("SKIPPED: {e}")) else {
        return;
    };
    let gpu = b.gpu();
    let short = gpu.stream().alloc_zeros::<f32>(10).unwrap();
    assert!(matches!(
        kalman_resident(gpu, &short, 4, 3, &level()),
        Err(KernelError::InvalidInput(_))
    ));
    let cv = KalmanParams {
        model: KalmanModel::ConstantVelocity { dims: 2 },
        ..level()
    };
    assert!(matches!(
        kalman_resident(gpu, &short, 2, 5, &cv),
        Err(KernelError::InvalidInput(_))
    ));
    // No rows: an (unused) one-value buffer, not a zero-byte allocation.
    let out = kalman_resident(gpu, &short, 0, 4, &cv).unwrap();
    assert_eq!(out.len(), 1);
}

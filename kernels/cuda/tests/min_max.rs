#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What only the CUDA min-max scaling has (the shared checks are in
//! `serrano_kernel_core::conformance::min_max`): the device-resident entry point and more
//! (row, chunk) work items than blocks in the grid. Skipped with the reason where there is no
//! GPU. Tolerance as in the conformance suite on an accelerator.

use serrano_kernel_core::conformance::{Rng, assert_close};
use serrano_kernel_core::min_max::{Axis, MinMaxParams};
use serrano_kernel_core::{KernelBackend, KernelError, Matrix, reference};
use serrano_kernel_cuda::CudaBackend;
use serrano_kernel_cuda::min_max::min_max_resident;

fn params(axis: Axis) -> MinMaxParams {
    MinMaxParams {
        min: -1.0,
        max: 1.0,
        axis,
    }
}

#[test]
fn more_rows_than_blocks_in_the_grid() {
    let Ok(b) = CudaBackend::probe().inspect_err(|e| eprintln!("SKIPPED: {e}")) else {
        return;
    };
    // The row reduction caps its grid at 2^20 blocks, one work item each: 2^21 + 3 rows loop.
    let mut m = Rng::new(2).matrix((1 << 21) + 3, 2, -50.0, 50.0);
    m.data_mut()[12_345] = f32::NAN;
    let p = params(Axis::Rows);
    let want = reference::min_max::min_max(&m, &p).unwrap();
    let got = b.min_max(&m, &p).unwrap();
    assert_close("2M rows", &got, &want, 6e-6, 0.0);
}

#[test]
fn resident_input_is_checked() {
    let Ok(b) = CudaBackend::probe().inspect_err(|e| eprintln!("SKIPPED: {e}")) else {
        return;
    };
    let gpu = b.gpu();
    let stream = gpu.stream();
    let short = stream.alloc_zeros::<f32>(10).unwrap();
    assert!(matches!(
        min_max_resident(gpu, &short, 4, 3, &params(Axis::All)),
        Err(KernelError::InvalidInput(_))
    ));
    let inf = Matrix::new(2, 2, vec![1.0, 2.0, f32::NEG_INFINITY, 3.0]).unwrap();
    let dev = stream.clone_htod(inf.data()).unwrap();
    for axis in [Axis::Columns, Axis::Rows, Axis::All] {
        assert!(matches!(
            min_max_resident(gpu, &dev, 2, 2, &params(axis)),
            Err(KernelError::InvalidInput(_))
        ));
    }
}

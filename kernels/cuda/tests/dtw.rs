#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What only the CUDA dtw has beyond the shared conformance suite
//! (`serrano_kernel_core::conformance::dtw`, run by `tests/conformance.rs`, which uses
//! `Strategy::Auto`): each kernel forced on shapes around its strips (32 columns per thread,
//! 256 per warp), more pairs than resident threads, and a device-resident job run twice.
//! Skipped with a printed reason without a GPU; `sources_compile.rs` compiles the source
//! wherever NVRTC is present.

use serrano_kernel_core::conformance::dtw::{assert_matches, series};
use serrano_kernel_core::dtw::DtwParams;
use serrano_kernel_cuda::CudaBackend;
use serrano_kernel_cuda::dtw::{DeviceDtw, Strategy};

fn gpu() -> Option<CudaBackend> {
    CudaBackend::probe()
        .map_err(|e| eprintln!("SKIPPED: no GPU: {e}"))
        .ok()
}

/// Both kernels on `na x nb` random pairs of lengths `l1`, `l2`.
fn both_kernels(b: &CudaBackend, shape: (usize, usize, usize, usize), window: Option<usize>) {
    let (na, nb, l1, l2) = shape;
    let x = series(na, l1, (l1 * 1000 + l2) as u64);
    let y = series(nb, l2, (l2 * 1000 + l1) as u64 + 7);
    let p = DtwParams { window };
    for strategy in [Strategy::ThreadPerPair, Strategy::WarpPerPair] {
        let mut job = DeviceDtw::new(b.gpu(), &x, &y, &p, strategy).unwrap();
        job.run(b.gpu()).unwrap();
        let got = job.download(b.gpu()).unwrap();
        assert_matches(&got, &x, &y, &p, 2.0);
    }
}

#[test]
fn each_kernel_around_its_strips() {
    let Some(b) = gpu() else { return };
    for (l1, l2) in [
        (1, 1),
        (31, 31),
        (32, 32),
        (33, 33),
        (5, 40),
        (70, 33),
        (1, 65),
        (129, 128),
        (256, 256),
        (300, 257),
        (40, 530),
    ] {
        for window in [None, Some(0), Some(1), Some(7), Some(40), Some(1000)] {
            both_kernels(&b, (13, 11, l1, l2), window);
        }
    }
}

#[test]
fn more_pairs_than_resident_threads() {
    let Some(b) = gpu() else { return };
    // 700 x 501 pairs: several pairs per persistent thread (and warp), a ragged last warp.
    both_kernels(&b, (700, 501, 24, 24), Some(5));
    both_kernels(&b, (300, 150, 70, 70), Some(9));
}

#[test]
fn a_resident_job_runs_again() {
    let Some(b) = gpu() else { return };
    let x = series(40, 90, 5);
    let p = DtwParams { window: Some(9) };
    let mut job = DeviceDtw::new(b.gpu(), &x, &x, &p, Strategy::Auto).unwrap();
    job.run(b.gpu()).unwrap();
    let first = job.download(b.gpu()).unwrap();
    job.run(b.gpu()).unwrap();
    assert_eq!(job.download(b.gpu()).unwrap(), first);
    assert_matches(&first, &x, &x, &p, 2.0);
}

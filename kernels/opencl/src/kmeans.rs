//! OpenCL k-means (semantics in `serrano_kernel_core::kmeans`): the shared Lloyd driver on the
//! host over [`ClStep`], whose data stays on the device; the kernels (`src/cl/kmeans.cl`)
//! assign points with exact `f32` squared distances and reduce per-chunk partial sums that the
//! host adds in `f64`, in chunk order. DTW has no OpenCL kernel: it answers `Unsupported`.

use ocl::{Buffer, Kernel, Program, Queue};
use serrano_kernel_core::kmeans::{
    Assignment, KMeansMetric, KMeansOutput, KMeansParams, LloydStep, lloyd, validate,
};
use serrano_kernel_core::{KernelError, Matrix, Result};

use crate::ClDevice;
use crate::device::cl_err;
use crate::knn::{scratch, upload};

pub const SOURCE: &str = include_str!("cl/kmeans.cl");

/// Partial sums held on the device at most (chunks x k x d floats).
const PARTIAL_BUDGET: usize = 1 << 24;

/// The assignment step with the data resident on an OpenCL device.
pub struct ClStep {
    queue: Queue,
    program: Program,
    n: usize,
    d: usize,
    data: Buffer<f32>,
    labels: Buffer<u32>,
    dist2: Buffer<f32>,
}

impl ClStep {
    pub fn new(dev: &ClDevice, data: &Matrix) -> Result<Self> {
        let (n, d) = (data.rows(), data.cols());
        if n == 0 || d == 0 {
            return Err(KernelError::input(
                "k-means needs at least one point and one column",
            ));
        }
        let queue = dev.queue().clone();
        let program = dev.program("kmeans", SOURCE)?;
        Ok(Self {
            data: upload(&queue, data.data())?,
            labels: scratch(&queue, n)?,
            dist2: scratch(&queue, n)?,
            queue,
            program,
            n,
            d,
        })
    }

    /// Runs `kmeans_assign` against `centroids` (rows of `d` values).
    fn run_assign(&self, centroids: &[f32]) -> Result<usize> {
        let k = centroids.len() / self.d;
        if k == 0 || k * self.d != centroids.len() {
            return Err(KernelError::input("centroids do not have d columns"));
        }
        let cent = upload(&self.queue, centroids)?;
        let kernel = Kernel::builder()
            .program(&self.program)
            .name("kmeans_assign")
            .queue(self.queue.clone())
            .global_work_size(self.n)
            .arg(&self.data)
            .arg(&cent)
            .arg(self.n as i32)
            .arg(self.d as i32)
            .arg(k as i32)
            .arg(&self.labels)
            .arg(&self.dist2)
            .build()
            .map_err(cl_err("kmeans_assign"))?;
        // SAFETY: one work-item per point (n), data n x d, centroids k x d, labels and dist2 n;
        // the kernel checks i < n.
        #[allow(unsafe_code)]
        unsafe {
            kernel.enq().map_err(cl_err("kmeans_assign"))?;
        }
        Ok(k)
    }
}

fn read<T: ocl::OclPrm>(buf: &Buffer<T>, len: usize) -> Result<Vec<T>> {
    let mut out = vec![T::default(); len];
    buf.read(&mut out).enq().map_err(cl_err("read"))?;
    Ok(out)
}

impl LloydStep for ClStep {
    fn dist2_to(&mut self, centre: &[f32]) -> Result<Vec<f64>> {
        self.run_assign(centre)?;
        Ok(read(&self.dist2, self.n)?
            .into_iter()
            .map(f64::from)
            .collect())
    }

    fn assign(&mut self, centroids: &Matrix) -> Result<Assignment> {
        let (n, d) = (self.n, self.d);
        let k = self.run_assign(centroids.data())?;
        let max_chunks = (PARTIAL_BUDGET / (k * d)).max(1);
        let chunk = n.div_ceil(max_chunks).max(1024).min(n);
        let chunks = n.div_ceil(chunk);
        let psum = scratch::<f32>(&self.queue, chunks * k * d)?;
        let pcount = scratch::<u32>(&self.queue, chunks * k)?;
        let pinertia = scratch::<f32>(&self.queue, chunks)?;
        let kernel = Kernel::builder()
            .program(&self.program)
            .name("kmeans_partial")
            .queue(self.queue.clone())
            .global_work_size([d, chunks])
            .arg(&self.data)
            .arg(&self.labels)
            .arg(&self.dist2)
            .arg(n as i32)
            .arg(d as i32)
            .arg(k as i32)
            .arg(chunk as i32)
            .arg(&psum)
            .arg(&pcount)
            .arg(&pinertia)
            .build()
            .map_err(cl_err("kmeans_partial"))?;
        // SAFETY: work-items (t < d, c < chunks) write only psum[c][*][t], pcount[c][*] and
        // pinertia[c], all within chunks x k x d / chunks x k / chunks; reads stay below n.
        #[allow(unsafe_code)]
        unsafe {
            kernel.enq().map_err(cl_err("kmeans_partial"))?;
        }
        let sums = read(&psum, chunks * k * d)?;
        let counts = read(&pcount, chunks * k)?;
        let inertia = read(&pinertia, chunks)?;
        let mut total = Assignment::zeros(k, d);
        for c in 0..chunks {
            for (t, s) in total.sums.iter_mut().zip(&sums[c * k * d..(c + 1) * k * d]) {
                *t += f64::from(*s);
            }
            for (t, s) in total.counts.iter_mut().zip(&counts[c * k..(c + 1) * k]) {
                *t += u64::from(*s);
            }
            total.inertia += f64::from(inertia[c]);
        }
        Ok(total)
    }

    fn labels(&mut self) -> Result<Vec<u32>> {
        read(&self.labels, self.n)
    }

    fn min_dist2(&mut self) -> Result<Vec<f64>> {
        Ok(read(&self.dist2, self.n)?
            .into_iter()
            .map(f64::from)
            .collect())
    }
}

pub fn kmeans(
    dev: &ClDevice,
    data: &Matrix,
    init: Option<&Matrix>,
    p: &KMeansParams,
) -> Result<KMeansOutput> {
    if let KMeansMetric::Dtw { .. } = p.metric {
        return Err(KernelError::Unsupported {
            kernel: "kmeans",
            backend: "opencl",
        });
    }
    validate(data, init, p)?;
    let mut step = ClStep::new(dev, data)?;
    lloyd(data, init, p, &mut step)
}

//! The exec-style registry (D6.7 4.7.1.1.1.4: one `exec` of a named kernel, the implementation
//! picked per machine): binds named or positional inputs, parses typed parameters, picks the
//! implementation from the requested [`Mode`] and what the machine has, runs it, and reports which
//! implementation ran on which device.

use std::time::Instant;

use serde::Serialize;
use serrano_kernel_core::backend::BackendKind;
use serrano_kernel_core::black_scholes::BsParams;
use serrano_kernel_core::dtw::DtwParams;
use serrano_kernel_core::fft::{FftKind, FftParams};
use serrano_kernel_core::kalman::{KalmanModel, KalmanParams};
use serrano_kernel_core::kmeans::KMeansParams;
use serrano_kernel_core::knn::KnnParams;
use serrano_kernel_core::min_max::MinMaxParams;
use serrano_kernel_core::savgol::SavgolParams;
use serrano_kernel_core::wavelet::WaveletParams;
use serrano_kernel_core::{KernelBackend, KernelError, KernelName, Matrix, Params, Result, Table};
use serrano_kernel_cpu::CpuBackend;
use serrano_kernel_cuda::CudaBackend;
use serrano_kernel_opencl::OpenClBackend;

/// The implementation a caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Cpu,
    Gpu,
    #[serde(rename = "opencl")]
    OpenCl,
    /// The fastest available for the input size (a GPU for large inputs, else the CPU).
    Auto,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Cpu, Mode::Gpu, Mode::OpenCl, Mode::Auto];

    pub fn parse(s: &str) -> Option<Mode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Some(Mode::Cpu),
            "gpu" | "cuda" => Some(Mode::Gpu),
            "opencl" | "ocl" => Some(Mode::OpenCl),
            "auto" | "" => Some(Mode::Auto),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Cpu => "cpu",
            Mode::Gpu => "gpu",
            Mode::OpenCl => "opencl",
            Mode::Auto => "auto",
        }
    }
}

#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Probe for a CUDA GPU.
    pub cuda: bool,
    /// Probe for an OpenCL device.
    pub opencl: bool,
    /// In `auto` mode, inputs smaller than this stay on the CPU (transfers and launches would
    /// cost more than they save).
    pub auto_gpu_min_bytes: usize,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            cuda: true,
            opencl: true,
            auto_gpu_min_bytes: 1 << 20,
        }
    }
}

/// One implementation family and whether this machine can run it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeviceInfo {
    pub backend: &'static str,
    pub available: bool,
    /// The device, or why the family is unavailable.
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InputInfo {
    pub name: &'static str,
    pub required: bool,
    pub doc: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KernelInfo {
    pub name: &'static str,
    pub hpc_service: &'static str,
    pub summary: &'static str,
    pub inputs: Vec<InputInfo>,
    /// Modes that can run it on this machine.
    pub modes: Vec<&'static str>,
}

/// An input array with the name it arrived under (file stem, S3 object name, message header).
#[derive(Debug, Clone)]
pub struct NamedInput {
    pub name: Option<String>,
    pub table: Table,
}

impl NamedInput {
    pub fn new(name: impl Into<String>, table: Table) -> Self {
        Self {
            name: Some(name.into()),
            table,
        }
    }
    pub fn positional(table: Table) -> Self {
        Self { name: None, table }
    }
}

/// What one `exec` produced.
#[derive(Debug, Clone)]
pub struct Execution {
    pub kernel: KernelName,
    pub backend: BackendKind,
    pub device: String,
    /// Named outputs, the primary one first.
    pub outputs: Vec<(String, Table)>,
    /// Scalar results (k-means inertia and iterations, wavelet coefficient lengths, ...).
    pub info: serde_json::Map<String, serde_json::Value>,
    pub run_kernel_ms: f64,
}

pub struct Registry {
    cpu: CpuBackend,
    cuda: std::result::Result<CudaBackend, String>,
    opencl: std::result::Result<OpenClBackend, String>,
    options: RegistryOptions,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("devices", &self.devices())
            .finish()
    }
}

impl Registry {
    /// Probes the machine. Never fails: a missing accelerator is recorded with its reason.
    pub fn detect(options: RegistryOptions) -> Registry {
        let cuda = if options.cuda {
            CudaBackend::probe().map_err(|e| e.to_string())
        } else {
            Err("disabled by configuration".into())
        };
        let opencl = if options.opencl {
            OpenClBackend::probe().map_err(|e| e.to_string())
        } else {
            Err("disabled by configuration".into())
        };
        for (name, r) in [
            ("cuda", cuda.as_ref().err()),
            ("opencl", opencl.as_ref().err()),
        ] {
            if let Some(reason) = r {
                tracing::info!(backend = name, reason = %reason, "kernel backend unavailable");
            }
        }
        Registry {
            cpu: CpuBackend::new(),
            cuda,
            opencl,
            options,
        }
    }

    /// CPU only (no probing): for tests and machines where probing is unwanted.
    pub fn cpu_only() -> Registry {
        Self::detect(RegistryOptions {
            cuda: false,
            opencl: false,
            ..Default::default()
        })
    }

    pub fn devices(&self) -> Vec<DeviceInfo> {
        let entry = |backend, r: std::result::Result<String, &String>| match r {
            Ok(d) => DeviceInfo {
                backend,
                available: true,
                detail: d,
            },
            Err(reason) => DeviceInfo {
                backend,
                available: false,
                detail: reason.clone(),
            },
        };
        vec![
            entry("cpu", Ok(self.cpu.device())),
            entry("cuda", self.cuda.as_ref().map(|b| b.device())),
            entry("opencl", self.opencl.as_ref().map(|b| b.device())),
        ]
    }

    pub fn kernels(&self) -> Vec<KernelInfo> {
        KernelName::ALL
            .iter()
            .map(|&k| KernelInfo {
                name: k.as_str(),
                hpc_service: k.hpc_service(),
                summary: k.summary(),
                inputs: k
                    .inputs()
                    .iter()
                    .map(|i| InputInfo {
                        name: i.name,
                        required: i.required,
                        doc: i.doc,
                    })
                    .collect(),
                modes: Mode::ALL
                    .iter()
                    .filter(|m| self.backend_for(k, **m, 0).is_ok())
                    .map(|m| m.as_str())
                    .collect(),
            })
            .collect()
    }

    /// Compiles/loads every kernel on the accelerators, so the first call pays no build cost.
    /// Every module is tried; the first failure is returned after all the others were built.
    pub fn warm_up(&self) -> Result<()> {
        let mut first_error = None;
        for k in KernelName::ALL {
            let backends: [Option<&dyn KernelBackend>; 2] = [
                self.cuda.as_ref().ok().map(|b| b as &dyn KernelBackend),
                self.opencl.as_ref().ok().map(|b| b as &dyn KernelBackend),
            ];
            for b in backends.into_iter().flatten().filter(|b| b.supports(k)) {
                if let Err(e) = b.warm_up(k) {
                    tracing::warn!(kernel = %k, backend = b.kind().as_str(), error = %e, "module build failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Builds (or finds cached) the modules `kernel` needs on the implementation `mode` picks for
    /// inputs of `input_bytes`: the "load model libs" step of an invocation (near 0 when warm).
    pub fn prepare(&self, kernel: &str, mode: Mode, input_bytes: usize) -> Result<()> {
        let Some(name) = KernelName::parse(kernel) else {
            return Ok(());
        };
        match self.backend_for(name, mode, input_bytes) {
            Ok(b) => b.warm_up(name),
            // `exec` reports the error with its context.
            Err(_) => Ok(()),
        }
    }

    fn backend_for(
        &self,
        kernel: KernelName,
        mode: Mode,
        input_bytes: usize,
    ) -> Result<&dyn KernelBackend> {
        let unavailable = |what: &str, reason: &String| {
            KernelError::Device(format!(
                "mode {} needs {what}, which is unavailable: {reason}",
                mode.as_str()
            ))
        };
        let unsupported = |backend: &'static str| KernelError::Unsupported {
            kernel: kernel.as_str(),
            backend,
        };
        match mode {
            Mode::Cpu => Ok(&self.cpu),
            Mode::Gpu => match &self.cuda {
                Ok(b) if b.supports(kernel) => Ok(b),
                Ok(_) => Err(unsupported("cuda")),
                Err(reason) => Err(unavailable("a CUDA GPU", reason)),
            },
            Mode::OpenCl => match &self.opencl {
                Ok(b) if b.supports(kernel) => Ok(b),
                Ok(_) => Err(unsupported("opencl")),
                Err(reason) => Err(unavailable("an OpenCL device", reason)),
            },
            Mode::Auto => {
                let big = input_bytes >= self.options.auto_gpu_min_bytes;
                if let Ok(b) = &self.cuda
                    && big
                    && b.supports(kernel)
                {
                    return Ok(b);
                }
                // An OpenCL CPU runtime (pocl) is slower than the native CPU family.
                if let Ok(b) = &self.opencl
                    && big
                    && b.supports(kernel)
                    && b.cl().is_gpu()
                {
                    return Ok(b);
                }
                Ok(&self.cpu)
            }
        }
    }

    /// Runs `kernel` (a name or alias) on `inputs` with `params`, on the implementation `mode` picks.
    pub fn exec(
        &self,
        kernel: &str,
        inputs: Vec<NamedInput>,
        params: &Params,
        mode: Mode,
    ) -> Result<Execution> {
        let name = KernelName::parse(kernel).ok_or_else(|| {
            let known: Vec<&str> = KernelName::ALL.iter().map(|k| k.as_str()).collect();
            KernelError::arg(format!(
                "unknown kernel '{kernel}' (known: {})",
                known.join(", ")
            ))
        })?;
        let (bound, ignored) = bind_inputs(name, inputs)?;
        if !ignored.is_empty() {
            tracing::warn!(kernel = %name, ignored = ?ignored, "inputs that match no input of the kernel were ignored");
        }
        let bytes: usize = bound.iter().flatten().map(Table::byte_len).sum();
        let backend = self.backend_for(name, mode, bytes)?;
        let mut execution = match run(backend, name, &bound, params) {
            // `auto` never fails for want of an accelerator implementation: the CPU has them all.
            Err(KernelError::Unsupported { .. })
                if mode == Mode::Auto && backend.kind() != BackendKind::Cpu =>
            {
                run(&self.cpu, name, &bound, params)
            }
            other => other,
        }?;
        if !ignored.is_empty() {
            execution
                .info
                .insert("ignored_inputs".into(), ignored.into());
        }
        Ok(execution)
    }
}

/// Assigns inputs to the kernel's input slots: by name where an input's name (file stem) is a
/// slot's name; the others in order to the remaining slots that may be filled by position.
/// Returns the slots and the names of inputs no slot took (e.g. the `labels` argument of the
/// D6.7 k-means example), which the caller reports.
fn bind_inputs(
    kernel: KernelName,
    inputs: Vec<NamedInput>,
) -> Result<(Vec<Option<Table>>, Vec<String>)> {
    let specs = kernel.inputs();
    if inputs.len() > specs.len() {
        return Err(KernelError::input(format!(
            "{kernel} takes at most {} inputs ({}), got {}",
            specs.len(),
            specs.iter().map(|s| s.name).collect::<Vec<_>>().join(", "),
            inputs.len()
        )));
    }
    let mut slots: Vec<Option<Table>> = vec![None; specs.len()];
    let mut rest = Vec::new();
    for input in inputs {
        let stem = input.name.as_deref().map(stem);
        match stem.and_then(|s| {
            specs
                .iter()
                .position(|spec| spec.name.eq_ignore_ascii_case(s))
        }) {
            Some(i) if slots[i].is_none() => slots[i] = Some(input.table),
            _ => rest.push(input),
        }
    }
    let mut ignored = Vec::new();
    for input in rest {
        match (0..specs.len()).find(|&i| slots[i].is_none() && !specs[i].by_name_only) {
            Some(i) => slots[i] = Some(input.table),
            None => ignored.push(input.name.unwrap_or_else(|| "(unnamed)".into())),
        }
    }
    for (spec, slot) in specs.iter().zip(&slots) {
        if spec.required && slot.is_none() {
            return Err(KernelError::input(format!(
                "{kernel} needs input '{}' ({})",
                spec.name, spec.doc
            )));
        }
    }
    Ok((slots, ignored))
}

/// `dir/points.csv` → `points`.
fn stem(name: &str) -> &str {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    base.split_once('.').map_or(base, |(s, _)| s)
}

fn f32_input(slot: &Option<Table>, what: &str) -> Result<Matrix> {
    slot.as_ref()
        .map(Table::to_f32)
        .ok_or_else(|| KernelError::input(format!("missing input '{what}'")))
}

/// A signal kernel's input laid out as one signal per row. Returns the rows and, when the input
/// was one signal down a column of `width` values per sample, that width (to lay the output
/// back out as a column).
fn signal_rows(m: Matrix, width: usize) -> Result<(Matrix, Option<usize>)> {
    if m.cols() == width && m.rows() > 1 {
        let len = m.len();
        Ok((m.reshape(1, len)?, Some(width)))
    } else {
        Ok((m, None))
    }
}

fn unrow(out: Matrix, width: Option<usize>) -> Result<Matrix> {
    match width {
        Some(w) if w > 0 && out.len().is_multiple_of(w) => {
            let len = out.len();
            out.reshape(len / w, w)
        }
        _ => Ok(out),
    }
}

fn run(
    backend: &dyn KernelBackend,
    kernel: KernelName,
    inputs: &[Option<Table>],
    params: &Params,
) -> Result<Execution> {
    let mut outputs: Vec<(String, Table)> = Vec::new();
    let mut info = serde_json::Map::new();
    let started = Instant::now();
    match kernel {
        KernelName::Knn => {
            let p = KnnParams::from_params(params)?;
            let points = f32_input(&inputs[0], "points")?;
            let queries = f32_input(&inputs[1], "queries")?;
            let out = backend.knn(&points, &queries, &p)?;
            let predictions = match &inputs[2] {
                Some(labels) => Some(majority_vote(&out.indices, labels, points.rows())?),
                None => None,
            };
            outputs.push(("indices".into(), out.indices.into()));
            outputs.push(("distances".into(), out.distances.into()));
            if let Some(pred) = predictions {
                outputs.insert(0, ("predictions".into(), pred.into()));
            }
        }
        KernelName::KMeans => {
            let p = KMeansParams::from_params(params)?;
            let data = f32_input(&inputs[0], "data")?;
            let init = inputs[1].as_ref().map(Table::to_f32);
            let out = backend.kmeans(&data, init.as_ref(), &p)?;
            info.insert("inertia".into(), out.inertia.into());
            info.insert("iterations".into(), out.iterations.into());
            outputs.push(("labels".into(), out.labels.into()));
            outputs.push(("centroids".into(), out.centroids.into()));
        }
        KernelName::Dtw => {
            let p = DtwParams::from_params(params)?;
            let a = f32_input(&inputs[0], "a")?;
            let b = match &inputs[1] {
                Some(t) => t.to_f32(),
                None => a.clone(),
            };
            outputs.push(("distances".into(), backend.dtw(&a, &b, &p)?.into()));
        }
        KernelName::SavitzkyGolay => {
            let p = SavgolParams::from_params(params)?;
            let (rows, col) = signal_rows(f32_input(&inputs[0], "signal")?, 1)?;
            outputs.push((
                "filtered".into(),
                unrow(backend.savgol(&rows, &p)?, col)?.into(),
            ));
        }
        KernelName::BlackScholes => {
            let p = BsParams::from_params(params)?;
            let options = f32_input(&inputs[0], "options")?;
            outputs.push(("prices".into(), backend.black_scholes(&options, &p)?.into()));
        }
        KernelName::Kalman => {
            let m = f32_input(&inputs[0], "measurements")?;
            // A single column is one 1-D signal (the HPC kernel's input) unless dims says otherwise.
            let p = if m.cols() == 1 && params.usize(&["dims"])?.is_none() {
                let mut with_dims = params.clone();
                with_dims.insert("dims", 1);
                KalmanParams::from_params(&with_dims)?
            } else {
                KalmanParams::from_params(params)?
            };
            let (dims, state) = match p.model {
                KalmanModel::Constant => (1, 1),
                KalmanModel::ConstantVelocity { dims } => (dims, 2 * dims),
            };
            // One track laid down the rows (a row per step) when each row holds one step.
            let (rows, col) = if m.cols() == dims && m.rows() > 1 {
                signal_rows(m, dims)?
            } else {
                (m, None)
            };
            let out = backend.kalman(&rows, &p)?;
            outputs.push(("states".into(), unrow(out, col.map(|_| state))?.into()));
        }
        KernelName::Fft => {
            let p = FftParams::from_params(params)?;
            let in_width = if p.kind == FftKind::Complex || p.inverse {
                2
            } else {
                1
            };
            let out_width = if p.kind == FftKind::Real && p.inverse {
                1
            } else {
                2
            };
            let (rows, col) = signal_rows(f32_input(&inputs[0], "signal")?, in_width)?;
            let out = backend.fft(&rows, &p)?;
            outputs.push((
                "spectrum".into(),
                unrow(out, col.map(|_| out_width))?.into(),
            ));
        }
        KernelName::Wavelet => {
            let p = WaveletParams::from_params(params)?;
            let (rows, col) = signal_rows(f32_input(&inputs[0], "signal")?, 1)?;
            if !p.inverse {
                // How to split a row of coefficients: [len cA_L, len cD_L, ..., len cD_1].
                let lengths = serrano_kernel_core::wavelet::coefficient_lengths(
                    rows.cols(),
                    p.wavelet,
                    p.levels,
                    p.mode,
                )?;
                info.insert("coefficient_lengths".into(), lengths.into());
            }
            let name = if p.inverse { "signal" } else { "coefficients" };
            outputs.push((name.into(), unrow(backend.wavelet(&rows, &p)?, col)?.into()));
        }
        KernelName::MinMax => {
            let p = MinMaxParams::from_params(params)?;
            let data = f32_input(&inputs[0], "data")?;
            outputs.push(("normalized".into(), backend.min_max(&data, &p)?.into()));
        }
    }
    Ok(Execution {
        kernel,
        backend: backend.kind(),
        device: backend.device(),
        outputs,
        info,
        run_kernel_ms: started.elapsed().as_secs_f64() * 1e3,
    })
}

/// Majority-vote predictions from the neighbours (the vote itself is the core's).
fn majority_vote(indices: &Matrix<u32>, labels: &Table, n_points: usize) -> Result<Matrix<u32>> {
    let labels = labels.to_f32();
    if labels.len() != n_points {
        return Err(KernelError::input(format!(
            "labels has {} values for {n_points} points",
            labels.len()
        )));
    }
    serrano_kernel_core::knn::majority_vote(indices, labels.data())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(rows: usize, cols: usize, data: Vec<f32>) -> Table {
        Table::F32(Matrix::new(rows, cols, data).unwrap())
    }

    #[test]
    fn inputs_bind_by_name_then_position() {
        let a = m(1, 1, vec![1.0]);
        let b = m(1, 1, vec![2.0]);
        let (bound, ignored) = bind_inputs(
            KernelName::Knn,
            vec![
                NamedInput::new("bucket/queries.csv", a.clone()),
                NamedInput::new("position", b.clone()),
            ],
        )
        .unwrap();
        assert_eq!(bound[0].as_ref(), Some(&b));
        assert_eq!(bound[1].as_ref(), Some(&a));
        assert!(bound[2].is_none());
        assert!(ignored.is_empty());
        // The D6.7 k-means example names `position` and `labels`: labels cannot become `init`.
        let (bound, ignored) = bind_inputs(
            KernelName::KMeans,
            vec![
                NamedInput::new("position", a.clone()),
                NamedInput::new("labels", b.clone()),
            ],
        )
        .unwrap();
        assert_eq!(bound[0].as_ref(), Some(&a));
        assert!(bound[1].is_none());
        assert_eq!(ignored, vec!["labels".to_string()]);
        // Positional inputs still fill an optional slot that may be filled by position (dtw's b).
        let (bound, _) = bind_inputs(
            KernelName::Dtw,
            vec![
                NamedInput::new("x.csv", a.clone()),
                NamedInput::new("y.csv", b.clone()),
            ],
        )
        .unwrap();
        assert_eq!(bound[1].as_ref(), Some(&b));
        let e = bind_inputs(KernelName::Knn, vec![NamedInput::positional(a.clone())]).unwrap_err();
        assert!(e.to_string().contains("needs input 'queries'"), "{e}");
        let e = bind_inputs(
            KernelName::MinMax,
            vec![NamedInput::positional(a.clone()), NamedInput::positional(b)],
        )
        .unwrap_err();
        assert!(e.to_string().contains("at most 1"), "{e}");
    }

    #[test]
    fn votes_break_ties_to_the_smallest_label() {
        let idx = Matrix::new(2, 3, vec![0u32, 1, 2, 2, 3, 3]).unwrap();
        let labels = m(4, 1, vec![5.0, 5.0, 1.0, 1.0]);
        let v = majority_vote(&idx, &labels, 4).unwrap();
        assert_eq!(v.data(), &[5, 1]);
        let idx = Matrix::new(1, 2, vec![0u32, 2]).unwrap();
        assert_eq!(majority_vote(&idx, &labels, 4).unwrap().data(), &[1]);
        assert!(majority_vote(&idx, &m(4, 1, vec![0.5, 1.0, 1.0, 1.0]), 4).is_err());
        assert!(majority_vote(&idx, &labels, 5).is_err());
    }

    #[test]
    fn modes_parse_and_missing_devices_are_clear_errors() {
        assert_eq!(Mode::parse("GPU"), Some(Mode::Gpu));
        assert_eq!(Mode::parse("x"), None);
        let r = Registry::cpu_only();
        let e = r
            .exec(
                "min_max",
                vec![NamedInput::positional(m(1, 1, vec![1.0]))],
                &Params::new(),
                Mode::Gpu,
            )
            .unwrap_err();
        assert!(matches!(e, KernelError::Device(_)), "{e}");
        assert!(e.to_string().contains("mode gpu"), "{e}");
        let e = r
            .exec("nope", vec![], &Params::new(), Mode::Cpu)
            .unwrap_err();
        assert!(e.to_string().contains("unknown kernel 'nope'"), "{e}");
        let devices = r.devices();
        assert_eq!(devices.len(), 3);
        assert!(devices[0].available);
        assert!(!devices[1].available);
        let kernels = r.kernels();
        assert_eq!(kernels.len(), KernelName::ALL.len());
        assert!(kernels.iter().all(|k| k.modes == vec!["cpu", "auto"]));
    }
}

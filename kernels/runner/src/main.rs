//! `serrano-kernel`: run a kernel on files (inside an HPC batch job or by hand), list kernels and
//! devices, or serve kernel invocations over HTTP.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serrano_kernel_runner::invoke::{DataDescription, Runner, Storage};
use serrano_kernels::{Mode, Registry, RegistryOptions};

#[derive(Parser)]
#[command(
    name = "serrano-kernel",
    version,
    about = "SERRANO accelerated kernels: CPU, CUDA and OpenCL"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run KERNEL on input files; CSV, binary (.bin) or .npy by extension.
    Run {
        kernel: String,
        #[arg(long, default_value = "auto")]
        mode: String,
        /// Input files, in the kernel's input order (or named after its inputs, e.g. queries.csv).
        #[arg(long = "input", required = true)]
        inputs: Vec<PathBuf>,
        /// Output file of the primary output; other outputs go next to it (`out.NAME.csv`).
        #[arg(long)]
        output: PathBuf,
        /// Kernel parameter KEY=VALUE (repeatable).
        #[arg(long = "param")]
        params: Vec<String>,
    },
    /// List kernels, the modes this machine can run them in, and the devices.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Serve kernel invocations over HTTP (configuration from SERRANO_KERNEL_RUNNER_*).
    Serve,
}

// Kernel calls allocate large outputs: mimalloc reuses freed pages instead of page-faulting them in
// again on every call (the whole difference for memory-bound kernels, see docs/benchmarks.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            kernel,
            mode,
            inputs,
            output,
            params,
        } => run_files(&kernel, &mode, inputs, output, params),
        Command::List { json } => list(json),
        Command::Serve => serve(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("serrano-kernel: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn run_files(
    kernel: &str,
    mode: &str,
    inputs: Vec<PathBuf>,
    output: PathBuf,
    params: Vec<String>,
) -> anyhow::Result<()> {
    let mode = Mode::parse(mode)
        .ok_or_else(|| anyhow::anyhow!("--mode must be cpu, gpu, opencl or auto"))?;
    let mut desc = DataDescription {
        kernel_name: Some(kernel.to_string()),
        storage: Some(Storage::File),
        arguments: inputs.iter().map(|p| p.display().to_string()).collect(),
        mode: Some(mode.as_str().to_string()),
        output: Some(output.display().to_string()),
        output_format: serrano_kernels::Format::from_name(&output.display().to_string())
            .map(|f| f.extension().to_string()),
        ..Default::default()
    };
    let parsed = serrano_kernels::Params::from_pairs(params.iter().map(String::as_str))?;
    if let Some((k, _)) = parsed
        .iter()
        .find(|(k, _)| serrano_kernel_runner::invoke::RESERVED.contains(&k.as_str()))
    {
        anyhow::bail!(
            "--param {k}: '{k}' is not a kernel parameter (the device mode is --mode; the edge mode of \
             savgol is edge_mode, of wavelet extension)"
        );
    }
    for (k, v) in parsed.iter() {
        desc.params.insert(k.clone(), v.clone());
    }
    // Probe only what the mode can use: a CPU run never touches a GPU driver.
    let options = RegistryOptions {
        cuda: matches!(mode, Mode::Gpu | Mode::Auto),
        opencl: matches!(mode, Mode::OpenCl | Mode::Auto),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let registry = Registry::detect(options);
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let runner = Runner {
        registry: Arc::new(registry),
        s3: None,
        broker: None,
        allow_local_files: true,
        default_mode: mode,
        input_wait: Duration::from_secs(0),
    };
    let mut result = runtime()?.block_on(runner.invoke(kernel, desc))?;
    // A fresh process pays for finding and opening the devices: the original's "load vAccel libs".
    result.metrics.load_vaccel_libs_ms = load_ms;
    result.metrics.total_ms += load_ms;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}

fn list(json: bool) -> anyhow::Result<()> {
    let registry = Registry::detect(RegistryOptions::default());
    if json {
        let v = serde_json::json!({"kernels": registry.kernels(), "devices": registry.devices()});
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("devices:");
    for d in registry.devices() {
        let state = if d.available {
            "available"
        } else {
            "unavailable"
        };
        println!("  {:<7} {:<11} {}", d.backend, state, d.detail);
    }
    println!("kernels:");
    for k in registry.kernels() {
        let inputs: Vec<String> = k
            .inputs
            .iter()
            .map(|i| {
                if i.required {
                    i.name.to_string()
                } else {
                    format!("[{}]", i.name)
                }
            })
            .collect();
        println!(
            "  {:<14} modes: {:<22} inputs: {:<28} {}",
            k.name,
            k.modes.join(","),
            inputs.join(" "),
            k.summary
        );
    }
    Ok(())
}

fn serve() -> anyhow::Result<()> {
    let config: serrano_kernel_runner::Config =
        serrano_service::load_config(serrano_kernel_runner::SERVICE)?;
    serrano_service::init_tracing(config.http.log_format, &config.http.log_level);
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.http.bind).await?;
        serrano_kernel_runner::run(config, listener, serrano_service::shutdown_signal()).await
    })
}

//! The SERRANO kernel runner (D6.7 4.7 and 4.2.3.2.4): one process that keeps the kernel
//! registry warm (device context and compiled modules cached) and serves kernel invocations over
//! HTTP — the FaaS function the RO's Kubernetes driver calls — and the `serrano-kernel` CLI that
//! runs a kernel on files inside an HPC batch job.
//!
//! Layout: [`invoke`] is the invocation pipeline over the [`invoke::ObjectStore`] and
//! [`invoke::ResultBroker`] traits; [`s3`] and [`broker`] are the adapters; [`api`] the handlers.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use serde::{Deserialize, Serialize};
use serrano_kernels::{Mode, Registry, RegistryOptions};
use serrano_service::{HttpConfig, Secret, ServiceShell};

pub mod api;
pub mod broker;
pub mod invoke;
pub mod s3;

pub use invoke::{DataDescription, InvocationMetrics, InvocationResult, Runner, Storage};

pub const SERVICE: &str = "kernel-runner";
/// Fixed default port (next to the services of ARCHITECTURE.md "Ports").
pub const DEFAULT_PORT: u16 = 7115;

/// Configuration: `SERRANO_KERNEL_RUNNER_<KEY>` variables or the TOML file in
/// `SERRANO_KERNEL_RUNNER_CONFIG`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub http: HttpConfig,
    /// S3 endpoint and credentials for `storage: s3` (the storage gateway or any S3 server).
    pub s3: Option<s3::S3Config>,
    /// Message broker for `storage: broker` inputs and `kernels_results_{uuid}` results.
    pub broker: broker::BrokerConfig,
    /// Mode when a request names none: cpu | gpu | opencl | auto.
    pub default_mode: String,
    /// Probe for a CUDA GPU / an OpenCL device at start.
    pub cuda: bool,
    pub opencl: bool,
    /// In auto mode, inputs below this many bytes run on the CPU.
    pub auto_gpu_min_bytes: usize,
    /// Allow `storage: file` (paths on this machine). Off for a network service.
    pub allow_local_files: bool,
    /// How long a broker-fed invocation waits for its input messages.
    pub input_wait_ms: u64,
    /// Compile every accelerator module at start, so no request pays for it.
    pub warm_up: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: HttpConfig::with_port(DEFAULT_PORT),
            s3: None,
            broker: None,
            default_mode: "auto".into(),
            cuda: true,
            opencl: true,
            auto_gpu_min_bytes: 1 << 20,
            allow_local_files: false,
            input_wait_ms: 30_000,
            warm_up: true,
        }
    }
}

/// Probes devices, warms the modules up, and connects the storage adapters.
pub async fn build_runner(config: &Config) -> anyhow::Result<Runner> {
    let default_mode = Mode::parse(&config.default_mode).ok_or_else(|| {
        anyhow::anyhow!(
            "default_mode '{}' is not cpu, gpu, opencl or auto",
            config.default_mode
        )
    })?;
    let options = RegistryOptions {
        cuda: config.cuda,
        opencl: config.opencl,
        auto_gpu_min_bytes: config.auto_gpu_min_bytes,
    };
    let warm = config.warm_up;
    let started = Instant::now();
    let registry = tokio::task::spawn_blocking(move || {
        let registry = Registry::detect(options);
        if warm && let Err(err) = registry.warm_up() {
            tracing::warn!(error = %err, "warming the accelerator modules up failed");
        }
        registry
    })
    .await?;
    tracing::info!(
        ms = started.elapsed().as_secs_f64() * 1e3,
        devices = ?registry.devices(),
        "kernel registry ready"
    );
    let s3: Option<Arc<dyn invoke::ObjectStore>> = config
        .s3
        .as_ref()
        .map(|c| Arc::new(s3::S3Store::new(c)) as Arc<dyn invoke::ObjectStore>);
    let broker = broker::open(&config.broker).await?;
    Ok(Runner {
        registry: Arc::new(registry),
        s3,
        broker,
        allow_local_files: config.allow_local_files,
        default_mode,
        input_wait: Duration::from_millis(config.input_wait_ms),
    })
}

/// The complete service around `runner`.
pub fn router(runner: Arc<Runner>, tokens: Vec<Secret>, max_body_bytes: usize) -> Router {
    ServiceShell {
        name: SERVICE,
        tokens,
        readiness: None,
        openapi: api::openapi(),
        max_body_bytes,
        extra_metrics: None,
    }
    .into_router(api::routes().with_state(runner))
}

pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let tokens = config.http.required_tokens(SERVICE)?;
    serve_with(config, tokens, listener, shutdown).await
}

/// Serves with the given tokens (for `serrano up`, which adds its admin token).
pub async fn serve_with(
    config: Config,
    tokens: Vec<Secret>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let runner = Arc::new(build_runner(&config).await?);
    let app = router(runner, tokens, config.http.max_body_bytes);
    let tls = config.http.tls_files()?;
    tracing::info!(address = %listener.local_addr()?, tls = tls.is_some(), "kernel-runner listening");
    serrano_service::serve(app, listener, tls, shutdown).await?;
    Ok(())
}

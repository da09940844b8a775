//! `serrano up`: every platform service in one process on the embedded backends, each at its
//! fixed port, with a generated admin token that survives restarts.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rand::RngCore;
use serrano_datastore::{Backend, DatastoreConfig, open_store};
use serrano_service::Secret;

/// Reads `DIR/admin.token`, or writes a new random one (owner-readable only).
pub fn admin_token(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("admin.token");
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        // Missing or empty: make one. Any other failure (permissions, I/O) must not replace a
        // token that clients already hold.
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, &token).with_context(|| format!("writing {}", path.display()))?;
    Ok(token)
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, format!("{text}\n"))
}

pub async fn run(data_dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let token = Secret::new(admin_token(data_dir)?);

    // Each service still reads its own SERRANO_<SERVICE>_* settings (port, TLS, extra tokens);
    // `up` pins every backend to the one embedded datastore under the data directory (the
    // services' keys are disjoint, as they are in a shared etcd).
    let ro_config: serrano_ro_api::Config = serrano_service::load_config(serrano_ro_api::SERVICE)?;
    let mut hpc_config: serrano_hpc_gateway::Config =
        serrano_service::load_config(serrano_hpc_gateway::SERVICE)?;
    let mut storage_config: serrano_storage_gateway::Config =
        serrano_service::load_config(serrano_storage_gateway::SERVICE)?;
    let mut cth_config: serrano_cth::Config = serrano_service::load_config(serrano_cth::SERVICE)?;
    let mut eta_config: serrano_eta::Config = serrano_service::load_config(serrano_eta::SERVICE)?;
    let pmds_config: serrano_pmds::Config = serrano_service::load_config(serrano_pmds::SERVICE)?;
    let mut probe_config: serrano_probe::Config =
        serrano_service::load_config(serrano_probe::SERVICE)?;
    let mut kernel_config: serrano_kernel_runner::Config =
        serrano_service::load_config(serrano_kernel_runner::SERVICE)?;
    serrano_service::init_tracing(ro_config.http.log_format, &ro_config.http.log_level);
    let datastore = DatastoreConfig {
        backend: Backend::Embedded,
        path: data_dir.join("datastore"),
        ..DatastoreConfig::default()
    };
    let kv = open_store(&datastore)
        .await
        .context("opening the embedded datastore")?;
    hpc_config.datastore = datastore.clone();
    storage_config.datastore = datastore;
    // Fragments, the master key and the S3 admin key pair live under the data directory too;
    // the key pair where `aws --profile serrano` can find it (AWS_SHARED_CREDENTIALS_FILE).
    storage_config.data_dir = data_dir.join("storage");
    if storage_config.credentials_file.is_none() {
        storage_config.credentials_file = Some(data_dir.join("s3.credentials"));
    }

    // Telemetry (D6.7 4.4) on embedded backends: one operational DB in the datastore, one
    // time-series store (the agent writes, PMDS reads), one topic log for notifications.
    let telemetry = Telemetry::open(data_dir, kv.clone()).await?;

    // One Ctrl-C stops every service.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let signal = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };

    let ro = bind("ro-api", &ro_config.http).await?;
    let hpc = bind("hpc-gateway", &hpc_config.http).await?;
    let storage = bind("storage-gateway", &storage_config.http).await?;
    let cth = bind("cth", &cth_config.http).await?;
    let cth_grpc = bind_addr("cth gRPC", cth_config.grpc_bind).await?;
    let eta = bind("eta", &eta_config.http).await?;
    let eta_grpc = bind_addr("eta gRPC", eta_config.grpc_bind).await?;
    let pmds = bind("pmds", &pmds_config.http).await?;
    let pmds_grpc = bind_addr("pmds gRPC", pmds_config.grpc_bind).await?;
    let probe = bind("probe", &probe_config.http).await?;
    let kernels = bind("kernel-runner", &kernel_config.http).await?;

    // The services find each other at their bound addresses, with the admin token.
    let scheme_of = |http: &serrano_service::HttpConfig| -> anyhow::Result<&'static str> {
        Ok(if http.tls_files()?.is_some() {
            "https"
        } else {
            "http"
        })
    };
    let storage_url = format!(
        "{}://{}",
        scheme_of(&storage_config.http)?,
        storage.local_addr()?
    );
    let eta_url = format!("{}://{}", scheme_of(&eta_config.http)?, eta.local_addr()?);
    let probe_url = format!(
        "{}://{}",
        scheme_of(&probe_config.http)?,
        probe.local_addr()?
    );
    cth_config.storage_gateway = Some(serrano_cth::StorageGatewayConfig {
        url: storage_url.clone(),
        token: Some(token.clone()),
    });
    cth_config.agent_token = Some(token.clone());
    if eta_config.central.is_none() {
        eta_config.central = Some(serrano_eta::CentralLink {
            grpc_url: format!("http://{}", cth_grpc.local_addr()?),
            token: Some(token.clone()),
        });
    }
    eta_config.exposed_url.get_or_insert(eta_url.clone());
    eta_config
        .grpc_exposed_url
        .get_or_insert(format!("http://{}", eta_grpc.local_addr()?));
    eta_config.probe_token = Some(token.clone());
    // A host probe of this machine registers at once, so a new user sees real data.
    if probe_config.agent.is_none() {
        probe_config.agent = Some(serrano_probe::AgentLink {
            url: eta_url,
            token: token.clone(),
        });
    }
    probe_config.exposed_url = probe_url;

    println!("SERRANO platform is up (data in {})", display(data_dir));
    for (name, listener, http) in [
        (serrano_ro_api::SERVICE, &ro, &ro_config.http),
        (serrano_hpc_gateway::SERVICE, &hpc, &hpc_config.http),
        (
            serrano_storage_gateway::SERVICE,
            &storage,
            &storage_config.http,
        ),
        (serrano_cth::SERVICE, &cth, &cth_config.http),
        (serrano_eta::SERVICE, &eta, &eta_config.http),
        (serrano_pmds::SERVICE, &pmds, &pmds_config.http),
        (serrano_probe::SERVICE, &probe, &probe_config.http),
        (
            serrano_kernel_runner::SERVICE,
            &kernels,
            &kernel_config.http,
        ),
    ] {
        let scheme = scheme_of(http)?;
        let address = listener.local_addr()?;
        println!("  {name:<15} {scheme}://{address}  (docs {scheme}://{address}/docs)");
    }
    println!("admin token: {}", display(&data_dir.join("admin.token")));
    if storage_config.access_keys.is_empty() {
        let credentials = storage_config.credentials_path();
        // Created now (not when the gateway task starts) so the hint below is true at once.
        serrano_storage_gateway::server::admin_credentials(&credentials)?;
        println!(
            "S3 credentials: {} (profile serrano)\n  try: AWS_SHARED_CREDENTIALS_FILE={} aws --profile serrano --endpoint-url {}://{} s3 ls",
            display(&credentials),
            display(&credentials),
            scheme_of(&storage_config.http)?,
            storage.local_addr()?
        );
    }
    println!(
        "telemetry: curl -H \"Authorization: Bearer $(cat {})\" http://{}/api/v1/telemetry/central/clusters",
        display(&data_dir.join("admin.token")),
        cth.local_addr()?
    );
    // The kernel runner reads and writes S3 objects on the embedded storage gateway (with the
    // admin key pair) and answers on the in-process broker, unless configured otherwise.
    if kernel_config.s3.is_none() {
        let admin = match storage_config.access_keys.first() {
            Some(key) => key.clone(),
            None => serrano_storage_gateway::server::admin_credentials(
                &storage_config.credentials_path(),
            )?,
        };
        kernel_config.s3 = Some(serrano_kernel_runner::s3::S3Config {
            endpoint: storage_url.clone(),
            region: "local".into(),
            access_key: Secret::new(admin.access_key.clone()),
            secret_key: admin.secret_key.clone(),
        });
    }
    if kernel_config.broker.is_none() {
        kernel_config.broker = Some(serrano_bus::config::AmqpConfig::Embedded {});
    }
    println!(
        "kernels: curl -H \"Authorization: Bearer $(cat {})\" http://{}/api/v1/kernels",
        display(&data_dir.join("admin.token")),
        kernels.local_addr()?
    );
    println!("stop with Ctrl-C");

    let with_admin = |http: &serrano_service::HttpConfig| -> anyhow::Result<Vec<Secret>> {
        let mut tokens = http.all_tokens()?;
        tokens.push(token.clone());
        Ok(tokens)
    };
    let mut tasks: Vec<(&'static str, tokio::task::JoinHandle<anyhow::Result<()>>)> = Vec::new();
    let ro_app = serrano_ro_api::router(
        kv.clone(),
        with_admin(&ro_config.http)?,
        ro_config.http.max_body_bytes,
    );
    let ro_tls = ro_config.http.tls_files()?;
    let ro_stop = signal();
    tasks.push((
        "ro-api",
        tokio::spawn(async move {
            serrano_service::serve(ro_app, ro, ro_tls, ro_stop)
                .await
                .map_err(anyhow::Error::from)
        }),
    ));
    tasks.push((
        "hpc-gateway",
        tokio::spawn(serrano_hpc_gateway::serve_with(
            hpc_config.clone(),
            kv.clone(),
            with_admin(&hpc_config.http)?,
            hpc,
            signal(),
        )),
    ));
    tasks.push((
        "storage-gateway",
        tokio::spawn(serrano_storage_gateway::serve_with(
            storage_config.clone(),
            kv,
            with_admin(&storage_config.http)?,
            storage,
            signal(),
        )),
    ));
    tasks.push((
        "cth",
        tokio::spawn(serrano_cth::serve_with(
            cth_config.clone(),
            telemetry.docs.clone(),
            telemetry.bus.clone(),
            with_admin(&cth_config.http)?,
            cth,
            Some(cth_grpc),
            signal(),
        )),
    ));
    tasks.push((
        "eta",
        tokio::spawn(serrano_eta::serve_with(
            eta_config.clone(),
            serrano_eta::Backends {
                docs: telemetry.docs.clone(),
                series: telemetry.series.clone(),
                bus: telemetry.bus.clone(),
            },
            with_admin(&eta_config.http)?,
            eta,
            eta_grpc,
            signal(),
        )),
    ));
    tasks.push((
        "pmds",
        tokio::spawn(serrano_pmds::serve_with(
            pmds_config.clone(),
            telemetry.series.clone(),
            with_admin(&pmds_config.http)?,
            pmds,
            signal(),
        )),
    ));
    tasks.push((
        "pmds gRPC",
        tokio::spawn(serrano_pmds::serve_grpc(
            telemetry.series.clone(),
            with_admin(&pmds_config.http)?,
            pmds_grpc,
            signal(),
        )),
    ));
    let probe_tokens = with_admin(&probe_config.http)?;
    tasks.push((
        "probe",
        tokio::spawn(serrano_probe::serve_with(
            probe_config,
            probe_tokens,
            probe,
            signal(),
        )),
    ));

    let kernel_tokens = with_admin(&kernel_config.http)?;
    tasks.push((
        "kernel-runner",
        tokio::spawn(serrano_kernel_runner::serve_with(
            kernel_config,
            kernel_tokens,
            kernels,
            signal(),
        )),
    ));

    // Until Ctrl-C, or until a service stops on its own: then the others stop too.
    let (names, handles): (Vec<_>, Vec<_>) = tasks.into_iter().unzip();
    let mut handles = handles;
    let ended_early = tokio::select! {
        _ = serrano_service::shutdown_signal() => None,
        (result, index, _) = futures::future::select_all(handles.iter_mut()) => Some((names[index], index, result)),
    };
    let _ = stop.send(true);
    if let Some((name, index, result)) = ended_early {
        for (i, handle) in handles.iter().enumerate() {
            if i != index {
                handle.abort();
            }
        }
        result??;
        anyhow::bail!("{name} stopped unexpectedly");
    }
    for (name, handle) in names.into_iter().zip(handles) {
        handle
            .await?
            .with_context(|| format!("{name} failed while stopping"))?;
    }
    telemetry
        .series
        .flush()
        .await
        .context("flushing the time-series store")?;
    println!("stopped");
    Ok(())
}

/// The embedded telemetry backends `up` shares between the CTH, the agent and PMDS.
struct Telemetry {
    docs: std::sync::Arc<dyn serrano_docstore::DocStore>,
    series: std::sync::Arc<dyn serrano_timeseries::TimeSeriesStore>,
    bus: std::sync::Arc<dyn serrano_bus::StreamHandler>,
}

impl Telemetry {
    async fn open(
        data_dir: &Path,
        kv: std::sync::Arc<dyn serrano_datastore::KvStore>,
    ) -> anyhow::Result<Telemetry> {
        let docs = std::sync::Arc::new(serrano_docstore::embedded::EmbeddedDocStore::new(
            kv,
            serrano_eta::DOCS_PREFIX,
        ));
        let series = serrano_timeseries::embedded::EmbeddedTsdb::open(
            serrano_timeseries::embedded::EmbeddedOptions {
                dir: Some(data_dir.join("timeseries")),
                ..serrano_timeseries::embedded::EmbeddedOptions::default()
            },
        )
        .context("opening the embedded time-series store")?;
        let bus = serrano_bus::embedded::EmbeddedStreamHandler::open(
            Some(data_dir.join("topics")),
            100_000,
        )
        .context("opening the embedded topic log")?;
        Ok(Telemetry {
            docs,
            series: std::sync::Arc::new(series),
            bus: std::sync::Arc::new(bus),
        })
    }
}

async fn bind_addr(
    name: &str,
    address: std::net::SocketAddr,
) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("binding {name} to {address}"))
}

async fn bind(
    name: &str,
    http: &serrano_service::HttpConfig,
) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(http.bind)
        .await
        .with_context(|| format!("binding {name} to {}", http.bind))
}

fn display(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| PathBuf::from(path))
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_token_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = admin_token(dir.path()).unwrap();
        assert_eq!(first.len(), 64);
        assert!(first.chars().all(|c| c.is_ascii_hexdigit()));
        let second = admin_token(dir.path()).unwrap();
        assert_eq!(first, second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("admin.token"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}

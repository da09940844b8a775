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
    println!("SERRANO platform is up (data in {})", display(data_dir));
    for (name, listener, http) in [
        (serrano_ro_api::SERVICE, &ro, &ro_config.http),
        (serrano_hpc_gateway::SERVICE, &hpc, &hpc_config.http),
        (
            serrano_storage_gateway::SERVICE,
            &storage,
            &storage_config.http,
        ),
    ] {
        let scheme = if http.tls_files()?.is_some() {
            "https"
        } else {
            "http"
        };
        let address = listener.local_addr()?;
        println!("  {name:<15} {scheme}://{address}  (docs {scheme}://{address}/docs)");
    }
    println!("admin token: {}", display(&data_dir.join("admin.token")));
    if storage_config.access_keys.is_empty() {
        let credentials = storage_config.credentials_path();
        // Created now (not when the gateway task starts) so the hint below is true at once.
        serrano_storage_gateway::server::admin_credentials(&credentials)?;
        let scheme = if storage_config.http.tls_files()?.is_some() {
            "https"
        } else {
            "http"
        };
        println!(
            "S3 credentials: {} (profile serrano)\n  try: AWS_SHARED_CREDENTIALS_FILE={} aws --profile serrano --endpoint-url {scheme}://{} s3 ls",
            display(&credentials),
            display(&credentials),
            storage.local_addr()?
        );
    }
    println!("stop with Ctrl-C");

    let mut ro_tokens = ro_config.http.all_tokens()?;
    ro_tokens.push(token.clone());
    let ro_app = serrano_ro_api::router(kv.clone(), ro_tokens, ro_config.http.max_body_bytes);
    let mut ro_task = tokio::spawn(serrano_service::serve(
        ro_app,
        ro,
        ro_config.http.tls_files()?,
        signal(),
    ));
    let mut hpc_tokens = hpc_config.http.all_tokens()?;
    hpc_tokens.push(token.clone());
    let mut hpc_task = tokio::spawn(serrano_hpc_gateway::serve_with(
        hpc_config,
        kv.clone(),
        hpc_tokens,
        hpc,
        signal(),
    ));
    let mut storage_tokens = storage_config.http.all_tokens()?;
    storage_tokens.push(token);
    let mut storage_task = tokio::spawn(serrano_storage_gateway::serve_with(
        storage_config,
        kv,
        storage_tokens,
        storage,
        signal(),
    ));

    // Until Ctrl-C, or until a service stops on its own: then the others stop too.
    let ended_early = tokio::select! {
        _ = serrano_service::shutdown_signal() => None,
        result = &mut ro_task => Some(("ro-api", result.map(|r| r.map_err(anyhow::Error::from)))),
        result = &mut hpc_task => Some(("hpc-gateway", result)),
        result = &mut storage_task => Some(("storage-gateway", result)),
    };
    let _ = stop.send(true);
    if let Some((name, result)) = ended_early {
        ro_task.abort();
        hpc_task.abort();
        storage_task.abort();
        result??;
        anyhow::bail!("{name} stopped unexpectedly");
    }
    ro_task.await??;
    hpc_task.await??;
    storage_task.await??;
    println!("stopped");
    Ok(())
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

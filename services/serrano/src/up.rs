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
    let token = admin_token(data_dir)?;

    // Each service still reads its own SERRANO_<SERVICE>_* settings (port, TLS, extra tokens);
    // `up` pins the backends to the embedded ones under the data directory.
    let mut ro_config: serrano_ro_api::Config =
        serrano_service::load_config(serrano_ro_api::SERVICE)?;
    serrano_service::init_tracing(ro_config.http.log_format, &ro_config.http.log_level);
    ro_config.datastore = DatastoreConfig {
        backend: Backend::Embedded,
        path: data_dir.join("datastore"),
        ..DatastoreConfig::default()
    };
    let kv = open_store(&ro_config.datastore)
        .await
        .context("opening the embedded datastore")?;

    let mut tokens = ro_config.http.all_tokens()?;
    tokens.push(Secret::new(token));
    let app = serrano_ro_api::router(kv, tokens, ro_config.http.max_body_bytes);
    let listener = tokio::net::TcpListener::bind(ro_config.http.bind)
        .await
        .with_context(|| format!("binding ro-api to {}", ro_config.http.bind))?;
    let tls = ro_config.http.tls_files()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let address = listener.local_addr()?;

    println!("SERRANO platform is up (data in {})", display(data_dir));
    println!(
        "  {:<10} {scheme}://{address}  (docs {scheme}://{address}/docs)",
        serrano_ro_api::SERVICE
    );
    println!("admin token: {}", display(&data_dir.join("admin.token")));
    println!("stop with Ctrl-C");

    let shutdown = serrano_service::shutdown_signal();
    serrano_service::serve(app, listener, tls, shutdown).await?;
    println!("stopped");
    Ok(())
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

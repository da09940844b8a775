//! Serving a router over plain HTTP or rustls TLS, with graceful shutdown.

use std::future::{Future, IntoFuture};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use futures::FutureExt;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// How long in-flight requests may take to finish once shutdown starts.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// PEM certificate chain and private key of a TLS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains in-flight requests for at
/// most [`DRAIN_TIMEOUT`]. TLS (rustls, HTTP/1.1 and HTTP/2) when `tls` is given.
pub async fn serve(
    app: Router,
    listener: tokio::net::TcpListener,
    tls: Option<TlsFiles>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with_drain(app, listener, tls, shutdown, DRAIN_TIMEOUT).await
}

/// [`serve`] with another drain deadline than [`DRAIN_TIMEOUT`].
pub async fn serve_with_drain(
    app: Router,
    listener: tokio::net::TcpListener,
    tls: Option<TlsFiles>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> io::Result<()> {
    match tls {
        None => serve_plain(app, listener, shutdown, drain).await,
        Some(files) => serve_tls(app, listener, &files, shutdown, drain).await,
    }
}

async fn serve_plain(
    app: Router,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> io::Result<()> {
    // The signal is shared: one copy starts axum's graceful shutdown, the other starts the
    // drain deadline, because axum alone would wait for slow connections forever.
    let shutdown = shutdown.boxed().shared();
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.clone())
        .into_future();
    let deadline = async move {
        shutdown.await;
        tokio::time::sleep(drain).await;
    };
    tokio::select! {
        result = server => result,
        () = deadline => {
            tracing::warn!(
                drain_ms = u64::try_from(drain.as_millis()).unwrap_or(u64::MAX),
                "drain deadline passed, closing remaining connections"
            );
            Ok(())
        }
    }
}

async fn serve_tls(
    app: Router,
    listener: tokio::net::TcpListener,
    files: &TlsFiles,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> io::Result<()> {
    let config = load_tls_config(files).await?;
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(
        listener.into_std()?,
        axum_server::tls_rustls::RustlsConfig::from_config(config),
    )?
    .handle(handle.clone());
    let signal = tokio::spawn(async move {
        shutdown.await;
        handle.graceful_shutdown(Some(drain));
    });
    let result = server.serve(app.into_make_service()).await;
    signal.abort();
    result
}

/// Installs aws-lc-rs as the process-wide rustls provider, for code that builds rustls configs
/// without naming one; a provider installed earlier is kept.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Loads a rustls server config from PEM files, with errors that name the file and the problem.
pub async fn load_tls_config(files: &TlsFiles) -> io::Result<Arc<ServerConfig>> {
    install_crypto_provider();
    let cert_pem = read_pem(&files.cert, "certificate").await?;
    let key_pem = read_pem(&files.key, "private key").await?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| invalid(&files.cert, &format!("bad certificate PEM: {error}")))?;
    if certs.is_empty() {
        return Err(invalid(&files.cert, "no certificate found"));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|error| invalid(&files.key, &format!("no usable private key: {error}")))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| io::Error::other(format!("TLS setup: {error}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|error| {
            invalid(
                &files.cert,
                &format!(
                    "certificate and key {} do not fit: {error}",
                    files.key.display()
                ),
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

async fn read_pem(path: &Path, what: &str) -> io::Result<Vec<u8>> {
    tokio::fs::read(path).await.map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("cannot read TLS {what} {}: {error}", path.display()),
        )
    })
}

fn invalid(path: &Path, message: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("TLS file {}: {message}", path.display()),
    )
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (Kubernetes, docker stop).
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

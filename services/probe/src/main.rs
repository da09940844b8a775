//! Starts a monitoring probe alone; see the library for everything else.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: serrano_probe::Config = serrano_service::load_config(serrano_probe::SERVICE)?;
    serrano_service::init_tracing(config.http.log_format, &config.http.log_level);
    let listener = tokio::net::TcpListener::bind(config.http.bind).await?;
    serrano_probe::run(config, listener, serrano_service::shutdown_signal()).await
}

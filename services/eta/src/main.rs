//! Starts an Enhanced Telemetry Agent alone; see the library for everything else.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: serrano_eta::Config = serrano_service::load_config(serrano_eta::SERVICE)?;
    serrano_service::init_tracing(config.http.log_format, &config.http.log_level);
    let listener = tokio::net::TcpListener::bind(config.http.bind).await?;
    let grpc_listener = tokio::net::TcpListener::bind(config.grpc_bind).await?;
    serrano_eta::run(
        config,
        listener,
        grpc_listener,
        serrano_service::shutdown_signal(),
    )
    .await
}

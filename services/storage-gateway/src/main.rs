//! Starts the storage gateway alone; see the library for everything else.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: serrano_storage_gateway::Config =
        serrano_service::load_config(serrano_storage_gateway::SERVICE)?;
    serrano_service::init_tracing(config.http.log_format, &config.http.log_level);
    let listener = tokio::net::TcpListener::bind(config.http.bind).await?;
    serrano_storage_gateway::run(config, listener, serrano_service::shutdown_signal()).await
}

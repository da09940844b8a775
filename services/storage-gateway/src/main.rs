//! Starts the storage gateway alone; see the library for everything else.

fn main() -> anyhow::Result<()> {
    // Stripe coding and local-directory I/O run on the blocking pool: a bounded pool keeps a
    // burst of concurrent uploads from growing hundreds of threads (and their allocator
    // arenas holding freed stripe buffers).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(32)
        .build()?;
    runtime.block_on(async {
        let config: serrano_storage_gateway::Config =
            serrano_service::load_config(serrano_storage_gateway::SERVICE)?;
        serrano_service::init_tracing(config.http.log_format, &config.http.log_level);
        let listener = tokio::net::TcpListener::bind(config.http.bind).await?;
        serrano_storage_gateway::run(config, listener, serrano_service::shutdown_signal()).await
    })
}

//! Process-wide `tracing` setup.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global `tracing` subscriber: text or JSON lines on stdout, filtered by `level`
/// (an `EnvFilter` directive such as `info,serrano_ro_api=debug`) unless `RUST_LOG` is set.
///
/// Idempotent: when a subscriber is already installed (a second service in the same process,
/// or a test), this does nothing.
pub fn init_tracing(format: LogFormat, level: &str) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directive| EnvFilter::try_new(directive).ok())
        .or_else(|| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // `try_init` fails only when a subscriber is already set, which is fine by design.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
}

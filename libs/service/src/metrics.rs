//! Per-service HTTP metrics in Prometheus text format.
//!
//! Each [`HttpMetrics`] owns its own `Registry`, so several services can run in one process
//! (`serrano up`, integration tests) without their metrics colliding.

use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// Request counter and latency histogram of one service.
#[derive(Clone)]
pub struct HttpMetrics {
    service: &'static str,
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    /// Creates the metrics of `service` in a fresh registry.
    pub fn new(service: &'static str) -> Self {
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            &["service", "method", "route", "status"],
        )
        .expect("static metric definition is valid");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from receiving a request to producing its response head",
            ),
            &["service", "method", "route"],
        )
        .expect("static metric definition is valid");
        let registry = Registry::new();
        registry
            .register(Box::new(requests.clone()))
            .expect("fresh registry has no clashing metric");
        registry
            .register(Box::new(duration.clone()))
            .expect("fresh registry has no clashing metric");
        Self {
            service,
            registry,
            requests,
            duration,
        }
    }

    /// The registry, for services that add metrics of their own.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Records one answered request. `route` must be a route template, never a raw path.
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .with_label_values(&[self.service, method, route, &status.to_string()])
            .inc();
        self.duration
            .with_label_values(&[self.service, method, route])
            .observe(elapsed.as_secs_f64());
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> Result<String, String> {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .map_err(|error| error.to_string())?;
        String::from_utf8(buffer).map_err(|error| error.to_string())
    }
}

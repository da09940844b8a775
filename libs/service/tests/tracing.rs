//! Every log line written while handling a request carries that request's id.

// Test code: a failed unwrap is a failed test (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode, header};
use serrano_service::{Secret, ServiceShell};
use tower::ServiceExt;
use tracing_subscriber::fmt::MakeWriter;

/// Collects log output in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn log_lines_carry_the_request_id() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(captured.clone())
        .finish();
    // Thread-local default: the current-thread test runtime runs everything on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut shell = ServiceShell::new("trace-test", utoipa::openapi::OpenApi::default());
    shell.tokens = vec![Secret::new("t")];
    let app = shell.into_router(Router::new().route(
        "/work/{id}",
        get(|| async {
            tracing::info!("inside the handler");
            "ok"
        }),
    ));
    let request = Request::get("/work/42")
        .header(header::AUTHORIZATION, "Bearer t")
        .header("x-request-id", "trace-me-1")
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = output
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let handler_line = lines
        .iter()
        .find(|line| line["fields"]["message"] == "inside the handler")
        .unwrap_or_else(|| panic!("no handler line in {output}"));
    assert_eq!(handler_line["span"]["request_id"], "trace-me-1", "{output}");
    assert_eq!(handler_line["span"]["route"], "/work/{id}", "{output}");

    let answered = lines
        .iter()
        .find(|line| line["fields"]["message"] == "request answered")
        .unwrap_or_else(|| panic!("no summary line in {output}"));
    assert_eq!(answered["span"]["request_id"], "trace-me-1", "{output}");
    assert_eq!(answered["span"]["status"], 200, "{output}");
    assert!(answered["span"]["latency_ms"].is_u64(), "{output}");
    assert!(!output.contains("Bearer t\\\""), "token logged: {output}");
}

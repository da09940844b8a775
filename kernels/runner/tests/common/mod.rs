#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use serrano_kernel_runner::invoke::{ObjectStore, ResultBroker, Runner};
use serrano_kernels::{Mode, Registry};

pub const TOKEN: &str = "runner-test-token";

/// A client that sends the bearer token.
pub fn client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

pub fn runner(s3: Option<Arc<dyn ObjectStore>>, broker: Option<Arc<dyn ResultBroker>>) -> Runner {
    Runner {
        registry: Arc::new(Registry::cpu_only()),
        s3,
        broker,
        allow_local_files: false,
        default_mode: Mode::Auto,
        input_wait: Duration::from_secs(2),
    }
}

/// Serves `runner` on a free local port; returns its base URL.
pub async fn serve(runner: Runner) -> String {
    let app = serrano_kernel_runner::router(
        Arc::new(runner),
        vec![serrano_service::Secret::new(TOKEN)],
        64 << 20,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = serrano_service::serve(app, listener, None, std::future::pending()).await;
    });
    format!("http://{addr}")
}

/// DTW of two short series by the textbook recurrence (squared cost, sqrt at the end).
pub fn dtw(x: &[f64], y: &[f64]) -> f64 {
    let (n, m) = (x.len(), y.len());
    let mut d = vec![vec![f64::INFINITY; m + 1]; n + 1];
    d[0][0] = 0.0;
    for i in 1..=n {
        for j in 1..=m {
            let c = (x[i - 1] - y[j - 1]).powi(2);
            d[i][j] = c + d[i - 1][j].min(d[i][j - 1]).min(d[i - 1][j - 1]);
        }
    }
    d[n][m].sqrt()
}

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

/// POSTs `desc` to the runner's function `kernel`; the status and the JSON answer.
pub async fn invoke(
    base: &str,
    kernel: &str,
    desc: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let r = client()
        .post(format!("{base}/function/{kernel}"))
        .json(desc)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// Publishes one input message for `argument` to the durable queue `queue`, as the SDK does.
pub async fn push_argument(
    broker: &Arc<dyn serrano_bus::MessageBroker>,
    queue: &str,
    argument: &str,
    body: &[u8],
) {
    broker
        .declare_queue(queue, serrano_bus::QueueOptions::durable())
        .await
        .unwrap();
    let mut props = serrano_bus::MessageProperties::json();
    props.headers.insert("argument".into(), argument.into());
    broker.publish("", queue, body, &props).await.unwrap();
}

/// The next message of `queue` (waiting up to 10 s) as JSON, acknowledged.
pub async fn take_json(
    broker: &Arc<dyn serrano_bus::MessageBroker>,
    queue: &str,
) -> serde_json::Value {
    let d = broker
        .get_timeout(queue, Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no message on {queue}"));
    let msg = serde_json::from_slice(&d.payload).unwrap();
    d.ack().await.unwrap();
    msg
}

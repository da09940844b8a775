//! A PMDS served in-process on an ephemeral port, driven over real HTTP.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::Value;
use serrano_pmds::Config;
use serrano_service::Secret;
use serrano_timeseries::{EmbeddedOptions, EmbeddedTsdb, TimeSeriesStore};

pub const TOKEN: &str = "pmds-test-token";

pub struct Server {
    pub url: String,
    pub http: reqwest::Client,
    pub store: Arc<dyn TimeSeriesStore>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub fn memory_store() -> Arc<dyn TimeSeriesStore> {
    Arc::new(EmbeddedTsdb::open(EmbeddedOptions::default()).unwrap())
}

pub async fn start(store: Arc<dyn TimeSeriesStore>, config: Config) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = store.clone();
    tokio::spawn(async move {
        serrano_pmds::serve_with(
            config,
            served,
            vec![Secret::new(TOKEN)],
            listener,
            async move {
                let _ = stopped.await;
            },
        )
        .await
        .unwrap();
    });
    Server {
        url,
        http: reqwest::Client::new(),
        store,
        _stop: stop,
    }
}

pub async fn start_default() -> Server {
    start(memory_store(), Config::default()).await
}

impl Server {
    /// `POST /api/v2/write?bucket=...&precision=s` with `Authorization: Token`.
    pub async fn write(&self, bucket: &str, body: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/api/v2/write", self.url))
            .query(&[("bucket", bucket), ("org", "serrano"), ("precision", "s")])
            .header("Authorization", format!("Token {TOKEN}"))
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    /// Writes and checks the 204.
    pub async fn write_ok(&self, bucket: &str, body: &str) {
        let response = self.write(bucket, body).await;
        let status = response.status();
        assert_eq!(status, 204, "{}", response.text().await.unwrap());
    }

    /// `GET` with the bearer token: status and JSON body.
    pub async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path_and_query}", self.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }
}

/// Now in whole seconds, minus `back` seconds.
pub fn seconds_ago(back: i64) -> i64 {
    serrano_timeseries::now_ns() / 1_000_000_000 - back
}

/// RFC 3339 as PMDS writes it for a whole second.
pub fn rfc3339(seconds: i64) -> String {
    serrano_pmds::window::format_time(seconds * 1_000_000_000)
}

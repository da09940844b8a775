//! A gateway on an ephemeral port over a temporary directory (embedded datastore, four local
//! edge locations), and S3 clients for it.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use serrano_datastore::{EmbeddedStore, KvStore};
use serrano_service::Secret;
use serrano_storage_gateway::s3_http::AccessKeyConfig;
use serrano_storage_gateway::{Config, Gateway};

pub const ADMIN: (&str, &str) = ("admin", "admin-secret-key");
pub const SCOPED: (&str, &str) = ("scoped", "scoped-secret-key");
pub const TOKEN: &str = "test-token";

pub struct TestGateway {
    pub url: String,
    pub gateway: Arc<Gateway>,
    pub dir: tempfile::TempDir,
    pub config: Config,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub fn test_config(data_dir: PathBuf) -> Config {
    Config {
        data_dir,
        access_keys: vec![
            AccessKeyConfig {
                access_key: ADMIN.0.into(),
                secret_key: Secret::new(ADMIN.1),
                buckets: vec!["*".into()],
            },
            AccessKeyConfig {
                access_key: SCOPED.0.into(),
                secret_key: Secret::new(SCOPED.1),
                buckets: vec!["team-*".into()],
            },
        ],
        // Small stripes: multi-stripe objects stay cheap in debug builds.
        stripe_bytes: 64 * 1024,
        reclaim_grace_ms: 0,
        // Off, so that reads really go to the locations (the cache has its own test).
        cache_bytes: 0,
        measure_interval_secs: 3600,
        maintenance_interval_secs: 3600,
        ..Config::default()
    }
}

impl TestGateway {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = test_config(dir.path().join("data"));
        Self::start_with(dir, config).await
    }

    pub async fn start_with(dir: tempfile::TempDir, config: Config) -> Self {
        let kv: Arc<dyn KvStore> =
            Arc::new(EmbeddedStore::open(dir.path().join("datastore")).unwrap());
        let gateway = Arc::new(Gateway::open(&config, kv.clone()).await.unwrap());
        let app = gateway.router(kv, vec![Secret::new(TOKEN)], 1 << 20);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            gateway,
            dir,
            config,
            server,
        }
    }

    pub fn client_with(&self, key: (&str, &str), endpoint: &str) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(key.0, key.1, None, None, "test"))
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// The admin's client on the root path-style endpoint.
    pub fn client(&self) -> aws_sdk_s3::Client {
        self.client_with(ADMIN, &self.url)
    }

    /// The admin's client on the `/s3` endpoint of the spec.
    pub fn client_s3_prefix(&self) -> aws_sdk_s3::Client {
        self.client_with(ADMIN, &format!("{}/s3", self.url))
    }

    pub fn edge_dir(&self, id: u32) -> PathBuf {
        self.config.data_dir.join(format!("edge-{id}"))
    }
}

/// Every file under a directory (fragments), recursively.
pub fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Deterministic test data.
pub fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u64)
                .wrapping_mul(2654435761)
                .wrapping_add(u64::from(seed)) as u8
        })
        .collect()
}

/// The AWS error code of an SDK error.
pub fn code<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .unwrap_or("no service error")
        .to_owned()
}

/// The whole body of an object.
pub async fn get_bytes(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes()
        .to_vec()
}

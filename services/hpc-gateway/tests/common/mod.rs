//! Harness shared by the real-server tests: the gateway binary, its REST calls, the
//! environment `scripts/infra env` exports.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const TOKEN: &str = "hpc-test-token";

pub struct Gateway {
    child: Child,
    pub url: String,
    http: reqwest::Client,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Gateway {
    pub async fn start(store: &std::path::Path, control: &std::path::Path) -> Gateway {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_hpc-gateway"))
            .env("SERRANO_HPC_GATEWAY_HTTP_BIND", format!("127.0.0.1:{port}"))
            .env("SERRANO_HPC_GATEWAY_HTTP_TOKENS", TOKEN)
            .env("SERRANO_HPC_GATEWAY_HTTP_LOG_LEVEL", "warn")
            .env("SERRANO_HPC_GATEWAY_DATASTORE_PATH", store)
            .env("SERRANO_HPC_GATEWAY_SSH_CONTROL_DIR", control)
            .env("SERRANO_HPC_GATEWAY_WATCH_INTERVAL_MS", "500")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let gateway = Gateway {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while gateway
            .http
            .get(format!("{}/health", gateway.url))
            .send()
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "gateway did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        gateway
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn submit(&self, infrastructure: &str, script: &str, resources: Value) -> String {
        let (status, job) = self
            .call(reqwest::Method::POST, "/job", Some(json!({"infrastructure": infrastructure, "script": script, "resources": resources})))
            .await;
        assert_eq!(status, 201, "{job}");
        assert!(!job["scheduler_id"].as_str().unwrap().is_empty());
        job["id"].as_str().unwrap().to_owned()
    }

    /// Polls until the job ends; returns its last record.
    pub async fn wait_end(&self, id: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let (_, job) = self
                .call(reqwest::Method::GET, &format!("/job/{id}"), None)
                .await;
            let status = job["status"].as_str().unwrap_or_default().to_owned();
            if !matches!(status.as_str(), "queued" | "running") {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} still {status} after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

pub struct Ssh {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub key: String,
    pub known_hosts: String,
    pub wrong_known_hosts: String,
}

pub fn ssh_env() -> Option<Ssh> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (get("SERRANO_TEST_SLURM"), get("SERRANO_TEST_SSH_KEY")) {
        (Some(_), Some(key)) => Some(Ssh {
            host: get("SERRANO_TEST_SSH_HOST").unwrap_or_else(|| "127.0.0.1".into()),
            port: get("SERRANO_TEST_SSH_PORT")
                .and_then(|p| p.parse().ok())
                .unwrap_or(2222),
            user: get("SERRANO_TEST_SSH_USER").unwrap_or_else(|| "hpc".into()),
            key,
            known_hosts: get("SERRANO_TEST_SSH_KNOWN_HOSTS").expect("SERRANO_TEST_SSH_KNOWN_HOSTS"),
            wrong_known_hosts: get("SERRANO_TEST_SSH_WRONG_KNOWN_HOSTS")
                .expect("SERRANO_TEST_SSH_WRONG_KNOWN_HOSTS"),
        }),
        _ => {
            assert!(
                std::env::var("SERRANO_REQUIRE_REAL_SERVERS").as_deref() != Ok("1"),
                "Slurm and sshd are required (SERRANO_REQUIRE_REAL_SERVERS=1) but SERRANO_TEST_SLURM / SERRANO_TEST_SSH_KEY are not set"
            );
            eprintln!("skipped: run through scripts/test (needs scripts/infra start slurm sshd)");
            None
        }
    }
}

pub fn infrastructure(ssh: &Ssh, name: &str, scheduler: &str, known_hosts: &str) -> Value {
    json!({"name": name, "host": ssh.host, "port": ssh.port, "username": ssh.user, "hostname": "vm",
        "scheduler": scheduler, "ssh_key": {"type": "ssh-ed25519", "path": ssh.key}, "known_hosts": known_hosts})
}

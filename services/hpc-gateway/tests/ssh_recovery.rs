//! sshd goes away under a watching gateway and comes back: the gateway replaces its broken
//! connection and carries on (its own test binary, because it restarts the shared sshd).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Gateway, infrastructure, ssh_env};
use serde_json::json;

fn infra(args: &[&str]) {
    let script = std::env::var("SERRANO_INFRA").expect("SERRANO_INFRA names scripts/infra");
    let status = Command::new(script)
        .args(args)
        .status()
        .expect("scripts/infra runs");
    assert!(status.success(), "scripts/infra {args:?} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_reconnects_after_sshd_restarts() {
    let Some(ssh) = ssh_env() else { return };
    if std::env::var("SERRANO_INFRA").is_err() {
        eprintln!("skipped: SERRANO_INFRA not set (run through scripts/test)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let control = tempfile::Builder::new()
        .prefix("hpc")
        .tempdir_in("/tmp")
        .unwrap();
    let gateway = Gateway::start(&dir.path().join("store"), control.path()).await;
    let (status, body) = gateway
        .call(
            reqwest::Method::POST,
            "/infrastructure",
            Some(infrastructure(&ssh, "flaky", "slurm", &ssh.known_hosts)),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // A job being watched while sshd (and with it the gateway's connection) goes away.
    let watched = gateway
        .submit("flaky", "sleep 6\necho still-here\n", json!({}))
        .await;
    infra(&["stop", "sshd"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    infra(&["start", "--keep-data", "sshd"]);
    let done = gateway.wait_end(&watched, Duration::from_secs(90)).await;
    assert_eq!(done["status"], "completed", "{done}");
    // New work goes through the replaced connection.
    let after = gateway
        .submit("flaky", "echo after-restart\n", json!({}))
        .await;
    let done = gateway.wait_end(&after, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "completed", "{done}");
    let (_, metrics) = gateway.call(reqwest::Method::GET, "/metrics", None).await;
    let reconnects: u64 = metrics
        .as_str()
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("hpc_gateway_ssh_reconnects_total "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        reconnects >= 1,
        "the broken connection was replaced: {reconnects}"
    );
}

//! `serrano up` as a user runs it, then the client subcommands against it.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const SERRANO: &str = env!("CARGO_BIN_EXE_serrano");

struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn up(dir: &Path, port: u16) -> Up {
    let child = Command::new(SERRANO)
        .args(["up", "--data-dir"])
        .arg(dir)
        .env("SERRANO_RO_API_HTTP_BIND", format!("127.0.0.1:{port}"))
        .env("SERRANO_HPC_GATEWAY_HTTP_BIND", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "serrano up did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Up(child)
}

fn cli(dir: &Path, port: u16, args: &[&str]) -> Output {
    Command::new(SERRANO)
        .args(["--url", &format!("http://127.0.0.1:{port}"), "--token-file"])
        .arg(dir.join("admin.token"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn up_then_create_list_get_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The checkout at run time: a binary reused from a shared target dir was built elsewhere.
    let examples = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
        .join("../../examples");
    let server = up(&data, port);
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap();

    let created = stdout(&cli(
        &data,
        port,
        &[
            "deployments",
            "create",
            "-f",
            examples.join("app.json").to_str().unwrap(),
        ],
    ));
    assert!(created.starts_with("deployment "), "{created}");
    let from_yaml = cli(
        &data,
        port,
        &[
            "-o",
            "json",
            "deployments",
            "create",
            "-f",
            examples.join("app.yaml").to_str().unwrap(),
            "--name",
            "yaml-app",
        ],
    );
    let written: serde_json::Value = serde_json::from_str(&stdout(&from_yaml)).unwrap();
    let uuid = written["deployment_uuid"].as_str().unwrap().to_owned();

    let table = stdout(&cli(&data, port, &["deployments", "list"]));
    assert!(table.lines().next().unwrap().starts_with("UUID"), "{table}");
    assert!(
        table.contains("UC3-Acceleration-Service") && table.contains("yaml-app"),
        "{table}"
    );
    assert!(table.contains("SUBMITTED"), "{table}");
    let listed: serde_json::Value = serde_json::from_str(&stdout(&cli(
        &data,
        port,
        &["-o", "json", "deployments", "list"],
    )))
    .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);

    let got: serde_json::Value = serde_json::from_str(&stdout(&cli(
        &data,
        port,
        &["-o", "json", "deployments", "get", &uuid],
    )))
    .unwrap();
    assert_eq!(got["name"], "yaml-app");
    assert_eq!(got["status"], 1);

    // Errors come back as a message and a non-zero exit, not a panic.
    let missing = cli(
        &data,
        port,
        &["deployments", "get", "0b3a1c4e-1111-4222-8333-444455556666"],
    );
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("404"),
        "{missing:?}"
    );
    let bad_token = Command::new(SERRANO)
        .args([
            "--url",
            &format!("http://127.0.0.1:{port}"),
            "--token",
            "wrong",
            "deployments",
            "list",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad_token.stderr).contains("401"));

    // Restart: same token, same data.
    drop(server);
    let _server = up(&data, port);
    assert_eq!(
        std::fs::read_to_string(data.join("admin.token")).unwrap(),
        token
    );
    let listed: serde_json::Value = serde_json::from_str(&stdout(&cli(
        &data,
        port,
        &["-o", "json", "deployments", "list"],
    )))
    .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
}

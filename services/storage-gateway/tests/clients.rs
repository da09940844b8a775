//! Real S3 clients against the gateway: boto3 (the Python suite in `tests/clients/`) and
//! aws-cli v1 (`aws s3 ...` and `aws s3api ...`), each as a child process.
//!
//! The tools are looked up in this order: `SERRANO_TEST_PYTHON` (a python with boto3) and
//! `SERRANO_TEST_AWS_CLI` (the `aws` executable) when set; else the S3 venv that
//! `scripts/install-deps s3` fills (`$SERRANO_INFRA_VENVS/s3/bin/`, default
//! `~/.cache/serrano-infra/venvs`); else `python3` and `aws` on `PATH`. When a tool is missing
//! its test prints a skip message and passes, unless `SERRANO_REQUIRE_REAL_SERVERS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{ADMIN, TestGateway, data};

const MIB: usize = 1 << 20;

/// The venv `scripts/install-deps s3` installs the S3 client tools into.
fn venv_bin(name: &str) -> Option<PathBuf> {
    let venvs = match std::env::var_os("SERRANO_INFRA_VENVS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/serrano-infra/venvs"),
    };
    let path = venvs.join("s3/bin").join(name);
    path.exists().then_some(path)
}

/// The first candidate for which `probe` runs successfully.
fn find_tool(env_var: &str, venv_name: &str, path_name: &str, probe: &[&str]) -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = match std::env::var_os(env_var) {
        Some(explicit) => vec![PathBuf::from(explicit)],
        None => venv_bin(venv_name)
            .into_iter()
            .chain([PathBuf::from(path_name)])
            .collect(),
    };
    candidates.into_iter().find(|tool| {
        Command::new(tool)
            .args(probe)
            .env_clear_aws()
            .output()
            .is_ok_and(|out| out.status.success())
    })
}

/// Passes (after saying so) when a tool is missing, unless real servers are required.
fn skip(what: &str) {
    assert!(
        std::env::var("SERRANO_REQUIRE_REAL_SERVERS").as_deref() != Ok("1"),
        "SERRANO_REQUIRE_REAL_SERVERS=1 but {what} (scripts/install-deps s3)"
    );
    println!("skipped: {what} (scripts/install-deps s3 installs it)");
}

trait AwsEnv {
    /// Without the caller's AWS settings: only what a test sets reaches the child.
    fn env_clear_aws(&mut self) -> &mut Self;
}

impl AwsEnv for Command {
    fn env_clear_aws(&mut self) -> &mut Self {
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AWS_") {
                self.env_remove(name);
            }
        }
        self.env("AWS_EC2_METADATA_DISABLED", "true")
    }
}

/// Runs a child process off the runtime's threads (the gateway serves on them meanwhile).
async fn output(mut command: Command) -> Output {
    let shown = format!("{command:?}");
    tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap_or_else(|err| panic!("cannot run {shown}: {err}"))
}

fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn boto3_suite() {
    let Some(python) = find_tool(
        "SERRANO_TEST_PYTHON",
        "python",
        "python3",
        &["-c", "import boto3"],
    ) else {
        skip("no python with boto3 (SERRANO_TEST_PYTHON)");
        return;
    };
    println!("boto3 through {}", python.display());
    let gw = TestGateway::start().await;
    let home = tempfile::tempdir().unwrap();
    // The checkout at run time: a binary reused from a shared target dir was built elsewhere.
    let script = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
        .join("tests/clients/boto3_suite.py");
    // Once at the root and once under /s3, with other bucket names.
    for (endpoint, prefix) in [
        (gw.url.clone(), "boto3"),
        (format!("{}/s3", gw.url), "boto3-prefixed"),
    ] {
        let mut command = Command::new(&python);
        command
            .arg(&script)
            .args([endpoint.as_str(), ADMIN.0, ADMIN.1, prefix])
            .env_clear_aws()
            // No user configuration (~/.aws) changes what boto3 does.
            .env("AWS_CONFIG_FILE", home.path().join("config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                home.path().join("credentials"),
            )
            .env("PYTHONUNBUFFERED", "1");
        let out = output(command).await;
        assert!(
            out.status.success(),
            "boto3 suite on {endpoint}: {}",
            describe(&out)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        print!("{stdout}");
        assert!(stdout.contains("boto3 suite passed"), "{}", describe(&out));
    }
    // The suite cleans up after itself.
    let buckets = gw.client().list_buckets().send().await.unwrap();
    assert!(buckets.buckets().is_empty(), "{:?}", buckets.buckets());
}

/// aws-cli v1 with its own configuration files: profile `serrano`, SigV4 for S3 (v1 presigns
/// with SigV2 otherwise), region us-east-1.
struct AwsCli {
    aws: PathBuf,
    endpoint: String,
    home: tempfile::TempDir,
}

impl AwsCli {
    fn new(aws: PathBuf, endpoint: String) -> Self {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(
            home.path().join("config"),
            "[profile serrano]\nregion = us-east-1\noutput = json\n\
             s3 =\n    signature_version = s3v4\n    addressing_style = path\n",
        )
        .unwrap();
        std::fs::write(
            home.path().join("credentials"),
            format!(
                "[serrano]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                ADMIN.0, ADMIN.1
            ),
        )
        .unwrap();
        Self {
            aws,
            endpoint,
            home,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.aws);
        command
            .arg("--endpoint-url")
            .arg(&self.endpoint)
            .args(args)
            .env_clear_aws()
            .env("AWS_CONFIG_FILE", self.home.path().join("config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.home.path().join("credentials"),
            )
            .env("AWS_PROFILE", "serrano")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .current_dir(self.home.path());
        command
    }

    /// Runs `aws ARGS...`, which must succeed; its stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let out = output(self.command(args)).await;
        assert!(out.status.success(), "aws {args:?}: {}", describe(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs `aws ARGS...`, which must fail; its stderr.
    async fn fails(&self, args: &[&str]) -> String {
        let out = output(self.command(args)).await;
        assert!(
            !out.status.success(),
            "aws {args:?} succeeded: {}",
            describe(&out)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// Every file under `root`, as (relative path, contents), sorted.
fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = common::files_under(root)
        .into_iter()
        .map(|path| {
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (relative, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn aws_cli() {
    let Some(aws) = find_tool("SERRANO_TEST_AWS_CLI", "aws", "aws", &["--version"]) else {
        skip("no aws-cli (SERRANO_TEST_AWS_CLI)");
        return;
    };
    println!("aws-cli: {}", aws.display());
    let gw = TestGateway::start().await;
    let cli = AwsCli::new(aws, gw.url.clone());
    let work = tempfile::tempdir().unwrap();
    let file = |name: &str| work.path().join(name).to_string_lossy().into_owned();

    cli.ok(&["s3", "mb", "s3://cli-bucket"]).await;
    let listing = cli.ok(&["s3", "ls"]).await;
    assert!(listing.contains("cli-bucket"), "{listing}");

    // A small file, with a content type and metadata.
    let small = b"hello from aws-cli\n".repeat(50);
    std::fs::write(file("small.txt"), &small).unwrap();
    cli.ok(&[
        "s3",
        "cp",
        &file("small.txt"),
        "s3://cli-bucket/docs/small.txt",
        "--content-type",
        "text/plain",
        "--metadata",
        "owner=uvt",
    ])
    .await;
    let head: serde_json::Value = serde_json::from_str(
        &cli.ok(&[
            "s3api",
            "head-object",
            "--bucket",
            "cli-bucket",
            "--key",
            "docs/small.txt",
        ])
        .await,
    )
    .unwrap();
    assert_eq!(head["ContentLength"], small.len(), "{head}");
    assert_eq!(head["ContentType"], "text/plain", "{head}");
    assert_eq!(head["Metadata"]["owner"], "uvt", "{head}");
    assert_eq!(
        head["ETag"],
        format!("\"{}\"", md5_hex(&small)),
        "a single PUT's ETag is its MD5: {head}"
    );
    assert!(head["LastModified"].is_string(), "{head}");
    cli.ok(&[
        "s3",
        "cp",
        "s3://cli-bucket/docs/small.txt",
        &file("small.back"),
    ])
    .await;
    assert_eq!(std::fs::read(file("small.back")).unwrap(), small);

    // 20 MiB: a multipart upload (8 MiB parts by default) and a ranged download.
    let big = data(20 * MIB, 9);
    std::fs::write(file("big.bin"), &big).unwrap();
    cli.ok(&["s3", "cp", &file("big.bin"), "s3://cli-bucket/big/big.bin"])
        .await;
    let head: serde_json::Value = serde_json::from_str(
        &cli.ok(&[
            "s3api",
            "head-object",
            "--bucket",
            "cli-bucket",
            "--key",
            "big/big.bin",
        ])
        .await,
    )
    .unwrap();
    assert_eq!(head["ContentLength"], big.len(), "{head}");
    assert!(
        head["ETag"].as_str().unwrap().ends_with("-3\""),
        "20 MiB in 8 MiB parts: {head}"
    );
    cli.ok(&["s3", "cp", "s3://cli-bucket/big/big.bin", &file("big.back")])
        .await;
    assert!(
        std::fs::read(file("big.back")).unwrap() == big,
        "the 20 MiB download differs from the upload"
    );
    // The same bytes through the SDK.
    let got = gw
        .client()
        .get_object()
        .bucket("cli-bucket")
        .key("big/big.bin")
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert!(got.as_ref() == big.as_slice());

    let listing = cli.ok(&["s3", "ls", "s3://cli-bucket/"]).await;
    assert!(listing.contains("PRE big/"), "{listing}");
    assert!(listing.contains("PRE docs/"), "{listing}");
    let listing = cli
        .ok(&["s3", "ls", "--recursive", "s3://cli-bucket/"])
        .await;
    let keys: Vec<&str> = listing
        .lines()
        .filter_map(|line| line.split_whitespace().last())
        .collect();
    assert_eq!(keys, vec!["big/big.bin", "docs/small.txt"], "{listing}");
    assert!(
        listing.contains(&format!(" {} big/big.bin", big.len())),
        "{listing}"
    );

    // sync up a small tree, then down into an empty directory.
    let up = work.path().join("up");
    for (name, len, seed) in [
        ("a.txt", 10, 1),
        ("sub/b.bin", 70_000, 2),
        ("sub/deeper/c.bin", 1, 3),
        ("sub/deeper/empty", 0, 4),
        ("with space/d ü.txt", 300, 5),
    ] {
        let path = up.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data(len, seed)).unwrap();
    }
    let synced = cli
        .ok(&["s3", "sync", &file("up"), "s3://cli-bucket/tree/"])
        .await;
    assert_eq!(synced.matches("upload:").count(), 5, "{synced}");
    // Nothing changed: nothing to upload.
    let again = cli
        .ok(&["s3", "sync", &file("up"), "s3://cli-bucket/tree/"])
        .await;
    assert!(!again.contains("upload:"), "{again}");
    let down = work.path().join("down");
    std::fs::create_dir_all(&down).unwrap();
    let synced = cli
        .ok(&["s3", "sync", "s3://cli-bucket/tree/", &file("down")])
        .await;
    assert_eq!(synced.matches("download:").count(), 5, "{synced}");
    assert_eq!(tree(&down), tree(&up));
    // A changed file goes up again; --delete removes what is gone locally.
    std::fs::write(up.join("a.txt"), b"changed, and longer than before").unwrap();
    std::fs::remove_file(up.join("sub/deeper/c.bin")).unwrap();
    let synced = cli
        .ok(&[
            "s3",
            "sync",
            "--delete",
            &file("up"),
            "s3://cli-bucket/tree/",
        ])
        .await;
    assert_eq!(synced.matches("upload:").count(), 1, "{synced}");
    assert_eq!(synced.matches("delete:").count(), 1, "{synced}");
    let synced = cli
        .ok(&[
            "s3",
            "sync",
            "--delete",
            "s3://cli-bucket/tree/",
            &file("down"),
        ])
        .await;
    assert!(synced.contains("download:"), "{synced}");
    assert_eq!(tree(&down), tree(&up));

    // presign (SigV4 through the config file) and a plain GET of the URL.
    let url = cli
        .ok(&[
            "s3",
            "presign",
            "s3://cli-bucket/docs/small.txt",
            "--expires-in",
            "300",
        ])
        .await;
    let url = url.trim();
    assert!(url.contains("X-Amz-Signature="), "not SigV4: {url}");
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), small.as_slice());

    // rm, and rb refused while the bucket holds objects.
    cli.ok(&["s3", "rm", "s3://cli-bucket/docs/small.txt"])
        .await;
    let stderr = cli
        .fails(&[
            "s3api",
            "head-object",
            "--bucket",
            "cli-bucket",
            "--key",
            "docs/small.txt",
        ])
        .await;
    assert!(stderr.contains("404"), "{stderr}");
    let stderr = cli.fails(&["s3", "rb", "s3://cli-bucket"]).await;
    assert!(stderr.contains("BucketNotEmpty"), "{stderr}");
    let removed = cli
        .ok(&["s3", "rm", "--recursive", "s3://cli-bucket/"])
        .await;
    assert_eq!(removed.matches("delete:").count(), 5, "{removed}");
    cli.ok(&["s3", "rb", "s3://cli-bucket"]).await;
    let listing = cli.ok(&["s3", "ls"]).await;
    assert!(!listing.contains("cli-bucket"), "{listing}");
    // rb --force empties a bucket first.
    cli.ok(&["s3", "mb", "s3://cli-forced"]).await;
    cli.ok(&["s3", "cp", &file("small.txt"), "s3://cli-forced/x"])
        .await;
    cli.ok(&["s3", "rb", "--force", "s3://cli-forced"]).await;
    let buckets = gw.client().list_buckets().send().await.unwrap();
    assert!(buckets.buckets().is_empty(), "{:?}", buckets.buckets());
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

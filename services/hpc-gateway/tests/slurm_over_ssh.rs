//! The gateway binary against real Slurm (and its PBS wrappers) over real SSH, as
//! `scripts/infra start slurm sshd` provides them (`SERRANO_TEST_SSH_*`, `SERRANO_TEST_SLURM`).
//! Without them the test says it is skipped, unless `SERRANO_REQUIRE_REAL_SERVERS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

use common::{Gateway, infrastructure, ssh_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_on_real_slurm_over_ssh() {
    let Some(ssh) = ssh_env() else { return };
    let dir = tempfile::tempdir().unwrap();
    let control = tempfile::Builder::new()
        .prefix("hpc")
        .tempdir_in("/tmp")
        .unwrap();
    let gateway = Gateway::start(&dir.path().join("store"), control.path()).await;
    use reqwest::Method;

    // A wrong host key is refused and nothing is registered.
    let (status, body) = gateway
        .call(
            Method::POST,
            "/infrastructure",
            Some(infrastructure(
                &ssh,
                "spoofed",
                "slurm",
                &ssh.wrong_known_hosts,
            )),
        )
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "cluster_unreachable");
    assert_eq!(
        gateway
            .call(Method::GET, "/infrastructure/spoofed", None)
            .await
            .0,
        404
    );

    let (status, body) = gateway
        .call(
            Method::POST,
            "/infrastructure",
            Some(infrastructure(&ssh, "local", "slurm", &ssh.known_hosts)),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["scheduler"], "slurm");

    let (status, telemetry) = gateway
        .call(Method::GET, "/infrastructure/local/telemetry", None)
        .await;
    assert_eq!(status, 200, "{telemetry}");
    let partitions = telemetry["partitions"].as_array().unwrap();
    assert!(
        partitions
            .iter()
            .any(|p| p["name"] == "debug" && p["total_nodes"] == 1),
        "{telemetry}"
    );

    // Success, failure with its exit code, cancel, and a time limit, side by side.
    let ok = gateway
        .submit("local", "echo \"hello from $(hostname)\"\n", json!({}))
        .await;
    let failing = gateway
        .submit("local", "echo oops >&2\nexit 3\n", json!({}))
        .await;
    let cancelled = gateway.submit("local", "sleep 300\n", json!({})).await;
    let timed_out = gateway
        .submit("local", "sleep 300\n", json!({"time_limit_minutes": 1}))
        .await;

    let done = gateway.wait_end(&ok, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["exit_code"], 0);
    let (status, output) = gateway
        .call(Method::GET, &format!("/job/{ok}/output"), None)
        .await;
    assert_eq!(status, 200);
    assert!(output.as_str().unwrap().contains("hello from"), "{output}");

    let failed = gateway.wait_end(&failing, Duration::from_secs(60)).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["exit_code"], 3);
    let (_, stderr) = gateway
        .call(
            Method::GET,
            &format!("/job/{failing}/output?stream=stderr"),
            None,
        )
        .await;
    assert!(stderr.as_str().unwrap().contains("oops"));

    let (status, body) = gateway
        .call(Method::DELETE, &format!("/job/{cancelled}"), None)
        .await;
    assert_eq!(status, 202, "{body}");
    let ended = gateway.wait_end(&cancelled, Duration::from_secs(60)).await;
    assert_eq!(ended["status"], "cancelled", "{ended}");
    assert_eq!(
        gateway
            .call(Method::DELETE, &format!("/job/{cancelled}"), None)
            .await
            .0,
        409
    );

    // A job that outlives the gateway is found again after a restart.
    let across_restart = gateway
        .submit("local", "sleep 4\necho survived\n", json!({}))
        .await;
    drop(gateway);
    let gateway = Gateway::start(&dir.path().join("store"), control.path()).await;
    let finished = gateway
        .wait_end(&across_restart, Duration::from_secs(60))
        .await;
    assert_eq!(finished["status"], "completed", "{finished}");

    let timeout = gateway.wait_end(&timed_out, Duration::from_secs(180)).await;
    assert_eq!(timeout["status"], "timeout", "{timeout}");

    let (_, list) = gateway
        .call(Method::GET, "/job?infrastructure=local&status=failed", None)
        .await;
    assert_eq!(list["jobs"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pbs_adapter_on_slurm_torque_wrappers() {
    let Some(ssh) = ssh_env() else { return };
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
            Some(infrastructure(&ssh, "pbs", "pbs", &ssh.known_hosts)),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let ok = gateway.submit("pbs", "echo pbs-ok\n", json!({})).await;
    let done = gateway.wait_end(&ok, Duration::from_secs(90)).await;
    assert_eq!(done["status"], "completed", "{done}");
    // Debian's Torque wrappers show every finished job as `C` with no exit_status: the outcome
    // comes from the exit status the job script records in its directory.
    let failing = gateway.submit("pbs", "exit 4\n", json!({})).await;
    let failed = gateway.wait_end(&failing, Duration::from_secs(90)).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["exit_code"], 4, "{failed}");
    assert_eq!(failed["raw_state"], "C", "{failed}");
}

struct S3 {
    endpoint: String,
    access_key: String,
    secret_key: String,
    region: String,
}

fn s3_env() -> Option<S3> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match get("SERRANO_TEST_S3_ENDPOINT") {
        Some(endpoint) => Some(S3 {
            endpoint,
            access_key: get("SERRANO_TEST_S3_ACCESS_KEY").unwrap_or_default(),
            secret_key: get("SERRANO_TEST_S3_SECRET_KEY").unwrap_or_default(),
            region: get("SERRANO_TEST_S3_REGION").unwrap_or_else(|| "us-east-1".into()),
        }),
        None => {
            assert!(
                std::env::var("SERRANO_REQUIRE_REAL_SERVERS").as_deref() != Ok("1"),
                "an S3 server is required (SERRANO_REQUIRE_REAL_SERVERS=1) but SERRANO_TEST_S3_ENDPOINT is not set"
            );
            eprintln!("skipped: run through scripts/test (needs scripts/infra start s3)");
            None
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Deterministic bytes that are not all text.
fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

async fn wait_transfer(gateway: &Gateway, path: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, transfer) = gateway.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "{transfer}");
        if transfer["status"] != "transferring" {
            return transfer;
        }
        assert!(
            Instant::now() < deadline,
            "{path} still transferring: {transfer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn staging_between_s3_and_the_cluster() {
    let Some(ssh) = ssh_env() else { return };
    let Some(s3) = s3_env() else { return };
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    use reqwest::Method;
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&s3.endpoint)
            .region(Region::new(s3.region.clone()))
            .credentials_provider(Credentials::new(
                &s3.access_key,
                &s3.secret_key,
                None,
                None,
                "test",
            ))
            .force_path_style(true)
            .build(),
    );
    let bucket = format!("stage-{}", uuid_like());
    client
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    let small = payload(5 << 20, 1);
    let big = payload(40 << 20, 2);
    client
        .put_object()
        .bucket(&bucket)
        .key("in.bin")
        .body(small.clone().into())
        .send()
        .await
        .unwrap();
    client
        .put_object()
        .bucket(&bucket)
        .key("big.bin")
        .body(big.clone().into())
        .send()
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let control = tempfile::Builder::new()
        .prefix("hpc")
        .tempdir_in("/tmp")
        .unwrap();
    let gateway = Gateway::start(&dir.path().join("store"), control.path()).await;
    let (status, body) = gateway
        .call(
            Method::POST,
            "/infrastructure",
            Some(infrastructure(&ssh, "stage", "slurm", &ssh.known_hosts)),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let area = format!("serrano-stage/{bucket}");
    let keys = |extra: Value| {
        let mut body = json!({"endpoint": s3.endpoint, "bucket": bucket, "region": s3.region,
            "access_key": s3.access_key, "secret_key": s3.secret_key, "infrastructure": "stage"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };

    // S3 -> cluster, then a job transforms the file, then cluster -> S3: checksums end to end.
    let (status, started) = gateway
        .call(
            Method::POST,
            "/s3_data",
            Some(keys(
                json!({"object": "in.bin", "dst": format!("{area}/in.bin")}),
            )),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    assert!(started.get("secret_key").is_none() && !started.to_string().contains(&s3.secret_key));
    let done = wait_transfer(
        &gateway,
        &format!("/s3_data/{}", started["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["sha256"], sha256_hex(&small));
    assert_eq!(done["bytes_done"], small.len());
    assert_eq!(done["bytes_total"], small.len());

    let job = gateway
        .submit(
            "stage",
            &format!("cd \"$HOME\"\ntr 'a-z' 'A-Z' < {area}/in.bin > {area}/out.bin\n"),
            json!({}),
        )
        .await;
    let ended = gateway.wait_end(&job, Duration::from_secs(90)).await;
    assert_eq!(ended["status"], "completed", "{ended}");
    let expected: Vec<u8> = small
        .iter()
        .map(|b| {
            if b.is_ascii_lowercase() {
                b.to_ascii_uppercase()
            } else {
                *b
            }
        })
        .collect();

    let (status, started) = gateway
        .call(
            Method::POST,
            "/s3_result",
            Some(keys(
                json!({"object": "out.bin", "src": format!("{area}/out.bin")}),
            )),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    let done = wait_transfer(
        &gateway,
        &format!("/s3_result/{}", started["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["sha256"], sha256_hex(&expected));
    let fetched = client
        .get_object()
        .bucket(&bucket)
        .key("out.bin")
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap();
    assert_eq!(sha256_hex(&fetched.into_bytes()), sha256_hex(&expected));

    // Above one part (16 MiB) the result goes up as a multipart upload.
    let (_, started) = gateway
        .call(
            Method::POST,
            "/s3_data",
            Some(keys(
                json!({"object": "big.bin", "dst": format!("{area}/big.bin")}),
            )),
        )
        .await;
    let done = wait_transfer(
        &gateway,
        &format!("/s3_data/{}", started["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(done["status"], "completed", "{done}");
    let (_, started) = gateway
        .call(
            Method::POST,
            "/s3_result",
            Some(keys(
                json!({"object": "big-copy.bin", "src": format!("{area}/big.bin")}),
            )),
        )
        .await;
    let done = wait_transfer(
        &gateway,
        &format!("/s3_result/{}", started["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(done["status"], "completed", "{done}");
    let head = client
        .head_object()
        .bucket(&bucket)
        .key("big-copy.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length, Some(big.len() as i64));
    assert!(
        head.e_tag.unwrap_or_default().contains('-'),
        "a multipart ETag ends in -N"
    );
    let fetched = client
        .get_object()
        .bucket(&bucket)
        .key("big-copy.bin")
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap();
    assert_eq!(sha256_hex(&fetched.into_bytes()), sha256_hex(&big));

    // HTTP(S) sources through /data (a presigned URL of the object store here).
    let url = client
        .get_object()
        .bucket(&bucket)
        .key("in.bin")
        .presigned(
            aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(300)).unwrap(),
        )
        .await
        .unwrap()
        .uri()
        .to_owned();
    let (status, started) = gateway
        .call(Method::POST, "/data", Some(json!({"src": url, "dst": format!("{area}/via-http.bin"), "infrastructure": "stage"})))
        .await;
    assert_eq!(status, 201, "{started}");
    let done = wait_transfer(
        &gateway,
        &format!("/data/{}", started["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["sha256"], sha256_hex(&small));

    // And back: a cluster file PUT to an HTTP(S) URL (a presigned PUT here).
    let put_url = client
        .put_object()
        .bucket(&bucket)
        .key("out-via-http.bin")
        .presigned(
            aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(300)).unwrap(),
        )
        .await
        .unwrap()
        .uri()
        .to_owned();
    let (status, started) = gateway
        .call(Method::POST, "/data", Some(json!({"src": format!("{area}/via-http.bin"), "dst": put_url, "infrastructure": "stage"})))
        .await;
    assert_eq!(status, 201, "{started}");
    let done = wait_transfer(
        &gateway,
        &format!("/data/{}", started["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["bytes_done"], small.len() as u64, "{done}");
    let fetched = client
        .get_object()
        .bucket(&bucket)
        .key("out-via-http.bin")
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap();
    assert_eq!(sha256_hex(&fetched.into_bytes()), sha256_hex(&small));
    let (status, refused) = gateway
        .call(
            Method::POST,
            "/data",
            Some(json!({"src": "http://a/x", "dst": "http://b/y", "infrastructure": "stage"})),
        )
        .await;
    assert_eq!(status, 400, "{refused}");

    // Failures end as `failure` with a reason, and nothing half-written is left under dst.
    let (_, started) = gateway
        .call(
            Method::POST,
            "/s3_data",
            Some(keys(
                json!({"object": "missing.bin", "dst": format!("{area}/missing.bin")}),
            )),
        )
        .await;
    let failed = wait_transfer(
        &gateway,
        &format!("/s3_data/{}", started["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(failed["status"], "failure", "{failed}");
    assert!(
        failed["reason"].as_str().unwrap().contains("missing.bin"),
        "{failed}"
    );
    let (_, started) = gateway
        .call(
            Method::POST,
            "/s3_result",
            Some(keys(
                json!({"object": "never.bin", "src": format!("{area}/does-not-exist")}),
            )),
        )
        .await;
    let failed = wait_transfer(
        &gateway,
        &format!("/s3_result/{}", started["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(failed["status"], "failure", "{failed}");
    let (status, _) = gateway
        .call(
            Method::POST,
            "/s3_data",
            Some(keys(json!({"object": "in.bin", "dst": "dir/"}))),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        gateway
            .call(
                Method::GET,
                "/s3_data/fdf45855-1299-47f1-8ea6-98be8d89030b",
                None
            )
            .await
            .0,
        404
    );

    let _ = gateway
        .submit("stage", &format!("rm -rf \"$HOME\"/{area}\n"), json!({}))
        .await;
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

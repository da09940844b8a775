//! One contract for every fragment backend: a local directory, and a real S3 server
//! (SeaweedFS from `scripts/infra start s3`, found through `SERRANO_TEST_S3_*`). Without the S3
//! variables that half is skipped with a message, unless `SERRANO_REQUIRE_REAL_SERVERS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use serrano_service::Secret;
use serrano_storage_gateway::backend::{Backend, LocalDir, S3Bucket, S3Location};

async fn contract(backend: &dyn Backend) {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let key = |k: &str| format!("{run}/{k}");

    assert_eq!(backend.get(&key("absent.0")).await.unwrap(), None);
    backend.delete(&key("absent.0")).await.unwrap();

    let big: Bytes = (0..3_000_000u32)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    backend
        .put(&key("obj/00000000.0"), big.clone())
        .await
        .unwrap();
    backend
        .put(&key("obj/00000000.1"), Bytes::from_static(b"one"))
        .await
        .unwrap();
    backend
        .put(&key("obj/00000001.0"), Bytes::new())
        .await
        .unwrap();
    assert_eq!(
        backend.get(&key("obj/00000000.0")).await.unwrap(),
        Some(big)
    );
    assert_eq!(
        backend.get(&key("obj/00000001.0")).await.unwrap(),
        Some(Bytes::new())
    );

    // Overwrite replaces.
    backend
        .put(&key("obj/00000000.1"), Bytes::from_static(b"two"))
        .await
        .unwrap();
    assert_eq!(
        backend
            .get(&key("obj/00000000.1"))
            .await
            .unwrap()
            .as_deref(),
        Some(&b"two"[..])
    );

    assert_eq!(
        backend.list(&format!("{run}/obj/")).await.unwrap(),
        vec![
            key("obj/00000000.0"),
            key("obj/00000000.1"),
            key("obj/00000001.0")
        ]
    );
    assert!(backend.usage().await.unwrap().used_bytes >= 3_000_003);

    for k in ["obj/00000000.0", "obj/00000000.1", "obj/00000001.0"] {
        backend.delete(&key(k)).await.unwrap();
    }
    assert!(backend.list(&format!("{run}/")).await.unwrap().is_empty());

    // Keys that could escape the store are refused before any I/O.
    assert!(backend.put("../escape", Bytes::new()).await.is_err());
    assert!(backend.get("/etc/passwd").await.is_err());
}

#[tokio::test]
async fn local_directory_backend() {
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalDir::open("edge-1", dir.path(), true).unwrap();
    contract(&backend).await;
    // A temporary file left by a killed writer is cleared at start and never listed.
    std::fs::write(dir.path().join(".tmp/leftover"), b"partial").unwrap();
    assert!(backend.list("").await.unwrap().is_empty());
    assert_eq!(backend.clear_temporaries().unwrap(), 1);
}

#[tokio::test]
async fn s3_backend_on_a_real_server() {
    let Ok(endpoint) = std::env::var("SERRANO_TEST_S3_ENDPOINT") else {
        assert!(
            std::env::var("SERRANO_REQUIRE_REAL_SERVERS").as_deref() != Ok("1"),
            "SERRANO_REQUIRE_REAL_SERVERS=1 but SERRANO_TEST_S3_ENDPOINT is not set"
        );
        println!("skipped: SERRANO_TEST_S3_ENDPOINT is not set (scripts/infra start s3)");
        return;
    };
    let location = S3Location {
        endpoint,
        region: std::env::var("SERRANO_TEST_S3_REGION").unwrap_or_else(|_| "us-east-1".into()),
        bucket: "serrano-backend-contract".to_owned(),
        prefix: "fragments/".to_owned(),
        access_key: std::env::var("SERRANO_TEST_S3_ACCESS_KEY").unwrap(),
        secret_key: Secret::new(std::env::var("SERRANO_TEST_S3_SECRET_KEY").unwrap()),
    };
    let backend = S3Bucket::new("cloud-1", &location);
    backend.ensure_bucket().await.unwrap();
    backend.ensure_bucket().await.unwrap();
    contract(&backend).await;

    // A wrong secret is an error naming the backend, not a missing fragment.
    let wrong = S3Bucket::new(
        "cloud-bad",
        &S3Location {
            secret_key: Secret::new("not-the-secret"),
            ..location
        },
    );
    let err = wrong.get("x/00000000.0").await.unwrap_err();
    assert_eq!(err.backend, "cloud-bad");
}

//! The 44 integration tests of the original gateway (D6.4, Table 1: `test_s3_create_bucket`,
//! `test_s3_delete_bucket`, `test_s3_delete_object`, `test_s3_get_object`,
//! `test_s3_list_bucket`, `test_s3_list_objects`, `test_s3_put_object`), one test each, named
//! `<module>_<test>`, through the AWS SDK for Rust. A storage policy is a bucket's
//! `LocationConstraint`; the JSON API (`/storage_policy`) shows which policy a bucket is bound to.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_s3::Client;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::CreateBucketConfiguration;
use common::{ADMIN, SCOPED, TestGateway, code, data, files_under, get_bytes};
use serde_json::Value;

// ---------------------------------------------------------------------------------------
// helpers

fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The ETag S3 gives a single-part object: its MD5 in hex, in double quotes.
fn etag_of(bytes: &[u8]) -> String {
    format!("\"{}\"", md5_hex(bytes))
}

/// The HTTP status of a failed SDK call.
fn status<E: std::fmt::Debug>(err: &SdkError<E, aws_smithy_runtime_api::http::Response>) -> u16 {
    err.raw_response()
        .map(|r| r.status().as_u16())
        .unwrap_or_else(|| panic!("no HTTP response: {err:?}"))
}

fn now_secs() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// A timestamp of the last minute (clocks of client and gateway are the same here; S3's
/// times have second precision).
fn assert_recent(time: Option<&aws_sdk_s3::primitives::DateTime>, what: &str) {
    let secs = time.unwrap_or_else(|| panic!("{what}: no time")).secs();
    let now = now_secs();
    assert!(
        (now - 60..=now + 1).contains(&secs),
        "{what}: {secs} is not within the last minute of {now}"
    );
}

async fn create(s3: &Client, bucket: &str) {
    s3.create_bucket().bucket(bucket).send().await.unwrap();
}

async fn create_with_policy(s3: &Client, bucket: &str, policy: &str) {
    s3.create_bucket()
        .bucket(bucket)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(policy.into())
                .build(),
        )
        .send()
        .await
        .unwrap();
}

async fn put(s3: &Client, bucket: &str, key: &str, body: &[u8]) -> PutObjectOutput {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap()
}

async fn bucket_names(s3: &Client) -> Vec<String> {
    s3.list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .iter()
        .map(|b| b.name().unwrap().to_owned())
        .collect()
}

async fn bucket_exists(s3: &Client, bucket: &str) -> bool {
    match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => true,
        Err(err) => {
            assert_eq!(status(&err), 404, "head_bucket {bucket}: {err:?}");
            false
        }
    }
}

/// A JSON API call with the bearer token: (status, body).
async fn json_api(
    gw: &TestGateway,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", gw.url))
        .bearer_auth(common::TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

/// The storage policy a bucket is bound to, by the JSON API.
async fn policy_of(gw: &TestGateway, bucket: &str) -> Value {
    let (status, body) = json_api(
        gw,
        reqwest::Method::GET,
        &format!("/storage_policy/{bucket}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "GET /storage_policy/{bucket}: {body}");
    body
}

/// A non-default policy: edge devices 1 to 3, Reed-Solomon 2+1, no encryption.
async fn create_edge_only_policy(gw: &TestGateway) {
    let (status, body) = json_api(
        gw,
        reqwest::Method::POST,
        "/storage_policy",
        Some(serde_json::json!({
            "name": "edge-only",
            "edge_devices": [1, 2, 3],
            "redundancy": {"scheme": "RS", "redundant_packets": 1}
        })),
    )
    .await;
    assert_eq!(status, 201, "POST /storage_policy: {body}");
    assert_eq!(body["name"], "edge-only", "{body}");
}

/// A request signed with aws-sigv4 and sent with reqwest (no headers but the signature's),
/// for the raw response.
async fn signed(
    gw: &TestGateway,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
        UriPathNormalizationMode, sign,
    };
    use aws_sigv4::sign::v4;
    use aws_smithy_runtime_api::client::identity::Identity;

    let identity: Identity = Credentials::new(ADMIN.0, ADMIN.1, None, None, "test").into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let url = format!("{}{path_and_query}", gw.url);
    let host = gw.url.trim_start_matches("http://").to_owned();
    let signable = SignableRequest::new(
        method,
        url.clone(),
        [("host", host.as_str())].into_iter(),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = reqwest::Client::new()
        .request(method, &url)
        .body(body.to_vec());
    for (name, value) in instructions.headers() {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

/// A signed GET of an XML document.
async fn signed_get_xml(
    gw: &TestGateway,
    path_and_query: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    let (status, headers, body) = signed(gw, "GET", path_and_query, b"").await;
    (status, headers, String::from_utf8(body).unwrap())
}

/// A listing's keys and common prefixes.
#[derive(Debug, PartialEq, Eq)]
struct Listing {
    keys: Vec<String>,
    prefixes: Vec<String>,
}

impl Listing {
    fn of(keys: &[&str], prefixes: &[&str]) -> Self {
        Self {
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
        }
    }
}

/// ListObjects (v1, what the original's tests used) and ListObjectsV2 with the same
/// arguments; both must agree and be complete in one page.
async fn list(s3: &Client, bucket: &str, prefix: Option<&str>, delimiter: Option<&str>) -> Listing {
    let v1 = s3
        .list_objects()
        .bucket(bucket)
        .set_prefix(prefix.map(str::to_owned))
        .set_delimiter(delimiter.map(str::to_owned))
        .send()
        .await
        .unwrap();
    assert_eq!(v1.is_truncated(), Some(false));
    assert_eq!(v1.name(), Some(bucket));
    assert_eq!(v1.prefix().unwrap_or(""), prefix.unwrap_or(""));
    assert_eq!(v1.delimiter(), delimiter);
    let from_v1 = Listing {
        keys: v1
            .contents()
            .iter()
            .map(|o| o.key().unwrap().to_owned())
            .collect(),
        prefixes: v1
            .common_prefixes()
            .iter()
            .map(|p| p.prefix().unwrap().to_owned())
            .collect(),
    };
    let v2 = s3
        .list_objects_v2()
        .bucket(bucket)
        .set_prefix(prefix.map(str::to_owned))
        .set_delimiter(delimiter.map(str::to_owned))
        .send()
        .await
        .unwrap();
    assert_eq!(v2.is_truncated(), Some(false));
    let from_v2 = Listing {
        keys: v2
            .contents()
            .iter()
            .map(|o| o.key().unwrap().to_owned())
            .collect(),
        prefixes: v2
            .common_prefixes()
            .iter()
            .map(|p| p.prefix().unwrap().to_owned())
            .collect(),
    };
    assert_eq!(
        v2.key_count(),
        Some(i32::try_from(from_v2.keys.len() + from_v2.prefixes.len()).unwrap()),
        "KeyCount counts keys and common prefixes"
    );
    assert_eq!(from_v1, from_v2, "ListObjects and ListObjectsV2 differ");
    from_v2
}

/// A bucket with the keys of the delimiter and prefix tests, one byte each.
async fn folder_bucket(s3: &Client, bucket: &str, keys: &[&str]) {
    create(s3, bucket).await;
    for key in keys {
        put(s3, bucket, key, key.as_bytes()).await;
    }
}

// ---------------------------------------------------------------------------------------
// test_s3_create_bucket.TestCreateBucket

#[tokio::test]
async fn create_bucket_10_buckets_created() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    let names: Vec<String> = (0..10).map(|i| format!("bucket-{i:02}")).collect();
    for name in &names {
        create(&s3, name).await;
    }
    assert_eq!(bucket_names(&s3).await, names);
    for name in &names {
        assert!(bucket_exists(&s3, name).await, "{name}");
        // Each is usable and bound to the default policy.
        put(&s3, name, "k", name.as_bytes()).await;
        assert_eq!(get_bytes(&s3, name, "k").await, name.as_bytes());
        assert_eq!(policy_of(&gw, name).await["name"], "default");
    }
}

#[tokio::test]
async fn create_bucket_bogus_storage_policy_name() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    let err = s3
        .create_bucket()
        .bucket("bogus")
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint("no-such-storage-policy".into())
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidLocationConstraint");
    assert_eq!(status(&err), 400);
    // Nothing was created.
    assert!(!bucket_exists(&s3, "bogus").await);
    assert!(bucket_names(&s3).await.is_empty());
    let (status, body) = json_api(&gw, reqwest::Method::GET, "/storage_policy/bogus", None).await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn create_bucket_correct_params() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create_edge_only_policy(&gw).await;
    create_with_policy(&s3, "with-policy", "edge-only").await;
    assert!(bucket_exists(&s3, "with-policy").await);
    assert_eq!(bucket_names(&s3).await, vec!["with-policy"]);

    // Bound to the policy: the JSON API, GetBucketLocation, and where the data go.
    let policy = policy_of(&gw, "with-policy").await;
    assert_eq!(policy["name"], "edge-only", "{policy}");
    assert_eq!(
        policy["edge_devices"],
        serde_json::json!([1, 2, 3]),
        "{policy}"
    );
    let location = s3
        .get_bucket_location()
        .bucket("with-policy")
        .send()
        .await
        .unwrap();
    assert_eq!(
        location.location_constraint().map(|c| c.as_str()),
        Some("edge-only")
    );
    // 200 000 bytes: 4 stripes of 64 KiB, each 2 data + 1 parity fragments on edges 1 to 3.
    let body = data(200_000, 1);
    put(&s3, "with-policy", "object", &body).await;
    for id in 1..=3 {
        assert_eq!(files_under(&gw.edge_dir(id)).len(), 4, "edge-{id}");
    }
    assert!(
        files_under(&gw.edge_dir(4)).is_empty(),
        "edge-4 is not in the policy"
    );
    assert_eq!(get_bytes(&s3, "with-policy", "object").await, body);
}

#[tokio::test]
async fn create_bucket_duplicate_bucket_name() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create(&s3, "team-dup").await;
    put(&s3, "team-dup", "k", b"kept").await;
    // Again by its owner.
    let err = s3
        .create_bucket()
        .bucket("team-dup")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "BucketAlreadyOwnedByYou");
    assert_eq!(status(&err), 409);
    // By another access key that may use such names.
    let scoped = gw.client_with(SCOPED, &gw.url);
    let err = scoped
        .create_bucket()
        .bucket("team-dup")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "BucketAlreadyExists");
    assert_eq!(status(&err), 409);
    // With another policy: still refused, and the bucket keeps its policy and content.
    let err = s3
        .create_bucket()
        .bucket("team-dup")
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint("default".into())
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "BucketAlreadyOwnedByYou");
    assert_eq!(bucket_names(&s3).await, vec!["team-dup"]);
    assert_eq!(get_bytes(&s3, "team-dup", "k").await, b"kept");
}

#[tokio::test]
async fn create_bucket_missing_storage_policy_name() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create_edge_only_policy(&gw).await;
    // No CreateBucketConfiguration at all: the default policy.
    create(&s3, "no-policy").await;
    let policy = policy_of(&gw, "no-policy").await;
    assert_eq!(policy["name"], "default", "{policy}");
    assert_eq!(
        policy["edge_devices"],
        serde_json::json!([1, 2, 3, 4]),
        "{policy}"
    );
    let location = s3
        .get_bucket_location()
        .bucket("no-policy")
        .send()
        .await
        .unwrap();
    assert!(
        location
            .location_constraint()
            .is_none_or(|c| c.as_str().is_empty()),
        "{location:?}"
    );
    // The default policy spreads every stripe over the four edge locations.
    let body = data(200_000, 2);
    put(&s3, "no-policy", "object", &body).await;
    for id in 1..=4 {
        assert_eq!(files_under(&gw.edge_dir(id)).len(), 4, "edge-{id}");
    }
    assert_eq!(get_bytes(&s3, "no-policy", "object").await, body);
    // An empty configuration (no LocationConstraint element) is the same.
    s3.create_bucket()
        .bucket("empty-configuration")
        .create_bucket_configuration(CreateBucketConfiguration::builder().build())
        .send()
        .await
        .unwrap();
    assert_eq!(
        policy_of(&gw, "empty-configuration").await["name"],
        "default"
    );
}

// ---------------------------------------------------------------------------------------
// test_s3_delete_bucket.TestDeleteBucket

#[tokio::test]
async fn delete_bucket_correct_params() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create(&s3, "doomed").await;
    create(&s3, "kept").await;
    let deleted = s3.delete_bucket().bucket("doomed").send().await;
    assert!(deleted.is_ok(), "{deleted:?}");
    assert!(!bucket_exists(&s3, "doomed").await);
    assert_eq!(bucket_names(&s3).await, vec!["kept"]);
    let err = s3
        .list_objects_v2()
        .bucket("doomed")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NoSuchBucket");
    let (status, _) = json_api(&gw, reqwest::Method::GET, "/storage_policy/doomed", None).await;
    assert_eq!(status, 404);
    // The name is free again.
    create(&s3, "doomed").await;
    assert!(
        s3.list_objects_v2()
            .bucket("doomed")
            .send()
            .await
            .unwrap()
            .contents()
            .is_empty()
    );
}

#[tokio::test]
async fn delete_bucket_non_empty_bucket() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create(&s3, "full").await;
    put(&s3, "full", "dir/object", b"content").await;
    let err = s3.delete_bucket().bucket("full").send().await.unwrap_err();
    assert_eq!(code(&err), "BucketNotEmpty");
    assert_eq!(status(&err), 409);
    // The bucket and its object are untouched.
    assert!(bucket_exists(&s3, "full").await);
    assert_eq!(get_bytes(&s3, "full", "dir/object").await, b"content");
    // Once emptied it can go.
    s3.delete_object()
        .bucket("full")
        .key("dir/object")
        .send()
        .await
        .unwrap();
    s3.delete_bucket().bucket("full").send().await.unwrap();
    assert!(!bucket_exists(&s3, "full").await);
}

#[tokio::test]
async fn delete_bucket_non_existent_bucket() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create(&s3, "other").await;
    let err = s3
        .delete_bucket()
        .bucket("never-created")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NoSuchBucket");
    assert_eq!(status(&err), 404);
    assert_eq!(bucket_names(&s3).await, vec!["other"]);
}

// ---------------------------------------------------------------------------------------
// test_s3_delete_object.TestDeleteObject

#[tokio::test]
async fn delete_object_correct_params() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create(&s3, "objects").await;
    put(&s3, "objects", "victim", &data(100_000, 1)).await;
    put(&s3, "objects", "bystander", b"stays").await;
    let deleted = s3
        .delete_object()
        .bucket("objects")
        .key("victim")
        .send()
        .await;
    assert!(deleted.is_ok(), "{deleted:?}");
    let err = s3
        .get_object()
        .bucket("objects")
        .key("victim")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NoSuchKey");
    let err = s3
        .head_object()
        .bucket("objects")
        .key("victim")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), 404);
    assert_eq!(
        list(&s3, "objects", None, None).await,
        Listing::of(&["bystander"], &[])
    );
    assert_eq!(get_bytes(&s3, "objects", "bystander").await, b"stays");
    // Its fragments go once reclaimed; the other object's stay.
    gw.gateway.store.reclaim_pass().await.unwrap();
    for id in 1..=4 {
        assert_eq!(files_under(&gw.edge_dir(id)).len(), 1, "edge-{id}");
    }
}

#[tokio::test]
async fn delete_object_delete_and_put() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create(&s3, "objects").await;
    let first = data(70_000, 1);
    let second = data(3_000, 2);
    put(&s3, "objects", "key", &first).await;
    s3.delete_object()
        .bucket("objects")
        .key("key")
        .send()
        .await
        .unwrap();
    let err = s3
        .get_object()
        .bucket("objects")
        .key("key")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NoSuchKey");
    let put_again = put(&s3, "objects", "key", &second).await;
    assert_eq!(put_again.e_tag(), Some(etag_of(&second).as_str()));
    let got = s3
        .get_object()
        .bucket("objects")
        .key("key")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_length(), Some(3_000));
    assert_eq!(got.e_tag(), Some(etag_of(&second).as_str()));
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        second.as_slice()
    );
    assert_eq!(
        list(&s3, "objects", None, None).await,
        Listing::of(&["key"], &[])
    );
}

#[tokio::test]
async fn delete_object_non_existent_bucket() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    let err = s3
        .delete_object()
        .bucket("never-created")
        .key("key")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NoSuchBucket");
    assert_eq!(status(&err), 404);
    assert!(bucket_names(&s3).await.is_empty());
}

#[tokio::test]
async fn delete_object_non_existent_object() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create(&s3, "objects").await;
    put(&s3, "objects", "present", b"x").await;
    // S3 answers 204 for a key that is not there.
    let deleted = s3
        .delete_object()
        .bucket("objects")
        .key("absent")
        .send()
        .await;
    assert!(deleted.is_ok(), "{deleted:?}");
    let deleted = s3
        .delete_object()
        .bucket("objects")
        .key("pres")
        .send()
        .await;
    assert!(deleted.is_ok(), "{deleted:?}");
    assert_eq!(
        list(&s3, "objects", None, None).await,
        Listing::of(&["present"], &[])
    );
}

#[tokio::test]
async fn delete_object_overwritten_object() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create(&s3, "objects").await;
    put(&s3, "objects", "key", &data(150_000, 1)).await;
    put(&s3, "objects", "key", &data(90_000, 2)).await;
    s3.delete_object()
        .bucket("objects")
        .key("key")
        .send()
        .await
        .unwrap();
    // No generation is left behind: not the first, not the second.
    let err = s3
        .get_object()
        .bucket("objects")
        .key("key")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NoSuchKey");
    assert_eq!(
        list(&s3, "objects", None, None).await,
        Listing::of(&[], &[])
    );
    gw.gateway.store.reclaim_pass().await.unwrap();
    for id in 1..=4 {
        assert!(files_under(&gw.edge_dir(id)).is_empty(), "edge-{id}");
    }
    // The bucket is empty: it can be deleted.
    s3.delete_bucket().bucket("objects").send().await.unwrap();
}

#[tokio::test]
async fn delete_object_zero_byte_object() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create(&s3, "objects").await;
    put(&s3, "objects", "empty", b"").await;
    let head = s3
        .head_object()
        .bucket("objects")
        .key("empty")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(0));
    s3.delete_object()
        .bucket("objects")
        .key("empty")
        .send()
        .await
        .unwrap();
    let err = s3
        .head_object()
        .bucket("objects")
        .key("empty")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), 404);
    assert_eq!(
        list(&s3, "objects", None, None).await,
        Listing::of(&[], &[])
    );
}

// ---------------------------------------------------------------------------------------
// test_s3_get_object.TestGetObject

#[tokio::test]
async fn get_object_correct_params() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create(&s3, "objects").await;
    let body = b"The quick brown fox jumps over the lazy dog".to_vec();
    put(&s3, "objects", "fox.txt", &body).await;
    let got = s3
        .get_object()
        .bucket("objects")
        .key("fox.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_length(), Some(43));
    assert_eq!(got.e_tag(), Some("\"9e107d9d372bb6826bd81d3542a419d6\""));
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        body.as_slice()
    );
}

#[tokio::test]
async fn get_object_etag() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create(&s3, "objects").await;
    for (key, body) in [
        ("empty", Vec::new()),
        ("one", b"a".to_vec()),
        ("stripe", data(64 * 1024, 1)),
        ("stripes", data(64 * 1024 * 3 + 1, 2)),
    ] {
        let expected = etag_of(&body);
        let put = put(&s3, "objects", key, &body).await;
        assert_eq!(put.e_tag(), Some(expected.as_str()), "{key}");
        let got = s3
            .get_object()
            .bucket("objects")
            .key(key)
            .send()
            .await
            .unwrap();
        assert_eq!(got.e_tag(), Some(expected.as_str()), "{key}");
        let head = s3
            .head_object()
            .bucket("objects")
            .key(key)
            .send()
            .await
            .unwrap();
        assert_eq!(head.e_tag(), Some(expected.as_str()), "{key}");
    }
    assert_eq!(etag_of(b""), "\"d41d8cd98f00b204e9800998ecf8427e\"");
    assert_eq!(etag_of(b"a"), "\"0cc175b9c0f1b6a831c399e269772661\"");
}

#[tokio::test]
async fn get_object_head_object() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create(&s3, "objects").await;
    let body = data(5_000, 3);
    s3.put_object()
        .bucket("objects")
        .key("headed")
        .content_type("image/png")
        .metadata("colour", "blue")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket("objects")
        .key("headed")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(5_000));
    assert_eq!(head.e_tag(), Some(etag_of(&body).as_str()));
    assert_eq!(head.content_type(), Some("image/png"));
    assert_eq!(
        head.metadata().unwrap().get("colour").map(String::as_str),
        Some("blue")
    );
    assert_recent(head.last_modified(), "head Last-Modified");
    let err = s3
        .head_object()
        .bucket("objects")
        .key("missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), 404);
    assert!(err.into_service_error().is_not_found());
    let err = s3
        .head_object()
        .bucket("no-bucket")
        .key("headed")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), 404);
}

#[tokio::test]
async fn get_object_headers() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create(&s3, "objects").await;
    let body = data(12_345, 4);
    let before = now_secs();
    s3.put_object()
        .bucket("objects")
        .key("with-headers")
        .content_type("application/json")
        .metadata("author", "uvt")
        .metadata("Revision", "2")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket("objects")
        .key("with-headers")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("application/json"));
    assert_eq!(got.content_length(), Some(12_345));
    let metadata = got.metadata().unwrap();
    assert_eq!(metadata.len(), 2, "{metadata:?}");
    assert_eq!(metadata.get("author").map(String::as_str), Some("uvt"));
    assert_eq!(metadata.get("revision").map(String::as_str), Some("2"));
    let modified = got.last_modified().unwrap().secs();
    assert!(
        (before - 1..=now_secs()).contains(&modified),
        "Last-Modified {modified} not in [{before}, now]"
    );
    // The raw headers, as any HTTP client sees them.
    let (status, headers, bytes) = signed(&gw, "GET", "/objects/with-headers", b"").await;
    assert_eq!(status, 200);
    assert!(bytes == body, "the raw body differs");
    for (name, expected) in [
        ("content-type", "application/json"),
        ("content-length", "12345"),
        ("x-amz-meta-author", "uvt"),
        ("x-amz-meta-revision", "2"),
        ("etag", etag_of(&body).as_str()),
    ] {
        assert_eq!(
            headers.get(name).and_then(|v| v.to_str().ok()),
            Some(expected),
            "{name}: {headers:?}"
        );
    }
    let last_modified = headers.get("last-modified").unwrap().to_str().unwrap();
    let parsed = httpdate::parse_http_date(last_modified).unwrap();
    assert_eq!(
        i64::try_from(parsed.duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap(),
        modified,
        "Last-Modified is an HTTP date: {last_modified}"
    );
    // An object stored without a content type (the SDK always sends one) gets S3's default.
    let (status, _, _) = signed(&gw, "PUT", "/objects/plain", b"x").await;
    assert_eq!(status, 200);
    let got = s3
        .get_object()
        .bucket("objects")
        .key("plain")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("binary/octet-stream"));
    assert!(got.metadata().is_none_or(|m| m.is_empty()));
}

#[tokio::test]
async fn get_object_non_existent_bucket() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    let err = s3
        .get_object()
        .bucket("never-created")
        .key("key")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NoSuchBucket");
    assert_eq!(status(&err), 404);
}

#[tokio::test]
async fn get_object_non_existent_object() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create(&s3, "objects").await;
    put(&s3, "objects", "present", b"x").await;
    for key in ["absent", "presen", "present/", "PRESENT"] {
        let err = s3
            .get_object()
            .bucket("objects")
            .key(key)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "NoSuchKey", "{key}");
        assert_eq!(status(&err), 404, "{key}");
        assert!(err.into_service_error().is_no_such_key(), "{key}");
    }
}

#[tokio::test]
async fn get_object_with_actual_data_2_generations() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create(&s3, "objects").await;
    let first = data(200_000, 5);
    let second = data(70_001, 6);
    put(&s3, "objects", "generations", &first).await;
    assert_eq!(get_bytes(&s3, "objects", "generations").await, first);
    put(&s3, "objects", "generations", &second).await;
    let got = s3
        .get_object()
        .bucket("objects")
        .key("generations")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_length(), Some(70_001));
    assert_eq!(got.e_tag(), Some(etag_of(&second).as_str()));
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        second.as_slice()
    );
    // A range of the second generation, past the first stripe.
    let got = s3
        .get_object()
        .bucket("objects")
        .key("generations")
        .range("bytes=65530-70000")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        &second[65_530..]
    );
    // Once the first generation's fragments are reclaimed, the second still reads.
    gw.gateway.store.reclaim_pass().await.unwrap();
    assert_eq!(get_bytes(&s3, "objects", "generations").await, second);
}

#[tokio::test]
async fn get_object_with_actual_data_5k() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create(&s3, "objects").await;
    let body = data(5 * 1024, 7);
    put(&s3, "objects", "data-5k.bin", &body).await;
    let got = s3
        .get_object()
        .bucket("objects")
        .key("data-5k.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_length(), Some(5 * 1024));
    assert_eq!(got.e_tag(), Some(etag_of(&body).as_str()));
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        body.as_slice()
    );
    // Stored encrypted: no 32-byte run of it appears in any fragment.
    let probe = &body[1000..1032];
    for id in 1..=4 {
        for file in files_under(&gw.edge_dir(id)) {
            let bytes = std::fs::read(&file).unwrap();
            assert!(!bytes.windows(32).any(|w| w == probe), "{}", file.display());
        }
    }
}

// ---------------------------------------------------------------------------------------
// test_s3_list_bucket.TestListBuckets

#[tokio::test]
async fn list_bucket_check_new_bucket_shows_ups() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    assert!(bucket_names(&s3).await.is_empty());
    create(&s3, "first").await;
    assert_eq!(bucket_names(&s3).await, vec!["first"]);
    create(&s3, "a-second").await;
    // Sorted by name, the new one included.
    assert_eq!(bucket_names(&s3).await, vec!["a-second", "first"]);
    let listed = s3.list_buckets().send().await.unwrap();
    for bucket in listed.buckets() {
        assert_recent(bucket.creation_date(), bucket.name().unwrap());
    }
    // Through the /s3 endpoint too.
    let names = bucket_names(&gw.client_s3_prefix()).await;
    assert_eq!(names, vec!["a-second", "first"]);
}

#[tokio::test]
async fn list_bucket_check_response_body() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create(&s3, "body-b").await;
    create(&s3, "body-a").await;
    let listed = s3.list_buckets().send().await.unwrap();
    let owner = listed.owner().unwrap();
    assert!(owner.id().is_some_and(|id| !id.is_empty()), "{owner:?}");
    assert_eq!(
        listed
            .buckets()
            .iter()
            .map(|b| b.name().unwrap())
            .collect::<Vec<_>>(),
        vec!["body-a", "body-b"]
    );
    // The raw XML body.
    let (status, headers, body) = signed_get_xml(&gw, "/").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/xml")),
        "{headers:?}"
    );
    assert!(body.starts_with("<?xml"), "{body}");
    assert!(
        body.contains("<ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"),
        "{body}"
    );
    assert!(body.contains("<Owner><ID>"), "{body}");
    let a = body.find("<Name>body-a</Name>").expect(&body);
    let b = body.find("<Name>body-b</Name>").expect(&body);
    assert!(a < b, "sorted: {body}");
    assert_eq!(body.matches("<Bucket>").count(), 2, "{body}");
    assert_eq!(body.matches("<CreationDate>").count(), 2, "{body}");
    // ISO 8601 creation dates, UTC: <CreationDate>2026-11-23T10:00:00.000Z</CreationDate>.
    let start = body.find("<CreationDate>").unwrap() + "<CreationDate>".len();
    let date = &body[start..body[start..].find('<').unwrap() + start];
    assert!(
        date.len() == 24 && date.ends_with('Z') && date.as_bytes()[10] == b'T',
        "{date}"
    );
}

// ---------------------------------------------------------------------------------------
// test_s3_list_objects.TestListObjects

#[tokio::test]
async fn list_objects_bucket_with_object() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create(&s3, "listed").await;
    let body = data(1_234, 1);
    put(&s3, "listed", "only-object", &body).await;
    let listed = s3.list_objects().bucket("listed").send().await.unwrap();
    assert_eq!(listed.contents().len(), 1);
    let object = &listed.contents()[0];
    assert_eq!(object.key(), Some("only-object"));
    assert_eq!(object.size(), Some(1_234));
    assert_eq!(object.e_tag(), Some(etag_of(&body).as_str()));
    assert_eq!(object.storage_class().map(|c| c.as_str()), Some("STANDARD"));
    assert_recent(object.last_modified(), "LastModified");
    assert!(listed.common_prefixes().is_empty());
    let v2 = s3.list_objects_v2().bucket("listed").send().await.unwrap();
    assert_eq!(v2.key_count(), Some(1));
    assert_eq!(v2.contents()[0].size(), Some(1_234));
}

#[tokio::test]
async fn list_objects_bucket_with_three_objects() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create(&s3, "listed").await;
    // Written out of order; listed in key order with their own sizes.
    for (key, len) in [("object-3", 3), ("object-1", 1), ("object-2", 2)] {
        put(&s3, "listed", key, &data(len, 0)).await;
    }
    assert_eq!(
        list(&s3, "listed", None, None).await,
        Listing::of(&["object-1", "object-2", "object-3"], &[])
    );
    let listed = s3.list_objects().bucket("listed").send().await.unwrap();
    assert_eq!(
        listed
            .contents()
            .iter()
            .map(|o| o.size().unwrap())
            .collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
}

/// Keys of the delimiter tests: objects at the top, in a folder, in a sub-folder.
const FOLDERS: [&str; 7] = [
    "folder/object-1",
    "folder/object-2",
    "folder/sub/object-3",
    "only-objects/a",
    "only-objects/b",
    "top-1",
    "top-2",
];

#[tokio::test]
async fn list_objects_delim_no_delim() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    folder_bucket(&s3, "delimited", &FOLDERS).await;
    // Without a delimiter every key is listed, however deep.
    assert_eq!(
        list(&s3, "delimited", None, None).await,
        Listing::of(&FOLDERS, &[])
    );
    // A delimiter that occurs in no key changes nothing.
    assert_eq!(
        list(&s3, "delimited", None, Some("|")).await,
        Listing::of(&FOLDERS, &[])
    );
}

#[tokio::test]
async fn list_objects_delim_no_prefix() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    folder_bucket(&s3, "delimited", &FOLDERS).await;
    assert_eq!(
        list(&s3, "delimited", None, Some("/")).await,
        Listing::of(&["top-1", "top-2"], &["folder/", "only-objects/"])
    );
    // Another delimiter rolls up at its first occurrence.
    assert_eq!(
        list(&s3, "delimited", None, Some("-")).await,
        Listing::of(
            &[],
            &["folder/object-", "folder/sub/object-", "only-", "top-"]
        )
    );
}

#[tokio::test]
async fn list_objects_delim_with_prefix() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    folder_bucket(&s3, "delimited", &FOLDERS).await;
    assert_eq!(
        list(&s3, "delimited", Some("folder/"), Some("/")).await,
        Listing::of(&["folder/object-1", "folder/object-2"], &["folder/sub/"])
    );
    // A prefix that is not a whole folder name.
    assert_eq!(
        list(&s3, "delimited", Some("fo"), Some("/")).await,
        Listing::of(&[], &["folder/"])
    );
    assert_eq!(
        list(&s3, "delimited", Some("folder/sub/"), Some("/")).await,
        Listing::of(&["folder/sub/object-3"], &[])
    );
}

#[tokio::test]
async fn list_objects_delim_with_prefix_object_only() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    folder_bucket(&s3, "delimited", &FOLDERS).await;
    assert_eq!(
        list(&s3, "delimited", Some("only-objects/"), Some("/")).await,
        Listing::of(&["only-objects/a", "only-objects/b"], &[])
    );
    // A prefix naming one object.
    assert_eq!(
        list(&s3, "delimited", Some("only-objects/b"), Some("/")).await,
        Listing::of(&["only-objects/b"], &[])
    );
}

#[tokio::test]
async fn list_objects_delim_with_prefix_subfolder_and_object() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    let keys = [
        "data/2024/jan.csv",
        "data/2024/feb.csv",
        "data/2025/jan.csv",
        "data/readme.txt",
        "data/summary.csv",
        "database.sql",
    ];
    folder_bucket(&s3, "delimited", &keys).await;
    assert_eq!(
        list(&s3, "delimited", Some("data/"), Some("/")).await,
        Listing::of(
            &["data/readme.txt", "data/summary.csv"],
            &["data/2024/", "data/2025/"]
        )
    );
    assert_eq!(
        list(&s3, "delimited", Some("data"), Some("/")).await,
        Listing::of(&["database.sql"], &["data/"])
    );
    assert_eq!(
        list(&s3, "delimited", Some("data/2024/"), Some("/")).await,
        Listing::of(&["data/2024/feb.csv", "data/2024/jan.csv"], &[])
    );
}

#[tokio::test]
async fn list_objects_empty_bucket() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create(&s3, "empty").await;
    assert_eq!(list(&s3, "empty", None, None).await, Listing::of(&[], &[]));
    assert_eq!(
        list(&s3, "empty", Some("x"), Some("/")).await,
        Listing::of(&[], &[])
    );
    let v2 = s3.list_objects_v2().bucket("empty").send().await.unwrap();
    assert_eq!(v2.key_count(), Some(0));
    assert_eq!(v2.is_truncated(), Some(false));
    assert!(v2.next_continuation_token().is_none());
    // The raw body of an empty listing has no <Contents>.
    let (status, _, body) = signed_get_xml(&gw, "/empty?list-type=2").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<KeyCount>0</KeyCount>"), "{body}");
    assert!(!body.contains("<Contents>"), "{body}");
}

#[tokio::test]
async fn list_objects_etag() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create(&s3, "etags").await;
    let bodies = [
        ("a", data(10, 1)),
        ("b", data(100_000, 2)),
        ("c", Vec::new()),
    ];
    for (key, body) in &bodies {
        let put = put(&s3, "etags", key, body).await;
        assert_eq!(put.e_tag(), Some(etag_of(body).as_str()));
    }
    let v1 = s3.list_objects().bucket("etags").send().await.unwrap();
    let v2 = s3.list_objects_v2().bucket("etags").send().await.unwrap();
    for listed in [v1.contents(), v2.contents()] {
        assert_eq!(listed.len(), 3);
        for (object, (key, body)) in listed.iter().zip(&bodies) {
            assert_eq!(object.key(), Some(*key));
            assert_eq!(object.e_tag(), Some(etag_of(body).as_str()), "{key}");
            assert_eq!(object.size(), Some(i64::try_from(body.len()).unwrap()));
        }
    }
    // Overwriting changes the listed ETag.
    put(&s3, "etags", "a", b"new").await;
    let v2 = s3
        .list_objects_v2()
        .bucket("etags")
        .prefix("a")
        .send()
        .await
        .unwrap();
    assert_eq!(v2.contents()[0].e_tag(), Some(etag_of(b"new").as_str()));
}

#[tokio::test]
async fn list_objects_non_existent_bucket() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    let err = s3
        .list_objects()
        .bucket("never-created")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NoSuchBucket");
    assert_eq!(status(&err), 404);
    let err = s3
        .list_objects_v2()
        .bucket("never-created")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NoSuchBucket");
    assert_eq!(status(&err), 404);
}

/// Keys of the prefix tests.
const PREFIXED: [&str; 6] = [
    "apple", "apricot", "avocado", "banana", "report", "report-2",
];

#[tokio::test]
async fn list_objects_prefix_empty_string() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    folder_bucket(&s3, "prefixed", &PREFIXED).await;
    assert_eq!(
        list(&s3, "prefixed", Some(""), None).await,
        Listing::of(&PREFIXED, &[])
    );
    assert_eq!(
        list(&s3, "prefixed", None, None).await,
        Listing::of(&PREFIXED, &[])
    );
}

#[tokio::test]
async fn list_objects_prefix_no_match() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    folder_bucket(&s3, "prefixed", &PREFIXED).await;
    for prefix in ["zebra", "applesauce", "A", "c", "report-20"] {
        assert_eq!(
            list(&s3, "prefixed", Some(prefix), None).await,
            Listing::of(&[], &[]),
            "{prefix}"
        );
    }
}

#[tokio::test]
async fn list_objects_prefix_with_match_full_object() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    folder_bucket(&s3, "prefixed", &PREFIXED).await;
    assert_eq!(
        list(&s3, "prefixed", Some("avocado"), None).await,
        Listing::of(&["avocado"], &[])
    );
    assert_eq!(
        list(&s3, "prefixed", Some("report-2"), None).await,
        Listing::of(&["report-2"], &[])
    );
    // A whole key is also the prefix of a longer one.
    assert_eq!(
        list(&s3, "prefixed", Some("report"), None).await,
        Listing::of(&["report", "report-2"], &[])
    );
}

#[tokio::test]
async fn list_objects_prefix_with_match_single_char() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    folder_bucket(&s3, "prefixed", &PREFIXED).await;
    assert_eq!(
        list(&s3, "prefixed", Some("a"), None).await,
        Listing::of(&["apple", "apricot", "avocado"], &[])
    );
    assert_eq!(
        list(&s3, "prefixed", Some("b"), None).await,
        Listing::of(&["banana"], &[])
    );
}

#[tokio::test]
async fn list_objects_prefix_with_three_objects() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    let keys = ["logs/1", "logs/2", "logs/3", "logs-old", "other/1"];
    folder_bucket(&s3, "prefixed", &keys).await;
    assert_eq!(
        list(&s3, "prefixed", Some("logs/"), None).await,
        Listing::of(&["logs/1", "logs/2", "logs/3"], &[])
    );
    // Three again, with a page size of 2: truncated, then the rest.
    let page = s3
        .list_objects_v2()
        .bucket("prefixed")
        .prefix("logs/")
        .max_keys(2)
        .send()
        .await
        .unwrap();
    assert_eq!(page.is_truncated(), Some(true));
    assert_eq!(page.contents().len(), 2);
    let rest = s3
        .list_objects_v2()
        .bucket("prefixed")
        .prefix("logs/")
        .continuation_token(page.next_continuation_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.is_truncated(), Some(false));
    assert_eq!(
        rest.contents()
            .iter()
            .map(|o| o.key().unwrap())
            .collect::<Vec<_>>(),
        vec!["logs/3"]
    );
}

// ---------------------------------------------------------------------------------------
// test_s3_put_object.TestPutObject

#[tokio::test]
async fn put_object_correct_params() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create(&s3, "objects").await;
    let body = data(100_000, 8);
    let put = s3
        .put_object()
        .bucket("objects")
        .key("docs/report.pdf")
        .content_type("application/pdf")
        .metadata("department", "research")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(put.e_tag(), Some(etag_of(&body).as_str()));
    let got = s3
        .get_object()
        .bucket("objects")
        .key("docs/report.pdf")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("application/pdf"));
    assert_eq!(
        got.metadata()
            .unwrap()
            .get("department")
            .map(String::as_str),
        Some("research")
    );
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        body.as_slice()
    );
    assert_eq!(
        list(&s3, "objects", None, None).await,
        Listing::of(&["docs/report.pdf"], &[])
    );
    // Fragments on every location of the default policy.
    for id in 1..=4 {
        assert!(!files_under(&gw.edge_dir(id)).is_empty(), "edge-{id}");
    }
}

#[tokio::test]
async fn put_object_etag_returned() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create(&s3, "objects").await;
    for (key, len) in [
        ("zero", 0),
        ("one", 1),
        ("5k", 5 * 1024),
        ("stripe-and-a-bit", 64 * 1024 + 1),
    ] {
        let body = data(len, 9);
        let put = put(&s3, "objects", key, &body).await;
        assert_eq!(put.e_tag(), Some(etag_of(&body).as_str()), "{key}");
    }
    // Same content, same ETag; other content, another.
    let a = put(&s3, "objects", "same-1", b"same").await;
    let b = put(&s3, "objects", "same-2", b"same").await;
    let c = put(&s3, "objects", "other", b"other").await;
    assert_eq!(a.e_tag(), b.e_tag());
    assert_ne!(a.e_tag(), c.e_tag());
}

#[tokio::test]
async fn put_object_non_existent_bucket() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    let err = s3
        .put_object()
        .bucket("never-created")
        .key("key")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NoSuchBucket");
    assert_eq!(status(&err), 404);
    // The bucket is not created by the attempt, and nothing is stored.
    assert!(bucket_names(&s3).await.is_empty());
    for id in 1..=4 {
        assert!(files_under(&gw.edge_dir(id)).is_empty(), "edge-{id}");
    }
}

#[tokio::test]
async fn put_object_overwrite() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create(&s3, "objects").await;
    let first = data(150_000, 10);
    let second = b"much shorter".to_vec();
    s3.put_object()
        .bucket("objects")
        .key("key")
        .content_type("text/x-first")
        .metadata("generation", "1")
        .body(ByteStream::from(first))
        .send()
        .await
        .unwrap();
    let put = s3
        .put_object()
        .bucket("objects")
        .key("key")
        .content_type("text/x-second")
        .body(ByteStream::from(second.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(put.e_tag(), Some(etag_of(&second).as_str()));
    let got = s3
        .get_object()
        .bucket("objects")
        .key("key")
        .send()
        .await
        .unwrap();
    // Everything comes from the second put: no metadata survives from the first.
    assert_eq!(got.content_type(), Some("text/x-second"));
    assert!(
        got.metadata().is_none_or(|m| m.is_empty()),
        "{:?}",
        got.metadata()
    );
    assert_eq!(got.content_length(), Some(12));
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        second.as_slice()
    );
    let listed = s3.list_objects_v2().bucket("objects").send().await.unwrap();
    assert_eq!(listed.contents().len(), 1);
    assert_eq!(listed.contents()[0].size(), Some(12));
    assert_eq!(
        listed.contents()[0].e_tag(),
        Some(etag_of(&second).as_str())
    );
    // Only the second generation's fragments remain once reclaimed: one stripe, 4 fragments.
    gw.gateway.store.reclaim_pass().await.unwrap();
    for id in 1..=4 {
        assert_eq!(files_under(&gw.edge_dir(id)).len(), 1, "edge-{id}");
    }
}

#[tokio::test]
async fn put_object_zero_byte_object() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    create(&s3, "objects").await;
    let put = put(&s3, "objects", "empty", b"").await;
    assert_eq!(put.e_tag(), Some("\"d41d8cd98f00b204e9800998ecf8427e\""));
    let got = s3
        .get_object()
        .bucket("objects")
        .key("empty")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_length(), Some(0));
    assert_eq!(got.e_tag(), Some("\"d41d8cd98f00b204e9800998ecf8427e\""));
    assert!(got.body.collect().await.unwrap().into_bytes().is_empty());
    let listed = s3.list_objects_v2().bucket("objects").send().await.unwrap();
    assert_eq!(listed.contents().len(), 1);
    assert_eq!(listed.contents()[0].size(), Some(0));
    // A range of an empty object cannot be satisfied.
    let err = s3
        .get_object()
        .bucket("objects")
        .key("empty")
        .range("bytes=0-0")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidRange");
    assert_eq!(status(&err), 416);
}

//! The S3 API over HTTP (D6.7 4.8, served at `/s3` and path-style at the root): routing by
//! method, path and sub-resource, SigV4 authentication, access keys scoped to buckets, and the
//! AWS XML error bodies. The protocol details are in [`crate::s3`]; the data path in
//! [`crate::objects`].

mod bucket;
pub mod multipart;
mod object;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use serde::{Deserialize, Serialize};
use serrano_service::Secret;

use crate::meta::{MetadataStore, Placement};
use crate::objects::{ByteStream, ObjectStore};
use crate::s3::sigv4::{self, Authenticated, PayloadCheck, RequestParts};
use crate::s3::xml::Owner;
use crate::s3::{S3Error, S3ErrorCode};

/// Path prefix of the S3 API (D6.7 4.8); the same API is also served path-style at the root.
pub const S3_PREFIX: &str = "/s3";
/// Largest XML request body (DeleteObjects with 1000 long keys fits).
const MAX_XML_BODY: usize = 4 << 20;

/// An access key pair and the buckets it may use (`*` = every bucket; a trailing `*` is a
/// prefix pattern, e.g. `team-a-*`). Keys come from configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeyConfig {
    pub access_key: String,
    pub secret_key: Secret,
    #[serde(default)]
    pub buckets: Vec<String>,
}

impl AccessKeyConfig {
    pub fn may_use(&self, bucket: &str) -> bool {
        self.buckets
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => bucket.starts_with(prefix),
                None => pattern == bucket,
            })
    }
}

/// Resolves storage policies to placements for new data.
#[async_trait]
pub trait PolicyLookup: Send + Sync {
    /// The placement of new data written under policy `name`; Ok(None) when there is no
    /// such policy.
    async fn placement(&self, name: &str) -> Result<Option<Placement>, String>;
    /// The policy of buckets created without a `LocationConstraint`.
    fn default_policy(&self) -> String;
}

/// Request and error counts by operation, for `/metrics`.
#[derive(Debug, Default)]
pub struct S3Metrics {
    counts: Mutex<BTreeMap<(&'static str, u16), u64>>,
    pub bytes_in: std::sync::atomic::AtomicU64,
    pub bytes_out: std::sync::atomic::AtomicU64,
}

impl S3Metrics {
    fn observe(&self, operation: &'static str, status: u16) {
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry((operation, status)).or_default() += 1;
        }
    }

    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut text = String::new();
        let _ = writeln!(
            text,
            "# HELP storage_gateway_s3_requests_total S3 requests by operation and status"
        );
        let _ = writeln!(text, "# TYPE storage_gateway_s3_requests_total counter");
        if let Ok(counts) = self.counts.lock() {
            for ((operation, status), count) in counts.iter() {
                let _ = writeln!(
                    text,
                    "storage_gateway_s3_requests_total{{operation=\"{operation}\",status=\"{status}\"}} {count}"
                );
            }
        }
        for (name, help, value) in [
            (
                "storage_gateway_s3_bytes_in_total",
                "Object bytes received from S3 clients",
                &self.bytes_in,
            ),
            (
                "storage_gateway_s3_bytes_out_total",
                "Object bytes sent to S3 clients",
                &self.bytes_out,
            ),
        ] {
            let _ = writeln!(text, "# HELP {name} {help}");
            let _ = writeln!(text, "# TYPE {name} counter");
            let _ = writeln!(
                text,
                "{name} {}",
                value.load(std::sync::atomic::Ordering::Relaxed)
            );
        }
        text
    }
}

/// Everything the S3 handlers share.
pub struct S3Service {
    pub store: Arc<ObjectStore>,
    pub meta: Arc<dyn MetadataStore>,
    pub policies: Arc<dyn PolicyLookup>,
    keys: HashMap<String, AccessKeyConfig>,
    pub metrics: Arc<S3Metrics>,
    /// Largest object of a single PutObject and largest part (AWS: 5 GiB).
    pub max_put_bytes: u64,
    /// Smallest part but the last (AWS: 5 MiB).
    pub min_part_bytes: u64,
}

impl std::fmt::Debug for S3Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Service")
            .field("access_keys", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The request after routing and authentication.
pub(crate) struct S3Request {
    pub method: Method,
    pub headers: HeaderMap,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub auth: Authenticated,
    pub key_config: AccessKeyConfig,
    pub body: Body,
    /// `/bucket/key` for error bodies.
    pub resource: String,
    /// The flexible checksum (header or trailer) verified over the body: `(header, base64)`,
    /// echoed in the response as SDKs expect.
    pub verified_checksum: Arc<Mutex<Option<(String, String)>>>,
}

impl S3Request {
    pub fn has_query(&self, name: &str) -> bool {
        self.query.iter().any(|(n, _)| n == name)
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as a stream of decoded bytes, verified at its end (chunk signatures, trailer
    /// or header checksum: the last item is an error when they do not hold), and the SHA-256
    /// to check it against.
    pub fn body_stream(&mut self) -> Result<(ByteStream, Option<[u8; 32]>), S3Error> {
        let checksum = sigv4::HeaderChecksum::from_headers(&self.headers)?;
        let (stream, sha) = self.decoded_body();
        let Some(checksum) = checksum else {
            return Ok((stream, sha));
        };
        let state = Arc::new(Mutex::new(Some(checksum)));
        let feeding = state.clone();
        let checked = stream.map(move |chunk| {
            if let Ok(bytes) = &chunk
                && let Ok(mut guard) = feeding.lock()
                && let Some(checksum) = guard.as_mut()
            {
                checksum.update(bytes);
            }
            chunk
        });
        let slot = self.verified_checksum.clone();
        let verdict = futures::stream::once(async move {
            let checksum = state.lock().ok().and_then(|mut guard| guard.take());
            match checksum.map(sigv4::HeaderChecksum::verify) {
                Some(Ok(verified)) => {
                    if let Ok(mut slot) = slot.lock() {
                        *slot = Some(verified);
                    }
                    None
                }
                Some(Err(err)) => Some(Err(err)),
                None => None,
            }
        })
        .filter_map(|item| async move { item });
        Ok((checked.chain(verdict).boxed(), sha))
    }

    fn decoded_body(&mut self) -> (ByteStream, Option<[u8; 32]>) {
        let body = std::mem::take(&mut self.body);
        let raw = body.into_data_stream().map(|chunk| {
            chunk.map_err(|err| {
                S3Error::new(
                    S3ErrorCode::IncompleteBody,
                    format!("the request body could not be read: {err}"),
                )
            })
        });
        match std::mem::replace(&mut self.auth.payload, PayloadCheck::Unsigned) {
            PayloadCheck::Unsigned => (raw.boxed(), None),
            PayloadCheck::Sha256(digest) => (raw.boxed(), Some(digest)),
            PayloadCheck::Streaming(decoder) => (
                dechunk(raw.boxed(), decoder, self.verified_checksum.clone()),
                None,
            ),
        }
    }

    /// A small body (XML) read whole and verified.
    pub async fn small_body(&mut self) -> Result<Vec<u8>, S3Error> {
        let (mut stream, sha) = self.body_stream()?;
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if out.len() + chunk.len() > MAX_XML_BODY {
                return Err(S3Error::new(
                    S3ErrorCode::MalformedXML,
                    "the XML body is larger than 4 MiB",
                ));
            }
            out.extend_from_slice(&chunk);
        }
        if let Some(expected) = sha {
            let actual = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &out);
            let actual: [u8; 32] = actual
                .as_ref()
                .try_into()
                .map_err(|_| S3Error::new(S3ErrorCode::InternalError, "SHA-256 has 32 bytes"))?;
            sigv4::check_sha256(&expected, &actual)?;
        }
        Ok(out)
    }
}

/// Decodes an aws-chunked body; the last item is an error when the final chunk or trailer
/// does not verify, so nothing decoded is committed before the whole body checked out.
fn dechunk(
    raw: ByteStream,
    decoder: Box<sigv4::ChunkedDecoder>,
    verified: Arc<Mutex<Option<(String, String)>>>,
) -> ByteStream {
    futures::stream::unfold((raw, Some(decoder)), move |(mut raw, decoder)| {
        let verified = verified.clone();
        async move {
            let mut decoder = decoder?;
            loop {
                match raw.next().await {
                    Some(Ok(chunk)) => {
                        let mut out = Vec::new();
                        if let Err(err) = decoder.feed(&chunk, &mut out) {
                            return Some((Err(err), (raw, None)));
                        }
                        if !out.is_empty() {
                            return Some((Ok(Bytes::from(out)), (raw, Some(decoder))));
                        }
                    }
                    Some(Err(err)) => return Some((Err(err), (raw, None))),
                    None => {
                        return match decoder.finish() {
                            Ok(info) => {
                                if let Some(checksum) = info.trailer_checksum
                                    && let Ok(mut slot) = verified.lock()
                                {
                                    *slot = Some(checksum);
                                }
                                None
                            }
                            Err(err) => Some((Err(err), (raw, None))),
                        };
                    }
                }
            }
        }
    })
    .boxed()
}

/// Decodes a query string (`+` is a space, as form encoding and the S3 servers do).
pub(crate) fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    let decode = |text: &str| {
        let spaced = text.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8_lossy()
            .into_owned()
    };
    raw.unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) => (decode(name), decode(value)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

/// Splits an S3 path (without the `/s3` prefix) into bucket and key, percent-decoded.
pub(crate) fn split_path(path: &str) -> Result<(Option<String>, Option<String>), S3Error> {
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8()
            .map(|cow| cow.into_owned())
            .map_err(|_| {
                S3Error::new(
                    S3ErrorCode::InvalidArgument,
                    "the request path is not valid UTF-8 once percent-decoded",
                )
            })
    };
    let rest = path.strip_prefix('/').unwrap_or(path);
    if rest.is_empty() {
        return Ok((None, None));
    }
    let (bucket, key) = match rest.split_once('/') {
        Some((bucket, key)) => (bucket, Some(key)),
        None => (rest, None),
    };
    let bucket = decode(bucket)?;
    let key = match key {
        Some(key) if !key.is_empty() => {
            let key = decode(key)?;
            if key.len() > 1024 {
                return Err(S3Error::new(
                    S3ErrorCode::KeyTooLongError,
                    "Your key is too long (1024 bytes at most)",
                ));
            }
            Some(key)
        }
        _ => None,
    };
    Ok((Some(bucket), key))
}

/// Whether a request is for the S3 API rather than the JSON API on the same port: `/s3`,
/// anything signed with SigV4, or anything that is not a JSON API path.
pub fn is_s3_request<B>(request: &Request<B>, json_paths: &[&str]) -> bool {
    let path = request.uri().path();
    if path == S3_PREFIX || path.starts_with("/s3/") {
        return true;
    }
    let signed = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256") || v.starts_with("AWS "))
        || request
            .uri()
            .query()
            .is_some_and(|q| q.contains("X-Amz-Algorithm=") || q.contains("X-Amz-Signature="));
    if signed {
        return true;
    }
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    !json_paths.contains(&first)
}

pub(crate) fn xml(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        )],
        body,
    )
        .into_response()
}

pub(crate) fn empty(status: StatusCode) -> Response {
    status.into_response()
}

fn error_response(error: &S3Error, request_id: &str, head: bool) -> Response {
    let status = error.code.status();
    if head || status == StatusCode::NOT_MODIFIED {
        // HEAD responses have no body; 304 never has one.
        return status.into_response();
    }
    xml(status, error.to_xml(request_id))
}

impl S3Service {
    pub fn new(
        store: Arc<ObjectStore>,
        policies: Arc<dyn PolicyLookup>,
        keys: Vec<AccessKeyConfig>,
    ) -> Self {
        Self {
            meta: store.meta.clone(),
            store,
            policies,
            keys: keys
                .into_iter()
                .map(|key| (key.access_key.clone(), key))
                .collect(),
            metrics: Arc::new(S3Metrics::default()),
            max_put_bytes: 5 << 30,
            min_part_bytes: 5 << 20,
        }
    }

    pub fn owner(&self) -> Owner {
        Owner {
            id: "serrano".to_owned(),
            display_name: "serrano".to_owned(),
        }
    }

    /// Answers one S3 request (never panics on client input; every failure is an AWS error).
    pub async fn handle(self: Arc<Self>, request: Request<Body>) -> Response {
        let request_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_uppercase();
        let head = request.method() == Method::HEAD;
        let (operation, outcome) = self.route(request).await;
        let mut response = match outcome {
            Ok(response) => response,
            Err(error) => {
                if error.code.status().is_server_error() {
                    tracing::warn!(operation, code = error.code.as_str(), message = %error.message, "S3 request failed");
                }
                error_response(&error, &request_id, head)
            }
        };
        self.metrics.observe(operation, response.status().as_u16());
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-amz-request-id", value);
        }
        response
    }

    async fn route(&self, request: Request<Body>) -> (&'static str, Result<Response, S3Error>) {
        let mut operation = "Unknown";
        let result = async {
            let request = self.authenticate(request)?;
            operation = operation_name(&request);
            let resource = request.resource.clone();
            self.dispatch(operation, request).await.map_err(|err| {
                if err.resource.is_empty() {
                    err.with_resource(resource)
                } else {
                    err
                }
            })
        }
        .await;
        (operation, result)
    }

    fn authenticate(&self, mut request: Request<Body>) -> Result<S3Request, S3Error> {
        // HTTP/2 carries the host in the URI authority; SigV4 signs it as `host`.
        if !request.headers().contains_key(header::HOST)
            && let Some(authority) = request.uri().authority().cloned()
            && let Ok(value) = HeaderValue::from_str(authority.as_str())
        {
            request.headers_mut().insert(header::HOST, value);
        }
        let auth = {
            let parts = RequestParts::from_request(&request);
            sigv4::authenticate(&parts, SystemTime::now(), |access_key| {
                self.keys
                    .get(access_key)
                    .map(|key| key.secret_key.expose().to_owned())
            })?
        };
        let key_config =
            self.keys.get(&auth.access_key).cloned().ok_or_else(|| {
                S3Error::new(S3ErrorCode::InvalidAccessKeyId, "unknown access key")
            })?;
        let (parts, body) = request.into_parts();
        let path = parts.uri.path();
        let path = match path.strip_prefix(S3_PREFIX) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
            _ => path,
        };
        let (bucket, key) = split_path(path)?;
        let resource = match (&bucket, &key) {
            (Some(bucket), Some(key)) => format!("/{bucket}/{key}"),
            (Some(bucket), None) => format!("/{bucket}"),
            _ => "/".to_owned(),
        };
        if let Some(bucket) = &bucket
            && !key_config.may_use(bucket)
        {
            return Err(S3Error::new(
                S3ErrorCode::AccessDenied,
                format!("Access Denied: this access key may not use bucket {bucket:?}"),
            )
            .with_resource(resource));
        }
        Ok(S3Request {
            method: parts.method,
            query: parse_query(parts.uri.query()),
            headers: parts.headers,
            bucket,
            key,
            auth,
            key_config,
            body,
            resource,
            verified_checksum: Arc::default(),
        })
    }

    async fn dispatch(
        &self,
        operation: &'static str,
        request: S3Request,
    ) -> Result<Response, S3Error> {
        match operation {
            "ListBuckets" => bucket::list_buckets(self, request).await,
            "CreateBucket" => bucket::create_bucket(self, request).await,
            "HeadBucket" => bucket::head_bucket(self, request).await,
            "DeleteBucket" => bucket::delete_bucket(self, request).await,
            "GetBucketLocation" => bucket::get_location(self, request).await,
            "GetBucketVersioning" => bucket::get_versioning(self, request).await,
            "ListObjects" | "ListObjectsV2" => bucket::list_objects(self, request).await,
            "ListMultipartUploads" => multipart::list_uploads(self, request).await,
            "DeleteObjects" => object::delete_objects(self, request).await,
            "PutObject" => object::put_object(self, request).await,
            "CopyObject" => object::copy_object(self, request).await,
            "GetObject" | "HeadObject" => object::get_object(self, request).await,
            "DeleteObject" => object::delete_object(self, request).await,
            "CreateMultipartUpload" => multipart::create(self, request).await,
            "UploadPart" | "UploadPartCopy" => multipart::upload_part(self, request).await,
            "CompleteMultipartUpload" => multipart::complete(self, request).await,
            "AbortMultipartUpload" => multipart::abort(self, request).await,
            "ListParts" => multipart::list_parts(self, request).await,
            _ => Err(S3Error::new(
                S3ErrorCode::NotImplemented,
                format!(
                    "{} on this resource with these parameters is not implemented",
                    request.method
                ),
            )),
        }
    }

    /// The bucket of a request, which must exist.
    pub(crate) async fn existing_bucket(
        &self,
        name: &str,
    ) -> Result<crate::meta::BucketMeta, S3Error> {
        self.meta
            .bucket(name)
            .await
            .map_err(meta_unavailable)?
            .ok_or_else(|| {
                S3Error::new(
                    S3ErrorCode::NoSuchBucket,
                    "The specified bucket does not exist",
                )
                .with_resource(format!("/{name}"))
            })
    }

    /// Where new data of `bucket` goes: its policy's current placement.
    pub(crate) async fn placement_of(
        &self,
        bucket: &crate::meta::BucketMeta,
    ) -> Result<Placement, S3Error> {
        self.policies
            .placement(&bucket.policy)
            .await
            .map_err(|err| S3Error::new(S3ErrorCode::ServiceUnavailable, err))?
            .ok_or_else(|| {
                S3Error::new(
                    S3ErrorCode::InvalidRequest,
                    format!(
                        "the storage policy {:?} of this bucket no longer exists",
                        bucket.policy
                    ),
                )
            })
    }
}

pub(crate) fn meta_unavailable(err: crate::meta::MetaError) -> S3Error {
    S3Error::new(S3ErrorCode::ServiceUnavailable, err.to_string())
}

/// The S3 operation a request asks for (the AWS operation names).
fn operation_name(request: &S3Request) -> &'static str {
    let q = |name: &str| request.has_query(name);
    let copy = request.headers.contains_key("x-amz-copy-source");
    match (&request.method, &request.bucket, &request.key) {
        (&Method::GET, None, _) => "ListBuckets",
        (m, Some(_), None) => match *m {
            Method::PUT if request.query.is_empty() => "CreateBucket",
            Method::HEAD => "HeadBucket",
            Method::DELETE if request.query.is_empty() => "DeleteBucket",
            Method::GET if q("location") => "GetBucketLocation",
            Method::GET if q("versioning") => "GetBucketVersioning",
            Method::GET if q("uploads") => "ListMultipartUploads",
            Method::GET if q("list-type") => "ListObjectsV2",
            Method::GET
                if !q("acl")
                    && !q("policy")
                    && !q("cors")
                    && !q("lifecycle")
                    && !q("tagging")
                    && !q("website")
                    && !q("logging")
                    && !q("notification")
                    && !q("replication")
                    && !q("encryption")
                    && !q("object-lock") =>
            {
                "ListObjects"
            }
            Method::POST if q("delete") => "DeleteObjects",
            _ => "Unsupported",
        },
        (m, Some(_), Some(_)) => match *m {
            Method::PUT if q("partNumber") && q("uploadId") && copy => "UploadPartCopy",
            Method::PUT if q("partNumber") && q("uploadId") => "UploadPart",
            Method::PUT if q("tagging") || q("acl") || q("retention") || q("legal-hold") => {
                "Unsupported"
            }
            Method::PUT if copy => "CopyObject",
            Method::PUT => "PutObject",
            Method::GET if q("uploadId") => "ListParts",
            Method::GET if q("tagging") || q("acl") || q("attributes") || q("torrent") => {
                "Unsupported"
            }
            Method::GET => "GetObject",
            Method::HEAD => "HeadObject",
            Method::DELETE if q("uploadId") => "AbortMultipartUpload",
            Method::DELETE if !q("tagging") => "DeleteObject",
            Method::POST if q("uploads") => "CreateMultipartUpload",
            Method::POST if q("uploadId") => "CompleteMultipartUpload",
            _ => "Unsupported",
        },
        _ => "Unsupported",
    }
}

/// Bucket names as S3 accepts them (the rules for new buckets).
pub(crate) fn valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let edge_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
        && edge_ok(bytes.first())
        && edge_ok(bytes.last())
        && !name.contains("..")
        && !name.contains(".-")
        && !name.contains("-.")
        && !name.starts_with("xn--")
        && !name.starts_with("sthree-")
        && !name.ends_with("-s3alias")
        && !name.ends_with("--ol-s3")
        && name.parse::<std::net::Ipv4Addr>().is_err()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_bucket_and_key() {
        assert_eq!(split_path("/").unwrap(), (None, None));
        assert_eq!(split_path("/b").unwrap(), (Some("b".into()), None));
        assert_eq!(split_path("/b/").unwrap(), (Some("b".into()), None));
        assert_eq!(
            split_path("/b/a%20b/%25c/%C3%BC+").unwrap(),
            (Some("b".into()), Some("a b/%c/ü+".into()))
        );
        assert_eq!(
            split_path("/b/%FF").unwrap_err().code,
            S3ErrorCode::InvalidArgument
        );
        let long = format!("/b/{}", "k".repeat(1025));
        assert_eq!(
            split_path(&long).unwrap_err().code,
            S3ErrorCode::KeyTooLongError
        );
    }

    #[test]
    fn queries_decode_plus_and_percent() {
        assert_eq!(
            parse_query(Some("prefix=a+b%2Fc&delimiter=%2F&uploads")),
            vec![
                ("prefix".into(), "a b/c".into()),
                ("delimiter".into(), "/".into()),
                ("uploads".into(), String::new())
            ]
        );
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        for good in ["abc", "my-bucket.1", "a1b", &"a".repeat(63)] {
            assert!(valid_bucket_name(good), "{good}");
        }
        for bad in [
            "ab",
            "Abc",
            "a_b",
            "-ab",
            "ab-",
            "a..b",
            "a.-b",
            "192.168.1.1",
            "xn--abc",
            &"a".repeat(64),
        ] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
    }

    #[test]
    fn key_scopes_match_names_and_prefixes() {
        let key = AccessKeyConfig {
            access_key: "ak".into(),
            secret_key: Secret::new("sk"),
            buckets: vec!["data".into(), "team-a-*".into()],
        };
        assert!(key.may_use("data"));
        assert!(key.may_use("team-a-x"));
        assert!(!key.may_use("data2"));
        assert!(!key.may_use("team-b"));
        let admin = AccessKeyConfig {
            buckets: vec!["*".into()],
            ..key
        };
        assert!(admin.may_use("anything"));
    }

    #[test]
    fn json_paths_stay_json_unless_signed() {
        let json = ["storage_policy", "health", "metrics"];
        let req = |uri: &str| Request::builder().uri(uri).body(()).unwrap();
        assert!(!is_s3_request(&req("/storage_policy"), &json));
        assert!(!is_s3_request(&req("/metrics"), &json));
        assert!(is_s3_request(&req("/s3/metrics"), &json));
        assert!(is_s3_request(&req("/data/key"), &json));
        assert!(is_s3_request(&req("/"), &json));
        let signed = Request::builder()
            .uri("/metrics")
            .header("authorization", "AWS4-HMAC-SHA256 Credential=x")
            .body(())
            .unwrap();
        assert!(is_s3_request(&signed, &json));
    }
}

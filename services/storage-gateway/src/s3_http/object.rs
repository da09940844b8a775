//! Object operations: Put, Get (ranges, conditions), Head, Copy, Delete, DeleteObjects.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use axum::response::Response;
use base64::Engine;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use uuid::Uuid;

use super::{S3Request, S3Service, empty, meta_unavailable, xml};
use crate::meta::{BucketMeta, ObjectHeaders, ObjectMeta, Placement};
use crate::objects::{ByteStream, Expectations, Written, now_ms};
use crate::s3::xml as s3xml;
use crate::s3::{S3Error, S3ErrorCode};

pub(super) fn names(request: &S3Request) -> Result<(String, String), S3Error> {
    match (&request.bucket, &request.key) {
        (Some(bucket), Some(key)) => Ok((bucket.clone(), key.clone())),
        _ => Err(S3Error::new(
            S3ErrorCode::InvalidRequest,
            "no bucket or key in the request",
        )),
    }
}

/// The headers an object keeps, from a PutObject / CreateMultipartUpload / CopyObject
/// (REPLACE) request.
pub(super) fn object_headers(headers: &HeaderMap) -> Result<ObjectHeaders, S3Error> {
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut user_metadata = BTreeMap::new();
    let mut metadata_bytes = 0;
    for (name, value) in headers {
        if let Some(meta_name) = name.as_str().strip_prefix("x-amz-meta-") {
            let value = value.to_str().map_err(|_| {
                S3Error::new(
                    S3ErrorCode::InvalidArgument,
                    format!("metadata header {name} must be ASCII (use RFC 2047 encoding)"),
                )
            })?;
            metadata_bytes += meta_name.len() + value.len();
            user_metadata.insert(meta_name.to_owned(), value.to_owned());
        }
    }
    if metadata_bytes > 2048 {
        return Err(S3Error::new(
            S3ErrorCode::InvalidArgument,
            "Your metadata headers exceed the maximum allowed metadata size (2 KB)",
        ));
    }
    Ok(ObjectHeaders {
        content_type: text(header::CONTENT_TYPE),
        content_encoding: text(header::CONTENT_ENCODING)
            .filter(|encoding| encoding != "aws-chunked")
            .map(|encoding| {
                // aws-chunked is transport framing, never part of the stored encoding.
                encoding
                    .split(',')
                    .map(str::trim)
                    .filter(|part| *part != "aws-chunked")
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .filter(|encoding| !encoding.is_empty()),
        content_disposition: text(header::CONTENT_DISPOSITION),
        content_language: text(header::CONTENT_LANGUAGE),
        cache_control: text(header::CACHE_CONTROL),
        expires: text(header::EXPIRES),
        user_metadata,
    })
}

/// What a request body promises: Content-MD5, signed SHA-256, decoded length.
pub(super) fn expectations(
    request: &S3Request,
    sha256: Option<[u8; 32]>,
) -> Result<Expectations, S3Error> {
    let md5 = match request.header("content-md5") {
        Some(text) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .ok()
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                .ok_or_else(|| {
                    S3Error::new(
                        S3ErrorCode::InvalidDigest,
                        "The Content-MD5 you specified was invalid",
                    )
                })?;
            Some(bytes)
        }
        None => None,
    };
    let length_header = request.header("x-amz-decoded-content-length").or_else(|| {
        // With aws-chunked framing Content-Length counts the framing, not the data.
        (!request
            .header("x-amz-content-sha256")
            .is_some_and(|v| v.starts_with("STREAMING-")))
        .then(|| request.header("content-length"))
        .flatten()
    });
    let length =
        match length_header {
            Some(text) => Some(text.trim().parse::<u64>().map_err(|_| {
                S3Error::new(S3ErrorCode::InvalidArgument, "invalid content length")
            })?),
            None => None,
        };
    Ok(Expectations {
        md5,
        sha256,
        length,
    })
}

pub(super) fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// Stores a request body under `placement`, refusing bodies over `limit`.
pub(super) async fn store_body(
    service: &S3Service,
    request: &mut S3Request,
    placement: &Placement,
    bucket: &str,
    key: &str,
    upload_id: Option<&str>,
) -> Result<Written, S3Error> {
    let (stream, sha) = request.body_stream()?;
    let expect = expectations(request, sha)?;
    if expect.length.is_some_and(|len| len > service.max_put_bytes) {
        return Err(S3Error::new(
            S3ErrorCode::EntityTooLarge,
            format!(
                "Your proposed upload exceeds the maximum allowed size ({} bytes)",
                service.max_put_bytes
            ),
        ));
    }
    let metrics = service.metrics.clone();
    let limit = service.max_put_bytes;
    let mut seen = 0u64;
    let counted: ByteStream = stream
        .map(move |chunk| {
            let chunk = chunk?;
            seen += chunk.len() as u64;
            metrics
                .bytes_in
                .fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
            if seen > limit {
                return Err(S3Error::new(
                    S3ErrorCode::EntityTooLarge,
                    "Your proposed upload exceeds the maximum allowed size",
                ));
            }
            Ok(chunk)
        })
        .boxed();
    service
        .store
        .write(placement, bucket, key, upload_id, counted, expect)
        .await
}

/// Commits a new object version: metadata first, then the old version's fragments are
/// scheduled for reclaiming.
pub(super) async fn commit_object(service: &S3Service, object: &ObjectMeta) -> Result<(), S3Error> {
    let replaced = match service.meta.put_object(object).await {
        Ok(replaced) => replaced,
        Err(err) => {
            service
                .store
                .abandon(
                    &object.placement,
                    &object.segments,
                    &object.bucket,
                    &object.key,
                    None,
                    false,
                )
                .await;
            return Err(meta_unavailable(err));
        }
    };
    for segment in &object.segments {
        service.store.committed(segment.data_id).await;
    }
    if let Some(old) = replaced {
        service
            .store
            .abandon(
                &old.placement,
                &old.segments,
                &old.bucket,
                &old.key,
                None,
                true,
            )
            .await;
    }
    Ok(())
}

fn object_response_headers(response: &mut Response, object: &ObjectMeta) {
    let headers = response.headers_mut();
    let mut set = |name: &str, value: &str| {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    };
    set("etag", &quoted(&object.etag));
    set("last-modified", &http_date(object.last_modified_ms));
    set("accept-ranges", "bytes");
    set(
        "content-type",
        object
            .headers
            .content_type
            .as_deref()
            .unwrap_or("binary/octet-stream"),
    );
    let optional = [
        ("content-encoding", &object.headers.content_encoding),
        ("content-disposition", &object.headers.content_disposition),
        ("content-language", &object.headers.content_language),
        ("cache-control", &object.headers.cache_control),
        ("expires", &object.headers.expires),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            set(name, value);
        }
    }
    for (name, value) in &object.headers.user_metadata {
        set(&format!("x-amz-meta-{name}"), value);
    }
}

pub(super) fn http_date(unix_ms: i64) -> String {
    let secs = u64::try_from(unix_ms.max(0) / 1000).unwrap_or(0);
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

pub(super) async fn put_object(
    service: &S3Service,
    mut request: S3Request,
) -> Result<Response, S3Error> {
    let (bucket_name, key) = names(&request)?;
    let bucket = service.existing_bucket(&bucket_name).await?;
    let headers = object_headers(&request.headers)?;
    let if_none_match = request.header("if-none-match").map(str::to_owned);
    if if_none_match.as_deref() == Some("*") {
        refuse_if_exists(service, &bucket_name, &key).await?;
    }
    let placement = service.placement_of(&bucket).await?;
    let written = store_body(service, &mut request, &placement, &bucket_name, &key, None).await?;
    if if_none_match.as_deref() == Some("*")
        && let Err(err) = refuse_if_exists(service, &bucket_name, &key).await
    {
        service
            .store
            .abandon(
                &placement,
                &[written.segment],
                &bucket_name,
                &key,
                None,
                false,
            )
            .await;
        return Err(err);
    }
    let etag = hex::encode(written.md5);
    let object = ObjectMeta {
        bucket: bucket_name,
        key,
        object_id: Uuid::new_v4(),
        size: written.segment.size,
        etag: etag.clone(),
        last_modified_ms: now_ms(),
        headers,
        placement,
        segments: vec![written.segment],
    };
    commit_object(service, &object).await?;
    let mut response = empty(StatusCode::OK);
    if let Ok(value) = HeaderValue::from_str(&quoted(&etag)) {
        response.headers_mut().insert(header::ETAG, value);
    }
    echo_checksum(&request, &mut response);
    Ok(response)
}

/// SDKs that sent a flexible checksum (trailer or header) look for it in the response: the
/// one verified over the body.
pub(super) fn echo_checksum(request: &S3Request, response: &mut Response) {
    let verified = request
        .verified_checksum
        .lock()
        .ok()
        .and_then(|slot| slot.clone());
    if let Some((name, value)) = verified
        && let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        )
    {
        response.headers_mut().insert(name, value);
    }
}

async fn refuse_if_exists(service: &S3Service, bucket: &str, key: &str) -> Result<(), S3Error> {
    if service
        .meta
        .object(bucket, key)
        .await
        .map_err(meta_unavailable)?
        .is_some()
    {
        return Err(S3Error::new(
            S3ErrorCode::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold",
        ));
    }
    Ok(())
}

/// The object named by a request, which must exist.
pub(super) async fn existing_object(
    service: &S3Service,
    bucket: &str,
    key: &str,
) -> Result<ObjectMeta, S3Error> {
    service.existing_bucket(bucket).await?;
    service
        .meta
        .object(bucket, key)
        .await
        .map_err(meta_unavailable)?
        .ok_or_else(|| S3Error::new(S3ErrorCode::NoSuchKey, "The specified key does not exist."))
}

fn parse_http_date(text: &str) -> Option<i64> {
    let time = httpdate::parse_http_date(text.trim()).ok()?;
    let secs = time.duration_since(UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').any(|candidate| {
        let candidate = candidate.trim();
        let candidate = candidate.strip_prefix("W/").unwrap_or(candidate);
        candidate == "*" || candidate.trim_matches('"') == etag
    })
}

/// RFC 7232 preconditions as S3 applies them (If-Match over If-Unmodified-Since, If-None-Match
/// over If-Modified-Since). `prefix` is `""` or `x-amz-copy-source-` for copies.
pub(super) fn check_conditions(
    headers: &HeaderMap,
    prefix: &str,
    object: &ObjectMeta,
    read: bool,
) -> Result<(), S3Error> {
    let get = |name: &str| {
        headers
            .get(format!("{prefix}{name}").as_str())
            .and_then(|v| v.to_str().ok())
    };
    let modified_secs = object.last_modified_ms / 1000;
    let failed = || {
        S3Error::new(
            S3ErrorCode::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold",
        )
    };
    let not_modified = || {
        if read {
            S3Error::new(S3ErrorCode::NotModified, "Not Modified")
        } else {
            failed()
        }
    };
    match get("if-match") {
        Some(list) => {
            if !etag_matches(list, &object.etag) {
                return Err(failed());
            }
        }
        None => {
            if let Some(since) = get("if-unmodified-since").and_then(parse_http_date)
                && modified_secs > since
            {
                return Err(failed());
            }
        }
    }
    match get("if-none-match") {
        Some(list) => {
            if etag_matches(list, &object.etag) {
                return Err(not_modified());
            }
        }
        None => {
            if let Some(since) = get("if-modified-since").and_then(parse_http_date)
                && modified_secs <= since
            {
                return Err(not_modified());
            }
        }
    }
    Ok(())
}

/// A `Range` header against an object of `size` bytes: Ok(None) for no (or an ignorable)
/// range, InvalidRange when it cannot be satisfied.
pub(super) fn parse_range(text: Option<&str>, size: u64) -> Result<Option<Range<u64>>, S3Error> {
    let Some(text) = text else {
        return Ok(None);
    };
    let Some(spec) = text.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        // Several ranges: S3 answers with the whole object.
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let unsatisfiable = || {
        S3Error::new(
            S3ErrorCode::InvalidRange,
            format!("The requested range is not satisfiable (object size {size})"),
        )
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        let Ok(suffix) = last.parse::<u64>() else {
            return Ok(None);
        };
        if suffix == 0 || size == 0 {
            return Err(unsatisfiable());
        }
        return Ok(Some(size.saturating_sub(suffix)..size));
    }
    let Ok(start) = first.parse::<u64>() else {
        return Ok(None);
    };
    let end = if last.is_empty() {
        size
    } else {
        match last.parse::<u64>() {
            Ok(last) if last >= start => last.saturating_add(1).min(size),
            _ => return Ok(None),
        }
    };
    if start >= size {
        return Err(unsatisfiable());
    }
    Ok(Some(start..end))
}

/// GetObject and HeadObject.
pub(super) async fn get_object(
    service: &S3Service,
    request: S3Request,
) -> Result<Response, S3Error> {
    let (bucket, key) = names(&request)?;
    let object = existing_object(service, &bucket, &key).await?;
    let head = request.method == http::Method::HEAD;
    if let Err(err) = check_conditions(&request.headers, "", &object, true) {
        if err.code == S3ErrorCode::NotModified {
            let mut response = empty(StatusCode::NOT_MODIFIED);
            if let Ok(value) = HeaderValue::from_str(&quoted(&object.etag)) {
                response.headers_mut().insert(header::ETAG, value);
            }
            return Ok(response);
        }
        return Err(err);
    }
    if request.has_query("partNumber") && request.query("partNumber") != Some("1") {
        return Err(S3Error::new(
            S3ErrorCode::InvalidRange,
            "only partNumber=1 can be read: parts are not kept apart after completion",
        ));
    }
    // (route() adds the resource to the error.)
    let range = parse_range(request.header("range"), object.size)?;
    let (status, span) = match &range {
        Some(range) => (StatusCode::PARTIAL_CONTENT, range.clone()),
        None => (StatusCode::OK, 0..object.size),
    };
    let body = if head || span.is_empty() {
        Body::empty()
    } else {
        let store = service.store.clone();
        let mut stream = store.read(&object, span.clone());
        // The first stripe is decoded before the headers go out, so an unreadable object is
        // a clean 503 rather than a truncated 200.
        let first = match stream.next().await {
            Some(Ok(bytes)) => bytes,
            Some(Err(err)) => return Err(err),
            None => bytes::Bytes::new(),
        };
        let metrics = service.metrics.clone();
        let stream = futures::stream::once(async move { Ok(first) })
            .chain(stream)
            .map(move |chunk| {
                if let Ok(bytes) = &chunk {
                    metrics
                        .bytes_out
                        .fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
                chunk.map_err(|err| std::io::Error::other(err.to_string()))
            });
        Body::from_stream(stream)
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    object_response_headers(&mut response, &object);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(span.end - span.start),
    );
    if range.is_some()
        && let Ok(value) = HeaderValue::from_str(&format!(
            "bytes {}-{}/{}",
            span.start,
            span.end.saturating_sub(1),
            object.size
        ))
    {
        headers.insert(header::CONTENT_RANGE, value);
    }
    if object.etag.contains('-') && request.has_query("partNumber") {
        headers.insert("x-amz-mp-parts-count", HeaderValue::from(1));
    }
    // Presigned URLs may override response headers (response-content-type and friends).
    for (param, name) in [
        ("response-content-type", header::CONTENT_TYPE),
        ("response-content-language", header::CONTENT_LANGUAGE),
        ("response-expires", header::EXPIRES),
        ("response-cache-control", header::CACHE_CONTROL),
        ("response-content-disposition", header::CONTENT_DISPOSITION),
        ("response-content-encoding", header::CONTENT_ENCODING),
    ] {
        if let Some(value) = request.query(param)
            && let Ok(value) = HeaderValue::from_str(value)
        {
            headers.insert(name, value);
        }
    }
    Ok(response)
}

pub(super) async fn delete_object(
    service: &S3Service,
    request: S3Request,
) -> Result<Response, S3Error> {
    let (bucket, key) = names(&request)?;
    service.existing_bucket(&bucket).await?;
    remove_object(service, &bucket, &key).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn remove_object(service: &S3Service, bucket: &str, key: &str) -> Result<(), S3Error> {
    if let Some(old) = service
        .meta
        .delete_object(bucket, key)
        .await
        .map_err(meta_unavailable)?
    {
        service
            .store
            .abandon(&old.placement, &old.segments, bucket, key, None, true)
            .await;
    }
    Ok(())
}

pub(super) async fn delete_objects(
    service: &S3Service,
    mut request: S3Request,
) -> Result<Response, S3Error> {
    let bucket = request
        .bucket
        .clone()
        .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidRequest, "no bucket"))?;
    service.existing_bucket(&bucket).await?;
    let body = request.small_body().await?;
    let delete = s3xml::parse_delete(&body)?;
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for (key, _version) in delete.objects {
        match remove_object(service, &bucket, &key).await {
            Ok(()) => deleted.push(key),
            Err(err) => errors.push((key, err.code, err.message)),
        }
    }
    Ok(xml(
        StatusCode::OK,
        s3xml::delete_result(&deleted, &errors, delete.quiet),
    ))
}

/// `x-amz-copy-source`: `[/]bucket/key[?versionId=..]`, percent-encoded.
pub(super) fn copy_source(request: &S3Request) -> Result<(String, String), S3Error> {
    let raw = request.header("x-amz-copy-source").unwrap_or("");
    let raw = raw.split_once('?').map_or(raw, |(path, _)| path);
    let decoded = percent_encoding::percent_decode_str(raw.trim_start_matches('/'))
        .decode_utf8()
        .map_err(|_| {
            S3Error::new(
                S3ErrorCode::InvalidArgument,
                "x-amz-copy-source is not valid UTF-8",
            )
        })?;
    match decoded.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => {
            if !request.key_config.may_use(bucket) {
                return Err(S3Error::new(
                    S3ErrorCode::AccessDenied,
                    "Access Denied: this access key may not read the copy source bucket",
                ));
            }
            Ok((bucket.to_owned(), key.to_owned()))
        }
        _ => Err(S3Error::new(
            S3ErrorCode::InvalidArgument,
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
        )),
    }
}

/// Copies `range` of `source` into a new segment under `placement`.
pub(super) async fn copy_data(
    service: &S3Service,
    source: &ObjectMeta,
    range: Range<u64>,
    placement: &Placement,
    bucket: &str,
    key: &str,
    upload_id: Option<&str>,
) -> Result<Written, S3Error> {
    let length = range.end - range.start;
    let stream = if length == 0 {
        futures::stream::empty().boxed()
    } else {
        service.store.read(source, range)
    };
    service
        .store
        .write(
            placement,
            bucket,
            key,
            upload_id,
            stream,
            Expectations {
                length: Some(length),
                ..Expectations::default()
            },
        )
        .await
}

pub(super) async fn copy_object(
    service: &S3Service,
    request: S3Request,
) -> Result<Response, S3Error> {
    let (bucket_name, key) = names(&request)?;
    let bucket: BucketMeta = service.existing_bucket(&bucket_name).await?;
    let (source_bucket, source_key) = copy_source(&request)?;
    let source = existing_object(service, &source_bucket, &source_key).await?;
    check_conditions(&request.headers, "x-amz-copy-source-", &source, false)?;
    let replace = match request.header("x-amz-metadata-directive") {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(other) => {
            return Err(S3Error::new(
                S3ErrorCode::InvalidArgument,
                format!("Unknown metadata directive {other:?}: COPY or REPLACE"),
            ));
        }
    };
    if source_bucket == bucket_name && source_key == key && !replace {
        return Err(S3Error::new(
            S3ErrorCode::InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    let headers = if replace {
        object_headers(&request.headers)?
    } else {
        source.headers.clone()
    };
    let placement = service.placement_of(&bucket).await?;
    let written = copy_data(
        service,
        &source,
        0..source.size,
        &placement,
        &bucket_name,
        &key,
        None,
    )
    .await?;
    let object = ObjectMeta {
        bucket: bucket_name,
        key,
        object_id: Uuid::new_v4(),
        size: written.segment.size,
        // A copy of a multipart object keeps its bytes, not its parts: a plain MD5 ETag.
        etag: hex::encode(written.md5),
        last_modified_ms: now_ms(),
        headers,
        placement,
        segments: vec![written.segment],
    };
    commit_object(service, &object).await?;
    Ok(xml(
        StatusCode::OK,
        s3xml::copy_object_result(&object.etag, object.last_modified_ms),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_7233_and_s3() {
        assert_eq!(parse_range(None, 10).unwrap(), None);
        assert_eq!(parse_range(Some("bytes=0-4"), 10).unwrap(), Some(0..5));
        assert_eq!(parse_range(Some("bytes=5-"), 10).unwrap(), Some(5..10));
        assert_eq!(parse_range(Some("bytes=8-100"), 10).unwrap(), Some(8..10));
        assert_eq!(parse_range(Some("bytes=-3"), 10).unwrap(), Some(7..10));
        assert_eq!(parse_range(Some("bytes=-30"), 10).unwrap(), Some(0..10));
        assert_eq!(
            parse_range(Some("bytes=10-"), 10).unwrap_err().code,
            S3ErrorCode::InvalidRange
        );
        assert_eq!(
            parse_range(Some("bytes=-0"), 10).unwrap_err().code,
            S3ErrorCode::InvalidRange
        );
        assert_eq!(
            parse_range(Some("bytes=0-"), 0).unwrap_err().code,
            S3ErrorCode::InvalidRange
        );
        // Ignorable: other units, syntax errors, several ranges.
        assert_eq!(parse_range(Some("items=0-1"), 10).unwrap(), None);
        assert_eq!(parse_range(Some("bytes=5-1"), 10).unwrap(), None);
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10).unwrap(), None);
        assert_eq!(parse_range(Some("bytes=x-1"), 10).unwrap(), None);
    }

    #[test]
    fn etag_lists_match_quoted_weak_and_star() {
        assert!(etag_matches("\"abc\"", "abc"));
        assert!(etag_matches("\"x\", W/\"abc\"", "abc"));
        assert!(etag_matches("*", "abc"));
        assert!(!etag_matches("\"abd\"", "abc"));
    }
}

//! Multipart uploads: create, upload part (and part copy), complete, abort, list parts, list
//! uploads. Each part is stored as its own segment; completion stitches the segments into the
//! object without moving data.

use std::collections::HashMap;

use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use md5::Digest;
use uuid::Uuid;

use super::object::{
    check_conditions, copy_data, copy_source, existing_object, names, object_headers, parse_range,
    quoted, store_body,
};
use super::{S3Request, S3Service, empty, meta_unavailable, xml};
use crate::meta::{ObjectMeta, Part, Upload};
use crate::objects::now_ms;
use crate::s3::xml::{self as s3xml, MAX_PART_NUMBER, PartEntry, UploadEntry};
use crate::s3::{S3Error, S3ErrorCode};

fn no_such_upload() -> S3Error {
    S3Error::new(
        S3ErrorCode::NoSuchUpload,
        "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed.",
    )
}

fn upload_id(request: &S3Request) -> Result<String, S3Error> {
    request
        .query("uploadId")
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .ok_or_else(no_such_upload)
}

async fn existing_upload(
    service: &S3Service,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<Upload, S3Error> {
    service.existing_bucket(bucket).await?;
    match service
        .meta
        .upload(bucket, upload_id)
        .await
        .map_err(meta_unavailable)?
    {
        Some(upload) if upload.key == key => Ok(upload),
        _ => Err(no_such_upload()),
    }
}

pub(super) async fn create(service: &S3Service, request: S3Request) -> Result<Response, S3Error> {
    let (bucket_name, key) = names(&request)?;
    let bucket = service.existing_bucket(&bucket_name).await?;
    let upload = Upload {
        upload_id: Uuid::new_v4().simple().to_string(),
        bucket: bucket_name,
        key,
        initiated_ms: now_ms(),
        owner: request.auth.access_key.clone(),
        headers: object_headers(&request.headers)?,
        placement: service.placement_of(&bucket).await?,
    };
    service
        .meta
        .create_upload(&upload)
        .await
        .map_err(meta_unavailable)?;
    Ok(xml(
        StatusCode::OK,
        s3xml::initiate_multipart_upload(&upload.bucket, &upload.key, &upload.upload_id),
    ))
}

fn part_number(request: &S3Request) -> Result<u32, S3Error> {
    request
        .query("partNumber")
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| (1..=MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| {
            S3Error::new(
                S3ErrorCode::InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive",
            )
        })
}

/// UploadPart and UploadPartCopy.
pub(super) async fn upload_part(
    service: &S3Service,
    mut request: S3Request,
) -> Result<Response, S3Error> {
    let (bucket, key) = names(&request)?;
    let upload_id = upload_id(&request)?;
    let number = part_number(&request)?;
    let upload = existing_upload(service, &bucket, &key, &upload_id).await?;
    let copy = request.headers.contains_key("x-amz-copy-source");
    let written = if copy {
        let (source_bucket, source_key) = copy_source(&request)?;
        let source = existing_object(service, &source_bucket, &source_key).await?;
        check_conditions(&request.headers, "x-amz-copy-source-", &source, false)?;
        let range = match request.header("x-amz-copy-source-range") {
            Some(text) => match parse_range(Some(text), source.size) {
                Ok(Some(range)) => range,
                Ok(None) | Err(_) => {
                    return Err(S3Error::new(
                        S3ErrorCode::InvalidArgument,
                        format!(
                            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy (source size {})",
                            source.size
                        ),
                    ));
                }
            },
            None => 0..source.size,
        };
        if range.end - range.start > service.max_put_bytes {
            return Err(S3Error::new(
                S3ErrorCode::EntityTooLarge,
                "the part is larger than the largest part allowed",
            ));
        }
        copy_data(
            service,
            &source,
            range,
            &upload.placement,
            &bucket,
            &key,
            Some(&upload_id),
        )
        .await?
    } else {
        store_body(
            service,
            &mut request,
            &upload.placement,
            &bucket,
            &key,
            Some(&upload_id),
        )
        .await?
    };
    let part = Part {
        number,
        data_id: written.segment.data_id,
        size: written.segment.size,
        wrapped_key: written.segment.wrapped_key.clone(),
        etag: hex::encode(written.md5),
        last_modified_ms: now_ms(),
    };
    let replaced = match service.meta.put_part(&upload_id, &part).await {
        Ok(replaced) => replaced,
        Err(err) => {
            service
                .store
                .abandon(
                    &upload.placement,
                    &[written.segment],
                    &bucket,
                    &key,
                    Some(&upload_id),
                    false,
                )
                .await;
            return Err(meta_unavailable(err));
        }
    };
    service.store.committed(part.data_id).await;
    if let Some(old) = replaced {
        service
            .store
            .abandon(
                &upload.placement,
                &[segment_of(&old)],
                &bucket,
                &key,
                Some(&upload_id),
                true,
            )
            .await;
    }
    // An abort that raced with this part: the part goes with the upload.
    if service
        .meta
        .upload(&bucket, &upload_id)
        .await
        .map_err(meta_unavailable)?
        .is_none()
    {
        service
            .store
            .abandon(
                &upload.placement,
                &[segment_of(&part)],
                &bucket,
                &key,
                None,
                false,
            )
            .await;
        return Err(no_such_upload());
    }
    if copy {
        return Ok(xml(
            StatusCode::OK,
            s3xml::copy_part_result(&part.etag, part.last_modified_ms),
        ));
    }
    let mut response = empty(StatusCode::OK);
    if let Ok(value) = HeaderValue::from_str(&quoted(&part.etag)) {
        response.headers_mut().insert(header::ETAG, value);
    }
    super::object::echo_checksum(&request, &mut response);
    Ok(response)
}

fn segment_of(part: &Part) -> crate::meta::Segment {
    crate::meta::Segment {
        data_id: part.data_id,
        size: part.size,
        wrapped_key: part.wrapped_key.clone(),
    }
}

pub(super) async fn complete(
    service: &S3Service,
    mut request: S3Request,
) -> Result<Response, S3Error> {
    let (bucket, key) = names(&request)?;
    let upload_id = upload_id(&request)?;
    let upload = existing_upload(service, &bucket, &key, &upload_id).await?;
    let body = request.small_body().await?;
    let requested = s3xml::parse_complete_multipart(&body)?;
    let stored: HashMap<u32, Part> = service
        .meta
        .parts(&upload_id)
        .await
        .map_err(meta_unavailable)?
        .into_iter()
        .map(|part| (part.number, part))
        .collect();
    let mut chosen = Vec::with_capacity(requested.len());
    for (position, wanted) in requested.iter().enumerate() {
        let part = stored
            .get(&wanted.part_number)
            .filter(|part| part.etag == wanted.etag)
            .ok_or_else(|| {
                S3Error::new(
                    S3ErrorCode::InvalidPart,
                    format!(
                        "One or more of the specified parts could not be found: part {} with ETag {:?} was not uploaded, or its ETag differs",
                        wanted.part_number, wanted.etag
                    ),
                )
            })?;
        if position + 1 < requested.len() && part.size < service.min_part_bytes {
            return Err(S3Error::new(
                S3ErrorCode::EntityTooSmall,
                format!(
                    "Your proposed upload is smaller than the minimum allowed object size: part {} has {} bytes, every part but the last needs {}",
                    part.number, part.size, service.min_part_bytes
                ),
            ));
        }
        chosen.push(part.clone());
    }
    let mut digest = md5::Md5::new();
    for part in &chosen {
        // Part ETags are the MD5 hex this gateway wrote.
        digest.update(hex::decode(&part.etag).unwrap_or_default());
    }
    let etag = format!("{}-{}", hex::encode(digest.finalize()), chosen.len());
    let object = ObjectMeta {
        bucket: bucket.clone(),
        key: key.clone(),
        object_id: Uuid::new_v4(),
        size: chosen.iter().map(|part| part.size).sum(),
        etag: etag.clone(),
        last_modified_ms: now_ms(),
        headers: upload.headers.clone(),
        placement: upload.placement.clone(),
        segments: chosen.iter().map(segment_of).collect(),
    };
    let replaced = service
        .meta
        .put_object(&object)
        .await
        .map_err(meta_unavailable)?;
    service
        .meta
        .delete_upload(&bucket, &upload_id)
        .await
        .map_err(meta_unavailable)?;
    let used: Vec<u32> = chosen.iter().map(|part| part.number).collect();
    let unused: Vec<_> = stored
        .values()
        .filter(|part| !used.contains(&part.number))
        .map(segment_of)
        .collect();
    service
        .store
        .abandon(&upload.placement, &unused, &bucket, &key, None, false)
        .await;
    if let Some(old) = replaced {
        service
            .store
            .abandon(&old.placement, &old.segments, &bucket, &key, None, true)
            .await;
    }
    let location = format!("/{bucket}/{key}");
    Ok(xml(
        StatusCode::OK,
        s3xml::complete_multipart_upload(&location, &bucket, &key, &etag),
    ))
}

/// Removes an upload and reclaims all its parts.
pub(super) async fn discard_upload(service: &S3Service, upload: &Upload) -> Result<(), S3Error> {
    let parts = service
        .meta
        .parts(&upload.upload_id)
        .await
        .map_err(meta_unavailable)?;
    service
        .meta
        .delete_upload(&upload.bucket, &upload.upload_id)
        .await
        .map_err(meta_unavailable)?;
    let segments: Vec<_> = parts.iter().map(segment_of).collect();
    service
        .store
        .abandon(
            &upload.placement,
            &segments,
            &upload.bucket,
            &upload.key,
            None,
            false,
        )
        .await;
    Ok(())
}

pub(super) async fn abort(service: &S3Service, request: S3Request) -> Result<Response, S3Error> {
    let (bucket, key) = names(&request)?;
    let upload_id = upload_id(&request)?;
    let upload = existing_upload(service, &bucket, &key, &upload_id).await?;
    discard_upload(service, &upload).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

fn bounded_number(request: &S3Request, name: &str, default: usize) -> Result<usize, S3Error> {
    match request.query(name) {
        None => Ok(default),
        Some(text) => text.parse::<usize>().map(|n| n.min(default)).map_err(|_| {
            S3Error::new(
                S3ErrorCode::InvalidArgument,
                format!("{name} must be a non-negative integer"),
            )
        }),
    }
}

pub(super) async fn list_parts(
    service: &S3Service,
    request: S3Request,
) -> Result<Response, S3Error> {
    let (bucket, key) = names(&request)?;
    let upload_id = upload_id(&request)?;
    existing_upload(service, &bucket, &key, &upload_id).await?;
    let max_parts = bounded_number(&request, "max-parts", 1000)?;
    let marker: u32 = match request.query("part-number-marker") {
        None | Some("") => 0,
        Some(text) => text.parse().map_err(|_| {
            S3Error::new(
                S3ErrorCode::InvalidArgument,
                "part-number-marker must be an integer",
            )
        })?,
    };
    let parts = service
        .meta
        .parts(&upload_id)
        .await
        .map_err(meta_unavailable)?;
    let after: Vec<&Part> = parts.iter().filter(|p| p.number > marker).collect();
    let is_truncated = after.len() > max_parts;
    let entries: Vec<PartEntry> = after
        .into_iter()
        .take(max_parts)
        .map(|part| PartEntry {
            part_number: part.number,
            last_modified_ms: part.last_modified_ms,
            etag: part.etag.clone(),
            size: part.size,
        })
        .collect();
    let owner = service.owner();
    let body = s3xml::ListPartsBody {
        bucket: &bucket,
        key: &key,
        upload_id: &upload_id,
        owner: &owner,
        part_number_marker: marker,
        next_part_number_marker: entries.last().map_or(0, |p| p.part_number),
        max_parts,
        is_truncated,
        parts: &entries,
    };
    Ok(xml(StatusCode::OK, s3xml::list_parts(&body)))
}

pub(super) async fn list_uploads(
    service: &S3Service,
    request: S3Request,
) -> Result<Response, S3Error> {
    let bucket = request
        .bucket
        .clone()
        .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidRequest, "no bucket"))?;
    service.existing_bucket(&bucket).await?;
    let max_uploads = bounded_number(&request, "max-uploads", 1000)?;
    let prefix = request.query("prefix").unwrap_or("").to_owned();
    let delimiter = request
        .query("delimiter")
        .filter(|d| !d.is_empty())
        .map(str::to_owned);
    let key_marker = request.query("key-marker").unwrap_or("").to_owned();
    let upload_id_marker = request.query("upload-id-marker").unwrap_or("").to_owned();
    let encoding_url = request.query("encoding-type") == Some("url");
    let uploads = service
        .meta
        .uploads(&bucket)
        .await
        .map_err(meta_unavailable)?;
    let mut entries = Vec::new();
    let mut prefixes: Vec<String> = Vec::new();
    let mut is_truncated = false;
    let mut next_key = String::new();
    let mut next_id = String::new();
    for upload in uploads {
        if !upload.key.starts_with(&prefix) {
            continue;
        }
        // After the marker: keys greater than key-marker, or equal with a later upload id.
        if !key_marker.is_empty() {
            let after = upload.key.as_str() > key_marker.as_str()
                || (upload.key == key_marker
                    && !upload_id_marker.is_empty()
                    && upload.upload_id.as_str() > upload_id_marker.as_str());
            if !after {
                continue;
            }
        }
        let rolled = delimiter.as_deref().and_then(|d| {
            upload.key[prefix.len()..]
                .find(d)
                .map(|at| upload.key[..prefix.len() + at + d.len()].to_owned())
        });
        if let Some(common) = &rolled
            && prefixes.last() == Some(common)
        {
            continue;
        }
        if entries.len() + prefixes.len() >= max_uploads {
            is_truncated = true;
            break;
        }
        match rolled {
            Some(common) => {
                next_key = common.clone();
                next_id.clear();
                prefixes.push(common);
            }
            None => {
                next_key = upload.key.clone();
                next_id = upload.upload_id.clone();
                entries.push(UploadEntry {
                    key: upload.key,
                    upload_id: upload.upload_id,
                    initiated_ms: upload.initiated_ms,
                });
            }
        }
    }
    let owner = service.owner();
    let body = s3xml::ListUploadsBody {
        bucket: &bucket,
        owner: &owner,
        key_marker: &key_marker,
        upload_id_marker: &upload_id_marker,
        next_key_marker: &next_key,
        next_upload_id_marker: &next_id,
        prefix: &prefix,
        delimiter: delimiter.as_deref(),
        max_uploads,
        is_truncated,
        encoding_url,
        uploads: &entries,
        common_prefixes: &prefixes,
    };
    Ok(xml(StatusCode::OK, s3xml::list_multipart_uploads(&body)))
}

/// Aborts every upload initiated before `cutoff_ms` (abandoned uploads); returns how many.
pub async fn expire_uploads(service: &S3Service, cutoff_ms: i64) -> Result<u64, S3Error> {
    let mut expired = 0;
    for bucket in service.meta.buckets().await.map_err(meta_unavailable)? {
        for upload in service
            .meta
            .uploads(&bucket.name)
            .await
            .map_err(meta_unavailable)?
        {
            if upload.initiated_ms < cutoff_ms {
                discard_upload(service, &upload).await?;
                expired += 1;
            }
        }
    }
    Ok(expired)
}

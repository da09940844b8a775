//! Bucket operations and object listings.

use axum::response::Response;
use http::StatusCode;

use super::{S3Request, S3Service, empty, meta_unavailable, valid_bucket_name, xml};
use crate::meta::{BucketMeta, Created};
use crate::objects::now_ms;
use crate::s3::xml::{self as s3xml, ListWalker, ObjectEntry, WalkStep};
use crate::s3::{S3Error, S3ErrorCode};

fn bucket_name(request: &S3Request) -> Result<&str, S3Error> {
    request
        .bucket
        .as_deref()
        .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidRequest, "no bucket in the request"))
}

pub(super) async fn list_buckets(
    service: &S3Service,
    request: S3Request,
) -> Result<Response, S3Error> {
    let buckets = service.meta.buckets().await.map_err(meta_unavailable)?;
    let visible: Vec<(String, i64)> = buckets
        .into_iter()
        .filter(|bucket| request.key_config.may_use(&bucket.name))
        .map(|bucket| (bucket.name, bucket.created_ms))
        .collect();
    Ok(xml(
        StatusCode::OK,
        s3xml::list_buckets(&service.owner(), &visible),
    ))
}

/// CreateBucket: the `LocationConstraint` names the storage policy (D6.7 4.10.1); none, or
/// the region the request was signed for (what aws-cli sends outside us-east-1), selects the
/// default policy.
pub(super) async fn create_bucket(
    service: &S3Service,
    mut request: S3Request,
) -> Result<Response, S3Error> {
    let name = bucket_name(&request)?.to_owned();
    if !valid_bucket_name(&name) {
        return Err(S3Error::new(
            S3ErrorCode::InvalidBucketName,
            "The specified bucket is not valid: 3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit",
        ));
    }
    let body = request.small_body().await?;
    let constraint = s3xml::parse_create_bucket(&body)?;
    let policy = match constraint {
        None => service.policies.default_policy(),
        Some(name) => match service.policies.placement(&name).await {
            Ok(Some(_)) => name,
            Ok(None) if name == request.auth.region => service.policies.default_policy(),
            Ok(None) => {
                return Err(S3Error::new(
                    S3ErrorCode::InvalidLocationConstraint,
                    format!(
                        "The LocationConstraint {name:?} is not a storage policy of this gateway"
                    ),
                ));
            }
            Err(err) => return Err(S3Error::new(S3ErrorCode::ServiceUnavailable, err)),
        },
    };
    let bucket = BucketMeta {
        name: name.clone(),
        created_ms: now_ms(),
        policy,
        owner: request.auth.access_key.clone(),
    };
    match service
        .meta
        .create_bucket(&bucket)
        .await
        .map_err(meta_unavailable)?
    {
        Created::Yes => {
            let mut response = empty(StatusCode::OK);
            if let Ok(value) = http::HeaderValue::from_str(&format!("/{name}")) {
                response.headers_mut().insert(http::header::LOCATION, value);
            }
            Ok(response)
        }
        Created::Exists(existing) if existing.owner == request.auth.access_key => {
            Err(S3Error::new(
                S3ErrorCode::BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already own it.",
            ))
        }
        Created::Exists(_) => Err(S3Error::new(
            S3ErrorCode::BucketAlreadyExists,
            "The requested bucket name is not available.",
        )),
    }
}

pub(super) async fn head_bucket(
    service: &S3Service,
    request: S3Request,
) -> Result<Response, S3Error> {
    service.existing_bucket(bucket_name(&request)?).await?;
    let mut response = empty(StatusCode::OK);
    response.headers_mut().insert(
        "x-amz-bucket-region",
        http::HeaderValue::from_str(&request.auth.region)
            .unwrap_or(http::HeaderValue::from_static("us-east-1")),
    );
    Ok(response)
}

pub(super) async fn delete_bucket(
    service: &S3Service,
    request: S3Request,
) -> Result<Response, S3Error> {
    let name = bucket_name(&request)?;
    service.existing_bucket(name).await?;
    if !service
        .meta
        .scan_objects(name, "", 1)
        .await
        .map_err(meta_unavailable)?
        .is_empty()
    {
        return Err(S3Error::new(
            S3ErrorCode::BucketNotEmpty,
            "The bucket you tried to delete is not empty",
        ));
    }
    // Uploads in progress die with their bucket (their parts are reclaimed).
    for upload in service.meta.uploads(name).await.map_err(meta_unavailable)? {
        super::multipart::discard_upload(service, &upload).await?;
    }
    if !service
        .meta
        .delete_bucket(name)
        .await
        .map_err(meta_unavailable)?
    {
        return Err(S3Error::new(
            S3ErrorCode::BucketNotEmpty,
            "The bucket you tried to delete is not empty",
        ));
    }
    Ok(empty(StatusCode::NO_CONTENT))
}

/// The bucket's storage policy name (empty for the default policy, which is what clients
/// expect of a bucket in the default region).
pub(super) async fn get_location(
    service: &S3Service,
    request: S3Request,
) -> Result<Response, S3Error> {
    let bucket = service.existing_bucket(bucket_name(&request)?).await?;
    let location = (bucket.policy != service.policies.default_policy()).then_some(bucket.policy);
    Ok(xml(
        StatusCode::OK,
        s3xml::location_constraint(location.as_deref()),
    ))
}

/// Versioning is never enabled: the empty configuration AWS returns for such buckets.
pub(super) async fn get_versioning(
    service: &S3Service,
    request: S3Request,
) -> Result<Response, S3Error> {
    service.existing_bucket(bucket_name(&request)?).await?;
    Ok(xml(
        StatusCode::OK,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<VersioningConfiguration xmlns=\"{}\"/>",
            s3xml::S3_NAMESPACE
        ),
    ))
}

/// ListObjects (v1) and ListObjectsV2: walks the sorted object index from the start point,
/// seeking past every rolled-up common prefix instead of reading its keys.
pub(super) async fn list_objects(
    service: &S3Service,
    request: S3Request,
) -> Result<Response, S3Error> {
    let name = bucket_name(&request)?;
    service.existing_bucket(name).await?;
    let list = s3xml::list_request(name, &request.query)?;
    let mut walker = ListWalker::new(&list);
    let (start, _) = walker.start();
    let mut cursor = start.to_owned();
    'scan: while !walker.is_done() {
        let batch = service
            .meta
            .scan_objects(name, &cursor, 1000)
            .await
            .map_err(meta_unavailable)?;
        let Some(last) = batch.last() else {
            break;
        };
        let next_cursor = format!("{}\0", last.key);
        for object in batch {
            let step = walker.push(ObjectEntry {
                key: object.key,
                size: object.size,
                etag: object.etag,
                last_modified_ms: object.last_modified_ms,
            });
            match step {
                WalkStep::Next => {}
                WalkStep::SeekTo(bound) => {
                    cursor = bound;
                    continue 'scan;
                }
                WalkStep::Done => break 'scan,
            }
        }
        cursor = next_cursor;
    }
    let page = walker.finish();
    Ok(xml(
        StatusCode::OK,
        s3xml::list_objects(&page, &list, &service.owner()),
    ))
}

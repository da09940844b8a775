//! The S3 API through the official AWS SDK for Rust: buckets, objects, ranges, conditions,
//! copies, listings, multipart uploads, presigned URLs, authentication errors, and the data
//! path underneath (fragments on the locations, degraded reads, repair, reclaiming).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, CreateBucketConfiguration, Delete, MetadataDirective,
    ObjectIdentifier,
};
use common::{ADMIN, SCOPED, TestGateway, code, data, files_under, get_bytes};

#[tokio::test]
async fn bucket_life_cycle_and_policies() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    s3.create_bucket().bucket("data").send().await.unwrap();
    // The same name again, by its owner.
    let err = s3.create_bucket().bucket("data").send().await.unwrap_err();
    assert_eq!(code(&err), "BucketAlreadyOwnedByYou");
    // Another key cannot take it either.
    let scoped = gw.client_with(SCOPED, &gw.url);
    let err = scoped.create_bucket().bucket("team-x").send().await;
    assert!(err.is_ok());
    let err = scoped
        .create_bucket()
        .bucket("data")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDenied");

    // LocationConstraint names a storage policy.
    let with_policy = |name: &str| {
        CreateBucketConfiguration::builder()
            .location_constraint(name.into())
            .build()
    };
    let err = s3
        .create_bucket()
        .bucket("unknown-policy")
        .create_bucket_configuration(with_policy("no-such-policy"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidLocationConstraint");
    s3.create_bucket()
        .bucket("explicit")
        .create_bucket_configuration(with_policy("default"))
        .send()
        .await
        .unwrap();
    let err = s3
        .create_bucket()
        .bucket("Bad_Name")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidBucketName");

    s3.head_bucket().bucket("data").send().await.unwrap();
    let err = s3.head_bucket().bucket("missing").send().await.unwrap_err();
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 404);

    let names: Vec<String> = s3
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_owned))
        .collect();
    assert_eq!(names, vec!["data", "explicit", "team-x"]);
    // A scoped key sees only its buckets.
    let names: Vec<String> = scoped
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_owned))
        .collect();
    assert_eq!(names, vec!["team-x"]);

    let location = s3
        .get_bucket_location()
        .bucket("data")
        .send()
        .await
        .unwrap();
    assert!(
        location
            .location_constraint()
            .is_none_or(|c| c.as_str().is_empty())
    );

    s3.put_object()
        .bucket("data")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let err = s3.delete_bucket().bucket("data").send().await.unwrap_err();
    assert_eq!(code(&err), "BucketNotEmpty");
    s3.delete_object()
        .bucket("data")
        .key("k")
        .send()
        .await
        .unwrap();
    s3.delete_bucket().bucket("data").send().await.unwrap();
    let err = s3.head_bucket().bucket("data").send().await.unwrap_err();
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 404);
    let err = s3
        .list_objects_v2()
        .bucket("data")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NoSuchBucket");

    // The bucket's policy through the JSON API.
    let http = reqwest_get(&format!("{}/storage_policy/explicit", gw.url)).await;
    assert_eq!(http.0, 200, "{}", http.1);
    assert!(http.1.contains("\"name\":\"default\""), "{}", http.1);
}

async fn reqwest_get(url: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(common::TOKEN)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn objects_round_trip_with_metadata_ranges_and_conditions() {
    let gw = TestGateway::start().await;
    let s3 = gw.client_s3_prefix();
    s3.create_bucket().bucket("objects").send().await.unwrap();
    // Several stripes (64 KiB in tests) and a partial last one.
    let body = data(300_000, 7);
    let put = s3
        .put_object()
        .bucket("objects")
        .key("dir/ü nicode %41+.bin")
        .body(ByteStream::from(body.clone()))
        .content_type("application/x-test")
        .content_disposition("attachment; filename=\"a.bin\"")
        .cache_control("max-age=60")
        .content_encoding("identity")
        .metadata("owner", "uvt")
        .metadata("Project", "serrano")
        .send()
        .await
        .unwrap();
    let md5 = format!("\"{}\"", md5_of(&body));
    assert_eq!(put.e_tag(), Some(md5.as_str()));

    let got = s3
        .get_object()
        .bucket("objects")
        .key("dir/ü nicode %41+.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("application/x-test"));
    assert_eq!(got.cache_control(), Some("max-age=60"));
    assert_eq!(got.content_encoding(), Some("identity"));
    assert_eq!(
        got.content_disposition(),
        Some("attachment; filename=\"a.bin\"")
    );
    assert_eq!(got.e_tag(), Some(md5.as_str()));
    let metadata = got.metadata().unwrap();
    assert_eq!(metadata.get("owner").map(String::as_str), Some("uvt"));
    assert_eq!(metadata.get("project").map(String::as_str), Some("serrano"));
    let bytes = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(bytes.as_ref(), body.as_slice());

    // Ranges: inside one stripe, across stripes, suffix, open, unsatisfiable.
    for (range, expected) in [
        ("bytes=0-9", &body[0..10]),
        ("bytes=65530-131080", &body[65530..131081]),
        ("bytes=-1000", &body[299_000..]),
        ("bytes=299990-", &body[299_990..]),
        ("bytes=299990-999999", &body[299_990..]),
    ] {
        let got = s3
            .get_object()
            .bucket("objects")
            .key("dir/ü nicode %41+.bin")
            .range(range)
            .send()
            .await
            .unwrap();
        assert!(got.content_range().unwrap().ends_with("/300000"));
        let bytes = got.body.collect().await.unwrap().into_bytes();
        assert_eq!(bytes.as_ref(), expected, "{range}");
    }
    let err = s3
        .get_object()
        .bucket("objects")
        .key("dir/ü nicode %41+.bin")
        .range("bytes=300000-")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidRange");

    // Conditions.
    let err = s3
        .get_object()
        .bucket("objects")
        .key("dir/ü nicode %41+.bin")
        .if_match("\"0000\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 412);
    let err = s3
        .get_object()
        .bucket("objects")
        .key("dir/ü nicode %41+.bin")
        .if_none_match(&md5)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 304);
    s3.get_object()
        .bucket("objects")
        .key("dir/ü nicode %41+.bin")
        .if_match(&md5)
        .send()
        .await
        .unwrap();
    let past = aws_sdk_s3::primitives::DateTime::from_secs(1_000_000_000);
    let err = s3
        .get_object()
        .bucket("objects")
        .key("dir/ü nicode %41+.bin")
        .if_unmodified_since(past)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 412);
    let future = aws_sdk_s3::primitives::DateTime::from_secs(4_000_000_000);
    let err = s3
        .head_object()
        .bucket("objects")
        .key("dir/ü nicode %41+.bin")
        .if_modified_since(future)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 304);

    // Head, zero bytes, overwrite, missing keys, Content-MD5.
    let head = s3
        .head_object()
        .bucket("objects")
        .key("dir/ü nicode %41+.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(300_000));
    s3.put_object()
        .bucket("objects")
        .key("empty")
        .body(ByteStream::from_static(b""))
        .send()
        .await
        .unwrap();
    assert!(get_bytes(&s3, "objects", "empty").await.is_empty());
    s3.put_object()
        .bucket("objects")
        .key("empty")
        .body(ByteStream::from_static(b"now full"))
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&s3, "objects", "empty").await, b"now full");
    let err = s3
        .get_object()
        .bucket("objects")
        .key("missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NoSuchKey");
    let err = s3
        .put_object()
        .bucket("objects")
        .key("md5")
        .content_md5("1B2M2Y8AsgTpgAmY7PhCfg==") // MD5 of nothing
        .body(ByteStream::from_static(b"something"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "BadDigest");
    let err = s3
        .get_object()
        .bucket("objects")
        .key("md5")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NoSuchKey");
    let err = s3
        .put_object()
        .bucket("objects")
        .key("empty")
        .if_none_match("*")
        .body(ByteStream::from_static(b"again"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 412);

    // Delete: the object goes, deleting again is fine.
    s3.delete_object()
        .bucket("objects")
        .key("empty")
        .send()
        .await
        .unwrap();
    s3.delete_object()
        .bucket("objects")
        .key("empty")
        .send()
        .await
        .unwrap();
    let deleted = s3
        .delete_objects()
        .bucket("objects")
        .delete(
            Delete::builder()
                .objects(
                    ObjectIdentifier::builder()
                        .key("dir/ü nicode %41+.bin")
                        .build()
                        .unwrap(),
                )
                .objects(ObjectIdentifier::builder().key("never").build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.deleted().len(), 2);
    assert!(deleted.errors().is_empty());
    let listed = s3.list_objects_v2().bucket("objects").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(0));

    // Deleted and replaced objects leave no fragments once reclaimed.
    gw.gateway.store.reclaim_pass().await.unwrap();
    for id in 1..=4 {
        assert_eq!(
            files_under(&gw.edge_dir(id)),
            Vec::<std::path::PathBuf>::new()
        );
    }
}

fn md5_of(bytes: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn copies_keep_or_replace_metadata() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    s3.create_bucket().bucket("src").send().await.unwrap();
    s3.create_bucket().bucket("dst").send().await.unwrap();
    let body = data(150_000, 3);
    s3.put_object()
        .bucket("src")
        .key("a b")
        .content_type("text/x-a")
        .metadata("k", "v")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    s3.copy_object()
        .bucket("dst")
        .key("copy")
        .copy_source("src/a%20b")
        .send()
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket("dst")
        .key("copy")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/x-a"));
    assert_eq!(
        head.metadata().unwrap().get("k").map(String::as_str),
        Some("v")
    );
    assert_eq!(get_bytes(&s3, "dst", "copy").await, body);

    s3.copy_object()
        .bucket("dst")
        .key("replaced")
        .copy_source("src/a%20b")
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/x-b")
        .metadata("new", "1")
        .send()
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket("dst")
        .key("replaced")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/x-b"));
    let metadata = head.metadata().unwrap();
    assert_eq!(metadata.get("new").map(String::as_str), Some("1"));
    assert!(!metadata.contains_key("k"));

    let err = s3
        .copy_object()
        .bucket("src")
        .key("a b")
        .copy_source("src/a%20b")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidRequest");
    let err = s3
        .copy_object()
        .bucket("dst")
        .key("x")
        .copy_source("src/missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NoSuchKey");
}

#[tokio::test]
async fn listings_v1_and_v2_with_prefixes_delimiters_and_pages() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    s3.create_bucket().bucket("list").send().await.unwrap();
    let keys = [
        "a/1", "a/2", "a/b/3", "b", "c/1", "c/2", "d", "e f", "%20", "ü",
    ];
    for key in keys {
        s3.put_object()
            .bucket("list")
            .key(key)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
    }
    let all = s3.list_objects_v2().bucket("list").send().await.unwrap();
    let mut sorted: Vec<&str> = keys.to_vec();
    sorted.sort();
    assert_eq!(
        all.contents()
            .iter()
            .filter_map(|o| o.key())
            .collect::<Vec<_>>(),
        sorted
    );

    let delimited = s3
        .list_objects_v2()
        .bucket("list")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(
        delimited
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix())
            .collect::<Vec<_>>(),
        vec!["a/", "c/"]
    );
    assert_eq!(
        delimited
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .collect::<Vec<_>>(),
        vec!["%20", "b", "d", "e f", "ü"]
    );
    let nested = s3
        .list_objects_v2()
        .bucket("list")
        .prefix("a/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(
        nested
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .collect::<Vec<_>>(),
        vec!["a/1", "a/2"]
    );
    assert_eq!(nested.common_prefixes()[0].prefix(), Some("a/b/"));

    // Pages of 3 with continuation tokens visit every key once, in order.
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket("list")
            .max_keys(3)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap();
        seen.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        if page.is_truncated() != Some(true) {
            break;
        }
        token = page.next_continuation_token().map(str::to_owned);
    }
    assert_eq!(seen, sorted);
    let after = s3
        .list_objects_v2()
        .bucket("list")
        .start_after("c/1")
        .send()
        .await
        .unwrap();
    assert_eq!(after.contents()[0].key(), Some("c/2"));

    // v1 with marker and delimiter pages.
    let v1 = s3
        .list_objects()
        .bucket("list")
        .delimiter("/")
        .max_keys(2)
        .send()
        .await
        .unwrap();
    assert_eq!(v1.is_truncated(), Some(true));
    let next = v1.next_marker().unwrap().to_owned();
    let v1 = s3
        .list_objects()
        .bucket("list")
        .delimiter("/")
        .marker(next)
        .send()
        .await
        .unwrap();
    assert!(
        v1.contents().iter().all(|o| o.key() != Some("%20")),
        "the marker is honoured"
    );
    // encoding-type=url: the SDK decodes keys itself.
    let encoded = s3
        .list_objects_v2()
        .bucket("list")
        .prefix("e")
        .encoding_type(aws_sdk_s3::types::EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(encoded.contents()[0].key(), Some("e%20f"));
}

#[tokio::test]
async fn multipart_uploads_complete_abort_and_validate() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let part1 = data(5 << 20, 1);
    let part2 = data(5 << 20, 2);
    let part3 = data(1234, 3);
    let upload = s3
        .create_multipart_upload()
        .bucket("mpu")
        .key("big")
        .content_type("application/x-big")
        .metadata("kind", "multipart")
        .send()
        .await
        .unwrap();
    let id = upload.upload_id().unwrap().to_owned();
    let mut etags = Vec::new();
    for (number, body) in [(1, &part1), (2, &part2), (3, &part3)] {
        let out = s3
            .upload_part()
            .bucket("mpu")
            .key("big")
            .upload_id(&id)
            .part_number(number)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        etags.push(out.e_tag().unwrap().to_owned());
    }
    // Part 2 again replaces the first version.
    let out = s3
        .upload_part()
        .bucket("mpu")
        .key("big")
        .upload_id(&id)
        .part_number(2)
        .body(ByteStream::from(part2.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(out.e_tag(), Some(etags[1].as_str()));

    let parts = s3
        .list_parts()
        .bucket("mpu")
        .key("big")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        parts
            .parts()
            .iter()
            .map(|p| (p.part_number().unwrap(), p.size().unwrap()))
            .collect::<Vec<_>>(),
        vec![(1, 5 << 20), (2, 5 << 20), (3, 1234)]
    );
    let uploads = s3
        .list_multipart_uploads()
        .bucket("mpu")
        .send()
        .await
        .unwrap();
    assert_eq!(uploads.uploads().len(), 1);
    assert_eq!(uploads.uploads()[0].upload_id(), Some(id.as_str()));

    let part = |n: i32, etag: &str| CompletedPart::builder().part_number(n).e_tag(etag).build();
    // A wrong ETag and an unknown part are InvalidPart; out of order is InvalidPartOrder.
    let err = s3
        .complete_multipart_upload()
        .bucket("mpu")
        .key("big")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(part(1, "\"00000000000000000000000000000000\""))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidPart");
    let err = s3
        .complete_multipart_upload()
        .bucket("mpu")
        .key("big")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(part(2, &etags[1]))
                .parts(part(1, &etags[0]))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidPartOrder");
    // A small part that is not last: EntityTooSmall.
    let err = s3
        .complete_multipart_upload()
        .bucket("mpu")
        .key("big")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(part(3, &etags[2]))
                .parts(part(4, &etags[2]))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(
        ["EntityTooSmall", "InvalidPart"].contains(&code(&err).as_str()),
        "{}",
        code(&err)
    );

    let done = s3
        .complete_multipart_upload()
        .bucket("mpu")
        .key("big")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(part(1, &etags[0]))
                .parts(part(2, &etags[1]))
                .parts(part(3, &etags[2]))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(
        done.e_tag().unwrap().ends_with("-3\""),
        "{:?}",
        done.e_tag()
    );
    let mut whole = part1.clone();
    whole.extend_from_slice(&part2);
    whole.extend_from_slice(&part3);
    let got = s3
        .get_object()
        .bucket("mpu")
        .key("big")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("application/x-big"));
    assert_eq!(got.e_tag(), done.e_tag());
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        whole.as_slice()
    );
    // A range across the part boundary.
    let got = s3
        .get_object()
        .bucket("mpu")
        .key("big")
        .range(format!("bytes={}-{}", (5 << 20) - 10, (5 << 20) + 9))
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        &whole[(5 << 20) - 10..(5 << 20) + 10]
    );
    let err = s3
        .list_parts()
        .bucket("mpu")
        .key("big")
        .upload_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NoSuchUpload");

    // Upload part copy from a range of the finished object, then abort.
    let upload = s3
        .create_multipart_upload()
        .bucket("mpu")
        .key("copy")
        .send()
        .await
        .unwrap();
    let id2 = upload.upload_id().unwrap().to_owned();
    let copied = s3
        .upload_part_copy()
        .bucket("mpu")
        .key("copy")
        .upload_id(&id2)
        .part_number(1)
        .copy_source("mpu/big")
        .copy_source_range("bytes=100-199")
        .send()
        .await
        .unwrap();
    assert!(copied.copy_part_result().unwrap().e_tag().is_some());
    let done = s3
        .complete_multipart_upload()
        .bucket("mpu")
        .key("copy")
        .upload_id(&id2)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(part(1, copied.copy_part_result().unwrap().e_tag().unwrap()))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(done.e_tag().unwrap().ends_with("-1\""));
    assert_eq!(get_bytes(&s3, "mpu", "copy").await, &whole[100..200]);

    let upload = s3
        .create_multipart_upload()
        .bucket("mpu")
        .key("aborted")
        .send()
        .await
        .unwrap();
    let id3 = upload.upload_id().unwrap().to_owned();
    s3.upload_part()
        .bucket("mpu")
        .key("aborted")
        .upload_id(&id3)
        .part_number(1)
        .body(ByteStream::from(data(70_000, 9)))
        .send()
        .await
        .unwrap();
    s3.abort_multipart_upload()
        .bucket("mpu")
        .key("aborted")
        .upload_id(&id3)
        .send()
        .await
        .unwrap();
    let err = s3
        .upload_part()
        .bucket("mpu")
        .key("aborted")
        .upload_id(&id3)
        .part_number(2)
        .body(ByteStream::from_static(b"late"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NoSuchUpload");
    let err = s3
        .head_object()
        .bucket("mpu")
        .key("aborted")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 404);

    // Abandoned uploads are aborted by the maintenance pass.
    let upload = s3
        .create_multipart_upload()
        .bucket("mpu")
        .key("abandoned")
        .send()
        .await
        .unwrap();
    let id4 = upload.upload_id().unwrap().to_owned();
    s3.upload_part()
        .bucket("mpu")
        .key("abandoned")
        .upload_id(&id4)
        .part_number(1)
        .body(ByteStream::from(data(1000, 1)))
        .send()
        .await
        .unwrap();
    gw.gateway.maintain(Duration::ZERO).await;
    let uploads = s3
        .list_multipart_uploads()
        .bucket("mpu")
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty());

    // Only the two live objects keep fragments: 2 objects' segments, nothing else.
    s3.delete_object()
        .bucket("mpu")
        .key("big")
        .send()
        .await
        .unwrap();
    s3.delete_object()
        .bucket("mpu")
        .key("copy")
        .send()
        .await
        .unwrap();
    gw.gateway.store.reclaim_pass().await.unwrap();
    for id in 1..=4 {
        assert!(files_under(&gw.edge_dir(id)).is_empty(), "edge-{id}");
    }
}

#[tokio::test]
async fn presigned_urls_and_authentication_errors() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    s3.create_bucket().bucket("auth").send().await.unwrap();
    let presign = PresigningConfig::expires_in(Duration::from_secs(60)).unwrap();
    let put = s3
        .put_object()
        .bucket("auth")
        .key("pre signed")
        .presigned(presign.clone())
        .await
        .unwrap();
    let client = hyper_client();
    let status = send(&client, "PUT", put.uri(), b"via presigned PUT".to_vec()).await;
    assert_eq!(status.0, 200, "{}", status.1);
    let get = s3
        .get_object()
        .bucket("auth")
        .key("pre signed")
        .presigned(presign)
        .await
        .unwrap();
    let got = send(&client, "GET", get.uri(), Vec::new()).await;
    assert_eq!(got, (200, "via presigned PUT".to_owned()));
    // A tampered signature.
    let uri = get.uri().to_owned();
    let at = uri.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let flipped = if &uri[at..at + 1] == "0" { "1" } else { "0" };
    let tampered = format!("{}{flipped}{}", &uri[..at], &uri[at + 1..]);
    let got = send(&client, "GET", &tampered, Vec::new()).await;
    assert_eq!(got.0, 403);
    assert!(
        got.1.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{}",
        got.1
    );
    // Unsigned requests.
    let got = send(
        &client,
        "GET",
        &format!("{}/auth/pre%20signed", gw.url),
        Vec::new(),
    )
    .await;
    assert_eq!(got.0, 403);
    assert!(got.1.contains("<Code>AccessDenied</Code>"), "{}", got.1);

    let wrong_secret = gw.client_with((ADMIN.0, "not-the-secret"), &gw.url);
    let err = wrong_secret.list_buckets().send().await.unwrap_err();
    assert_eq!(code(&err), "SignatureDoesNotMatch");
    let unknown = gw.client_with(("nobody", "x"), &gw.url);
    let err = unknown.list_buckets().send().await.unwrap_err();
    assert_eq!(code(&err), "InvalidAccessKeyId");
    let scoped = gw.client_with(SCOPED, &gw.url);
    let err = scoped
        .get_object()
        .bucket("auth")
        .key("pre signed")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDenied");
    // An unknown sub-resource is NotImplemented, not a crash or a wrong answer.
    let err = s3
        .get_bucket_policy()
        .bucket("auth")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NotImplemented");
}

fn hyper_client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn send(client: &reqwest::Client, method: &str, uri: &str, body: Vec<u8>) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let response = client.request(method, uri).body(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn degraded_reads_repair_and_corruption() {
    let gw = TestGateway::start().await;
    let s3 = gw.client();
    s3.create_bucket().bucket("safe").send().await.unwrap();
    let body = data(200_000, 5);
    s3.put_object()
        .bucket("safe")
        .key("obj")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    // 4 stripes of 64 KiB (the last partial) on 4 locations: 16 fragments, 4 each.
    for id in 1..=4 {
        assert_eq!(files_under(&gw.edge_dir(id)).len(), 4, "edge-{id}");
    }
    // The data are encrypted: no 64-byte run of the object appears in any fragment.
    let probe = &body[1000..1064];
    for id in 1..=4 {
        for file in files_under(&gw.edge_dir(id)) {
            let bytes = std::fs::read(&file).unwrap();
            assert!(!bytes.windows(64).any(|w| w == probe), "{}", file.display());
        }
    }

    // One location loses everything: reads still succeed.
    let lost = files_under(&gw.edge_dir(2));
    for file in &lost {
        std::fs::remove_file(file).unwrap();
    }
    assert_eq!(get_bytes(&s3, "safe", "obj").await, body);
    // The repair pass rebuilds the missing fragments.
    assert!(gw.gateway.store.pending_repairs().await > 0);
    assert_eq!(gw.gateway.store.repair_pending().await, 4);
    assert_eq!(files_under(&gw.edge_dir(2)), lost);

    // A flipped byte inside a fragment is caught and the fragment repaired.
    let victim = files_under(&gw.edge_dir(1))[0].clone();
    let mut bytes = std::fs::read(&victim).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&victim, &bytes).unwrap();
    assert_eq!(get_bytes(&s3, "safe", "obj").await, body);
    assert_eq!(gw.gateway.store.repair_pending().await, 1);
    assert_ne!(std::fs::read(&victim).unwrap(), bytes);

    // Two locations down of 3+1: a clean 503, not a wrong answer.
    for id in [3, 4] {
        for file in files_under(&gw.edge_dir(id)) {
            std::fs::remove_file(file).unwrap();
        }
    }
    let err = s3
        .get_object()
        .bucket("safe")
        .key("obj")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ServiceUnavailable");
}

#[tokio::test]
async fn edge_cache_serves_hot_objects_within_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::test_config(dir.path().join("data"));
    config.cache_bytes = 1 << 20; // 16 stripes of 64 KiB; an eighth of it per entry at most
    let gw = TestGateway::start_with(dir, config).await;
    let s3 = gw.client();
    s3.create_bucket().bucket("hot").send().await.unwrap();
    let body = data(100_000, 11);
    s3.put_object()
        .bucket("hot")
        .key("obj")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&s3, "hot", "obj").await, body);
    let hits = || {
        gw.gateway
            .store
            .stats
            .cache_hits
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert_eq!(hits(), 0);
    // Every location gone: the hot object is still served, from memory.
    for id in 1..=4 {
        for file in files_under(&gw.edge_dir(id)) {
            std::fs::remove_file(file).unwrap();
        }
    }
    assert_eq!(get_bytes(&s3, "hot", "obj").await, body);
    assert_eq!(hits(), 2);
    // A new version is new data: never an old cached stripe.
    s3.put_object()
        .bucket("hot")
        .key("obj")
        .body(ByteStream::from_static(b"second"))
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&s3, "hot", "obj").await, b"second");
}

#!/usr/bin/env python3
"""boto3 against the SERRANO storage gateway (run by tests/clients.rs).

usage: boto3_suite.py ENDPOINT ACCESS_KEY SECRET_KEY [BUCKET_PREFIX]

Buckets, objects with metadata, ranges, listings and pagination, a multipart upload through
boto3's transfer manager (with boto3's default flexible checksums: CRC32 in a header over
http), presigned URLs used with urllib, copies, batch deletes, error codes, and the checksum
trailers of aws-chunked bodies that boto3 sends over https. Exits 1 with a message at the
first failure and prints a summary line when everything passed.
"""

import base64
import hashlib
import io
import os
import random
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
import zlib

import boto3
import botocore
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

MIB = 1024 * 1024


class Failure(Exception):
    pass


CHECKS = 0


def check(condition, message):
    global CHECKS
    CHECKS += 1
    if not condition:
        raise Failure(message)


def equal(actual, expected, what):
    check(actual == expected, f"{what}: expected {expected!r}, got {actual!r}")


def data(length, seed):
    """Deterministic pseudo-random bytes."""
    return random.Random(seed).randbytes(length)


def md5_etag(body):
    return '"' + hashlib.md5(body).hexdigest() + '"'


def error_of(call, *args, **kwargs):
    """The (Code, HTTP status) of a ClientError a call must raise."""
    try:
        call(*args, **kwargs)
    except ClientError as err:
        return (
            err.response.get("Error", {}).get("Code"),
            err.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
        )
    shown = {k: v for k, v in kwargs.items() if k != "Body"}
    raise Failure(f"{getattr(call, '__name__', call)}{shown} succeeded, an error was expected")


def empty_bucket(s3, bucket):
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def buckets_and_objects(s3, prefix):
    bucket = f"{prefix}-objects"
    s3.create_bucket(Bucket=bucket)
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    check(bucket in names, f"list_buckets {names} lacks {bucket}")
    head = s3.head_bucket(Bucket=bucket)
    equal(head["ResponseMetadata"]["HTTPStatusCode"], 200, "head_bucket status")
    equal(
        error_of(s3.create_bucket, Bucket=bucket)[0],
        "BucketAlreadyOwnedByYou",
        "create_bucket twice",
    )
    # head_bucket has no body: only the status tells.
    equal(
        error_of(s3.head_bucket, Bucket=f"{prefix}-absent")[1],
        404,
        "head_bucket of a missing bucket",
    )

    body = b"hello from boto3\n" * 100
    put = s3.put_object(
        Bucket=bucket,
        Key="docs/hello.txt",
        Body=body,
        ContentType="text/plain; charset=utf-8",
        Metadata={"owner": "uvt", "Project": "serrano"},
        CacheControl="no-cache",
    )
    equal(put["ETag"], md5_etag(body), "put_object ETag")
    got = s3.get_object(Bucket=bucket, Key="docs/hello.txt")
    equal(got["Body"].read(), body, "get_object body")
    equal(got["ContentType"], "text/plain; charset=utf-8", "get_object ContentType")
    equal(got["Metadata"], {"owner": "uvt", "project": "serrano"}, "get_object Metadata")
    equal(got["ETag"], md5_etag(body), "get_object ETag")
    equal(got["CacheControl"], "no-cache", "get_object CacheControl")
    head = s3.head_object(Bucket=bucket, Key="docs/hello.txt")
    equal(head["ContentLength"], len(body), "head_object ContentLength")
    equal(head["Metadata"], {"owner": "uvt", "project": "serrano"}, "head_object Metadata")
    check(head.get("LastModified") is not None, "head_object has no LastModified")

    # Non-ASCII and reserved characters in keys.
    odd = "odd key/ü+%41 &=?.txt"
    s3.put_object(Bucket=bucket, Key=odd, Body=b"odd")
    equal(s3.get_object(Bucket=bucket, Key=odd)["Body"].read(), b"odd", "odd key body")

    s3.delete_object(Bucket=bucket, Key="docs/hello.txt")
    equal(
        error_of(s3.head_object, Bucket=bucket, Key="docs/hello.txt")[1],
        404,
        "head_object after delete",
    )
    # Deleting a missing key succeeds (204).
    deleted = s3.delete_object(Bucket=bucket, Key="docs/hello.txt")
    equal(deleted["ResponseMetadata"]["HTTPStatusCode"], 204, "delete of a missing key")

    # Zero bytes.
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    equal(s3.get_object(Bucket=bucket, Key="empty")["Body"].read(), b"", "empty object")
    equal(s3.head_object(Bucket=bucket, Key="empty")["ContentLength"], 0, "empty ContentLength")

    empty_bucket(s3, bucket)
    s3.delete_bucket(Bucket=bucket)
    equal(error_of(s3.head_bucket, Bucket=bucket)[1], 404, "head_bucket after delete_bucket")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    check(bucket not in names, f"deleted bucket still listed: {names}")


def ranges(s3, prefix):
    bucket = f"{prefix}-ranges"
    s3.create_bucket(Bucket=bucket)
    body = data(200_000, 1)  # four 64 KiB stripes, the last partial
    s3.put_object(Bucket=bucket, Key="r", Body=body)
    for header, expected, content_range in [
        ("bytes=0-9", body[0:10], "bytes 0-9/200000"),
        ("bytes=65530-131080", body[65530:131081], "bytes 65530-131080/200000"),
        ("bytes=-500", body[-500:], "bytes 199500-199999/200000"),
        ("bytes=199990-", body[199990:], "bytes 199990-199999/200000"),
        ("bytes=199990-999999", body[199990:], "bytes 199990-199999/200000"),
    ]:
        got = s3.get_object(Bucket=bucket, Key="r", Range=header)
        equal(got["ResponseMetadata"]["HTTPStatusCode"], 206, f"{header} status")
        equal(got["ContentRange"], content_range, f"{header} Content-Range")
        equal(got["ContentLength"], len(expected), f"{header} Content-Length")
        check(got["Body"].read() == expected, f"{header}: wrong bytes")
    equal(
        error_of(s3.get_object, Bucket=bucket, Key="r", Range="bytes=200000-"),
        ("InvalidRange", 416),
        "unsatisfiable range",
    )
    empty_bucket(s3, bucket)
    s3.delete_bucket(Bucket=bucket)


def listings(s3, prefix):
    bucket = f"{prefix}-list"
    s3.create_bucket(Bucket=bucket)
    keys = ["a/1", "a/2", "a/b/3", "b", "c/1", "c/2", "d", "e f", "ü"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    listed = s3.list_objects_v2(Bucket=bucket)
    equal([o["Key"] for o in listed["Contents"]], sorted(keys), "list_objects_v2 keys")
    equal(listed["KeyCount"], len(keys), "KeyCount")
    check(all(o["Size"] == len(o["Key"].encode()) for o in listed["Contents"]), "listed sizes")
    check(
        all(o["ETag"] == md5_etag(o["Key"].encode()) for o in listed["Contents"]),
        "listed ETags",
    )

    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    equal([o["Key"] for o in top["Contents"]], ["b", "d", "e f", "ü"], "delimited keys")
    equal([p["Prefix"] for p in top["CommonPrefixes"]], ["a/", "c/"], "CommonPrefixes")
    under_a = s3.list_objects_v2(Bucket=bucket, Prefix="a/", Delimiter="/")
    equal([o["Key"] for o in under_a["Contents"]], ["a/1", "a/2"], "a/ keys")
    equal([p["Prefix"] for p in under_a["CommonPrefixes"]], ["a/b/"], "a/ CommonPrefixes")
    none = s3.list_objects_v2(Bucket=bucket, Prefix="zzz")
    equal(none["KeyCount"], 0, "no match KeyCount")
    check("Contents" not in none, "no match has Contents")

    # The paginator follows continuation tokens, two keys a page.
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, MaxKeys=2))
    equal(len(pages), 5, "pages of 2 of 9 keys")
    check(all(len(p.get("Contents", [])) <= 2 for p in pages), "a page with more than 2 keys")
    seen = [o["Key"] for p in pages for o in p.get("Contents", [])]
    equal(seen, sorted(keys), "paginated keys")
    # Pages of 2 with a delimiter count prefixes too.
    pages = list(
        s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Delimiter="/", MaxKeys=2)
    )
    seen = [o["Key"] for p in pages for o in p.get("Contents", [])]
    prefixes = [c["Prefix"] for p in pages for c in p.get("CommonPrefixes", [])]
    equal(seen, ["b", "d", "e f", "ü"], "delimited paginated keys")
    equal(prefixes, ["a/", "c/"], "delimited paginated prefixes")
    # The v1 paginator (markers).
    pages = list(s3.get_paginator("list_objects").paginate(Bucket=bucket, MaxKeys=2))
    seen = [o["Key"] for p in pages for o in p.get("Contents", [])]
    equal(seen, sorted(keys), "v1 paginated keys")

    # Batch delete, with a key that never existed.
    result = s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": k} for k in keys] + [{"Key": "never"}]},
    )
    equal(sorted(d["Key"] for d in result.get("Deleted", [])), sorted(keys + ["never"]), "Deleted")
    equal(result.get("Errors", []), [], "delete_objects Errors")
    equal(s3.list_objects_v2(Bucket=bucket)["KeyCount"], 0, "KeyCount after delete_objects")
    s3.delete_bucket(Bucket=bucket)


def multipart(s3, prefix, tmp):
    bucket = f"{prefix}-mpu"
    s3.create_bucket(Bucket=bucket)
    body = data(20 * MIB, 2)
    path = os.path.join(tmp, "upload.bin")
    with open(path, "wb") as f:
        f.write(body)
    config = TransferConfig(
        multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=4
    )
    with open(path, "rb") as f:
        s3.upload_fileobj(
            f,
            bucket,
            "big/file.bin",
            ExtraArgs={"ContentType": "application/x-big", "Metadata": {"kind": "multipart"}},
            Config=config,
        )
    head = s3.head_object(Bucket=bucket, Key="big/file.bin")
    equal(head["ContentLength"], len(body), "multipart ContentLength")
    check(head["ETag"].endswith('-4"'), f"multipart ETag {head['ETag']} is not of 4 parts")
    equal(head["ContentType"], "application/x-big", "multipart ContentType")
    equal(head["Metadata"], {"kind": "multipart"}, "multipart Metadata")
    out = io.BytesIO()
    s3.download_fileobj(bucket, "big/file.bin", out, Config=config)
    check(out.getvalue() == body, "download_fileobj returned other bytes than uploaded")
    # upload_file / download_file, below the threshold (a single PutObject).
    small = os.path.join(tmp, "small.bin")
    with open(small, "wb") as f:
        f.write(data(3 * MIB, 3))
    s3.upload_file(small, bucket, "small.bin", Config=config)
    back = os.path.join(tmp, "small.back")
    s3.download_file(bucket, "small.bin", back, Config=config)
    with open(small, "rb") as a, open(back, "rb") as b:
        check(a.read() == b.read(), "download_file returned other bytes than uploaded")
    # A multipart upload by hand, aborted: nothing remains.
    upload = s3.create_multipart_upload(Bucket=bucket, Key="aborted")
    s3.upload_part(
        Bucket=bucket, Key="aborted", UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 1000
    )
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    equal([u["Key"] for u in uploads], ["aborted"], "list_multipart_uploads")
    s3.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=upload["UploadId"])
    equal(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []), [], "uploads after abort")
    equal(
        error_of(
            s3.list_parts, Bucket=bucket, Key="aborted", UploadId=upload["UploadId"]
        )[0],
        "NoSuchUpload",
        "list_parts of an aborted upload",
    )
    empty_bucket(s3, bucket)
    s3.delete_bucket(Bucket=bucket)


def force_trailer(params, **_):
    """What botocore does over https: the flexible checksum in an aws-chunked trailer with an
    unsigned payload (STREAMING-UNSIGNED-PAYLOAD-TRAILER). Over http it sends a header."""
    algorithm = params.get("context", {}).get("checksum", {}).get("request_algorithm")
    if isinstance(algorithm, dict):
        algorithm["in"] = "trailer"


def crc32_b64(body):
    return base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()


def checksums(s3, prefix):
    """Flexible checksums, in a header (boto3's default over http) and in an aws-chunked
    trailer (its default over https). Last: the data checks come before the echo checks."""
    bucket = f"{prefix}-checksums"
    s3.create_bucket(Bucket=bucket)
    body = data(150_000, 5)
    big = data(12 * MIB + 17, 6)
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    echoed = {}
    echoed["header"] = s3.put_object(Bucket=bucket, Key="header", Body=body)
    s3.meta.events.register("before-call.s3.PutObject", force_trailer)
    s3.meta.events.register("before-call.s3.UploadPart", force_trailer)
    try:
        put = s3.put_object(Bucket=bucket, Key="crc32", Body=body)
        echoed["trailer"] = put
        equal(put["ETag"], md5_etag(body), "trailer put ETag")
        equal(s3.get_object(Bucket=bucket, Key="crc32")["Body"].read(), body, "trailer put body")
        for algorithm in ("SHA1", "SHA256"):  # CRC32C and CRC64NVME need awscrt
            key = algorithm.lower()
            put = s3.put_object(Bucket=bucket, Key=key, Body=body, ChecksumAlgorithm=algorithm)
            echoed[f"trailer {algorithm}"] = put
            got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            check(got == body, f"trailer put with {algorithm}: other bytes")
        s3.put_object(Bucket=bucket, Key="empty", Body=b"")
        equal(s3.get_object(Bucket=bucket, Key="empty")["Body"].read(), b"", "empty trailer put")
        s3.upload_fileobj(io.BytesIO(big), bucket, "mpu", Config=config)
    finally:
        s3.meta.events.unregister("before-call.s3.PutObject", force_trailer)
        s3.meta.events.unregister("before-call.s3.UploadPart", force_trailer)
    head = s3.head_object(Bucket=bucket, Key="mpu")
    check(head["ETag"].endswith('-3"'), f"trailer multipart ETag {head['ETag']}")
    out = io.BytesIO()
    s3.download_fileobj(bucket, "mpu", out, Config=config)
    check(out.getvalue() == big, "trailer multipart: other bytes")

    # A checksum header that does not match the body is refused, and nothing is stored.
    equal(
        error_of(
            s3.put_object,
            Bucket=bucket,
            Key="bad",
            Body=body,
            ChecksumCRC32=crc32_b64(b"other"),
        ),
        ("BadDigest", 400),
        "put_object with a wrong x-amz-checksum-crc32",
    )
    equal(error_of(s3.head_object, Bucket=bucket, Key="bad")[1], 404, "object of a refused put")

    # S3 answers a put with the checksum it verified, header or trailer alike.
    equal(echoed["header"].get("ChecksumCRC32"), crc32_b64(body), "ChecksumCRC32 of a header put")
    equal(echoed["trailer"].get("ChecksumCRC32"), crc32_b64(body), "ChecksumCRC32 of a trailer put")
    for algorithm in ("SHA1", "SHA256"):  # CRC32C and CRC64NVME need awscrt
        check(
            f"Checksum{algorithm}" in echoed[f"trailer {algorithm}"],
            f"no Checksum{algorithm} in the response of a trailer put: "
            f"{sorted(echoed[f'trailer {algorithm}'])}",
        )
    empty_bucket(s3, bucket)
    s3.delete_bucket(Bucket=bucket)


def presigned(s3, prefix):
    bucket = f"{prefix}-presign"
    s3.create_bucket(Bucket=bucket)
    body = b"through a presigned PUT"
    put_url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "pre signed"}, ExpiresIn=300
    )
    request = urllib.request.Request(put_url, data=body, method="PUT")
    with urllib.request.urlopen(request, timeout=60) as response:
        equal(response.status, 200, "presigned PUT status")
    get_url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "pre signed"}, ExpiresIn=300
    )
    with urllib.request.urlopen(get_url, timeout=60) as response:
        equal(response.status, 200, "presigned GET status")
        equal(response.read(), body, "presigned GET body")
    # A tampered signature is refused.
    at = get_url.index("X-Amz-Signature=") + len("X-Amz-Signature=")
    tampered = get_url[:at] + ("1" if get_url[at] == "0" else "0") + get_url[at + 1 :]
    try:
        urllib.request.urlopen(tampered, timeout=60)
        raise Failure("a tampered presigned URL was accepted")
    except urllib.error.HTTPError as err:
        equal(err.code, 403, "tampered presigned GET status")
        check(b"SignatureDoesNotMatch" in err.read(), "tampered: no SignatureDoesNotMatch")
    # An expired one too.
    expired = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "pre signed"}, ExpiresIn=1
    )
    time.sleep(2)
    try:
        urllib.request.urlopen(expired, timeout=60)
        raise Failure("an expired presigned URL was accepted")
    except urllib.error.HTTPError as err:
        equal(err.code, 403, "expired presigned GET status")
    empty_bucket(s3, bucket)
    s3.delete_bucket(Bucket=bucket)


def copies(s3, prefix):
    source, target = f"{prefix}-copy-src", f"{prefix}-copy-dst"
    s3.create_bucket(Bucket=source)
    s3.create_bucket(Bucket=target)
    body = data(150_000, 4)
    s3.put_object(Bucket=source, Key="a b", Body=body, ContentType="text/x-a", Metadata={"k": "v"})
    copied = s3.copy_object(Bucket=target, Key="copy", CopySource={"Bucket": source, "Key": "a b"})
    equal(copied["CopyObjectResult"]["ETag"], md5_etag(body), "copy_object ETag")
    got = s3.get_object(Bucket=target, Key="copy")
    check(got["Body"].read() == body, "copied bytes differ")
    equal(got["ContentType"], "text/x-a", "copied ContentType")
    equal(got["Metadata"], {"k": "v"}, "copied Metadata")
    s3.copy_object(
        Bucket=target,
        Key="replaced",
        CopySource={"Bucket": source, "Key": "a b"},
        MetadataDirective="REPLACE",
        ContentType="text/x-b",
        Metadata={"new": "1"},
    )
    head = s3.head_object(Bucket=target, Key="replaced")
    equal((head["ContentType"], head["Metadata"]), ("text/x-b", {"new": "1"}), "replaced metadata")
    # boto3's managed copy (head + copy_object below the threshold).
    s3.copy({"Bucket": source, "Key": "a b"}, target, "managed")
    check(s3.get_object(Bucket=target, Key="managed")["Body"].read() == body, "managed copy")
    for bucket in (source, target):
        empty_bucket(s3, bucket)
        s3.delete_bucket(Bucket=bucket)


def errors(s3, prefix):
    bucket = f"{prefix}-errors"
    missing = f"{prefix}-no-such-bucket"
    s3.create_bucket(Bucket=bucket)
    equal(
        error_of(s3.get_object, Bucket=bucket, Key="absent"), ("NoSuchKey", 404), "get missing key"
    )
    equal(
        error_of(s3.get_object, Bucket=missing, Key="absent"),
        ("NoSuchBucket", 404),
        "get in a missing bucket",
    )
    equal(
        error_of(s3.put_object, Bucket=missing, Key="k", Body=b"x"),
        ("NoSuchBucket", 404),
        "put in a missing bucket",
    )
    for call, what in [
        (s3.list_objects_v2, "list a missing bucket"),
        (s3.delete_bucket, "delete a missing bucket"),
        (s3.head_bucket, "head a missing bucket"),
    ]:
        status = error_of(call, Bucket=missing)[1]
        equal(status, 404, what)
    equal(error_of(s3.list_objects_v2, Bucket=missing)[0], "NoSuchBucket", "list code")
    equal(error_of(s3.delete_bucket, Bucket=missing)[0], "NoSuchBucket", "delete code")
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    equal(
        error_of(s3.delete_bucket, Bucket=bucket),
        ("BucketNotEmpty", 409),
        "delete a non-empty bucket",
    )
    equal(
        error_of(s3.create_bucket, Bucket="Not_A_Valid_Name")[0],
        "InvalidBucketName",
        "invalid bucket name",
    )
    equal(
        error_of(
            s3.create_bucket,
            Bucket=f"{prefix}-bogus",
            CreateBucketConfiguration={"LocationConstraint": "no-such-policy"},
        )[0],
        "InvalidLocationConstraint",
        "unknown LocationConstraint",
    )
    s3.delete_object(Bucket=bucket, Key="k")
    s3.delete_bucket(Bucket=bucket)


def main():
    if len(sys.argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    endpoint, access_key, secret_key = sys.argv[1:4]
    prefix = sys.argv[4] if len(sys.argv) == 5 else "boto3"
    s3 = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1, "mode": "standard"},
        ),
    )
    with tempfile.TemporaryDirectory() as tmp:
        sections = [
            ("buckets and objects", lambda: buckets_and_objects(s3, prefix)),
            ("ranges", lambda: ranges(s3, prefix)),
            ("listings", lambda: listings(s3, prefix)),
            ("multipart", lambda: multipart(s3, prefix, tmp)),
            ("presigned URLs", lambda: presigned(s3, prefix)),
            ("copies", lambda: copies(s3, prefix)),
            ("errors", lambda: errors(s3, prefix)),
            ("flexible checksums", lambda: checksums(s3, prefix)),
        ]
        for name, section in sections:
            started = time.monotonic()
            try:
                section()
            except Failure as failure:
                print(f"boto3 suite FAILED in {name}: {failure}", file=sys.stderr)
                return 1
            except Exception:  # an unexpected ClientError or transport error
                print(f"boto3 suite FAILED in {name} with an exception:", file=sys.stderr)
                traceback.print_exc()
                return 1
            print(f"ok: {name} ({time.monotonic() - started:.1f}s)")
    print(
        f"boto3 suite passed: {len(sections)} sections, {CHECKS} checks "
        f"(boto3 {boto3.__version__}, botocore {botocore.__version__})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

//! Data staging between object stores / web servers and cluster storage (`/data`, `/s3_data`,
//! `/s3_result`; originals.md 6.1). Bytes stream through the SSH channel (a remote `cat`), never
//! through a local temporary copy; every transfer is verified end to end with SHA-256 (computed
//! while streaming, compared with `sha256sum` on the cluster); large results go to S3 as
//! multipart uploads. Progress (bytes done / total) is kept in the transfer's record.
//!
//! A transfer runs as a background task after `POST` answers 201. The S3 keys of a request are
//! used by that task and never stored; a transfer interrupted by a gateway restart is therefore
//! marked failed with that reason, and the client starts it again.

use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serrano_service::error_chain;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::infrastructure::Infrastructure;
use crate::scheduler::shell_quote;
use crate::{Gateway, unix_now};

/// Size of a multipart upload part (and of the read buffer for results).
const PART_BYTES: usize = 16 << 20;
/// Multipart uploads to S3 that run at once while the next part is read.
const PARTS_IN_FLIGHT: usize = 4;
/// How often progress is written to the record while bytes flow.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    Data,
    S3Data,
    S3Result,
}

/// The original's FileTransferStatusCode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TransferStatus {
    Transferring,
    Completed,
    Failure,
}

/// A transfer as stored and answered (the original's status objects, without the keys, plus
/// progress and checksum).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    pub id: Uuid,
    pub kind: TransferKind,
    pub infrastructure: String,
    pub src: String,
    pub dst: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub status: TransferStatus,
    #[serde(default)]
    pub reason: Option<String>,
    pub bytes_done: u64,
    #[serde(default)]
    pub bytes_total: Option<u64>,
    /// SHA-256 of the bytes moved, verified on both ends.
    #[serde(default)]
    pub sha256: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Body of `POST /s3_data`: an S3 object to a path on the cluster.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct S3DataRequest {
    pub endpoint: String,
    pub bucket: String,
    pub object: String,
    #[serde(default = "default_region")]
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    pub dst: String,
    pub infrastructure: String,
}

/// Body of `POST /s3_result`: a file on the cluster to an S3 object.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct S3ResultRequest {
    pub endpoint: String,
    pub bucket: String,
    pub object: String,
    #[serde(default = "default_region")]
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    pub src: String,
    pub infrastructure: String,
}

/// Body of `POST /data`: an HTTP(S) URL to a path on the cluster.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataRequest {
    pub src: String,
    pub dst: String,
    pub infrastructure: String,
}

fn default_region() -> String {
    "local".to_owned()
}

/// Checks a cluster path given by a client.
pub fn check_cluster_path(field: &str, path: &str) -> Result<(), String> {
    if path.is_empty()
        || path.starts_with('-')
        || path.ends_with('/')
        || path.contains(['\n', '\r', '\0'])
    {
        return Err(format!("{field}: a file path on the cluster"));
    }
    Ok(())
}

pub fn check_s3(endpoint: &str, bucket: &str, object: &str) -> Result<(), String> {
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return Err("endpoint: an http(s) URL".to_owned());
    }
    if bucket.is_empty() || bucket.contains('/') {
        return Err("bucket: a bucket name".to_owned());
    }
    if object.is_empty() {
        return Err("object: an object key".to_owned());
    }
    Ok(())
}

fn s3_client(
    endpoint: &str,
    region: &str,
    access_key: &str,
    secret_key: &str,
) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::new(
            access_key, secret_key, None, None, "request",
        ))
        // Object stores next to HPC sites are rarely set up for virtual-host buckets.
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The quoted parent directory of a cluster path ("." for a bare file name).
fn parent_of(path: &str) -> String {
    match path.rsplit_once('/') {
        Some(("", _)) => "/".to_owned(),
        Some((dir, _)) => shell_quote(dir),
        None => ".".to_owned(),
    }
}

/// Writes progress or the outcome to the transfer's record (last writer wins: only this task
/// writes a transfer after its creation).
async fn save(gateway: &Gateway, transfer: &Transfer) {
    if let Err(err) = gateway
        .transfers
        .put(&transfer.id.to_string(), transfer)
        .await
    {
        tracing::warn!(transfer = %transfer.id, error = %err, "could not store transfer state");
    }
}

async fn finish(gateway: &Gateway, mut transfer: Transfer, outcome: Result<String, String>) {
    transfer.updated_at = unix_now();
    match outcome {
        Ok(sha256) => {
            transfer.status = TransferStatus::Completed;
            transfer.sha256 = Some(sha256);
            transfer.reason = None;
        }
        Err(reason) => {
            tracing::warn!(transfer = %transfer.id, reason = %reason, "transfer failed");
            transfer.status = TransferStatus::Failure;
            transfer.reason = Some(reason);
        }
    }
    save(gateway, &transfer).await;
}

/// Streams `chunks` into `dst` on the cluster (a `.partial` file renamed at the end) and
/// verifies the SHA-256 there.
async fn upload_to_cluster<S, E>(
    gateway: &Gateway,
    infra: &Infrastructure,
    transfer: &mut Transfer,
    mut chunks: S,
) -> Result<String, String>
where
    S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let dst = shell_quote(&transfer.dst);
    let partial = shell_quote(&format!("{}.partial", transfer.dst));
    let command = format!(
        "mkdir -p -- {} && cat > {partial}",
        parent_of(&transfer.dst)
    );
    let mut child = gateway
        .ssh
        .spawn(infra, &command)
        .await
        .map_err(|e| e.to_string())?;
    let mut stdin = child.stdin().take().ok_or("no stdin to the cluster")?;
    let mut hasher = Sha256::new();
    let mut last_saved = Instant::now();
    let streamed: Result<(), String> = async {
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|err| format!("reading the source: {err}"))?;
            hasher.update(&chunk);
            stdin
                .write_all(&chunk)
                .await
                .map_err(|err| format!("writing to the cluster: {err}"))?;
            transfer.bytes_done += chunk.len() as u64;
            if last_saved.elapsed() >= PROGRESS_EVERY {
                transfer.updated_at = unix_now();
                save(gateway, transfer).await;
                last_saved = Instant::now();
            }
        }
        stdin
            .shutdown()
            .await
            .map_err(|err| format!("closing the upload: {err}"))
    }
    .await;
    drop(stdin);
    let written = child
        .wait_with_output()
        .await
        .map_err(|err| err.to_string());
    // Only a complete copy whose checksum matches replaces `dst`; anything else removes the
    // partial file (the remote `cat` ends "successfully" when a failed source closes its input).
    let verified: Result<String, String> = async {
        streamed?;
        let output = written?;
        if !output.status.success() {
            return Err(format!(
                "writing {} on the cluster failed: {}",
                transfer.dst,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        let ours = hex::encode(hasher.finalize());
        let check = gateway
            .ssh
            .run(infra, &format!("sha256sum -- {partial}"), None)
            .await
            .map_err(|e| e.to_string())?;
        let theirs = check
            .stdout
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        if ours != theirs {
            return Err(format!(
                "checksum mismatch: sent {ours}, the cluster has {theirs}"
            ));
        }
        let moved = gateway
            .ssh
            .run(infra, &format!("mv -f -- {partial} {dst}"), None)
            .await
            .map_err(|e| e.to_string())?;
        if !moved.success() {
            return Err(format!(
                "renaming into {} failed: {}",
                transfer.dst,
                moved.stderr.trim()
            ));
        }
        Ok(ours)
    }
    .await;
    if verified.is_err() {
        let _ = gateway
            .ssh
            .run(infra, &format!("rm -f -- {partial}"), None)
            .await;
    }
    verified
}

/// `POST /s3_data` work: S3 object → cluster path.
pub async fn run_s3_data(
    gateway: std::sync::Arc<Gateway>,
    infra: Infrastructure,
    request: S3DataRequest,
    mut transfer: Transfer,
) {
    let outcome = async {
        let client = s3_client(
            &request.endpoint,
            &request.region,
            &request.access_key,
            &request.secret_key,
        );
        let object = client
            .get_object()
            .bucket(&request.bucket)
            .key(&request.object)
            .send()
            .await
            .map_err(|err| {
                format!(
                    "reading s3://{}/{}: {}",
                    request.bucket,
                    request.object,
                    error_chain(&err)
                )
            })?;
        transfer.bytes_total = object.content_length.and_then(|n| u64::try_from(n).ok());
        let body = object.body;
        let chunks = futures::stream::unfold(body, |mut body| async move {
            body.try_next().await.transpose().map(|item| (item, body))
        });
        upload_to_cluster(&gateway, &infra, &mut transfer, Box::pin(chunks)).await
    }
    .await;
    finish(&gateway, transfer, outcome).await;
}

/// `POST /data` work: HTTP(S) URL → cluster path.
pub async fn run_data(
    gateway: std::sync::Arc<Gateway>,
    infra: Infrastructure,
    mut transfer: Transfer,
) {
    let outcome = async {
        // A stalled source must end as a failure, not stay `transferring`.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|err| format!("http client: {err}"))?;
        let response = http
            .get(&transfer.src)
            .send()
            .await
            .map_err(|err| format!("fetching the source: {}", error_chain(&err)))?;
        if !response.status().is_success() {
            return Err(format!("fetching the source: HTTP {}", response.status()));
        }
        transfer.bytes_total = response.content_length();
        upload_to_cluster(
            &gateway,
            &infra,
            &mut transfer,
            Box::pin(response.bytes_stream()),
        )
        .await
    }
    .await;
    finish(&gateway, transfer, outcome).await;
}

/// Size of a file on the cluster (`stat`), with a reason naming it when it is not readable.
async fn remote_size(gateway: &Gateway, infra: &Infrastructure, path: &str) -> Result<u64, String> {
    let size = gateway
        .ssh
        .run(infra, &format!("stat -c %s -- {}", shell_quote(path)), None)
        .await
        .map_err(|e| e.to_string())?;
    if !size.success() {
        return Err(format!(
            "{path} is not readable on the cluster: {}",
            size.stderr.trim()
        ));
    }
    size.stdout
        .trim()
        .parse()
        .map_err(|_| "stat gave no size".to_owned())
}

/// SHA-256 (hex) of a file on the cluster (`sha256sum`); empty when it could not be computed.
async fn remote_sha256(
    gateway: &Gateway,
    infra: &Infrastructure,
    path: &str,
) -> Result<String, String> {
    let remote = gateway
        .ssh
        .run(infra, &format!("sha256sum -- {}", shell_quote(path)), None)
        .await
        .map_err(|e| e.to_string())?;
    Ok(remote
        .stdout
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned())
}

/// `POST /data` work in the other direction: cluster path → HTTP(S) URL (a PUT, e.g. to a
/// presigned object-store URL), streamed from a remote `cat` with the length from `stat` and the
/// SHA-256 of what was sent compared with `sha256sum` on the cluster.
pub async fn run_data_out(
    gateway: std::sync::Arc<Gateway>,
    infra: Infrastructure,
    mut transfer: Transfer,
) {
    let outcome = async {
        let src = shell_quote(&transfer.src);
        let length = remote_size(&gateway, &infra, &transfer.src).await?;
        transfer.bytes_total = Some(length);
        let mut child = gateway.ssh.spawn(&infra, &format!("cat -- {src}")).await.map_err(|e| e.to_string())?;
        let stdout = child.stdout().take().ok_or("no stdout from the cluster")?;
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let hasher = std::sync::Arc::new(std::sync::Mutex::new(Sha256::new()));
        let body = {
            let (sent, hasher) = (sent.clone(), hasher.clone());
            futures::stream::try_unfold(stdout, move |mut stdout| {
                let (sent, hasher) = (sent.clone(), hasher.clone());
                async move {
                    let mut chunk = vec![0u8; 256 << 10];
                    let read = stdout.read(&mut chunk).await?;
                    if read == 0 {
                        return Ok::<_, std::io::Error>(None);
                    }
                    chunk.truncate(read);
                    sent.fetch_add(read as u64, std::sync::atomic::Ordering::Relaxed);
                    if let Ok(mut hasher) = hasher.lock() {
                        hasher.update(&chunk);
                    }
                    Ok(Some((Bytes::from(chunk), stdout)))
                }
            })
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|err| format!("http client: {err}"))?;
        let request = http
            .put(&transfer.dst)
            .header(reqwest::header::CONTENT_LENGTH, length)
            .body(reqwest::Body::wrap_stream(body))
            .send();
        tokio::pin!(request);
        let mut ticker = tokio::time::interval(PROGRESS_EVERY);
        let response = loop {
            tokio::select! {
                response = &mut request => break response,
                _ = ticker.tick() => {
                    transfer.bytes_done = sent.load(std::sync::atomic::Ordering::Relaxed);
                    transfer.updated_at = unix_now();
                    save(&gateway, &transfer).await;
                }
            }
        };
        transfer.bytes_done = sent.load(std::sync::atomic::Ordering::Relaxed);
        let response = response.map_err(|err| format!("sending to the destination: {}", error_chain(&err)))?;
        let status = child.wait().await.map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("reading {} on the cluster failed", transfer.src));
        }
        if !response.status().is_success() {
            let code = response.status();
            let detail = response.text().await.unwrap_or_default();
            let detail: String = detail.chars().take(300).collect();
            return Err(format!("the destination answered HTTP {code}: {detail}"));
        }
        if transfer.bytes_done != length {
            return Err(format!("sent {} of {length} bytes (the file changed during the transfer?)", transfer.bytes_done));
        }
        let ours = {
            let hasher = hasher.lock().map_err(|_| "checksum state lost".to_owned())?;
            hex::encode(hasher.clone().finalize())
        };
        let theirs = remote_sha256(&gateway, &infra, &transfer.src).await?;
        if ours != theirs {
            return Err(format!("checksum mismatch: sent {ours}, the file on the cluster is {theirs} (it changed during the transfer?)"));
        }
        Ok(ours)
    }
    .await;
    finish(&gateway, transfer, outcome).await;
}

/// `POST /s3_result` work: cluster path → S3 object (multipart above one part), then the
/// SHA-256 of what was read compared with `sha256sum` of the file on the cluster.
pub async fn run_s3_result(
    gateway: std::sync::Arc<Gateway>,
    infra: Infrastructure,
    request: S3ResultRequest,
    mut transfer: Transfer,
) {
    let outcome = async {
        let src = shell_quote(&request.src);
        transfer.bytes_total = Some(remote_size(&gateway, &infra, &request.src).await?);
        let client = s3_client(&request.endpoint, &request.region, &request.access_key, &request.secret_key);
        let mut child = gateway.ssh.spawn(&infra, &format!("cat -- {src}")).await.map_err(|e| e.to_string())?;
        let mut stdout = child.stdout().take().ok_or("no stdout from the cluster")?;
        // Waited for at the end of the input, before anything is committed to the store.
        let mut reader = Some(child);
        let mut hasher = Sha256::new();
        let mut upload_id: Option<String> = None;
        let mut parts: Vec<CompletedPart> = Vec::new();
        let mut part_count = 0usize;
        let mut in_flight = futures::stream::FuturesUnordered::new();
        let mut last_saved = Instant::now();
        let uploaded: Result<(), String> = async {
            loop {
                let mut buffer = Vec::with_capacity(PART_BYTES);
                while buffer.len() < PART_BYTES {
                    let read = (&mut stdout)
                        .take((PART_BYTES - buffer.len()) as u64)
                        .read_to_end(&mut buffer)
                        .await
                        .map_err(|err| format!("reading from the cluster: {err}"))?;
                    if read == 0 {
                        break;
                    }
                }
                let last = buffer.len() < PART_BYTES;
                if last {
                    // End of input: a `cat` that failed midway also ends its output, so its
                    // exit status decides before the object is written or completed.
                    let finished = reader.take().ok_or("the reader ended twice")?;
                    let status = finished.wait().await.map_err(|e| e.to_string())?;
                    if !status.success() {
                        return Err(format!("reading {} on the cluster failed", request.src));
                    }
                }
                hasher.update(&buffer);
                transfer.bytes_done += buffer.len() as u64;
                if upload_id.is_none() && last {
                    // Fits one request: a plain PUT.
                    client
                        .put_object()
                        .bucket(&request.bucket)
                        .key(&request.object)
                        .body(ByteStream::from(buffer))
                        .send()
                        .await
                        .map_err(|err| format!("writing s3://{}/{}: {}", request.bucket, request.object, error_chain(&err)))?;
                    return Ok(());
                }
                let id = match &upload_id {
                    Some(id) => id.clone(),
                    None => {
                        let created = client
                            .create_multipart_upload()
                            .bucket(&request.bucket)
                            .key(&request.object)
                            .send()
                            .await
                            .map_err(|err| format!("starting the multipart upload: {}", error_chain(&err)))?;
                        let id = created.upload_id.ok_or("the object store gave no upload id")?;
                        upload_id = Some(id.clone());
                        id
                    }
                };
                if !buffer.is_empty() || part_count == 0 {
                    part_count += 1;
                    let number = i32::try_from(part_count).map_err(|_| "too many parts")?;
                    // Up to PARTS_IN_FLIGHT uploads run while the next part is read from SSH.
                    if in_flight.len() >= PARTS_IN_FLIGHT
                        && let Some(done) = in_flight.next().await
                    {
                        parts.push(done?);
                    }
                    let upload = client
                        .upload_part()
                        .bucket(&request.bucket)
                        .key(&request.object)
                        .upload_id(&id)
                        .part_number(number)
                        .body(ByteStream::from(buffer))
                        .send();
                    in_flight.push(async move {
                        upload
                            .await
                            .map(|part| CompletedPart::builder().part_number(number).set_e_tag(part.e_tag).build())
                            .map_err(|err| format!("uploading part {number}: {}", error_chain(&err)))
                    });
                }
                if last_saved.elapsed() >= PROGRESS_EVERY {
                    transfer.updated_at = unix_now();
                    save(&gateway, &transfer).await;
                    last_saved = Instant::now();
                }
                if last {
                    while let Some(done) = in_flight.next().await {
                        parts.push(done?);
                    }
                    parts.sort_by_key(|p| p.part_number);
                    client
                        .complete_multipart_upload()
                        .bucket(&request.bucket)
                        .key(&request.object)
                        .upload_id(&id)
                        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts.clone())).build())
                        .send()
                        .await
                        .map_err(|err| format!("completing the multipart upload: {}", error_chain(&err)))?;
                    return Ok(());
                }
            }
        }
        .await;
        drop(stdout);
        drop(reader);
        if let Err(reason) = uploaded {
            if let Some(id) = &upload_id {
                // Leave no half-written upload behind in the object store.
                let _ = client
                    .abort_multipart_upload()
                    .bucket(&request.bucket)
                    .key(&request.object)
                    .upload_id(id)
                    .send()
                    .await;
            }
            return Err(reason);
        }
        let ours = hex::encode(hasher.finalize());
        let theirs = remote_sha256(&gateway, &infra, &request.src).await?;
        if ours != theirs {
            let _ = client.delete_object().bucket(&request.bucket).key(&request.object).send().await;
            return Err(format!("checksum mismatch: read {ours}, the file on the cluster is {theirs} (it changed during the transfer?)"));
        }
        Ok(ours)
    }
    .await;
    finish(&gateway, transfer, outcome).await;
}

/// Marks transfers left `transferring` by a previous run as failed (their keys were not kept).
pub async fn fail_interrupted(gateway: &Gateway) -> Result<(), String> {
    for stored in gateway.transfers.list().await.map_err(|e| e.to_string())? {
        if stored.value.status == TransferStatus::Transferring {
            let mut transfer = stored.value;
            transfer.status = TransferStatus::Failure;
            transfer.reason =
                Some("interrupted by a gateway restart; start the transfer again".to_owned());
            transfer.updated_at = unix_now();
            save(gateway, &transfer).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_are_quoted_for_the_shell() {
        assert_eq!(parent_of("/data/in/x.csv"), "'/data/in'");
        assert_eq!(parent_of("x.csv"), ".");
        assert_eq!(parent_of("/x.csv"), "/");
        assert_eq!(parent_of("dir with space/$(x)/f"), "'dir with space/$(x)'");
    }

    #[test]
    fn paths_and_s3_locations_are_checked() {
        assert!(check_cluster_path("dst", "in/data.bin").is_ok());
        for bad in ["", "dir/", "a\nb", "nul\0", "-rf"] {
            assert!(check_cluster_path("dst", bad).is_err(), "{bad:?}");
        }
        assert!(check_s3("http://127.0.0.1:8333", "b", "k").is_ok());
        assert!(check_s3("ftp://x", "b", "k").is_err());
        assert!(check_s3("http://x", "a/b", "k").is_err());
        assert!(check_s3("http://x", "b", "").is_err());
    }
}

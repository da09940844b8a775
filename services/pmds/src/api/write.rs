//! InfluxDB-compatible ingest (D6.7 4.4: the ETA stores the probes' telemetry in PMDS):
//! `POST /api/v2/write?bucket=&org=&precision=` and `POST /write?db=&rp=&precision=`, so the ETA,
//! Telegraf and influx clients write unchanged.
//!
//! - Auth: `Authorization: Bearer <t>` or InfluxDB's `Authorization: Token <t>` (see
//!   `influx_token_scheme` in the crate root), same tokens as every other route.
//! - Body: line protocol, optionally `Content-Encoding: gzip` (inflated up to
//!   `max_write_bytes`). A malformed line rejects the whole body: nothing is stored.
//! - Answers as InfluxDB: 204 on success; errors `{"code": "...", "message": "..."}` with 400
//!   `invalid`, 413 `request too large`, 415 `unsupported media type`, 503 `unavailable`.
//!   (A body over the HTTP limit is refused by the service shell before this handler, in the
//!   common `{"error": ...}` shape.)

use std::io::Read;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serrano_timeseries::{Precision, TsError};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use crate::Pmds;

/// The error body of the write routes (InfluxDB's shape).
#[derive(Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct InfluxError {
    /// `invalid`, `request too large`, `unsupported media type`, `unavailable`,
    /// `internal error`.
    pub code: String,
    pub message: String,
}

fn influx_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(InfluxError {
            code: code.to_owned(),
            message: message.into(),
        }),
    )
        .into_response()
}

fn invalid(message: impl Into<String>) -> Response {
    influx_error(StatusCode::BAD_REQUEST, "invalid", message)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WriteV2Params {
    /// Bucket to write into (required): the cluster UUID, `SERRANO_Deployments`, ...
    pub bucket: Option<String>,
    /// Organisation (accepted, not used: PMDS has one).
    pub org: Option<String>,
    /// Organisation id (accepted, not used).
    #[serde(rename = "orgID")]
    #[param(rename = "orgID")]
    pub org_id: Option<String>,
    /// Timestamp unit: `ns` (default), `us`, `ms`, `s`.
    pub precision: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WriteV1Params {
    /// Database (required): the bucket, or `db/rp` with a retention policy other than
    /// `autogen`, as InfluxDB 2 maps them.
    pub db: Option<String>,
    /// Retention policy.
    pub rp: Option<String>,
    /// Timestamp unit: `n`/`ns` (default), `u`/`us`, `ms`, `s`.
    pub precision: Option<String>,
    /// Accepted, not used.
    pub consistency: Option<String>,
}

/// Write line protocol (InfluxDB 2 API).
#[utoipa::path(post, path = "/api/v2/write", tag = "Write", params(WriteV2Params),
    request_body(content = String, content_type = "text/plain", description = "Influx line protocol, optionally gzip (Content-Encoding: gzip)"),
    responses((status = 204, description = "Stored"),
        (status = 400, body = InfluxError), (status = 401, body = serrano_service::ErrorBody),
        (status = 413, body = InfluxError), (status = 415, body = InfluxError), (status = 503, body = InfluxError)))]
pub async fn write_v2(
    State(state): State<AppState>,
    params: Result<Query<WriteV2Params>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let params = match params {
        Ok(Query(params)) => params,
        Err(rejection) => return refuse(&state, invalid(rejection.body_text())),
    };
    let Some(bucket) = params.bucket.filter(|b| !b.is_empty()) else {
        return refuse(&state, invalid("missing bucket"));
    };
    let precision = match params.precision.as_deref() {
        None | Some("") => Precision::Nanoseconds,
        Some(text) => match Precision::parse(text) {
            Some(precision) => precision,
            None => return refuse(&state, invalid(format!("invalid precision {text:?}"))),
        },
    };
    store(&state, bucket, precision, &headers, body).await
}

/// Write line protocol (InfluxDB 1 API).
#[utoipa::path(post, path = "/write", tag = "Write", params(WriteV1Params),
    request_body(content = String, content_type = "text/plain", description = "Influx line protocol, optionally gzip (Content-Encoding: gzip)"),
    responses((status = 204, description = "Stored"),
        (status = 400, body = InfluxError), (status = 401, body = serrano_service::ErrorBody),
        (status = 413, body = InfluxError), (status = 415, body = InfluxError), (status = 503, body = InfluxError)))]
pub async fn write_v1(
    State(state): State<AppState>,
    params: Result<Query<WriteV1Params>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let params = match params {
        Ok(Query(params)) => params,
        Err(rejection) => return refuse(&state, invalid(rejection.body_text())),
    };
    let Some(db) = params.db.filter(|d| !d.is_empty()) else {
        return refuse(&state, invalid("missing db"));
    };
    let bucket = match params.rp.as_deref() {
        None | Some("") | Some("autogen") => db,
        Some(rp) => format!("{db}/{rp}"),
    };
    let precision = match params.precision.as_deref() {
        None | Some("") => Precision::Nanoseconds,
        Some(text) => match Precision::parse(text) {
            Some(precision) => precision,
            None => return refuse(&state, invalid(format!("invalid precision {text:?}"))),
        },
    };
    store(&state, bucket, precision, &headers, body).await
}

/// Counts a refused request, then answers it.
fn refuse(state: &Pmds, response: Response) -> Response {
    let counter = if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        &state.stats.too_large
    } else if response.status().is_client_error() {
        &state.stats.invalid
    } else {
        &state.stats.failed
    };
    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    response
}

async fn store(
    state: &Pmds,
    bucket: String,
    precision: Precision,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(message) = check_bucket(&bucket) {
        return refuse(state, invalid(message));
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return refuse(state, too_large(state.limits.max_write_bytes));
        }
        Err(rejection) => {
            return refuse(
                state,
                invalid(format!("cannot read body: {}", rejection.body_text())),
            );
        }
    };
    let body = match decode_body(headers, body, state.limits.max_write_bytes).await {
        Ok(body) => body,
        Err(err) => return refuse(state, err.into_response()),
    };
    match state
        .store
        .write_line_protocol(&bucket, &body, precision)
        .await
    {
        Ok(summary) => {
            use std::sync::atomic::Ordering::Relaxed;
            state.stats.accepted.fetch_add(1, Relaxed);
            state.stats.lines.fetch_add(summary.lines, Relaxed);
            state.stats.samples.fetch_add(summary.samples, Relaxed);
            if summary.lines > 0
                && let Ok(cluster) = uuid::Uuid::parse_str(&bucket)
            {
                state.remember(format!("cluster:{cluster}"));
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(TsError::Invalid(message)) => refuse(state, invalid(message)),
        Err(TsError::Unsupported(message)) => refuse(
            state,
            influx_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable entity",
                message,
            ),
        ),
        Err(TsError::Unavailable(message)) => refuse(
            state,
            influx_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message),
        ),
        Err(TsError::Io(err)) => {
            tracing::error!(error = %err, bucket, "storing a write failed");
            refuse(
                state,
                influx_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error",
                    "internal error",
                ),
            )
        }
    }
}

fn check_bucket(bucket: &str) -> Result<(), String> {
    if bucket.len() > 255 {
        return Err("bucket name is longer than 255 bytes".into());
    }
    if bucket.chars().any(char::is_control) {
        return Err("bucket name has control characters".into());
    }
    Ok(())
}

/// A refused write in InfluxDB's terms (small, unlike a built `Response`).
#[derive(Debug)]
pub struct WriteError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl WriteError {
    fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid",
            message: message.into(),
        }
    }

    fn too_large(max: usize) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "request too large",
            message: format!("write body is larger than {max} bytes"),
        }
    }
}

impl IntoResponse for WriteError {
    fn into_response(self) -> Response {
        influx_error(self.status, self.code, self.message)
    }
}

fn too_large(max: usize) -> Response {
    WriteError::too_large(max).into_response()
}

/// The body as line protocol: as sent, or inflated from gzip up to `max` bytes.
async fn decode_body(headers: &HeaderMap, body: Bytes, max: usize) -> Result<Bytes, WriteError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|value| value.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("") | Some("identity") => {
            if body.len() > max {
                return Err(WriteError::too_large(max));
            }
            Ok(body)
        }
        Some("gzip") | Some("x-gzip") => {
            // Inflating is CPU work: off the async workers.
            tokio::task::spawn_blocking(move || gunzip(&body, max))
                .await
                .map_err(|err| WriteError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    code: "internal error",
                    message: format!("decompression task failed: {err}"),
                })?
        }
        Some(other) => Err(WriteError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "unsupported media type",
            message: format!("content encoding {other:?} is not supported (gzip or identity)"),
        }),
    }
}

/// Inflates a gzip body (several members allowed), refusing more than `max` bytes.
pub fn gunzip(body: &[u8], max: usize) -> Result<Bytes, WriteError> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(max));
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::MultiGzDecoder::new(body)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|err| WriteError::invalid(format!("gzip body cannot be decoded: {err}")))?;
    if out.len() > max {
        return Err(WriteError::too_large(max));
    }
    Ok(Bytes::from(out))
}

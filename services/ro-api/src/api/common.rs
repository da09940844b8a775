//! Pieces every handler family shares: revision preconditions, ETags, list revisions and the
//! NDJSON watch stream.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serrano_datastore::{KvStore, Revision, WatchEvent};
use serrano_service::ApiError;
use utoipa::{IntoParams, ToSchema};

use crate::store::store_error;

/// Header carrying the store revision a list was read at; watching from `revision + 1` then
/// misses nothing.
pub const LIST_REVISION_HEADER: &str = "x-serrano-revision";

/// The precondition of an update: an `If-Match: "<revision>"` header and/or a `revision` field in
/// the body. Both given and different is a client bug and answers 400.
pub fn expected_revision(
    headers: &HeaderMap,
    body_revision: Option<Revision>,
) -> Result<Option<Revision>, ApiError> {
    let header_revision = match headers.get(header::IF_MATCH) {
        None => None,
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| ApiError::bad_request("If-Match: not ASCII"))?
                .trim();
            if text == "*" {
                None
            } else {
                let bare = text.trim_start_matches("W/").trim_matches('"');
                Some(bare.parse::<Revision>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "If-Match: expected a revision such as \"42\", got {text:?}"
                    ))
                })?)
            }
        }
    };
    match (header_revision, body_revision) {
        (Some(h), Some(b)) if h != b => Err(ApiError::bad_request(format!(
            "If-Match revision {h} differs from body revision {b}"
        ))),
        (Some(r), _) | (None, Some(r)) => Ok(Some(r)),
        (None, None) => Ok(None),
    }
}

/// A JSON body with an `ETag` carrying the object's revision.
pub fn with_etag<T: Serialize>(revision: Revision, body: T) -> Response {
    let mut response = axum::Json(body).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("\"{revision}\"")) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// A JSON list body with the revision it was read at.
pub fn with_list_revision<T: Serialize>(revision: Revision, body: T) -> Response {
    let mut response = axum::Json(body).into_response();
    response
        .headers_mut()
        .insert(LIST_REVISION_HEADER, HeaderValue::from(revision));
    response
}

/// What a successful write answers: the object's id and its new revision.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Written {
    pub revision: Revision,
}

/// Query of every watch endpoint.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WatchParams {
    /// Replay every change from this revision on (e.g. a list's `x-serrano-revision` + 1),
    /// then follow live changes. Without it only changes after the call are sent.
    pub revision: Option<Revision>,
}

/// One line of a watch stream (newline-delimited JSON).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WatchLine {
    /// `PUT`, `DELETE`, or `ERROR` (the last line of a stream that failed).
    #[serde(rename = "type")]
    pub event_type: String,
    pub key: Option<String>,
    pub revision: Option<Revision>,
    /// The object after a PUT.
    pub object: Option<serde_json::Value>,
    pub error: Option<serde_json::Value>,
}

impl WatchLine {
    fn from_event(event: &WatchEvent) -> Self {
        match event {
            WatchEvent::Put(kv) => WatchLine {
                event_type: "PUT".to_owned(),
                key: Some(kv.key.clone()),
                revision: Some(kv.mod_revision),
                // Values the API did not write (plain heartbeat strings) go out as strings.
                object: Some(serde_json::from_slice(&kv.value).unwrap_or_else(|_| {
                    serde_json::Value::String(String::from_utf8_lossy(&kv.value).into_owned())
                })),
                error: None,
            },
            WatchEvent::Delete { key, revision } => WatchLine {
                event_type: "DELETE".to_owned(),
                key: Some(key.clone()),
                revision: Some(*revision),
                object: None,
                error: None,
            },
        }
    }

    fn failure(err: ApiError) -> Self {
        WatchLine {
            event_type: "ERROR".to_owned(),
            key: None,
            revision: None,
            object: None,
            error: Some(serde_json::json!({"code": err.code, "message": err.message})),
        }
    }

    fn encode(&self) -> bytes::Bytes {
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        bytes::Bytes::from(line)
    }
}

/// Streams the changes under `prefix` that `keep` accepts as NDJSON until the client goes away.
/// A start revision that is no longer retained answers 410 before the stream starts.
pub async fn watch_response<F>(
    kv: &Arc<dyn KvStore>,
    prefix: String,
    start: Option<Revision>,
    mut keep: F,
) -> Result<Response, ApiError>
where
    F: FnMut(&WatchEvent) -> bool + Send + 'static,
{
    if let Some(revision) = start
        && revision < 1
    {
        return Err(ApiError::bad_request("revision: must be positive"));
    }
    let events = kv.watch_prefix(&prefix, start).await.map_err(store_error)?;
    let lines = events
        .filter_map(move |item| {
            let line = match item {
                Ok(event) if keep(&event) => Some(WatchLine::from_event(&event)),
                Ok(_) => None,
                Err(err) => Some(WatchLine::failure(store_error(err))),
            };
            async move { line }
        })
        .scan(false, |ended, line| {
            // Stop after the first ERROR line: the stream is over once it failed.
            if *ended {
                return futures::future::ready(None);
            }
            *ended = line.event_type == "ERROR";
            futures::future::ready(Some(Ok::<_, Infallible>(line.encode())))
        });
    let mut response = Body::from_stream(lines).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

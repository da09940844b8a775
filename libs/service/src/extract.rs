//! Extractors whose rejections are answered in the error shape of [`ApiError`].
//!
//! axum's own `Json`, `Path` and `Query` answer plain-text rejections; these wrappers decode the
//! same way but say what went wrong in JSON, naming the offending field or parameter.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body (decoded strictly) or a JSON response body.
///
/// As an extractor: a missing or non-JSON content type answers 415, a body over the limit 413, a
/// syntax error 400 with line and column, and a type error, missing or unknown field 400 naming
/// the field's path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApiJson<T>(pub T);

/// A path parameter (or tuple / struct of them); a failure to decode answers 400.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApiPath<T>(pub T);

/// A query string decoded into `T`; a failure to decode answers 400.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApiQuery<T>(pub T);

/// Whether a content type is JSON: `application/json` or `application/<anything>+json`.
fn is_json_content_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Decodes a JSON document strictly, naming the failing field path in the error.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        json_error(&path, &inner)
    })?;
    // Trailing garbage after the document is a syntax error too.
    deserializer
        .end()
        .map_err(|error| json_error(".", &error))?;
    Ok(value)
}

fn json_error(path: &str, error: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match error.classify() {
        // serde_json's message already ends with "at line L column C".
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::bad_request(format!("malformed JSON body: {error}"))
        }
        Category::Data if path == "." => {
            ApiError::bad_request(format!("invalid JSON body: {error}"))
        }
        Category::Data => {
            ApiError::bad_request(format!("invalid JSON body at field `{path}`: {error}"))
        }
    }
}

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok());
        match content_type {
            Some(value) if is_json_content_type(value) => {}
            Some(value) => {
                return Err(ApiError::unsupported_media_type(format!(
                    "expected content-type application/json, got {value}"
                )));
            }
            None => {
                return Err(ApiError::unsupported_media_type(
                    "missing content-type, expected application/json",
                ));
            }
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::payload_too_large("request body is larger than allowed")
                } else {
                    ApiError::bad_request(format!(
                        "cannot read request body: {}",
                        rejection.body_text()
                    ))
                }
            })?;
        decode_json(&bytes).map(ApiJson)
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) if rejection.status().is_server_error() => Err(ApiError::internal(
                format!("path extraction failed: {}", rejection.body_text()),
            )),
            Err(rejection) => Err(ApiError::bad_request(format!(
                "invalid path parameter: {}",
                strip_axum_prefix(&rejection.body_text())
            ))),
        }
    }
}

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection| {
                ApiError::bad_request(format!(
                    "invalid query string: {}",
                    strip_axum_prefix(&rejection.body_text())
                ))
            })
    }
}

/// axum prefixes its rejection texts ("Invalid URL: ...", "Failed to deserialize query
/// string: ..."); our messages carry their own prefix, so drop axum's.
fn strip_axum_prefix(text: &str) -> &str {
    for prefix in ["Invalid URL: ", "Failed to deserialize query string: "] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return rest;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        assert!(is_json_content_type("application/json"));
        assert!(is_json_content_type("Application/JSON; charset=utf-8"));
        assert!(is_json_content_type("application/merge-patch+json"));
        assert!(!is_json_content_type("text/plain"));
        assert!(!is_json_content_type("application/jsonx"));
    }

    #[test]
    fn trailing_garbage_is_a_syntax_error() {
        let error = decode_json::<u32>(b"1 2").unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert!(
            error.message.contains("line 1 column 3"),
            "{}",
            error.message
        );
    }
}

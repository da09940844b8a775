//! The extractors behind the shell: JSON bodies, path and query parameters.

// Test code: a failed unwrap is a failed test (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::{Body, Bytes};
use http::{StatusCode, header};
use serde_json::json;

use common::{assert_error, post_json, request, send_json, shell};

#[tokio::test]
async fn json_body_accepted_and_echoed() {
    let (status, body) = send_json(
        shell(None),
        post_json(r#"{"name":"a","count":2,"inner":{"size":3}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"name": "a", "count": 2, "inner": {"size": 3}}));

    let (status, body) = send_json(shell(None), post_json(r#"{"name":"","count":2}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "validation_failed", &["name must not be empty"]);
}

#[tokio::test]
async fn json_body_errors_name_the_problem() {
    let cases: [(&str, &[&str]); 6] = [
        (
            r#"{"name":"a","count":2"#,
            &["malformed JSON", "line 1", "column"],
        ),
        (
            "{\n  \"name\": \"a\",\n  oops\n}",
            &["malformed JSON", "line 3"],
        ),
        (
            r#"{"name":"a","count":"two"}"#,
            &["`count`", "invalid type"],
        ),
        (
            r#"{"name":"a","count":2,"inner":{"size":-1}}"#,
            &["`inner.size`", "-1"],
        ),
        (
            r#"{"name":"a","count":2,"colour":"red"}"#,
            &["unknown field `colour`"],
        ),
        (r#"{"count":2}"#, &["missing field `name`"]),
    ];
    for (input, needles) in cases {
        let (status, body) = send_json(shell(None), post_json(input)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{input}");
        assert_error(&body, "bad_request", needles);
    }
}

#[tokio::test]
async fn json_content_type_is_required() {
    let req = request("POST", "/widgets")
        .body(Body::from(r#"{"name":"a","count":2}"#))
        .unwrap();
    let (status, body) = send_json(shell(None), req).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_error(&body, "unsupported_media_type", &["missing content-type"]);

    let req = request("POST", "/widgets")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(r#"{"name":"a","count":2}"#))
        .unwrap();
    let (status, body) = send_json(shell(None), req).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_error(&body, "unsupported_media_type", &["text/plain"]);
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let big = format!(r#"{{"name":"{}","count":1}}"#, "x".repeat(2000));
    // Declared too large: refused before reading.
    let mut declared = post_json(&big);
    declared
        .headers_mut()
        .insert(header::CONTENT_LENGTH, big.len().into());
    let (status, body) = send_json(shell(None), declared).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&body, "payload_too_large", &["1024 bytes"]);

    // Undeclared (oneshot adds no Content-Length): refused while reading.
    let (status, body) = send_json(shell(None), post_json(&big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&body, "payload_too_large", &["larger than allowed"]);

    // Chunked: no Content-Length, so the limit bites while reading.
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        (0..10).map(|_| Ok(Bytes::from(vec![b' '; 200]))).collect();
    let req = request("POST", "/widgets")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    let (status, body) = send_json(shell(None), req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&body, "payload_too_large", &["larger than allowed"]);
}

#[tokio::test]
async fn path_and_query_errors_are_400() {
    let req = request("GET", "/widgets/not-a-uuid")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send_json(shell(None), req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(
        &body,
        "bad_request",
        &["invalid path parameter", "not-a-uuid"],
    );

    let req = request("GET", "/search?limit=ten")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send_json(shell(None), req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "bad_request", &["invalid query string", "limit"]);

    let req = request("GET", "/search?limit=10")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send_json(shell(None), req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"limit": 10}));
}

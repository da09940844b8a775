#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The FaaS function contract over HTTP: inline inputs, the timing breakdown, the catalogue, and
//! every error answered with the right status.

mod common;

use serde_json::{Value, json};

#[tokio::test]
async fn inline_invocation_returns_values_and_timings() {
    let base = common::serve(common::runner(None, None)).await;
    let a = vec![vec![0.0, 1.0, 2.0, 3.0], vec![1.0, 1.0, 1.0, 1.0]];
    let b = vec![vec![0.0, 0.0, 1.0, 2.0, 3.0]];
    let desc = json!({"uuid": "r-1", "inputs": {"a": a, "b": b}, "mode": "cpu"});
    let (status, body) = common::invoke(&base, "dtw", &desc).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["request_uuid"], "r-1");
    assert_eq!(body["kernel_name"], "dtw");
    assert_eq!(body["kernel_mode"], "cpu");
    assert_eq!(body["outputs"][0]["name"], "distances");
    assert_eq!(body["outputs"][0]["rows"], 2);
    assert_eq!(body["outputs"][0]["cols"], 1);
    let got = body["data"]["distances"].as_array().unwrap();
    let want0 = common::dtw(&[0.0, 1.0, 2.0, 3.0], &[0.0, 0.0, 1.0, 2.0, 3.0]);
    let want1 = common::dtw(&[1.0, 1.0, 1.0, 1.0], &[0.0, 0.0, 1.0, 2.0, 3.0]);
    assert!(
        (got[0][0].as_f64().unwrap() - want0).abs() < 1e-5,
        "{got:?} vs {want0}"
    );
    assert!(
        (got[1][0].as_f64().unwrap() - want1).abs() < 1e-5,
        "{got:?} vs {want1}"
    );
    let m = &body["metrics"];
    for key in [
        "read_input_from_backend_ms",
        "parse_input_ms",
        "run_kernel_ms",
        "push_output_to_backend_ms",
        "total_ms",
    ] {
        assert!(m[key].as_f64().unwrap() >= 0.0, "{key} in {m}");
    }
    assert!(m["total_ms"].as_f64().unwrap() >= m["run_kernel_ms"].as_f64().unwrap());
}

#[tokio::test]
async fn the_original_drivers_json_string_body_is_accepted() {
    let base = common::serve(common::runner(None, None)).await;
    let desc = json!({"inputs": {"a": [[1.0, 2.0]]}, "w": 1}).to_string();
    let r = common::client()
        .post(format!("{base}/api/v1/kernels/dtw/invoke"))
        .json(&Value::String(desc))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["distances"], json!([[0.0]]));
}

#[tokio::test]
async fn catalogue_lists_every_kernel_and_device() {
    let base = common::serve(common::runner(None, None)).await;
    let body: Value = common::client()
        .get(format!("{base}/api/v1/kernels"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = body["kernels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "knn",
            "kmeans",
            "dtw",
            "savgol",
            "black_scholes",
            "kalman",
            "fft",
            "wavelet",
            "min_max"
        ]
    );
    assert_eq!(body["devices"][0]["backend"], "cpu");
    assert_eq!(body["devices"][0]["available"], true);
    assert_eq!(body["devices"][1]["available"], false);
}

#[tokio::test]
async fn errors_have_the_right_status_and_a_message() {
    let base = common::serve(common::runner(None, None)).await;
    let cases = [
        (
            "nope",
            json!({"inputs": {"a": [[1.0]]}}),
            404,
            "unknown kernel",
        ),
        (
            "dtw",
            json!({"inputs": {"a": [[1.0]]}, "mode": "tpu"}),
            400,
            "mode 'tpu'",
        ),
        (
            "dtw",
            json!({"inputs": {"a": [[1.0]]}, "mode": "gpu"}),
            503,
            "CUDA",
        ),
        (
            "dtw",
            json!({"inputs": {"a": [[1.0, 2.0], [1.0]]}}),
            400,
            "row 1",
        ),
        (
            "dtw",
            json!({"inputs": {"a": [[1.0]]}, "w": -3}),
            422,
            "window",
        ),
        (
            "dtw",
            json!({"inputs": {"a": [[1.0]], "b": [[1.0]], "c": [[1.0]]}}),
            400,
            "inputs.c: dtw has no such input",
        ),
        (
            "dtw",
            json!({"inputs": {"a": [[1.0]]}, "uuid": "../x"}),
            400,
            "uuid",
        ),
        (
            "savgol",
            json!({"inputs": {"signal": [[1.0, 2.0, 3.0]]}, "window": 3, "polyorder": 1, "mode": "mirror"}),
            400,
            "mode 'mirror'",
        ),
        (
            "dtw",
            json!({"bucket_id": "b", "arguments": ["a.csv"]}),
            503,
            "no S3 endpoint",
        ),
        (
            "dtw",
            json!({"storage": "broker", "queue_id": "q"}),
            503,
            "no message broker",
        ),
        (
            "dtw",
            json!({"storage": "file", "arguments": ["/etc/passwd"]}),
            400,
            "disabled",
        ),
        (
            "dtw",
            json!({"inputs": {"a": [[1.0]]}, "output_format": "xml"}),
            400,
            "output_format",
        ),
    ];
    for (kernel, body, want, needle) in cases {
        let (status, answer) = common::invoke(&base, kernel, &body).await;
        assert_eq!(status, want, "{kernel} {body}: {answer}");
        let message = answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            message.contains(needle),
            "{kernel} {body}: '{message}' lacks '{needle}'"
        );
    }
    let r = common::client()
        .post(format!("{base}/function/dtw"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

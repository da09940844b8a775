//! `serve` on a real socket: plain HTTP, TLS, graceful shutdown, bad certificate files.

// Test code: a failed unwrap is a failed test (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use serrano_service::{Secret, ServiceShell, TlsFiles, serve, serve_with_drain};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const TOKEN: &str = "serve-token";

fn app() -> Router {
    let mut shell = ServiceShell::new("serve-test", utoipa::openapi::OpenApi::default());
    shell.tokens = vec![Secret::new(TOKEN)];
    shell.into_router(
        Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "done"
                }),
            )
            .route("/hang", get(std::future::pending::<()>)),
    )
}

#[tokio::test]
async fn plain_http_serves_and_drains_on_shutdown() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(app(), listener, None, async {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::new();
    let health = client
        .get(format!("http://{address}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.headers().contains_key("x-request-id"));
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(body["service"], "serve-test");

    // A request in flight when shutdown starts still gets its answer.
    let slow = tokio::spawn(
        client
            .get(format!("http://{address}/slow"))
            .bearer_auth(TOKEN)
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    let slow = slow.await.unwrap().unwrap();
    assert_eq!(slow.status(), 200);
    assert_eq!(slow.text().await.unwrap(), "done");

    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve returns after shutdown")
        .unwrap()
        .unwrap();
    assert!(
        client
            .get(format!("http://{address}/health"))
            .send()
            .await
            .is_err(),
        "still listening after shutdown"
    );
}

#[tokio::test]
async fn tls_serves_with_a_self_signed_certificate() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = TlsFiles {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    };
    std::fs::write(&files.cert, certified.cert.pem()).unwrap();
    std::fs::write(&files.key, certified.signing_key.serialize_pem()).unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(app(), listener, Some(files), async {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap()])
        .build()
        .unwrap();
    let health = client
        .get(format!("https://localhost:{port}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let response = client
        .get(format!("https://localhost:{port}/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains(r#"route="/health""#), "{text}");

    // Plain HTTP on the TLS port gets nowhere.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve returns after shutdown")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn bad_certificate_files_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a pem file").unwrap();
    let cases = [
        (
            dir.path().join("missing.pem"),
            garbage.clone(),
            "missing.pem",
        ),
        (garbage.clone(), garbage.clone(), "no certificate found"),
    ];
    for (cert, key, needle) in cases {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let files = TlsFiles { cert, key };
        let error = serve(app(), listener, Some(files), std::future::pending())
            .await
            .unwrap_err();
        assert!(error.to_string().contains(needle), "{error}");
    }

    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let files = TlsFiles { cert, key: garbage };
    let error = serve(app(), listener, Some(files), std::future::pending())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("private key"), "{error}");
}

#[tokio::test]
async fn drain_deadline_bounds_shutdown() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve_with_drain(
        app(),
        listener,
        None,
        async {
            let _ = stopped.await;
        },
        Duration::from_millis(200),
    ));
    let hanging = tokio::spawn(
        reqwest::Client::new()
            .get(format!("http://{address}/hang"))
            .bearer_auth(TOKEN)
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(3), server)
        .await
        .expect("serve gives up on a hanging request after the drain deadline")
        .unwrap()
        .unwrap();
    hanging.abort();
}

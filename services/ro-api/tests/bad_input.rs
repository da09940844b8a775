//! Bad input on every route family: the right status, the error shape, and nothing written.

#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use common::{APP_YAML, Api, MAX_BODY};
use http::{Method, Request, StatusCode, header};
use serde_json::json;

/// Every route with the method and a valid-looking body where it takes one.
/// `every_documented_route_is_in_the_bad_input_list` keeps this list complete.
fn routes() -> Vec<(Method, String, Option<serde_json::Value>)> {
    let id = "fdf45855-1299-47f1-8ea6-98be8d89030b";
    let faas = json!({"request_uuid": id, "kernel_name": "kmeans", "data_description": {}});
    let assignment =
        json!({"kind": "Deployment", "cluster_uuid": id, "deployment_uuid": id, "uuid": id});
    vec![
        (Method::GET, "/deployments".into(), None),
        (
            Method::POST,
            "/deployments".into(),
            Some(json!({"deployment_description": APP_YAML})),
        ),
        (
            Method::PUT,
            "/deployments".into(),
            Some(json!({"deployment_uuid": id})),
        ),
        (Method::GET, format!("/deployments/{id}"), None),
        (Method::DELETE, format!("/deployments/{id}"), None),
        (Method::GET, format!("/deployments/logs/{id}"), None),
        (Method::GET, format!("/deployments/services/{id}"), None),
        (Method::GET, "/deployments/watch".into(), None),
        (Method::GET, "/storage_policies".into(), None),
        (
            Method::POST,
            "/storage_policies".into(),
            Some(json!({"policy_parameters": {}})),
        ),
        (
            Method::PUT,
            "/storage_policies".into(),
            Some(json!({"policy_uuid": id})),
        ),
        (Method::GET, format!("/storage_policies/{id}"), None),
        (Method::DELETE, format!("/storage_policies/{id}"), None),
        (Method::GET, "/faas".into(), None),
        (Method::POST, "/faas".into(), Some(faas.clone())),
        (Method::GET, format!("/faas/{id}"), None),
        (Method::DELETE, format!("/faas/{id}"), None),
        (Method::GET, "/kernel".into(), None),
        (Method::POST, "/kernel".into(), Some(faas.clone())),
        (Method::GET, format!("/kernel/{id}"), None),
        (Method::DELETE, format!("/kernel/{id}"), None),
        (Method::GET, "/kernels".into(), None),
        (Method::POST, "/kernels".into(), Some(faas)),
        (Method::GET, format!("/kernels/{id}"), None),
        (Method::DELETE, format!("/kernels/{id}"), None),
        (Method::GET, "/clusters".into(), None),
        (
            Method::POST,
            "/clusters".into(),
            Some(json!({"cluster_uuid": id, "type": "k8s", "info": {}})),
        ),
        (
            Method::PUT,
            "/clusters".into(),
            Some(json!({"cluster_uuid": id, "type": "k8s", "info": {}})),
        ),
        (Method::GET, format!("/clusters/{id}"), None),
        (Method::DELETE, format!("/clusters/{id}"), None),
        (Method::GET, format!("/clusters/health/{id}"), None),
        (Method::PUT, format!("/clusters/health/{id}"), None),
        (Method::POST, format!("/clusters/health/{id}"), None),
        (Method::GET, "/clusters/watch".into(), None),
        (Method::GET, "/assignments".into(), None),
        (
            Method::POST,
            "/assignments".into(),
            Some(assignment.clone()),
        ),
        (Method::PUT, "/assignments".into(), Some(assignment)),
        (Method::GET, format!("/assignments/{id}"), None),
        (Method::DELETE, format!("/assignments/{id}"), None),
        (
            Method::GET,
            format!("/assignments/{id}/assignment/{id}"),
            None,
        ),
        (Method::GET, format!("/assignments/{id}/{id}"), None),
        (Method::GET, format!("/assignments/watch/{id}"), None),
        (Method::GET, "/bundles".into(), None),
        (
            Method::POST,
            "/bundles".into(),
            Some(json!({"description": {}})),
        ),
        (Method::PUT, "/bundles".into(), Some(json!({"uuid": id}))),
        (Method::GET, format!("/bundles/{id}"), None),
        (Method::DELETE, format!("/bundles/{id}"), None),
        (Method::GET, format!("/bundles/watch/{id}"), None),
        (Method::POST, "/logs".into(), Some(json!({"logs": []}))),
        (
            Method::PUT,
            "/monitoring".into(),
            Some(
                json!({"deployment_uuid": id, "cluster_uuid": id, "assignment_uuid": id, "k8s_params": []}),
            ),
        ),
    ]
}

#[test]
fn every_documented_route_is_in_the_bad_input_list() {
    let listed: Vec<(String, String)> = routes()
        .into_iter()
        .map(|(method, path, _)| {
            (
                method.to_string(),
                path.replace("fdf45855-1299-47f1-8ea6-98be8d89030b", "{}"),
            )
        })
        .collect();
    let document = serrano_ro_api::openapi();
    for (path, item) in &document.paths.paths {
        let path = path.strip_prefix("/api/v1/orchestrator").unwrap();
        let mut normalised = String::new();
        let mut in_param = false;
        for c in path.chars() {
            match c {
                '{' => {
                    in_param = true;
                    normalised.push_str("{}");
                }
                '}' => in_param = false,
                _ if in_param => {}
                _ => normalised.push(c),
            }
        }
        let methods = [
            ("GET", item.get.is_some()),
            ("POST", item.post.is_some()),
            ("PUT", item.put.is_some()),
            ("DELETE", item.delete.is_some()),
        ];
        for (method, present) in methods {
            if present {
                assert!(
                    listed.contains(&(method.to_owned(), normalised.clone())),
                    "{method} {normalised} is documented but not in routes()"
                );
            }
        }
    }
}

#[tokio::test]
async fn every_route_needs_a_valid_bearer_token() {
    let api = Api::new();
    for (method, path, body) in routes() {
        for auth in [None, Some("Bearer wrong-token"), Some("Basic dXNlcjpwYXNz")] {
            let mut builder = Request::builder()
                .method(method.clone())
                .uri(format!("/api/v1/orchestrator{path}"));
            if let Some(auth) = auth {
                builder = builder.header(header::AUTHORIZATION, auth);
            }
            let body = match &body {
                Some(b) => Body::from(serde_json::to_vec(b).unwrap()),
                None => Body::empty(),
            };
            let answer = api
                .raw(
                    builder
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(body)
                        .unwrap(),
                )
                .await;
            assert_eq!(
                answer.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {auth:?}"
            );
            assert_eq!(answer.code(), "unauthorized", "{method} {path}");
        }
    }
    // Nothing was written by any of those calls.
    assert!(
        api.kv
            .list_prefix("/serrano/")
            .await
            .unwrap()
            .kvs
            .is_empty()
    );
}

#[tokio::test]
async fn malformed_json_wrong_types_and_unknown_fields_answer_400() {
    let api = Api::new();
    for (method, path, body) in routes() {
        if body.is_none() {
            continue;
        }
        let broken = api
            .send_bytes(
                method.clone(),
                &path,
                b"{\"deployment_description\": ".to_vec(),
            )
            .await;
        assert_eq!(
            broken.status,
            StatusCode::BAD_REQUEST,
            "{method} {path}: {:?}",
            broken.body
        );
        assert!(!broken.message().is_empty());

        let mut unknown = body.clone().unwrap();
        unknown["surprise_field"] = json!(1);
        let answer = api.call(method.clone(), &path, Some(unknown)).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{method} {path}: {:?}",
            answer.body
        );
        assert!(
            answer.message().contains("surprise_field"),
            "{method} {path}: {}",
            answer.message()
        );

        let not_object = api.call(method.clone(), &path, Some(json!([1, 2]))).await;
        assert_eq!(
            not_object.status,
            StatusCode::BAD_REQUEST,
            "{method} {path}"
        );
    }
    let wrong_type = api
        .call(
            Method::POST,
            "/deployments",
            Some(json!({"deployment_description": 42})),
        )
        .await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    assert!(
        wrong_type.message().contains("deployment_description"),
        "{}",
        wrong_type.message()
    );
    let missing = api
        .call(
            Method::POST,
            "/storage_policies",
            Some(json!({"name": "p"})),
        )
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(
        missing.message().contains("policy_parameters"),
        "{}",
        missing.message()
    );
    let bad_status = api
        .call(Method::POST, "/clusters", Some(json!({"cluster_uuid": "5a075716-7d7d-4b40-9566-bc1a33ee70c2", "type": "mainframe"})))
        .await;
    assert_eq!(bad_status.status, StatusCode::BAD_REQUEST);
    assert!(
        api.kv
            .list_prefix("/serrano/")
            .await
            .unwrap()
            .kvs
            .is_empty()
    );
}

#[tokio::test]
async fn malformed_uuids_answer_400_and_unknown_ids_404() {
    let api = Api::new();
    for path in [
        "/deployments/not-a-uuid",
        "/deployments/logs/123",
        "/storage_policies/zzz",
        "/faas/1465c479-03d7-4123-8329",
        "/clusters/health/x",
        "/assignments/nope",
        "/bundles/nope",
        "/assignments/watch/nope",
    ] {
        let answer = api.call(Method::GET, path, None).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{path}: {:?}",
            answer.body
        );
        assert_eq!(answer.code(), "bad_request", "{path}");
    }
    let in_body = api
        .call(
            Method::PUT,
            "/deployments",
            Some(json!({"deployment_uuid": "nope"})),
        )
        .await;
    assert_eq!(in_body.status, StatusCode::BAD_REQUEST);

    let unknown = "0b3a1c4e-1111-4222-8333-444455556666";
    for (method, path) in [
        (Method::GET, format!("/deployments/{unknown}")),
        (Method::DELETE, format!("/deployments/{unknown}")),
        (Method::GET, format!("/deployments/logs/{unknown}")),
        (Method::GET, format!("/storage_policies/{unknown}")),
        (Method::DELETE, format!("/storage_policies/{unknown}")),
        (Method::GET, format!("/faas/{unknown}")),
        (Method::GET, format!("/clusters/{unknown}")),
        (Method::DELETE, format!("/clusters/{unknown}")),
        (Method::GET, format!("/clusters/health/{unknown}")),
        (Method::PUT, format!("/clusters/health/{unknown}")),
        (Method::GET, format!("/assignments/{unknown}")),
        (Method::DELETE, format!("/assignments/{unknown}")),
        (Method::GET, format!("/bundles/{unknown}")),
        (Method::DELETE, format!("/bundles/{unknown}")),
        (Method::GET, format!("/bundles/watch/{unknown}")),
    ] {
        let answer = api.call(method.clone(), &path, None).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(answer.code(), "not_found", "{method} {path}");
    }
    for (path, body) in [
        ("/deployments", json!({"deployment_uuid": unknown})),
        ("/storage_policies", json!({"policy_uuid": unknown})),
    ] {
        let answer = api.call(Method::PUT, path, Some(body)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "PUT {path}");
    }
    assert!(
        api.kv
            .list_prefix("/serrano/")
            .await
            .unwrap()
            .kvs
            .is_empty()
    );
}

#[tokio::test]
async fn invalid_yaml_answers_400_naming_the_document() {
    let api = Api::new();
    for (yaml, expect) in [
        ("apiVersion: v1\nkind: [oops\n", "line"),
        ("", "empty"),
        ("just a string", "not a mapping"),
        ("apiVersion: v1\nkind: Pod\n", "metadata.name"),
    ] {
        let answer = api
            .call(
                Method::POST,
                "/deployments",
                Some(json!({"deployment_description": yaml})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{yaml:?}");
        assert_eq!(answer.code(), "validation_failed");
        assert!(
            answer.message().contains(expect),
            "{yaml:?}: {}",
            answer.message()
        );
    }
    let two = format!("{APP_YAML}---\napiVersion: v1\nkind: Service\nmetadata: [x\n");
    let answer = api
        .call(
            Method::POST,
            "/deployments",
            Some(json!({"deployment_description": two})),
        )
        .await;
    assert!(
        answer.message().contains("document 3"),
        "{}",
        answer.message()
    );
    assert!(
        api.kv
            .list_prefix("/serrano/")
            .await
            .unwrap()
            .kvs
            .is_empty()
    );

    // An update with broken YAML leaves the stored deployment untouched.
    let uuid = api.create_deployment().await;
    let before = api
        .stored(&format!(
            "/serrano/orchestrator/deployments/deployment/{uuid}"
        ))
        .await;
    let answer = api
        .call(
            Method::PUT,
            "/deployments",
            Some(json!({"deployment_uuid": uuid, "deployment_description": "kind: ["})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        api.stored(&format!(
            "/serrano/orchestrator/deployments/deployment/{uuid}"
        ))
        .await,
        before
    );
}

#[tokio::test]
async fn oversized_bodies_answer_413_and_write_nothing() {
    let api = Api::new();
    let huge = format!("{APP_YAML}# {}\n", "x".repeat(MAX_BODY));
    let answer = api
        .call(
            Method::POST,
            "/deployments",
            Some(json!({"deployment_description": huge})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.code(), "payload_too_large");
    assert!(
        api.kv
            .list_prefix("/serrano/")
            .await
            .unwrap()
            .kvs
            .is_empty()
    );
}

#[tokio::test]
async fn bad_if_match_and_bad_queries_answer_400() {
    let api = Api::new();
    let uuid = api.create_deployment().await;
    let answer = api
        .call_with(
            Method::PUT,
            "/deployments",
            Some(json!({"deployment_uuid": uuid})),
            &[("if-match", "\"abc\"")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.message().contains("If-Match"));
    let answer = api
        .call_with(
            Method::PUT,
            "/deployments",
            Some(json!({"deployment_uuid": uuid, "revision": 3})),
            &[("if-match", "\"4\"")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    for query in [
        "/clusters?active=ten",
        "/clusters?active=5y",
        "/clusters?bogus=1",
        "/deployments/watch?revision=x",
    ] {
        let answer = api.call(Method::GET, query, None).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}");
    }
}

#[tokio::test]
async fn oversized_bodies_answer_413_on_every_route_that_takes_one() {
    let api = Api::new();
    let padding = "x".repeat(MAX_BODY + 1);
    for (method, path, body) in routes() {
        let Some(mut body) = body else { continue };
        body["padding"] = json!(padding);
        let answer = api.call(method.clone(), &path, Some(body)).await;
        assert_eq!(
            answer.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{method} {path}"
        );
        assert_eq!(answer.code(), "payload_too_large", "{method} {path}");
    }
    assert!(
        api.kv
            .list_prefix("/serrano/")
            .await
            .unwrap()
            .kvs
            .is_empty()
    );
}

#[tokio::test]
async fn stale_revisions_conflict_on_every_updatable_family() {
    let api = Api::new();
    let cluster = "5a075716-7d7d-4b40-9566-bc1a33ee70c2";
    api.register_cluster(cluster, "k8s").await;
    let deployment = api.create_deployment().await;
    let policy = api
        .call(
            Method::POST,
            "/storage_policies",
            Some(json!({"policy_parameters": {"cost": 1}})),
        )
        .await
        .body["policy_uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let assignment = api
        .call(
            Method::POST,
            "/assignments",
            Some(json!({"kind": "Deployment", "cluster_uuid": cluster, "deployment_uuid": deployment})),
        )
        .await
        .body["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let bundle = api
        .call(
            Method::POST,
            "/bundles",
            Some(json!({"description": {"kind": "FaaS"}})),
        )
        .await
        .body["uuid"]
        .as_str()
        .unwrap()
        .to_owned();

    let cases = [
        (
            format!("/deployments/{deployment}"),
            format!("/serrano/orchestrator/deployments/deployment/{deployment}"),
            "/deployments",
            json!({"deployment_uuid": deployment, "name": "changed"}),
        ),
        (
            format!("/storage_policies/{policy}"),
            format!("/serrano/orchestrator/storage_policies/policy/{policy}"),
            "/storage_policies",
            json!({"policy_uuid": policy, "name": "changed"}),
        ),
        (
            format!("/clusters/{cluster}"),
            format!("/serrano/orchestrator/clusters/cluster/{cluster}"),
            "/clusters",
            json!({"cluster_uuid": cluster, "type": "k8s", "info": {"changed": true}}),
        ),
        (
            format!("/assignments/{assignment}"),
            format!("/serrano/orchestrator/assignments/{cluster}/assignment/{assignment}"),
            "/assignments",
            json!({"uuid": assignment, "kind": "Deployment", "cluster_uuid": cluster, "deployment_uuid": deployment, "status": 2}),
        ),
        (
            format!("/bundles/{bundle}"),
            format!("/serrano/orchestrator/bundles/bundle/{bundle}"),
            "/bundles",
            json!({"uuid": bundle, "description": {"changed": true}}),
        ),
    ];
    for (get_path, key, put_path, body) in cases {
        let revision = api.call(Method::GET, &get_path, None).await.etag();
        let if_match = format!("\"{revision}\"");
        let first = api
            .call_with(
                Method::PUT,
                put_path,
                Some(body.clone()),
                &[("if-match", &if_match)],
            )
            .await;
        assert_eq!(first.status, StatusCode::OK, "{put_path}: {:?}", first.body);
        let after_first = api.stored(&key).await;
        let second = api
            .call_with(
                Method::PUT,
                put_path,
                Some(body),
                &[("if-match", &if_match)],
            )
            .await;
        assert_eq!(second.status, StatusCode::CONFLICT, "{put_path}");
        assert_eq!(second.code(), "conflict");
        assert_eq!(
            api.stored(&key).await,
            after_first,
            "{put_path}: a refused update changed the object"
        );
    }
}

#[tokio::test]
async fn garbage_never_causes_a_server_error() {
    let api = Api::new();
    let bodies: Vec<Vec<u8>> = vec![
        vec![],
        b"null".to_vec(),
        b"\"string\"".to_vec(),
        b"123456789012345678901234567890".to_vec(),
        b"{\"a\":".repeat(200),
        vec![0xff, 0xfe, 0x00, 0x80],
        b"{\"deployment_description\": \"\\ud800\"}".to_vec(),
        br#"{"deployment_uuid": "fdf45855-1299-47f1-8ea6-98be8d89030b", "deployment_description": "a: &x [*x]"}"#.to_vec(),
        br#"{"logs": [{"uuid": "fdf45855-1299-47f1-8ea6-98be8d89030b", "kind": "Deployment", "status": -1, "event": ""}]}"#.to_vec(),
        br#"{"logs": [{"uuid": "fdf45855-1299-47f1-8ea6-98be8d89030b", "kind": "Deployment", "status": 99999999999999999999, "event": ""}]}"#.to_vec(),
    ];
    // Watch routes answer 200 with an endless stream: their input checks are covered above.
    for (method, path, _) in routes()
        .into_iter()
        .filter(|(_, path, _)| !path.contains("/watch"))
    {
        for body in &bodies {
            let answer = api.send_bytes(method.clone(), &path, body.clone()).await;
            assert!(
                answer.status.is_success() || answer.status.is_client_error(),
                "{method} {path} with {:?}: {} {:?}",
                String::from_utf8_lossy(body),
                answer.status,
                answer.body
            );
            if answer.status.is_client_error() {
                assert!(
                    !answer.code().is_empty(),
                    "{method} {path}: error without the JSON shape"
                );
            }
        }
    }
    for path in [
        "/deployments/%00",
        "/deployments/..%2F..%2Fetc",
        "/clusters?active=%FF",
        "/deployments/watch?revision=-5",
        "/deployments/watch?revision=99999999999999999999",
        "/assignments/x/assignment/y",
    ] {
        let answer = api.call(Method::GET, path, None).await;
        assert!(answer.status.is_client_error(), "{path}: {}", answer.status);
    }
}

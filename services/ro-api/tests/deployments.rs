//! Deployments through the whole router: stored at the spec's key, listed, updated with
//! optimistic concurrency, terminated with their assignments and bundles.

#![allow(clippy::unwrap_used)]

mod common;

use common::{APP_YAML, Api};
use http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn create_stores_the_spec_object_at_the_spec_key() {
    let api = Api::new();
    let uuid = api.create_deployment().await;

    let stored = api
        .stored(&format!(
            "/serrano/orchestrator/deployments/deployment/{uuid}"
        ))
        .await
        .expect("deployment at its etcd key");
    assert_eq!(stored["kind"], "Deployment");
    assert_eq!(stored["name"], "web-app");
    assert_eq!(stored["deployment_uuid"], uuid.as_str());
    assert_eq!(stored["status"], 1);
    assert_eq!(stored["updated_by"], "Orchestration.API");
    assert_eq!(stored["deployment_description"], APP_YAML);
    assert_eq!(stored["assignments"], json!([]));
    assert_eq!(
        stored["logs"][0]["event"],
        "Deployment description received."
    );
    assert_eq!(
        stored["deployment_objectives"],
        json!([{"total_execution_time": 200}])
    );

    let got = api
        .call(Method::GET, &format!("/deployments/{uuid}"), None)
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["deployments"][0], stored);
    assert!(got.etag() > 0);

    let list = api.call(Method::GET, "/deployments", None).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["deployments"].as_array().unwrap().len(), 1);
    let list_revision: i64 = list.headers["x-serrano-revision"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(list_revision >= got.etag());
}

#[tokio::test]
async fn name_defaults_to_the_uuid_and_carriage_returns_are_stripped() {
    let api = Api::new();
    let answer = api
        .call(
            Method::POST,
            "/deployments",
            Some(json!({"deployment_description": APP_YAML.replace('\n', "\r\n")})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let uuid = answer.body["deployment_uuid"].as_str().unwrap();
    let stored = api
        .stored(&format!(
            "/serrano/orchestrator/deployments/deployment/{uuid}"
        ))
        .await
        .unwrap();
    assert_eq!(stored["name"], uuid);
    assert!(
        !stored["deployment_description"]
            .as_str()
            .unwrap()
            .contains('\r')
    );
}

#[tokio::test]
async fn logs_show_status_and_events() {
    let api = Api::new();
    let uuid = api.create_deployment().await;
    let logs = api
        .call(Method::GET, &format!("/deployments/logs/{uuid}"), None)
        .await;
    assert_eq!(logs.status, StatusCode::OK);
    assert_eq!(logs.body["deployments"]["deployment_uuid"], uuid.as_str());
    assert_eq!(logs.body["deployments"]["status"], 1);
    assert_eq!(
        logs.body["deployments"]["logs"][0]["event"],
        "Deployment description received."
    );
}

#[tokio::test]
async fn update_with_current_revision_applies_and_stale_revision_conflicts() {
    let api = Api::new();
    let uuid = api.create_deployment().await;
    let revision = api
        .call(Method::GET, &format!("/deployments/{uuid}"), None)
        .await
        .etag();

    let new_objectives = json!([{"lowest_energy": true}]);
    let ok = api
        .call_with(
            Method::PUT,
            "/deployments",
            Some(json!({"deployment_uuid": uuid, "deployment_objectives": new_objectives})),
            &[("if-match", &format!("\"{revision}\""))],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert!(ok.body["revision"].as_i64().unwrap() > revision);

    // The same precondition again is now stale: 409, and the object keeps the first update.
    let stale = api
        .call_with(
            Method::PUT,
            "/deployments",
            Some(json!({"deployment_uuid": uuid, "deployment_objectives": []})),
            &[("if-match", &format!("\"{revision}\""))],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(stale.code(), "conflict");
    let stored = api
        .stored(&format!(
            "/serrano/orchestrator/deployments/deployment/{uuid}"
        ))
        .await
        .unwrap();
    assert_eq!(stored["deployment_objectives"], new_objectives);
    assert_eq!(stored["logs"].as_array().unwrap().len(), 2);

    // A body revision works as the header does.
    let stale_body = api
        .call(
            Method::PUT,
            "/deployments",
            Some(json!({"deployment_uuid": uuid, "revision": revision, "name": "x"})),
        )
        .await;
    assert_eq!(stale_body.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn concurrent_updates_on_one_revision_let_exactly_one_win() {
    let api = std::sync::Arc::new(Api::new());
    let uuid = api.create_deployment().await;
    let revision = api
        .call(Method::GET, &format!("/deployments/{uuid}"), None)
        .await
        .etag();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let api = api.clone();
        let uuid = uuid.clone();
        tasks.push(tokio::spawn(async move {
            api.call(
                Method::PUT,
                "/deployments",
                Some(
                    json!({"deployment_uuid": uuid, "revision": revision, "name": format!("n{i}")}),
                ),
            )
            .await
            .status
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        7,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn unconditional_concurrent_updates_are_all_kept() {
    let api = std::sync::Arc::new(Api::new());
    let uuid = api.create_deployment().await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let api = api.clone();
        let uuid = uuid.clone();
        tasks.push(tokio::spawn(async move {
            api.call(
                Method::PUT,
                "/deployments",
                Some(json!({"deployment_uuid": uuid})),
            )
            .await
            .status
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    // Every update appended its log entry: none was lost.
    let stored = api
        .stored(&format!(
            "/serrano/orchestrator/deployments/deployment/{uuid}"
        ))
        .await
        .unwrap();
    assert_eq!(stored["logs"].as_array().unwrap().len(), 9);
}

#[tokio::test]
async fn delete_terminates_assignments_and_bundles_then_answers_404() {
    let api = Api::new();
    let uuid = api.create_deployment().await;
    let cluster = "5a075716-7d7d-4b40-9566-bc1a33ee70c2";
    api.register_cluster(cluster, "k8s").await;
    let bundle = api
        .call(
            Method::POST,
            "/bundles",
            Some(json!({"description": [{"kind": "Deployment"}]})),
        )
        .await;
    assert_eq!(bundle.status, StatusCode::CREATED);
    let bundle_uuid = bundle.body["uuid"].as_str().unwrap().to_owned();
    let assignment = api
        .call(
            Method::POST,
            "/assignments",
            Some(json!({"kind": "Deployment", "cluster_uuid": cluster, "deployment_uuid": uuid, "bundles": [bundle_uuid]})),
        )
        .await;
    assert_eq!(
        assignment.status,
        StatusCode::CREATED,
        "{:?}",
        assignment.body
    );
    let assignment_uuid = assignment.body["uuid"].as_str().unwrap().to_owned();

    let deleted = api
        .call(Method::DELETE, &format!("/deployments/{uuid}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body["deployment_uuid"], uuid.as_str());
    assert!(
        api.stored(&format!(
            "/serrano/orchestrator/deployments/deployment/{uuid}"
        ))
        .await
        .is_none()
    );
    assert!(
        api.stored(&format!(
            "/serrano/orchestrator/assignments/{cluster}/assignment/{assignment_uuid}"
        ))
        .await
        .is_none()
    );
    assert!(
        api.stored(&format!(
            "/serrano/orchestrator/bundles/bundle/{bundle_uuid}"
        ))
        .await
        .is_none()
    );

    let again = api
        .call(Method::DELETE, &format!("/deployments/{uuid}"), None)
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let get = api
        .call(Method::GET, &format!("/deployments/{uuid}"), None)
        .await;
    assert_eq!(get.status, StatusCode::NOT_FOUND);
    assert_eq!(get.code(), "not_found");
}

#[tokio::test]
async fn readme_examples_are_accepted() {
    let api = Api::new();
    // The checkout at run time: a binary reused from a shared target dir was built elsewhere.
    let root = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
        .join("../../examples");
    let app: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("app.json")).unwrap()).unwrap();
    let answer = api.call(Method::POST, "/deployments", Some(app)).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    let policy: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("storage-policy.json")).unwrap())
            .unwrap();
    let answer = api
        .call(Method::POST, "/storage_policies", Some(policy))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    let yaml = std::fs::read_to_string(root.join("app.yaml")).unwrap();
    assert_eq!(serrano_ro_api::validate::kubernetes_yaml(&yaml).unwrap(), 2);
}

#[tokio::test]
async fn delete_marks_terminated_first_so_a_retry_finishes_the_job() {
    let api = Api::new();
    let uuid = api.create_deployment().await;
    let key = format!("/serrano/orchestrator/deployments/deployment/{uuid}");
    // A delete that stopped after marking (e.g. the datastore went away) leaves a TERMINATED
    // deployment; the retried DELETE removes it.
    let mut stored = api.stored(&key).await.unwrap();
    stored["status"] = json!(9);
    api.kv
        .put(&key, serde_json::to_vec(&stored).unwrap(), 0)
        .await
        .unwrap();
    let updated = api
        .call(
            Method::PUT,
            "/deployments",
            Some(json!({"deployment_uuid": uuid})),
        )
        .await;
    assert_eq!(
        updated.status,
        StatusCode::CONFLICT,
        "a terminated deployment cannot be re-optimised"
    );
    let deleted = api
        .call(Method::DELETE, &format!("/deployments/{uuid}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert!(api.stored(&key).await.is_none());
}

//! Clusters, assignments, bundles, driver feedback, storage policies and kernel requests.

#![allow(clippy::unwrap_used)]

mod common;

use common::Api;
use http::{Method, StatusCode};
use serde_json::json;

const CLUSTER: &str = "5a075716-7d7d-4b40-9566-bc1a33ee70c2";
const HPC: &str = "b7143497-a168-4c8d-a899-8c56dccda8ad";

#[tokio::test]
async fn clusters_register_list_heartbeat_and_filter_by_activity() {
    let api = Api::new();
    api.register_cluster(CLUSTER, "k8s").await;
    api.register_cluster(HPC, "hpc").await;
    let again = api
        .call(
            Method::POST,
            "/clusters",
            Some(json!({"cluster_uuid": CLUSTER, "type": "k8s"})),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    let stored = api
        .stored(&format!("/serrano/orchestrator/clusters/cluster/{CLUSTER}"))
        .await
        .unwrap();
    assert_eq!(
        stored,
        json!({"cluster_uuid": CLUSTER, "type": "k8s", "info": {"nodes": [{"name": "n1", "labels": {}}]}})
    );
    // Heartbeats are plain unix seconds, as the original stored them.
    let beat = api
        .kv
        .get(&format!("/serrano/orchestrator/health/clusters/{CLUSTER}"))
        .await
        .unwrap()
        .unwrap();
    let seconds: i64 = std::str::from_utf8(&beat.value).unwrap().parse().unwrap();
    assert!((seconds - serrano_model::unix_now()).abs() < 5);

    let list = api.call(Method::GET, "/clusters", None).await;
    let rows = list.body["clusters"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().any(|r| r["cluster_uuid"] == HPC
        && r["type"] == "hpc"
        && r["last_seen"].as_str() == Some(seconds.to_string().as_str())));

    // An old heartbeat drops the cluster out of the active list but not out of the full list.
    api.kv
        .put(
            &format!("/serrano/orchestrator/health/clusters/{HPC}"),
            b"1700498273".to_vec(),
            0,
        )
        .await
        .unwrap();
    let active = api.call(Method::GET, "/clusters?active=10m", None).await;
    let rows = active.body["clusters"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["cluster_uuid"], CLUSTER);
    assert_eq!(
        api.call(Method::GET, "/clusters", None).await.body["clusters"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let health = api
        .call(Method::GET, &format!("/clusters/health/{HPC}"), None)
        .await;
    assert_eq!(health.body["last_seen"], "1700498273");
    let beat = api
        .call(Method::PUT, &format!("/clusters/health/{HPC}"), None)
        .await;
    assert_eq!(beat.status, StatusCode::OK);
    assert_eq!(
        api.call(Method::GET, "/clusters?active=1m", None)
            .await
            .body["clusters"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let updated = api
        .call(
            Method::PUT,
            "/clusters",
            Some(json!({"cluster_uuid": HPC, "type": "hpc", "info": {"scheduler": "slurm"}})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK);
    let got = api
        .call(Method::GET, &format!("/clusters/{HPC}"), None)
        .await;
    assert_eq!(got.body["info"]["scheduler"], "slurm");

    let deleted = api
        .call(Method::DELETE, &format!("/clusters/{HPC}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert!(
        api.kv
            .get(&format!("/serrano/orchestrator/health/clusters/{HPC}"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        api.call(Method::GET, &format!("/clusters/{HPC}"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn assignments_live_at_the_spec_key_and_need_a_registered_cluster() {
    let api = Api::new();
    let deployment = api.create_deployment().await;
    let body = json!({"kind": "Deployment", "cluster_uuid": CLUSTER, "deployment_uuid": deployment, "bundles": []});
    let unregistered = api
        .call(Method::POST, "/assignments", Some(body.clone()))
        .await;
    assert_eq!(unregistered.status, StatusCode::UNPROCESSABLE_ENTITY);

    api.register_cluster(CLUSTER, "k8s").await;
    let created = api.call(Method::POST, "/assignments", Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let uuid = created.body["uuid"].as_str().unwrap().to_owned();
    let key = format!("/serrano/orchestrator/assignments/{CLUSTER}/assignment/{uuid}");
    let stored = api.stored(&key).await.unwrap();
    assert_eq!(stored["status"], 1);
    assert_eq!(stored["logs"][0]["event"], "Assignment created.");

    let by_uuid = api
        .call(Method::GET, &format!("/assignments/{uuid}"), None)
        .await;
    assert_eq!(by_uuid.body, stored);
    let by_key = api
        .call(
            Method::GET,
            &format!("/assignments/{CLUSTER}/assignment/{uuid}"),
            None,
        )
        .await;
    assert_eq!(by_key.body, stored);
    let of_cluster = api
        .call(
            Method::GET,
            &format!("/assignments?cluster_uuid={CLUSTER}"),
            None,
        )
        .await;
    assert_eq!(of_cluster.body["assignments"].as_array().unwrap().len(), 1);
    let other = api
        .call(
            Method::GET,
            &format!("/assignments?cluster_uuid={HPC}"),
            None,
        )
        .await;
    assert!(other.body["assignments"].as_array().unwrap().is_empty());

    let update = api
        .call(
            Method::PUT,
            "/assignments",
            Some(json!({"uuid": uuid, "kind": "Deployment", "cluster_uuid": CLUSTER, "deployment_uuid": deployment,
                "status": 2, "updated_by": "Orchestration.Manager", "event": "scheduled"})),
        )
        .await;
    assert_eq!(update.status, StatusCode::OK, "{:?}", update.body);
    let stored = api.stored(&key).await.unwrap();
    assert_eq!(stored["status"], 2);
    assert_eq!(stored["updated_by"], "Orchestration.Manager");
    assert_eq!(stored["logs"][1]["event"], "scheduled");
}

#[tokio::test]
async fn driver_reports_move_assignments_and_roll_up_into_the_deployment() {
    let api = Api::new();
    api.register_cluster(CLUSTER, "k8s").await;
    let deployment = api.create_deployment().await;
    let assignment = api
        .call(Method::POST, "/assignments", Some(json!({"kind": "Deployment", "cluster_uuid": CLUSTER, "deployment_uuid": deployment})))
        .await
        .body["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    // The manager links the assignment to the deployment (it writes the object wholesale).
    let key = format!("/serrano/orchestrator/deployments/deployment/{deployment}");
    let mut stored = api.stored(&key).await.unwrap();
    stored["assignments"] = json!([assignment]);
    stored["assignments_status"] = json!([2]);
    stored["status"] = json!(4);
    api.kv
        .put(&key, serde_json::to_vec(&stored).unwrap(), 0)
        .await
        .unwrap();

    let bad = api
        .call(Method::POST, "/logs", Some(json!({"logs": [{"uuid": assignment, "kind": "Assignment", "cluster_uuid": CLUSTER, "status": 42, "event": "?"}]})))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let missing = api
        .call(
            Method::POST,
            "/logs",
            Some(json!({"logs": [
                {"uuid": assignment, "kind": "Assignment", "cluster_uuid": CLUSTER, "status": 3, "event": "ok"},
                {"uuid": "0b3a1c4e-1111-4222-8333-444455556666", "kind": "Bundle", "status": 2, "event": "ok"}]})),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    // The batch was refused whole: the first report was not applied.
    let assignment_key =
        format!("/serrano/orchestrator/assignments/{CLUSTER}/assignment/{assignment}");
    assert_eq!(api.stored(&assignment_key).await.unwrap()["status"], 1);

    let applied = api
        .call(
            Method::POST,
            "/logs",
            Some(json!({"logs": [{"uuid": assignment, "kind": "Assignment", "cluster_uuid": CLUSTER, "status": 3,
                "event": "Deployment for assignment successfully executed", "timestamp": 1700595980}]})),
        )
        .await;
    assert_eq!(applied.status, StatusCode::CREATED, "{:?}", applied.body);
    let stored_assignment = api.stored(&assignment_key).await.unwrap();
    assert_eq!(stored_assignment["status"], 3);
    assert_eq!(stored_assignment["updated_by"], "Orchestration.Driver");
    assert_eq!(stored_assignment["logs"][1]["timestamp"], 1700595980);
    let stored = api.stored(&key).await.unwrap();
    assert_eq!(stored["assignments_status"], json!([3]));
    assert_eq!(stored["status"], 6, "all assignments deployed -> DEPLOYED");
}

#[tokio::test]
async fn storage_policies_follow_the_spec_object() {
    let api = Api::new();
    let created = api
        .call(
            Method::POST,
            "/storage_policies",
            Some(json!({"name": "hybrid-policy", "description": "", "policy_parameters":
                {"data_size": 0, "cost": 0, "volatility": 0, "availability": 1, "latency": 1, "lat": 45.7472357, "lng": 21.2316107}})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let uuid = created.body["policy_uuid"].as_str().unwrap().to_owned();
    let stored = api
        .stored(&format!(
            "/serrano/orchestrator/storage_policies/policy/{uuid}"
        ))
        .await
        .unwrap();
    assert_eq!(stored["kind"], "StoragePolicy");
    assert_eq!(stored["decision"], json!({}));
    assert_eq!(stored["cc_policy_id"], 0);
    assert_eq!(stored["status"], 1);
    assert_eq!(
        stored["logs"][0]["event"],
        "Storage Policy description received."
    );

    let got = api
        .call(Method::GET, &format!("/storage_policies/{uuid}"), None)
        .await;
    assert_eq!(got.body["storage_policies"][0], stored);
    let updated = api
        .call(
            Method::PUT,
            "/storage_policies",
            Some(json!({"policy_uuid": uuid, "policy_parameters": {"availability": 2}})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK);
    let stored = api
        .stored(&format!(
            "/serrano/orchestrator/storage_policies/policy/{uuid}"
        ))
        .await
        .unwrap();
    assert_eq!(stored["policy_parameters"], json!({"availability": 2}));
    assert_eq!(
        api.call(Method::GET, "/storage_policies", None).await.body["storage_policies"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        api.call(Method::DELETE, &format!("/storage_policies/{uuid}"), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        api.call(Method::GET, &format!("/storage_policies/{uuid}"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn faas_requests_are_keyed_by_the_client_uuid() {
    let api = Api::new();
    let request = "1465c479-03d7-4123-8329-fac9fa580256";
    let body = json!({"request_uuid": request, "kernel_name": "kmeans", "deployment_objectives": {},
        "data_description": {"bucket_id": "3a047bd2-5558-410b-ae7c-8e7fd3953ae2", "arguments": ["position", "labels"],
            "storage": "broker", "total_size_MB": 7.35}});
    let created = api.call(Method::POST, "/faas", Some(body.clone())).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["request_uuid"], request);
    assert_eq!(
        api.call(Method::POST, "/faas", Some(body)).await.status,
        StatusCode::CONFLICT
    );

    let stored = api
        .stored(&format!("/serrano/orchestrator/kernels/kernel/{request}"))
        .await
        .unwrap();
    assert_eq!(stored["kind"], "FaaS");
    assert_eq!(stored["assignment_uuid"], "");
    assert_eq!(stored["data_description"]["total_size_MB"], 7.35);

    let listed = api.call(Method::GET, "/faas", None).await;
    assert_eq!(listed.body, json!({"faas": [request]}));
    let details = api
        .call(Method::GET, &format!("/faas/{request}"), None)
        .await;
    assert_eq!(details.body["kernel_name"], "kmeans");
    assert_eq!(details.body["status_str"], "SUBMITTED");
    assert_eq!(details.body["cluster_uuid"], serde_json::Value::Null);

    let no_uuid = api
        .call(
            Method::POST,
            "/faas",
            Some(json!({"kernel_name": "fft", "data_description": {}})),
        )
        .await;
    assert_eq!(no_uuid.status, StatusCode::BAD_REQUEST);
    // Serverless kernel requests fall back on the bucket id, as the original did.
    let kernel = api
        .call(Method::POST, "/kernels", Some(json!({"kernel_name": "fft", "data_description": {"bucket_id": "0b3a1c4e-1111-4222-8333-444455556666"}})))
        .await;
    assert_eq!(kernel.status, StatusCode::CREATED);
    assert_eq!(
        kernel.body["request_uuid"],
        "0b3a1c4e-1111-4222-8333-444455556666"
    );
    assert_eq!(
        api.call(Method::GET, "/kernel", None).await.body["kernels"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn health_and_ready_need_no_token_and_report_the_datastore() {
    let api = Api::new();
    let request = |path: &str| {
        http::Request::builder()
            .uri(path)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let health = api.raw(request("/health")).await;
    assert_eq!(health.status, StatusCode::OK);
    let ready = api.raw(request("/ready")).await;
    assert_eq!(ready.status, StatusCode::OK);
    let docs = api.raw(request("/openapi.json")).await;
    assert_eq!(docs.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn services_and_monitoring_describe_what_drivers_deployed() {
    let api = Api::new();
    api.register_cluster(CLUSTER, "k8s").await;
    let deployment = api.create_deployment().await;
    let bundle = api
        .call(
            Method::POST,
            "/bundles",
            Some(json!({"description": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "acceleration-service-model-inference"}},
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "config"}}]})),
        )
        .await
        .body["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let assignment = api
        .call(
            Method::POST,
            "/assignments",
            Some(json!({"kind": "Deployment", "cluster_uuid": CLUSTER, "deployment_uuid": deployment, "bundles": [bundle]})),
        )
        .await
        .body["uuid"]
        .as_str()
        .unwrap()
        .to_owned();

    let services = api
        .call(
            Method::GET,
            &format!("/deployments/services/{deployment}"),
            None,
        )
        .await;
    assert_eq!(services.status, StatusCode::OK);
    assert_eq!(services.body["status_str"], "SUBMITTED");
    assert_eq!(
        services.body["services"],
        json!([{"cluster_uuid": CLUSTER, "name": "acceleration-service-model-inference", "status": 1, "status_str": "CREATED"}])
    );

    let params = json!([{"k8s_deployment_name": "acceleration-service-model-inference", "k8s_deployment_namespace": "integration",
        "k8s_deployment_uuid": "0b3a1c4e-1111-4222-8333-444455556666", "assignment_uuid": assignment, "bundle_uuid": bundle}]);
    let body = json!({"deployment_uuid": deployment, "cluster_uuid": CLUSTER, "assignment_uuid": assignment, "k8s_params": params});
    let answer = api
        .call(Method::PUT, "/monitoring", Some(body.clone()))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    let stored = api
        .stored(&format!("/serrano/orchestrator/monitoring/{deployment}"))
        .await
        .unwrap();
    assert_eq!(stored["clusters"], json!([CLUSTER]));
    assert_eq!(stored[CLUSTER], params);
    // Reporting again replaces the cluster's entry, it does not duplicate the cluster.
    api.call(Method::PUT, "/monitoring", Some(body)).await;
    let stored = api
        .stored(&format!("/serrano/orchestrator/monitoring/{deployment}"))
        .await
        .unwrap();
    assert_eq!(stored["clusters"], json!([CLUSTER]));

    let unknown = json!({"deployment_uuid": "0b3a1c4e-1111-4222-8333-444455556666", "cluster_uuid": CLUSTER,
        "assignment_uuid": assignment, "k8s_params": []});
    assert_eq!(
        api.call(Method::PUT, "/monitoring", Some(unknown))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Terminating the deployment removes its monitoring entry.
    api.call(Method::DELETE, &format!("/deployments/{deployment}"), None)
        .await;
    assert!(
        api.stored(&format!("/serrano/orchestrator/monitoring/{deployment}"))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn put_registers_an_unknown_cluster_as_the_original_driver_does() {
    let api = Api::new();
    let body = json!({"cluster_uuid": HPC, "type": "hpc", "info": {"name": "excess", "scheduler": "slurm"}});
    let conditional = api
        .call_with(
            Method::PUT,
            "/clusters",
            Some(body.clone()),
            &[("if-match", "\"5\"")],
        )
        .await;
    assert_eq!(
        conditional.status,
        StatusCode::NOT_FOUND,
        "a precondition on a missing cluster cannot hold"
    );
    let answer = api.call(Method::PUT, "/clusters", Some(body)).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let stored = api
        .stored(&format!("/serrano/orchestrator/clusters/cluster/{HPC}"))
        .await
        .unwrap();
    assert_eq!(stored["info"]["scheduler"], "slurm");
    let active = api.call(Method::GET, "/clusters?active=1m", None).await;
    assert_eq!(active.body["clusters"][0]["cluster_uuid"], HPC);
}

#[tokio::test]
async fn assignment_status_updates_keep_the_bundle_list() {
    let api = Api::new();
    api.register_cluster(CLUSTER, "k8s").await;
    let deployment = api.create_deployment().await;
    let bundle = "8d7c2128-1a97-4b13-bd42-69abf817ab7e";
    let created = api
        .call(
            Method::POST,
            "/assignments",
            Some(json!({"kind": "Deployment", "cluster_uuid": CLUSTER, "deployment_uuid": deployment, "bundles": [bundle]})),
        )
        .await;
    let uuid = created.body["uuid"].as_str().unwrap().to_owned();
    let key = format!("/serrano/orchestrator/assignments/{CLUSTER}/assignment/{uuid}");
    assert_eq!(
        api.stored(&key).await.unwrap()["updated_by"],
        "Orchestration.Manager"
    );
    let update = api
        .call(
            Method::PUT,
            "/assignments",
            Some(json!({"uuid": uuid, "kind": "Deployment", "cluster_uuid": CLUSTER, "deployment_uuid": deployment, "status": 2})),
        )
        .await;
    assert_eq!(update.status, StatusCode::OK);
    let stored = api.stored(&key).await.unwrap();
    assert_eq!(stored["bundles"], json!([bundle]));
    assert_eq!(stored["status"], 2);
    // The original driver's path without the `assignment/` segment finds it too.
    let alias = api
        .call(Method::GET, &format!("/assignments/{CLUSTER}/{uuid}"), None)
        .await;
    assert_eq!(alias.body, stored);
}

#[tokio::test]
async fn deleting_a_policy_that_exists_in_the_gateway_marks_it_terminated() {
    let api = Api::new();
    let uuid = api
        .call(
            Method::POST,
            "/storage_policies",
            Some(json!({"name": "p", "policy_parameters": {}})),
        )
        .await
        .body["policy_uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    // The manager recorded the gateway's id.
    let key = format!("/serrano/orchestrator/storage_policies/policy/{uuid}");
    let mut stored = api.stored(&key).await.unwrap();
    stored["cc_policy_id"] = json!(6318801792532480_u64);
    stored["status"] = json!(5);
    api.kv
        .put(&key, serde_json::to_vec(&stored).unwrap(), 0)
        .await
        .unwrap();

    let answer = api
        .call(Method::DELETE, &format!("/storage_policies/{uuid}"), None)
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let stored = api
        .stored(&key)
        .await
        .expect("kept until the gateway policy is gone");
    assert_eq!(stored["status"], 8);
    assert_eq!(
        stored["logs"].as_array().unwrap().last().unwrap()["event"],
        "Storage Policy deletion requested."
    );
}

#[tokio::test]
async fn the_user_token_is_never_echoed() {
    let api = Api::new();
    let created = api
        .call(
            Method::POST,
            "/deployments",
            Some(json!({"deployment_description": common::APP_YAML, "user_token": "owner-secret-123"})),
        )
        .await;
    let uuid = created.body["deployment_uuid"].as_str().unwrap().to_owned();
    let stored = api
        .stored(&format!(
            "/serrano/orchestrator/deployments/deployment/{uuid}"
        ))
        .await
        .unwrap();
    assert_eq!(
        stored["user_token"], "owner-secret-123",
        "drivers read it from the datastore"
    );
    for path in [format!("/deployments/{uuid}"), "/deployments".to_owned()] {
        let answer = api.call(Method::GET, &path, None).await;
        assert!(
            !answer.body.to_string().contains("owner-secret-123"),
            "{path} leaks the token"
        );
    }
}

#[tokio::test]
async fn deleting_a_kernel_request_removes_its_assignment() {
    let api = Api::new();
    api.register_cluster(CLUSTER, "k8s").await;
    let request = "1465c479-03d7-4123-8329-fac9fa580256";
    api.call(
        Method::POST,
        "/faas",
        Some(json!({"request_uuid": request, "kernel_name": "kmeans", "data_description": {}})),
    )
    .await;
    let assignment = api
        .call(
            Method::POST,
            "/assignments",
            Some(json!({"kind": "FaaS", "cluster_uuid": CLUSTER, "deployment_uuid": request})),
        )
        .await
        .body["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let deleted = api
        .call(Method::DELETE, &format!("/faas/{request}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert!(
        api.stored(&format!(
            "/serrano/orchestrator/assignments/{CLUSTER}/assignment/{assignment}"
        ))
        .await
        .is_none()
    );
    assert!(
        api.stored(&format!("/serrano/orchestrator/kernels/kernel/{request}"))
            .await
            .is_none()
    );
}

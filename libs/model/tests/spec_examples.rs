//! Every JSON example of D6.7 4.2.3 parses into the model and round-trips. The examples are
//! transcribed from the PDF text with its line-wrap artefacts removed ("l ng" -> "lng",
//! "redunda nt_packets" -> "redundant_packets"); the second storage-policy example is cut off
//! in the document after `created_at`, so its closing `updated_at` is completed.

#![allow(clippy::unwrap_used)]

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serrano_model::{
    Assignment, AssignmentKind, AssignmentStatus, Bundle, BundleStatus, ClusterSummary,
    ClusterType, Deployment, DeploymentStatus, KernelKind, KernelRequest, KernelStatus,
    PolicyStatus, StoragePolicy, UpdatedBy,
};

/// Parses `json` as `T`, serialises it back, and checks that every field of the example comes
/// back with the same value and that a second parse gives the same object.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(json: &str) -> T {
    let original: Value = serde_json::from_str(json).expect("example is JSON");
    let parsed: T = serde_json::from_value(original.clone()).expect("example parses");
    let back = serde_json::to_value(&parsed).unwrap();
    let original = original.as_object().unwrap();
    let back_object = back.as_object().unwrap();
    for (key, value) in original {
        assert_eq!(back_object.get(key), Some(value), "field {key} changed");
    }
    let reparsed: T = serde_json::from_value(back).unwrap();
    assert_eq!(parsed, reparsed);
    parsed
}

const POLICY_PENDING: &str = r#"{"name": "hybrid-policy", "description": "", "policy_parameters": {"data_size": 0, "cost": 0, "volatility": 0, "availability": 1, "latency": 1, "lat": 45.7472357, "lng": 21.2316107}, "policy_uuid": "c13a8c59-a218-4c29-82d1-482e688b3d47", "kind": "StoragePolicy", "decision": {}, "cc_policy_id": 0, "status": 2, "logs": [{"timestamp": 1700568600, "event": "Storage Policy description received."}, {"timestamp": 1700568600, "event": "Request ROT decision"}], "updated_by": "Orchestration.Manager", "created_at": 1700568600, "updated_at": 1700568600}"#;

const POLICY_SCHEDULED: &str = r#"{"name": "hybrid-policy", "description": "", "policy_parameters": {"data_size": 0, "cost": 0, "volatility": 0, "availability": 1, "latency": 1, "lat": 45.7472357, "lng": 21.2316107}, "policy_uuid": "c13a8c59-a218-4c29-82d1-482e688b3d47", "kind": "StoragePolicy", "decision": {"backends": [78,79], "edge_devices": [1, 2], "redundant_packets": 1}, "cc_policy_id": 0, "status": 3, "logs": [{"timestamp": 1700568600, "event": "Storage Policy description received."}, {"timestamp": 1700568600, "event": "Request ROT decision"}, {"timestamp": 1700568607, "event": "Get decision response from ROT"}], "updated_by": "Orchestration.Manager", "created_at": 1700568607, "updated_at": 1700568607}"#;

const POLICY_CREATED: &str = r#"{"name": "hybrid-policy", "description": "", "policy_parameters": {"data_size": 0, "cost": 0, "volatility": 0, "availability": 1, "latency": 1, "lat": 45.7472357, "lng": 21.2316107}, "policy_uuid": "c13a8c59-a218-4c29-82d1-482e688b3d47", "kind": "StoragePolicy", "decision": {"backends": [78,79], "edge_devices": [1, 2], "redundant_packets": 1}, "cc_policy_id": 6318801792532480, "status": 5, "logs": [{"timestamp": 1700568600, "event": "Storage Policy description received."}, {"timestamp": 1700568600, "event": "Request ROT decision"}, {"timestamp": 1700568607, "event": "Get decision response from ROT"},{"timestamp": 1700568607, "event": "Request Storage Policy to Secure Storage Gateway"},{"timestamp": 1700568612, "event": "Storage Policy created successfully"}], "updated_by": "Orchestration.Manager", "created_at": 1700568600, "updated_at": 1700568612}"#;

const DEPLOYMENT: &str = r#"{
    "kind": "Deployment", "name": "UC3-Acceleration-Service",
    "deployment_uuid": "fdf45855-1299-47f1-8ea6-98be8d89030b",
    "deployment_description": "YAML DESCRIPTION",
    "assignments": [], "assignments_status": [],
    "logs":[{"timestamp":1700589809, "event":"Deployment description received."}],
    "status":1, "updated_by": "Orchestration.API","created_at": 1700589809,
    "updated_at": 1700589809
}"#;

const ASSIGNMENT_NBFC: &str = r#"{"uuid": "4aae522e-3d56-42a2-b5f7-56d1cc4bef2b", "kind": "Deployment", "cluster_uuid": "5a075716-7d7d-4b40-9566-bc1a33ee70c2", "deployment_uuid": "fdf45855-1299-47f1-8ea6-98be8d89030b", "bundles": ["6f2e474f-06b8-4b96-afa3-e3f90a088a9a"], "status": 1, "updated_by": "Orchestration.Manager", "logs": [{"timestamp": 1700592156, "event": "Assignment created."}], "created_at": 1700592156, "updated_at": 1700592156}"#;

const ASSIGNMENT_IDEKO: &str = r#"{"uuid": "4ea8f80a-8354-433f-8100-5ed8b469f54c", "kind": "Deployment", "cluster_uuid": "e65c33ac-3109-4a15-9cc2-9f4e90f82c2d", "deployment_uuid": "fdf45855-1299-47f1-8ea6-98be8d89030b", "bundles": ["1499c29a-acbb-46c7-84fd-38eb6c4559f2", "8241f40b-1d02-446c-b4e6-94a5944f84c7"], "status": 1, "updated_by": "Orchestration.Manager", "logs": [{"timestamp": 1700592156, "event": "Assignment created."}], "created_at": 1700592156, "updated_at": 1700592156}"#;

const ASSIGNMENT_IN_DRIVER_LOG: &str = r#"{"uuid": "43a82209-c3d3-4cc9-a584-fa9155056c13", "kind": "Deployment", "cluster_uuid": "5a075716-7d7d-4b40-9566-bc1a33ee70c2", "deployment_uuid": "fd9a6e44-428f-4c18-b13d-3ddd93509222", "bundles": ["5d4bb088-01b5-46cf-aa79-fd4536718968"], "status": 1, "updated_by": "Orchestration.Manager", "logs": [{"timestamp": 1700595973, "event": "Assignment created."}], "created_at": 1700595973, "updated_at": 1700595973}"#;

const FAAS_KERNEL: &str = r#"{"kind": "FaaS", "request_uuid": "1465c479-03d7-4123-8329-fac9fa580256", "kernel_name": "kmeans", "deployment_objectives": {}, "data_description": {"queue_id": "3a047bd2-5558-410b-ae7c-8e7fd3953ae2", "bucket_id": "3a047bd2-5558-410b-ae7c-8e7fd3953ae2", "arguments": ["position", "labels"], "storage": "broker", "total_size_MB": 7.35, "w": 200, "iterations": 2, "uuid": "1465c479-03d7-4123-8329-fac9fa580256"}, "assignment_uuid": "", "logs": [{"timestamp": 1700667284, "event": "Kernel description received."}], "status": 2, "updated_by": "Orchestration.API", "created_at": 1700667284, "updated_at": 1700667284}"#;

const FAAS_ASSIGNMENT: &str = r#"{"uuid": "b8f74a2e-a6fc-456a-94d2-34583b2ab7cb", "kind": "FaaS", "cluster_uuid": "5a075716-7d7d-4b40-9566-bc1a33ee70c2", "deployment_uuid": "1465c479-03d7-4123-8329-fac9fa580256", "bundles": ["8d7c2128-1a97-4b13-bd42-69abf817ab7e"], "status": 1, "updated_by": "Orchestration.Manager", "logs": [{"timestamp": 1700667284, "event": "Assignment created."}], "created_at": 1700667284, "updated_at": 1700667284}"#;

const FAAS_BUNDLE: &str = r#"{"uuid": "8d7c2128-1a97-4b13-bd42-69abf817ab7e", "description": {"kind": "FaaS", "request_uuid": "1465c479-03d7-4123-8329-fac9fa580256", "kernel_name": "kmeans", "data_description": {"queue_id": "3a047bd2-5558-410b-ae7c-8e7fd3953ae2", "bucket_id": "3a047bd2-5558-410b-ae7c-8e7fd3953ae2", "arguments": ["position", "labels"], "storage": "broker", "total_size_MB": 7.35, "mode": "gpu", "w": 200, "iterations": 2, "uuid": "1465c479-03d7-4123-8329-fac9fa580256"}}, "status": 1, "updated_by": "Orchestration.Manager", "logs": [{"timestamp": 1700667284, "event": "Bundle created."}], "created_at": 1700667284, "updated_at": 1700667284}"#;

const CLUSTERS: &str = r#"{"clusters":[{"cluster_uuid":"e65c33ac-3109-4a15-9cc2-9f4e90f82c2d","type":"k8s","last_seen":"1700469459"}, {"cluster_uuid":"7628b895-3a91-4f0c-b0b7-033eab309891","type":"k8s","last_seen":"1700478141"}, {"cluster_uuid":"5a075716-7d7d-4b40-9566-bc1a33ee70c2","type":"k8s","last_seen":"1700478258"}, {"cluster_uuid":"b7143497-a168-4c8d-a899-8c56dccda8ad","type":"hpc","last_seen":"1700498273"}]}"#;

#[test]
fn storage_policy_examples_round_trip() {
    let pending: StoragePolicy = round_trip(POLICY_PENDING);
    assert_eq!(pending.status, PolicyStatus::Pending);
    assert_eq!(pending.decision.backends, None);
    assert_eq!(pending.logs.len(), 2);
    assert_eq!(pending.updated_by, UpdatedBy::Manager);

    let scheduled: StoragePolicy = round_trip(POLICY_SCHEDULED);
    assert_eq!(scheduled.status, PolicyStatus::Scheduled);
    assert_eq!(scheduled.decision.backends, Some(vec![78, 79]));
    assert_eq!(scheduled.decision.edge_devices, Some(vec![1, 2]));
    assert_eq!(scheduled.decision.redundant_packets, Some(1));

    let created: StoragePolicy = round_trip(POLICY_CREATED);
    assert_eq!(created.status, PolicyStatus::Created);
    assert_eq!(created.cc_policy_id, 6_318_801_792_532_480);
    assert_eq!(
        created.policy_parameters["lat"],
        serde_json::json!(45.7472357)
    );
    assert_eq!(created.logs[4].event, "Storage Policy created successfully");
}

#[test]
fn deployment_example_round_trips() {
    let deployment: Deployment = round_trip(DEPLOYMENT);
    assert_eq!(deployment.name, "UC3-Acceleration-Service");
    assert_eq!(deployment.status, DeploymentStatus::Submitted);
    assert_eq!(deployment.updated_by, UpdatedBy::Api);
    assert!(deployment.assignments.is_empty());
    assert_eq!(deployment.created_at, 1_700_589_809);
}

#[test]
fn assignment_examples_round_trip() {
    let nbfc: Assignment = round_trip(ASSIGNMENT_NBFC);
    assert_eq!(nbfc.kind, AssignmentKind::Deployment);
    assert_eq!(nbfc.status, AssignmentStatus::Created);
    assert_eq!(nbfc.bundles.len(), 1);
    let ideko: Assignment = round_trip(ASSIGNMENT_IDEKO);
    assert_eq!(ideko.bundles.len(), 2);
    assert_eq!(ideko.deployment_uuid, nbfc.deployment_uuid);
    let logged: Assignment = round_trip(ASSIGNMENT_IN_DRIVER_LOG);
    assert_eq!(logged.logs[0].event, "Assignment created.");
    let faas: Assignment = round_trip(FAAS_ASSIGNMENT);
    assert_eq!(faas.kind, AssignmentKind::FaaS);
}

#[test]
fn kernel_and_bundle_examples_round_trip() {
    let kernel: KernelRequest = round_trip(FAAS_KERNEL);
    assert_eq!(kernel.kind, KernelKind::FaaS);
    assert_eq!(kernel.kernel_name, "kmeans");
    assert_eq!(kernel.assignment_uuid, None);
    assert_eq!(kernel.status, KernelStatus::Pending);
    assert_eq!(
        kernel.data_description["total_size_MB"],
        serde_json::json!(7.35)
    );

    let bundle: Bundle = round_trip(FAAS_BUNDLE);
    assert_eq!(bundle.status, BundleStatus::Created);
    assert_eq!(bundle.description["data_description"]["mode"], "gpu");
    assert_eq!(bundle.assignment_uuid, None);
}

#[test]
fn cluster_list_example_parses() {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ClusterList {
        clusters: Vec<ClusterSummary>,
    }
    let list: ClusterList = serde_json::from_str(CLUSTERS).unwrap();
    assert_eq!(list.clusters.len(), 4);
    assert_eq!(list.clusters[3].cluster_type, ClusterType::Hpc);
    assert_eq!(list.clusters[0].last_seen, "1700469459");
    let back = serde_json::to_value(&list.clusters[0]).unwrap();
    assert_eq!(back["type"], "k8s");
}

#[test]
fn unknown_fields_and_bad_values_are_rejected() {
    let mut value: Value = serde_json::from_str(DEPLOYMENT).unwrap();
    value["surprise"] = Value::Bool(true);
    let err = serde_json::from_value::<Deployment>(value).unwrap_err();
    assert!(err.to_string().contains("surprise"), "{err}");

    let mut value: Value = serde_json::from_str(ASSIGNMENT_NBFC).unwrap();
    value["status"] = serde_json::json!(9);
    assert!(serde_json::from_value::<Assignment>(value).is_err());

    let mut value: Value = serde_json::from_str(FAAS_KERNEL).unwrap();
    value["assignment_uuid"] = serde_json::json!("not-a-uuid");
    assert!(serde_json::from_value::<KernelRequest>(value).is_err());

    let mut value: Value = serde_json::from_str(POLICY_SCHEDULED).unwrap();
    value["updated_by"] = serde_json::json!("Somebody.Else");
    assert!(serde_json::from_value::<StoragePolicy>(value).is_err());
}

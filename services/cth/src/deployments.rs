//! Application deployments under monitoring (D6.7 4.4.3.2 "Automatic monitoring of deployed
//! applications"): the Resource Orchestrator's monitoring entity and the per-pod metrics the
//! agents record for it.
//!
//! The monitoring entity is `{deployment_uuid, timestamp?, clusters: [..], <cluster_uuid>:
//! [{k8s_deployment_name, k8s_deployment_namespace, k8s_deployment_uuid}]}`: per-cluster lists sit
//! beside the fixed fields under the cluster's uuid. The D6.7 example lists a keyed cluster that is
//! missing from `clusters`, so the clusters of a deployment are those listed plus those keyed.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::store::{is_id, str_field};

/// Most clusters one deployment may span.
pub const MAX_CLUSTERS: usize = 64;
/// Most Kubernetes deployments per cluster in one monitoring entity.
pub const MAX_K8S_DEPLOYMENTS: usize = 1000;

/// One Kubernetes deployment of an application, as the orchestrator names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct K8sDeploymentRef {
    pub k8s_deployment_name: String,
    pub k8s_deployment_namespace: String,
    pub k8s_deployment_uuid: String,
}

/// A validated monitoring entity.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitoringEntity {
    pub deployment_uuid: String,
    pub timestamp: Option<i64>,
    /// Every cluster of the deployment: the listed ones first, then keyed ones not listed.
    pub clusters: Vec<String>,
    /// The Kubernetes deployments per cluster (clusters without a list have none).
    pub k8s: BTreeMap<String, Vec<K8sDeploymentRef>>,
}

impl MonitoringEntity {
    /// Validates a request body; the error names the offending field.
    pub fn parse(body: Value) -> Result<Self, String> {
        let Value::Object(mut map) = body else {
            return Err("the body must be a JSON object".to_owned());
        };
        let deployment_uuid = match map.remove("deployment_uuid") {
            Some(Value::String(id)) if is_id(&id) => id,
            Some(Value::String(id)) => {
                return Err(format!(
                    "invalid deployment_uuid {id:?}: expected 1 to 128 letters, digits, '.', '_', '-' or ':'"
                ));
            }
            Some(_) => return Err("deployment_uuid must be a string".to_owned()),
            None => return Err("missing field `deployment_uuid`".to_owned()),
        };
        let timestamp = match map.remove("timestamp") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_i64()
                    .or_else(|| {
                        // Python clients send `time.time()` floats.
                        value
                            .as_f64()
                            .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1e15)
                            .map(|f| f as i64)
                    })
                    .filter(|t| *t >= 0)
                    .ok_or("timestamp must be a non-negative number of Unix seconds")?,
            ),
        };
        let listed = match map.remove("clusters") {
            Some(Value::Array(list)) => list
                .into_iter()
                .map(|c| match c {
                    Value::String(id) if is_id(&id) => Ok(id),
                    other => Err(format!("invalid cluster uuid in `clusters`: {other}")),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err("clusters must be an array of cluster uuids".to_owned()),
            None => return Err("missing field `clusters`".to_owned()),
        };
        let mut clusters = Vec::new();
        let mut seen = HashSet::new();
        for cluster in listed {
            if seen.insert(cluster.clone()) {
                clusters.push(cluster);
            }
        }
        let mut k8s = BTreeMap::new();
        for (key, value) in map {
            if !is_id(&key) {
                return Err(format!(
                    "unknown field `{key}`: expected deployment_uuid, timestamp, clusters or a cluster uuid"
                ));
            }
            let refs: Vec<K8sDeploymentRef> = serde_json::from_value(value)
                .map_err(|err| format!("invalid deployments of cluster `{key}`: {err}"))?;
            if refs.len() > MAX_K8S_DEPLOYMENTS {
                return Err(format!(
                    "cluster `{key}` lists {} deployments, at most {MAX_K8S_DEPLOYMENTS} are allowed",
                    refs.len()
                ));
            }
            if seen.insert(key.clone()) {
                clusters.push(key.clone());
            }
            k8s.insert(key, refs);
        }
        if clusters.is_empty() {
            return Err("the deployment names no cluster".to_owned());
        }
        if clusters.len() > MAX_CLUSTERS {
            return Err(format!(
                "the deployment spans {} clusters, at most {MAX_CLUSTERS} are allowed",
                clusters.len()
            ));
        }
        Ok(Self {
            deployment_uuid,
            timestamp,
            clusters,
            k8s,
        })
    }

    /// The Kubernetes deployments of `cluster` (empty when it has none).
    pub fn k8s_of(&self, cluster: &str) -> &[K8sDeploymentRef] {
        self.k8s.get(cluster).map(Vec::as_slice).unwrap_or_default()
    }

    /// The stored document: the entity with every cluster keyed (an empty list for a cluster
    /// without one) and the timestamp filled in.
    pub fn to_document(&self, now: i64) -> Value {
        let mut doc = Map::new();
        doc.insert("deployment_uuid".to_owned(), json!(self.deployment_uuid));
        doc.insert("clusters".to_owned(), json!(self.clusters));
        doc.insert("timestamp".to_owned(), json!(self.timestamp.unwrap_or(now)));
        for cluster in &self.clusters {
            doc.insert(cluster.clone(), json!(self.k8s_of(cluster)));
        }
        Value::Object(doc)
    }
}

/// The clusters of a stored deployment document.
pub fn clusters_of(doc: &Value) -> Vec<String> {
    doc.get("clusters")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// `GET /deployments` entry: `{deployment_uuid, clusters, timestamp}`.
pub fn summary(doc: &Value) -> Value {
    json!({
        "deployment_uuid": doc.get("deployment_uuid").cloned().unwrap_or(Value::Null),
        "clusters": doc.get("clusters").cloned().unwrap_or_else(|| json!([])),
        "timestamp": doc.get("timestamp").cloned().unwrap_or(Value::Null),
    })
}

/// `GET /cluster_deployments`: every cluster's Kubernetes deployments over all stored
/// deployments.
pub fn per_cluster(docs: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for doc in docs {
        for cluster in clusters_of(doc) {
            let list = doc
                .get(&cluster)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            out.entry(cluster).or_default().extend(list);
        }
    }
    out
}

/// The latest document per pod (cluster, namespace, name) out of `docs` sorted newest first,
/// ordered by `group_id` then pod name (the D6.7 4.4.3.2 example lists s1, s2, s3).
pub fn latest_per_pod(docs: Vec<Value>) -> Vec<Value> {
    let mut seen = HashSet::new();
    let mut latest: Vec<Value> = docs
        .into_iter()
        .filter(|doc| {
            let key = (
                str_field(doc, "cluster_uuid")
                    .unwrap_or_default()
                    .to_owned(),
                str_field(doc, "namespace").unwrap_or_default().to_owned(),
                str_field(doc, "name").unwrap_or_default().to_owned(),
            );
            seen.insert(key)
        })
        .collect();
    latest.sort_by(|a, b| {
        let key = |d: &Value| {
            (
                str_field(d, "group_id").unwrap_or_default().to_owned(),
                str_field(d, "name").unwrap_or_default().to_owned(),
                str_field(d, "cluster_uuid").unwrap_or_default().to_owned(),
            )
        };
        key(a).cmp(&key(b))
    });
    latest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(name: &str) -> Value {
        json!([{"k8s_deployment_name": name, "k8s_deployment_namespace": "integration",
                "k8s_deployment_uuid": format!("{name}-uuid")}])
    }

    #[test]
    fn the_d67_example_parses_with_the_keyed_cluster_added() {
        let body = json!({
            "deployment_uuid": "fdf45855-1299-47f1-8ea6-98be8d89030b",
            "clusters": ["e65c33ac-3109-4a15-9cc2-9f4e90f82c2d", "5a075716-7d7d-4b40-9566-bc1a33ee70c2"],
            "7628b895-3a91-4f0c-b0b7-033eab309891": refs("data-manager"),
            "5a075716-7d7d-4b40-9566-bc1a33ee70c2": refs("inference"),
        });
        let entity = MonitoringEntity::parse(body).unwrap();
        assert_eq!(
            entity.clusters,
            vec![
                "e65c33ac-3109-4a15-9cc2-9f4e90f82c2d",
                "5a075716-7d7d-4b40-9566-bc1a33ee70c2",
                "7628b895-3a91-4f0c-b0b7-033eab309891"
            ]
        );
        assert!(
            entity
                .k8s_of("e65c33ac-3109-4a15-9cc2-9f4e90f82c2d")
                .is_empty()
        );
        assert_eq!(
            entity.k8s_of("5a075716-7d7d-4b40-9566-bc1a33ee70c2")[0].k8s_deployment_name,
            "inference"
        );
        let doc = entity.to_document(42);
        assert_eq!(doc["timestamp"], 42);
        assert_eq!(doc["e65c33ac-3109-4a15-9cc2-9f4e90f82c2d"], json!([]));
        assert_eq!(doc["clusters"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn bad_entities_are_refused_with_the_field() {
        let err = |body: Value| MonitoringEntity::parse(body).unwrap_err();
        assert!(err(json!({"clusters": ["a"]})).contains("deployment_uuid"));
        assert!(err(json!({"deployment_uuid": "d"})).contains("clusters"));
        assert!(err(json!({"deployment_uuid": "d/x", "clusters": ["a"]})).contains("invalid"));
        assert!(err(json!({"deployment_uuid": "d", "clusters": [1]})).contains("cluster uuid"));
        assert!(err(json!({"deployment_uuid": "d", "clusters": []})).contains("no cluster"));
        assert!(
            err(json!({"deployment_uuid": "d", "clusters": ["a"], "a": [{"k8s_deployment_name": "x"}]}))
                .contains("`a`")
        );
        assert!(
            err(json!({"deployment_uuid": "d", "clusters": ["a"], "bad key": []}))
                .contains("unknown field")
        );
        assert!(
            err(json!({"deployment_uuid": "d", "clusters": ["a"], "timestamp": -1}))
                .contains("timestamp")
        );
        let extra = json!([{"k8s_deployment_name": "x", "k8s_deployment_namespace": "n",
            "k8s_deployment_uuid": "u", "extra": 1}]);
        assert!(
            err(json!({"deployment_uuid": "d", "clusters": ["a"], "a": extra})).contains("extra")
        );
    }

    #[test]
    fn float_timestamps_are_accepted() {
        let entity = MonitoringEntity::parse(
            json!({"deployment_uuid": "d", "clusters": ["a"], "timestamp": 1700838788.5}),
        )
        .unwrap();
        assert_eq!(entity.timestamp, Some(1_700_838_788));
    }

    #[test]
    fn per_cluster_and_latest_per_pod() {
        let docs = vec![
            json!({"deployment_uuid": "d1", "clusters": ["a", "b"], "a": refs("x"), "b": []}),
            json!({"deployment_uuid": "d2", "clusters": ["a"], "a": refs("y")}),
        ];
        let map = per_cluster(&docs);
        assert_eq!(map["a"].len(), 2);
        assert_eq!(map["b"].len(), 0);

        let metrics = vec![
            json!({"cluster_uuid": "a", "namespace": "n", "name": "p2", "group_id": "s2", "timestamp": 30}),
            json!({"cluster_uuid": "a", "namespace": "n", "name": "p1", "group_id": "s1", "timestamp": 30}),
            json!({"cluster_uuid": "a", "namespace": "n", "name": "p1", "group_id": "s1", "timestamp": 20}),
        ];
        let latest = latest_per_pod(metrics);
        assert_eq!(latest.len(), 2);
        assert_eq!(latest[0]["name"], "p1");
        assert_eq!(latest[0]["timestamp"], 30);
        assert_eq!(latest[1]["name"], "p2");
    }
}

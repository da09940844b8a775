//! The platform-level views of the clusters (D6.7 4.4.3, Figure 26 "high-level information for
//! the available computing resources"): pure functions from cluster documents (docs/telemetry.md
//! `clusters`) to the shapes of `/infrastructure` and `/infrastructure/inventory/{cluster}`.
//!
//! A k8s (or host) cluster's `inventory` is the probe's list of worker nodes, each
//! `{node_name, node_labels, node_capacity, node_info, ...}`; an object wrapping that list under
//! `kubernetes_inventory_data` or `nodes` (the probe's own answer) is read too. An HPC cluster's
//! inventory is `{name, scheduler, partitions, services}`.

use serde_json::{Map, Value, json};

use crate::store::str_field;

/// Cluster `type` values (docs/telemetry.md).
pub const K8S: &str = "k8s";
pub const HPC: &str = "hpc";
pub const EDGE_STORAGE: &str = "edge_storage";
pub const HOST: &str = "host";

/// The four capacity figures the orchestrator places by (originals 3.2).
const CAPACITY_FIELDS: [&str; 4] = ["total_fpga", "total_gpu", "cpu", "memory"];

/// Whether a cluster document is of `kind` (the original wrote "HPC", so case is ignored).
pub fn is_type(cluster: &Value, kind: &str) -> bool {
    str_field(cluster, "type").is_some_and(|t| t.eq_ignore_ascii_case(kind))
}

/// The worker nodes of a node-based (k8s, host) cluster.
pub fn nodes(cluster: &Value) -> Vec<&Value> {
    let inventory = cluster.get("inventory");
    let list = match inventory {
        Some(Value::Array(list)) => Some(list),
        Some(Value::Object(map)) => ["kubernetes_inventory_data", "nodes"]
            .iter()
            .find_map(|key| map.get(*key).and_then(Value::as_array)),
        _ => None,
    };
    list.map(|l| l.iter().filter(|n| n.is_object()).collect())
        .unwrap_or_default()
}

fn capacity(node: &Value) -> Map<String, Value> {
    let mut capacity = Map::new();
    if let Some(all) = node.get("node_capacity") {
        for field in CAPACITY_FIELDS {
            if let Some(value) = all.get(field) {
                capacity.insert(field.to_owned(), value.clone());
            }
        }
    }
    capacity
}

/// One node as `/infrastructure` shows it: architecture, the four capacity figures, labels, name.
pub fn node_view(node: &Value) -> Value {
    let mut view = Map::new();
    if let Some(architecture) = node.get("node_info").and_then(|i| i.get("architecture")) {
        view.insert(
            "node_info".to_owned(),
            json!({ "architecture": architecture }),
        );
    }
    view.insert("node_capacity".to_owned(), Value::Object(capacity(node)));
    view.insert(
        "node_labels".to_owned(),
        node.get("node_labels")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new())),
    );
    if let Some(name) = node.get("node_name") {
        view.insert("node_name".to_owned(), name.clone());
    }
    Value::Object(view)
}

/// A node-based cluster in `/infrastructure`: `{uuid, name, inventory: [node views]}`.
pub fn node_cluster_view(cluster: &Value) -> Value {
    json!({
        "uuid": cluster.get("uuid").cloned().unwrap_or(Value::Null),
        "name": cluster.get("name").cloned().unwrap_or(Value::Null),
        "inventory": nodes(cluster).into_iter().map(node_view).collect::<Vec<_>>(),
    })
}

/// An HPC cluster in `/infrastructure`: `{uuid, name, inventory: {partitions}}`.
pub fn hpc_cluster_view(cluster: &Value) -> Value {
    let partitions = cluster
        .get("inventory")
        .and_then(|i| i.get("partitions"))
        .cloned()
        .unwrap_or_else(|| Value::Array(Vec::new()));
    json!({
        "uuid": cluster.get("uuid").cloned().unwrap_or(Value::Null),
        "name": cluster.get("name").cloned().unwrap_or(Value::Null),
        "inventory": { "partitions": partitions },
    })
}

/// `/infrastructure/inventory/{cluster}` capacity rows: `{node_name, total_fpga, total_gpu, cpu,
/// memory}` per node.
pub fn capacity_rows(cluster: &Value) -> Vec<Value> {
    nodes(cluster)
        .into_iter()
        .map(|node| {
            let mut row = Map::new();
            row.insert(
                "node_name".to_owned(),
                node.get("node_name").cloned().unwrap_or(Value::Null),
            );
            row.extend(capacity(node));
            Value::Object(row)
        })
        .collect()
}

/// `/infrastructure/inventory/{cluster}` security rows: `{node_name, vaccel, security-tier}` per
/// node, with the probe's defaults ("false", 0) where a label is missing (originals 3.5).
pub fn security_rows(cluster: &Value) -> Vec<Value> {
    nodes(cluster)
        .into_iter()
        .map(|node| {
            let labels = node.get("node_labels");
            let label = |name: &str| labels.and_then(|l| l.get(name)).cloned();
            json!({
                "node_name": node.get("node_name").cloned().unwrap_or(Value::Null),
                "vaccel": label("vaccel").unwrap_or_else(|| json!("false")),
                "security-tier": label("security-tier").unwrap_or_else(|| json!(0)),
            })
        })
        .collect()
}

/// An edge-storage cluster with the `state` of its latest `cluster_state_metrics` (if any).
#[derive(Debug, Clone)]
pub struct EdgeCluster {
    pub cluster: Value,
    pub state: Option<Value>,
    /// When that state was recorded (Unix s).
    pub timestamp: Option<i64>,
}

/// Disk figures of an edge device shown with each location (D6.7 4.3.3.2 example).
const EDGE_METRIC_PREFIX: &str = "minio_";

/// Enriches one of the storage gateway's edge locations (`{id, name, cluster, region, lat, lng,
/// ...}`) with what the edge-storage probe reports about the device of the same `name`:
/// `cluster_uuid`, `node`, `minio_node_disk_total_bytes` and `metrics: [{minio_*..., timestamp}]`
/// (empty when no probe reported the device). When the location names a `cluster` that is the
/// uuid or name of an edge-storage cluster, only that cluster's devices are considered.
pub fn enrich_edge_location(location: &Value, clusters: &[EdgeCluster]) -> Value {
    let mut out = match location {
        Value::Object(map) => map.clone(),
        other => {
            let mut map = Map::new();
            map.insert("location".to_owned(), other.clone());
            map
        }
    };
    let name = str_field(location, "name");
    let wanted_cluster = str_field(location, "cluster");
    let named = |c: &&EdgeCluster| {
        wanted_cluster.is_some_and(|w| {
            str_field(&c.cluster, "uuid") == Some(w) || str_field(&c.cluster, "name") == Some(w)
        })
    };
    let candidates: Vec<&EdgeCluster> = if clusters.iter().any(|c| named(&c)) {
        clusters.iter().filter(named).collect()
    } else {
        clusters.iter().collect()
    };
    let mut metrics = Vec::new();
    if let Some(name) = name {
        for candidate in candidates {
            let device = candidate
                .state
                .as_ref()
                .and_then(|s| s.get("edge_storage_devices"))
                .and_then(Value::as_array)
                .and_then(|list| list.iter().find(|d| str_field(d, "name") == Some(name)));
            let inventory_device = candidate
                .cluster
                .get("inventory")
                .and_then(|i| i.get("edge_storage_devices"))
                .and_then(Value::as_array)
                .and_then(|list| list.iter().find(|d| str_field(d, "name") == Some(name)));
            let Some(found) = device.or(inventory_device) else {
                continue;
            };
            if let Some(uuid) = candidate.cluster.get("uuid") {
                out.entry("cluster_uuid").or_insert_with(|| uuid.clone());
            }
            for field in ["node", "minio_node_disk_total_bytes"] {
                if let Some(value) = found.get(field) {
                    out.entry(field).or_insert_with(|| value.clone());
                }
            }
            for field in ["lat", "lng"] {
                if out.get(field).is_none_or(Value::is_null)
                    && let Some(value) = inventory_device.and_then(|d| d.get(field))
                {
                    out.insert(field.to_owned(), value.clone());
                }
            }
            if let Some(device) = device {
                let mut sample: Map<String, Value> = device
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .filter(|(k, _)| k.starts_with(EDGE_METRIC_PREFIX))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                if let Some(timestamp) = candidate.timestamp {
                    sample.insert("timestamp".to_owned(), json!(timestamp));
                }
                metrics.push(Value::Object(sample));
            }
            break;
        }
    }
    out.insert("metrics".to_owned(), Value::Array(metrics));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k8s() -> Value {
        json!({
            "uuid": "c1", "type": "k8s", "name": "UVT",
            "inventory": [
                {"node_name": "w1", "node_role": "worker",
                 "node_labels": {"vaccel": "true", "security-tier": 2, "zone": "a"},
                 "node_capacity": {"cpu": "8", "memory": "32Gi", "total_gpu": 1, "total_fpga": 0, "pods": "110"},
                 "node_info": {"architecture": "amd64", "os_image": "x"}},
                {"node_name": "w2", "node_capacity": {"cpu": "4"}}
            ]
        })
    }

    #[test]
    fn node_cluster_view_keeps_the_placement_fields() {
        let view = node_cluster_view(&k8s());
        assert_eq!(view["uuid"], "c1");
        assert_eq!(view["name"], "UVT");
        let first = &view["inventory"][0];
        assert_eq!(first["node_info"], json!({"architecture": "amd64"}));
        assert_eq!(
            first["node_capacity"],
            json!({"cpu": "8", "memory": "32Gi", "total_gpu": 1, "total_fpga": 0})
        );
        assert_eq!(first["node_labels"]["zone"], "a");
        assert_eq!(first["node_name"], "w1");
        assert_eq!(view["inventory"][1]["node_labels"], json!({}));
        assert!(view["inventory"][1].get("node_info").is_none());
    }

    #[test]
    fn wrapped_inventories_are_read() {
        let wrapped =
            json!({"uuid": "c", "inventory": {"kubernetes_inventory_data": [{"node_name": "n"}]}});
        assert_eq!(nodes(&wrapped).len(), 1);
        assert!(nodes(&json!({"uuid": "c"})).is_empty());
    }

    #[test]
    fn capacity_and_security_rows() {
        let cluster = k8s();
        assert_eq!(
            capacity_rows(&cluster)[0],
            json!({"node_name": "w1", "cpu": "8", "memory": "32Gi", "total_gpu": 1, "total_fpga": 0})
        );
        let security = security_rows(&cluster);
        assert_eq!(
            security[0],
            json!({"node_name": "w1", "vaccel": "true", "security-tier": 2})
        );
        assert_eq!(
            security[1],
            json!({"node_name": "w2", "vaccel": "false", "security-tier": 0})
        );
    }

    #[test]
    fn hpc_view() {
        let cluster = json!({"uuid": "h", "type": "HPC", "name": "hawk",
            "inventory": {"name": "hawk", "scheduler": "slurm", "partitions": [{"name": "p", "total_nodes": 2}]}});
        assert!(is_type(&cluster, HPC));
        assert_eq!(
            hpc_cluster_view(&cluster),
            json!({"uuid": "h", "name": "hawk", "inventory": {"partitions": [{"name": "p", "total_nodes": 2}]}})
        );
    }

    #[test]
    fn edge_locations_get_the_probe_metrics() {
        let clusters = vec![
            EdgeCluster {
                cluster: json!({"uuid": "e1", "name": "uvt-edge", "type": "edge_storage",
                    "inventory": {"edge_storage_devices": [{"name": "dev-0", "lat": 45.7, "lng": 21.2}]}}),
                state: Some(json!({"edge_storage_devices": [
                    {"name": "dev-0", "node": "w2", "cluster_uuid": "e1",
                     "minio_node_disk_total_bytes": 100.0, "minio_node_disk_free_bytes": 60.0,
                     "minio_node_disk_used_bytes": 40.0}
                ]})),
                timestamp: Some(1700),
            },
            EdgeCluster {
                cluster: json!({"uuid": "e2", "name": "other", "type": "edge_storage"}),
                state: Some(json!({"edge_storage_devices": [{"name": "dev-0", "node": "zz"}]})),
                timestamp: Some(1800),
            },
        ];
        let location = json!({"id": 1, "name": "dev-0", "cluster": "uvt-edge", "lat": null});
        let out = enrich_edge_location(&location, &clusters);
        assert_eq!(out["id"], 1);
        assert_eq!(out["cluster_uuid"], "e1");
        assert_eq!(out["node"], "w2");
        assert_eq!(out["lat"], 45.7);
        assert_eq!(out["minio_node_disk_total_bytes"], 100.0);
        assert_eq!(
            out["metrics"],
            json!([{"minio_node_disk_total_bytes": 100.0, "minio_node_disk_free_bytes": 60.0,
                    "minio_node_disk_used_bytes": 40.0, "timestamp": 1700}])
        );
        let unknown = enrich_edge_location(&json!({"id": 2, "name": "nope"}), &clusters);
        assert_eq!(unknown["metrics"], json!([]));
        assert!(unknown.get("cluster_uuid").is_none());
    }
}

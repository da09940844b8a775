//! Probe monitor documents → time-series points and deployment records (originals.md 3.4; the
//! layout is written down in docs/telemetry.md). Pure: no I/O, unit-tested.

use std::collections::HashSet;

use serde_json::{Map, Value, json};
use serrano_timeseries::{FieldValue, Point};

/// Bucket of the per-pod metrics of monitored SERRANO deployments.
pub const DEPLOYMENTS_BUCKET: &str = "SERRANO_Deployments";
/// Bucket of the metrics applications push themselves.
pub const SPECIFIC_METRICS_BUCKET: &str = "SERRANO_Deployments_Specific_Metrics";

/// Node metric groups of the `nodes` measurement.
pub const NODE_GROUPS: [&str; 5] = ["general", "cpu", "memory", "storage", "network"];

/// What one monitor document becomes.
#[derive(Debug, Default, PartialEq)]
pub struct Converted {
    /// Points for the cluster's own bucket (bucket = cluster_uuid).
    pub cluster_points: Vec<Point>,
    /// Points for [`DEPLOYMENTS_BUCKET`].
    pub deployment_points: Vec<Point>,
    /// `cluster_deployment_metrics` documents (one per monitored pod).
    pub deployment_docs: Vec<Value>,
}

fn secs_to_ns(secs: i64) -> i64 {
    secs.saturating_mul(1_000_000_000)
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64().filter(|v| v.is_finite()),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        // Some sources send numbers as strings ("3150961459.0").
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|v| v.is_finite()),
        _ => None,
    }
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Numeric entries of an object as fields, skipping `skip` keys; sorted by key.
fn numeric_fields(object: &Map<String, Value>, skip: &[&str]) -> Vec<(String, FieldValue)> {
    let mut fields: Vec<(String, FieldValue)> = object
        .iter()
        .filter(|(key, _)| !skip.contains(&key.as_str()))
        .filter_map(|(key, value)| number(value).map(|v| (key.clone(), FieldValue::Float(v))))
        .collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    fields
}

fn point(
    measurement: &str,
    tags: Vec<(&str, String)>,
    fields: Vec<(String, FieldValue)>,
    time_ns: i64,
) -> Option<Point> {
    if fields.is_empty() {
        return None;
    }
    let mut tags: Vec<(String, String)> = tags
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    tags.sort();
    tags.dedup_by(|a, b| a.0 == b.0);
    Some(Point {
        measurement: measurement.to_owned(),
        tags,
        fields,
        time_ns,
    })
}

/// The array under `data[key]`, or empty.
fn array<'a>(data: Option<&'a Value>, key: &str) -> &'a [Value] {
    data.and_then(|d| d.get(key))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Converts a probe's `GET /monitor` document. `monitored` are the deployment uuids this agent
/// watches; `now_s` stamps samples that carry no time of their own.
pub fn monitor_to_points(
    cluster_uuid: &str,
    monitor: &Value,
    monitored: &HashSet<String>,
    now_s: i64,
) -> Converted {
    let mut out = Converted::default();
    let now_ns = secs_to_ns(now_s);

    // Kubernetes and host probes share the node metrics shape.
    for data_key in ["kubernetes_monitoring_data", "host_monitoring_data"] {
        let data = monitor.get(data_key);
        for node in array(data, "Nodes") {
            node_points(node, now_ns, &mut out.cluster_points);
        }
        for pv in array(data, "PersistentVolumes") {
            let Some(name) = text(pv.get("name")) else {
                continue;
            };
            let Some(capacity) = pv.get("capacity_storage").and_then(quantity) else {
                continue;
            };
            out.cluster_points.extend(point(
                "persistentVolumes",
                vec![("name", name)],
                vec![("capacity_storage".to_owned(), FieldValue::Float(capacity))],
                now_ns,
            ));
        }
        for deployment in array(data, "Deployments") {
            let Some(object) = deployment.as_object() else {
                continue;
            };
            let tags = vec![
                ("name", text(object.get("name")).unwrap_or_default()),
                (
                    "namespace",
                    text(object.get("namespace")).unwrap_or_default(),
                ),
            ];
            let fields: Vec<(String, FieldValue)> =
                ["replicas", "ready_replicas", "available_replicas"]
                    .iter()
                    .map(|key| {
                        (
                            key.to_string(),
                            FieldValue::Float(object.get(*key).and_then(number).unwrap_or(0.0)),
                        )
                    })
                    .collect();
            out.cluster_points
                .extend(point("deployments", tags, fields, now_ns));
        }
        for pod in array(data, "Pods") {
            pod_records(cluster_uuid, pod, monitored, now_s, &mut out);
        }
    }

    if let Some(hpc) = monitor.get("hpc_monitoring_data") {
        let infrastructure = text(hpc.get("name")).unwrap_or_default();
        for partition in array(Some(hpc), "partitions") {
            let Some(object) = partition.as_object() else {
                continue;
            };
            let name = text(object.get("name").or_else(|| object.get("partition_name")))
                .unwrap_or_default();
            let fields = numeric_fields(object, &["name", "partition_name"]);
            out.cluster_points.extend(point(
                "hpc_partitions",
                vec![
                    ("infrastructure_name", infrastructure.clone()),
                    ("partition_name", name),
                ],
                fields,
                now_ns,
            ));
        }
    }

    for device in array(Some(monitor), "edge_storage_devices") {
        let Some(object) = device.as_object() else {
            continue;
        };
        let fields = numeric_fields(object, &["cluster_uuid", "name", "node", "lat", "lng"]);
        out.cluster_points.extend(point(
            "edge_storage",
            vec![
                (
                    "cluster_uuid",
                    text(object.get("cluster_uuid")).unwrap_or_else(|| cluster_uuid.to_owned()),
                ),
                ("node", text(object.get("node")).unwrap_or_default()),
                ("name", text(object.get("name")).unwrap_or_default()),
            ],
            fields,
            now_ns,
        ));
    }
    out
}

fn node_points(node: &Value, default_ns: i64, out: &mut Vec<Point>) {
    let Some(name) = text(node.get("node_name")) else {
        return;
    };
    let time_ns = node
        .get("timestamp")
        .and_then(number)
        .map(|t| secs_to_ns(t as i64))
        .unwrap_or(default_ns);
    for group in NODE_GROUPS {
        let Some(values) = node.get(group).and_then(Value::as_object) else {
            continue;
        };
        out.extend(point(
            "nodes",
            vec![("node_name", name.clone()), ("group", group.to_owned())],
            numeric_fields(values, &[]),
            time_ns,
        ));
    }
}

fn pod_records(
    cluster_uuid: &str,
    pod: &Value,
    monitored: &HashSet<String>,
    now_s: i64,
    out: &mut Converted,
) {
    let Some(object) = pod.as_object() else {
        return;
    };
    let name = text(object.get("name")).unwrap_or_default();
    let namespace = text(object.get("namespace")).unwrap_or_default();
    let node = text(object.get("node")).unwrap_or_default();
    let phase = text(object.get("phase")).unwrap_or_default();
    let usage = object.get("usage");
    // Numbers from the probe when it sent them, else the Kubernetes quantities of `usage`.
    let cpu = object
        .get("cpu_usage_nanocores")
        .and_then(number)
        .or_else(|| usage.and_then(|u| u.get("cpu")).and_then(cpu_nanocores));
    let memory = object
        .get("memory_usage_bytes")
        .and_then(number)
        .or_else(|| usage.and_then(|u| u.get("memory")).and_then(quantity));
    let restarts = object.get("restarts").and_then(number).unwrap_or(0.0);
    let mut fields = vec![("restarts".to_owned(), FieldValue::Float(restarts))];
    if let Some(cpu) = cpu {
        fields.push(("cpu_usage".to_owned(), FieldValue::Float(cpu)));
    }
    if let Some(memory) = memory {
        fields.push(("memory_usage".to_owned(), FieldValue::Float(memory)));
    }
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    let now_ns = secs_to_ns(now_s);
    out.cluster_points.extend(point(
        "pods",
        vec![
            ("name", name.clone()),
            ("namespace", namespace.clone()),
            ("node", node.clone()),
            ("phase", phase.clone()),
        ],
        fields.clone(),
        now_ns,
    ));

    let Some(deployment_uuid) = text(object.get("serrano_deployment_uuid")) else {
        return;
    };
    if !monitored.contains(&deployment_uuid) {
        return;
    }
    let group_id = text(object.get("group_id")).unwrap_or_default();
    out.deployment_points.extend(point(
        "serrano_deployments",
        vec![
            ("cluster_uuid", cluster_uuid.to_owned()),
            ("node", node.clone()),
            ("name", name.clone()),
            ("deployment_uuid", deployment_uuid.clone()),
            ("group_id", group_id.clone()),
            ("namespace", namespace.clone()),
            ("phase", phase.clone()),
        ],
        fields,
        now_ns,
    ));
    // The document shape of the D6.7 4.4.3.2 "GET .../central/deployments/{uuid}" example.
    out.deployment_docs.push(json!({
        "cluster_uuid": cluster_uuid,
        "deployment_uuid": deployment_uuid,
        "group_id": group_id,
        "name": name,
        "namespace": namespace,
        "node": node,
        "phase": phase,
        "host_ip": object.get("host_ip").cloned().unwrap_or(Value::Null),
        "pod_ip": object.get("pod_ip").cloned().unwrap_or(Value::Null),
        "restarts": object.get("restarts").cloned().unwrap_or(json!(0)),
        "creation_timestamp": object.get("creation_timestamp").cloned().unwrap_or(Value::Null),
        "start_time": object.get("start_time").cloned().unwrap_or(Value::Null),
        "usage": usage.cloned().unwrap_or_else(|| json!({})),
        "timestamp": now_s,
    }));
}

/// A Kubernetes quantity (`150672Ki`, `1Gi`, `500m`, `2`, `1e3`) or a number, as a plain number.
pub fn quantity(value: &Value) -> Option<f64> {
    if let Some(n) = value.as_f64() {
        return n.is_finite().then_some(n);
    }
    serrano_model::quantity::parse_quantity(value.as_str()?)
        .ok()
        .filter(|v| v.is_finite())
}

/// A CPU quantity in nanocores (`1002310835n` → 1002310835, `500m` → 5e8, `2` → 2e9).
pub fn cpu_nanocores(value: &Value) -> Option<f64> {
    quantity(value).map(|cores| (cores * 1e9).round())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(point: &Point, name: &str) -> Option<f64> {
        point
            .fields
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_f64())
    }

    fn tag<'a>(point: &'a Point, name: &str) -> Option<&'a str> {
        point
            .tags
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn quantities() {
        assert_eq!(quantity(&json!("150672Ki")), Some(150672.0 * 1024.0));
        assert_eq!(quantity(&json!("1Gi")), Some(1_073_741_824.0));
        assert_eq!(quantity(&json!("2")), Some(2.0));
        assert_eq!(quantity(&json!("1e3")), Some(1000.0));
        assert_eq!(quantity(&json!(12)), Some(12.0));
        assert_eq!(quantity(&json!("abc")), None);
        assert_eq!(quantity(&json!("Ki")), None);
        assert_eq!(cpu_nanocores(&json!("1002310835n")), Some(1_002_310_835.0));
        assert_eq!(cpu_nanocores(&json!("500m")), Some(500_000_000.0));
        assert_eq!(cpu_nanocores(&json!("2")), Some(2_000_000_000.0));
    }

    #[test]
    fn host_nodes_become_one_point_per_group() {
        let monitor = json!({"uuid": "p1", "type": "Probe.Host", "host_monitoring_data": {"Nodes": [{
            "node_name": "vm", "timestamp": 1700000000,
            "general": {"node_boot_time_seconds": 1699990000},
            "cpu": {"cpu_0_idle": 10.5, "cpu_0_used": 2.5, "node_cpus": 1},
            "memory": {"node_memory_MemTotal_bytes": 1000, "node_memory_usage_percentage": 40.5},
            "storage": {}, "network": {"node_network_receive_bytes_total": "12"}
        }]}});
        let out = monitor_to_points("c1", &monitor, &HashSet::new(), 5);
        // storage is empty: no point for it.
        assert_eq!(out.cluster_points.len(), 4);
        let cpu = out
            .cluster_points
            .iter()
            .find(|p| tag(p, "group") == Some("cpu"))
            .unwrap();
        assert_eq!(cpu.measurement, "nodes");
        assert_eq!(tag(cpu, "node_name"), Some("vm"));
        assert_eq!(field(cpu, "cpu_0_idle"), Some(10.5));
        assert_eq!(field(cpu, "node_cpus"), Some(1.0));
        assert_eq!(cpu.time_ns, 1_700_000_000_000_000_000);
        let net = out
            .cluster_points
            .iter()
            .find(|p| tag(p, "group") == Some("network"))
            .unwrap();
        assert_eq!(field(net, "node_network_receive_bytes_total"), Some(12.0));
        assert!(out.deployment_docs.is_empty());
    }

    #[test]
    fn pods_of_monitored_deployments_are_recorded() {
        let monitor = json!({"uuid": "p", "type": "Probe.k8s", "kubernetes_monitoring_data": {
        "Nodes": [], "PersistentVolumes": [{"name": "pv1", "capacity_storage": "10Gi"}],
        "Deployments": [{"name": "d", "namespace": "integration", "replicas": 2, "ready_replicas": 1, "available_replicas": 1}],
        "Pods": [
            {"name": "a-1", "namespace": "integration", "node": "n1", "phase": "Running", "serrano_deployment_uuid": "dep1",
             "group_id": "s1", "restarts": 1, "pod_ip": "10.0.0.1", "host_ip": "192.168.1.1",
             "usage": {"cpu": "1002310835n", "memory": "150672Ki"}},
            {"name": "b-1", "namespace": "other", "node": "n1", "phase": "Pending", "serrano_deployment_uuid": "unwatched"}
        ]}});
        let monitored: HashSet<String> = ["dep1".to_owned()].into();
        let out = monitor_to_points("c1", &monitor, &monitored, 1700000100);
        let pv = out
            .cluster_points
            .iter()
            .find(|p| p.measurement == "persistentVolumes")
            .unwrap();
        assert_eq!(field(pv, "capacity_storage"), Some(10.0 * 1_073_741_824.0));
        let dep = out
            .cluster_points
            .iter()
            .find(|p| p.measurement == "deployments")
            .unwrap();
        assert_eq!(field(dep, "replicas"), Some(2.0));
        let pods: Vec<&Point> = out
            .cluster_points
            .iter()
            .filter(|p| p.measurement == "pods")
            .collect();
        assert_eq!(pods.len(), 2);
        assert_eq!(field(pods[0], "cpu_usage"), Some(1_002_310_835.0));
        assert_eq!(field(pods[0], "memory_usage"), Some(150672.0 * 1024.0));
        assert_eq!(tag(pods[0], "phase"), Some("Running"));
        assert_eq!(out.deployment_points.len(), 1);
        assert_eq!(tag(&out.deployment_points[0], "group_id"), Some("s1"));
        assert_eq!(out.deployment_docs.len(), 1);
        let doc = &out.deployment_docs[0];
        assert_eq!(doc["deployment_uuid"], "dep1");
        assert_eq!(doc["cluster_uuid"], "c1");
        assert_eq!(doc["usage"]["memory"], "150672Ki");
        assert_eq!(doc["timestamp"], 1700000100);
    }

    #[test]
    fn hpc_and_edge_storage() {
        let monitor = json!({"uuid": "h", "type": "Probe.HPC", "hpc_monitoring_data": {"name": "hpc1", "scheduler": "slurm",
            "partitions": [{"name": "debug", "avail_cpus": 4, "avail_nodes": 1, "queued_jobs": 0, "running_jobs": 2, "state": "up"}]}});
        let out = monitor_to_points("c2", &monitor, &HashSet::new(), 10);
        assert_eq!(out.cluster_points.len(), 1);
        let p = &out.cluster_points[0];
        assert_eq!(p.measurement, "hpc_partitions");
        assert_eq!(tag(p, "infrastructure_name"), Some("hpc1"));
        assert_eq!(tag(p, "partition_name"), Some("debug"));
        assert_eq!(field(p, "running_jobs"), Some(2.0));
        assert_eq!(field(p, "state"), None);

        let monitor = json!({"edge_storage_devices": [{"cluster_uuid": "c3", "name": "edge-storage-devices-0", "node": "w2",
            "minio_node_disk_free_bytes": 18935615488.0, "minio_s3_requests_total": 0}], "type": "Probe.EdgeStorage", "uuid": "e"});
        let out = monitor_to_points("c3", &monitor, &HashSet::new(), 10);
        assert_eq!(out.cluster_points.len(), 1);
        assert_eq!(out.cluster_points[0].measurement, "edge_storage");
        assert_eq!(
            field(&out.cluster_points[0], "minio_node_disk_free_bytes"),
            Some(18935615488.0)
        );
    }

    #[test]
    fn garbage_is_ignored_not_fatal() {
        for monitor in [
            json!(null),
            json!([1, 2]),
            json!({"kubernetes_monitoring_data": {"Nodes": [1, "x", {"node_name": 5, "cpu": {"a": "NaN"}}]}}),
            json!({"hpc_monitoring_data": {"partitions": "nope"}}),
        ] {
            let out = monitor_to_points("c", &monitor, &HashSet::new(), 1);
            assert!(out.cluster_points.iter().all(|p| {
                p.fields
                    .iter()
                    .all(|(_, v)| v.as_f64().is_some_and(f64::is_finite))
            }));
        }
    }
}

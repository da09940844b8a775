//! Streaming telemetry (D6.7 4.4.3.2 "Streaming telemetry"): the handler asks a cluster's agent to
//! start or stop a streaming session, and receives the streamed samples the agents forward over
//! gRPC, keeping the latest sample per series in `streaming_telemetry`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use serrano_docstore::{DocError, DocStore, Filter, FindOptions};
use serrano_telemetry_stream::pb;
use serrano_telemetry_stream::{BatchSink, SinkError};
use utoipa::ToSchema;

use crate::store::{STREAMING_TELEMETRY, is_id, str_field};

/// Slowest and fastest reporting rates accepted, in seconds.
pub const MAX_REPORTING_RATE: u32 = 3600;
/// Most nodes and metric groups one session may name.
pub const MAX_NODES: usize = 1000;
pub const MAX_METRICS: usize = 64;

/// What a streaming request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StreamingAction {
    Start,
    Stop,
}

/// `POST /streaming` body (the D6.7 4.4.3.2 example), forwarded as is to the cluster's agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamingRequest {
    pub cluster_uuid: String,
    pub action: StreamingAction,
    /// Seconds between samples (1 to 3600); required to start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporting_rate: Option<u32>,
    /// Node names to stream from (all nodes when empty).
    #[serde(default)]
    pub nodes: Vec<String>,
    /// Metric groups: cpu, memory, storage, network, general.
    #[serde(default)]
    pub metrics: Vec<String>,
    /// The session to stop, or an id chosen for a new one (the agent's choice when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

impl StreamingRequest {
    pub fn validate(&self) -> Result<(), String> {
        if !is_id(&self.cluster_uuid) {
            return Err(format!("invalid cluster_uuid {:?}", self.cluster_uuid));
        }
        match (self.action, self.reporting_rate) {
            (StreamingAction::Start, None) => {
                return Err("reporting_rate is required to start streaming".to_owned());
            }
            (_, Some(rate)) if rate == 0 || rate > MAX_REPORTING_RATE => {
                return Err(format!(
                    "reporting_rate must be 1 to {MAX_REPORTING_RATE} seconds"
                ));
            }
            _ => {}
        }
        if self.nodes.len() > MAX_NODES {
            return Err(format!("at most {MAX_NODES} nodes may be named"));
        }
        if let Some(bad) = self.nodes.iter().find(|n| !is_id(n)) {
            return Err(format!("invalid node name {bad:?}"));
        }
        if self.metrics.len() > MAX_METRICS {
            return Err(format!("at most {MAX_METRICS} metric groups may be named"));
        }
        if let Some(bad) = self.metrics.iter().find(|m| !is_id(m)) {
            return Err(format!("invalid metric group {bad:?}"));
        }
        if let Some(session) = self.session_id.as_deref().filter(|s| !is_id(s)) {
            return Err(format!("invalid session_id {session:?}"));
        }
        Ok(())
    }
}

/// The series of a sample: its measurement and its tags in name order, line-protocol style
/// (`nodes,group=cpu,node_name=w1`). Identifies the stored "latest sample".
pub fn series_key(measurement: &str, tags: &HashMap<String, String>) -> String {
    let sorted: BTreeMap<&String, &String> = tags.iter().collect();
    let mut key = measurement.to_owned();
    for (name, value) in sorted {
        key.push(',');
        key.push_str(name);
        key.push('=');
        key.push_str(value);
    }
    key
}

/// Stores the newest sample of every series of a forwarded batch in `streaming_telemetry`:
/// `{cluster_uuid, source_uuid, measurement, tags, fields, time_ns, series}`. A sample older than
/// the stored one of its series (a late batch) is skipped.
pub struct LatestSampleSink {
    docs: Arc<dyn DocStore>,
    stored: AtomicU64,
}

impl LatestSampleSink {
    pub fn new(docs: Arc<dyn DocStore>) -> Self {
        Self {
            docs,
            stored: AtomicU64::new(0),
        }
    }

    /// Samples written since start.
    pub fn stored(&self) -> u64 {
        self.stored.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl BatchSink for LatestSampleSink {
    async fn accept(&self, batch: pb::MetricBatch) -> Result<(), SinkError> {
        if !is_id(&batch.cluster_uuid) {
            // Not the sender's fault to resend: drop it, but say so.
            tracing::warn!(source = %batch.source_uuid, "streamed batch without a valid cluster_uuid dropped");
            return Ok(());
        }
        let mut newest: HashMap<String, &pb::Sample> = HashMap::new();
        for sample in &batch.samples {
            let key = series_key(&sample.measurement, &sample.tags);
            match newest.get(&key) {
                Some(kept) if kept.time_ns >= sample.time_ns => {}
                _ => {
                    newest.insert(key, sample);
                }
            }
        }
        let stored: HashMap<String, i64> = self
            .docs
            .find(
                STREAMING_TELEMETRY,
                &Filter::all().eq("cluster_uuid", batch.cluster_uuid.as_str()),
                &FindOptions::default(),
            )
            .await
            .map_err(|err| SinkError::with_source("cannot read streaming_telemetry", err))?
            .iter()
            .filter_map(|doc| {
                Some((
                    str_field(doc, "series")?.to_owned(),
                    doc.get("time_ns")?.as_i64()?,
                ))
            })
            .collect();
        for (series, sample) in newest {
            if stored.get(&series).is_some_and(|t| *t > sample.time_ns) {
                continue;
            }
            let doc = json!({
                "cluster_uuid": batch.cluster_uuid,
                "source_uuid": batch.source_uuid,
                "measurement": sample.measurement,
                "tags": sample.tags.iter().collect::<BTreeMap<_, _>>(),
                "fields": sample.fields.iter().collect::<BTreeMap<_, _>>(),
                "time_ns": sample.time_ns,
                "series": series,
            });
            let filter = Filter::all()
                .eq("cluster_uuid", batch.cluster_uuid.as_str())
                .eq("series", series.as_str());
            match self.docs.upsert(STREAMING_TELEMETRY, &filter, doc).await {
                Ok(_) => {
                    self.stored.fetch_add(1, Ordering::Relaxed);
                }
                // A sample the store refuses (a tag named `$x`) would be refused again on every
                // resend: skip it instead of failing the stream.
                Err(DocError::Invalid(reason)) => {
                    tracing::warn!(%series, %reason, "streamed sample not storable, skipped");
                }
                Err(err) => {
                    return Err(SinkError::with_source(
                        "cannot write streaming_telemetry",
                        err,
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `GET /streaming/{cluster}`: the stored samples, by series.
pub fn sorted_samples(mut docs: Vec<Value>) -> Vec<Value> {
    docs.sort_by(|a, b| {
        str_field(a, "series")
            .unwrap_or_default()
            .cmp(str_field(b, "series").unwrap_or_default())
    });
    docs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_keys_sort_tags() {
        let tags: HashMap<String, String> = [("node_name", "w1"), ("group", "cpu")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(series_key("nodes", &tags), "nodes,group=cpu,node_name=w1");
        assert_eq!(series_key("nodes", &HashMap::new()), "nodes");
    }

    #[test]
    fn requests_are_validated() {
        let start = StreamingRequest {
            cluster_uuid: "c".into(),
            action: StreamingAction::Start,
            reporting_rate: Some(5),
            nodes: vec!["serrano-k8s-worker-02".into()],
            metrics: vec!["cpu".into(), "memory".into()],
            session_id: None,
        };
        start.validate().unwrap();
        let no_rate = StreamingRequest {
            reporting_rate: None,
            ..start.clone()
        };
        assert!(no_rate.validate().unwrap_err().contains("reporting_rate"));
        let stop = StreamingRequest {
            action: StreamingAction::Stop,
            ..no_rate
        };
        stop.validate().unwrap();
        let zero = StreamingRequest {
            reporting_rate: Some(0),
            ..start.clone()
        };
        assert!(zero.validate().is_err());
        let bad_node = StreamingRequest {
            nodes: vec!["a b".into()],
            ..start.clone()
        };
        assert!(bad_node.validate().unwrap_err().contains("node"));
        let bad_session = StreamingRequest {
            session_id: Some("../x".into()),
            ..start
        };
        assert!(bad_session.validate().unwrap_err().contains("session_id"));
    }
}

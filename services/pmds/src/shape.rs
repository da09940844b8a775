//! The two answer formats of a read (pmds_rest_v1.yaml `format`; D6.7 4.4.3.2 examples).
//!
//! - `raw`: one record per stored value, in (series, field, time) order:
//!   `{"_measurement", "_field", "_value", "_time", <tag>: <value>...}`, the shape of the Flux
//!   records the original returned (the EDE reads `_field`, `_value`, `_time`, `node_name`).
//! - `compact`: an object keyed by entity name (the entity's key tag) holding, in time order,
//!   one entry per timestamp with every field written at that time, the entity's compact labels
//!   and `time`: `{"nuc5": [{"node_memory_MemFree_bytes": 1.8e10, ..., "time": "..."}]}`.
//!
//! Times are RFC 3339 UTC with a fraction ([`format_time`]). Non-finite floats are `null`.

use std::collections::BTreeMap;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use serrano_timeseries::{FieldValue, Row};

use crate::layout::Entity;
use crate::window::format_time;

/// A field value as JSON.
pub fn json_value(value: &FieldValue) -> Value {
    match value {
        FieldValue::Float(v) => serde_json::Number::from_f64(*v).map_or(Value::Null, Value::Number),
        FieldValue::Int(v) => Value::from(*v),
        FieldValue::UInt(v) => Value::from(*v),
        FieldValue::Bool(v) => Value::Bool(*v),
        FieldValue::Str(v) => Value::String(v.clone()),
    }
}

/// Rows serialised as `raw` records without copying them into JSON values first.
pub struct RawRecords<'a>(pub &'a [Row]);

struct RawRecord<'a>(&'a Row);

impl Serialize for RawRecords<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(RawRecord))
    }
}

impl Serialize for RawRecord<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let row = self.0;
        let mut map = serializer.serialize_map(Some(4 + row.tags.len()))?;
        map.serialize_entry("_measurement", &row.measurement)?;
        map.serialize_entry("_field", &row.field)?;
        map.serialize_entry("_value", &json_value(&row.value))?;
        map.serialize_entry("_time", &format_time(row.time_ns))?;
        for (key, value) in &row.tags {
            // A tag named like a record column would make a duplicate key.
            if !matches!(key.as_str(), "_measurement" | "_field" | "_value" | "_time") {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

/// One `compact` entry: values by name (fields and labels), then `time`.
#[derive(Debug, Default, PartialEq)]
pub struct CompactEntry {
    pub values: BTreeMap<String, Value>,
    pub time_ns: i64,
}

impl Serialize for CompactEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.values.len() + 1))?;
        for (key, value) in &self.values {
            // `time` is the entry's own key.
            if key != "time" {
                map.serialize_entry(key, value)?;
            }
        }
        map.serialize_entry("time", &format_time(self.time_ns))?;
        map.end()
    }
}

/// Rows grouped per entity name, entries merged per timestamp, in time order. Rows without the
/// entity's key tag have no name to go under and are left out.
pub fn compact(rows: &[Row], entity: &Entity) -> BTreeMap<String, Vec<CompactEntry>> {
    let mut by_name: BTreeMap<&str, BTreeMap<i64, CompactEntry>> = BTreeMap::new();
    for row in rows {
        let Some(name) = tag(row, entity.key_tag) else {
            continue;
        };
        let entry = by_name
            .entry(name)
            .or_default()
            .entry(row.time_ns)
            .or_insert_with(|| CompactEntry {
                values: BTreeMap::new(),
                time_ns: row.time_ns,
            });
        for label in entity.compact_labels {
            if let Some(value) = tag(row, label) {
                entry
                    .values
                    .insert((*label).to_owned(), Value::String(value.to_owned()));
            }
        }
        entry
            .values
            .insert(row.field.clone(), json_value(&row.value));
    }
    by_name
        .into_iter()
        .map(|(name, entries)| (name.to_owned(), entries.into_values().collect()))
        .collect()
}

fn tag<'a>(row: &'a Row, key: &str) -> Option<&'a str> {
    row.tags
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{NODES, SERRANO_DEPLOYMENTS};

    fn row(tags: &[(&str, &str)], field: &str, value: FieldValue, time_ns: i64) -> Row {
        Row {
            measurement: "m".into(),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            field: field.into(),
            value,
            time_ns,
        }
    }

    #[test]
    fn raw_records_carry_every_tag() {
        let rows = vec![row(
            &[("group", "memory"), ("node_name", "nuc5")],
            "node_memory_MemFree_bytes",
            FieldValue::Float(18_508_849_152.0),
            1_701_355_804_520_099_000,
        )];
        let json = serde_json::to_value(RawRecords(&rows)).unwrap();
        assert_eq!(
            json,
            serde_json::json!([{
                "_measurement": "m", "_field": "node_memory_MemFree_bytes",
                "_value": 18_508_849_152.0, "_time": "2023-11-30T14:50:04.520099Z",
                "group": "memory", "node_name": "nuc5"
            }])
        );
        let nan = vec![row(&[], "f", FieldValue::Float(f64::NAN), 0)];
        assert_eq!(
            serde_json::to_value(RawRecords(&nan)).unwrap()[0]["_value"],
            Value::Null
        );
    }

    #[test]
    fn compact_merges_fields_per_time_and_keeps_labels() {
        let t = 1_701_355_354_149_451_000;
        let tags = |phase| {
            [
                ("cluster_uuid", "c"),
                ("deployment_uuid", "d"),
                ("group_id", "s3"),
                ("name", "pod-a"),
                ("node", "n"),
                ("namespace", "ns"),
                ("phase", phase),
            ]
        };
        let rows = vec![
            row(&tags("Pending"), "cpu_usage", FieldValue::Int(188_567), t),
            row(&tags("Pending"), "restarts", FieldValue::Int(1), t),
            row(
                &tags("Running"),
                "cpu_usage",
                FieldValue::Int(163_545),
                t + 30_000_000_000,
            ),
            row(&[("name", "pod-b")], "cpu_usage", FieldValue::Float(2.5), t),
            row(&[("other", "x")], "cpu_usage", FieldValue::Float(9.0), t),
        ];
        let json = serde_json::to_string(&compact(&rows, &SERRANO_DEPLOYMENTS)).unwrap();
        assert_eq!(
            json,
            r#"{"pod-a":[{"cpu_usage":188567,"group_id":"s3","phase":"Pending","restarts":1,"time":"2023-11-30T14:42:34.149451Z"},{"cpu_usage":163545,"group_id":"s3","phase":"Running","time":"2023-11-30T14:43:04.149451Z"}],"pod-b":[{"cpu_usage":2.5,"time":"2023-11-30T14:42:34.149451Z"}]}"#
        );
        // Nodes show fields and time only.
        let nodes = vec![row(
            &[("group", "general"), ("node_name", "n1")],
            "node_total_running_pods",
            FieldValue::Int(3),
            0,
        )];
        assert_eq!(
            serde_json::to_value(compact(&nodes, &NODES)).unwrap(),
            serde_json::json!({"n1": [{"node_total_running_pods": 3, "time": "1970-01-01T00:00:00.000000Z"}]})
        );
    }
}

//! Streamed samples as time-series points: what every receiver (agent, PMDS) stores.

use serrano_timeseries::{FieldValue, Point};

use crate::pb;

/// One sample as a point with sorted tags and fields; `None` when it has no measurement or no
/// finite field (the receiver has validated batches already; this is the last guard).
pub fn sample_point(sample: &pb::Sample) -> Option<Point> {
    if sample.measurement.is_empty() {
        return None;
    }
    let mut tags: Vec<(String, String)> = sample
        .tags
        .iter()
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    tags.sort();
    let mut fields: Vec<(String, FieldValue)> = sample
        .fields
        .iter()
        .filter(|(k, v)| !k.is_empty() && v.is_finite())
        .map(|(k, v)| (k.clone(), FieldValue::Float(*v)))
        .collect();
    if fields.is_empty() {
        return None;
    }
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    Some(Point {
        measurement: sample.measurement.clone(),
        tags,
        fields,
        time_ns: sample.time_ns,
    })
}

/// Every storable sample of a batch.
pub fn batch_points(batch: &pb::MetricBatch) -> Vec<Point> {
    batch.samples.iter().filter_map(sample_point).collect()
}

/// A point as a sample (numeric fields only: strings have no place in a stream).
pub fn point_sample(point: &Point) -> pb::Sample {
    pb::Sample {
        measurement: point.measurement.clone(),
        tags: point.tags.iter().cloned().collect(),
        fields: point
            .fields
            .iter()
            .filter_map(|(k, v)| v.as_f64().map(|v| (k.clone(), v)))
            .collect(),
        time_ns: point.time_ns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_and_points_convert_both_ways() {
        let sample = pb::Sample {
            measurement: "nodes".into(),
            tags: [
                ("node_name".to_owned(), "n1".to_owned()),
                ("group".to_owned(), "cpu".to_owned()),
            ]
            .into(),
            fields: [
                ("b".to_owned(), 2.0),
                ("a".to_owned(), 1.0),
                ("bad".to_owned(), f64::NAN),
            ]
            .into(),
            time_ns: 42,
        };
        let point = sample_point(&sample).unwrap();
        assert_eq!(
            point.tags,
            [
                ("group".to_owned(), "cpu".to_owned()),
                ("node_name".to_owned(), "n1".to_owned())
            ]
        );
        assert_eq!(
            point.fields,
            [
                ("a".to_owned(), FieldValue::Float(1.0)),
                ("b".to_owned(), FieldValue::Float(2.0))
            ]
        );
        assert_eq!(point.time_ns, 42);
        let back = point_sample(&point);
        assert_eq!(back.fields.len(), 2);
        assert_eq!(back.tags.get("node_name").map(String::as_str), Some("n1"));
        let empty = pb::Sample {
            measurement: String::new(),
            ..sample.clone()
        };
        assert!(sample_point(&empty).is_none());
        let no_fields = pb::Sample {
            fields: [("x".to_owned(), f64::INFINITY)].into(),
            ..sample
        };
        assert!(sample_point(&no_fields).is_none());
    }
}

//! Batch checks shared by the receiver (which rejects) and the sender (which refuses to enqueue),
//! so that a batch the sender accepted is never rejected by a receiver with the same limits.

use crate::error::BatchError;
use crate::pb;

/// Checks the samples of a batch: count limit, measurement and field names, finite values.
pub(crate) fn check_samples(samples: &[pb::Sample], max_samples: usize) -> Result<(), BatchError> {
    if samples.is_empty() {
        return Err(BatchError::NoSamples);
    }
    if samples.len() > max_samples {
        return Err(BatchError::TooManySamples {
            count: samples.len(),
            limit: max_samples,
        });
    }
    for (index, sample) in samples.iter().enumerate() {
        if sample.measurement.is_empty() {
            return Err(BatchError::EmptyMeasurement { sample: index });
        }
        if sample.fields.is_empty() {
            return Err(BatchError::NoFields { sample: index });
        }
        if sample.tags.keys().any(String::is_empty) || sample.fields.keys().any(String::is_empty) {
            return Err(BatchError::EmptyName { sample: index });
        }
        // Line protocol and the time-series stores cannot hold NaN or infinities.
        if let Some((name, _)) = sample.fields.iter().find(|(_, value)| !value.is_finite()) {
            return Err(BatchError::NonFiniteField {
                sample: index,
                field: name.clone(),
            });
        }
    }
    Ok(())
}

/// Checks a whole received batch: identity and seq, then the samples.
pub(crate) fn check_batch(batch: &pb::MetricBatch, max_samples: usize) -> Result<(), BatchError> {
    if batch.source_uuid.is_empty() {
        return Err(BatchError::EmptySourceUuid);
    }
    if batch.seq == 0 {
        return Err(BatchError::ZeroSeq);
    }
    check_samples(&batch.samples, max_samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(field: f64) -> pb::Sample {
        pb::Sample {
            measurement: "cpu".into(),
            tags: [("node".to_string(), "w1".to_string())].into(),
            fields: [("used".to_string(), field)].into(),
            time_ns: 1,
        }
    }

    fn batch(samples: Vec<pb::Sample>) -> pb::MetricBatch {
        pb::MetricBatch {
            source_uuid: "probe".into(),
            cluster_uuid: String::new(),
            session_id: "s".into(),
            seq: 1,
            samples,
        }
    }

    #[test]
    fn accepts_a_valid_batch() {
        assert_eq!(check_batch(&batch(vec![sample(1.5)]), 10), Ok(()));
    }

    #[test]
    fn rejects_each_kind_of_invalid_batch() {
        let mut no_source = batch(vec![sample(1.0)]);
        no_source.source_uuid.clear();
        assert_eq!(
            check_batch(&no_source, 10),
            Err(BatchError::EmptySourceUuid)
        );

        let mut zero = batch(vec![sample(1.0)]);
        zero.seq = 0;
        assert_eq!(check_batch(&zero, 10), Err(BatchError::ZeroSeq));

        assert_eq!(check_batch(&batch(vec![]), 10), Err(BatchError::NoSamples));
        assert_eq!(
            check_batch(&batch(vec![sample(1.0); 3]), 2),
            Err(BatchError::TooManySamples { count: 3, limit: 2 })
        );

        let mut unnamed = sample(1.0);
        unnamed.measurement.clear();
        assert_eq!(
            check_batch(&batch(vec![sample(1.0), unnamed]), 10),
            Err(BatchError::EmptyMeasurement { sample: 1 })
        );

        let mut fieldless = sample(1.0);
        fieldless.fields.clear();
        assert_eq!(
            check_batch(&batch(vec![fieldless]), 10),
            Err(BatchError::NoFields { sample: 0 })
        );

        let mut empty_tag = sample(1.0);
        empty_tag.tags.insert(String::new(), "x".into());
        assert_eq!(
            check_batch(&batch(vec![empty_tag]), 10),
            Err(BatchError::EmptyName { sample: 0 })
        );

        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(
                check_batch(&batch(vec![sample(bad)]), 10),
                Err(BatchError::NonFiniteField {
                    sample: 0,
                    field: "used".into()
                })
            );
        }
    }

    #[test]
    fn size_limits_map_to_resource_exhausted() {
        assert_eq!(
            BatchError::TooManySamples { count: 2, limit: 1 }.code(),
            tonic::Code::ResourceExhausted
        );
        assert_eq!(
            BatchError::TooLarge { bytes: 2, limit: 1 }.code(),
            tonic::Code::ResourceExhausted
        );
        assert_eq!(BatchError::ZeroSeq.code(), tonic::Code::InvalidArgument);
    }
}

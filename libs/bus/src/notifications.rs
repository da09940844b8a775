//! The notification messages of the telemetry framework (D6.7 4.5.2.4.1, Table 7; originals
//! 3.3): JSON objects with these exact field names, published to
//! [`crate::TELEMETRY_NOTIFICATIONS_TOPIC`] and [`crate::NOTIFICATION_MESSAGES_TOPIC`].
//!
//! Timestamps are Unix seconds. They are written as integers (the spec's example); reading
//! also accepts a float (Python's `time.time()`), truncated.

use serde::{Deserialize, Deserializer, Serialize};

use crate::{BusError, StreamHandler};

/// `status` of a telemetry entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EntityStatus {
    Up,
    Down,
}

/// `type` of a telemetry entity: a monitoring probe or an Enhanced Telemetry Agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntityType {
    Probe,
    Agent,
}

/// Telemetry / Agent and Telemetry / Probe (Table 7), e.g.
/// `{"entity_id": "ddced532-…", "status": "DOWN", "type": "Probe", "timestamp": 1654612649}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TelemetryEntityStatus {
    /// The probe or agent UUID.
    pub entity_id: String,
    pub status: EntityStatus,
    #[serde(rename = "type")]
    pub entity_type: EntityType,
    #[serde(deserialize_with = "unix_seconds")]
    pub timestamp: i64,
}

/// General / Information (Table 7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneralInformation {
    /// Event related information.
    pub message: String,
    #[serde(deserialize_with = "unix_seconds")]
    pub timestamp: i64,
}

/// Resources / Status (Table 7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceStatus {
    /// The resource UUID.
    pub entity_id: String,
    /// The detected event.
    pub event: String,
    #[serde(deserialize_with = "unix_seconds")]
    pub timestamp: i64,
}

/// Any notification of Table 7, told apart by its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Notification {
    TelemetryEntity(TelemetryEntityStatus),
    Resource(ResourceStatus),
    General(GeneralInformation),
}

impl TelemetryEntityStatus {
    /// The message for `entity_id` with the current time.
    pub fn now(
        entity_id: impl Into<String>,
        status: EntityStatus,
        entity_type: EntityType,
    ) -> Self {
        Self {
            entity_id: entity_id.into(),
            status,
            entity_type,
            timestamp: unix_now(),
        }
    }
}

impl GeneralInformation {
    pub fn now(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            timestamp: unix_now(),
        }
    }
}

impl ResourceStatus {
    pub fn now(entity_id: impl Into<String>, event: impl Into<String>) -> Self {
        Self {
            entity_id: entity_id.into(),
            event: event.into(),
            timestamp: unix_now(),
        }
    }
}

impl Notification {
    /// Parses a record payload.
    pub fn from_json(payload: &[u8]) -> Result<Self, BusError> {
        serde_json::from_slice(payload)
            .map_err(|e| BusError::Invalid(format!("not a notification message: {e}")))
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> i64 {
    crate::now_ms() / 1000
}

fn unix_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        Int(i64),
        Float(f64),
    }
    match Num::deserialize(d)? {
        Num::Int(i) => Ok(i),
        // The range check keeps the cast exact and rejects NaN and infinities.
        Num::Float(f) if f.is_finite() && f.abs() < 9.0e15 => Ok(f.trunc() as i64),
        Num::Float(f) => Err(serde::de::Error::custom(format!(
            "timestamp {f} is not a Unix time in seconds"
        ))),
    }
}

/// Publishes `value` as a JSON record.
pub async fn publish_json<T: Serialize + ?Sized>(
    handler: &dyn StreamHandler,
    topic: &str,
    key: Option<&[u8]>,
    value: &T,
) -> Result<(), BusError> {
    let payload = serde_json::to_vec(value)
        .map_err(|e| BusError::Invalid(format!("cannot encode the message as JSON: {e}")))?;
    handler.publish(topic, key, &payload).await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{EmbeddedStreamHandler, StartAt, TELEMETRY_NOTIFICATIONS_TOPIC};

    const SPEC_EXAMPLE: &str = r#"{"entity_id": "ddced532-2c76-4557-9be1-2be622cbdcee", "status": "DOWN", "type": "Probe", "timestamp": 1654612649}"#;

    #[test]
    fn spec_example_roundtrips_exactly() {
        let m: TelemetryEntityStatus = serde_json::from_str(SPEC_EXAMPLE).unwrap();
        assert_eq!(
            m,
            TelemetryEntityStatus {
                entity_id: "ddced532-2c76-4557-9be1-2be622cbdcee".into(),
                status: EntityStatus::Down,
                entity_type: EntityType::Probe,
                timestamp: 1_654_612_649,
            }
        );
        let out = serde_json::to_string(&m).unwrap();
        // Same fields in the same order; only the whitespace of Python's json.dumps differs.
        assert_eq!(out, SPEC_EXAMPLE.replace(": ", ":").replace(", ", ","));
        let a: serde_json::Value = serde_json::from_str(&out).unwrap();
        let b: serde_json::Value = serde_json::from_str(SPEC_EXAMPLE).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            Notification::from_json(SPEC_EXAMPLE.as_bytes()).unwrap(),
            Notification::TelemetryEntity(m)
        );
    }

    #[test]
    fn other_shapes() {
        let up = TelemetryEntityStatus {
            entity_id: "a1".into(),
            status: EntityStatus::Up,
            entity_type: EntityType::Agent,
            timestamp: 5,
        };
        assert_eq!(
            serde_json::to_string(&up).unwrap(),
            r#"{"entity_id":"a1","status":"UP","type":"Agent","timestamp":5}"#
        );
        let g = GeneralInformation {
            message: "hello".into(),
            timestamp: 6,
        };
        assert_eq!(
            serde_json::to_string(&g).unwrap(),
            r#"{"message":"hello","timestamp":6}"#
        );
        let r = ResourceStatus {
            entity_id: "r1".into(),
            event: "anomaly".into(),
            timestamp: 7,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"entity_id":"r1","event":"anomaly","timestamp":7}"#
        );
        assert_eq!(
            Notification::from_json(br#"{"message":"hello","timestamp":6}"#).unwrap(),
            Notification::General(g)
        );
        assert_eq!(
            Notification::from_json(br#"{"entity_id":"r1","event":"anomaly","timestamp":7}"#)
                .unwrap(),
            Notification::Resource(r)
        );
        // Python's time.time() floats are read, truncated.
        let f: GeneralInformation =
            serde_json::from_str(r#"{"message":"m","timestamp":1654612649.75}"#).unwrap();
        assert_eq!(f.timestamp, 1_654_612_649);
        let now = TelemetryEntityStatus::now("p", EntityStatus::Up, EntityType::Probe);
        assert!(now.timestamp > 1_600_000_000);
    }

    #[test]
    fn bad_messages_are_errors() {
        for bad in [
            r#"{"entity_id":"x","status":"down","type":"Probe","timestamp":1}"#,
            r#"{"entity_id":"x","status":"UP","type":"probe","timestamp":1}"#,
            r#"{"entity_id":"x","status":"UP","type":"Probe"}"#,
            r#"{"entity_id":"x","status":"UP","type":"Probe","timestamp":"1"}"#,
            r#"{"entity_id":"x","status":"UP","type":"Probe","timestamp":1e300}"#,
        ] {
            assert!(
                serde_json::from_str::<TelemetryEntityStatus>(bad).is_err(),
                "{bad} should not parse"
            );
        }
        for bad in [&b"not json"[..], br#"{"timestamp":1}"#, br#"[]"#] {
            assert!(matches!(
                Notification::from_json(bad),
                Err(BusError::Invalid(_))
            ));
        }
    }

    #[tokio::test]
    async fn publish_json_writes_the_record() {
        let h = EmbeddedStreamHandler::open(None, 10).unwrap();
        let m: TelemetryEntityStatus = serde_json::from_str(SPEC_EXAMPLE).unwrap();
        publish_json(&h, TELEMETRY_NOTIFICATIONS_TOPIC, None, &m)
            .await
            .unwrap();
        let mut r = h
            .reader(TELEMETRY_NOTIFICATIONS_TOPIC, StartAt::Beginning)
            .await
            .unwrap();
        let rec = r.next(Duration::from_secs(1)).await.unwrap().unwrap();
        assert_eq!(rec.key, None);
        let back: TelemetryEntityStatus = serde_json::from_slice(&rec.payload).unwrap();
        assert_eq!(back, m);
        let err = publish_json(&h, "bad topic", None, &m).await.unwrap_err();
        assert!(matches!(err, BusError::Invalid(_)));
        // A map with non-string keys cannot be JSON.
        let mut weird = std::collections::HashMap::new();
        weird.insert((1, 2), 3);
        let err = publish_json(&h, "t", None, &weird).await.unwrap_err();
        assert!(matches!(err, BusError::Invalid(_)), "{err}");
    }
}

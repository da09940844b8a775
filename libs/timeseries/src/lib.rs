//! Time series for the telemetry framework (D6.7 4.4: PMDS keeps the collected history).
//!
//! - [`TimeSeriesStore`]: the backend trait: write points into a bucket, read them back by
//!   measurement, tag equality, fields and time range.
//! - `line_protocol`: Influx line protocol parsing and encoding (the write format of all backends).
//! - `embedded`: the default store, columnar compressed blocks with a write-ahead log.
//! - `victoria`: VictoriaMetrics (line protocol in, `/api/v1/export` out).
//! - `influx2`: the InfluxDB 2 API through the `influxdb2` crate (line protocol in, Flux out).
//! - `contract`: the one test suite every backend must pass.

use std::fmt;

use async_trait::async_trait;

/// A field value (Influx line protocol types).
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Float(f64),
    Int(i64),
    UInt(u64),
    Bool(bool),
    Str(String),
}

impl FieldValue {
    /// The value as a float (what PromQL backends store); strings have none.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            FieldValue::Float(v) => Some(*v),
            FieldValue::Int(v) => Some(*v as f64),
            FieldValue::UInt(v) => Some(*v as f64),
            FieldValue::Bool(v) => Some(if *v { 1.0 } else { 0.0 }),
            FieldValue::Str(_) => None,
        }
    }
}

/// One written point: a measurement, its tags, one or more fields and a time.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub measurement: String,
    /// Tag pairs sorted by key, keys unique.
    pub tags: Vec<(String, String)>,
    /// Field pairs, keys unique, at least one.
    pub fields: Vec<(String, FieldValue)>,
    /// Nanoseconds since the Unix epoch.
    pub time_ns: i64,
}

/// A read: one measurement of one bucket, tag equality, optional field list, `[start, stop)`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    pub bucket: String,
    pub measurement: String,
    /// Every pair must match (tag key, value).
    pub tags: Vec<(String, String)>,
    /// Fields to return; empty = all.
    pub fields: Vec<String>,
    /// Inclusive start, nanoseconds.
    pub start_ns: i64,
    /// Exclusive stop, nanoseconds.
    pub stop_ns: i64,
    /// At most this many rows (rows past the limit are cut after sorting), `None` = all.
    pub limit: Option<usize>,
}

/// One stored sample as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub measurement: String,
    /// Sorted by key.
    pub tags: Vec<(String, String)>,
    pub field: String,
    pub value: FieldValue,
    pub time_ns: i64,
}

/// Timestamp precision of a line-protocol body (`precision=` of `/api/v2/write`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
}

impl Precision {
    /// Parses the Influx names `ns`, `us`, `ms`, `s`.
    pub fn parse(s: &str) -> Option<Precision> {
        match s {
            "ns" | "n" => Some(Precision::Nanoseconds),
            "us" | "u" => Some(Precision::Microseconds),
            "ms" => Some(Precision::Milliseconds),
            "s" => Some(Precision::Seconds),
            _ => None,
        }
    }

    /// Nanoseconds per unit.
    pub fn nanos(self) -> i64 {
        match self {
            Precision::Nanoseconds => 1,
            Precision::Microseconds => 1_000,
            Precision::Milliseconds => 1_000_000,
            Precision::Seconds => 1_000_000_000,
        }
    }
}

/// What a line-protocol write stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteSummary {
    pub lines: u64,
    /// Field values stored (one per field of every line).
    pub samples: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum TsError {
    /// Malformed input (line protocol, query); maps to HTTP 400.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The backend refused or is unreachable; maps to HTTP 503.
    #[error("time-series backend unavailable: {0}")]
    Unavailable(String),
    /// The backend cannot do this (e.g. string fields on a PromQL store); maps to HTTP 501/400.
    #[error("not supported by this backend: {0}")]
    Unsupported(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// What a backend can store; the contract suite skips what a backend lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// String and bool fields come back as written (PromQL stores keep floats only).
    pub typed_fields: bool,
    /// Smallest time step kept (1 = nanoseconds; VictoriaMetrics keeps milliseconds).
    pub time_resolution_ns: i64,
}

/// A time-series backend.
#[async_trait]
pub trait TimeSeriesStore: Send + Sync + 'static {
    /// Stores points into `bucket` (created on first use).
    async fn write(&self, bucket: &str, points: &[Point]) -> Result<(), TsError>;

    /// Stores a line-protocol body; a malformed line rejects the whole body (nothing stored).
    async fn write_line_protocol(
        &self,
        bucket: &str,
        body: &[u8],
        precision: Precision,
    ) -> Result<WriteSummary, TsError> {
        let points = line_protocol::parse(body, precision, now_ns())?;
        let summary = WriteSummary {
            lines: points.len() as u64,
            samples: points.iter().map(|p| p.fields.len() as u64).sum(),
        };
        self.write(bucket, &points).await?;
        Ok(summary)
    }

    /// Rows matching `query`, sorted by (tags, field, time).
    async fn query(&self, query: &Query) -> Result<Vec<Row>, TsError>;

    /// Makes every returned write durable and visible to `query`.
    async fn flush(&self) -> Result<(), TsError>;

    fn capabilities(&self) -> Capabilities;

    /// A short name for logs and `/ready` (`embedded`, `victoriametrics`, `influxdb2`).
    fn kind(&self) -> &'static str;
}

impl fmt::Debug for dyn TimeSeriesStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimeSeriesStore({})", self.kind())
    }
}

/// Now, nanoseconds since the Unix epoch (the default time of a line without one).
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

pub mod line_protocol;

#[cfg(any(test, feature = "contract-suite"))]
pub mod contract;
pub mod embedded;
pub use embedded::{EmbeddedOptions, EmbeddedStats, EmbeddedTsdb, SyncMode};

pub mod config;
pub mod influx2;
pub mod victoria;

pub use config::{TimeSeriesConfig, open_timeseries};
pub use influx2::InfluxDb2;
pub use victoria::VictoriaMetrics;

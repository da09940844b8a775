//! Choosing a time-series backend from configuration (D6.7 4.4: PMDS history on the embedded
//! store, VictoriaMetrics or InfluxDB 2).
//!
//! In TOML (a service's `[timeseries]` table):
//!
//! ```toml
//! [timeseries]
//! type = "embedded"            # the default; no `path` = in memory, lost on restart
//! path = "serrano-data/pmds"
//! retention_days = 3650
//!
//! # or
//! type = "victoriametrics"
//! url = "http://127.0.0.1:8428"
//!
//! # or
//! type = "influxdb2"
//! url = "http://127.0.0.1:8086"
//! org = "serrano"
//! token = "..."
//! ```
//!
//! Unset options are left out of the serialised default, so a file that switches `type` merges
//! into the defaults without leftover keys of the other variant; unknown keys are refused.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{TimeSeriesStore, TsError};

/// Which backend keeps the time series, and how to reach it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum TimeSeriesConfig {
    /// The embedded store: in `path`, or in memory without one.
    Embedded {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<PathBuf>,
        /// Samples older than this many days are dropped; `None` keeps everything.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retention_days: Option<u64>,
    },
    /// A VictoriaMetrics single-node server (`http://host:8428`).
    Victoriametrics { url: String },
    /// An InfluxDB 2 server: its URL, organisation and API token.
    Influxdb2 {
        url: String,
        org: String,
        /// API token (never logged: `Debug` hides it).
        token: String,
    },
}

impl Default for TimeSeriesConfig {
    fn default() -> Self {
        TimeSeriesConfig::Embedded {
            path: None,
            retention_days: None,
        }
    }
}

impl fmt::Debug for TimeSeriesConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeSeriesConfig::Embedded {
                path,
                retention_days,
            } => f
                .debug_struct("Embedded")
                .field("path", path)
                .field("retention_days", retention_days)
                .finish(),
            TimeSeriesConfig::Victoriametrics { url } => {
                f.debug_struct("Victoriametrics").field("url", url).finish()
            }
            TimeSeriesConfig::Influxdb2 { url, org, .. } => f
                .debug_struct("Influxdb2")
                .field("url", url)
                .field("org", org)
                .field("token", &"***")
                .finish(),
        }
    }
}

impl TimeSeriesConfig {
    /// The backend's short name, as [`TimeSeriesStore::kind`] answers it.
    pub fn kind(&self) -> &'static str {
        match self {
            TimeSeriesConfig::Embedded { .. } => "embedded",
            TimeSeriesConfig::Victoriametrics { .. } => "victoriametrics",
            TimeSeriesConfig::Influxdb2 { .. } => "influxdb2",
        }
    }
}

/// Opens the configured backend. Remote backends connect lazily: opening succeeds while the
/// server is down (calls then fail with [`TsError::Unavailable`]); a malformed URL is
/// [`TsError::Invalid`].
pub async fn open_timeseries(cfg: &TimeSeriesConfig) -> Result<Arc<dyn TimeSeriesStore>, TsError> {
    match cfg {
        TimeSeriesConfig::Embedded {
            path,
            retention_days,
        } => open_embedded(path.clone(), *retention_days).await,
        TimeSeriesConfig::Victoriametrics { url } => {
            Ok(Arc::new(crate::victoria::VictoriaMetrics::new(url)?))
        }
        TimeSeriesConfig::Influxdb2 { url, org, token } => {
            Ok(Arc::new(crate::influx2::InfluxDb2::new(url, org, token)?))
        }
    }
}

async fn open_embedded(
    path: Option<PathBuf>,
    retention_days: Option<u64>,
) -> Result<Arc<dyn TimeSeriesStore>, TsError> {
    let options = crate::embedded::EmbeddedOptions {
        dir: path,
        retention: retention_days
            .map(|days| std::time::Duration::from_secs(days.saturating_mul(86_400))),
        ..crate::embedded::EmbeddedOptions::default()
    };
    // Opening replays the write-ahead log: blocking file I/O off the async workers.
    let store = tokio::task::spawn_blocking(move || crate::embedded::EmbeddedTsdb::open(options))
        .await
        .map_err(|err| {
            TsError::Unavailable(format!("opening the embedded store failed: {err}"))
        })??;
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_embedded_in_memory_and_serialises_without_options() {
        let cfg = TimeSeriesConfig::default();
        assert_eq!(cfg.kind(), "embedded");
        assert_eq!(
            serde_json::to_value(&cfg).unwrap(),
            serde_json::json!({"type": "embedded"})
        );
    }

    #[test]
    fn variants_parse_and_refuse_unknown_keys() {
        let vm: TimeSeriesConfig =
            serde_json::from_str(r#"{"type":"victoriametrics","url":"http://x:8428"}"#).unwrap();
        assert_eq!(
            vm,
            TimeSeriesConfig::Victoriametrics {
                url: "http://x:8428".into()
            }
        );
        let embedded: TimeSeriesConfig =
            serde_json::from_str(r#"{"type":"embedded","path":"/d","retention_days":7}"#).unwrap();
        assert_eq!(
            embedded,
            TimeSeriesConfig::Embedded {
                path: Some("/d".into()),
                retention_days: Some(7)
            }
        );
        let err = serde_json::from_str::<TimeSeriesConfig>(
            r#"{"type":"victoriametrics","url":"u","path":"/d"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `path`"), "{err}");
        assert!(serde_json::from_str::<TimeSeriesConfig>(r#"{"type":"mongo"}"#).is_err());
        assert!(
            serde_json::from_str::<TimeSeriesConfig>(r#"{"type":"influxdb2","url":"u"}"#).is_err()
        );
    }

    #[test]
    fn debug_hides_the_token() {
        let cfg = TimeSeriesConfig::Influxdb2 {
            url: "http://x".into(),
            org: "o".into(),
            token: "s3cret".into(),
        };
        let text = format!("{cfg:?}");
        assert!(!text.contains("s3cret") && text.contains("***"), "{text}");
    }

    #[tokio::test]
    async fn embedded_opens_in_memory_and_in_a_directory() {
        let memory = open_timeseries(&TimeSeriesConfig::default()).await.unwrap();
        assert_eq!(memory.kind(), "embedded");
        let dir = tempfile::tempdir().unwrap();
        let cfg = TimeSeriesConfig::Embedded {
            path: Some(dir.path().join("tsdb")),
            retention_days: Some(30),
        };
        let on_disk = open_timeseries(&cfg).await.unwrap();
        assert_eq!(on_disk.kind(), "embedded");
        assert!(dir.path().join("tsdb").exists());
    }

    #[tokio::test]
    async fn remote_backends_open_lazily_and_check_urls() {
        let vm = open_timeseries(&TimeSeriesConfig::Victoriametrics {
            url: "http://127.0.0.1:9".into(),
        })
        .await
        .unwrap();
        assert_eq!(vm.kind(), "victoriametrics");
        let influx = open_timeseries(&TimeSeriesConfig::Influxdb2 {
            url: "http://127.0.0.1:9".into(),
            org: "o".into(),
            token: "t".into(),
        })
        .await
        .unwrap();
        assert_eq!(influx.kind(), "influxdb2");
        let bad = open_timeseries(&TimeSeriesConfig::Victoriametrics {
            url: "::nope".into(),
        })
        .await;
        assert!(matches!(bad, Err(TsError::Invalid(_))));
    }
}

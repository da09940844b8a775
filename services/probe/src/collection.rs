//! Collection settings (D6.7 4.4.3.2 "Configuration of ... monitoring probes":
//! `POST /api/v1/telemetry/probe {"query_interval": 60}`) and the background collection they
//! drive.
//!
//! - `query_interval` (seconds): how often the probe reads its source on its own. The Enhanced
//!   Telemetry Agent polls `GET /monitor` at its own pace; the probe's own reading keeps its
//!   `/ready` answer and its `probe_source_*` metrics current, so a source that fails is seen
//!   (and logged once) even when nobody polls.
//! - `query_timeout` (seconds, fractions allowed): the limit of every call to the source.
//! - `active_monitoring`: whether the background reading runs at all.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use utoipa::ToSchema;

use crate::source::{Source, Target};

/// Limits of the settings.
pub const QUERY_INTERVAL_RANGE: (u64, u64) = (1, 86_400);
pub const QUERY_TIMEOUT_RANGE: (f64, f64) = (0.1, 300.0);

/// The probe's collection settings, as `GET`/`POST /collection` show them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CollectionSettings {
    /// Seconds between two background readings of the source (1 to 86400).
    pub query_interval: u64,
    /// Seconds a call to the source may take (0.1 to 300).
    pub query_timeout: f64,
    /// Whether the background reading runs.
    pub active_monitoring: bool,
}

impl Default for CollectionSettings {
    fn default() -> Self {
        Self {
            query_interval: 60,
            query_timeout: 5.0,
            active_monitoring: true,
        }
    }
}

/// A change of the settings: every member optional, unknown members rejected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionUpdate {
    pub query_interval: Option<u64>,
    pub query_timeout: Option<f64>,
    pub active_monitoring: Option<bool>,
}

impl CollectionSettings {
    pub fn validate(&self) -> Result<(), String> {
        let (min, max) = QUERY_INTERVAL_RANGE;
        if !(min..=max).contains(&self.query_interval) {
            return Err(format!("query_interval: {min} to {max} seconds"));
        }
        let (min, max) = QUERY_TIMEOUT_RANGE;
        if !(self.query_timeout.is_finite() && (min..=max).contains(&self.query_timeout)) {
            return Err(format!("query_timeout: {min} to {max} seconds"));
        }
        Ok(())
    }

    /// These settings with `update` applied, validated.
    pub fn apply(&self, update: CollectionUpdate) -> Result<Self, String> {
        if update == CollectionUpdate::default() {
            return Err(
                "nothing to change: give query_interval, query_timeout or active_monitoring"
                    .to_owned(),
            );
        }
        let next = Self {
            query_interval: update.query_interval.unwrap_or(self.query_interval),
            query_timeout: update.query_timeout.unwrap_or(self.query_timeout),
            active_monitoring: update.active_monitoring.unwrap_or(self.active_monitoring),
        };
        next.validate()?;
        Ok(next)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.query_timeout)
    }
}

/// What the background reading has seen, for `/ready` and `/metrics`.
#[derive(Debug, Default)]
pub struct CollectionStats {
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
    /// Unix seconds of the last successful reading (0: none yet).
    pub last_success: AtomicU64,
    /// Microseconds the last reading took.
    pub last_duration_us: AtomicU64,
    /// The last reading's error; `None` after a success.
    pub last_error: Mutex<Option<String>>,
}

impl CollectionStats {
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    fn record(&self, outcome: Result<(), String>, took: Duration) {
        self.last_duration_us.store(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        let previous = self.last_error();
        match outcome {
            Ok(()) => {
                self.succeeded.fetch_add(1, Ordering::Relaxed);
                self.last_success.store(
                    u64::try_from(crate::unix_now()).unwrap_or(0),
                    Ordering::Relaxed,
                );
                if previous.is_some() {
                    tracing::info!("source answers again");
                }
                if let Ok(mut slot) = self.last_error.lock() {
                    *slot = None;
                }
            }
            Err(reason) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                // Logged on the change only: a source down for hours must not flood the log.
                if previous.as_deref() != Some(reason.as_str()) {
                    tracing::warn!(error = %reason, "source reading failed");
                }
                if let Ok(mut slot) = self.last_error.lock() {
                    *slot = Some(reason);
                }
            }
        }
    }
}

/// Reads the source every `query_interval` while `active_monitoring` holds, until `stop` turns
/// true; a change of the settings takes effect at once.
pub async fn run(
    source: Arc<dyn Source>,
    mut settings: watch::Receiver<CollectionSettings>,
    stats: Arc<CollectionStats>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let current = *settings.borrow_and_update();
        if current.active_monitoring {
            let started = Instant::now();
            let outcome = source
                .monitor(current.timeout(), Target::All)
                .await
                .map(|_| ())
                .map_err(|err| err.to_string());
            stats.record(outcome, started.elapsed());
        }
        let pause = if current.active_monitoring {
            Duration::from_secs(current.query_interval)
        } else {
            // Inactive: sleep until the settings change or the probe stops.
            Duration::from_secs(86_400)
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            changed = settings.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn updates_are_partial_and_validated() {
        let settings = CollectionSettings::default();
        let next = settings
            .apply(CollectionUpdate {
                query_interval: Some(30),
                ..CollectionUpdate::default()
            })
            .unwrap();
        assert_eq!(next.query_interval, 30);
        assert_eq!(next.query_timeout, 5.0);
        assert!(next.active_monitoring);
        for (update, needle) in [
            (
                CollectionUpdate {
                    query_interval: Some(0),
                    ..CollectionUpdate::default()
                },
                "query_interval",
            ),
            (
                CollectionUpdate {
                    query_timeout: Some(0.01),
                    ..CollectionUpdate::default()
                },
                "query_timeout",
            ),
            (
                CollectionUpdate {
                    query_timeout: Some(f64::NAN),
                    ..CollectionUpdate::default()
                },
                "query_timeout",
            ),
            (CollectionUpdate::default(), "nothing to change"),
        ] {
            assert!(settings.apply(update).unwrap_err().contains(needle));
        }
        assert_eq!(
            settings
                .apply(CollectionUpdate {
                    query_timeout: Some(0.5),
                    ..CollectionUpdate::default()
                })
                .unwrap()
                .timeout(),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn stats_keep_the_last_error_until_a_success() {
        let stats = CollectionStats::default();
        stats.record(Err("down".to_owned()), Duration::from_millis(3));
        assert_eq!(stats.last_error().as_deref(), Some("down"));
        assert_eq!(stats.failed.load(Ordering::Relaxed), 1);
        assert_eq!(stats.last_duration_us.load(Ordering::Relaxed), 3000);
        stats.record(Ok(()), Duration::from_millis(1));
        assert_eq!(stats.last_error(), None);
        assert!(stats.last_success.load(Ordering::Relaxed) > 0);
    }
}

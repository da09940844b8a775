//! SERRANO-accelerated kernel telemetry (D6.7 4.4.3.2 "Automatic monitoring of SERRANO
//! accelerated kernels"): the KernelMetrics records the orchestration drivers post, and the
//! per-cluster counters of kernel deployments.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::is_id;

/// Most records one `POST /kernel_metrics` may carry (more answers 413).
pub const MAX_LOGS: usize = 1000;
/// Largest counter change one `PUT /serrano_kernel_deployments` may ask for.
pub const MAX_COUNTER_DIFF: i64 = 1_000_000;

/// One kernel execution's metrics, as the drivers post them (D6.7 4.4.3.2 example).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KernelMetrics {
    /// The kernel request's uuid (`request_uuid` of `GET /kernel_metrics`).
    pub uuid: String,
    /// Always "KernelMetrics".
    pub kind: String,
    /// "FaaS" or "Standalone".
    pub deployment_mode: String,
    pub cluster_uuid: String,
    pub kernel_name: String,
    #[serde(rename = "input_total_size_MB")]
    pub input_total_size_mb: f64,
    /// Unix seconds.
    pub deployed_at: i64,
    /// Unix seconds.
    pub completed_at: i64,
    /// The accelerator: cpu, gpu, fpga, opencl...
    pub kernel_mode: String,
    /// Phase durations in milliseconds (`load_vaccel_libs_ms`, ..., `total_ms`).
    pub metrics: BTreeMap<String, f64>,
    /// The request's status integer (absent in some of the original's records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i64>,
}

/// Deployment modes of kernels (D6.7 4.2.3.2.4).
pub const DEPLOYMENT_MODES: [&str; 2] = ["FaaS", "Standalone"];

/// The canonical spelling of a deployment mode, case ignored.
pub fn deployment_mode(value: &str) -> Option<&'static str> {
    DEPLOYMENT_MODES
        .iter()
        .copied()
        .find(|m| m.eq_ignore_ascii_case(value))
}

/// Whether `value` can name a kernel mode: a lowercase identifier of at most 32 characters that is
/// not one of the counter document's own fields. It becomes a field name of the counter
/// document, so operators (`$inc`), paths (`a.b`) and the key fields are refused.
pub fn is_kernel_mode(value: &str) -> bool {
    let mut bytes = value.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && value.len() <= 32
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !matches!(value, "deployment_mode" | "cluster_uuid" | "timestamp")
}

impl KernelMetrics {
    /// Checks one record; the error says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !is_id(&self.uuid) {
            return Err(format!("invalid uuid {:?}", self.uuid));
        }
        if self.kind != "KernelMetrics" {
            return Err(format!(
                "kind must be \"KernelMetrics\", got {:?}",
                self.kind
            ));
        }
        if deployment_mode(&self.deployment_mode).is_none() {
            return Err(format!(
                "deployment_mode must be FaaS or Standalone, got {:?}",
                self.deployment_mode
            ));
        }
        if !is_id(&self.cluster_uuid) {
            return Err(format!("invalid cluster_uuid {:?}", self.cluster_uuid));
        }
        if self.kernel_name.is_empty() || self.kernel_name.len() > 128 {
            return Err("kernel_name must have 1 to 128 characters".to_owned());
        }
        if !is_kernel_mode(&self.kernel_mode) {
            return Err(format!("invalid kernel_mode {:?}", self.kernel_mode));
        }
        if !self.input_total_size_mb.is_finite() || self.input_total_size_mb < 0.0 {
            return Err("input_total_size_MB must be a non-negative number".to_owned());
        }
        if self.deployed_at < 0 || self.completed_at < self.deployed_at {
            return Err(
                "completed_at must not be before deployed_at (both Unix seconds)".to_owned(),
            );
        }
        if self.metrics.len() > 64 {
            return Err("metrics has more than 64 entries".to_owned());
        }
        for (name, value) in &self.metrics {
            if !is_kernel_mode(name) && name != "timestamp" {
                return Err(format!("invalid metric name {name:?}"));
            }
            if !value.is_finite() || *value < 0.0 {
                return Err(format!(
                    "metric {name} must be a non-negative number of milliseconds"
                ));
            }
        }
        Ok(())
    }
}

/// `PUT /serrano_kernel_deployments` body: change one kernel-mode counter of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KernelDeploymentUpdate {
    /// "FaaS" or "Standalone".
    pub deployment_mode: String,
    pub cluster_uuid: String,
    /// Added to the counter; the counter never goes below 0.
    pub counter_diff: i64,
    /// The counter's field: cpu, gpu, fpga, opencl...
    pub kernel_mode: String,
}

impl KernelDeploymentUpdate {
    /// Checks the update and returns the canonical deployment mode.
    pub fn validate(&self) -> Result<&'static str, String> {
        let mode = deployment_mode(&self.deployment_mode).ok_or_else(|| {
            format!(
                "deployment_mode must be FaaS or Standalone, got {:?}",
                self.deployment_mode
            )
        })?;
        if !is_id(&self.cluster_uuid) {
            return Err(format!("invalid cluster_uuid {:?}", self.cluster_uuid));
        }
        if !is_kernel_mode(&self.kernel_mode) {
            return Err(format!(
                "invalid kernel_mode {:?}: expected a lowercase identifier such as cpu, gpu, fpga or opencl",
                self.kernel_mode
            ));
        }
        if self.counter_diff.unsigned_abs() > MAX_COUNTER_DIFF.unsigned_abs() {
            return Err(format!(
                "counter_diff must be within -{MAX_COUNTER_DIFF}..={MAX_COUNTER_DIFF}"
            ));
        }
        Ok(mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> serde_json::Value {
        serde_json::json!({"uuid":"35923a24-8ee1-4fdd-ad12-82ce97b9fcbf","kind":"KernelMetrics",
            "deployment_mode":"FaaS","cluster_uuid":"5a075716-7d7d-4b40-9566-bc1a33ee70c2",
            "kernel_name":"knn","input_total_size_MB":66.15,"deployed_at":1701423250,
            "completed_at":1701423285,"kernel_mode":"gpu","metrics":{"load_vaccel_libs_ms":1074,
            "load_model_libs_ms":21999,"read_input_from_backend_ms":3229,"parse_model_ms":4134,
            "parse_input_ms":37,"setup_vaccel_args_ms":1,"run_kernel_ms":1237,
            "push_output_to_backend_ms":323,"total_ms":33387},"status":1})
    }

    #[test]
    fn the_d67_record_is_valid_and_round_trips() {
        let parsed: KernelMetrics = serde_json::from_value(record()).unwrap();
        parsed.validate().unwrap();
        let back = serde_json::to_value(&parsed).unwrap();
        assert_eq!(back["input_total_size_MB"], 66.15);
        assert_eq!(back["metrics"]["total_ms"], 33387.0);
        assert_eq!(back["status"], 1);
    }

    #[test]
    fn bad_records_are_refused() {
        let with = |field: &str, value: serde_json::Value| {
            let mut r = record();
            r[field] = value;
            serde_json::from_value::<KernelMetrics>(r).unwrap()
        };
        assert!(with("kind", "Other".into()).validate().is_err());
        assert!(with("kernel_mode", "$inc".into()).validate().is_err());
        assert!(with("deployment_mode", "batch".into()).validate().is_err());
        assert!(with("completed_at", 1.into()).validate().is_err());
        assert!(
            with("metrics", serde_json::json!({"total_ms": -1}))
                .validate()
                .is_err()
        );
        let mut extra = record();
        extra["surprise"] = 1.into();
        assert!(serde_json::from_value::<KernelMetrics>(extra).is_err());
    }

    #[test]
    fn kernel_modes_are_identifiers_not_operators() {
        for ok in ["cpu", "gpu", "fpga", "opencl", "gpu_2"] {
            assert!(is_kernel_mode(ok), "{ok}");
        }
        for bad in [
            "",
            "$inc",
            "a.b",
            "GPU",
            "1gpu",
            "cluster_uuid",
            "deployment_mode",
        ] {
            assert!(!is_kernel_mode(bad), "{bad}");
        }
        let update = KernelDeploymentUpdate {
            deployment_mode: "faas".into(),
            cluster_uuid: "c".into(),
            counter_diff: -1,
            kernel_mode: "gpu".into(),
        };
        assert_eq!(update.validate(), Ok("FaaS"));
        let too_big = KernelDeploymentUpdate {
            counter_diff: i64::MIN,
            ..update
        };
        assert!(too_big.validate().is_err());
    }
}

//! SERRANO-accelerated kernels (D6.7 4.4.3.2 "Automatic monitoring of SERRANO accelerated
//! kernels", Figure 26 `kernel_metrics`): the per-cluster deployment counters and the
//! KernelMetrics records the orchestration drivers post.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use serrano_docstore::{Filter, FindOptions};
use serrano_service::{ApiError, ApiJson, ApiQuery};
use utoipa::{IntoParams, ToSchema};

use super::{AppState, ErrorBody};
use crate::kernels::{KernelDeploymentUpdate, KernelMetrics, MAX_LOGS, deployment_mode};
use crate::store::{SERRANO_KERNEL_DEPLOYMENTS, SERRANO_KERNEL_METRICS, check_id, doc_error};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct KernelDeploymentsQuery {
    /// FaaS or Standalone.
    deployment_mode: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KernelDeployments {
    /// `{deployment_mode, cluster_uuid, <kernel_mode>: counter...}` documents.
    #[schema(value_type = Vec<Object>)]
    pub kernel_deployments: Vec<Value>,
}

/// The kernel deployment counters, optionally of one deployment mode.
#[utoipa::path(get, path = "/api/v1/telemetry/central/serrano_kernel_deployments", tag = "Kernels",
    params(KernelDeploymentsQuery),
    responses((status = 200, body = KernelDeployments), (status = 400, body = ErrorBody)))]
pub async fn list_kernel_deployments(
    State(cth): State<AppState>,
    ApiQuery(query): ApiQuery<KernelDeploymentsQuery>,
) -> Result<Response, ApiError> {
    let filter = match query.deployment_mode.as_deref() {
        None => Filter::all(),
        Some(mode) => Filter::all().eq(
            "deployment_mode",
            deployment_mode(mode).ok_or_else(|| {
                ApiError::validation(format!(
                    "deployment_mode must be FaaS or Standalone, got {mode:?}"
                ))
            })?,
        ),
    };
    let kernel_deployments = cth
        .docs
        .find(SERRANO_KERNEL_DEPLOYMENTS, &filter, &FindOptions::default())
        .await
        .map_err(doc_error)?;
    Ok(ApiJson(KernelDeployments { kernel_deployments }).into_response())
}

/// Atomically add `counter_diff` to the `<kernel_mode>` counter of a cluster's deployment mode
/// (created at 0; never below 0); answers the counter document.
#[utoipa::path(put, path = "/api/v1/telemetry/central/serrano_kernel_deployments", tag = "Kernels",
    request_body = KernelDeploymentUpdate,
    responses((status = 200, description = "`{deployment_mode, cluster_uuid, <kernel_mode>: counter...}`", body = Object),
        (status = 400, body = ErrorBody)))]
pub async fn update_kernel_deployment(
    State(cth): State<AppState>,
    ApiJson(update): ApiJson<KernelDeploymentUpdate>,
) -> Result<Response, ApiError> {
    let mode = update.validate().map_err(ApiError::validation)?;
    let filter = Filter::all()
        .eq("deployment_mode", mode)
        .eq("cluster_uuid", update.cluster_uuid.as_str());
    let base = json!({"deployment_mode": mode, "cluster_uuid": update.cluster_uuid});
    let doc = cth
        .docs
        .increment(
            SERRANO_KERNEL_DEPLOYMENTS,
            &filter,
            base,
            &update.kernel_mode,
            update.counter_diff,
            0,
        )
        .await
        .map_err(doc_error)?;
    Ok(ApiJson(doc).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct KernelMetricsQuery {
    /// The kernel request's uuid (the record's `uuid`).
    request_uuid: Option<String>,
    cluster_uuid: Option<String>,
    kernel_name: Option<String>,
    kernel_mode: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KernelMetricsList {
    pub metrics: Vec<KernelMetrics>,
}

/// Get monitoring data for SERRANO-accelerated kernel executions (also at `/kernels_metrics`,
/// the spelling of the D6.7 example), in the order they were posted.
#[utoipa::path(get, path = "/api/v1/telemetry/central/kernel_metrics", tag = "Kernels",
    params(KernelMetricsQuery),
    responses((status = 200, body = KernelMetricsList), (status = 400, body = ErrorBody)))]
pub async fn list_kernel_metrics(
    State(cth): State<AppState>,
    ApiQuery(query): ApiQuery<KernelMetricsQuery>,
) -> Result<Response, ApiError> {
    let mut filter = Filter::all();
    for (field, value) in [
        ("uuid", &query.request_uuid),
        ("cluster_uuid", &query.cluster_uuid),
        ("kernel_name", &query.kernel_name),
        ("kernel_mode", &query.kernel_mode),
    ] {
        if let Some(value) = value {
            if value.len() > 128 {
                return Err(ApiError::validation(format!(
                    "{field} is longer than 128 characters"
                )));
            }
            filter = filter.eq(field, value.as_str());
        }
    }
    if let Some(cluster) = &query.cluster_uuid {
        check_id("cluster_uuid", cluster)?;
    }
    let metrics = cth
        .docs
        .find(SERRANO_KERNEL_METRICS, &filter, &FindOptions::default())
        .await
        .map_err(doc_error)?;
    Ok(ApiJson(json!({ "metrics": metrics })).into_response())
}

/// `POST /kernel_metrics` body.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KernelMetricsLogs {
    /// At most 1000 records. Each is checked as a [`KernelMetrics`] and stored as sent (so
    /// integer durations stay integers).
    #[schema(value_type = Vec<KernelMetrics>)]
    pub logs: Vec<Value>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Stored {
    /// Records stored.
    pub stored: usize,
}

/// Record kernel executions' metrics (the orchestration drivers post them after each run).
#[utoipa::path(post, path = "/api/v1/telemetry/central/kernel_metrics", tag = "Kernels",
    request_body = KernelMetricsLogs,
    responses((status = 201, body = Stored), (status = 400, body = ErrorBody),
        (status = 413, description = "more than 1000 records", body = ErrorBody)))]
pub async fn add_kernel_metrics(
    State(cth): State<AppState>,
    ApiJson(body): ApiJson<KernelMetricsLogs>,
) -> Result<Response, ApiError> {
    if body.logs.len() > MAX_LOGS {
        return Err(ApiError::payload_too_large(format!(
            "{} records in one request, at most {MAX_LOGS} are accepted",
            body.logs.len()
        )));
    }
    if body.logs.is_empty() {
        return Err(ApiError::validation("logs is empty"));
    }
    for (index, log) in body.logs.iter().enumerate() {
        let record: KernelMetrics = serde_json::from_value(log.clone())
            .map_err(|err| ApiError::validation(format!("logs[{index}]: {err}")))?;
        record
            .validate()
            .map_err(|reason| ApiError::validation(format!("logs[{index}]: {reason}")))?;
    }
    let docs = body.logs;
    let stored = docs.len();
    cth.docs
        .insert_many(SERRANO_KERNEL_METRICS, docs)
        .await
        .map_err(doc_error)?;
    Ok((StatusCode::CREATED, ApiJson(Stored { stored })).into_response())
}

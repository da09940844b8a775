//! Recorded metrics of a deployment: the users' application-specific metrics (pushed through the
//! agents' sidecar route) and the per-pod history the agents keep for `retain_data_period`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serrano_docstore::{Filter, FindOptions};
use serrano_service::{ApiError, ApiJson, ApiPath, ApiQuery};
use utoipa::{IntoParams, ToSchema};

use super::{AppState, ErrorBody};
use crate::store::{CLUSTER_DEPLOYMENT_METRICS, DEPLOYMENTS_SPECIFIC_METRICS, check_id, doc_error};

/// Most documents one history query returns.
pub const MAX_HISTORY: usize = 100_000;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SpecificMetricsQuery {
    cluster_uuid: Option<String>,
    /// The user's service id inside the deployment.
    service_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SpecificMetrics {
    /// `{cluster_uuid, service_id, metrics: {..}, timestamp}` documents, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub specific_metrics: Vec<Value>,
}

/// The application-specific metrics users pushed for a deployment.
#[utoipa::path(get, path = "/api/v1/telemetry/central/deployment_specific_metrics/{deployment}",
    tag = "Deployments",
    params(("deployment" = String, Path, description = "deployment uuid"), SpecificMetricsQuery),
    responses((status = 200, body = SpecificMetrics), (status = 400, body = ErrorBody)))]
pub async fn specific_metrics(
    State(cth): State<AppState>,
    ApiPath(deployment): ApiPath<String>,
    ApiQuery(query): ApiQuery<SpecificMetricsQuery>,
) -> Result<Response, ApiError> {
    check_id("deployment uuid", &deployment)?;
    let mut filter = Filter::all().eq("deployment_uuid", deployment.as_str());
    if let Some(cluster) = &query.cluster_uuid {
        check_id("cluster_uuid", cluster)?;
        filter = filter.eq("cluster_uuid", cluster.as_str());
    }
    if let Some(service) = &query.service_id {
        check_id("service_id", service)?;
        filter = filter.eq("service_id", service.as_str());
    }
    let docs = cth
        .docs
        .find(
            DEPLOYMENTS_SPECIFIC_METRICS,
            &filter,
            &FindOptions {
                sort_by: Some("timestamp".to_owned()),
                descending: false,
                limit: Some(MAX_HISTORY),
            },
        )
        .await
        .map_err(doc_error)?;
    // The deployment is in the path; the original left it out of each entry too.
    let specific_metrics = docs
        .into_iter()
        .map(|mut doc| {
            if let Some(map) = doc.as_object_mut() {
                map.remove("deployment_uuid");
            }
            doc
        })
        .collect();
    Ok(ApiJson(SpecificMetrics { specific_metrics }).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Only documents recorded at or after this time (Unix seconds).
    start: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeploymentHistory {
    /// Every `cluster_deployment_metrics` document of the deployment in the window, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub metrics: Vec<Value>,
}

/// The per-pod metrics history of a deployment that the operational DB still holds (the
/// original's route called a missing method).
#[utoipa::path(get, path = "/api/v1/telemetry/central/deployment_metrics/{deployment}",
    tag = "Deployments",
    params(("deployment" = String, Path, description = "deployment uuid"), HistoryQuery),
    responses((status = 200, body = DeploymentHistory), (status = 400, body = ErrorBody)))]
pub async fn deployment_metrics(
    State(cth): State<AppState>,
    ApiPath(deployment): ApiPath<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Response, ApiError> {
    check_id("deployment uuid", &deployment)?;
    let mut filter = Filter::all().eq("deployment_uuid", deployment.as_str());
    if let Some(start) = query.start {
        if start < 0 {
            return Err(ApiError::validation(
                "start must be Unix seconds, not negative",
            ));
        }
        #[allow(clippy::cast_precision_loss)]
        let start = start as f64;
        filter = filter.gte("timestamp", start);
    }
    let metrics = cth
        .docs
        .find(
            CLUSTER_DEPLOYMENT_METRICS,
            &filter,
            &FindOptions {
                sort_by: Some("timestamp".to_owned()),
                descending: false,
                limit: Some(MAX_HISTORY),
            },
        )
        .await
        .map_err(doc_error)?;
    Ok(ApiJson(DeploymentHistory { metrics }).into_response())
}

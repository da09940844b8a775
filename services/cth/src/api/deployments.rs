//! Application deployments under monitoring (D6.7 4.4.3.2 "Automatic monitoring of deployed
//! applications"): the RO registers a deployment, the handler tells each cluster's agent which
//! Kubernetes deployments to watch, and serves the per-pod metrics the agents record.
//!
//! Registration is all or nothing: every cluster must be known and every agent must accept its
//! part, else the agents that did accept are told to forget it again, nothing is stored, and the
//! RO gets the failure (404 unknown cluster, 503/504/502 agent) and can retry. Removal keeps the
//! deployment while an agent cannot be told (so a retry reaches it); an agent that no longer
//! knows the deployment, or a cluster that is gone, counts as done.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::future::join_all;
use http::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use serrano_docstore::{Filter, FindOptions};
use serrano_service::{ApiError, ApiJson, ApiPath};
use utoipa::ToSchema;

use super::clusters::{agent_of, call_agent};
use super::{AppState, ErrorBody};
use crate::Cth;
use crate::agents::{AgentError, AgentRoute, cluster_doc, route_for, segment};
use crate::deployments::{
    K8sDeploymentRef, MonitoringEntity, clusters_of, latest_per_pod, per_cluster, summary,
};
use crate::store::{
    CLUSTER_DEPLOYMENT_METRICS, SERRANO_DEPLOYMENTS, check_id, doc_error, unix_now,
};

/// Most per-pod documents read for one deployment.
pub const MAX_POD_DOCS: usize = 100_000;

/// `GET /deployments` entry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeploymentSummary {
    pub deployment_uuid: String,
    pub clusters: Vec<String>,
    /// Unix seconds.
    pub timestamp: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeploymentList {
    pub deployments: Vec<DeploymentSummary>,
}

/// Get the list of the application deployments that are monitored by the telemetry framework.
#[utoipa::path(get, path = "/api/v1/telemetry/central/deployments", tag = "Deployments",
    responses((status = 200, body = DeploymentList)))]
pub async fn list_deployments(State(cth): State<AppState>) -> Result<Response, ApiError> {
    let docs = cth
        .docs
        .find(
            SERRANO_DEPLOYMENTS,
            &Filter::all(),
            &FindOptions {
                sort_by: Some("timestamp".to_owned()),
                ..FindOptions::default()
            },
        )
        .await
        .map_err(doc_error)?;
    let deployments: Vec<Value> = docs.iter().map(summary).collect();
    Ok(ApiJson(json!({ "deployments": deployments })).into_response())
}

/// The RO's monitoring entity (D6.7 4.4.3.2): besides the fixed fields, one member per cluster
/// uuid listing that cluster's Kubernetes deployments.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "deployment_uuid": "fdf45855-1299-47f1-8ea6-98be8d89030b",
    "clusters": ["7628b895-3a91-4f0c-b0b7-033eab309891"],
    "7628b895-3a91-4f0c-b0b7-033eab309891": [{
        "k8s_deployment_name": "acceleration-service-data-manager",
        "k8s_deployment_namespace": "integration",
        "k8s_deployment_uuid": "06802ae3-9e00-41ae-a7a0-15ffe2505db0"}]
}))]
pub struct MonitoringEntityBody {
    pub deployment_uuid: String,
    /// Unix seconds; the time of registration when absent.
    pub timestamp: Option<i64>,
    pub clusters: Vec<String>,
    /// `<cluster_uuid>`: that cluster's Kubernetes deployments.
    #[serde(flatten)]
    pub per_cluster: BTreeMap<String, Vec<K8sDeploymentRef>>,
}

/// One agent's part of a deployment.
struct Part {
    route: AgentRoute,
    body: Value,
}

async fn tell(cth: &Cth, part: &Part) -> Result<(), AgentError> {
    call_agent(
        cth,
        &part.route,
        Method::POST,
        "/deployments",
        &[],
        Some(&part.body),
    )
    .await
    .map(|_| ())
}

/// Tells an agent to stop monitoring a deployment; one that does not know it is done already.
async fn untell(cth: &Cth, route: &AgentRoute, deployment: &str) -> Result<(), AgentError> {
    let path = format!("/deployments/{}", segment(deployment));
    match call_agent(cth, route, Method::DELETE, &path, &[], None).await {
        Ok(_) | Err(AgentError::Status { status: 404, .. }) => Ok(()),
        Err(err) => Err(err),
    }
}

/// Add a new application deployment under the control of the telemetry framework.
#[utoipa::path(post, path = "/api/v1/telemetry/central/deployments", tag = "Deployments",
    request_body = MonitoringEntityBody,
    responses((status = 201, description = "registered; `{}`", body = Object),
        (status = 400, body = ErrorBody),
        (status = 404, description = "a cluster is unknown; nothing stored", body = ErrorBody),
        (status = 502, description = "an agent refused; nothing stored", body = ErrorBody),
        (status = 503, description = "an agent is unreachable or missing; nothing stored", body = ErrorBody),
        (status = 504, description = "an agent did not answer in time; nothing stored", body = ErrorBody)))]
pub async fn add_deployment(
    State(cth): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let entity = MonitoringEntity::parse(body).map_err(ApiError::validation)?;
    let mut parts = Vec::new();
    for cluster in &entity.clusters {
        let doc = cluster_doc(cth.docs.as_ref(), cluster).await?;
        let k8s = entity.k8s_of(cluster);
        if k8s.is_empty() {
            continue;
        }
        parts.push(Part {
            route: agent_of(&cth, &doc).await?,
            body: json!({"deployment_uuid": entity.deployment_uuid, "k8s_deployments": k8s}),
        });
    }
    let outcomes = join_all(parts.iter().map(|part| tell(&cth, part))).await;
    let failure = outcomes.iter().find_map(|o| o.as_ref().err()).cloned();
    let stored = match failure {
        Some(err) => Err(err.to_api()),
        None => cth
            .docs
            .upsert(
                SERRANO_DEPLOYMENTS,
                &Filter::all().eq("deployment_uuid", entity.deployment_uuid.as_str()),
                entity.to_document(unix_now()),
            )
            .await
            .map_err(doc_error),
    };
    if let Err(mut err) = stored {
        let accepted = parts
            .iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| outcome.is_ok());
        for (part, _) in accepted {
            if let Err(undo) = untell(&cth, &part.route, &entity.deployment_uuid).await {
                tracing::warn!(error = %undo, "could not withdraw a deployment from an agent");
            }
        }
        err.message = format!(
            "deployment {} not registered: {}",
            entity.deployment_uuid, err.message
        );
        return Err(err);
    }
    tracing::info!(deployment = %entity.deployment_uuid, clusters = entity.clusters.len(), "deployment monitoring registered");
    Ok((StatusCode::CREATED, ApiJson(json!({}))).into_response())
}

async fn stored_deployment(cth: &Cth, deployment: &str) -> Result<Value, ApiError> {
    check_id("deployment uuid", deployment)?;
    cth.docs
        .find_one(
            SERRANO_DEPLOYMENTS,
            &Filter::all().eq("deployment_uuid", deployment),
        )
        .await
        .map_err(doc_error)?
        .ok_or_else(|| ApiError::not_found(format!("deployment {deployment} not found")))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeploymentMetrics {
    /// The latest `cluster_deployment_metrics` document of every pod: `{deployment_uuid,
    /// cluster_uuid, name, namespace, node, group_id, phase, restarts, pod_ip, host_ip,
    /// creation_timestamp, start_time, usage: {cpu, memory}, timestamp}`.
    #[schema(value_type = Vec<Object>)]
    pub metrics: Vec<Value>,
}

/// The latest metrics of every pod of a monitored deployment (D6.7 4.4.3.2 example).
#[utoipa::path(get, path = "/api/v1/telemetry/central/deployments/{deployment}", tag = "Deployments",
    params(("deployment" = String, Path, description = "deployment uuid")),
    responses((status = 200, body = DeploymentMetrics), (status = 404, body = ErrorBody)))]
pub async fn deployment_metrics_latest(
    State(cth): State<AppState>,
    ApiPath(deployment): ApiPath<String>,
) -> Result<Response, ApiError> {
    stored_deployment(&cth, &deployment).await?;
    let docs = cth
        .docs
        .find(
            CLUSTER_DEPLOYMENT_METRICS,
            &Filter::all().eq("deployment_uuid", deployment.as_str()),
            &FindOptions {
                sort_by: Some("timestamp".to_owned()),
                descending: true,
                limit: Some(MAX_POD_DOCS),
            },
        )
        .await
        .map_err(doc_error)?;
    Ok(ApiJson(DeploymentMetrics {
        metrics: latest_per_pod(docs),
    })
    .into_response())
}

/// Stop monitoring a deployment: each agent is told, then the deployment is removed. While an
/// agent cannot be told the deployment stays (retry the DELETE).
#[utoipa::path(delete, path = "/api/v1/telemetry/central/deployments/{deployment}", tag = "Deployments",
    params(("deployment" = String, Path, description = "deployment uuid")),
    responses((status = 200, description = "removed; `{}`", body = Object),
        (status = 404, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub async fn delete_deployment(
    State(cth): State<AppState>,
    ApiPath(deployment): ApiPath<String>,
) -> Result<Response, ApiError> {
    let doc = stored_deployment(&cth, &deployment).await?;
    let mut routes = Vec::new();
    for cluster in clusters_of(&doc) {
        let has_k8s = doc
            .get(&cluster)
            .and_then(Value::as_array)
            .is_some_and(|l| !l.is_empty());
        if !has_k8s {
            continue;
        }
        let Ok(cluster_doc) = cluster_doc(cth.docs.as_ref(), &cluster).await else {
            tracing::info!(%cluster, "cluster of a removed deployment is gone; nothing to tell");
            continue;
        };
        match route_for(cth.docs.as_ref(), &cluster_doc).await? {
            Ok(route) => routes.push(route),
            Err(err) => tracing::info!(error = %err, "no agent to tell about a removed deployment"),
        }
    }
    let outcomes = join_all(routes.iter().map(|r| untell(&cth, r, &deployment))).await;
    if let Some(err) = outcomes.into_iter().find_map(Result::err) {
        let mut err = err.to_api();
        err.message = format!(
            "deployment {deployment} kept, retry the removal: {}",
            err.message
        );
        return Err(err);
    }
    cth.docs
        .delete_many(
            SERRANO_DEPLOYMENTS,
            &Filter::all().eq("deployment_uuid", deployment.as_str()),
        )
        .await
        .map_err(doc_error)?;
    tracing::info!(%deployment, "deployment monitoring removed");
    Ok(ApiJson(json!({})).into_response())
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClusterDeployments {
    /// Per cluster uuid, the Kubernetes deployments of every monitored deployment there.
    #[schema(value_type = Object)]
    pub cluster_deployments: BTreeMap<String, Vec<Value>>,
}

/// Get high-level description for the allocation of application deployments within the SERRANO
/// platform.
#[utoipa::path(get, path = "/api/v1/telemetry/central/cluster_deployments", tag = "Deployments",
    responses((status = 200, body = ClusterDeployments)))]
pub async fn cluster_deployments(State(cth): State<AppState>) -> Result<Response, ApiError> {
    let docs = cth
        .docs
        .find(SERRANO_DEPLOYMENTS, &Filter::all(), &FindOptions::default())
        .await
        .map_err(doc_error)?;
    Ok(ApiJson(ClusterDeployments {
        cluster_deployments: per_cluster(&docs),
    })
    .into_response())
}

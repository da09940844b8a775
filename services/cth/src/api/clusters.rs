//! The clusters of the platform (D6.7 4.4.3 Figure 26; 4.1.3.3 Figure 6): the list, each
//! cluster's document, its live inventory and monitoring data (forwarded to the owning agent,
//! which also records them), and the states recorded in the operational DB.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use serrano_docstore::{DocStore, Filter, FindOptions};
use serrano_service::{ApiError, ApiJson, ApiPath, ApiQuery};
use utoipa::{IntoParams, ToSchema};

use super::{AppState, ErrorBody};
use crate::Cth;
use crate::agents::{AgentError, AgentRoute, cluster_doc, route_for, segment};
use crate::store::{CLUSTER_STATE_METRICS, CLUSTERS, doc_error};

/// Most states `target=all` returns (the agents keep `retain_data_period` of them anyway).
pub const MAX_STATES: usize = 10_000;

/// The agent of a cluster document, or 503.
pub(crate) async fn agent_of(cth: &Cth, cluster: &Value) -> Result<AgentRoute, ApiError> {
    route_for(cth.docs.as_ref(), cluster)
        .await?
        .map_err(|err| err.to_api())
}

/// Calls the agent, counting the call for `/metrics`.
pub(crate) async fn call_agent(
    cth: &Cth,
    route: &AgentRoute,
    method: Method,
    path: &str,
    query: &[(&str, &str)],
    body: Option<&Value>,
) -> Result<Value, AgentError> {
    cth.stats.agent_calls.fetch_add(1, Ordering::Relaxed);
    let outcome = cth
        .agents
        .call(route, method, path, query, body, cth.query_timeout())
        .await;
    if let Err(err) = &outcome {
        cth.stats.agent_failures.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(cluster = %route.cluster_uuid, agent = %route.agent_uuid, error = %err, "agent call failed");
    }
    outcome
}

/// `cluster_state_metrics` of a cluster, newest first, at most `limit`.
pub(crate) async fn state_metrics(
    docs: &dyn DocStore,
    cluster: &str,
    limit: Option<usize>,
) -> Result<Vec<Value>, ApiError> {
    docs.find(
        CLUSTER_STATE_METRICS,
        &Filter::all().eq("cluster_uuid", cluster),
        &FindOptions {
            sort_by: Some("timestamp".to_owned()),
            descending: true,
            limit,
        },
    )
    .await
    .map_err(doc_error)
}

/// One entry of `GET /clusters`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClusterSummary {
    #[schema(value_type = Option<String>)]
    pub uuid: Value,
    /// k8s, hpc, edge_storage or host.
    #[serde(rename = "type")]
    #[schema(value_type = Option<String>)]
    pub cluster_type: Value,
    #[schema(value_type = Option<String>)]
    pub name: Value,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClusterList {
    pub clusters: Vec<ClusterSummary>,
}

/// List the available K8s and HPC clusters.
#[utoipa::path(get, path = "/api/v1/telemetry/central/clusters", tag = "Clusters",
    responses((status = 200, body = ClusterList)))]
pub async fn list_clusters(State(cth): State<AppState>) -> Result<Response, ApiError> {
    let clusters = cth
        .docs
        .find(CLUSTERS, &Filter::all(), &FindOptions::default())
        .await
        .map_err(doc_error)?
        .into_iter()
        .map(|mut c| ClusterSummary {
            uuid: c.get_mut("uuid").map(Value::take).unwrap_or(Value::Null),
            cluster_type: c.get_mut("type").map(Value::take).unwrap_or(Value::Null),
            name: c.get_mut("name").map(Value::take).unwrap_or(Value::Null),
        })
        .collect();
    Ok(ApiJson(ClusterList { clusters }).into_response())
}

/// Get description parameters for a specific cluster: its document `{uuid, type, name,
/// agent_uuid, probe_uuid, inventory, timestamp}`.
#[utoipa::path(get, path = "/api/v1/telemetry/central/clusters/{cluster}", tag = "Clusters",
    params(("cluster" = String, Path, description = "cluster uuid")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn get_cluster(
    State(cth): State<AppState>,
    ApiPath(cluster): ApiPath<String>,
) -> Result<Response, ApiError> {
    Ok(ApiJson(cluster_doc(cth.docs.as_ref(), &cluster).await?).into_response())
}

fn probe_of(route: &AgentRoute) -> Result<&str, ApiError> {
    route.probe_uuid.as_deref().ok_or_else(|| {
        AgentError::NoAgent {
            cluster: route.cluster_uuid.clone(),
            reason: "the cluster names no probe".to_owned(),
        }
        .to_api()
    })
}

/// Get resource description parameters for a specific cluster, live from its probe through the
/// owning agent (which records them). 503 when the agent is unreachable, 504 when it does not
/// answer within `query_timeout`, 502 when it answers an error.
#[utoipa::path(get, path = "/api/v1/telemetry/central/clusters/inventory/{cluster}",
    tag = "Clusters", params(("cluster" = String, Path, description = "cluster uuid")),
    responses((status = 200, description = "the probe's inventory document", body = Object),
        (status = 404, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub async fn cluster_inventory(
    State(cth): State<AppState>,
    ApiPath(cluster): ApiPath<String>,
) -> Result<Response, ApiError> {
    let doc = cluster_doc(cth.docs.as_ref(), &cluster).await?;
    let route = agent_of(&cth, &doc).await?;
    let path = format!("/inventory/{}", segment(probe_of(&route)?));
    let answer = call_agent(&cth, &route, Method::GET, &path, &[], None)
        .await
        .map_err(|err| err.to_api())?;
    Ok(ApiJson(answer).into_response())
}

/// What `/clusters/monitor` asks the probe for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MonitorTarget {
    All,
    Resources,
    Applications,
}

impl MonitorTarget {
    fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Resources => "resources",
            Self::Applications => "applications",
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MonitorQuery {
    /// all (default), resources or applications.
    target: Option<MonitorTarget>,
}

/// Get monitoring data for a specific cluster, live from its probe through the owning agent
/// (which records them in the operational DB and the PMDS). Errors as `/clusters/inventory`.
#[utoipa::path(get, path = "/api/v1/telemetry/central/clusters/monitor/{cluster}",
    tag = "Clusters", params(("cluster" = String, Path, description = "cluster uuid"), MonitorQuery),
    responses((status = 200, description = "the probe's monitor document", body = Object),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody),
        (status = 504, body = ErrorBody)))]
pub async fn cluster_monitor(
    State(cth): State<AppState>,
    ApiPath(cluster): ApiPath<String>,
    ApiQuery(query): ApiQuery<MonitorQuery>,
) -> Result<Response, ApiError> {
    let doc = cluster_doc(cth.docs.as_ref(), &cluster).await?;
    let route = agent_of(&cth, &doc).await?;
    let path = format!("/monitor/{}", segment(probe_of(&route)?));
    let target = query.target.map(MonitorTarget::as_str);
    let params: Vec<(&str, &str)> = target.map(|t| ("target", t)).into_iter().collect();
    let answer = call_agent(&cth, &route, Method::GET, &path, &params, None)
        .await
        .map_err(|err| err.to_api())?;
    Ok(ApiJson(answer).into_response())
}

/// Which recorded states `/clusters/metrics` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MetricsTarget {
    All,
    Latest,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MetricsQuery {
    /// latest (default) or all (the retained history, newest first).
    target: Option<MetricsTarget>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClusterMetrics {
    /// `cluster_state_metrics` documents `{cluster_uuid, timestamp, state}`, newest first.
    #[schema(value_type = Vec<Object>)]
    pub metrics: Vec<Value>,
}

/// Get monitoring data for a specific cluster from the operational DB.
#[utoipa::path(get, path = "/api/v1/telemetry/central/clusters/metrics/{cluster}",
    tag = "Clusters", params(("cluster" = String, Path, description = "cluster uuid"), MetricsQuery),
    responses((status = 200, body = ClusterMetrics), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn cluster_metrics(
    State(cth): State<AppState>,
    ApiPath(cluster): ApiPath<String>,
    ApiQuery(query): ApiQuery<MetricsQuery>,
) -> Result<Response, ApiError> {
    cluster_doc(cth.docs.as_ref(), &cluster).await?;
    let limit = match query.target {
        Some(MetricsTarget::All) => MAX_STATES,
        None | Some(MetricsTarget::Latest) => 1,
    };
    let metrics = state_metrics(cth.docs.as_ref(), &cluster, Some(limit)).await?;
    Ok(ApiJson(json!({ "metrics": metrics })).into_response())
}

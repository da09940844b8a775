//! Platform-level views: the telemetry entities (Figure 26 `/inventory`) and the computing
//! resources (`/infrastructure`, used by the ROT and the AISO for placement, D6.7 4.3.3.2).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use serrano_docstore::{Filter, FindOptions};
use serrano_service::{ApiError, ApiJson, ApiPath, ApiQuery};
use utoipa::{IntoParams, ToSchema};

use super::{AppState, ErrorBody};
use crate::agents::cluster_doc;
use crate::infrastructure::{
    HOST, HPC, K8S, capacity_rows, hpc_cluster_view, is_type, node_cluster_view, security_rows,
};
use crate::kernels::deployment_mode;
use crate::store::{
    AGENT_TYPE, CLUSTERS, ENTITIES, SERRANO_KERNEL_DEPLOYMENTS, doc_error, str_field,
};

/// The platform-level telemetry entities.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InventoryView {
    /// Agent entities `{uuid, type: "Agent", url, grpc_url, probes, timestamp}`.
    #[schema(value_type = Vec<Object>)]
    pub agents: Vec<Value>,
    /// Probe entities `{uuid, type: "Probe.k8s"|..., url, cluster_uuid, agent_uuid, name,
    /// streaming_telemetry, status, registered_at, last_seen}`.
    #[schema(value_type = Vec<Object>)]
    pub probes: Vec<Value>,
}

/// List the available platform level telemetry entities (also at `/entities`).
#[utoipa::path(get, path = "/api/v1/telemetry/central/inventory", tag = "Infrastructure",
    responses((status = 200, body = InventoryView)))]
pub async fn inventory(State(cth): State<AppState>) -> Result<Response, ApiError> {
    let entities = cth
        .docs
        .find(ENTITIES, &Filter::all(), &FindOptions::default())
        .await
        .map_err(doc_error)?;
    let (agents, others): (Vec<Value>, Vec<Value>) = entities
        .into_iter()
        .partition(|e| str_field(e, "type") == Some(AGENT_TYPE));
    let probes = others
        .into_iter()
        .filter(|e| str_field(e, "type").is_some_and(|t| t.starts_with("Probe")))
        .collect();
    Ok(ApiJson(InventoryView { agents, probes }).into_response())
}

/// Which kernel deployment counters `/infrastructure` adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KernelsFilter {
    All,
    Faas,
    Standalone,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InfrastructureQuery {
    /// Add `kernels`: the kernel deployment counters of every mode (`all`), or of FaaS or
    /// Standalone deployments only.
    kernels: Option<String>,
}

/// The computing resources of the platform.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InfrastructureView {
    /// Kubernetes clusters: `{uuid, name, inventory: [{node_info: {architecture},
    /// node_capacity: {total_fpga, total_gpu, cpu, memory}, node_labels, node_name}]}`.
    #[schema(value_type = Vec<Object>)]
    pub k8s: Vec<Value>,
    /// HPC systems: `{uuid, name, inventory: {partitions}}`.
    #[schema(value_type = Vec<Object>)]
    pub hpc: Vec<Value>,
    /// Plain hosts (Probe.Host), shaped as `k8s`.
    #[schema(value_type = Vec<Object>)]
    pub host: Vec<Value>,
    /// `serrano_kernel_deployments` documents, when asked for with `kernels`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub kernels: Option<Vec<Value>>,
}

/// Provide high-level information for the available computing resources within the overall
/// SERRANO platform.
#[utoipa::path(get, path = "/api/v1/telemetry/central/infrastructure", tag = "Infrastructure",
    params(InfrastructureQuery),
    responses((status = 200, body = InfrastructureView),
        (status = 400, description = "kernels is not all, faas or standalone", body = ErrorBody)))]
pub async fn infrastructure(
    State(cth): State<AppState>,
    ApiQuery(query): ApiQuery<InfrastructureQuery>,
) -> Result<Response, ApiError> {
    let kernels = match query.kernels.as_deref() {
        None => None,
        Some(value) => Some(
            serde_json::from_value::<KernelsFilter>(json!(value.to_ascii_lowercase())).map_err(
                |_| {
                    ApiError::validation(format!(
                        "kernels must be all, faas or standalone, got {value:?}"
                    ))
                },
            )?,
        ),
    };
    let clusters = cth
        .docs
        .find(CLUSTERS, &Filter::all(), &FindOptions::default())
        .await
        .map_err(doc_error)?;
    let of = |kind: &'static str| clusters.iter().filter(move |c| is_type(c, kind));
    let mut view = InfrastructureView {
        k8s: of(K8S).map(node_cluster_view).collect(),
        hpc: of(HPC).map(hpc_cluster_view).collect(),
        host: of(HOST).map(node_cluster_view).collect(),
        kernels: None,
    };
    if let Some(filter) = kernels {
        let mode = match filter {
            KernelsFilter::All => None,
            KernelsFilter::Faas => deployment_mode("faas"),
            KernelsFilter::Standalone => deployment_mode("standalone"),
        };
        let filter = match mode {
            Some(mode) => Filter::all().eq("deployment_mode", mode),
            None => Filter::all(),
        };
        view.kernels = Some(
            cth.docs
                .find(SERRANO_KERNEL_DEPLOYMENTS, &filter, &FindOptions::default())
                .await
                .map_err(doc_error)?,
        );
    }
    Ok(ApiJson(view).into_response())
}

/// Per-node capacity and security labels of one cluster.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClusterInventoryView {
    /// `{node_name, total_fpga, total_gpu, cpu, memory}` per node.
    #[schema(value_type = Vec<Object>)]
    pub capacity: Vec<Value>,
    /// `{node_name, vaccel, security-tier}` per node.
    #[schema(value_type = Vec<Object>)]
    pub security: Vec<Value>,
}

/// Capacity and security tiers of the nodes of one cluster (empty lists for a cluster without
/// nodes, such as an HPC system).
#[utoipa::path(get, path = "/api/v1/telemetry/central/infrastructure/inventory/{cluster}",
    tag = "Infrastructure", params(("cluster" = String, Path, description = "cluster uuid")),
    responses((status = 200, body = ClusterInventoryView), (status = 404, body = ErrorBody)))]
pub async fn infrastructure_inventory(
    State(cth): State<AppState>,
    ApiPath(cluster): ApiPath<String>,
) -> Result<Response, ApiError> {
    let doc = cluster_doc(cth.docs.as_ref(), &cluster).await?;
    Ok(ApiJson(ClusterInventoryView {
        capacity: capacity_rows(&doc),
        security: security_rows(&doc),
    })
    .into_response())
}

/// The latest recorded state of a cluster.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClusterStateView {
    pub cluster_uuid: String,
    /// The cluster's `type`.
    #[serde(rename = "type")]
    pub cluster_type: Option<String>,
    /// When the state was recorded (Unix s); null before the agent's first poll.
    pub timestamp: Option<i64>,
    /// Seconds since then; null before the first poll.
    pub age_seconds: Option<i64>,
    /// The probe's monitor document; null before the first poll.
    #[schema(value_type = Option<Object>)]
    pub state: Option<Value>,
}

/// The most recent monitoring data of a cluster from the operational DB (the original's route
/// was a stub). A known cluster that no agent has polled yet answers 200 with a null `state`.
#[utoipa::path(get, path = "/api/v1/telemetry/central/infrastructure/monitor/{cluster}",
    tag = "Infrastructure", params(("cluster" = String, Path, description = "cluster uuid")),
    responses((status = 200, body = ClusterStateView), (status = 404, body = ErrorBody)))]
pub async fn infrastructure_monitor(
    State(cth): State<AppState>,
    ApiPath(cluster): ApiPath<String>,
) -> Result<Response, ApiError> {
    let doc = cluster_doc(cth.docs.as_ref(), &cluster).await?;
    let latest = super::clusters::state_metrics(cth.docs.as_ref(), &cluster, Some(1))
        .await?
        .into_iter()
        .next();
    let timestamp = latest
        .as_ref()
        .and_then(|m| m.get("timestamp"))
        .and_then(Value::as_i64);
    Ok(ApiJson(ClusterStateView {
        cluster_type: str_field(&doc, "type").map(str::to_owned),
        cluster_uuid: cluster,
        timestamp,
        age_seconds: timestamp.map(|t| (crate::store::unix_now() - t).max(0)),
        state: latest.and_then(|mut m| m.get_mut("state").map(Value::take)),
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_filter_spellings() {
        for (text, want) in [
            ("all", KernelsFilter::All),
            ("faas", KernelsFilter::Faas),
            ("standalone", KernelsFilter::Standalone),
        ] {
            assert_eq!(
                serde_json::from_value::<KernelsFilter>(json!(text)).unwrap(),
                want
            );
        }
        assert!(serde_json::from_value::<KernelsFilter>(json!("gpu")).is_err());
    }
}

//! The read routes of the original PMDS REST API (pmds_rest_v1.yaml v1.1.0, originals.md 3.6),
//! plus HPC partitions and deployment-specific metrics.
//!
//! Every handler turns its path and query parameters into a typed [`Query`] (never into a
//! query-language string), reads, then answers `raw` or `compact` ([`crate::shape`]).
//!
//! - A cluster (or deployment) PMDS has never seen answers 404; one that is known but has no
//!   data in the window answers an empty result (`{}` or `[]`). "Seen" means any sample in any
//!   of its measurements, at any time; once seen, a scope is remembered for the process's life.
//! - At most `limit` rows are read (default and cap from the configuration); a read that matches
//!   more answers 413 rather than a silently cut history.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serrano_service::{ApiError, ApiPath, ApiQuery};
use serrano_timeseries::{Query, TsError, now_ns};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use crate::Pmds;
use crate::layout::{
    self, CLUSTER_ENTITIES, DEPLOYMENTS_BUCKET, Entity, NodeGroup, SPECIFIC_METRICS_BUCKET,
};
use crate::shape::{RawRecords, compact};
use crate::window::parse_window;

/// Answer format (pmds_rest_v1.yaml `format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Object keyed by entity name → entries merged per timestamp.
    #[default]
    Compact,
    /// List of records, one per stored value.
    Raw,
}

/// One `raw` record (the tags of the series follow as further string members).
#[derive(Debug, Serialize, ToSchema)]
pub struct RawRecord {
    #[serde(rename = "_measurement")]
    pub measurement: String,
    #[serde(rename = "_field")]
    pub field: String,
    /// Number, bool or string as stored.
    #[serde(rename = "_value")]
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
    /// RFC 3339, UTC, with a fraction.
    #[serde(rename = "_time")]
    pub time: String,
}

/// One `compact` entry: every field stored at `time` (and the entity's labels, e.g. `phase`),
/// by name.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompactEntry {
    /// RFC 3339, UTC, with a fraction.
    pub time: String,
}

/// Where a read looks and what makes its scope known.
struct Selection {
    bucket: String,
    entity: Entity,
    tags: Vec<(String, String)>,
    fields: Vec<String>,
    scope: Scope,
}

enum Scope {
    Cluster(String),
    Deployment(String),
}

impl Scope {
    fn key(&self) -> String {
        match self {
            Scope::Cluster(uuid) => format!("cluster:{uuid}"),
            Scope::Deployment(uuid) => format!("deployment:{uuid}"),
        }
    }
}

/// The parameters every read shares.
struct Common<'a> {
    start: Option<&'a str>,
    stop: Option<&'a str>,
    format: Option<Format>,
    limit: Option<usize>,
}

/// A filter parameter: empty counts as absent, as in the original (`if name:`).
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

fn push_tag(tags: &mut Vec<(String, String)>, key: &str, value: Option<&str>) {
    if let Some(value) = value {
        tags.push((key.to_owned(), value.to_owned()));
    }
}

fn store_error(err: TsError) -> ApiError {
    match err {
        TsError::Invalid(message) => ApiError::validation(message),
        TsError::Unavailable(message) => {
            ApiError::unavailable(format!("time-series store unavailable: {message}"))
        }
        TsError::Unsupported(message) => ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "not_implemented",
            format!("not supported by the time-series store: {message}"),
        ),
        TsError::Io(err) => ApiError::internal(format!("time-series store: {err}")),
    }
}

async fn read(
    state: &Pmds,
    selection: Selection,
    common: Common<'_>,
) -> Result<Response, ApiError> {
    let (start_ns, stop_ns) =
        parse_window(common.start, common.stop, now_ns()).map_err(ApiError::validation)?;
    let limits = state.limits;
    let limit = common.limit.unwrap_or(limits.default_limit);
    if limit == 0 || limit > limits.max_limit {
        return Err(ApiError::validation(format!(
            "limit must be between 1 and {}",
            limits.max_limit
        )));
    }
    let query = Query {
        bucket: selection.bucket,
        measurement: selection.entity.measurement.to_owned(),
        tags: selection.tags,
        fields: selection.fields,
        start_ns,
        stop_ns,
        // One more than allowed tells "exactly at the limit" from "over it".
        limit: Some(limit.saturating_add(1)),
    };
    let rows = state.store.query(&query).await.map_err(store_error)?;
    if rows.len() > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "result_too_large",
            format!(
                "more than {limit} values match: narrow the time range or the filters, or raise limit (at most {})",
                limits.max_limit
            ),
        ));
    }
    if rows.is_empty() {
        ensure_known(state, &selection.scope, &selection.entity).await?;
    } else {
        state.remember(selection.scope.key());
    }
    Ok(match common.format.unwrap_or_default() {
        Format::Raw => axum::Json(RawRecords(&rows)).into_response(),
        Format::Compact => axum::Json(compact(&rows, &selection.entity)).into_response(),
    })
}

/// 404 unless the scope has data somewhere, at any time.
async fn ensure_known(state: &Pmds, scope: &Scope, first: &Entity) -> Result<(), ApiError> {
    let key = scope.key();
    if state.is_known(&key) {
        return Ok(());
    }
    let everything = |bucket: &str, entity: &Entity, tags: Vec<(String, String)>| Query {
        bucket: bucket.to_owned(),
        measurement: entity.measurement.to_owned(),
        tags,
        fields: Vec::new(),
        // Telemetry starts after 1970; the far end is the latest representable time.
        start_ns: 0,
        stop_ns: i64::MAX,
        limit: Some(1),
    };
    let probes: Vec<Query> = match scope {
        Scope::Cluster(uuid) => std::iter::once(first)
            .chain(CLUSTER_ENTITIES.iter().filter(|e| *e != first))
            .map(|entity| everything(uuid, entity, Vec::new()))
            .collect(),
        Scope::Deployment(uuid) => {
            let tag = vec![("deployment_uuid".to_owned(), uuid.clone())];
            vec![
                everything(
                    DEPLOYMENTS_BUCKET,
                    &layout::SERRANO_DEPLOYMENTS,
                    tag.clone(),
                ),
                everything(SPECIFIC_METRICS_BUCKET, &layout::SPECIFIC_METRICS, tag),
            ]
        }
    };
    for probe in probes {
        if !state
            .store
            .query(&probe)
            .await
            .map_err(store_error)?
            .is_empty()
        {
            state.remember(key);
            return Ok(());
        }
    }
    Err(match scope {
        Scope::Cluster(uuid) => ApiError::not_found(format!("no telemetry for cluster {uuid}")),
        Scope::Deployment(uuid) => {
            ApiError::not_found(format!("no telemetry for deployment {uuid}"))
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Parameters. Each struct repeats the shared ones: serde cannot flatten with
// `deny_unknown_fields`, and an unknown parameter must be a clear 400.

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NodesParams {
    /// Metric group; `compact` without one shows `general`, `raw` without one every group.
    #[param(inline)]
    pub group: Option<NodeGroup>,
    /// Earliest time (inclusive): relative (`-30m`, `-1h`, `-1d`), unix seconds or RFC 3339;
    /// default `-1d`.
    pub start: Option<String>,
    /// Latest time (exclusive), same forms; default now.
    pub stop: Option<String>,
    /// Only this node.
    pub node_name: Option<String>,
    /// Only this field (e.g. `node_memory_MemFree_bytes`).
    pub field_measurement: Option<String>,
    #[param(inline)]
    pub format: Option<Format>,
    /// Most values to return (default 100000); more matching values answer 413.
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PvsParams {
    /// Only the persistent volume of this name.
    pub name: Option<String>,
    /// Earliest time (inclusive); default `-1d`.
    pub start: Option<String>,
    /// Latest time (exclusive); default now.
    pub stop: Option<String>,
    #[param(inline)]
    pub format: Option<Format>,
    /// Most values to return.
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeploymentsParams {
    /// The namespace (required).
    pub namespace: Option<String>,
    /// Only the deployment of this name.
    pub name: Option<String>,
    /// Earliest time (inclusive); default `-1d`.
    pub start: Option<String>,
    /// Latest time (exclusive); default now.
    pub stop: Option<String>,
    #[param(inline)]
    pub format: Option<Format>,
    /// Most values to return.
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PodsParams {
    /// The namespace (required).
    pub namespace: Option<String>,
    /// Only the pod of this name.
    pub name: Option<String>,
    /// Only pods on this node.
    pub node_name: Option<String>,
    /// Only pods in this phase (`Running`, `Pending`, ...).
    pub phase: Option<String>,
    /// Earliest time (inclusive); default `-1d`.
    pub start: Option<String>,
    /// Latest time (exclusive); default now.
    pub stop: Option<String>,
    #[param(inline)]
    pub format: Option<Format>,
    /// Most values to return.
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EdgeStorageParams {
    /// Only the edge storage device of this name.
    pub name: Option<String>,
    /// Only devices on this node.
    pub node_name: Option<String>,
    /// Earliest time (inclusive); default `-1d`.
    pub start: Option<String>,
    /// Latest time (exclusive); default now.
    pub stop: Option<String>,
    #[param(inline)]
    pub format: Option<Format>,
    /// Most values to return.
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HpcPartitionsParams {
    /// Only this partition.
    pub partition_name: Option<String>,
    /// Earliest time (inclusive); default `-1d`.
    pub start: Option<String>,
    /// Latest time (exclusive); default now.
    pub stop: Option<String>,
    #[param(inline)]
    pub format: Option<Format>,
    /// Most values to return.
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SerranoDeploymentsParams {
    /// Only services running in this cluster.
    pub cluster_uuid: Option<Uuid>,
    /// Only services running on this node.
    pub node_name: Option<String>,
    /// Earliest time (inclusive); default `-1d`.
    pub start: Option<String>,
    /// Latest time (exclusive); default now.
    pub stop: Option<String>,
    #[param(inline)]
    pub format: Option<Format>,
    /// Most values to return.
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SpecificMetricsParams {
    /// Only metrics of this service.
    pub service_id: Option<String>,
    /// Only metrics from this cluster.
    pub cluster_uuid: Option<Uuid>,
    /// Earliest time (inclusive); default `-1d`.
    pub start: Option<String>,
    /// Latest time (exclusive); default now.
    pub stop: Option<String>,
    #[param(inline)]
    pub format: Option<Format>,
    /// Most values to return.
    pub limit: Option<usize>,
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, ApiError> {
    given(value).ok_or_else(|| ApiError::validation(format!("missing required parameter {name}")))
}

// ---------------------------------------------------------------------------------------------
// Handlers.

/// Worker-node telemetry of a Kubernetes cluster.
#[utoipa::path(get, path = "/api/v1/pmds/nodes/{cluster_uuid}", tag = "PMDS",
    params(("cluster_uuid" = Uuid, Path, description = "The cluster (its bucket)"), NodesParams),
    responses(
        (status = 200, description = "`compact`: {node_name: [CompactEntry]}; `raw`: [RawRecord]", body = Object),
        (status = 400, body = serrano_service::ErrorBody), (status = 404, body = serrano_service::ErrorBody),
        (status = 413, body = serrano_service::ErrorBody), (status = 503, body = serrano_service::ErrorBody)))]
pub async fn nodes(
    State(state): State<AppState>,
    ApiPath(cluster): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<NodesParams>,
) -> Result<Response, ApiError> {
    let format = params.format.unwrap_or_default();
    // As the original: `compact` always shows one group, `general` unless asked.
    let group = match (params.group, format) {
        (None, Format::Compact) => Some(NodeGroup::General),
        (group, _) => group,
    };
    let mut tags = Vec::new();
    push_tag(&mut tags, "group", group.map(NodeGroup::as_str));
    push_tag(&mut tags, "node_name", given(&params.node_name));
    let selection = Selection {
        bucket: cluster.to_string(),
        entity: layout::NODES,
        tags,
        fields: given(&params.field_measurement)
            .map(|f| vec![f.to_owned()])
            .unwrap_or_default(),
        scope: Scope::Cluster(cluster.to_string()),
    };
    let common = Common {
        start: params.start.as_deref(),
        stop: params.stop.as_deref(),
        format: Some(format),
        limit: params.limit,
    };
    read(&state, selection, common).await
}

/// Persistent-volume telemetry of a Kubernetes cluster.
#[utoipa::path(get, path = "/api/v1/pmds/pvs/{cluster_uuid}", tag = "PMDS",
    params(("cluster_uuid" = Uuid, Path, description = "The cluster (its bucket)"), PvsParams),
    responses(
        (status = 200, description = "`compact`: {name: [CompactEntry]}; `raw`: [RawRecord]", body = Object),
        (status = 400, body = serrano_service::ErrorBody), (status = 404, body = serrano_service::ErrorBody),
        (status = 413, body = serrano_service::ErrorBody), (status = 503, body = serrano_service::ErrorBody)))]
pub async fn pvs(
    State(state): State<AppState>,
    ApiPath(cluster): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<PvsParams>,
) -> Result<Response, ApiError> {
    let mut tags = Vec::new();
    push_tag(&mut tags, "name", given(&params.name));
    let selection = cluster_selection(cluster, layout::PERSISTENT_VOLUMES, tags);
    let common = Common {
        start: params.start.as_deref(),
        stop: params.stop.as_deref(),
        format: params.format,
        limit: params.limit,
    };
    read(&state, selection, common).await
}

/// Deployment telemetry of one namespace of a Kubernetes cluster.
#[utoipa::path(get, path = "/api/v1/pmds/deployments/{cluster_uuid}", tag = "PMDS",
    params(("cluster_uuid" = Uuid, Path, description = "The cluster (its bucket)"), DeploymentsParams),
    responses(
        (status = 200, description = "`compact`: {name: [CompactEntry]}; `raw`: [RawRecord]", body = Object),
        (status = 400, description = "missing namespace, bad parameter", body = serrano_service::ErrorBody),
        (status = 404, body = serrano_service::ErrorBody),
        (status = 413, body = serrano_service::ErrorBody), (status = 503, body = serrano_service::ErrorBody)))]
pub async fn deployments(
    State(state): State<AppState>,
    ApiPath(cluster): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<DeploymentsParams>,
) -> Result<Response, ApiError> {
    let namespace = required(&params.namespace, "namespace")?;
    let mut tags = vec![("namespace".to_owned(), namespace.to_owned())];
    push_tag(&mut tags, "name", given(&params.name));
    let selection = cluster_selection(cluster, layout::DEPLOYMENTS, tags);
    let common = Common {
        start: params.start.as_deref(),
        stop: params.stop.as_deref(),
        format: params.format,
        limit: params.limit,
    };
    read(&state, selection, common).await
}

/// Pod telemetry of one namespace of a Kubernetes cluster.
#[utoipa::path(get, path = "/api/v1/pmds/pods/{cluster_uuid}", tag = "PMDS",
    params(("cluster_uuid" = Uuid, Path, description = "The cluster (its bucket)"), PodsParams),
    responses(
        (status = 200, description = "`compact`: {name: [CompactEntry]}; `raw`: [RawRecord]", body = Object),
        (status = 400, description = "missing namespace, bad parameter", body = serrano_service::ErrorBody),
        (status = 404, body = serrano_service::ErrorBody),
        (status = 413, body = serrano_service::ErrorBody), (status = 503, body = serrano_service::ErrorBody)))]
pub async fn pods(
    State(state): State<AppState>,
    ApiPath(cluster): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<PodsParams>,
) -> Result<Response, ApiError> {
    let namespace = required(&params.namespace, "namespace")?;
    let mut tags = vec![("namespace".to_owned(), namespace.to_owned())];
    push_tag(&mut tags, "name", given(&params.name));
    push_tag(&mut tags, "node", given(&params.node_name));
    push_tag(&mut tags, "phase", given(&params.phase));
    let selection = cluster_selection(cluster, layout::PODS, tags);
    let common = Common {
        start: params.start.as_deref(),
        stop: params.stop.as_deref(),
        format: params.format,
        limit: params.limit,
    };
    read(&state, selection, common).await
}

/// SERRANO edge storage device telemetry of a cluster.
#[utoipa::path(get, path = "/api/v1/pmds/edge_storage_devices/{cluster_uuid}", tag = "PMDS",
    params(("cluster_uuid" = Uuid, Path, description = "The cluster (its bucket)"), EdgeStorageParams),
    responses(
        (status = 200, description = "`compact`: {name: [CompactEntry]}; `raw`: [RawRecord]", body = Object),
        (status = 400, body = serrano_service::ErrorBody), (status = 404, body = serrano_service::ErrorBody),
        (status = 413, body = serrano_service::ErrorBody), (status = 503, body = serrano_service::ErrorBody)))]
pub async fn edge_storage_devices(
    State(state): State<AppState>,
    ApiPath(cluster): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<EdgeStorageParams>,
) -> Result<Response, ApiError> {
    let mut tags = Vec::new();
    push_tag(&mut tags, "name", given(&params.name));
    push_tag(&mut tags, "node", given(&params.node_name));
    let selection = cluster_selection(cluster, layout::EDGE_STORAGE, tags);
    let common = Common {
        start: params.start.as_deref(),
        stop: params.stop.as_deref(),
        format: params.format,
        limit: params.limit,
    };
    read(&state, selection, common).await
}

/// HPC partition telemetry of an HPC cluster (avail_cpus, avail_nodes, queued_jobs,
/// running_jobs).
#[utoipa::path(get, path = "/api/v1/pmds/hpc_partitions/{cluster_uuid}", tag = "PMDS",
    params(("cluster_uuid" = Uuid, Path, description = "The HPC cluster (its bucket)"), HpcPartitionsParams),
    responses(
        (status = 200, description = "`compact`: {partition_name: [CompactEntry]}; `raw`: [RawRecord]", body = Object),
        (status = 400, body = serrano_service::ErrorBody), (status = 404, body = serrano_service::ErrorBody),
        (status = 413, body = serrano_service::ErrorBody), (status = 503, body = serrano_service::ErrorBody)))]
pub async fn hpc_partitions(
    State(state): State<AppState>,
    ApiPath(cluster): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<HpcPartitionsParams>,
) -> Result<Response, ApiError> {
    let mut tags = Vec::new();
    push_tag(&mut tags, "partition_name", given(&params.partition_name));
    let selection = cluster_selection(cluster, layout::HPC_PARTITIONS, tags);
    let common = Common {
        start: params.start.as_deref(),
        stop: params.stop.as_deref(),
        format: params.format,
        limit: params.limit,
    };
    read(&state, selection, common).await
}

/// Per-pod telemetry of an application deployed through the SERRANO orchestration.
#[utoipa::path(get, path = "/api/v1/pmds/serrano_deployments/{deployment_uuid}", tag = "PMDS",
    params(("deployment_uuid" = Uuid, Path, description = "The SERRANO deployment"), SerranoDeploymentsParams),
    responses(
        (status = 200, description = "`compact`: {pod name: [CompactEntry with group_id, phase]}; `raw`: [RawRecord]", body = Object),
        (status = 400, body = serrano_service::ErrorBody), (status = 404, body = serrano_service::ErrorBody),
        (status = 413, body = serrano_service::ErrorBody), (status = 503, body = serrano_service::ErrorBody)))]
pub async fn serrano_deployments(
    State(state): State<AppState>,
    ApiPath(deployment): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<SerranoDeploymentsParams>,
) -> Result<Response, ApiError> {
    let mut tags = vec![("deployment_uuid".to_owned(), deployment.to_string())];
    push_tag(
        &mut tags,
        "cluster_uuid",
        params.cluster_uuid.map(|c| c.to_string()).as_deref(),
    );
    push_tag(&mut tags, "node", given(&params.node_name));
    let selection = Selection {
        bucket: DEPLOYMENTS_BUCKET.to_owned(),
        entity: layout::SERRANO_DEPLOYMENTS,
        tags,
        fields: Vec::new(),
        scope: Scope::Deployment(deployment.to_string()),
    };
    let common = Common {
        start: params.start.as_deref(),
        stop: params.stop.as_deref(),
        format: params.format,
        limit: params.limit,
    };
    read(&state, selection, common).await
}

/// Metrics the services of a SERRANO deployment pushed themselves.
#[utoipa::path(get, path = "/api/v1/pmds/deployments_specific_metrics/{deployment_uuid}", tag = "PMDS",
    params(("deployment_uuid" = Uuid, Path, description = "The SERRANO deployment"), SpecificMetricsParams),
    responses(
        (status = 200, description = "`compact`: {service_id: [CompactEntry]}; `raw`: [RawRecord]", body = Object),
        (status = 400, body = serrano_service::ErrorBody), (status = 404, body = serrano_service::ErrorBody),
        (status = 413, body = serrano_service::ErrorBody), (status = 503, body = serrano_service::ErrorBody)))]
pub async fn deployments_specific_metrics(
    State(state): State<AppState>,
    ApiPath(deployment): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<SpecificMetricsParams>,
) -> Result<Response, ApiError> {
    let mut tags = vec![("deployment_uuid".to_owned(), deployment.to_string())];
    push_tag(&mut tags, "service_id", given(&params.service_id));
    push_tag(
        &mut tags,
        "cluster_uuid",
        params.cluster_uuid.map(|c| c.to_string()).as_deref(),
    );
    let selection = Selection {
        bucket: SPECIFIC_METRICS_BUCKET.to_owned(),
        entity: layout::SPECIFIC_METRICS,
        tags,
        fields: Vec::new(),
        scope: Scope::Deployment(deployment.to_string()),
    };
    let common = Common {
        start: params.start.as_deref(),
        stop: params.stop.as_deref(),
        format: params.format,
        limit: params.limit,
    };
    read(&state, selection, common).await
}

fn cluster_selection(cluster: Uuid, entity: Entity, tags: Vec<(String, String)>) -> Selection {
    Selection {
        bucket: cluster.to_string(),
        entity,
        tags,
        fields: Vec::new(),
        scope: Scope::Cluster(cluster.to_string()),
    }
}

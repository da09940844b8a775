//! `GET /storage_locations` (D6.7 4.3.3.2 step 2, Figure 26): the cloud and edge storage
//! locations for the ROT's storage-policy algorithms, each edge device with the latest metrics of
//! the edge-storage probe.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serrano_docstore::{Filter, FindOptions};
use serrano_service::{ApiError, ApiJson, ApiQuery};
use utoipa::{IntoParams, ToSchema};

use super::clusters::state_metrics;
use super::{AppState, ErrorBody};
use crate::Cth;
use crate::infrastructure::{EDGE_STORAGE, EdgeCluster, enrich_edge_location};
use crate::store::{CLUSTERS, doc_error, str_field, unix_now_ms};

/// Which locations to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LocationTarget {
    Edge,
    Cloud,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LocationsQuery {
    /// edge or cloud; both when absent.
    target: Option<LocationTarget>,
}

/// Where the lists came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LocationSource {
    /// Fetched from the storage gateway for this request.
    Gateway,
    /// The last copy in the operational DB (the gateway could not be asked).
    Copy,
}

/// The storage locations.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StorageLocationsView {
    /// The gateway's edge locations `{id, name, cluster, region, lat, lng, ...}`, each with
    /// `cluster_uuid`, `node`, `minio_node_disk_total_bytes` and `metrics: [{minio_...,
    /// timestamp}]` from the edge-storage probe (empty when no probe reports the device).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub edge_storage: Option<Vec<Value>>,
    /// The gateway's cloud locations, as it lists them.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub cloud_storage: Option<Vec<Value>>,
    pub source: LocationSource,
    /// When the lists were fetched from the gateway (Unix s).
    pub fetched_at: i64,
    /// Seconds since then (0 when fetched for this request).
    pub age_seconds: i64,
    /// Why the gateway could not be asked, when `source` is `copy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_reason: Option<String>,
}

/// The edge-storage clusters with their latest recorded states.
async fn edge_clusters(cth: &Cth) -> Result<Vec<EdgeCluster>, ApiError> {
    let clusters = cth
        .docs
        .find(CLUSTERS, &Filter::all(), &FindOptions::default())
        .await
        .map_err(doc_error)?;
    let mut out = Vec::new();
    for cluster in clusters
        .into_iter()
        .filter(|c| crate::infrastructure::is_type(c, EDGE_STORAGE))
    {
        let uuid = str_field(&cluster, "uuid").unwrap_or_default().to_owned();
        let latest = state_metrics(cth.docs.as_ref(), &uuid, Some(1))
            .await?
            .into_iter()
            .next();
        out.push(EdgeCluster {
            timestamp: latest
                .as_ref()
                .and_then(|m| m.get("timestamp"))
                .and_then(Value::as_i64),
            state: latest.and_then(|mut m| m.get_mut("state").map(Value::take)),
            cluster,
        });
    }
    Ok(out)
}

/// Provide high-level information for the available cloud and edge storage locations across the
/// overall SERRANO platform. The lists are fetched from the storage gateway; while it cannot be
/// reached the last copy is served (`source: copy`, with its age); with no copy either, 503.
#[utoipa::path(get, path = "/api/v1/telemetry/central/storage_locations", tag = "Storage",
    params(LocationsQuery),
    responses((status = 200, body = StorageLocationsView), (status = 400, body = ErrorBody),
        (status = 503, description = "the gateway cannot be reached and there is no copy", body = ErrorBody)))]
pub async fn storage_locations(
    State(cth): State<AppState>,
    ApiQuery(query): ApiQuery<LocationsQuery>,
) -> Result<Response, ApiError> {
    let (lists, source, stale_reason) = match cth.refresh_locations().await {
        Ok(lists) => (lists, LocationSource::Gateway, None),
        Err(reason) => match cth.locations.copy().await.map_err(doc_error)? {
            Some(lists) => (lists, LocationSource::Copy, Some(reason)),
            None => {
                return Err(ApiError::unavailable(format!(
                    "storage locations unknown: {reason}, and there is no earlier copy"
                )));
            }
        },
    };
    let fetched_at = lists.fetched_at_ms.div_euclid(1000);
    let age_seconds = match source {
        LocationSource::Gateway => 0,
        LocationSource::Copy => (unix_now_ms() - lists.fetched_at_ms).max(0) / 1000,
    };
    let want_edge = query.target != Some(LocationTarget::Cloud);
    let want_cloud = query.target != Some(LocationTarget::Edge);
    let edge_storage = if want_edge {
        let clusters = edge_clusters(&cth).await?;
        Some(
            lists
                .edge
                .iter()
                .map(|location| enrich_edge_location(location, &clusters))
                .collect(),
        )
    } else {
        None
    };
    Ok(ApiJson(StorageLocationsView {
        edge_storage,
        cloud_storage: want_cloud.then_some(lists.cloud),
        source,
        fetched_at,
        age_seconds,
        stale_reason,
    })
    .into_response())
}

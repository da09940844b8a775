//! `/clusters`: the platforms registered by their Orchestration Drivers (D6.7 4.2.3.2.1,
//! Figure 15), with heartbeats kept at `/serrano/orchestrator/health/clusters/{uuid}`.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serrano_model::{Cluster, ClusterSummary, etcd_keys, unix_now};
use serrano_service::{ApiError, ApiJson, ApiPath, ApiQuery};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::common::{
    WatchParams, expected_revision, watch_response, with_etag, with_list_revision,
};
use crate::AppState;
use crate::store::{self, store_error};
use crate::validate;

const WHAT: &str = "cluster";

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClusterWritten {
    pub cluster_uuid: Uuid,
    pub revision: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClusterList {
    pub clusters: Vec<ClusterSummary>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only clusters whose last heartbeat is within this window: `<n><s|m|h|d>`, e.g. `10m`.
    pub active: Option<String>,
}

/// `GET /clusters/health/{uuid}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClusterHealth {
    pub cluster_uuid: Uuid,
    /// Unix seconds of the last heartbeat, as a string (the spec's `last_seen`).
    pub last_seen: String,
    pub seconds_since_last_seen: i64,
}

async fn heartbeat(state: &AppState, uuid: &Uuid, now: i64) -> Result<(), ApiError> {
    // Plain unix seconds, not JSON: the original's format, read by its other components.
    state
        .store
        .kv
        .put(
            &format!("{}{uuid}", etcd_keys::CLUSTER_HEALTH),
            now.to_string().into_bytes(),
            0,
        )
        .await
        .map_err(store_error)?;
    Ok(())
}

async fn last_seen(state: &AppState, uuid: &Uuid) -> Result<Option<i64>, ApiError> {
    let key = format!("{}{uuid}", etcd_keys::CLUSTER_HEALTH);
    let value = state.store.kv.get(&key).await.map_err(store_error)?;
    Ok(value.and_then(|kv| std::str::from_utf8(&kv.value).ok()?.trim().parse().ok()))
}

/// Register a new cluster with its resource summary; its first heartbeat is now.
#[utoipa::path(post, path = "/clusters", tag = "Clusters", request_body = Cluster,
    responses((status = 201, body = ClusterWritten), (status = 409, body = serrano_service::ErrorBody)))]
pub async fn register(
    State(state): State<AppState>,
    ApiJson(cluster): ApiJson<Cluster>,
) -> Result<Response, ApiError> {
    let uuid = cluster.cluster_uuid;
    // Heartbeat first: if the create then fails, a retried registration still succeeds.
    heartbeat(&state, &uuid, unix_now()).await?;
    let revision = store::create(&state.store.clusters, &uuid.to_string(), &cluster, WHAT).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(ClusterWritten {
            cluster_uuid: uuid,
            revision,
        }),
    )
        .into_response())
}

/// Update a cluster's type and resource summary. Without `If-Match` it also registers a cluster
/// that is not known yet: the original Kubernetes driver registers itself with this PUT at boot.
/// Counts as a heartbeat.
#[utoipa::path(put, path = "/clusters", tag = "Clusters", request_body = Cluster,
    params(("If-Match" = Option<String>, Header, description = "revision the update is based on")),
    responses((status = 200, body = ClusterWritten), (status = 404, body = serrano_service::ErrorBody),
        (status = 409, body = serrano_service::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(cluster): ApiJson<Cluster>,
) -> Result<Response, ApiError> {
    let expected = expected_revision(&headers, None)?;
    let uuid = cluster.cluster_uuid;
    let id = uuid.to_string();
    let replace = |stored: &mut Cluster| {
        stored.clone_from(&cluster);
        Ok(())
    };
    let (_, revision) = match expected {
        Some(_) => store::update(&state.store.clusters, &id, expected, WHAT, replace).await?,
        None => {
            store::upsert(
                &state.store.clusters,
                &id,
                || cluster.clone(),
                WHAT,
                replace,
            )
            .await?
        }
    };
    heartbeat(&state, &uuid, unix_now()).await?;
    Ok(axum::Json(ClusterWritten {
        cluster_uuid: uuid,
        revision,
    })
    .into_response())
}

/// Get the list of registered clusters, optionally only those seen within `active`.
#[utoipa::path(get, path = "/clusters", tag = "Clusters", params(ListParams),
    responses((status = 200, body = ClusterList), (status = 400, body = serrano_service::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Response, ApiError> {
    let window = params
        .active
        .as_deref()
        .map(validate::active_window)
        .transpose()?;
    let (clusters, revision) = store::list_with_revision(&state.store.clusters, "").await?;
    let beats = state
        .store
        .kv
        .list_prefix(etcd_keys::CLUSTER_HEALTH)
        .await
        .map_err(store_error)?;
    let seen: HashMap<&str, i64> = beats
        .kvs
        .iter()
        .filter_map(|kv| {
            let uuid = kv.key.strip_prefix(etcd_keys::CLUSTER_HEALTH)?;
            let seconds = std::str::from_utf8(&kv.value).ok()?.trim().parse().ok()?;
            Some((uuid, seconds))
        })
        .collect();
    let now = unix_now();
    let clusters = clusters
        .into_iter()
        .filter_map(|c| {
            let uuid = c.value.cluster_uuid;
            let last = seen.get(uuid.to_string().as_str()).copied().unwrap_or(0);
            let window = window.map(|w| i64::try_from(w.as_secs()).unwrap_or(i64::MAX));
            if window.is_some_and(|w| last.saturating_add(w) < now) {
                return None;
            }
            Some(ClusterSummary {
                cluster_uuid: uuid,
                cluster_type: c.value.cluster_type,
                last_seen: last.to_string(),
            })
        })
        .collect();
    Ok(with_list_revision(revision, ClusterList { clusters }))
}

/// Get a registered cluster (`ETag` = its revision).
#[utoipa::path(get, path = "/clusters/{uuid}", tag = "Clusters", params(("uuid" = Uuid, Path)),
    responses((status = 200, body = Cluster), (status = 404, body = serrano_service::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(uuid): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let found = store::get_or_404(&state.store.clusters, &uuid.to_string(), WHAT).await?;
    Ok(with_etag(found.mod_revision, found.value))
}

/// Delete a registered cluster and its heartbeat.
#[utoipa::path(delete, path = "/clusters/{uuid}", tag = "Clusters", params(("uuid" = Uuid, Path)),
    responses((status = 200, body = ClusterWritten), (status = 404, body = serrano_service::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    ApiPath(uuid): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let id = uuid.to_string();
    let found = store::get_or_404(&state.store.clusters, &id, WHAT).await?;
    store::delete_or_404(&state.store.clusters, &id, WHAT).await?;
    state
        .store
        .kv
        .delete(&format!("{}{id}", etcd_keys::CLUSTER_HEALTH))
        .await
        .map_err(store_error)?;
    Ok(axum::Json(ClusterWritten {
        cluster_uuid: uuid,
        revision: found.mod_revision,
    })
    .into_response())
}

/// When the cluster's driver was last heard of. Read-only: the original's GET also recorded a
/// heartbeat; heartbeats are `PUT` (or `POST`) on the same path.
#[utoipa::path(get, path = "/clusters/health/{uuid}", tag = "Clusters", params(("uuid" = Uuid, Path)),
    responses((status = 200, body = ClusterHealth), (status = 404, body = serrano_service::ErrorBody)))]
pub async fn health(
    State(state): State<AppState>,
    ApiPath(uuid): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    store::get_or_404(&state.store.clusters, &uuid.to_string(), WHAT).await?;
    let last = last_seen(&state, &uuid).await?.unwrap_or(0);
    Ok(axum::Json(ClusterHealth {
        cluster_uuid: uuid,
        last_seen: last.to_string(),
        seconds_since_last_seen: unix_now().saturating_sub(last),
    })
    .into_response())
}

/// Record a heartbeat of the cluster's driver.
#[utoipa::path(put, path = "/clusters/health/{uuid}", tag = "Clusters", params(("uuid" = Uuid, Path)),
    responses((status = 200, body = ClusterHealth), (status = 404, body = serrano_service::ErrorBody)))]
pub async fn beat(
    State(state): State<AppState>,
    ApiPath(uuid): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    store::get_or_404(&state.store.clusters, &uuid.to_string(), WHAT).await?;
    let now = unix_now();
    heartbeat(&state, &uuid, now).await?;
    Ok(axum::Json(ClusterHealth {
        cluster_uuid: uuid,
        last_seen: now.to_string(),
        seconds_since_last_seen: 0,
    })
    .into_response())
}

/// Stream changes of cluster objects (NDJSON).
#[utoipa::path(get, path = "/clusters/watch", tag = "Clusters", params(WatchParams),
    responses((status = 200, content_type = "application/x-ndjson", body = super::common::WatchLine)))]
pub async fn watch(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<WatchParams>,
) -> Result<Response, ApiError> {
    watch_response(
        &state.store.kv,
        etcd_keys::CLUSTERS.to_owned(),
        params.revision,
        |_| true,
    )
    .await
}

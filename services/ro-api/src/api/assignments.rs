//! `/assignments`: the Orchestration Manager's per-cluster instructions (Figure 15), stored at
//! `/serrano/orchestrator/assignments/{cluster_uuid}/assignment/{uuid}`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serrano_datastore::Versioned;
use serrano_model::assignment::AssignmentWrite;
use serrano_model::{Assignment, AssignmentStatus, LogEntry, UpdatedBy, etcd_keys, unix_now};
use serrano_service::{ApiError, ApiJson, ApiPath, ApiQuery};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::common::{
    WatchParams, expected_revision, watch_response, with_etag, with_list_revision,
};
use crate::AppState;
use crate::store::{self, store_error};

const WHAT: &str = "assignment";

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AssignmentWritten {
    pub uuid: Uuid,
    pub cluster_uuid: Uuid,
    pub revision: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AssignmentList {
    pub assignments: Vec<Assignment>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only the assignments of this cluster.
    pub cluster_uuid: Option<Uuid>,
}

/// Finds an assignment by its uuid alone. Keys are `{cluster}/assignment/{uuid}`, so this lists
/// keys and decodes only the match.
pub async fn find(state: &AppState, uuid: &Uuid) -> Result<Versioned<Assignment>, ApiError> {
    let suffix = format!("/assignment/{uuid}");
    let listed = state
        .store
        .kv
        .list_prefix(etcd_keys::ASSIGNMENTS)
        .await
        .map_err(store_error)?;
    let kv = listed
        .kvs
        .into_iter()
        .find(|kv| kv.key.ends_with(&suffix))
        .ok_or_else(|| ApiError::not_found(format!("{WHAT} {uuid} not found")))?;
    let value = serde_json::from_slice(&kv.value).map_err(|err| {
        ApiError::internal(format!("stored value at {} is not valid: {err}", kv.key))
    })?;
    Ok(Versioned {
        value,
        mod_revision: kv.mod_revision,
        create_revision: kv.create_revision,
    })
}

/// Create a deployment assignment for a registered cluster.
#[utoipa::path(post, path = "/assignments", tag = "Assignments", request_body = AssignmentWrite,
    responses((status = 201, body = AssignmentWritten), (status = 409, body = serrano_service::ErrorBody),
        (status = 422, body = serrano_service::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ApiJson(write): ApiJson<AssignmentWrite>,
) -> Result<Response, ApiError> {
    if state
        .store
        .clusters
        .get(&write.cluster_uuid.to_string())
        .await
        .map_err(store_error)?
        .is_none()
    {
        return Err(ApiError::unprocessable(format!(
            "cluster {} is not registered",
            write.cluster_uuid
        )));
    }
    let uuid = write.uuid.unwrap_or_else(Uuid::new_v4);
    if let Ok(existing) = find(&state, &uuid).await {
        return Err(ApiError::conflict(format!(
            "{WHAT} {uuid} already exists on cluster {}",
            existing.value.cluster_uuid
        )));
    }
    let now = unix_now();
    let assignment = Assignment {
        uuid,
        kind: write.kind,
        cluster_uuid: write.cluster_uuid,
        deployment_uuid: write.deployment_uuid,
        bundles: write.bundles.unwrap_or_default(),
        status: write.status.unwrap_or(AssignmentStatus::Created),
        // This route is the Orchestration Manager's, and drivers act on its writes only.
        updated_by: write.updated_by.unwrap_or(UpdatedBy::Manager),
        logs: vec![LogEntry {
            timestamp: now,
            event: write
                .event
                .unwrap_or_else(|| "Assignment created.".to_owned()),
        }],
        created_at: now,
        updated_at: now,
    };
    let id = etcd_keys::assignment_id(&assignment.cluster_uuid, &uuid);
    let revision = store::create(&state.store.assignments, &id, &assignment, WHAT).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(AssignmentWritten {
            uuid,
            cluster_uuid: assignment.cluster_uuid,
            revision,
        }),
    )
        .into_response())
}

/// Update an assignment (status, bundles); `event` is appended to its logs.
#[utoipa::path(put, path = "/assignments", tag = "Assignments", request_body = AssignmentWrite,
    params(("If-Match" = Option<String>, Header, description = "revision the update is based on")),
    responses((status = 200, body = AssignmentWritten), (status = 404, body = serrano_service::ErrorBody),
        (status = 409, body = serrano_service::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(write): ApiJson<AssignmentWrite>,
) -> Result<Response, ApiError> {
    let expected = expected_revision(&headers, write.revision)?;
    let uuid = write
        .uuid
        .ok_or_else(|| ApiError::validation("uuid: missing"))?;
    let id = etcd_keys::assignment_id(&write.cluster_uuid, &uuid);
    let (_, revision) = store::update(&state.store.assignments, &id, expected, WHAT, |a| {
        if a.deployment_uuid != write.deployment_uuid || a.kind != write.kind {
            return Err(ApiError::validation(
                "deployment_uuid and kind of an assignment cannot change",
            ));
        }
        if let Some(bundles) = &write.bundles {
            a.bundles.clone_from(bundles);
        }
        if let Some(status) = write.status {
            a.status = status;
        }
        a.updated_by = write.updated_by.unwrap_or(UpdatedBy::Manager);
        a.updated_at = unix_now();
        if let Some(event) = &write.event {
            a.logs.push(LogEntry {
                timestamp: a.updated_at,
                event: event.clone(),
            });
        }
        Ok(())
    })
    .await?;
    Ok(axum::Json(AssignmentWritten {
        uuid,
        cluster_uuid: write.cluster_uuid,
        revision,
    })
    .into_response())
}

/// Get the list of assignments, optionally of one cluster.
#[utoipa::path(get, path = "/assignments", tag = "Assignments", params(ListParams),
    responses((status = 200, body = AssignmentList)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Response, ApiError> {
    let sub = params
        .cluster_uuid
        .map(|c| etcd_keys::cluster_assignments(&c))
        .unwrap_or_default();
    let (assignments, revision) = store::list_with_revision(&state.store.assignments, &sub).await?;
    Ok(with_list_revision(
        revision,
        AssignmentList {
            assignments: assignments.into_iter().map(|a| a.value).collect(),
        },
    ))
}

/// Get an assignment by its uuid (`ETag` = its revision).
#[utoipa::path(get, path = "/assignments/{uuid}", tag = "Assignments", params(("uuid" = Uuid, Path)),
    responses((status = 200, body = Assignment), (status = 404, body = serrano_service::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(uuid): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let found = find(&state, &uuid).await?;
    Ok(with_etag(found.mod_revision, found.value))
}

/// Get an assignment at its full key, as the original route did.
#[utoipa::path(get, path = "/assignments/{cluster_uuid}/assignment/{uuid}", tag = "Assignments",
    params(("cluster_uuid" = Uuid, Path), ("uuid" = Uuid, Path)),
    responses((status = 200, body = Assignment), (status = 404, body = serrano_service::ErrorBody)))]
pub async fn get_in_cluster(
    State(state): State<AppState>,
    ApiPath((cluster_uuid, uuid)): ApiPath<(Uuid, Uuid)>,
) -> Result<Response, ApiError> {
    let found = store::get_or_404(
        &state.store.assignments,
        &etcd_keys::assignment_id(&cluster_uuid, &uuid),
        WHAT,
    )
    .await?;
    Ok(with_etag(found.mod_revision, found.value))
}

/// Delete an assignment: the cluster's driver sees the delete and terminates what it deployed.
#[utoipa::path(delete, path = "/assignments/{uuid}", tag = "Assignments", params(("uuid" = Uuid, Path)),
    responses((status = 200, body = AssignmentWritten), (status = 404, body = serrano_service::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    ApiPath(uuid): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let found = find(&state, &uuid).await?;
    let cluster_uuid = found.value.cluster_uuid;
    store::delete_or_404(
        &state.store.assignments,
        &etcd_keys::assignment_id(&cluster_uuid, &uuid),
        WHAT,
    )
    .await?;
    Ok(axum::Json(AssignmentWritten {
        uuid,
        cluster_uuid,
        revision: found.mod_revision,
    })
    .into_response())
}

/// Stream changes of one cluster's assignments (NDJSON): what its driver watches.
#[utoipa::path(get, path = "/assignments/watch/{cluster_uuid}", tag = "Assignments",
    params(("cluster_uuid" = Uuid, Path), WatchParams),
    responses((status = 200, content_type = "application/x-ndjson", body = super::common::WatchLine)))]
pub async fn watch(
    State(state): State<AppState>,
    ApiPath(cluster_uuid): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<WatchParams>,
) -> Result<Response, ApiError> {
    let prefix = format!(
        "{}{}",
        etcd_keys::ASSIGNMENTS,
        etcd_keys::cluster_assignments(&cluster_uuid)
    );
    watch_response(&state.store.kv, prefix, params.revision, |_| true).await
}

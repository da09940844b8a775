//! `/bundles`: the deployment descriptions an assignment lists (Figure 15), stored at
//! `/serrano/orchestrator/bundles/bundle/{uuid}`.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serrano_datastore::WatchEvent;
use serrano_model::assignment::BundleWrite;
use serrano_model::{Bundle, BundleStatus, LogEntry, UpdatedBy, etcd_keys, unix_now};
use serrano_service::{ApiError, ApiJson, ApiPath, ApiQuery};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::common::{
    WatchParams, expected_revision, watch_response, with_etag, with_list_revision,
};
use crate::AppState;
use crate::store;

const WHAT: &str = "bundle";

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BundleWritten {
    pub uuid: Uuid,
    pub revision: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BundleList {
    pub bundles: Vec<Bundle>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only the bundles that name this assignment.
    pub assignment_uuid: Option<Uuid>,
}

/// Create a bundle.
#[utoipa::path(post, path = "/bundles", tag = "Bundles", request_body = BundleWrite,
    responses((status = 201, body = BundleWritten), (status = 409, body = serrano_service::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ApiJson(write): ApiJson<BundleWrite>,
) -> Result<Response, ApiError> {
    let uuid = write.uuid.unwrap_or_else(Uuid::new_v4);
    let description = write
        .description
        .ok_or_else(|| ApiError::validation("description: missing"))?;
    let now = unix_now();
    let bundle = Bundle {
        uuid,
        assignment_uuid: write.assignment_uuid,
        description,
        status: write.status.unwrap_or(BundleStatus::Created),
        updated_by: write.updated_by.unwrap_or(UpdatedBy::Manager),
        logs: vec![LogEntry {
            timestamp: now,
            event: write.event.unwrap_or_else(|| "Bundle created.".to_owned()),
        }],
        created_at: now,
        updated_at: now,
    };
    let revision = store::create(&state.store.bundles, &uuid.to_string(), &bundle, WHAT).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(BundleWritten { uuid, revision }),
    )
        .into_response())
}

/// Update a bundle description or status; `event` is appended to its logs.
#[utoipa::path(put, path = "/bundles", tag = "Bundles", request_body = BundleWrite,
    params(("If-Match" = Option<String>, Header, description = "revision the update is based on")),
    responses((status = 200, body = BundleWritten), (status = 404, body = serrano_service::ErrorBody),
        (status = 409, body = serrano_service::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(write): ApiJson<BundleWrite>,
) -> Result<Response, ApiError> {
    let expected = expected_revision(&headers, write.revision)?;
    let uuid = write
        .uuid
        .ok_or_else(|| ApiError::validation("uuid: missing"))?;
    let (_, revision) = store::update(
        &state.store.bundles,
        &uuid.to_string(),
        expected,
        WHAT,
        |b| {
            if let Some(description) = &write.description {
                b.description.clone_from(description);
            }
            if write.assignment_uuid.is_some() {
                b.assignment_uuid = write.assignment_uuid;
            }
            if let Some(status) = write.status {
                b.status = status;
            }
            b.updated_by = write.updated_by.unwrap_or(UpdatedBy::Manager);
            b.updated_at = unix_now();
            if let Some(event) = &write.event {
                b.logs.push(LogEntry {
                    timestamp: b.updated_at,
                    event: event.clone(),
                });
            }
            Ok(())
        },
    )
    .await?;
    Ok(axum::Json(BundleWritten { uuid, revision }).into_response())
}

/// Get the list of all bundles, optionally of one assignment.
#[utoipa::path(get, path = "/bundles", tag = "Bundles", params(ListParams), responses((status = 200, body = BundleList)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Response, ApiError> {
    let (bundles, revision) = store::list_with_revision(&state.store.bundles, "").await?;
    let wanted: Option<HashSet<Uuid>> = match params.assignment_uuid {
        Some(assignment) => Some(
            super::assignments::find(&state, &assignment)
                .await?
                .value
                .bundles
                .into_iter()
                .collect(),
        ),
        None => None,
    };
    let bundles = bundles
        .into_iter()
        .map(|b| b.value)
        .filter(|b| {
            wanted
                .as_ref()
                .is_none_or(|w| w.contains(&b.uuid) || b.assignment_uuid == params.assignment_uuid)
        })
        .collect();
    Ok(with_list_revision(revision, BundleList { bundles }))
}

/// Get a bundle (`ETag` = its revision).
#[utoipa::path(get, path = "/bundles/{uuid}", tag = "Bundles", params(("uuid" = Uuid, Path)),
    responses((status = 200, body = Bundle), (status = 404, body = serrano_service::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(uuid): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let found = store::get_or_404(&state.store.bundles, &uuid.to_string(), WHAT).await?;
    Ok(with_etag(found.mod_revision, found.value))
}

/// Delete a bundle.
#[utoipa::path(delete, path = "/bundles/{uuid}", tag = "Bundles", params(("uuid" = Uuid, Path)),
    responses((status = 200, body = BundleWritten), (status = 404, body = serrano_service::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    ApiPath(uuid): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let id = uuid.to_string();
    let found = store::get_or_404(&state.store.bundles, &id, WHAT).await?;
    store::delete_or_404(&state.store.bundles, &id, WHAT).await?;
    Ok(axum::Json(BundleWritten {
        uuid,
        revision: found.mod_revision,
    })
    .into_response())
}

/// Stream changes of the bundles of one assignment (NDJSON): those it lists when the watch
/// starts and those that name it later.
#[utoipa::path(get, path = "/bundles/watch/{assignment_uuid}", tag = "Bundles",
    params(("assignment_uuid" = Uuid, Path), WatchParams),
    responses((status = 200, content_type = "application/x-ndjson", body = super::common::WatchLine),
        (status = 404, body = serrano_service::ErrorBody)))]
pub async fn watch(
    State(state): State<AppState>,
    ApiPath(assignment_uuid): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<WatchParams>,
) -> Result<Response, ApiError> {
    let assignment = super::assignments::find(&state, &assignment_uuid)
        .await?
        .value;
    let mut keys: HashSet<String> = assignment
        .bundles
        .iter()
        .map(|b| format!("{}{b}", etcd_keys::BUNDLES))
        .collect();
    watch_response(
        &state.store.kv,
        etcd_keys::BUNDLES.to_owned(),
        params.revision,
        move |event| match event {
            WatchEvent::Put(kv) => {
                let names_it = serde_json::from_slice::<Bundle>(&kv.value)
                    .is_ok_and(|b| b.assignment_uuid == Some(assignment_uuid));
                if names_it {
                    keys.insert(kv.key.clone());
                }
                keys.contains(&kv.key)
            }
            WatchEvent::Delete { key, .. } => keys.contains(key),
        },
    )
    .await
}

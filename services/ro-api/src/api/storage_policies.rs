//! `/storage_policies`: secure storage policy requests (D6.7 4.2.3.2.2, Figure 14).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serrano_model::storage_policy::StoragePolicyUpdate;
use serrano_model::{PolicyStatus, StoragePolicy, StoragePolicyRequest, UpdatedBy};
use serrano_service::{ApiError, ApiJson, ApiPath};
use utoipa::ToSchema;
use uuid::Uuid;

use super::common::{expected_revision, with_etag, with_list_revision};
use crate::AppState;
use crate::store;

const WHAT: &str = "storage policy";

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PolicyWritten {
    pub policy_uuid: Uuid,
    pub revision: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PolicyList {
    pub storage_policies: Vec<StoragePolicy>,
}

fn check_name(name: Option<&String>) -> Result<(), ApiError> {
    match name {
        Some(name) if name.trim().is_empty() => {
            Err(ApiError::validation("name: must not be empty"))
        }
        _ => Ok(()),
    }
}

/// Request a new secure storage policy.
#[utoipa::path(post, path = "/storage_policies", tag = "Storage Policies", request_body = StoragePolicyRequest,
    responses((status = 201, body = PolicyWritten), (status = 400, body = serrano_service::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<StoragePolicyRequest>,
) -> Result<Response, ApiError> {
    check_name(request.name.as_ref())?;
    let uuid = Uuid::new_v4();
    let policy = StoragePolicy::submitted(uuid, request);
    let revision = store::create(
        &state.store.storage_policies,
        &uuid.to_string(),
        &policy,
        WHAT,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(PolicyWritten {
            policy_uuid: uuid,
            revision,
        }),
    )
        .into_response())
}

/// Request the re-optimisation of a storage policy (status back to SUBMITTED).
#[utoipa::path(put, path = "/storage_policies", tag = "Storage Policies", request_body = StoragePolicyUpdate,
    params(("If-Match" = Option<String>, Header, description = "revision the update is based on")),
    responses((status = 200, body = PolicyWritten), (status = 404, body = serrano_service::ErrorBody),
        (status = 409, body = serrano_service::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<StoragePolicyUpdate>,
) -> Result<Response, ApiError> {
    let expected = expected_revision(&headers, request.revision)?;
    check_name(request.name.as_ref())?;
    let uuid = request.policy_uuid;
    let (_, revision) = store::update(
        &state.store.storage_policies,
        &uuid.to_string(),
        expected,
        WHAT,
        |p| {
            if let Some(name) = &request.name {
                p.name.clone_from(name);
            }
            if let Some(description) = &request.description {
                p.description.clone_from(description);
            }
            if let Some(parameters) = &request.policy_parameters {
                p.policy_parameters.clone_from(parameters);
            }
            p.status = PolicyStatus::Submitted;
            p.updated_by = UpdatedBy::Api;
            let entry = serrano_model::LogEntry::now("Storage Policy re-optimization requested.");
            p.updated_at = entry.timestamp;
            p.logs.push(entry);
            Ok(())
        },
    )
    .await?;
    Ok(axum::Json(PolicyWritten {
        policy_uuid: uuid,
        revision,
    })
    .into_response())
}

/// Get the list of all current storage policies.
#[utoipa::path(get, path = "/storage_policies", tag = "Storage Policies",
    responses((status = 200, body = PolicyList)))]
pub async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let (policies, revision) = store::list_with_revision(&state.store.storage_policies, "").await?;
    Ok(with_list_revision(
        revision,
        PolicyList {
            storage_policies: policies.into_iter().map(|p| p.value).collect(),
        },
    ))
}

/// Get a storage policy (a list of one, as the original answered; `ETag` = its revision).
#[utoipa::path(get, path = "/storage_policies/{uuid}", tag = "Storage Policies", params(("uuid" = Uuid, Path)),
    responses((status = 200, body = PolicyList), (status = 404, body = serrano_service::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(uuid): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let found = store::get_or_404(&state.store.storage_policies, &uuid.to_string(), WHAT).await?;
    Ok(with_etag(
        found.mod_revision,
        PolicyList {
            storage_policies: vec![found.value],
        },
    ))
}

/// Delete a storage policy. One that never reached the storage gateway (`cc_policy_id` 0) is
/// removed at once (200). One that exists in the gateway is marked TERMINATED (202): the
/// Orchestration Manager deletes it from the gateway, then removes the object, so the gateway's
/// policy is never orphaned.
#[utoipa::path(delete, path = "/storage_policies/{uuid}", tag = "Storage Policies", params(("uuid" = Uuid, Path)),
    responses((status = 200, body = PolicyWritten), (status = 202, body = PolicyWritten),
        (status = 404, body = serrano_service::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    ApiPath(uuid): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let id = uuid.to_string();
    let found = store::get_or_404(&state.store.storage_policies, &id, WHAT).await?;
    if found.value.cc_policy_id == 0 {
        return match state
            .store
            .storage_policies
            .compare_and_delete(&id, found.mod_revision)
            .await
            .map_err(crate::store::store_error)?
        {
            serrano_datastore::TypedCas::Written(revision) => Ok(axum::Json(PolicyWritten {
                policy_uuid: uuid,
                revision,
            })
            .into_response()),
            serrano_datastore::TypedCas::Conflict(None) => {
                Err(ApiError::not_found(format!("{WHAT} {uuid} not found")))
            }
            serrano_datastore::TypedCas::Conflict(Some(_)) => Err(ApiError::conflict(format!(
                "{WHAT} {uuid} changed while being deleted; retry"
            ))),
        };
    }
    let (_, revision) = store::update(
        &state.store.storage_policies,
        &id,
        Some(found.mod_revision),
        WHAT,
        |p| {
            p.status = PolicyStatus::Terminated;
            p.updated_by = UpdatedBy::Api;
            let entry = serrano_model::LogEntry::now("Storage Policy deletion requested.");
            p.updated_at = entry.timestamp;
            p.logs.push(entry);
            Ok(())
        },
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(PolicyWritten {
            policy_uuid: uuid,
            revision,
        }),
    )
        .into_response())
}

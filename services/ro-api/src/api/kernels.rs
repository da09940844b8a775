//! `/faas` and `/kernel(s)`: on-demand accelerated kernel executions (D6.7 4.2.3.2.4).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serrano_model::{KernelKind, KernelRequest, KernelStatus, KernelSubmission, LogEntry};
use serrano_service::{ApiError, ApiJson, ApiPath};
use utoipa::ToSchema;
use uuid::Uuid;

use super::common::{with_etag, with_list_revision};
use crate::AppState;
use crate::store::{self, store_error};

const WHAT: &str = "kernel request";

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KernelWritten {
    pub request_uuid: Uuid,
    /// The same id under the name the original `/kernels` answered with.
    pub uuid: Uuid,
    pub revision: i64,
}

/// `GET /faas`: the request uuids, as the original answered.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FaasList {
    pub faas: Vec<Uuid>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KernelList {
    pub kernels: Vec<KernelRequest>,
}

/// `GET /faas/{uuid}`: the request with the logs of the bundles that ran it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KernelDetails {
    pub request_uuid: Uuid,
    pub kind: KernelKind,
    pub kernel_name: String,
    pub request_logs: Vec<LogEntry>,
    pub bundle_logs: Vec<LogEntry>,
    /// The cluster running it; null until the manager assigned one.
    pub cluster_uuid: Option<Uuid>,
    pub status: KernelStatus,
    pub status_str: String,
    pub created_at: i64,
    pub updated_at: i64,
}

async fn submit(
    state: &AppState,
    kind: KernelKind,
    submission: KernelSubmission,
) -> Result<Response, ApiError> {
    if submission.kernel_name.trim().is_empty() {
        return Err(ApiError::validation("kernel_name: must not be empty"));
    }
    let request_uuid = match (submission.request_uuid, kind) {
        (Some(uuid), _) => uuid,
        (None, KernelKind::FaaS) => return Err(ApiError::validation("request_uuid: missing")),
        // The original keyed Serverless kernel requests by the input bucket.
        (None, KernelKind::Kernel) => match submission.data_description.get("bucket_id") {
            Some(serde_json::Value::String(bucket)) => Uuid::parse_str(bucket).map_err(|_| {
                ApiError::validation(
                    "data_description.bucket_id: not a uuid (or give request_uuid)",
                )
            })?,
            _ => Uuid::new_v4(),
        },
    };
    let request = KernelRequest::submitted(kind, request_uuid, submission);
    let revision = store::create(
        &state.store.kernels,
        &request_uuid.to_string(),
        &request,
        WHAT,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(KernelWritten {
            request_uuid,
            uuid: request_uuid,
            revision,
        }),
    )
        .into_response())
}

/// Request the FaaS-like execution of a kernel.
#[utoipa::path(post, path = "/faas", tag = "Kernels", request_body = KernelSubmission,
    responses((status = 201, body = KernelWritten), (status = 400, body = serrano_service::ErrorBody),
        (status = 409, body = serrano_service::ErrorBody)))]
pub async fn create_faas(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<KernelSubmission>,
) -> Result<Response, ApiError> {
    submit(&state, KernelKind::FaaS, body).await
}

/// Request the Serverless-like execution of a kernel.
#[utoipa::path(post, path = "/kernel", tag = "Kernels", request_body = KernelSubmission,
    responses((status = 201, body = KernelWritten), (status = 400, body = serrano_service::ErrorBody)))]
pub async fn create_kernel(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<KernelSubmission>,
) -> Result<Response, ApiError> {
    submit(&state, KernelKind::Kernel, body).await
}

/// The request uuids of every FaaS execution.
#[utoipa::path(get, path = "/faas", tag = "Kernels", responses((status = 200, body = FaasList)))]
pub async fn list_faas(State(state): State<AppState>) -> Result<Response, ApiError> {
    let (requests, revision) = store::list_with_revision(&state.store.kernels, "").await?;
    let faas = requests
        .into_iter()
        .filter(|r| r.value.kind == KernelKind::FaaS)
        .map(|r| r.value.request_uuid)
        .collect();
    Ok(with_list_revision(revision, FaasList { faas }))
}

/// Every kernel request (FaaS and Serverless) with its full state.
#[utoipa::path(get, path = "/kernel", tag = "Kernels", responses((status = 200, body = KernelList)))]
pub async fn list_kernels(State(state): State<AppState>) -> Result<Response, ApiError> {
    let (requests, revision) = store::list_with_revision(&state.store.kernels, "").await?;
    Ok(with_list_revision(
        revision,
        KernelList {
            kernels: requests.into_iter().map(|r| r.value).collect(),
        },
    ))
}

/// Details of a kernel execution.
#[utoipa::path(get, path = "/faas/{uuid}", tag = "Kernels", params(("uuid" = Uuid, Path)),
    responses((status = 200, body = KernelDetails), (status = 404, body = serrano_service::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(uuid): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let found = store::get_or_404(&state.store.kernels, &uuid.to_string(), WHAT).await?;
    let request = found.value;
    let mut cluster_uuid = None;
    let mut bundle_logs = Vec::new();
    if let Some(assignment_uuid) = request.assignment_uuid {
        let assignments = state.store.assignments.list().await.map_err(store_error)?;
        if let Some(assignment) = assignments
            .into_iter()
            .find(|a| a.value.uuid == assignment_uuid)
        {
            cluster_uuid = Some(assignment.value.cluster_uuid);
            for bundle in &assignment.value.bundles {
                if let Some(b) = state
                    .store
                    .bundles
                    .get(&bundle.to_string())
                    .await
                    .map_err(store_error)?
                {
                    bundle_logs.extend(b.value.logs);
                }
            }
        }
    }
    Ok(with_etag(
        found.mod_revision,
        KernelDetails {
            request_uuid: request.request_uuid,
            kind: request.kind,
            kernel_name: request.kernel_name,
            request_logs: request.logs,
            bundle_logs,
            cluster_uuid,
            status: request.status,
            status_str: request.status.name().to_owned(),
            created_at: request.created_at,
            updated_at: request.updated_at,
        },
    ))
}

/// Cancels a kernel request: removes its assignment and bundles, then the request.
#[utoipa::path(delete, path = "/faas/{uuid}", tag = "Kernels", params(("uuid" = Uuid, Path)),
    responses((status = 200, body = KernelWritten), (status = 404, body = serrano_service::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    ApiPath(uuid): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let id = uuid.to_string();
    let found = store::get_or_404(&state.store.kernels, &id, WHAT).await?;
    // Its assignment goes first, so the driver stops the execution.
    super::deployments::remove_dependents(&state, uuid).await?;
    store::delete_or_404(&state.store.kernels, &id, WHAT).await?;
    Ok(axum::Json(KernelWritten {
        request_uuid: uuid,
        uuid,
        revision: found.mod_revision,
    })
    .into_response())
}

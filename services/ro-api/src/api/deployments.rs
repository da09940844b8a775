//! `/deployments`: cloud-native application deployments (D6.7 4.2.3.2.3, Figure 14).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serrano_model::deployment::DeploymentUpdate;
use serrano_model::{Deployment, DeploymentRequest, DeploymentStatus, LogEntry, etcd_keys};
use serrano_service::{ApiError, ApiJson, ApiPath, ApiQuery};
use utoipa::ToSchema;
use uuid::Uuid;

use super::common::{
    WatchParams, expected_revision, watch_response, with_etag, with_list_revision,
};
use crate::AppState;
use serrano_datastore::TypedCas;

use crate::store::{self, store_error};
use crate::validate;

const WHAT: &str = "deployment";

/// The application owner's token is handed to drivers through the datastore, never echoed by
/// the API.
fn redacted(mut deployment: Deployment) -> Deployment {
    deployment.user_token.clear();
    deployment
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeploymentWritten {
    pub deployment_uuid: Uuid,
    /// The object's revision after the write (use it in `If-Match` for the next update).
    pub revision: i64,
}

/// `GET /deployments` and `GET /deployments/{uuid}` (a list of one, as the original answered).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeploymentList {
    pub deployments: Vec<Deployment>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeploymentLogView {
    pub deployment_uuid: Uuid,
    pub name: String,
    pub status: DeploymentStatus,
    pub logs: Vec<LogEntry>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeploymentLogs {
    pub deployments: DeploymentLogView,
}

/// Request the deployment of a new application.
#[utoipa::path(post, path = "/deployments", tag = "Deployments", request_body = DeploymentRequest,
    responses((status = 201, body = DeploymentWritten), (status = 400, body = serrano_service::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<DeploymentRequest>,
) -> Result<Response, ApiError> {
    validate::kubernetes_yaml(&request.deployment_description)?;
    let uuid = Uuid::new_v4();
    let deployment = Deployment::submitted(uuid, request);
    let revision = store::create(
        &state.store.deployments,
        &uuid.to_string(),
        &deployment,
        WHAT,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(DeploymentWritten {
            deployment_uuid: uuid,
            revision,
        }),
    )
        .into_response())
}

/// Request the re-optimisation of a deployment: its description or objectives change and the
/// manager schedules it again (status back to SUBMITTED).
#[utoipa::path(put, path = "/deployments", tag = "Deployments", request_body = DeploymentUpdate,
    params(("If-Match" = Option<String>, Header, description = "revision the update is based on")),
    responses((status = 200, body = DeploymentWritten), (status = 404, body = serrano_service::ErrorBody),
        (status = 409, body = serrano_service::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<DeploymentUpdate>,
) -> Result<Response, ApiError> {
    let expected = expected_revision(&headers, request.revision)?;
    if let Some(description) = &request.deployment_description {
        validate::kubernetes_yaml(description)?;
    }
    let uuid = request.deployment_uuid;
    let (_, revision) = store::update(
        &state.store.deployments,
        &uuid.to_string(),
        expected,
        WHAT,
        |d| {
            if d.status == DeploymentStatus::Terminated {
                return Err(ApiError::conflict(format!(
                    "deployment {uuid} is terminated"
                )));
            }
            if let Some(name) = &request.name {
                d.name.clone_from(name);
            }
            if let Some(token) = &request.user_token {
                d.user_token.clone_from(token);
            }
            if let Some(description) = &request.deployment_description {
                d.deployment_description = description.replace('\r', "");
            }
            if let Some(objectives) = &request.deployment_objectives {
                d.deployment_objectives.clone_from(objectives);
            }
            d.status = DeploymentStatus::Submitted;
            d.updated_by = serrano_model::UpdatedBy::Api;
            d.push_log("Deployment re-optimization requested.");
            Ok(())
        },
    )
    .await?;
    Ok(axum::Json(DeploymentWritten {
        deployment_uuid: uuid,
        revision,
    })
    .into_response())
}

/// Get the list of all current application deployments.
#[utoipa::path(get, path = "/deployments", tag = "Deployments",
    responses((status = 200, body = DeploymentList)))]
pub async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let (deployments, revision) = store::list_with_revision(&state.store.deployments, "").await?;
    Ok(with_list_revision(
        revision,
        DeploymentList {
            deployments: deployments.into_iter().map(|d| redacted(d.value)).collect(),
        },
    ))
}

/// Get information for a specific application deployment (`ETag` = its revision).
#[utoipa::path(get, path = "/deployments/{uuid}", tag = "Deployments",
    params(("uuid" = Uuid, Path)),
    responses((status = 200, body = DeploymentList), (status = 404, body = serrano_service::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(uuid): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let found = store::get_or_404(&state.store.deployments, &uuid.to_string(), WHAT).await?;
    Ok(with_etag(
        found.mod_revision,
        DeploymentList {
            deployments: vec![redacted(found.value)],
        },
    ))
}

/// Get the status and event log of a deployment.
#[utoipa::path(get, path = "/deployments/logs/{uuid}", tag = "Deployments",
    params(("uuid" = Uuid, Path)),
    responses((status = 200, body = DeploymentLogs), (status = 404, body = serrano_service::ErrorBody)))]
pub async fn logs(
    State(state): State<AppState>,
    ApiPath(uuid): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let d = store::get_or_404(&state.store.deployments, &uuid.to_string(), WHAT)
        .await?
        .value;
    Ok(axum::Json(DeploymentLogs {
        deployments: DeploymentLogView {
            deployment_uuid: d.deployment_uuid,
            name: d.name,
            status: d.status,
            logs: d.logs,
            created_at: d.created_at,
            updated_at: d.updated_at,
        },
    })
    .into_response())
}

/// Terminate a deployment, in an order that a failure or a concurrent writer cannot leave
/// half done: the deployment is first marked TERMINATED (at the revision read), then its
/// assignments are removed (each cluster's driver sees the delete on its prefix and tears its part
/// down), then its bundles and monitoring entry, and last the deployment itself, only if nobody
/// wrote it since it was marked. Otherwise the cascade runs again; a retried DELETE finishes it.
#[utoipa::path(delete, path = "/deployments/{uuid}", tag = "Deployments",
    params(("uuid" = Uuid, Path)),
    responses((status = 200, body = DeploymentWritten), (status = 404, body = serrano_service::ErrorBody),
        (status = 503, body = serrano_service::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    ApiPath(uuid): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let id = uuid.to_string();
    let deployments = &state.store.deployments;
    for _ in 0..store::MAX_UPDATE_ATTEMPTS {
        let found = store::get_or_404(deployments, &id, WHAT).await?;
        let marked = if found.value.status == DeploymentStatus::Terminated {
            found.mod_revision
        } else {
            let mut terminated = found.value.clone();
            terminated.status = DeploymentStatus::Terminated;
            terminated.updated_by = serrano_model::UpdatedBy::Api;
            terminated.push_log("Deployment termination requested.");
            match deployments
                .update(&id, &terminated, found.mod_revision)
                .await
                .map_err(store_error)?
            {
                TypedCas::Written(revision) => revision,
                TypedCas::Conflict(_) => continue,
            }
        };
        remove_dependents(&state, uuid).await?;
        match deployments
            .compare_and_delete(&id, marked)
            .await
            .map_err(store_error)?
        {
            TypedCas::Written(_) | TypedCas::Conflict(None) => {
                return Ok(axum::Json(DeploymentWritten {
                    deployment_uuid: uuid,
                    revision: marked,
                })
                .into_response());
            }
            // Written meanwhile (e.g. the manager added an assignment): clean up again.
            TypedCas::Conflict(Some(_)) => continue,
        }
    }
    Err(ApiError::conflict(format!(
        "deployment {uuid} keeps changing; retry the delete"
    )))
}

/// Removes the assignments of a deployment or kernel request (first: they are what drivers act
/// on), their bundles and the monitoring entry. Every step is idempotent.
pub(crate) async fn remove_dependents(state: &AppState, uuid: Uuid) -> Result<(), ApiError> {
    let assignments = state.store.assignments.list().await.map_err(store_error)?;
    for assignment in assignments
        .iter()
        .filter(|a| a.value.deployment_uuid == uuid)
    {
        let a = &assignment.value;
        state
            .store
            .assignments
            .delete(&etcd_keys::assignment_id(&a.cluster_uuid, &a.uuid))
            .await
            .map_err(store_error)?;
        for bundle in &a.bundles {
            state
                .store
                .bundles
                .delete(&bundle.to_string())
                .await
                .map_err(store_error)?;
        }
    }
    state
        .store
        .monitoring
        .delete(&uuid.to_string())
        .await
        .map_err(store_error)?;
    Ok(())
}

/// Stream changes of deployment objects (NDJSON, one `WatchLine` per change).
#[utoipa::path(get, path = "/deployments/watch", tag = "Deployments", params(WatchParams),
    responses((status = 200, content_type = "application/x-ndjson", body = super::common::WatchLine),
        (status = 410, body = serrano_service::ErrorBody)))]
pub async fn watch(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<WatchParams>,
) -> Result<Response, ApiError> {
    watch_response(
        &state.store.kv,
        etcd_keys::DEPLOYMENTS.to_owned(),
        params.revision,
        |_| true,
    )
    .await
}

/// One microservice of a deployment: a Kubernetes `Deployment` document of one of its bundles.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ServiceView {
    pub cluster_uuid: Uuid,
    pub name: String,
    pub status: serrano_model::BundleStatus,
    pub status_str: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeploymentServices {
    pub deployment_uuid: Uuid,
    pub name: String,
    pub status: DeploymentStatus,
    pub status_str: String,
    pub services: Vec<ServiceView>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The microservices of a deployment and where each runs (one per Kubernetes `Deployment`
/// document in the bundles of its assignments).
#[utoipa::path(get, path = "/deployments/services/{uuid}", tag = "Deployments",
    params(("uuid" = Uuid, Path)),
    responses((status = 200, body = DeploymentServices), (status = 404, body = serrano_service::ErrorBody)))]
pub async fn services(
    State(state): State<AppState>,
    ApiPath(uuid): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let d = store::get_or_404(&state.store.deployments, &uuid.to_string(), WHAT)
        .await?
        .value;
    let assignments = state.store.assignments.list().await.map_err(store_error)?;
    let mut services = Vec::new();
    for assignment in assignments
        .into_iter()
        .map(|a| a.value)
        .filter(|a| a.deployment_uuid == uuid)
    {
        for bundle_uuid in &assignment.bundles {
            let Some(bundle) = state
                .store
                .bundles
                .get(&bundle_uuid.to_string())
                .await
                .map_err(store_error)?
            else {
                continue;
            };
            let documents = bundle
                .value
                .description
                .as_array()
                .cloned()
                .unwrap_or_default();
            for document in documents.iter().filter(|doc| doc["kind"] == "Deployment") {
                services.push(ServiceView {
                    cluster_uuid: assignment.cluster_uuid,
                    name: document["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    status: bundle.value.status,
                    status_str: bundle.value.status.name().to_owned(),
                });
            }
        }
    }
    Ok(axum::Json(DeploymentServices {
        deployment_uuid: d.deployment_uuid,
        name: d.name,
        status: d.status,
        status_str: d.status.name().to_owned(),
        services,
        created_at: d.created_at,
        updated_at: d.updated_at,
    })
    .into_response())
}

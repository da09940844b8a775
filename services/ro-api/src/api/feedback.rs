//! `POST /logs`: status reports of the Orchestration Drivers (originals.md 1.2 "Driver
//! feedback"). Each report sets an object's status and appends its event, written with
//! `updated_by = Orchestration.Driver`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serrano_model::{
    AssignmentKind, AssignmentStatus, BundleStatus, DeploymentStatus, KernelStatus, LogEntry,
    UpdatedBy, etcd_keys, unix_now,
};
use serrano_service::{ApiError, ApiJson};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::feedback;
use crate::store::{self, store_error};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ReportKind {
    Deployment,
    Assignment,
    Bundle,
    FaaS,
    Kernel,
}

/// One status report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusReport {
    pub uuid: Uuid,
    pub kind: ReportKind,
    /// Required for Assignment reports (it is part of the assignment's key).
    #[serde(default)]
    pub cluster_uuid: Option<Uuid>,
    /// The status integer of `kind`.
    pub status: i64,
    pub event: String,
    /// Unix seconds; now when left out.
    #[serde(default)]
    pub timestamp: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusReports {
    pub logs: Vec<StatusReport>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReportsApplied {
    pub applied: usize,
}

/// A report checked against the status integers of its kind.
enum Checked {
    Deployment(DeploymentStatus),
    Assignment(Uuid, AssignmentStatus),
    Bundle(BundleStatus),
    Kernel(KernelStatus),
}

fn check(index: usize, report: &StatusReport) -> Result<Checked, ApiError> {
    let bad = |kind: &str| {
        ApiError::validation(format!(
            "logs[{index}].status: {} is not a {kind} status",
            report.status
        ))
    };
    Ok(match report.kind {
        ReportKind::Deployment => Checked::Deployment(
            DeploymentStatus::from_int(report.status).ok_or_else(|| bad("Deployment"))?,
        ),
        ReportKind::Assignment => {
            let cluster = report.cluster_uuid.ok_or_else(|| {
                ApiError::validation(format!(
                    "logs[{index}].cluster_uuid: required for Assignment"
                ))
            })?;
            Checked::Assignment(
                cluster,
                AssignmentStatus::from_int(report.status).ok_or_else(|| bad("Assignment"))?,
            )
        }
        ReportKind::Bundle => {
            Checked::Bundle(BundleStatus::from_int(report.status).ok_or_else(|| bad("Bundle"))?)
        }
        ReportKind::FaaS | ReportKind::Kernel => {
            Checked::Kernel(KernelStatus::from_int(report.status).ok_or_else(|| bad("Kernel"))?)
        }
    })
}

/// Apply driver status reports. Every report is checked first (status integers, objects
/// exist), so an invalid batch changes nothing. Each report is then applied atomically to its
/// object; an object deleted in between is skipped (`applied` counts the rest), and a datastore
/// failure midway answers 503 with the earlier reports applied, so a driver resends the batch.
#[utoipa::path(post, path = "/logs", tag = "Driver feedback", request_body = StatusReports,
    responses((status = 201, body = ReportsApplied), (status = 400, body = serrano_service::ErrorBody),
        (status = 404, body = serrano_service::ErrorBody)))]
pub async fn post_logs(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<StatusReports>,
) -> Result<Response, ApiError> {
    let mut checked = Vec::with_capacity(body.logs.len());
    for (index, report) in body.logs.iter().enumerate() {
        let status = check(index, report)?;
        let id = match &status {
            Checked::Assignment(cluster, _) => etcd_keys::assignment_id(cluster, &report.uuid),
            _ => report.uuid.to_string(),
        };
        let exists = match &status {
            Checked::Deployment(_) => state
                .store
                .deployments
                .get(&id)
                .await
                .map_err(store_error)?
                .is_some(),
            Checked::Assignment(..) => state
                .store
                .assignments
                .get(&id)
                .await
                .map_err(store_error)?
                .is_some(),
            Checked::Bundle(_) => state
                .store
                .bundles
                .get(&id)
                .await
                .map_err(store_error)?
                .is_some(),
            Checked::Kernel(_) => state
                .store
                .kernels
                .get(&id)
                .await
                .map_err(store_error)?
                .is_some(),
        };
        if !exists {
            return Err(ApiError::not_found(format!(
                "logs[{index}]: {:?} {} not found",
                report.kind, report.uuid
            )));
        }
        checked.push((id, status));
    }
    let mut applied = 0;
    for ((id, status), report) in checked.into_iter().zip(&body.logs) {
        let entry = LogEntry {
            timestamp: report.timestamp.unwrap_or_else(unix_now),
            event: report.event.clone(),
        };
        match apply(&state, &id, status, entry).await {
            Ok(()) => applied += 1,
            Err(err) if err.status == StatusCode::NOT_FOUND => {
                tracing::info!(key = %id, "status report for an object deleted meanwhile: skipped");
            }
            Err(err) => return Err(err),
        }
    }
    Ok((StatusCode::CREATED, axum::Json(ReportsApplied { applied })).into_response())
}

async fn apply(
    state: &AppState,
    id: &str,
    status: Checked,
    entry: LogEntry,
) -> Result<(), ApiError> {
    let now = unix_now();
    match status {
        Checked::Deployment(status) => {
            store::update(&state.store.deployments, id, None, "deployment", |d| {
                d.status = status;
                d.updated_by = UpdatedBy::Driver;
                d.updated_at = now;
                d.logs.push(entry.clone());
                Ok(())
            })
            .await?;
        }
        Checked::Assignment(_, status) => {
            let (assignment, _) =
                store::update(&state.store.assignments, id, None, "assignment", |a| {
                    a.status = status;
                    a.updated_by = UpdatedBy::Driver;
                    a.updated_at = now;
                    a.logs.push(entry.clone());
                    Ok(())
                })
                .await?;
            if assignment.kind == AssignmentKind::Deployment {
                roll_up(state, assignment.deployment_uuid, assignment.uuid, status).await?;
            }
        }
        Checked::Bundle(status) => {
            store::update(&state.store.bundles, id, None, "bundle", |b| {
                b.status = status;
                b.updated_by = UpdatedBy::Driver;
                b.updated_at = now;
                b.logs.push(entry.clone());
                Ok(())
            })
            .await?;
        }
        Checked::Kernel(status) => {
            store::update(&state.store.kernels, id, None, "kernel request", |k| {
                k.status = status;
                k.updated_by = UpdatedBy::Driver;
                k.updated_at = now;
                k.logs.push(entry.clone());
                Ok(())
            })
            .await?;
        }
    }
    Ok(())
}

/// Records an assignment's new status on its deployment and moves the deployment's status.
async fn roll_up(
    state: &AppState,
    deployment: Uuid,
    assignment: Uuid,
    status: AssignmentStatus,
) -> Result<(), ApiError> {
    let result = store::update(
        &state.store.deployments,
        &deployment.to_string(),
        None,
        "deployment",
        |d| {
            let Some(index) = d.assignments.iter().position(|a| *a == assignment) else {
                return Ok(());
            };
            if d.assignments_status.len() < d.assignments.len() {
                d.assignments_status
                    .resize(d.assignments.len(), AssignmentStatus::Unknown);
            }
            d.assignments_status[index] = status;
            if let Some(next) = feedback::deployment_status(&d.assignments_status)
                && next != d.status
            {
                d.status = next;
                d.push_log(format!(
                    "Deployment {}.",
                    next.name().to_lowercase().replace('_', " ")
                ));
            }
            d.updated_by = UpdatedBy::Driver;
            Ok(())
        },
    )
    .await;
    match result {
        // The deployment may have been terminated meanwhile: nothing to roll up into.
        Err(err) if err.status == StatusCode::NOT_FOUND => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Body of `PUT /monitoring`: the Kubernetes identifiers of what a driver deployed, which the
/// telemetry probes use to find the deployment's pods.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitoringUpdate {
    pub deployment_uuid: Uuid,
    pub cluster_uuid: Uuid,
    pub assignment_uuid: Uuid,
    /// `{k8s_deployment_name, k8s_deployment_namespace, k8s_deployment_uuid, assignment_uuid, bundle_uuid}` each.
    #[schema(value_type = Vec<Object>)]
    pub k8s_params: Vec<serrano_model::JsonObject>,
}

/// Record what a driver deployed for a deployment on its cluster, at
/// `/serrano/orchestrator/monitoring/{deployment_uuid}` as `{clusters: [...], <cluster_uuid>: [...]}`.
#[utoipa::path(put, path = "/monitoring", tag = "Driver feedback", request_body = MonitoringUpdate,
    responses((status = 201, body = serde_json::Value), (status = 404, body = serrano_service::ErrorBody)))]
pub async fn put_monitoring(
    State(state): State<AppState>,
    ApiJson(update): ApiJson<MonitoringUpdate>,
) -> Result<Response, ApiError> {
    let id = update.deployment_uuid.to_string();
    store::get_or_404(&state.store.deployments, &id, "deployment").await?;
    let cluster = update.cluster_uuid.to_string();
    let params = serde_json::Value::Array(
        update
            .k8s_params
            .iter()
            .cloned()
            .map(serde_json::Value::Object)
            .collect(),
    );
    let apply = |monitoring: &mut serde_json::Value| -> Result<(), ApiError> {
        if !monitoring.is_object() {
            *monitoring = serde_json::json!({"clusters": []});
        }
        let clusters = monitoring["clusters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !clusters
            .iter()
            .any(|c| c.as_str() == Some(cluster.as_str()))
        {
            let mut clusters = clusters;
            clusters.push(serde_json::Value::String(cluster.clone()));
            monitoring["clusters"] = serde_json::Value::Array(clusters);
        }
        monitoring[cluster.as_str()] = params.clone();
        Ok(())
    };
    let (monitoring, _) = store::upsert(
        &state.store.monitoring,
        &id,
        || serde_json::json!({"clusters": []}),
        "monitoring entry",
        apply,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(monitoring)).into_response())
}

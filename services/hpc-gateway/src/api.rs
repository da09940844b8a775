//! REST routes of the HPC gateway (originals.md 6.1), at the root as the original served them.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serrano_datastore::{StoreError, TypedCas};
use serrano_service::{ApiError, ApiJson, ApiPath, ApiQuery};
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use crate::infrastructure::{Infrastructure, InfrastructureSummary, InfrastructureTelemetry};
use crate::jobs::{self, Job, JobRequest};
use crate::scheduler::script::ParamSpec;
use crate::scheduler::{JobState, scheduler_for, shell_quote};
use crate::ssh::SshError;
use crate::transfers::{
    self, DataRequest, S3DataRequest, S3ResultRequest, Transfer, TransferKind, TransferStatus,
};
use crate::{Gateway, unix_now};

type AppState = Arc<Gateway>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/services", get(list_services))
        .route(
            "/infrastructure",
            get(list_infrastructures).post(register_infrastructure),
        )
        .route(
            "/infrastructure/{name}",
            get(get_infrastructure).delete(delete_infrastructure),
        )
        .route("/infrastructure/{name}/telemetry", get(telemetry))
        .route("/job", get(list_jobs).post(submit_job))
        .route("/job/{id}", get(get_job).delete(cancel_job))
        .route("/job/{id}/output", get(job_output))
        .route("/data", post(start_data))
        .route("/data/{id}", get(get_data))
        .route("/s3_data", post(start_s3_data))
        .route("/s3_data/{id}", get(get_s3_data))
        .route("/s3_result", post(start_s3_result))
        .route("/s3_result/{id}", get(get_s3_result))
}

fn store_error(err: StoreError) -> ApiError {
    match err {
        StoreError::Unavailable(message) => {
            ApiError::unavailable(format!("datastore unavailable: {message}"))
        }
        other => ApiError::internal(other.to_string()),
    }
}

/// The cluster could not be reached or did not answer: the gateway's upstream failed.
fn ssh_error(err: SshError) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "cluster_unreachable",
        err.to_string(),
    )
}

async fn infrastructure(state: &AppState, name: &str) -> Result<Infrastructure, ApiError> {
    state
        .infrastructures
        .get(name)
        .await
        .map_err(store_error)?
        .map(|v| v.value)
        .ok_or_else(|| ApiError::not_found(format!("infrastructure {name} not found")))
}

/// One entry of `GET /services`: the original's `{name}` plus what a caller needs to use it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ServiceInfo {
    pub name: String,
    pub description: String,
    #[schema(value_type = Object)]
    pub params: std::collections::BTreeMap<String, ParamSpec>,
}

/// The services (job templates) jobs can be submitted for.
#[utoipa::path(get, path = "/services", tag = "Services", responses((status = 200, body = [ServiceInfo])))]
async fn list_services(State(state): State<AppState>) -> Response {
    let services: Vec<ServiceInfo> = state
        .catalogue
        .iter()
        .map(|t| ServiceInfo {
            name: t.name.clone(),
            description: t.description.clone(),
            params: t.params.clone(),
        })
        .collect();
    axum::Json(services).into_response()
}

/// Register an infrastructure; the gateway connects once to check it (host key, key, login).
#[utoipa::path(post, path = "/infrastructure", tag = "Infrastructure", request_body = Infrastructure,
    responses((status = 201, body = InfrastructureSummary), (status = 400, body = serrano_service::ErrorBody),
        (status = 409, body = serrano_service::ErrorBody), (status = 502, body = serrano_service::ErrorBody)))]
async fn register_infrastructure(
    State(state): State<AppState>,
    ApiJson(infra): ApiJson<Infrastructure>,
) -> Result<Response, ApiError> {
    infra.validate().map_err(ApiError::validation)?;
    if state
        .infrastructures
        .get(&infra.name)
        .await
        .map_err(store_error)?
        .is_some()
    {
        return Err(ApiError::conflict(format!(
            "infrastructure {} already exists",
            infra.name
        )));
    }
    // Refuse what cannot work (wrong host key, bad key, unknown user) before storing it.
    let probe = state.ssh.run(&infra, "true", None).await;
    if let Err(err) = probe {
        state.ssh.forget(&infra.name).await;
        return Err(ssh_error(err));
    }
    match state
        .infrastructures
        .create(&infra.name, &infra)
        .await
        .map_err(store_error)?
    {
        TypedCas::Written(_) => {
            Ok((StatusCode::CREATED, axum::Json(infra.summary())).into_response())
        }
        TypedCas::Conflict(_) => Err(ApiError::conflict(format!(
            "infrastructure {} already exists",
            infra.name
        ))),
    }
}

/// Registered infrastructures.
#[utoipa::path(get, path = "/infrastructure", tag = "Infrastructure", responses((status = 200, body = [InfrastructureSummary])))]
async fn list_infrastructures(State(state): State<AppState>) -> Result<Response, ApiError> {
    let list = state.infrastructures.list().await.map_err(store_error)?;
    Ok(axum::Json(
        list.into_iter()
            .map(|i| i.value.summary())
            .collect::<Vec<_>>(),
    )
    .into_response())
}

#[utoipa::path(get, path = "/infrastructure/{name}", tag = "Infrastructure", params(("name" = String, Path)),
    responses((status = 200, body = InfrastructureSummary), (status = 404, body = serrano_service::ErrorBody)))]
async fn get_infrastructure(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    Ok(axum::Json(infrastructure(&state, &name).await?.summary()).into_response())
}

/// Remove an infrastructure (its jobs keep their records).
#[utoipa::path(delete, path = "/infrastructure/{name}", tag = "Infrastructure", params(("name" = String, Path)),
    responses((status = 200, body = InfrastructureSummary), (status = 404, body = serrano_service::ErrorBody)))]
async fn delete_infrastructure(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    let removed = state
        .infrastructures
        .delete(&name)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found(format!("infrastructure {name} not found")))?;
    state.ssh.forget(&name).await;
    Ok(axum::Json(removed.value.summary()).into_response())
}

/// Partitions with their nodes, CPUs and running/queued jobs, read from the scheduler now.
#[utoipa::path(get, path = "/infrastructure/{name}/telemetry", tag = "Infrastructure", params(("name" = String, Path)),
    responses((status = 200, body = InfrastructureTelemetry), (status = 404, body = serrano_service::ErrorBody),
        (status = 502, body = serrano_service::ErrorBody)))]
async fn telemetry(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    let infra = infrastructure(&state, &name).await?;
    let scheduler = scheduler_for(infra.scheduler);
    let mut outputs = Vec::new();
    for command in scheduler.telemetry_commands() {
        let output = state
            .ssh
            .run(&infra, &command, None)
            .await
            .map_err(ssh_error)?;
        outputs.push(output.stdout);
    }
    let partitions = scheduler.parse_telemetry(&outputs).map_err(|err| {
        ApiError::new(StatusCode::BAD_GATEWAY, "scheduler_output", err.to_string())
    })?;
    let summary = infra.summary();
    Ok(axum::Json(InfrastructureTelemetry {
        name: summary.name,
        host: summary.host,
        hostname: summary.hostname,
        scheduler: summary.scheduler,
        partitions,
    })
    .into_response())
}

/// Submit a job: the original's `{services, infrastructure, params}`, or `script`, or
/// `script_path`, with optional `resources`.
#[utoipa::path(post, path = "/job", tag = "Jobs", request_body = JobRequest,
    responses((status = 201, body = Job), (status = 400, body = serrano_service::ErrorBody),
        (status = 404, body = serrano_service::ErrorBody), (status = 422, body = serrano_service::ErrorBody),
        (status = 502, body = serrano_service::ErrorBody)))]
async fn submit_job(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<JobRequest>,
) -> Result<Response, ApiError> {
    let infra = infrastructure(&state, &request.infrastructure).await?;
    let scheduler = scheduler_for(infra.scheduler);
    let id = Uuid::new_v4();
    let submission = jobs::prepare(
        id,
        &request,
        &infra.work_dir,
        scheduler.as_ref(),
        &state.catalogue,
    )
    .map_err(ApiError::validation)?;
    let output = state
        .ssh
        .run(
            &infra,
            &submission.command,
            Some(submission.script.as_bytes()),
        )
        .await
        .map_err(ssh_error)?;
    if !output.success() {
        return Err(ApiError::unprocessable(format!(
            "the scheduler refused the job: {}",
            output.stderr.trim()
        )));
    }
    let scheduler_id = scheduler.parse_submit(&output.stdout).map_err(|err| {
        ApiError::new(StatusCode::BAD_GATEWAY, "scheduler_output", err.to_string())
    })?;
    let now = unix_now();
    let job = Job {
        id,
        infrastructure: infra.name.clone(),
        scheduler_id,
        status: JobState::Queued,
        raw_state: String::new(),
        exit_code: None,
        signal: None,
        reason: None,
        services: submission.services,
        job_dir: submission.job_dir,
        stdout_path: submission.stdout_path,
        stderr_path: submission.stderr_path,
        submitted_at: now,
        started_at: None,
        ended_at: None,
        updated_at: now,
        cancel_requested: false,
        finished: false,
    };
    state
        .jobs
        .put(&id.to_string(), &job)
        .await
        .map_err(store_error)?;
    tracing::info!(job = %id, scheduler_id = %job.scheduler_id, infrastructure = %job.infrastructure, "job submitted");
    Ok((StatusCode::CREATED, axum::Json(job)).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct JobFilter {
    infrastructure: Option<String>,
    status: Option<JobState>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
struct JobList {
    jobs: Vec<Job>,
}

/// Jobs, newest first, optionally of one infrastructure and/or in one state.
#[utoipa::path(get, path = "/job", tag = "Jobs", params(JobFilter), responses((status = 200, body = JobList)))]
async fn list_jobs(
    State(state): State<AppState>,
    ApiQuery(filter): ApiQuery<JobFilter>,
) -> Result<Response, ApiError> {
    let mut jobs: Vec<Job> = state
        .jobs
        .list()
        .await
        .map_err(store_error)?
        .into_iter()
        .map(|j| j.value)
        .filter(|j| {
            filter
                .infrastructure
                .as_ref()
                .is_none_or(|i| &j.infrastructure == i)
        })
        .filter(|j| filter.status.is_none_or(|s| j.status == s))
        .collect();
    jobs.sort_by_key(|j| std::cmp::Reverse(j.submitted_at));
    Ok(axum::Json(JobList { jobs }).into_response())
}

async fn job(state: &AppState, id: &Uuid) -> Result<Job, ApiError> {
    state
        .jobs
        .get(&id.to_string())
        .await
        .map_err(store_error)?
        .map(|v| v.value)
        .ok_or_else(|| ApiError::not_found(format!("job {id} not found")))
}

/// A job's state, scheduler id, exit code, reason, times and output paths.
#[utoipa::path(get, path = "/job/{id}", tag = "Jobs", params(("id" = Uuid, Path)),
    responses((status = 200, body = Job), (status = 404, body = serrano_service::ErrorBody)))]
async fn get_job(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    Ok(axum::Json(job(&state, &id).await?).into_response())
}

/// Cancel a job; its state becomes `cancelled` once the scheduler confirms (202).
#[utoipa::path(delete, path = "/job/{id}", tag = "Jobs", params(("id" = Uuid, Path)),
    responses((status = 202, body = Job), (status = 404, body = serrano_service::ErrorBody),
        (status = 409, body = serrano_service::ErrorBody), (status = 502, body = serrano_service::ErrorBody)))]
async fn cancel_job(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let current = job(&state, &id).await?;
    if !current.is_watched() {
        return Err(ApiError::conflict(format!(
            "job {id} already ended ({:?})",
            current.status
        )));
    }
    let infra = infrastructure(&state, &current.infrastructure).await?;
    let scheduler = scheduler_for(infra.scheduler);
    let output = state
        .ssh
        .run(
            &infra,
            &scheduler.cancel_command(&current.scheduler_id),
            None,
        )
        .await
        .map_err(ssh_error)?;
    if !output.success() {
        // The job may have ended between the check above and the cancel.
        let now = job(&state, &id).await?;
        if !now.is_watched() {
            return Err(ApiError::conflict(format!(
                "job {id} already ended ({:?})",
                now.status
            )));
        }
        return Err(ApiError::unprocessable(format!(
            "the scheduler refused the cancel: {}",
            output.stderr.trim()
        )));
    }
    let key = id.to_string();
    let mut marked = current;
    for _ in 0..4 {
        let Some(stored) = state.jobs.get(&key).await.map_err(store_error)? else {
            break;
        };
        marked = stored.value;
        marked.cancel_requested = true;
        marked.updated_at = unix_now();
        if let TypedCas::Written(_) = state
            .jobs
            .update(&key, &marked, stored.mod_revision)
            .await
            .map_err(store_error)?
        {
            break;
        }
    }
    Ok((StatusCode::ACCEPTED, axum::Json(marked)).into_response())
}

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum Stream {
    #[default]
    Stdout,
    Stderr,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct OutputQuery {
    /// `stdout` (default) or `stderr`.
    stream: Option<Stream>,
    /// Only the last N bytes (default and maximum 1 MiB).
    tail_bytes: Option<u64>,
}

const MAX_OUTPUT_BYTES: u64 = 1 << 20;

/// The job's standard output or error, as text.
#[utoipa::path(get, path = "/job/{id}/output", tag = "Jobs", params(("id" = Uuid, Path), OutputQuery),
    responses((status = 200, content_type = "text/plain", body = String), (status = 404, body = serrano_service::ErrorBody)))]
async fn job_output(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<OutputQuery>,
) -> Result<Response, ApiError> {
    let current = job(&state, &id).await?;
    let infra = infrastructure(&state, &current.infrastructure).await?;
    let path = match query.stream.unwrap_or_default() {
        Stream::Stdout => &current.stdout_path,
        Stream::Stderr => &current.stderr_path,
    };
    let bytes = query
        .tail_bytes
        .unwrap_or(MAX_OUTPUT_BYTES)
        .min(MAX_OUTPUT_BYTES);
    let command = format!("test -e {0} && tail -c {bytes} {0}", shell_quote(path));
    let output = state
        .ssh
        .run(&infra, &command, None)
        .await
        .map_err(ssh_error)?;
    if !output.success() {
        return Err(ApiError::not_found(format!(
            "job {id} has no output file yet"
        )));
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        output.stdout,
    )
        .into_response())
}

fn new_transfer(kind: TransferKind, infrastructure: &str, src: String, dst: String) -> Transfer {
    let now = unix_now();
    Transfer {
        id: Uuid::new_v4(),
        kind,
        infrastructure: infrastructure.to_owned(),
        src,
        dst,
        endpoint: None,
        bucket: None,
        object: None,
        region: None,
        status: TransferStatus::Transferring,
        reason: None,
        bytes_done: 0,
        bytes_total: None,
        sha256: None,
        created_at: now,
        updated_at: now,
    }
}

/// Stores the new transfer and answers 201 with it; `work` then runs in the background.
async fn accepted<F>(state: &AppState, transfer: Transfer, work: F) -> Result<Response, ApiError>
where
    F: Future<Output = ()> + Send + 'static,
{
    state
        .transfers
        .put(&transfer.id.to_string(), &transfer)
        .await
        .map_err(store_error)?;
    tokio::spawn(work);
    Ok((StatusCode::CREATED, axum::Json(transfer)).into_response())
}

async fn transfer(state: &AppState, id: &Uuid, kind: TransferKind) -> Result<Response, ApiError> {
    let found = state
        .transfers
        .get(&id.to_string())
        .await
        .map_err(store_error)?
        .map(|v| v.value)
        .filter(|t| t.kind == kind)
        .ok_or_else(|| ApiError::not_found(format!("transfer {id} not found")))?;
    Ok(axum::Json(found).into_response())
}

/// Copy an HTTP(S) URL to a path on the cluster, or a cluster path to an HTTP(S) URL with a PUT
/// (streamed over SSH, SHA-256 verified).
#[utoipa::path(post, path = "/data", tag = "Data", request_body = DataRequest,
    responses((status = 201, body = Transfer), (status = 400, body = serrano_service::ErrorBody),
        (status = 404, body = serrano_service::ErrorBody)))]
async fn start_data(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<DataRequest>,
) -> Result<Response, ApiError> {
    let is_url = |s: &str| s.starts_with("http://") || s.starts_with("https://");
    let inbound = match (is_url(&request.src), is_url(&request.dst)) {
        (true, false) => {
            transfers::check_cluster_path("dst", &request.dst).map_err(ApiError::validation)?;
            true
        }
        (false, true) => {
            transfers::check_cluster_path("src", &request.src).map_err(ApiError::validation)?;
            false
        }
        _ => {
            return Err(ApiError::validation(
                "one of src and dst is an http(s) URL and the other a path on the cluster \
                 (S3 objects go through /s3_data and /s3_result, which carry the endpoint and keys)",
            ));
        }
    };
    let infra = infrastructure(&state, &request.infrastructure).await?;
    let record = new_transfer(
        TransferKind::Data,
        &infra.name,
        request.src.clone(),
        request.dst.clone(),
    );
    if inbound {
        let work = transfers::run_data(state.clone(), infra, record.clone());
        accepted(&state, record, work).await
    } else {
        let work = transfers::run_data_out(state.clone(), infra, record.clone());
        accepted(&state, record, work).await
    }
}

#[utoipa::path(get, path = "/data/{id}", tag = "Data", params(("id" = Uuid, Path)),
    responses((status = 200, body = Transfer), (status = 404, body = serrano_service::ErrorBody)))]
async fn get_data(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    transfer(&state, &id, TransferKind::Data).await
}

/// Copy an S3 object to a path on the cluster (streamed over SSH, SHA-256 verified).
#[utoipa::path(post, path = "/s3_data", tag = "Data", request_body = S3DataRequest,
    responses((status = 201, body = Transfer), (status = 400, body = serrano_service::ErrorBody),
        (status = 404, body = serrano_service::ErrorBody)))]
async fn start_s3_data(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<S3DataRequest>,
) -> Result<Response, ApiError> {
    transfers::check_s3(&request.endpoint, &request.bucket, &request.object)
        .map_err(ApiError::validation)?;
    transfers::check_cluster_path("dst", &request.dst).map_err(ApiError::validation)?;
    let infra = infrastructure(&state, &request.infrastructure).await?;
    let mut record = new_transfer(
        TransferKind::S3Data,
        &infra.name,
        format!("s3://{}/{}", request.bucket, request.object),
        request.dst.clone(),
    );
    record.endpoint = Some(request.endpoint.clone());
    record.bucket = Some(request.bucket.clone());
    record.object = Some(request.object.clone());
    record.region = Some(request.region.clone());
    let work = transfers::run_s3_data(state.clone(), infra, request, record.clone());
    accepted(&state, record, work).await
}

#[utoipa::path(get, path = "/s3_data/{id}", tag = "Data", params(("id" = Uuid, Path)),
    responses((status = 200, body = Transfer), (status = 404, body = serrano_service::ErrorBody)))]
async fn get_s3_data(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    transfer(&state, &id, TransferKind::S3Data).await
}

/// Copy a file on the cluster to an S3 object (multipart above 16 MiB, SHA-256 verified).
#[utoipa::path(post, path = "/s3_result", tag = "Data", request_body = S3ResultRequest,
    responses((status = 201, body = Transfer), (status = 400, body = serrano_service::ErrorBody),
        (status = 404, body = serrano_service::ErrorBody)))]
async fn start_s3_result(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<S3ResultRequest>,
) -> Result<Response, ApiError> {
    transfers::check_s3(&request.endpoint, &request.bucket, &request.object)
        .map_err(ApiError::validation)?;
    transfers::check_cluster_path("src", &request.src).map_err(ApiError::validation)?;
    let infra = infrastructure(&state, &request.infrastructure).await?;
    let mut record = new_transfer(
        TransferKind::S3Result,
        &infra.name,
        request.src.clone(),
        format!("s3://{}/{}", request.bucket, request.object),
    );
    record.endpoint = Some(request.endpoint.clone());
    record.bucket = Some(request.bucket.clone());
    record.object = Some(request.object.clone());
    record.region = Some(request.region.clone());
    let work = transfers::run_s3_result(state.clone(), infra, request, record.clone());
    accepted(&state, record, work).await
}

#[utoipa::path(get, path = "/s3_result/{id}", tag = "Data", params(("id" = Uuid, Path)),
    responses((status = 200, body = Transfer), (status = 404, body = serrano_service::ErrorBody)))]
async fn get_s3_result(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    transfer(&state, &id, TransferKind::S3Result).await
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "SERRANO HPC Gateway",
        description = "HPC System Hardware Interface (D6.7 4.6): Slurm and PBS clusters over SSH. \
            Every route needs `Authorization: Bearer <token>`."
    ),
    paths(list_services, register_infrastructure, list_infrastructures, get_infrastructure, delete_infrastructure,
        telemetry, submit_job, list_jobs, get_job, cancel_job, job_output, start_data, get_data,
        start_s3_data, get_s3_data, start_s3_result, get_s3_result),
    tags((name = "Services"), (name = "Infrastructure"), (name = "Jobs"), (name = "Data"))
)]
struct ApiDoc;

/// The service's OpenAPI document (checked in at `openapi/hpc-gateway.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    serrano_service::with_bearer_security(&mut doc);
    doc
}

//! REST routes of the agent, prefix `/api/v1/telemetry/agent` (D6.7 Figure 25, originals.md 3.3).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use serrano_service::{ApiError, ApiJson, ApiPath, ApiQuery};
use utoipa::{IntoParams, OpenApi};

use crate::agent::{
    Agent, AgentError, MonitoredDeployment, ProbeEntity, ProbeRegistration, ProbeUpdate, Settings,
    SettingsPatch, SpecificMetrics,
};
use crate::streaming::StreamingRequest;

type AppState = Arc<Agent>;

pub const PREFIX: &str = "/api/v1/telemetry/agent";

pub fn routes() -> Router<AppState> {
    let api = Router::new()
        .route("/entities", get(entities))
        .route("/register", post(register))
        .route(
            "/register/{uuid}",
            get(get_probe).put(update_probe).delete(deregister),
        )
        .route("/monitor/{uuid}", get(monitor))
        .route("/inventory/{uuid}", get(inventory))
        .route("/deployments", get(list_deployments).post(add_deployment))
        .route(
            "/deployments/{uuid}",
            get(get_deployment).delete(remove_deployment),
        )
        .route("/deployment_specific_metrics", post(push_specific_metrics))
        .route("/streaming", get(list_streaming).post(streaming))
        .route(
            "/streaming/{session_id}",
            axum::routing::delete(stop_streaming),
        );
    // The bare prefix (no trailing slash) is the configuration resource too.
    Router::new()
        .route(
            PREFIX,
            get(get_settings).put(update_settings).post(update_settings),
        )
        .nest(PREFIX, api)
}

fn api_error(err: AgentError) -> ApiError {
    match err {
        AgentError::Invalid(message) => ApiError::validation(message),
        AgentError::NotFound(message) => ApiError::not_found(message),
        AgentError::Conflict(message) => ApiError::conflict(message),
        AgentError::Probe(message) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "probe_failed", message)
        }
        AgentError::ProbeTimeout(message) => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "probe_timeout", message)
        }
        AgentError::Docs(serrano_docstore::DocError::Invalid(message)) => {
            ApiError::validation(message)
        }
        AgentError::Docs(err) => ApiError::unavailable(err.to_string()),
        AgentError::Series(serrano_timeseries::TsError::Invalid(message)) => {
            ApiError::validation(message)
        }
        AgentError::Series(err) => ApiError::unavailable(err.to_string()),
    }
}

/// The agent's runtime configuration.
#[utoipa::path(get, path = "/api/v1/telemetry/agent", tag = "Configuration",
    responses((status = 200, body = Settings)))]
async fn get_settings(State(agent): State<AppState>) -> Response {
    let mut body = serde_json::to_value(agent.settings()).unwrap_or_default();
    body["agent_uuid"] = json!(agent.uuid);
    body["url"] = json!(agent.url);
    body["grpc_url"] = json!(agent.grpc_url);
    axum::Json(body).into_response()
}

/// Change the runtime configuration (D6.7 4.4.3.2: `{"data_retain_period": 180, "active_notifications": false}`).
#[utoipa::path(put, path = "/api/v1/telemetry/agent", tag = "Configuration", request_body = SettingsPatch,
    responses((status = 200, body = Settings), (status = 400, body = serrano_service::ErrorBody)))]
async fn update_settings(
    State(agent): State<AppState>,
    ApiJson(patch): ApiJson<SettingsPatch>,
) -> Result<Response, ApiError> {
    let settings = agent.update_settings(&patch).map_err(api_error)?;
    agent
        .notify_message(&format!(
            "telemetry agent {} configuration changed",
            agent.uuid
        ))
        .await;
    Ok(axum::Json(settings).into_response())
}

/// The agent and the probes registered with it.
#[utoipa::path(get, path = "/api/v1/telemetry/agent/entities", tag = "Probes",
    responses((status = 200, description = "`{uuid, type: \"Agent\", url, grpc_url, probes: [ProbeEntity]}`")))]
async fn entities(State(agent): State<AppState>) -> Result<Response, ApiError> {
    let probes = agent.probes().await.map_err(api_error)?;
    Ok(axum::Json(json!({
        "uuid": agent.uuid, "type": "Agent", "url": agent.url, "grpc_url": agent.grpc_url, "probes": probes,
    }))
    .into_response())
}

/// Register a monitoring probe (or update its registration).
#[utoipa::path(post, path = "/api/v1/telemetry/agent/register", tag = "Probes", request_body = ProbeRegistration,
    responses((status = 200, body = ProbeEntity), (status = 400, body = serrano_service::ErrorBody),
        (status = 409, body = serrano_service::ErrorBody)))]
async fn register(
    State(agent): State<AppState>,
    ApiJson(registration): ApiJson<ProbeRegistration>,
) -> Result<Response, ApiError> {
    let entity = agent.register(registration).await.map_err(api_error)?;
    Ok(axum::Json(entity).into_response())
}

#[utoipa::path(get, path = "/api/v1/telemetry/agent/register/{uuid}", tag = "Probes",
    params(("uuid" = String, Path, description = "probe uuid")),
    responses((status = 200, body = ProbeEntity), (status = 404, body = serrano_service::ErrorBody)))]
async fn get_probe(
    State(agent): State<AppState>,
    ApiPath(uuid): ApiPath<String>,
) -> Result<Response, ApiError> {
    Ok(axum::Json(agent.probe(&uuid).await.map_err(api_error)?).into_response())
}

#[utoipa::path(put, path = "/api/v1/telemetry/agent/register/{uuid}", tag = "Probes", request_body = ProbeUpdate,
    params(("uuid" = String, Path, description = "probe uuid")),
    responses((status = 200, body = ProbeEntity), (status = 400, body = serrano_service::ErrorBody),
        (status = 404, body = serrano_service::ErrorBody)))]
async fn update_probe(
    State(agent): State<AppState>,
    ApiPath(uuid): ApiPath<String>,
    ApiJson(update): ApiJson<ProbeUpdate>,
) -> Result<Response, ApiError> {
    Ok(axum::Json(agent.update_probe(&uuid, update).await.map_err(api_error)?).into_response())
}

#[utoipa::path(delete, path = "/api/v1/telemetry/agent/register/{uuid}", tag = "Probes",
    params(("uuid" = String, Path, description = "probe uuid")),
    responses((status = 200, body = ProbeEntity), (status = 404, body = serrano_service::ErrorBody)))]
async fn deregister(
    State(agent): State<AppState>,
    ApiPath(uuid): ApiPath<String>,
) -> Result<Response, ApiError> {
    Ok(axum::Json(agent.deregister(&uuid).await.map_err(api_error)?).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MonitorQuery {
    /// `all` (default), `resources` or `applications` (Kubernetes probes).
    pub target: Option<String>,
}

/// Live monitoring data of a probe; a full answer is also stored like a poll.
#[utoipa::path(get, path = "/api/v1/telemetry/agent/monitor/{uuid}", tag = "Probes",
    params(("uuid" = String, Path, description = "probe uuid"), MonitorQuery),
    responses((status = 200, description = "the probe's monitor document"), (status = 404, body = serrano_service::ErrorBody),
        (status = 502, body = serrano_service::ErrorBody), (status = 504, body = serrano_service::ErrorBody)))]
async fn monitor(
    State(agent): State<AppState>,
    ApiPath(uuid): ApiPath<String>,
    ApiQuery(query): ApiQuery<MonitorQuery>,
) -> Result<Response, ApiError> {
    let target = query.target.as_deref();
    if let Some(t) = target
        && !matches!(t, "all" | "resources" | "applications")
    {
        return Err(ApiError::validation(
            "target must be all, resources or applications",
        ));
    }
    let probe = agent.probe(&uuid).await.map_err(api_error)?;
    Ok(axum::Json(agent.monitor(&probe, target).await.map_err(api_error)?).into_response())
}

/// Live inventory of a probe; the cluster's stored inventory is refreshed.
#[utoipa::path(get, path = "/api/v1/telemetry/agent/inventory/{uuid}", tag = "Probes",
    params(("uuid" = String, Path, description = "probe uuid")),
    responses((status = 200, description = "the probe's inventory document"), (status = 404, body = serrano_service::ErrorBody),
        (status = 502, body = serrano_service::ErrorBody), (status = 504, body = serrano_service::ErrorBody)))]
async fn inventory(
    State(agent): State<AppState>,
    ApiPath(uuid): ApiPath<String>,
) -> Result<Response, ApiError> {
    let probe = agent.probe(&uuid).await.map_err(api_error)?;
    Ok(axum::Json(agent.inventory(&probe).await.map_err(api_error)?).into_response())
}

/// Deployments this agent monitors.
#[utoipa::path(get, path = "/api/v1/telemetry/agent/deployments", tag = "Deployments",
    responses((status = 200, description = "`{deployments: [...]}`")))]
async fn list_deployments(State(agent): State<AppState>) -> Result<Response, ApiError> {
    Ok(
        axum::Json(json!({"deployments": agent.deployments().await.map_err(api_error)?}))
            .into_response(),
    )
}

/// Start monitoring a deployment's pods (the CTH forwards `{deployment_uuid, k8s_deployments}`).
#[utoipa::path(post, path = "/api/v1/telemetry/agent/deployments", tag = "Deployments", request_body = MonitoredDeployment,
    responses((status = 201, description = "`{}`"), (status = 400, body = serrano_service::ErrorBody)))]
async fn add_deployment(
    State(agent): State<AppState>,
    ApiJson(deployment): ApiJson<MonitoredDeployment>,
) -> Result<Response, ApiError> {
    agent.add_deployment(&deployment).await.map_err(api_error)?;
    Ok((StatusCode::CREATED, axum::Json(json!({}))).into_response())
}

#[utoipa::path(get, path = "/api/v1/telemetry/agent/deployments/{uuid}", tag = "Deployments",
    params(("uuid" = String, Path, description = "deployment uuid")),
    responses((status = 200, description = "the monitored deployment"), (status = 404, body = serrano_service::ErrorBody)))]
async fn get_deployment(
    State(agent): State<AppState>,
    ApiPath(uuid): ApiPath<String>,
) -> Result<Response, ApiError> {
    Ok(axum::Json(agent.deployment(&uuid).await.map_err(api_error)?).into_response())
}

#[utoipa::path(delete, path = "/api/v1/telemetry/agent/deployments/{uuid}", tag = "Deployments",
    params(("uuid" = String, Path, description = "deployment uuid")),
    responses((status = 200, description = "`{deployment_uuid}`"), (status = 404, body = serrano_service::ErrorBody)))]
async fn remove_deployment(
    State(agent): State<AppState>,
    ApiPath(uuid): ApiPath<String>,
) -> Result<Response, ApiError> {
    agent.remove_deployment(&uuid).await.map_err(api_error)?;
    Ok(axum::Json(json!({"deployment_uuid": uuid})).into_response())
}

/// An application's own metrics (a sidecar push).
#[utoipa::path(post, path = "/api/v1/telemetry/agent/deployment_specific_metrics", tag = "Deployments",
    request_body = SpecificMetrics,
    responses((status = 201, description = "`{}`"), (status = 400, body = serrano_service::ErrorBody),
        (status = 413, body = serrano_service::ErrorBody)))]
async fn push_specific_metrics(
    State(agent): State<AppState>,
    ApiJson(push): ApiJson<SpecificMetrics>,
) -> Result<Response, ApiError> {
    if push
        .metrics
        .as_object()
        .is_some_and(|m| m.len() > MAX_SPECIFIC_METRICS)
    {
        return Err(ApiError::payload_too_large(format!(
            "at most {MAX_SPECIFIC_METRICS} metrics per push"
        )));
    }
    agent
        .record_specific_metrics(&push)
        .await
        .map_err(api_error)?;
    Ok((StatusCode::CREATED, axum::Json(json!({}))).into_response())
}

/// Largest number of metrics in one application push.
pub const MAX_SPECIFIC_METRICS: usize = 1000;

/// Start or stop a streaming session with the cluster's probe (D6.7 4.4.3.2).
#[utoipa::path(post, path = "/api/v1/telemetry/agent/streaming", tag = "Streaming", request_body = StreamingRequest,
    responses((status = 201, description = "the session"), (status = 400, body = serrano_service::ErrorBody),
        (status = 404, body = serrano_service::ErrorBody), (status = 502, body = serrano_service::ErrorBody)))]
async fn streaming(
    State(agent): State<AppState>,
    ApiJson(request): ApiJson<StreamingRequest>,
) -> Result<Response, ApiError> {
    let stop = request.action == "stop";
    let answer = agent.streaming(request).await.map_err(api_error)?;
    let status = if stop {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(answer)).into_response())
}

#[utoipa::path(get, path = "/api/v1/telemetry/agent/streaming", tag = "Streaming",
    responses((status = 200, description = "`{sessions: [...]}`")))]
async fn list_streaming(State(agent): State<AppState>) -> Result<Response, ApiError> {
    Ok(
        axum::Json(json!({"sessions": agent.streaming_sessions().await.map_err(api_error)?}))
            .into_response(),
    )
}

#[utoipa::path(delete, path = "/api/v1/telemetry/agent/streaming/{session_id}", tag = "Streaming",
    params(("session_id" = String, Path, description = "streaming session")),
    responses((status = 200, description = "`{session_id, status}`"), (status = 404, body = serrano_service::ErrorBody)))]
async fn stop_streaming(
    State(agent): State<AppState>,
    ApiPath(session_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let request = StreamingRequest {
        cluster_uuid: String::new(),
        action: "stop".into(),
        reporting_rate: None,
        nodes: Vec::new(),
        metrics: Vec::new(),
        session_id: Some(session_id),
    };
    let answer: Value = agent.streaming(request).await.map_err(api_error)?;
    Ok(axum::Json(answer).into_response())
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "SERRANO Enhanced Telemetry Agent",
        description = "D6.7 4.4: probe registry, monitoring, deployments, streaming telemetry"
    ),
    paths(
        get_settings,
        update_settings,
        entities,
        register,
        get_probe,
        update_probe,
        deregister,
        monitor,
        inventory,
        list_deployments,
        add_deployment,
        get_deployment,
        remove_deployment,
        push_specific_metrics,
        streaming,
        list_streaming,
        stop_streaming
    ),
    components(schemas(
        Settings,
        SettingsPatch,
        ProbeRegistration,
        ProbeUpdate,
        ProbeEntity,
        MonitoredDeployment,
        SpecificMetrics,
        StreamingRequest,
        crate::agent::ProbeType
    ))
)]
struct ApiDoc;

pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    serrano_service::with_bearer_security(&mut doc);
    doc
}

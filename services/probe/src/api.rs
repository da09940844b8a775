//! REST routes of a probe (originals.md 3.5, D6.7 4.4.3 "Monitoring Probes"), under
//! `/api/v1/telemetry/probe`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::{Deserialize, Serialize};
use serrano_service::{ApiError, ApiJson, ApiPath, ApiQuery};
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use crate::collection::{CollectionSettings, CollectionUpdate};
use crate::model::{ApplicationResponse, Inventory, MonitorResponse, MonitoringData};
use crate::source::{SourceError, Target};
use crate::streaming::{
    SessionList, SessionView, StartContext, StreamingAction, StreamingError, StreamingRequest,
    StreamingStarted,
};
use crate::{Probe, unix_now};

type AppState = Arc<Probe>;

/// Route prefix of every probe.
pub const PREFIX: &str = "/api/v1/telemetry/probe";

pub fn routes() -> Router<AppState> {
    let api = Router::new()
        .route("/ping", get(ping))
        .route("/inventory", get(inventory))
        .route("/monitor", get(monitor))
        .route("/application", get(application))
        .route("/collection", get(get_collection).post(update_collection))
        .route("/streaming", get(list_streaming).post(streaming))
        .route("/streaming/{session_id}", delete(stop_streaming));
    // D6.7 4.4.3.2 configures a probe with `POST /api/v1/telemetry/probe {"query_interval": 60}`.
    Router::new().nest(PREFIX, api).route(
        PREFIX,
        get(get_collection)
            .post(update_collection)
            .put(update_collection),
    )
}

fn source_error(err: SourceError) -> ApiError {
    match err {
        SourceError::Unavailable(message) => ApiError::unavailable(message),
        SourceError::NotFound(message) | SourceError::Unsupported(message) => {
            ApiError::not_found(message)
        }
    }
}

/// `GET /ping`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Ping {
    pub uuid: Uuid,
    #[serde(rename = "type")]
    pub probe_type: String,
    /// Always `UP`: the probe answers.
    pub status: String,
    /// Unix seconds.
    pub timestamp: i64,
}

/// The probe is alive.
#[utoipa::path(get, path = "/api/v1/telemetry/probe/ping", tag = "Probe",
    responses((status = 200, body = Ping)))]
async fn ping(State(probe): State<AppState>) -> ApiJson<Ping> {
    ApiJson(Ping {
        uuid: probe.identity.probe_uuid,
        probe_type: probe.identity.kind.type_name().to_owned(),
        status: "UP".to_owned(),
        timestamp: unix_now(),
    })
}

/// The resources this probe describes: `{"nodes": [...]}` (host, Kubernetes), the HPC
/// infrastructure, or `{"edge_storage_devices": [...]}`.
#[utoipa::path(get, path = "/api/v1/telemetry/probe/inventory", tag = "Probe",
    responses((status = 200, body = Inventory), (status = 503, body = serrano_service::ErrorBody)))]
async fn inventory(State(probe): State<AppState>) -> Result<ApiJson<Inventory>, ApiError> {
    probe
        .source
        .inventory(probe.settings().timeout())
        .await
        .map(ApiJson)
        .map_err(source_error)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MonitorQuery {
    /// `all` (default), `resources` (nodes, persistent volumes) or `applications` (deployments,
    /// pods).
    #[param(inline)]
    pub target: Option<Target>,
    /// Edge storage probes: only this device.
    pub device_name: Option<String>,
}

/// Monitoring data now: `{"uuid", "type", "<kind>_monitoring_data"}` or, for edge storage,
/// `{"uuid", "type", "edge_storage_devices"}` (D6.7 4.4.3.2).
#[utoipa::path(get, path = "/api/v1/telemetry/probe/monitor", tag = "Probe", params(MonitorQuery),
    responses((status = 200, body = MonitorResponse), (status = 400, body = serrano_service::ErrorBody),
        (status = 404, body = serrano_service::ErrorBody), (status = 503, body = serrano_service::ErrorBody)))]
async fn monitor(
    State(probe): State<AppState>,
    ApiQuery(query): ApiQuery<MonitorQuery>,
) -> Result<ApiJson<MonitorResponse>, ApiError> {
    let mut data = probe
        .source
        .monitor(probe.settings().timeout(), query.target.unwrap_or_default())
        .await
        .map_err(source_error)?;
    if let Some(device) = &query.device_name {
        let MonitoringData::EdgeStorage(devices) = &mut data else {
            return Err(ApiError::validation(
                "device_name applies to edge storage probes only",
            ));
        };
        devices.retain(|d| &d.name == device);
        if devices.is_empty() {
            return Err(ApiError::not_found(format!(
                "no edge storage device {device}"
            )));
        }
    }
    Ok(ApiJson(MonitorResponse {
        uuid: probe.identity.probe_uuid,
        probe_type: probe.identity.kind.type_name().to_owned(),
        data,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ApplicationQuery {
    /// Name of the Kubernetes Deployment.
    pub deployment: String,
    /// Its namespace (all namespaces when absent).
    pub namespace: Option<String>,
}

/// The pods of one Kubernetes Deployment (Kubernetes probes only).
#[utoipa::path(get, path = "/api/v1/telemetry/probe/application", tag = "Probe", params(ApplicationQuery),
    responses((status = 200, body = ApplicationResponse), (status = 400, body = serrano_service::ErrorBody),
        (status = 404, body = serrano_service::ErrorBody), (status = 503, body = serrano_service::ErrorBody)))]
async fn application(
    State(probe): State<AppState>,
    ApiQuery(query): ApiQuery<ApplicationQuery>,
) -> Result<ApiJson<ApplicationResponse>, ApiError> {
    if query.deployment.is_empty() {
        return Err(ApiError::validation("deployment: a Deployment name"));
    }
    let pods = probe
        .source
        .application(
            probe.settings().timeout(),
            &query.deployment,
            query.namespace.as_deref(),
        )
        .await
        .map_err(source_error)?;
    Ok(ApiJson(ApplicationResponse {
        uuid: probe.identity.probe_uuid,
        probe_type: probe.identity.kind.type_name().to_owned(),
        deployment: query.deployment,
        pods,
    }))
}

/// The collection settings.
#[utoipa::path(get, path = "/api/v1/telemetry/probe/collection", tag = "Collection",
    responses((status = 200, body = CollectionSettings)))]
async fn get_collection(State(probe): State<AppState>) -> ApiJson<CollectionSettings> {
    ApiJson(probe.settings())
}

/// Change the collection settings (any of `query_interval`, `query_timeout`,
/// `active_monitoring`); answers the new settings. Also served as `POST` and `PUT` on
/// `/api/v1/telemetry/probe` (D6.7 4.4.3.2).
#[utoipa::path(post, path = "/api/v1/telemetry/probe/collection", tag = "Collection",
    request_body = CollectionUpdate,
    responses((status = 200, body = CollectionSettings), (status = 400, body = serrano_service::ErrorBody)))]
async fn update_collection(
    State(probe): State<AppState>,
    ApiJson(update): ApiJson<CollectionUpdate>,
) -> Result<ApiJson<CollectionSettings>, ApiError> {
    let next = probe
        .settings()
        .apply(update)
        .map_err(ApiError::validation)?;
    probe.set_settings(next);
    tracing::info!(
        query_interval = next.query_interval,
        query_timeout = next.query_timeout,
        active_monitoring = next.active_monitoring,
        "collection settings changed"
    );
    Ok(ApiJson(next))
}

fn streaming_error(err: StreamingError) -> ApiError {
    match err {
        StreamingError::Invalid(message) => ApiError::validation(message),
        StreamingError::Conflict(message) => ApiError::conflict(message),
        StreamingError::NotFound(message) => ApiError::not_found(message),
        StreamingError::Source(err) => source_error(err),
    }
}

/// Start (201 `{"session_id"}`) or stop (200, the final session) a streaming telemetry session
/// towards the agent's gRPC receiver.
#[utoipa::path(post, path = "/api/v1/telemetry/probe/streaming", tag = "Streaming",
    request_body = StreamingRequest,
    responses((status = 201, body = StreamingStarted), (status = 200, body = SessionView),
        (status = 400, body = serrano_service::ErrorBody), (status = 404, body = serrano_service::ErrorBody),
        (status = 409, body = serrano_service::ErrorBody), (status = 503, body = serrano_service::ErrorBody)))]
async fn streaming(
    State(probe): State<AppState>,
    ApiJson(request): ApiJson<StreamingRequest>,
) -> Result<Response, ApiError> {
    match request.action {
        StreamingAction::Start => {
            let context = StartContext {
                source: probe.source.clone(),
                settings: probe.settings_watch(),
                probe_uuid: probe.identity.probe_uuid,
                cluster_uuid: probe.identity.cluster_uuid,
                sender_options: &probe.sender_options,
                close_deadline: probe.stream_close_deadline,
            };
            let started = probe
                .streams
                .start(request, context)
                .await
                .map_err(streaming_error)?;
            Ok((StatusCode::CREATED, ApiJson(started)).into_response())
        }
        StreamingAction::Stop => {
            let Some(session_id) = request.session_id else {
                return Err(ApiError::validation("session_id: required to stop"));
            };
            let view = probe
                .streams
                .stop(&session_id)
                .await
                .map_err(streaming_error)?;
            Ok(ApiJson(view).into_response())
        }
    }
}

/// The running streaming sessions.
#[utoipa::path(get, path = "/api/v1/telemetry/probe/streaming", tag = "Streaming",
    responses((status = 200, body = SessionList)))]
async fn list_streaming(State(probe): State<AppState>) -> ApiJson<SessionList> {
    ApiJson(SessionList {
        sessions: probe.streams.list(),
    })
}

/// Stop a streaming session; answers its final state.
#[utoipa::path(delete, path = "/api/v1/telemetry/probe/streaming/{session_id}", tag = "Streaming",
    params(("session_id" = String, Path)),
    responses((status = 200, body = SessionView), (status = 404, body = serrano_service::ErrorBody)))]
async fn stop_streaming(
    State(probe): State<AppState>,
    ApiPath(session_id): ApiPath<String>,
) -> Result<ApiJson<SessionView>, ApiError> {
    probe
        .streams
        .stop(&session_id)
        .await
        .map(ApiJson)
        .map_err(streaming_error)
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "SERRANO Monitoring Probe",
        description = "Monitoring probes (D6.7 4.4.2, 4.4.3): host, Kubernetes, HPC and edge storage. \
            Every route needs `Authorization: Bearer <token>`. `GET|POST|PUT /api/v1/telemetry/probe` \
            is the same as `GET|POST /api/v1/telemetry/probe/collection`."
    ),
    paths(ping, inventory, monitor, application, get_collection, update_collection, streaming,
        list_streaming, stop_streaming),
    tags((name = "Probe"), (name = "Collection"), (name = "Streaming"))
)]
struct ApiDoc;

/// The service's OpenAPI document (checked in at `openapi/probe.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    serrano_service::with_bearer_security(&mut doc);
    doc
}

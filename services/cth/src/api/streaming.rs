//! Streaming telemetry (D6.7 4.4.3.2): "the operation is activated from the Central Telemetry
//! Handler (CTH) or Enhanced Telemetry Agents". The handler forwards the request to the
//! cluster's agent, which opens the session with its probe; the samples come back over gRPC.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use http::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serrano_docstore::{Filter, FindOptions};
use serrano_service::{ApiError, ApiJson, ApiPath};
use utoipa::ToSchema;

use super::clusters::{agent_of, call_agent};
use super::{AppState, ErrorBody};
use crate::agents::{AgentError, cluster_doc};
use crate::store::{STREAMING_TELEMETRY, doc_error};
use crate::streaming::{StreamingRequest, sorted_samples};

/// Start or stop a streaming session on a cluster; answers 201 with the agent's answer. An
/// agent that refuses (4xx) is answered with its status and reason.
#[utoipa::path(post, path = "/api/v1/telemetry/central/streaming", tag = "Streaming",
    request_body = StreamingRequest,
    responses((status = 201, description = "the agent's answer", body = Object),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody),
        (status = 504, body = ErrorBody)))]
pub async fn start_or_stop(
    State(cth): State<AppState>,
    ApiJson(request): ApiJson<StreamingRequest>,
) -> Result<Response, ApiError> {
    request.validate().map_err(ApiError::validation)?;
    let doc = cluster_doc(cth.docs.as_ref(), &request.cluster_uuid).await?;
    let route = agent_of(&cth, &doc).await?;
    let body = serde_json::to_value(&request)
        .map_err(|err| ApiError::internal(format!("cannot encode the request: {err}")))?;
    match call_agent(&cth, &route, Method::POST, "/streaming", &[], Some(&body)).await {
        Ok(answer) => Ok((StatusCode::CREATED, ApiJson(answer)).into_response()),
        // The agent's verdict on the request itself (bad node, no streaming support) is the
        // client's to read, not a gateway failure.
        Err(AgentError::Status {
            status, message, ..
        }) if (400..500).contains(&status) && status != 401 && status != 403 => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            Err(ApiError::from_status(
                status,
                format!("agent {} refused: {message}", route.agent_uuid),
            ))
        }
        Err(err) => Err(err.to_api()),
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StreamedSamples {
    /// The latest streamed sample of every series of the cluster: `{cluster_uuid, source_uuid,
    /// measurement, tags, fields, time_ns, series}`.
    #[schema(value_type = Vec<Object>)]
    pub samples: Vec<Value>,
}

/// The latest streamed samples of a cluster.
#[utoipa::path(get, path = "/api/v1/telemetry/central/streaming/{cluster}", tag = "Streaming",
    params(("cluster" = String, Path, description = "cluster uuid")),
    responses((status = 200, body = StreamedSamples), (status = 404, body = ErrorBody)))]
pub async fn latest_samples(
    State(cth): State<AppState>,
    ApiPath(cluster): ApiPath<String>,
) -> Result<Response, ApiError> {
    cluster_doc(cth.docs.as_ref(), &cluster).await?;
    let docs = cth
        .docs
        .find(
            STREAMING_TELEMETRY,
            &Filter::all().eq("cluster_uuid", cluster.as_str()),
            &FindOptions::default(),
        )
        .await
        .map_err(doc_error)?;
    Ok(ApiJson(StreamedSamples {
        samples: sorted_samples(docs),
    })
    .into_response())
}

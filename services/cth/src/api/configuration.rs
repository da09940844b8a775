//! `GET|PUT /api/v1/telemetry/central`: the handler's operational configuration (D6.7 4.4.2:
//! "RESTful methods that enable the on-demand change of their current operational
//! configuration").

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serrano_bus::{GeneralInformation, NOTIFICATION_MESSAGES_TOPIC, publish_json};
use serrano_service::{ApiError, ApiJson};
use utoipa::ToSchema;

use super::{AppState, ErrorBody};
use crate::{Cth, Settings, check_seconds};

/// The handler's configuration (the original's field names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConfigurationView {
    pub uuid: String,
    /// The address the REST interface is bound to.
    pub address: String,
    pub port: u16,
    /// The URL clients reach the handler at.
    pub exposed_service: String,
    /// Seconds between two runs of the periodic collector.
    pub query_interval: u64,
    /// Seconds an agent or the storage gateway has to answer.
    pub query_timeout: u64,
    /// Whether the periodic collector runs.
    pub active_monitoring: bool,
}

/// A partial update: only the fields given change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigurationUpdate {
    /// 1 to 86400 seconds.
    pub query_interval: Option<u64>,
    /// 1 to 86400 seconds.
    pub query_timeout: Option<u64>,
    pub active_monitoring: Option<bool>,
}

fn view(cth: &Cth) -> ConfigurationView {
    let settings = cth.settings();
    ConfigurationView {
        uuid: cth.identity.uuid.clone(),
        address: cth.identity.address.clone(),
        port: cth.identity.port,
        exposed_service: cth.identity.exposed_service.clone(),
        query_interval: settings.query_interval,
        query_timeout: settings.query_timeout,
        active_monitoring: settings.active_monitoring,
    }
}

/// Get current configuration parameters.
#[utoipa::path(get, path = "/api/v1/telemetry/central", tag = "Configuration",
    responses((status = 200, body = ConfigurationView)))]
pub async fn get_configuration(State(cth): State<AppState>) -> Response {
    ApiJson(view(&cth)).into_response()
}

/// Change current configuration parameters; answers the new configuration and publishes a
/// `{message, timestamp}` notice to `serrano_notification_messages`. Changes last until restart.
#[utoipa::path(put, path = "/api/v1/telemetry/central", tag = "Configuration",
    request_body = ConfigurationUpdate,
    responses((status = 201, body = ConfigurationView),
        (status = 400, description = "unknown field, no field, or a value out of range", body = ErrorBody)))]
pub async fn put_configuration(
    State(cth): State<AppState>,
    ApiJson(update): ApiJson<ConfigurationUpdate>,
) -> Result<Response, ApiError> {
    if update.query_interval.is_none()
        && update.query_timeout.is_none()
        && update.active_monitoring.is_none()
    {
        return Err(ApiError::validation(
            "nothing to change: give query_interval, query_timeout or active_monitoring",
        ));
    }
    let old = cth.settings();
    let new = Settings {
        query_interval: update.query_interval.unwrap_or(old.query_interval),
        query_timeout: update.query_timeout.unwrap_or(old.query_timeout),
        active_monitoring: update.active_monitoring.unwrap_or(old.active_monitoring),
    };
    check_seconds("query_interval", new.query_interval).map_err(ApiError::validation)?;
    check_seconds("query_timeout", new.query_timeout).map_err(ApiError::validation)?;
    cth.set_settings(new);
    let notice = GeneralInformation::now(format!(
        "Central Telemetry Handler {} configuration changed: query_interval={} query_timeout={} active_monitoring={}",
        cth.identity.uuid, new.query_interval, new.query_timeout, new.active_monitoring
    ));
    // The change is made; a broker that is down must not undo it or fail the request.
    if let Err(err) = publish_json(
        cth.bus.as_ref(),
        NOTIFICATION_MESSAGES_TOPIC,
        Some(cth.identity.uuid.as_bytes()),
        &notice,
    )
    .await
    {
        tracing::warn!(error = %err, "configuration-change notification not published");
    }
    tracing::info!(
        query_interval = new.query_interval,
        query_timeout = new.query_timeout,
        active_monitoring = new.active_monitoring,
        "configuration changed"
    );
    Ok((StatusCode::CREATED, ApiJson(view(&cth))).into_response())
}

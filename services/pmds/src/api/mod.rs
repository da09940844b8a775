//! HTTP routes of PMDS: reads under `/api/v1/pmds` ([`query`]), InfluxDB-compatible writes
//! ([`write`]).

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use utoipa::OpenApi;

use crate::Pmds;

pub mod query;
pub mod write;

type AppState = Arc<Pmds>;

/// Every route of the service (the shell adds probes, metrics, docs and auth).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/pmds/nodes/{cluster_uuid}", get(query::nodes))
        .route("/api/v1/pmds/pvs/{cluster_uuid}", get(query::pvs))
        .route(
            "/api/v1/pmds/deployments/{cluster_uuid}",
            get(query::deployments),
        )
        .route("/api/v1/pmds/pods/{cluster_uuid}", get(query::pods))
        .route(
            "/api/v1/pmds/edge_storage_devices/{cluster_uuid}",
            get(query::edge_storage_devices),
        )
        .route(
            "/api/v1/pmds/hpc_partitions/{cluster_uuid}",
            get(query::hpc_partitions),
        )
        .route(
            "/api/v1/pmds/serrano_deployments/{deployment_uuid}",
            get(query::serrano_deployments),
        )
        .route(
            "/api/v1/pmds/deployments_specific_metrics/{deployment_uuid}",
            get(query::deployments_specific_metrics),
        )
        .route("/api/v2/write", post(write::write_v2))
        .route("/write", post(write::write_v1))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "SERRANO Persistent Monitoring Data Storage (PMDS)",
        description = "Telemetry history of the SERRANO platform (D6.7 4.4): InfluxDB-compatible line-protocol writes and the PMDS REST API v1.1.0 reads.",
        version = "1.1.0"
    ),
    paths(
        query::nodes,
        query::pvs,
        query::deployments,
        query::pods,
        query::edge_storage_devices,
        query::hpc_partitions,
        query::serrano_deployments,
        query::deployments_specific_metrics,
        write::write_v2,
        write::write_v1,
    ),
    components(schemas(
        query::RawRecord,
        query::CompactEntry,
        write::InfluxError,
        serrano_service::ErrorBody,
        serrano_service::ErrorDetail,
    )),
    tags(
        (name = "PMDS", description = "Historical telemetry (pmds_rest_v1.yaml)"),
        (name = "Write", description = "InfluxDB 2 / 1 compatible line-protocol ingest")
    )
)]
struct ApiDoc;

/// The service's OpenAPI document (checked in at `openapi/pmds.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    serrano_service::with_bearer_security(&mut doc);
    doc
}

//! The Orchestration API under `/api/v1/orchestrator` (D6.7 4.2.3, Figures 14 and 15): one
//! module per resource, handlers only decode, validate, call the store and encode.

use axum::Router;
use axum::routing::{get, post, put};
use utoipa::OpenApi;

use crate::AppState;

pub mod assignments;
pub mod bundles;
pub mod clusters;
pub mod common;
pub mod deployments;
pub mod feedback;
pub mod kernels;
pub mod storage_policies;

/// Where the API is mounted.
pub const PREFIX: &str = "/api/v1/orchestrator";

/// The routes, relative to [`PREFIX`].
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/deployments",
            get(deployments::list)
                .post(deployments::create)
                .put(deployments::update),
        )
        .route("/deployments/watch", get(deployments::watch))
        .route(
            "/deployments/{uuid}",
            get(deployments::get).delete(deployments::delete),
        )
        .route("/deployments/logs/{uuid}", get(deployments::logs))
        .route("/deployments/services/{uuid}", get(deployments::services))
        .route(
            "/storage_policies",
            get(storage_policies::list)
                .post(storage_policies::create)
                .put(storage_policies::update),
        )
        .route(
            "/storage_policies/{uuid}",
            get(storage_policies::get).delete(storage_policies::delete),
        )
        .route("/faas", get(kernels::list_faas).post(kernels::create_faas))
        .route("/faas/{uuid}", get(kernels::get).delete(kernels::delete))
        // The spec names `/kernel`, the original served `/kernels`: both work.
        .route(
            "/kernel",
            get(kernels::list_kernels).post(kernels::create_kernel),
        )
        .route("/kernel/{uuid}", get(kernels::get).delete(kernels::delete))
        .route(
            "/kernels",
            get(kernels::list_kernels).post(kernels::create_kernel),
        )
        .route("/kernels/{uuid}", get(kernels::get).delete(kernels::delete))
        .route(
            "/clusters",
            get(clusters::list)
                .post(clusters::register)
                .put(clusters::update),
        )
        .route("/clusters/watch", get(clusters::watch))
        .route(
            "/clusters/{uuid}",
            get(clusters::get).delete(clusters::delete),
        )
        .route(
            "/clusters/health/{uuid}",
            get(clusters::health)
                .put(clusters::beat)
                .post(clusters::beat),
        )
        .route(
            "/assignments",
            get(assignments::list)
                .post(assignments::create)
                .put(assignments::update),
        )
        .route("/assignments/watch/{cluster_uuid}", get(assignments::watch))
        .route(
            "/assignments/{uuid}",
            get(assignments::get).delete(assignments::delete),
        )
        // The original driver asked for `{cluster}/{assignment}` without the `assignment/` segment.
        .route(
            "/assignments/{cluster_uuid}/{uuid}",
            get(assignments::get_in_cluster),
        )
        .route(
            "/assignments/{cluster_uuid}/assignment/{uuid}",
            get(assignments::get_in_cluster),
        )
        .route(
            "/bundles",
            get(bundles::list)
                .post(bundles::create)
                .put(bundles::update),
        )
        .route("/bundles/watch/{assignment_uuid}", get(bundles::watch))
        .route("/bundles/{uuid}", get(bundles::get).delete(bundles::delete))
        .route("/logs", post(feedback::post_logs))
        .route("/monitoring", put(feedback::put_monitoring))
}

#[derive(OpenApi)]
#[openapi(
    paths(
        deployments::list, deployments::create, deployments::update, deployments::get, deployments::delete,
        deployments::logs, deployments::services, deployments::watch,
        storage_policies::list, storage_policies::create, storage_policies::update, storage_policies::get,
        storage_policies::delete,
        kernels::create_faas, kernels::list_faas, kernels::get, kernels::delete, kernels::create_kernel,
        kernels::list_kernels,
        clusters::list, clusters::register, clusters::update, clusters::get, clusters::delete, clusters::health,
        clusters::beat, clusters::watch,
        assignments::list, assignments::create, assignments::update, assignments::get, assignments::get_in_cluster,
        assignments::delete, assignments::watch,
        bundles::list, bundles::create, bundles::update, bundles::get, bundles::delete, bundles::watch,
        feedback::post_logs, feedback::put_monitoring,
    ),
    tags(
        (name = "Deployments", description = "Cloud-native application deployments (D6.7 4.2.3.2.3)"),
        (name = "Storage Policies", description = "Secure storage policies (D6.7 4.2.3.2.2)"),
        (name = "Kernels", description = "On-demand accelerated kernel executions (D6.7 4.2.3.2.4)"),
        (name = "Clusters", description = "Platforms registered by Orchestration Drivers (D6.7 4.2.3.2.1)"),
        (name = "Assignments", description = "Per-cluster deployment assignments"),
        (name = "Bundles", description = "Deployment descriptions of assignments"),
        (name = "Driver feedback", description = "Status reports of Orchestration Drivers"),
    )
)]
struct OrchestratorApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "SERRANO Resource Orchestrator API",
        description = "Orchestration API server of the SERRANO Resource Orchestrator (D6.7 4.2). \
            Every route needs `Authorization: Bearer <token>`. Updates accept `If-Match: \"<revision>\"` \
            (or a `revision` field) and answer 409 when the object changed since; watch routes stream \
            newline-delimited JSON."
    ),
    nest((path = "/api/v1/orchestrator", api = OrchestratorApi))
)]
struct ApiDoc;

/// The service's OpenAPI document (checked in at `openapi/ro-api.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    serrano_service::with_bearer_security(&mut doc);
    doc
}

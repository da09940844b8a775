//! REST routes of the Central Telemetry Handler (D6.7 4.4.3, Figure 26; originals 3.2), under
//! `/api/v1/telemetry/central`. Collection routes answer with and without a trailing slash (the
//! spec lists `/deployments/` and `/cluster_deployments/`).

use std::sync::Arc;

use axum::Router;
use axum::routing::{MethodRouter, get, post};
use utoipa::OpenApi;

use crate::{API_PREFIX, Cth};

pub mod clusters;
pub mod configuration;
pub mod deployments;
pub mod infrastructure;
pub mod kernels;
pub mod metrics;
pub mod storage;
pub mod streaming;

pub(crate) type AppState = Arc<Cth>;

/// Error body of the OpenAPI document.
pub(crate) type ErrorBody = serrano_service::ErrorBody;

/// Routes collected under [`API_PREFIX`].
struct Routes(Router<AppState>);

impl Routes {
    /// Serves `method` at `API_PREFIX + path`, and at `path/` too when `slash`.
    fn add(&mut self, path: &str, method: MethodRouter<AppState>, slash: bool) {
        let full = format!("{API_PREFIX}{path}");
        let mut router = std::mem::replace(&mut self.0, Router::new());
        if slash {
            router = router.route(&format!("{full}/"), method.clone());
        }
        self.0 = router.route(&full, method);
    }
}

pub fn routes() -> Router<AppState> {
    let mut routes = Routes(Router::new());
    let mut add = |path: &str, method: MethodRouter<AppState>, slash: bool| {
        routes.add(path, method, slash);
    };
    add(
        "",
        get(configuration::get_configuration).put(configuration::put_configuration),
        true,
    );
    add("/inventory", get(infrastructure::inventory), true);
    add("/entities", get(infrastructure::inventory), true);
    add("/infrastructure", get(infrastructure::infrastructure), true);
    add(
        "/infrastructure/inventory/{cluster}",
        get(infrastructure::infrastructure_inventory),
        false,
    );
    add(
        "/infrastructure/monitor/{cluster}",
        get(infrastructure::infrastructure_monitor),
        false,
    );
    add("/storage_locations", get(storage::storage_locations), true);
    add(
        "/deployments",
        get(deployments::list_deployments).post(deployments::add_deployment),
        true,
    );
    add(
        "/deployments/{deployment}",
        get(deployments::deployment_metrics_latest).delete(deployments::delete_deployment),
        false,
    );
    add(
        "/cluster_deployments",
        get(deployments::cluster_deployments),
        true,
    );
    add("/clusters", get(clusters::list_clusters), true);
    add("/clusters/{cluster}", get(clusters::get_cluster), false);
    add(
        "/clusters/inventory/{cluster}",
        get(clusters::cluster_inventory),
        false,
    );
    add(
        "/clusters/monitor/{cluster}",
        get(clusters::cluster_monitor),
        false,
    );
    // The spelling of the D6.7 4.4.3.2 example.
    add(
        "/cluster/monitor/{cluster}",
        get(clusters::cluster_monitor),
        false,
    );
    add(
        "/clusters/metrics/{cluster}",
        get(clusters::cluster_metrics),
        false,
    );
    add(
        "/serrano_kernel_deployments",
        get(kernels::list_kernel_deployments).put(kernels::update_kernel_deployment),
        true,
    );
    add(
        "/kernel_metrics",
        get(kernels::list_kernel_metrics).post(kernels::add_kernel_metrics),
        true,
    );
    // The spelling of the D6.7 4.4.3.2 example.
    add(
        "/kernels_metrics",
        get(kernels::list_kernel_metrics).post(kernels::add_kernel_metrics),
        true,
    );
    add(
        "/deployment_specific_metrics/{deployment}",
        get(metrics::specific_metrics),
        false,
    );
    add(
        "/deployment_metrics/{deployment}",
        get(metrics::deployment_metrics),
        false,
    );
    add("/streaming", post(streaming::start_or_stop), true);
    add(
        "/streaming/{cluster}",
        get(streaming::latest_samples),
        false,
    );
    routes.0
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "SERRANO Central Telemetry Handler",
        description = "The root of the SERRANO telemetry hierarchy (D6.7 4.4): clusters, \
            infrastructure, storage locations, monitored deployments and kernel metrics, read \
            from the operational DB the Enhanced Telemetry Agents write; live inventory and \
            monitoring calls are forwarded to the cluster's agent. Every route needs \
            `Authorization: Bearer <token>`. Agents stream samples to the gRPC receiver \
            (`serrano.telemetry.v1.StreamingTelemetry/Push`, default port 7118)."
    ),
    paths(
        configuration::get_configuration, configuration::put_configuration,
        infrastructure::inventory, infrastructure::infrastructure,
        infrastructure::infrastructure_inventory, infrastructure::infrastructure_monitor,
        storage::storage_locations,
        deployments::list_deployments, deployments::add_deployment,
        deployments::deployment_metrics_latest, deployments::delete_deployment,
        deployments::cluster_deployments,
        clusters::list_clusters, clusters::get_cluster, clusters::cluster_inventory,
        clusters::cluster_monitor, clusters::cluster_metrics,
        kernels::list_kernel_deployments, kernels::update_kernel_deployment,
        kernels::list_kernel_metrics, kernels::add_kernel_metrics,
        metrics::specific_metrics, metrics::deployment_metrics,
        streaming::start_or_stop, streaming::latest_samples,
    ),
    tags((name = "Configuration"), (name = "Infrastructure"), (name = "Storage"),
        (name = "Deployments"), (name = "Clusters"), (name = "Kernels"), (name = "Streaming"))
)]
struct ApiDoc;

/// The service's OpenAPI document (checked in at `openapi/cth.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    serrano_service::with_bearer_security(&mut doc);
    doc
}

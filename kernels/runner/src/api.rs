//! REST routes of the kernel runner: the FaaS function endpoint the drivers call
//! (`faas_endpoint`, OpenFaaS-style `/function/{kernel}`), the same under `/api/v1/kernels`, and
//! the catalogue of kernels, modes and devices.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serrano_kernels::{DeviceInfo, KernelError, KernelInfo};
use serrano_service::{ApiError, ApiPath};
use utoipa::{OpenApi, ToSchema};

use crate::invoke::{DataDescription, InvocationResult, InvokeError, Runner};

type AppState = Arc<Runner>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/kernels", get(list_kernels))
        .route("/api/v1/kernels/{kernel}/invoke", post(invoke))
        .route("/function/{kernel}", post(invoke))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Catalogue {
    #[schema(value_type = Vec<Object>)]
    pub kernels: Vec<KernelInfo>,
    #[schema(value_type = Vec<Object>)]
    pub devices: Vec<DeviceInfo>,
}

#[utoipa::path(get, path = "/api/v1/kernels", tag = "Kernels", responses((status = 200, body = Catalogue)))]
async fn list_kernels(State(runner): State<AppState>) -> Response {
    axum::Json(Catalogue {
        kernels: runner.registry.kernels(),
        devices: runner.registry.devices(),
    })
    .into_response()
}

pub fn invoke_error(err: InvokeError) -> ApiError {
    match err {
        InvokeError::BadRequest(m) => ApiError::bad_request(m),
        InvokeError::UnknownKernel(m) => ApiError::not_found(m),
        InvokeError::Kernel(KernelError::Device(m)) => ApiError::unavailable(m),
        InvokeError::Kernel(e @ KernelError::Unsupported { .. }) => {
            ApiError::unprocessable(e.to_string())
        }
        InvokeError::Kernel(e) => ApiError::unprocessable(e.to_string()),
        InvokeError::Backend(m) => ApiError::new(StatusCode::BAD_GATEWAY, "backend_failed", m),
        InvokeError::NotConfigured(m) => ApiError::unavailable(m),
        InvokeError::Internal(m) => ApiError::internal(m),
    }
}

/// Runs a kernel for a data_description (an object, or the JSON-encoded string the original
/// driver posts). 200 with the result and the timing breakdown.
#[utoipa::path(post, path = "/api/v1/kernels/{kernel}/invoke", tag = "Kernels",
    params(("kernel" = String, Path, description = "knn, kmeans, dtw, savgol, black_scholes, kalman, fft, wavelet, min_max (or an alias)")),
    request_body = DataDescription,
    responses((status = 200, body = InvocationResult), (status = 400, body = serrano_service::ErrorBody),
        (status = 404, body = serrano_service::ErrorBody), (status = 422, body = serrano_service::ErrorBody),
        (status = 500, body = serrano_service::ErrorBody), (status = 502, body = serrano_service::ErrorBody),
        (status = 503, body = serrano_service::ErrorBody)))]
async fn invoke(
    State(runner): State<AppState>,
    ApiPath(kernel): ApiPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let desc = DataDescription::from_json(&body).map_err(invoke_error)?;
    let result = runner.invoke(&kernel, desc).await.map_err(invoke_error)?;
    Ok(axum::Json(result).into_response())
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "SERRANO Kernel Runner",
        description = "Runs SERRANO kernels (D6.7 4.7) on CPU, CUDA or OpenCL for FaaS invocations \
            (D6.7 4.2.3.2.4). `/function/{kernel}` is the same operation as `/api/v1/kernels/{kernel}/invoke`. \
            Every route needs `Authorization: Bearer <token>` when tokens are configured."
    ),
    paths(list_kernels, invoke),
    tags((name = "Kernels"))
)]
struct ApiDoc;

pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    serrano_service::with_bearer_security(&mut doc);
    doc
}

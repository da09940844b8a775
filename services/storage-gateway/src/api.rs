//! JSON routes of the gateway (D6.7 4.10.1, Figures 55 and 57): the Storage Policy API and the
//! Resource and Telemetry API of the storage locations. Paths are served with and without a
//! trailing slash, as the original's clients use both (`GET /storage_policy/`).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use serrano_service::{ApiError, ApiJson, ApiPath};
use utoipa::OpenApi;

use crate::locations::{CloudLocationView, EdgeLocationView, Locations};
use crate::meta::MetadataStore;
use crate::policy::{PolicyError, PolicyStore, StoragePolicy};

/// What the policy and location handlers share.
#[derive(Debug)]
pub struct PolicyApi {
    pub policies: PolicyStore,
    pub locations: Arc<Locations>,
    pub meta: Arc<dyn MetadataStore>,
}

type AppState = Arc<PolicyApi>;

pub fn routes() -> Router<AppState> {
    let policies = || get(list_policies).post(create_policy).put(update_policy);
    let policy: fn() -> MethodRouter<AppState> = || get(policy_of_bucket).delete(delete_policy);
    Router::new()
        .route("/storage_policy", policies())
        .route("/storage_policy/", policies())
        .route("/storage_policy/{name}", policy())
        .route("/storage_policy/{name}/", policy())
        .route("/cloud_locations", get(cloud_locations))
        .route("/cloud_locations/", get(cloud_locations))
        .route("/edge_locations", get(edge_locations))
        .route("/edge_locations/", get(edge_locations))
}

fn policy_error(err: PolicyError) -> ApiError {
    match err {
        PolicyError::NotFound(message) => ApiError::not_found(message),
        PolicyError::Conflict(message) => ApiError::conflict(message),
        PolicyError::Invalid(message) => ApiError::unprocessable(message),
        in_use @ PolicyError::InUse { .. } => ApiError::conflict(in_use.to_string()),
        PolicyError::Unavailable(message) => ApiError::unavailable(message),
    }
}

/// The storage policies, sorted by name.
#[utoipa::path(get, path = "/storage_policy", tag = "Storage policies",
    responses((status = 200, body = [StoragePolicy])))]
async fn list_policies(State(state): State<AppState>) -> Result<Response, ApiError> {
    let list = state.policies.list().await.map_err(policy_error)?;
    Ok(axum::Json(list).into_response())
}

/// Create a storage policy; it gets an id unless it brings an unused one.
#[utoipa::path(post, path = "/storage_policy", tag = "Storage policies", request_body = StoragePolicy,
    responses((status = 201, body = StoragePolicy), (status = 400, body = serrano_service::ErrorBody),
        (status = 409, description = "a policy of that name (or id) exists", body = serrano_service::ErrorBody),
        (status = 422, description = "unknown locations or impossible coding parameters", body = serrano_service::ErrorBody)))]
async fn create_policy(
    State(state): State<AppState>,
    ApiJson(policy): ApiJson<StoragePolicy>,
) -> Result<Response, ApiError> {
    let created = state.policies.create(policy).await.map_err(policy_error)?;
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

/// Replace the storage policy of the body's name (its id is kept). Objects written before keep
/// the placement they were written with.
#[utoipa::path(put, path = "/storage_policy", tag = "Storage policies", request_body = StoragePolicy,
    responses((status = 200, body = StoragePolicy), (status = 400, body = serrano_service::ErrorBody),
        (status = 404, body = serrano_service::ErrorBody), (status = 422, body = serrano_service::ErrorBody)))]
async fn update_policy(
    State(state): State<AppState>,
    ApiJson(policy): ApiJson<StoragePolicy>,
) -> Result<Response, ApiError> {
    let updated = state.policies.update(policy).await.map_err(policy_error)?;
    Ok(axum::Json(updated).into_response())
}

/// The storage policy of an S3 bucket (`GET`, `name` is the bucket's name).
#[utoipa::path(get, path = "/storage_policy/{name}", tag = "Storage policies",
    params(("name" = String, Path, description = "the S3 bucket's name")),
    responses((status = 200, body = StoragePolicy), (status = 404, body = serrano_service::ErrorBody)))]
async fn policy_of_bucket(
    State(state): State<AppState>,
    ApiPath(bucket): ApiPath<String>,
) -> Result<Response, ApiError> {
    let policy = state
        .policies
        .for_bucket(state.meta.as_ref(), &bucket)
        .await
        .map_err(policy_error)?;
    Ok(axum::Json(policy).into_response())
}

/// Delete a storage policy (`DELETE`, `name` is the policy's name); refused while a bucket uses it.
#[utoipa::path(delete, path = "/storage_policy/{name}", tag = "Storage policies",
    params(("name" = String, Path, description = "the storage policy's name")),
    responses((status = 204, description = "deleted"), (status = 404, body = serrano_service::ErrorBody),
        (status = 409, description = "buckets use the policy", body = serrano_service::ErrorBody)))]
async fn delete_policy(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    state
        .policies
        .delete(&name, state.meta.as_ref())
        .await
        .map_err(policy_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The cloud storage locations (ids for a policy's `backends`): static characteristics and the
/// gateway's own measurements (the last 24 probe times, errors in the last 12 months).
#[utoipa::path(get, path = "/cloud_locations", tag = "Locations",
    responses((status = 200, body = [CloudLocationView])))]
async fn cloud_locations(State(state): State<AppState>) -> Response {
    axum::Json(state.locations.cloud_locations()).into_response()
}

/// The SERRANO edge devices (ids for a policy's `edge_devices`), with the same measurements.
#[utoipa::path(get, path = "/edge_locations", tag = "Locations",
    responses((status = 200, body = [EdgeLocationView])))]
async fn edge_locations(State(state): State<AppState>) -> Response {
    axum::Json(state.locations.edge_locations()).into_response()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "SERRANO Secure Storage Gateway",
        description = "On-premises storage gateway (D6.7 4.8, 4.10): storage policies and the \
            cloud and edge storage locations they use. Every route needs \
            `Authorization: Bearer <token>`. The S3 API (SigV4) is served at `/s3` and, \
            path-style, at the root; it is not part of this document."
    ),
    paths(list_policies, create_policy, update_policy, policy_of_bucket, delete_policy,
        cloud_locations, edge_locations),
    tags((name = "Storage policies"), (name = "Locations"))
)]
struct ApiDoc;

/// The JSON API's OpenAPI document (checked in at `openapi/storage-gateway.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    serrano_service::with_bearer_security(&mut doc);
    doc
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::meta::{BucketMeta, KvMetadata};
    use crate::policy::tests::{hybrid, test_locations};
    use axum::body::Body;
    use http::Request;
    use http_body_util::BodyExt;
    use serde_json::{Value, json};
    use serrano_datastore::{EmbeddedStore, KvStore};
    use tower::ServiceExt;

    struct Harness {
        app: Router,
        meta: Arc<KvMetadata>,
        _dir: tempfile::TempDir,
    }

    async fn harness() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let kv: Arc<dyn KvStore> = Arc::new(EmbeddedStore::open(dir.path().join("kv")).unwrap());
        let locations = test_locations(dir.path()).await;
        let meta = Arc::new(KvMetadata::new(kv.clone()));
        let state = Arc::new(PolicyApi {
            policies: PolicyStore::new(kv, locations.clone()),
            locations,
            meta: meta.clone(),
        });
        Harness {
            app: routes().with_state(state),
            meta,
            _dir: dir,
        }
    }

    impl Harness {
        async fn call(&self, method: &str, uri: &str, body: Option<&str>) -> (StatusCode, Value) {
            let mut request = Request::builder().method(method).uri(uri);
            if body.is_some() {
                request = request.header("content-type", "application/json");
            }
            let request = request
                .body(Body::from(body.unwrap_or_default().to_owned()))
                .unwrap();
            let response = self.app.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let value = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap()
            };
            (status, value)
        }
    }

    fn sample() -> String {
        serde_json::to_string(&hybrid()).unwrap()
    }

    #[tokio::test]
    async fn policies_round_trip_through_the_api() {
        let h = harness().await;
        let (status, list) = h.call("GET", "/storage_policy/", None).await;
        assert_eq!((status, list), (StatusCode::OK, json!([])));

        let (status, created) = h.call("POST", "/storage_policy", Some(&sample())).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert!(created["id"].as_u64().is_some());
        assert_eq!(
            created["redundancy"],
            json!({"scheme": "RLNC", "redundant_packets": 1})
        );
        let (status, error) = h.call("POST", "/storage_policy/", Some(&sample())).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(error["error"]["code"], "conflict");

        let mut other = hybrid();
        other.name = "cloud-only".into();
        other.edge_devices.clear();
        other.backends = vec![144, 145];
        let (status, _) = h
            .call(
                "POST",
                "/storage_policy",
                Some(&serde_json::to_string(&other).unwrap()),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let (_, list) = h.call("GET", "/storage_policy", None).await;
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["Hybrid-storage-policy", "cloud-only"]);

        let mut changed = serde_json::to_value(hybrid()).unwrap();
        changed["id"] = 1.into();
        changed["description"] = "changed".into();
        let (status, updated) = h
            .call("PUT", "/storage_policy/", Some(&changed.to_string()))
            .await;
        assert_eq!(status, StatusCode::OK, "{updated}");
        assert_eq!(updated["id"], created["id"]);
        assert_eq!(updated["description"], "changed");
        changed["name"] = "nope".into();
        let (status, _) = h
            .call("PUT", "/storage_policy", Some(&changed.to_string()))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // The policy of a bucket, and deletion refused while a bucket uses it.
        h.meta
            .create_bucket(&BucketMeta {
                name: "results".into(),
                created_ms: 1,
                policy: "Hybrid-storage-policy".into(),
                owner: "ak".into(),
            })
            .await
            .unwrap();
        let (status, of_bucket) = h.call("GET", "/storage_policy/results", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(of_bucket["description"], "changed");
        let (status, error) = h.call("GET", "/storage_policy/absent/", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(error["error"]["message"], "bucket absent not found");
        let (status, error) = h
            .call("DELETE", "/storage_policy/Hybrid-storage-policy", None)
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .ends_with("used by bucket(s) results"),
            "{error}"
        );
        h.meta.delete_bucket("results").await.unwrap();
        let (status, body) = h
            .call("DELETE", "/storage_policy/Hybrid-storage-policy/", None)
            .await;
        assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
        let (status, _) = h
            .call("DELETE", "/storage_policy/Hybrid-storage-policy", None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn bad_bodies_get_json_errors() {
        let h = harness().await;
        let (status, error) = h.call("POST", "/storage_policy", Some("{")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(error["error"]["code"], "bad_request");

        let mut unknown = serde_json::to_value(hybrid()).unwrap();
        unknown["encryption"]["scheme"] = "DES".into();
        let (status, error) = h
            .call("POST", "/storage_policy", Some(&unknown.to_string()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("encryption.scheme"),
            "{error}"
        );

        let mut invalid = hybrid();
        invalid.backends = vec![999];
        let (status, error) = h
            .call(
                "POST",
                "/storage_policy",
                Some(&serde_json::to_string(&invalid).unwrap()),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            error["error"]["message"],
            "backends: no storage location has id 999"
        );
        let (status, _) = h
            .call(
                "PUT",
                "/storage_policy",
                Some(&serde_json::to_string(&invalid).unwrap()),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[tokio::test]
    async fn locations_are_listed_by_kind() {
        let h = harness().await;
        let (status, cloud) = h.call("GET", "/cloud_locations/", None).await;
        assert_eq!(status, StatusCode::OK);
        let ids: Vec<u64> = cloud
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, vec![144, 145]);
        assert_eq!(cloud[0]["rtt_upload_1B_ms"], json!([]));
        assert_eq!(cloud[0]["available"], false);
        let (status, edge) = h.call("GET", "/edge_locations", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(edge.as_array().unwrap().len(), 3);
        assert_eq!(edge[0]["name"], "edge-1");
        assert!(edge[0].get("cluster").is_some());
    }

    #[test]
    fn the_document_lists_every_route() {
        let doc = openapi();
        let mut paths: Vec<&str> = doc.paths.paths.keys().map(String::as_str).collect();
        paths.sort_unstable();
        assert_eq!(
            paths,
            vec![
                "/cloud_locations",
                "/edge_locations",
                "/storage_policy",
                "/storage_policy/{name}"
            ]
        );
        let schemas = doc.components.as_ref().unwrap();
        for name in [
            "StoragePolicy",
            "RedundancyScheme",
            "CloudLocationView",
            "EdgeLocationView",
        ] {
            assert!(schemas.schemas.contains_key(name), "{name}");
        }
    }
}

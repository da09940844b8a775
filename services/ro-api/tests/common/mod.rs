//! In-process harness: the whole ro-api router over an in-memory embedded store.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use serrano_datastore::{EmbeddedStore, KvStore};
use serrano_service::Secret;
use tower::ServiceExt;

pub const TOKEN: &str = "test-token-0123456789";
pub const MAX_BODY: usize = 64 * 1024;

pub const APP_YAML: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n    group_id: g1\nspec:\n  replicas: 1\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\n  labels:\n    group_id: g1\n";

pub struct Api {
    pub kv: Arc<dyn KvStore>,
    pub router: Router,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The `error.code` of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }

    pub fn etag(&self) -> i64 {
        self.headers[header::ETAG]
            .to_str()
            .unwrap()
            .trim_matches('"')
            .parse()
            .unwrap()
    }
}

impl Api {
    pub fn new() -> Self {
        let kv: Arc<dyn KvStore> = Arc::new(EmbeddedStore::in_memory());
        let router = serrano_ro_api::router(kv.clone(), vec![Secret::new(TOKEN)], MAX_BODY);
        Self { kv, router }
    }

    pub async fn raw(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call_with(method, path, body, &[]).await
    }

    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("/api/v1/orchestrator{path}"))
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = match body {
            Some(body) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap(),
            None => builder.body(Body::empty()).unwrap(),
        };
        self.raw(request).await
    }

    /// Sends raw bytes as a JSON body.
    pub async fn send_bytes(&self, method: Method, path: &str, bytes: Vec<u8>) -> Answer {
        let request = Request::builder()
            .method(method)
            .uri(format!("/api/v1/orchestrator{path}"))
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(bytes))
            .unwrap();
        self.raw(request).await
    }

    pub async fn create_deployment(&self) -> String {
        let answer = self
            .call(
                Method::POST,
                "/deployments",
                Some(
                    json!({"name": "web-app", "deployment_description": APP_YAML,
                    "deployment_objectives": [{"total_execution_time": 200}]}),
                ),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
        answer.body["deployment_uuid"].as_str().unwrap().to_owned()
    }

    pub async fn register_cluster(&self, uuid: &str, kind: &str) {
        let answer = self
            .call(
                Method::POST,
                "/clusters",
                Some(json!({"cluster_uuid": uuid, "type": kind, "info": {"nodes": [{"name": "n1", "labels": {}}]}})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    }

    /// The JSON stored at a datastore key.
    pub async fn stored(&self, key: &str) -> Option<Value> {
        self.kv
            .get(key)
            .await
            .unwrap()
            .map(|kv| serde_json::from_slice(&kv.value).unwrap())
    }
}

//! Typed HTTP clients for the SERRANO REST APIs. [`RoClient`] speaks the Orchestration API
//! (`/api/v1/orchestrator`): bearer token, the `{"error":{code,message}}` shape turned into
//! [`ClientError::Api`], and watch streams decoded line by line.

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
pub use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serrano_model::{
    Assignment, Bundle, Cluster, ClusterSummary, Deployment, DeploymentRequest, StoragePolicy,
    StoragePolicyRequest, deployment::DeploymentUpdate,
};
use uuid::Uuid;

/// What a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The service answered with an error status and its error body.
    #[error("{status}: {code}: {message}")]
    Api {
        status: StatusCode,
        code: String,
        message: String,
    },
    /// The request did not complete (connection refused, timeout, TLS).
    #[error("request failed: {0}")]
    Transport(#[from] reqwest::Error),
    /// The answer was not what the API documents.
    #[error("unexpected answer: {0}")]
    Decode(String),
}

impl ClientError {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

/// A write's answer: the id fields of the object and its new revision.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Written {
    #[serde(default)]
    pub deployment_uuid: Option<Uuid>,
    #[serde(default)]
    pub policy_uuid: Option<Uuid>,
    #[serde(default)]
    pub cluster_uuid: Option<Uuid>,
    #[serde(default)]
    pub request_uuid: Option<Uuid>,
    #[serde(default)]
    pub uuid: Option<Uuid>,
    pub revision: i64,
}

/// One line of a watch stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WatchLine {
    #[serde(rename = "type")]
    pub event_type: String,
    pub key: Option<String>,
    pub revision: Option<i64>,
    pub object: Option<serde_json::Value>,
    pub error: Option<serde_json::Value>,
}

pub type WatchLines = Pin<Box<dyn Stream<Item = Result<WatchLine, ClientError>> + Send>>;

#[derive(Deserialize)]
struct Deployments {
    deployments: Vec<Deployment>,
}

#[derive(Deserialize)]
struct Policies {
    storage_policies: Vec<StoragePolicy>,
}

#[derive(Deserialize)]
struct Clusters {
    clusters: Vec<ClusterSummary>,
}

#[derive(Deserialize)]
struct Assignments {
    assignments: Vec<Assignment>,
}

/// Client of the Orchestration API.
#[derive(Clone, Debug)]
pub struct RoClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl RoClient {
    /// `base_url` is the service root, e.g. `http://127.0.0.1:7102`.
    pub fn new(base_url: &str, token: &str) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Self::with_http(http, base_url, token))
    }

    /// Shares an existing connection pool.
    pub fn with_http(http: reqwest::Client, base_url: &str, token: &str) -> Self {
        Self {
            http,
            base: format!("{}/api/v1/orchestrator", base_url.trim_end_matches('/')),
            token: token.to_owned(),
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let response = checked(builder.timeout(Duration::from_secs(30)).send().await?).await?;
        let bytes = response.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|err| ClientError::Decode(err.to_string()))
    }

    /// GET any path under the API and decode it.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(self.request(Method::GET, path)).await
    }

    /// DELETE any path under the API and decode the answer.
    pub async fn delete_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(self.request(Method::DELETE, path)).await
    }

    /// Sends `body` with `method` to any path under the API.
    pub async fn send_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send(self.request(method, path).json(body)).await
    }

    pub async fn create_deployment(
        &self,
        request: &DeploymentRequest,
    ) -> Result<Written, ClientError> {
        self.send_json(Method::POST, "/deployments", request).await
    }

    /// Updates a deployment; with `if_match` the update only happens at that revision.
    pub async fn update_deployment(
        &self,
        update: &DeploymentUpdate,
        if_match: Option<i64>,
    ) -> Result<Written, ClientError> {
        let mut builder = self.request(Method::PUT, "/deployments").json(update);
        if let Some(revision) = if_match {
            builder = builder.header(reqwest::header::IF_MATCH, format!("\"{revision}\""));
        }
        self.send(builder).await
    }

    pub async fn list_deployments(&self) -> Result<Vec<Deployment>, ClientError> {
        Ok(self
            .get_json::<Deployments>("/deployments")
            .await?
            .deployments)
    }

    /// The deployment and its revision (from the `ETag`).
    pub async fn get_deployment(&self, uuid: &Uuid) -> Result<(Deployment, i64), ClientError> {
        let response = checked(
            self.request(Method::GET, &format!("/deployments/{uuid}"))
                .timeout(Duration::from_secs(30))
                .send()
                .await?,
        )
        .await?;
        let revision = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim_matches('"').parse().ok())
            .ok_or_else(|| ClientError::Decode("no ETag revision".to_owned()))?;
        let body: Deployments = serde_json::from_slice(&response.bytes().await?)
            .map_err(|err| ClientError::Decode(err.to_string()))?;
        let deployment = body
            .deployments
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Decode("empty deployments list".to_owned()))?;
        Ok((deployment, revision))
    }

    pub async fn delete_deployment(&self, uuid: &Uuid) -> Result<Written, ClientError> {
        self.send(self.request(Method::DELETE, &format!("/deployments/{uuid}")))
            .await
    }

    pub async fn deployment_logs(&self, uuid: &Uuid) -> Result<serde_json::Value, ClientError> {
        self.get_json(&format!("/deployments/logs/{uuid}")).await
    }

    pub async fn create_storage_policy(
        &self,
        request: &StoragePolicyRequest,
    ) -> Result<Written, ClientError> {
        self.send_json(Method::POST, "/storage_policies", request)
            .await
    }

    pub async fn list_storage_policies(&self) -> Result<Vec<StoragePolicy>, ClientError> {
        Ok(self
            .get_json::<Policies>("/storage_policies")
            .await?
            .storage_policies)
    }

    pub async fn register_cluster(&self, cluster: &Cluster) -> Result<Written, ClientError> {
        self.send_json(Method::POST, "/clusters", cluster).await
    }

    /// Clusters, optionally only those seen within `active` (e.g. `10m`).
    pub async fn list_clusters(
        &self,
        active: Option<&str>,
    ) -> Result<Vec<ClusterSummary>, ClientError> {
        let mut builder = self.request(Method::GET, "/clusters");
        if let Some(active) = active {
            builder = builder.query(&[("active", active)]);
        }
        Ok(self.send::<Clusters>(builder).await?.clusters)
    }

    pub async fn list_assignments(
        &self,
        cluster: Option<&Uuid>,
    ) -> Result<Vec<Assignment>, ClientError> {
        let mut builder = self.request(Method::GET, "/assignments");
        if let Some(cluster) = cluster {
            builder = builder.query(&[("cluster_uuid", cluster.to_string())]);
        }
        Ok(self.send::<Assignments>(builder).await?.assignments)
    }

    pub async fn get_bundle(&self, uuid: &Uuid) -> Result<Bundle, ClientError> {
        self.get_json(&format!("/bundles/{uuid}")).await
    }

    /// Opens a watch (`/deployments/watch`, `/clusters/watch`, `/assignments/watch/{cluster}`,
    /// `/bundles/watch/{assignment}`), optionally replaying from `revision`.
    pub async fn watch(
        &self,
        path: &str,
        revision: Option<i64>,
    ) -> Result<WatchLines, ClientError> {
        let mut builder = self.request(Method::GET, path);
        if let Some(revision) = revision {
            builder = builder.query(&[("revision", revision)]);
        }
        let response = checked(builder.send().await?).await?;
        Ok(Box::pin(ndjson_lines(response.bytes_stream())))
    }
}

/// Turns an error status into [`ClientError::Api`] with the service's code and message.
async fn checked(response: reqwest::Response) -> Result<reqwest::Response, ClientError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let bytes = response.bytes().await.unwrap_or_default();
    let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(body) => (body.error.code, body.error.message),
        Err(_) => (
            "http".to_owned(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ),
    };
    Err(ClientError::Api {
        status,
        code,
        message,
    })
}

/// Splits a byte stream into JSON lines.
fn ndjson_lines<S>(bytes: S) -> impl Stream<Item = Result<WatchLine, ClientError>>
where
    S: Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Send + 'static,
{
    futures::stream::unfold(
        (Box::pin(bytes), Vec::<u8>::new(), false),
        |(mut bytes, mut buffer, done)| async move {
            loop {
                if let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=end).collect();
                    let parsed = serde_json::from_slice::<WatchLine>(&line)
                        .map_err(|err| ClientError::Decode(err.to_string()));
                    return Some((parsed, (bytes, buffer, done)));
                }
                if done {
                    return None;
                }
                match bytes.next().await {
                    Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
                    Some(Err(err)) => return Some((Err(err.into()), (bytes, buffer, true))),
                    None => return None,
                }
            }
        },
    )
}

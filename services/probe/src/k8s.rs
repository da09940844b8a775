//! The Kubernetes probe (`Probe.k8s`, originals.md 3.5): reads a cluster through its REST API
//! (`/api/v1/nodes`, `/api/v1/pods`, `/apis/apps/v1/deployments`, `/api/v1/persistentvolumes`,
//! `/apis/metrics.k8s.io/v1beta1/pods`) with a bearer token, and each worker node's
//! node-exporter (`http://<InternalIP>:9100/metrics`).
//!
//! Control-plane nodes (`node-role.kubernetes.io/control-plane` or `.../master` label) are
//! skipped: applications are not placed there. No Kubernetes API server can run on the build
//! machine, so the tests drive this module against a recorded-response HTTP server that serves
//! realistic API documents and node-exporter text (`tests/k8s.rs`); nothing here depends on
//! a particular client library.
//!
//! A node whose exporter does not answer is reported with `"up": false`; a cluster without a
//! metrics server still lists its pods, without `usage`. Any other API failure fails the call.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serrano_service::{Secret, error_chain};

mod objects;

use objects::{
    DeploymentObject, List, NodeObject, PersistentVolumeObject, PodMetricsObject, PodObject,
    UsageIndex, is_control_plane, node_inventory, pod_usage, pod_views, running_pods_on,
};
pub use objects::{LabelSelector, SelectorRequirement, node_counters};

use crate::model::{
    Deployment, Inventory, KubernetesMonitoring, MonitoringData, PersistentVolume, Pod,
};
use crate::nodes::NodeMetrics;
use crate::prom;
use crate::source::{Http, Source, SourceError, Target, join_url};
use serrano_model::quantity;

/// Where the Kubernetes probe reads from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct K8sConfig {
    /// Base URL of the API server.
    pub api_url: String,
    /// Bearer token of a service account allowed to list nodes, pods, deployments, persistent
    /// volumes and pod metrics.
    pub token: Secret,
    /// File holding the token instead (in-cluster: the service account's token file); read at
    /// every call, because bound tokens are rotated.
    pub token_file: Option<PathBuf>,
    /// PEM bundle of the cluster CA; when set, only it is trusted for the API server.
    pub ca_file: Option<PathBuf>,
    /// Accept any API server certificate (test clusters only).
    pub insecure_skip_tls_verify: bool,
    /// Restrict pods and deployments to one namespace (all namespaces when unset).
    pub namespace: Option<String>,
    /// Port of node-exporter on every node.
    pub node_exporter_port: u16,
    /// `http` or `https` for node-exporter.
    pub node_exporter_scheme: String,
}

impl Default for K8sConfig {
    fn default() -> Self {
        Self {
            api_url: "https://127.0.0.1:6443".to_owned(),
            token: Secret::new(""),
            token_file: None,
            ca_file: None,
            insecure_skip_tls_verify: false,
            namespace: None,
            node_exporter_port: 9100,
            node_exporter_scheme: "http".to_owned(),
        }
    }
}

impl K8sConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.api_url.starts_with("http://") || self.api_url.starts_with("https://")) {
            return Err("k8s.api_url: an http:// or https:// URL".to_owned());
        }
        if !matches!(self.node_exporter_scheme.as_str(), "http" | "https") {
            return Err("k8s.node_exporter_scheme: http or https".to_owned());
        }
        if self.node_exporter_port == 0 {
            return Err("k8s.node_exporter_port: a port number".to_owned());
        }
        if let Some(namespace) = &self.namespace {
            // A DNS-1123 label: it goes into URL paths.
            let ok = !namespace.is_empty()
                && namespace.len() <= 63
                && namespace
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                return Err("k8s.namespace: a Kubernetes namespace name".to_owned());
            }
        }
        Ok(())
    }

    /// The HTTP client for the API server (and node-exporter): the cluster CA when given.
    pub fn client(&self, connect_timeout: Duration) -> Result<reqwest::Client, String> {
        let mut builder = reqwest::Client::builder().connect_timeout(connect_timeout);
        if let Some(path) = &self.ca_file {
            let pem = std::fs::read(path)
                .map_err(|err| format!("k8s.ca_file {}: {err}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|err| format!("k8s.ca_file {}: {}", path.display(), error_chain(&err)))?;
            if certs.is_empty() {
                return Err(format!(
                    "k8s.ca_file {}: no certificate in it",
                    path.display()
                ));
            }
            builder = builder.tls_certs_only(certs);
        }
        if self.insecure_skip_tls_verify {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        builder.build().map_err(|err| error_chain(&err))
    }
}

/// The Kubernetes probe's source.
pub struct K8sSource {
    config: K8sConfig,
    http: Http,
}

/// A concurrently fetched optional part: `None` when the target does not need it.
async fn when<T>(
    wanted: bool,
    fetch: impl Future<Output = Result<T, SourceError>>,
) -> Result<Option<T>, SourceError> {
    if wanted {
        fetch.await.map(Some)
    } else {
        Ok(None)
    }
}

impl K8sSource {
    pub fn new(config: K8sConfig, http: Http) -> Self {
        Self { config, http }
    }

    async fn token(&self) -> Result<Secret, SourceError> {
        match &self.config.token_file {
            Some(path) => tokio::fs::read_to_string(path)
                .await
                .map(|text| Secret::new(text.trim()))
                .map_err(|err| {
                    SourceError::unavailable(format!(
                        "kubernetes token file {}: {err}",
                        path.display()
                    ))
                }),
            None => Ok(self.config.token.clone()),
        }
    }

    /// Every item of a list, following `continue` tokens.
    async fn list<T: DeserializeOwned + Default>(
        &self,
        path: &str,
        token: &Secret,
        timeout: Duration,
    ) -> Result<Vec<T>, SourceError> {
        let mut items = Vec::new();
        let mut next: Option<String> = None;
        // A cluster paging forever would be a bug there; stop after a bound rather than loop.
        for _ in 0..1000 {
            let mut url = format!("{}?limit=500", join_url(&self.config.api_url, path));
            if let Some(token) = &next {
                url.push_str("&continue=");
                url.extend(utf8_percent_encode(token, NON_ALPHANUMERIC));
            }
            let page: List<T> = self
                .http
                .get_json("kubernetes api", &url, Some(token), timeout)
                .await?;
            items.extend(page.items);
            match page.metadata.continue_token.filter(|t| !t.is_empty()) {
                Some(token) => next = Some(token),
                None => return Ok(items),
            }
        }
        Err(SourceError::unavailable(format!(
            "kubernetes api: {path} kept paging"
        )))
    }

    fn namespaced(&self, group_path: &str, resource: &str) -> String {
        match &self.config.namespace {
            Some(namespace) => format!("{group_path}/namespaces/{namespace}/{resource}"),
            None => format!("{group_path}/{resource}"),
        }
    }

    async fn workers(
        &self,
        token: &Secret,
        timeout: Duration,
    ) -> Result<Vec<NodeObject>, SourceError> {
        let nodes: Vec<NodeObject> = self.list("/api/v1/nodes", token, timeout).await?;
        Ok(nodes.into_iter().filter(|n| !is_control_plane(n)).collect())
    }

    async fn pods(&self, token: &Secret, timeout: Duration) -> Result<Vec<PodObject>, SourceError> {
        self.list(&self.namespaced("/api/v1", "pods"), token, timeout)
            .await
    }

    async fn deployments(
        &self,
        token: &Secret,
        timeout: Duration,
    ) -> Result<Vec<DeploymentObject>, SourceError> {
        self.list(
            &self.namespaced("/apis/apps/v1", "deployments"),
            token,
            timeout,
        )
        .await
    }

    /// Pod usage from the metrics API; a cluster without one gives an empty index (logged).
    async fn usage(&self, token: &Secret, timeout: Duration) -> UsageIndex {
        let path = self.namespaced("/apis/metrics.k8s.io/v1beta1", "pods");
        match self.list::<PodMetricsObject>(&path, token, timeout).await {
            Ok(items) => items
                .iter()
                .filter_map(|m| {
                    let usage = pod_usage(m)?;
                    Some((
                        (m.metadata.namespace.clone(), m.metadata.name.clone()),
                        usage,
                    ))
                })
                .collect(),
            Err(err) => {
                tracing::warn!(error = %err, "pod metrics unavailable; pods reported without usage");
                UsageIndex::new()
            }
        }
    }

    async fn node_metrics(
        &self,
        node: &NodeObject,
        running_pods: u64,
        timeout: Duration,
    ) -> NodeMetrics {
        let name = &node.metadata.name;
        let now = crate::unix_now();
        let Some(ip) = node
            .status
            .addresses
            .iter()
            .find(|a| a.kind == "InternalIP")
            .map(|a| a.address.as_str())
        else {
            return NodeMetrics::down(name, now, "node has no InternalIP address".to_owned());
        };
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_owned()
        };
        let url = format!(
            "{}://{host}:{}/metrics",
            self.config.node_exporter_scheme, self.config.node_exporter_port
        );
        let what = format!("node-exporter of {name}");
        let text = match self.http.get_text(&what, &url, None, timeout).await {
            Ok(text) => text,
            Err(err) => return NodeMetrics::down(name, now, err.to_string()),
        };
        match prom::parse(&text) {
            Ok(scrape) => {
                let mut counters = node_counters(&scrape);
                counters.running_pods = Some(running_pods);
                counters.into_metrics(name, now)
            }
            Err(err) => NodeMetrics::down(name, now, format!("{what}: {err}")),
        }
    }
}

#[async_trait]
impl Source for K8sSource {
    async fn inventory(&self, timeout: Duration) -> Result<Inventory, SourceError> {
        let token = self.token().await?;
        let workers = self.workers(&token, timeout).await?;
        Ok(Inventory::Nodes {
            nodes: workers.iter().map(node_inventory).collect(),
        })
    }

    async fn monitor(
        &self,
        timeout: Duration,
        target: Target,
    ) -> Result<MonitoringData, SourceError> {
        let token = self.token().await?;
        let (workers, pods, volumes, deployments, usage) = tokio::join!(
            when(target.resources(), self.workers(&token, timeout)),
            self.pods(&token, timeout),
            when(
                target.resources(),
                self.list::<PersistentVolumeObject>("/api/v1/persistentvolumes", &token, timeout)
            ),
            when(target.applications(), self.deployments(&token, timeout)),
            async {
                if target.applications() {
                    self.usage(&token, timeout).await
                } else {
                    UsageIndex::new()
                }
            },
        );
        let pods = pods?;
        let mut data = KubernetesMonitoring::default();
        if let Some(workers) = workers? {
            let nodes = futures::future::join_all(workers.iter().map(|node| {
                let running = running_pods_on(&pods, &node.metadata.name);
                self.node_metrics(node, running, timeout)
            }))
            .await;
            data.nodes = Some(nodes);
        }
        if let Some(volumes) = volumes? {
            data.persistent_volumes = Some(
                volumes
                    .iter()
                    .map(|pv| {
                        let capacity = pv.spec.capacity.get("storage").cloned().unwrap_or_default();
                        PersistentVolume {
                            name: pv.metadata.name.clone(),
                            capacity_storage_bytes: quantity::bytes(&capacity).ok(),
                            capacity_storage: capacity,
                        }
                    })
                    .collect(),
            );
        }
        if let Some(deployments) = deployments? {
            data.deployments = Some(
                deployments
                    .iter()
                    .map(|d| Deployment {
                        name: d.metadata.name.clone(),
                        namespace: d.metadata.namespace.clone(),
                        // Kubernetes defaults an unset replica count to 1.
                        replicas: d.spec.replicas.unwrap_or(1),
                        ready_replicas: d.status.ready_replicas,
                        available_replicas: d.status.available_replicas,
                    })
                    .collect(),
            );
            data.pods = Some(pod_views(&pods, &usage));
        }
        Ok(MonitoringData::Kubernetes(data))
    }

    async fn application(
        &self,
        timeout: Duration,
        deployment: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<Pod>, SourceError> {
        let token = self.token().await?;
        let (deployments, pods, usage) = tokio::join!(
            self.deployments(&token, timeout),
            self.pods(&token, timeout),
            self.usage(&token, timeout),
        );
        let (deployments, pods) = (deployments?, pods?);
        let selected: Vec<&DeploymentObject> = deployments
            .iter()
            .filter(|d| d.metadata.name == deployment)
            .filter(|d| namespace.is_none_or(|ns| d.metadata.namespace == ns))
            .collect();
        if selected.is_empty() {
            return Err(SourceError::NotFound(match namespace {
                Some(ns) => format!("no deployment {deployment} in namespace {ns}"),
                None => format!("no deployment {deployment}"),
            }));
        }
        let members: Vec<PodObject> = pods
            .into_iter()
            .filter(|pod| {
                selected.iter().any(|d| {
                    d.metadata.namespace == pod.metadata.namespace
                        && d.spec
                            .selector
                            .as_ref()
                            .is_some_and(|s| s.matches(&pod.metadata.labels))
                })
            })
            .collect();
        Ok(pod_views(&members, &usage))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn config_rules() {
        let mut config = K8sConfig::default();
        assert_eq!(config.validate(), Ok(()));
        config.namespace = Some("Bad_NS".to_owned());
        assert!(config.validate().is_err());
        config.namespace = Some("team-a".to_owned());
        config.node_exporter_scheme = "ftp".to_owned();
        assert!(config.validate().is_err());
        config.node_exporter_scheme = "http".to_owned();
        config.api_url = "127.0.0.1:6443".to_owned();
        assert!(config.validate().is_err());
        let missing = K8sConfig {
            ca_file: Some(PathBuf::from("/nonexistent/ca.pem")),
            ..K8sConfig::default()
        };
        assert!(
            missing
                .client(Duration::from_secs(1))
                .unwrap_err()
                .contains("ca_file")
        );
    }
}

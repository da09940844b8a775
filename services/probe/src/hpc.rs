//! The HPC probe (`Probe.HPC`, originals.md 3.5): reads one infrastructure through the HPC
//! gateway (D6.7 4.6): `GET /services` for the job templates it runs and
//! `GET /infrastructure/{name}/telemetry` for its partitions, with the gateway's bearer token.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serrano_service::Secret;

use crate::model::{
    HpcInventory, HpcMonitoring, HpcService, Inventory, MonitoringData, PartitionSummary,
    PartitionTelemetry,
};
use crate::source::{Http, Source, SourceError, Target, join_url};

/// Where the HPC probe reads from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HpcConfig {
    /// Base URL of the HPC gateway.
    pub gateway_url: String,
    /// Bearer token of the gateway.
    pub token: Secret,
    /// Name of the infrastructure (as registered at the gateway) this probe monitors.
    pub infrastructure: String,
}

impl Default for HpcConfig {
    fn default() -> Self {
        Self {
            gateway_url: "http://127.0.0.1:7112".to_owned(),
            token: Secret::new(""),
            infrastructure: String::new(),
        }
    }
}

impl HpcConfig {
    /// The infrastructure name goes into a URL path: the gateway's own naming rule keeps it
    /// safe there.
    pub fn validate(&self) -> Result<(), String> {
        let name_ok = !self.infrastructure.is_empty()
            && self.infrastructure.len() <= 64
            && self
                .infrastructure
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err("hpc.infrastructure: 1-64 characters of A-Z a-z 0-9 . _ -".to_owned());
        }
        if !(self.gateway_url.starts_with("http://") || self.gateway_url.starts_with("https://")) {
            return Err("hpc.gateway_url: an http:// or https:// URL".to_owned());
        }
        Ok(())
    }
}

/// The gateway's `InfrastructureTelemetry` (only what the probe uses).
#[derive(Debug, Deserialize)]
struct GatewayTelemetry {
    name: String,
    scheduler: String,
    partitions: Vec<PartitionTelemetry>,
}

/// The HPC probe's source.
pub struct HpcSource {
    config: HpcConfig,
    http: Http,
}

impl HpcSource {
    pub fn new(config: HpcConfig, http: Http) -> Self {
        Self { config, http }
    }

    async fn telemetry(&self, timeout: Duration) -> Result<GatewayTelemetry, SourceError> {
        let url = join_url(
            &self.config.gateway_url,
            &format!("infrastructure/{}/telemetry", self.config.infrastructure),
        );
        self.http
            .get_json("hpc gateway", &url, Some(&self.config.token), timeout)
            .await
            // The probe's one infrastructure missing at the gateway is the gateway's fault, not
            // a missing resource of the caller: 503 like any other source failure.
            .map_err(|err| match err {
                SourceError::NotFound(message) => SourceError::Unavailable(message),
                other => other,
            })
    }

    async fn services(&self, timeout: Duration) -> Result<Vec<HpcService>, SourceError> {
        let url = join_url(&self.config.gateway_url, "services");
        self.http
            .get_json("hpc gateway", &url, Some(&self.config.token), timeout)
            .await
            .map_err(|err| match err {
                SourceError::NotFound(message) => SourceError::Unavailable(message),
                other => other,
            })
    }
}

#[async_trait]
impl Source for HpcSource {
    async fn inventory(&self, timeout: Duration) -> Result<Inventory, SourceError> {
        let (services, telemetry) = tokio::join!(self.services(timeout), self.telemetry(timeout));
        let (services, telemetry) = (services?, telemetry?);
        Ok(Inventory::Hpc(HpcInventory {
            name: telemetry.name,
            scheduler: telemetry.scheduler,
            services,
            partitions: telemetry
                .partitions
                .into_iter()
                .map(|p| PartitionSummary {
                    name: p.name,
                    total_nodes: p.total_nodes,
                    total_cpus: p.total_cpus,
                })
                .collect(),
        }))
    }

    /// Every partition, whatever the target: an HPC system has no applications the probe sees.
    async fn monitor(
        &self,
        timeout: Duration,
        _target: Target,
    ) -> Result<MonitoringData, SourceError> {
        let telemetry = self.telemetry(timeout).await?;
        Ok(MonitoringData::Hpc(HpcMonitoring {
            name: telemetry.name,
            scheduler: telemetry.scheduler,
            partitions: telemetry.partitions,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_the_infrastructure_name_and_url() {
        let mut config = HpcConfig {
            infrastructure: "hlrs-hawk_1.x".to_owned(),
            ..HpcConfig::default()
        };
        assert_eq!(config.validate(), Ok(()));
        for bad in ["", "a/b", "a b", "../x"] {
            config.infrastructure = bad.to_owned();
            assert!(config.validate().is_err(), "{bad:?}");
        }
        config.infrastructure = "ok".to_owned();
        config.gateway_url = "ftp://x".to_owned();
        assert!(config.validate().is_err());
    }
}

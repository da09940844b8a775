//! The cloud and edge storage locations of the platform (D6.7 4.3.3.2 step 2, 4.4.3 Figure 26):
//! the storage gateway's `/cloud_locations` and `/edge_locations`, copied into the operational DB
//! (`cloud_storage_locations`, `edge_storage`) by a periodic collector and on every request, so
//! that the last copy can be served while the gateway is down.
//!
//! Each copied document carries `fetched_at_ms`, the copy's generation: a refresh inserts the new
//! generation first and then deletes older ones, so a concurrent reader never sees an empty
//! collection; readers keep only the newest generation.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use serrano_docstore::{DocError, DocStore, Filter, FindOptions};
use serrano_service::Secret;
use tokio::sync::Mutex;

use crate::store::{CLOUD_STORAGE_LOCATIONS, EDGE_STORAGE, unix_now_ms};

/// The generation field of copied documents.
pub const GENERATION_FIELD: &str = "fetched_at_ms";
/// Most locations accepted from the gateway per kind.
pub const MAX_LOCATIONS: usize = 10_000;

/// The storage gateway's REST API (bearer token = the gateway's token).
#[derive(Debug, Clone)]
pub struct GatewayClient {
    http: reqwest::Client,
    /// Base URL without a trailing slash.
    url: String,
    token: Option<Secret>,
}

impl GatewayClient {
    pub fn new(http: reqwest::Client, url: &str, token: Option<Secret>) -> Self {
        Self {
            http,
            url: url.trim_end_matches('/').to_owned(),
            token,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// `GET {gateway}{path}`: a JSON array of objects.
    async fn list(&self, path: &str, timeout: Duration) -> Result<Vec<Value>, String> {
        let url = format!("{}{path}", self.url);
        let mut request = self.http.get(&url).timeout(timeout);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        let describe = |err: reqwest::Error| {
            if err.is_timeout() {
                format!("{url} did not answer within {} s", timeout.as_secs())
            } else {
                format!("{url}: {}", serrano_service::error_chain(&err))
            }
        };
        let response = request.send().await.map_err(describe)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(describe)?;
        if !status.is_success() {
            return Err(format!(
                "{url} answered {}: {}",
                status.as_u16(),
                crate::agents::error_message(&bytes)
            ));
        }
        let list: Vec<Value> = serde_json::from_slice(&bytes)
            .map_err(|err| format!("{url} answered something else than a JSON array: {err}"))?;
        if list.len() > MAX_LOCATIONS {
            return Err(format!(
                "{url} listed {} locations, more than {MAX_LOCATIONS}",
                list.len()
            ));
        }
        if list.iter().any(|l| !l.is_object()) {
            return Err(format!("{url} listed a location that is not an object"));
        }
        Ok(list)
    }
}

/// Both location lists and when they were fetched.
#[derive(Debug, Clone, PartialEq)]
pub struct LocationLists {
    pub cloud: Vec<Value>,
    pub edge: Vec<Value>,
    /// Unix milliseconds of the fetch (of the older list, when they differ).
    pub fetched_at_ms: i64,
}

/// The location copies and their refresh.
pub struct StorageLocations {
    docs: Arc<dyn DocStore>,
    gateway: Option<GatewayClient>,
    /// The last generation written; refreshes are serialised so generations increase.
    last_generation: Mutex<Option<i64>>,
}

impl std::fmt::Debug for StorageLocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageLocations")
            .field("docs", &self.docs.kind())
            .field("gateway", &self.gateway)
            .finish_non_exhaustive()
    }
}

impl StorageLocations {
    pub fn new(docs: Arc<dyn DocStore>, gateway: Option<GatewayClient>) -> Self {
        Self {
            docs,
            gateway,
            last_generation: Mutex::new(None),
        }
    }

    pub fn gateway(&self) -> Option<&GatewayClient> {
        self.gateway.as_ref()
    }

    /// Fetches both lists from the gateway and replaces the copies. `Err` says why (gateway
    /// down, bad answer, or the copy could not be written).
    pub async fn refresh(&self, timeout: Duration) -> Result<LocationLists, String> {
        let Some(gateway) = &self.gateway else {
            return Err("no storage gateway is configured".to_owned());
        };
        let (cloud, edge) = tokio::join!(
            gateway.list("/cloud_locations", timeout),
            gateway.list("/edge_locations", timeout)
        );
        let (cloud, edge) = (cloud?, edge?);
        let mut last = self.last_generation.lock().await;
        let generation = match *last {
            Some(previous) => unix_now_ms().max(previous + 1),
            None => unix_now_ms(),
        };
        let write = async {
            self.replace(CLOUD_STORAGE_LOCATIONS, &cloud, generation)
                .await?;
            self.replace(EDGE_STORAGE, &edge, generation).await
        };
        write
            .await
            .map_err(|err| format!("cannot store the copy of the storage locations: {err}"))?;
        *last = Some(generation);
        Ok(LocationLists {
            cloud,
            edge,
            fetched_at_ms: generation,
        })
    }

    async fn replace(
        &self,
        collection: &str,
        list: &[Value],
        generation: i64,
    ) -> Result<(), DocError> {
        let copies: Vec<Value> = list
            .iter()
            .map(|location| {
                let mut doc: Map<String, Value> = location.as_object().cloned().unwrap_or_default();
                doc.insert(GENERATION_FIELD.to_owned(), json!(generation));
                Value::Object(doc)
            })
            .collect();
        if !copies.is_empty() {
            self.docs.insert_many(collection, copies).await?;
        }
        #[allow(clippy::cast_precision_loss)]
        let bound = generation as f64;
        self.docs
            .delete_many(collection, &Filter::all().lt(GENERATION_FIELD, bound))
            .await?;
        Ok(())
    }

    /// The last copies, `None` when there is none (never fetched, or both lists were empty and
    /// this process did not fetch them).
    pub async fn copy(&self) -> Result<Option<LocationLists>, DocError> {
        let (cloud, cloud_generation) = self.newest(CLOUD_STORAGE_LOCATIONS).await?;
        let (edge, edge_generation) = self.newest(EDGE_STORAGE).await?;
        let remembered = *self.last_generation.lock().await;
        let fetched_at_ms = match (cloud_generation, edge_generation) {
            (Some(a), Some(b)) => a.min(b),
            (Some(g), None) | (None, Some(g)) => remembered.map_or(g, |r| r.min(g)),
            (None, None) => match remembered {
                Some(r) => r,
                None => return Ok(None),
            },
        };
        Ok(Some(LocationLists {
            cloud,
            edge,
            fetched_at_ms,
        }))
    }

    async fn newest(&self, collection: &str) -> Result<(Vec<Value>, Option<i64>), DocError> {
        let docs = self
            .docs
            .find(collection, &Filter::all(), &FindOptions::default())
            .await?;
        let generation_of = |d: &Value| d.get(GENERATION_FIELD).and_then(Value::as_i64);
        let newest = docs.iter().filter_map(generation_of).max();
        let Some(newest) = newest else {
            return Ok((Vec::new(), None));
        };
        let list = docs
            .into_iter()
            .filter(|d| generation_of(d) == Some(newest))
            .map(|mut d| {
                if let Some(map) = d.as_object_mut() {
                    map.remove(GENERATION_FIELD);
                }
                d
            })
            .collect();
        Ok((list, Some(newest)))
    }
}

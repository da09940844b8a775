//! The orchestration objects in the datastore, at the spec's etcd keys (originals.md 1.3), and
//! the read-modify-write discipline every update follows: read with its revision, change,
//! compare-and-swap on that revision; a client that named a revision gets 409 when it is stale,
//! a client that did not is retried on a fresh read, so no update is ever lost.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serrano_datastore::{KvStore, Revision, StoreError, TypedCas, TypedStore, Versioned};
use serrano_model::etcd_keys;
use serrano_model::{Assignment, Bundle, Cluster, Deployment, KernelRequest, StoragePolicy};
use serrano_service::ApiError;

/// How often an unconditional update is retried when another writer got in between.
pub const MAX_UPDATE_ATTEMPTS: usize = 16;

/// Typed access to every object family of the orchestrator.
#[derive(Clone)]
pub struct OrchestratorStore {
    pub kv: Arc<dyn KvStore>,
    pub deployments: TypedStore<Deployment>,
    pub storage_policies: TypedStore<StoragePolicy>,
    pub kernels: TypedStore<KernelRequest>,
    pub clusters: TypedStore<Cluster>,
    pub assignments: TypedStore<Assignment>,
    pub bundles: TypedStore<Bundle>,
    pub monitoring: TypedStore<serde_json::Value>,
}

impl OrchestratorStore {
    pub fn new(kv: Arc<dyn KvStore>) -> Self {
        Self {
            deployments: TypedStore::new(kv.clone(), etcd_keys::DEPLOYMENTS),
            storage_policies: TypedStore::new(kv.clone(), etcd_keys::STORAGE_POLICIES),
            kernels: TypedStore::new(kv.clone(), etcd_keys::KERNELS),
            clusters: TypedStore::new(kv.clone(), etcd_keys::CLUSTERS),
            assignments: TypedStore::new(kv.clone(), etcd_keys::ASSIGNMENTS),
            bundles: TypedStore::new(kv.clone(), etcd_keys::BUNDLES),
            monitoring: TypedStore::new(kv.clone(), etcd_keys::MONITORING),
            kv,
        }
    }
}

/// Maps a datastore failure to the API's error shape: an unreachable datastore is a 503 the
/// client may retry; anything else is a server fault.
pub fn store_error(err: StoreError) -> ApiError {
    match err {
        StoreError::Unavailable(message) => {
            ApiError::unavailable(format!("datastore unavailable: {message}"))
        }
        StoreError::Compacted { requested, oldest } => ApiError::new(
            http::StatusCode::GONE,
            "compacted",
            format!(
                "revision {requested} is no longer retained (oldest {oldest}); list again and watch from the list revision"
            ),
        ),
        other => ApiError::internal(other.to_string()),
    }
}

/// Creates `id` only if it does not exist yet; 409 otherwise.
pub async fn create<T>(
    store: &TypedStore<T>,
    id: &str,
    value: &T,
    what: &str,
) -> Result<Revision, ApiError>
where
    T: Serialize + DeserializeOwned + Send + Sync,
{
    match store.create(id, value).await.map_err(store_error)? {
        TypedCas::Written(revision) => Ok(revision),
        TypedCas::Conflict(_) => Err(ApiError::conflict(format!("{what} {id} already exists"))),
    }
}

/// Reads `id` or answers 404.
pub async fn get_or_404<T>(
    store: &TypedStore<T>,
    id: &str,
    what: &str,
) -> Result<Versioned<T>, ApiError>
where
    T: Serialize + DeserializeOwned + Send + Sync,
{
    store
        .get(id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found(format!("{what} {id} not found")))
}

/// Applies `change` to the stored object and writes it back with compare-and-swap.
///
/// With `expected` = Some(r) the update happens only if the object is still at revision r
/// (409 otherwise). With None it is retried on a fresh read when a concurrent writer won, so
/// the change is applied on top of the other writer's, never over it.
pub async fn update<T, F>(
    store: &TypedStore<T>,
    id: &str,
    expected: Option<Revision>,
    what: &str,
    mut change: F,
) -> Result<(T, Revision), ApiError>
where
    T: Serialize + DeserializeOwned + Send + Sync + Clone,
    F: FnMut(&mut T) -> Result<(), ApiError>,
{
    for _ in 0..MAX_UPDATE_ATTEMPTS {
        let current = get_or_404(store, id, what).await?;
        if let Some(expected) = expected
            && expected != current.mod_revision
        {
            return Err(stale(what, id, expected, current.mod_revision));
        }
        let mut value = current.value;
        change(&mut value)?;
        match store
            .update(id, &value, current.mod_revision)
            .await
            .map_err(store_error)?
        {
            TypedCas::Written(revision) => return Ok((value, revision)),
            TypedCas::Conflict(None) => {
                return Err(ApiError::not_found(format!("{what} {id} not found")));
            }
            TypedCas::Conflict(Some(now)) => {
                if let Some(expected) = expected {
                    return Err(stale(what, id, expected, now.mod_revision));
                }
            }
        }
    }
    Err(ApiError::conflict(format!(
        "{what} {id} is being updated concurrently; retry"
    )))
}

/// Like [`update`] without a precondition, but creates the object from `initial()` when it
/// does not exist; a concurrent create or update makes it retry on the fresh state.
pub async fn upsert<T, F>(
    store: &TypedStore<T>,
    id: &str,
    initial: impl Fn() -> T,
    what: &str,
    mut change: F,
) -> Result<(T, Revision), ApiError>
where
    T: Serialize + DeserializeOwned + Send + Sync + Clone,
    F: FnMut(&mut T) -> Result<(), ApiError>,
{
    for _ in 0..MAX_UPDATE_ATTEMPTS {
        let current = store.get(id).await.map_err(store_error)?;
        let (value, outcome) = match current {
            None => {
                let mut value = initial();
                change(&mut value)?;
                let outcome = store.create(id, &value).await.map_err(store_error)?;
                (value, outcome)
            }
            Some(current) => {
                let mut value = current.value;
                change(&mut value)?;
                let outcome = store
                    .update(id, &value, current.mod_revision)
                    .await
                    .map_err(store_error)?;
                (value, outcome)
            }
        };
        if let TypedCas::Written(revision) = outcome {
            return Ok((value, revision));
        }
    }
    Err(ApiError::conflict(format!(
        "{what} {id} is being updated concurrently; retry"
    )))
}

/// Deletes `id` or answers 404; returns the last state.
pub async fn delete_or_404<T>(store: &TypedStore<T>, id: &str, what: &str) -> Result<T, ApiError>
where
    T: Serialize + DeserializeOwned + Send + Sync,
{
    store
        .delete(id)
        .await
        .map_err(store_error)?
        .map(|v| v.value)
        .ok_or_else(|| ApiError::not_found(format!("{what} {id} not found")))
}

fn stale(what: &str, id: &str, expected: Revision, current: Revision) -> ApiError {
    ApiError::conflict(format!(
        "{what} {id} changed since revision {expected} (now at {current}); read it again and retry"
    ))
}

/// Every object under `store`'s prefix plus `sub_prefix`, with the store revision of the read
/// (so that a watch from `revision + 1` misses nothing).
pub async fn list_with_revision<T>(
    store: &TypedStore<T>,
    sub_prefix: &str,
) -> Result<(Vec<Versioned<T>>, Revision), ApiError>
where
    T: Serialize + DeserializeOwned + Send + Sync,
{
    let prefix = format!("{}{sub_prefix}", store.prefix());
    let listed = store.kv().list_prefix(&prefix).await.map_err(store_error)?;
    let mut objects = Vec::with_capacity(listed.kvs.len());
    for kv in listed.kvs {
        // One record this build cannot read (written by another component or version) must not
        // take the whole list down: it is skipped and named in the log.
        let value = match serde_json::from_slice(&kv.value) {
            Ok(value) => value,
            Err(err) => {
                tracing::warn!(key = %kv.key, error = %err, "skipping a stored object that does not decode");
                continue;
            }
        };
        objects.push(Versioned {
            value,
            mod_revision: kv.mod_revision,
            create_revision: kv.create_revision,
        });
    }
    Ok((objects, listed.revision))
}

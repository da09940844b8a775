//! The etcd v3 backend over `etcd-client`.
//!
//! - Connecting is lazy: `connect` succeeds while etcd is down; the channel reconnects by itself,
//!   so a service answers 503 while etcd is down and works again when it is back.
//! - Every unary call is bounded by the configured timeout; transport failures and timeouts map
//!   to `StoreError::Unavailable`.
//! - CAS is one `Txn`: compare (`mod_revision == r`, or `create_revision == 0` for absent), put
//!   on success, get on failure so a `Conflict` carries the current value.
//! - A watch has its own gRPC stream: dropping the returned stream resets it, which cancels the
//!   watch on the server. A broken connection ends the stream with `Unavailable`; a compacted
//!   start revision gives `Compacted`.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions, PutOptions,
    Txn, TxnOp, TxnOpResponse, WatchOptions,
};

use crate::{
    CasOutcome, Expect, KeyValue, KvStore, LeaseId, ListResult, Revision, StoreError, WatchEvent,
    WatchStream,
};

/// gRPC status codes (as numbers, to avoid a direct `tonic` dependency).
const CODE_CANCELLED: i32 = 1;
const CODE_UNKNOWN: i32 = 2;
const CODE_DEADLINE_EXCEEDED: i32 = 4;
const CODE_UNAVAILABLE: i32 = 14;

/// The etcd backend. Cheap to clone (the client is a handle on a shared channel).
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    timeout: Duration,
    endpoints: Vec<String>,
}

impl fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// Creates the client. Does not need etcd to be up: the connection is made on first use and
    /// re-made after failures. Fails only on invalid endpoints.
    pub async fn connect(endpoints: &[String], timeout: Duration) -> Result<Self, StoreError> {
        if endpoints.is_empty() {
            return Err(StoreError::Backend(
                "no etcd endpoints configured".to_string(),
            ));
        }
        let options = ConnectOptions::new()
            .with_connect_timeout(timeout)
            // HTTP/2 pings detect a dead connection under an idle watch.
            .with_keep_alive(Duration::from_secs(10), timeout)
            .with_keep_alive_while_idle(true)
            .with_require_leader(true);
        let client = tokio::time::timeout(timeout, Client::connect(endpoints, Some(options)))
            .await
            .map_err(|_| StoreError::Unavailable("timed out creating the etcd client".into()))?
            .map_err(map_err)?;
        Ok(Self {
            client,
            timeout,
            endpoints: endpoints.to_vec(),
        })
    }

    /// The raw client (administration, tests).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs one etcd call bounded by the timeout.
    async fn call<T>(
        &self,
        fut: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r.map_err(map_err),
            Err(_) => Err(StoreError::Unavailable(format!(
                "etcd did not answer within {:?}",
                self.timeout
            ))),
        }
    }
}

/// Maps client errors: anything about reaching etcd is `Unavailable` (503).
fn map_err(e: etcd_client::Error) -> StoreError {
    match &e {
        etcd_client::Error::GRpcStatus(status) => {
            let code = status.code() as i32;
            let msg = status.message();
            if msg.contains("lease not found") {
                // The caller knows which lease; `with_lease` below fills it in.
                StoreError::LeaseNotFound(0)
            } else if msg.contains("compacted") {
                StoreError::Compacted {
                    requested: 0,
                    oldest: 0,
                }
            } else if matches!(
                code,
                CODE_UNAVAILABLE | CODE_DEADLINE_EXCEEDED | CODE_CANCELLED | CODE_UNKNOWN
            ) || msg.contains("no leader")
            {
                StoreError::Unavailable(e.to_string())
            } else {
                StoreError::Backend(e.to_string())
            }
        }
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => {
            StoreError::Unavailable(e.to_string())
        }
        etcd_client::Error::LeaseKeepAliveError(m) if m.contains("not found") => {
            StoreError::LeaseNotFound(0)
        }
        etcd_client::Error::WatchError(_) | etcd_client::Error::LeaseKeepAliveError(_) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

/// Puts the lease id into a `LeaseNotFound` produced by `map_err`.
fn with_lease(e: StoreError, lease: LeaseId) -> StoreError {
    match e {
        StoreError::LeaseNotFound(_) => StoreError::LeaseNotFound(lease),
        other => other,
    }
}

fn to_kv(kv: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        // Keys written through this crate are UTF-8; foreign bytes are shown lossily.
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        value: kv.value().to_vec(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        version: kv.version(),
        lease: kv.lease(),
    }
}

fn header_revision(h: Option<&etcd_client::ResponseHeader>) -> Result<Revision, StoreError> {
    h.map(|h| h.revision())
        .ok_or_else(|| StoreError::Backend("etcd response without header".to_string()))
}

fn put_options(lease: LeaseId) -> Option<PutOptions> {
    (lease != 0).then(|| PutOptions::new().with_lease(lease))
}

/// The current value from the else-branch `get` of a failed txn.
fn conflict_value(resp: &etcd_client::TxnResponse) -> Option<KeyValue> {
    resp.op_responses().into_iter().find_map(|op| match op {
        TxnOpResponse::Get(g) => g.kvs().first().map(to_kv),
        _ => None,
    })
}

#[async_trait]
impl KvStore for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let mut c = self.client.clone();
        let resp = self.call(c.get(key, None)).await?;
        Ok(resp.kvs().first().map(to_kv))
    }

    async fn put(&self, key: &str, value: Vec<u8>, lease: LeaseId) -> Result<Revision, StoreError> {
        let mut c = self.client.clone();
        let resp = self
            .call(c.put(key, value, put_options(lease)))
            .await
            .map_err(|e| with_lease(e, lease))?;
        header_revision(resp.header())
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expect: Expect,
        value: Vec<u8>,
        lease: LeaseId,
    ) -> Result<CasOutcome, StoreError> {
        let cmp = match expect {
            Expect::Absent => Compare::create_revision(key, CompareOp::Equal, 0),
            // etcd's `mod_revision == 0` would match an absent key; our contract says the key
            // must exist, and no existing key has a revision <= 0.
            Expect::ModRevision(r) if r <= 0 => {
                return Ok(CasOutcome::Conflict(self.get(key).await?));
            }
            Expect::ModRevision(r) => Compare::mod_revision(key, CompareOp::Equal, r),
        };
        let txn = Txn::new()
            .when([cmp])
            .and_then([TxnOp::put(key, value, put_options(lease))])
            .or_else([TxnOp::get(key, None)]);
        let mut c = self.client.clone();
        let resp = self
            .call(c.txn(txn))
            .await
            .map_err(|e| with_lease(e, lease))?;
        if resp.succeeded() {
            Ok(CasOutcome::Written(header_revision(resp.header())?))
        } else {
            Ok(CasOutcome::Conflict(conflict_value(&resp)))
        }
    }

    async fn delete(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let mut c = self.client.clone();
        let resp = self
            .call(c.delete(key, Some(DeleteOptions::new().with_prev_key())))
            .await?;
        Ok(resp.prev_kvs().first().map(to_kv))
    }

    async fn compare_and_delete(
        &self,
        key: &str,
        mod_revision: Revision,
    ) -> Result<CasOutcome, StoreError> {
        if mod_revision <= 0 {
            return Ok(CasOutcome::Conflict(self.get(key).await?));
        }
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, mod_revision)])
            .and_then([TxnOp::delete(key, None)])
            .or_else([TxnOp::get(key, None)]);
        let mut c = self.client.clone();
        let resp = self.call(c.txn(txn)).await?;
        if resp.succeeded() {
            Ok(CasOutcome::Written(header_revision(resp.header())?))
        } else {
            Ok(CasOutcome::Conflict(conflict_value(&resp)))
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        let mut c = self.client.clone();
        let resp = self
            .call(c.delete(prefix, Some(DeleteOptions::new().with_prefix())))
            .await?;
        Ok(u64::try_from(resp.deleted()).unwrap_or(0))
    }

    async fn list_prefix(&self, prefix: &str) -> Result<ListResult, StoreError> {
        let mut c = self.client.clone();
        let resp = self
            .call(
                c.get(
                    prefix,
                    Some(
                        GetOptions::new().with_prefix().with_sort(
                            etcd_client::SortTarget::Key,
                            etcd_client::SortOrder::Ascend,
                        ),
                    ),
                ),
            )
            .await?;
        Ok(ListResult {
            kvs: resp.kvs().iter().map(to_kv).collect(),
            revision: header_revision(resp.header())?,
        })
    }

    async fn scan_prefix(
        &self,
        prefix: &str,
        start: &str,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let from = if start > prefix { start } else { prefix };
        let mut options = GetOptions::new()
            .with_limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .with_sort(etcd_client::SortTarget::Key, etcd_client::SortOrder::Ascend);
        // Range end of a prefix: the prefix with its last byte below 0xff incremented; none
        // (every key from `from` on, "\0" in etcd terms) when there is no such byte.
        let mut end = prefix.as_bytes().to_vec();
        while end.last() == Some(&0xff) {
            end.pop();
        }
        match end.last_mut() {
            Some(last) => {
                *last += 1;
                options = options.with_range(end);
            }
            None => options = options.with_from_key(),
        }
        let mut c = self.client.clone();
        let resp = self.call(c.get(from, Some(options))).await?;
        Ok(resp.kvs().iter().map(to_kv).collect())
    }

    async fn watch_prefix(
        &self,
        prefix: &str,
        start_revision: Option<Revision>,
    ) -> Result<WatchStream, StoreError> {
        let mut options = WatchOptions::new().with_prefix();
        if let Some(r) = start_revision.filter(|r| *r > 0) {
            options = options.with_start_revision(r);
        }
        let mut c = self.client.clone();
        let mut stream = self.call(c.watch(prefix, Some(options))).await?;

        // Wait for the "created" answer so that a watch from None really starts now, and so
        // that errors (compacted, no leader) come back from this call.
        let requested = start_revision.unwrap_or(0);
        let first = self
            .call(stream.message())
            .await?
            .ok_or_else(|| StoreError::Unavailable("etcd closed the watch stream".to_string()))?;
        let mut pending = VecDeque::new();
        if let Some(err) = response_error(&first, requested) {
            return Err(err);
        }
        push_events(&first, &mut pending);

        struct St {
            stream: etcd_client::WatchStream,
            pending: VecDeque<WatchEvent>,
            done: bool,
            requested: Revision,
        }
        let st = St {
            stream,
            pending,
            done: false,
            requested,
        };
        let s = futures::stream::unfold(st, |mut st| async move {
            loop {
                if let Some(ev) = st.pending.pop_front() {
                    return Some((Ok(ev), st));
                }
                if st.done {
                    return None;
                }
                match st.stream.message().await {
                    Ok(Some(resp)) => {
                        if let Some(err) = response_error(&resp, st.requested) {
                            st.done = true;
                            return Some((Err(err), st));
                        }
                        push_events(&resp, &mut st.pending);
                    }
                    Ok(None) => {
                        st.done = true;
                        return Some((
                            Err(StoreError::Unavailable(
                                "etcd closed the watch stream".to_string(),
                            )),
                            st,
                        ));
                    }
                    Err(e) => {
                        st.done = true;
                        let err = match map_err(e) {
                            StoreError::Backend(m) => StoreError::Unavailable(m),
                            other => other,
                        };
                        return Some((Err(err), st));
                    }
                }
            }
        });
        Ok(Box::pin(s))
    }

    async fn grant_lease(&self, ttl_secs: i64) -> Result<LeaseId, StoreError> {
        let mut c = self.client.clone();
        let resp = self.call(c.lease_grant(ttl_secs.max(1), None)).await?;
        if !resp.error().is_empty() {
            return Err(StoreError::Backend(resp.error().to_string()));
        }
        Ok(resp.id())
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        let mut c = self.client.clone();
        // One round trip: the client sends one keep-alive and checks the first answer (TTL <= 0
        // means the lease is gone); the stream is then dropped.
        let (_keeper, _stream) = self
            .call(c.lease_keep_alive(lease))
            .await
            .map_err(|e| with_lease(e, lease))?;
        Ok(())
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError> {
        let mut c = self.client.clone();
        self.call(c.lease_revoke(lease))
            .await
            .map_err(|e| with_lease(e, lease))?;
        Ok(())
    }

    async fn health(&self) -> Result<(), StoreError> {
        let mut c = self.client.clone();
        // A linearizable read of one key: needs a leader and a quorum, costs little.
        self.call(c.get("/serrano/health", Some(GetOptions::new().with_count_only())))
            .await
            .map(|_| ())
    }
}

/// An error carried by a watch response: compaction or cancellation.
fn response_error(resp: &etcd_client::WatchResponse, requested: Revision) -> Option<StoreError> {
    if resp.compact_revision() > 0 {
        return Some(StoreError::Compacted {
            requested,
            oldest: resp.compact_revision() + 1,
        });
    }
    if resp.canceled() {
        let reason = resp.cancel_reason();
        return Some(StoreError::Unavailable(format!(
            "etcd cancelled the watch: {}",
            if reason.is_empty() {
                "no reason"
            } else {
                reason
            }
        )));
    }
    None
}

fn push_events(resp: &etcd_client::WatchResponse, out: &mut VecDeque<WatchEvent>) {
    for ev in resp.events() {
        let Some(kv) = ev.kv() else { continue };
        out.push_back(match ev.event_type() {
            EventType::Put => WatchEvent::Put(to_kv(kv)),
            EventType::Delete => WatchEvent::Delete {
                key: String::from_utf8_lossy(kv.key()).into_owned(),
                revision: kv.mod_revision(),
            },
        });
    }
}

//! Storage policies (D6.7 4.10.1, Figure 56): which locations a bucket's objects go to and how
//! they are erasure coded, compressed and encrypted. A policy names cloud locations in
//! `backends` and SERRANO edge devices in `edge_devices` by their ids; [`StoragePolicy::validate`]
//! resolves it against the configured [`Locations`] into the [`ResolvedPolicy`] the object
//! pipeline writes with. Policies live in the datastore under [`POLICIES`], one key per name.

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serrano_codec::{Compression, Erasure, Scheme};
use serrano_datastore::{KvStore, StoreError, TypedCas, TypedStore, Versioned};
use utoipa::ToSchema;

use crate::locations::{LocationKind, Locations};
use crate::meta::{MetaError, MetadataStore};

/// Datastore prefix of the policies (the key is the prefix plus the policy's name).
pub const POLICIES: &str = "/serrano/storage/policies/";
/// Most locations (fragments per stripe) a policy may use.
pub const MAX_LOCATIONS: usize = 255;
/// Longest description accepted.
pub const MAX_DESCRIPTION_CHARS: usize = 4096;
/// Assigned ids stay below 2^53, so JavaScript clients read them exactly.
const MAX_ASSIGNED_ID: u64 = (1 << 53) - 1;
/// Attempts of a read-modify-write before giving up on concurrent writers.
const CAS_ATTEMPTS: usize = 8;

/// A storage policy as the API and the configuration carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Hybrid-storage-policy",
    "description": "3 edge devices and one cloud location, 3+1 erasure coded, AES-256, DEFLATE",
    "edge_devices": [1, 2, 3],
    "backends": [144],
    "redundancy": {"scheme": "RLNC", "redundant_packets": 1},
    "compression": {"scheme": "DEFLATE", "level": 7},
    "encryption": {"scheme": "AES", "key_size": 256, "block_mode": "GCM"}
}))]
pub struct StoragePolicy {
    /// Unique id; assigned when a policy is created without one, and kept by updates (an id sent
    /// with `PUT` is ignored).
    #[serde(default)]
    pub id: Option<u64>,
    /// Unique name, 1 to 63 characters of `A-Z a-z 0-9 . _ -`; buckets name their policy by it
    /// (the S3 `LocationConstraint`).
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub team_id: Option<u64>,
    /// Ids of cloud locations (`GET /cloud_locations`).
    #[serde(default)]
    pub backends: Vec<u32>,
    /// Ids of SERRANO edge devices (`GET /edge_locations`).
    #[serde(default)]
    pub edge_devices: Vec<u32>,
    /// Erasure coding; absent means RLNC without redundant fragments.
    #[serde(default)]
    pub redundancy: Redundancy,
    /// Per-stripe compression; null for none.
    #[serde(default)]
    pub compression: Option<PolicyCompression>,
    /// Encryption at rest; null for none.
    #[serde(default)]
    pub encryption: Option<Encryption>,
}

/// How stripes are split over the policy's `n` locations: `n - redundant_packets` data
/// fragments plus `redundant_packets` redundant ones, any `n - redundant_packets` of which
/// rebuild the stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Redundancy {
    #[schema(value_type = RedundancyScheme)]
    pub scheme: Scheme,
    /// Fragments that may be lost (must be less than the number of locations).
    #[schema(maximum = 254)]
    pub redundant_packets: u8,
}

impl Default for Redundancy {
    fn default() -> Self {
        Self {
            scheme: Scheme::Rlnc,
            redundant_packets: 0,
        }
    }
}

/// The erasure code: Reed-Solomon (`RS`) or random linear network coding (`RLNC`).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // Only documents `serrano_codec::Scheme`'s wire form.
enum RedundancyScheme {
    #[serde(rename = "RS")]
    ReedSolomon,
    #[serde(rename = "RLNC")]
    Rlnc,
}

/// Compression of each stripe before it is encrypted and coded (kept only where it pays).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyCompression {
    pub scheme: CompressionScheme,
    /// 1 (fastest) to 9 (smallest).
    #[serde(default = "default_level")]
    #[schema(minimum = 1, maximum = 9, default = 6)]
    pub level: u32,
}

fn default_level() -> u32 {
    6
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum CompressionScheme {
    #[serde(rename = "DEFLATE")]
    Deflate,
}

/// Encryption at rest: AES-256-GCM is the one supported combination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Encryption {
    pub scheme: EncryptionScheme,
    /// Key size in bits: 256.
    #[serde(default = "default_key_size")]
    #[schema(minimum = 256, maximum = 256, default = 256)]
    pub key_size: u32,
    #[serde(default)]
    pub block_mode: BlockMode,
}

fn default_key_size() -> u32 {
    256
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum EncryptionScheme {
    #[serde(rename = "AES")]
    Aes,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum BlockMode {
    #[default]
    #[serde(rename = "GCM")]
    Gcm,
}

/// A validated policy resolved against the locations: what an object written under it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPolicy {
    pub name: String,
    /// Location names in fragment order: the edge devices as listed, then the cloud locations.
    pub locations: Vec<String>,
    pub scheme: Scheme,
    pub data: u8,
    pub parity: u8,
    pub compression: Compression,
    pub encrypted: bool,
}

/// Whether `name` can name a policy.
pub fn check_name(name: &str) -> Result<(), String> {
    let fine = !name.is_empty()
        && name.len() <= 63
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if fine {
        Ok(())
    } else {
        Err(format!(
            "policy name {name:?}: 1 to 63 characters of A-Z, a-z, 0-9, '.', '_' and '-' \
             (not . or ..)"
        ))
    }
}

impl StoragePolicy {
    /// Checks the policy and resolves its locations. Coding parameters are checked by building
    /// the erasure code, which for RLNC can take a while the first time a shape is seen (run it
    /// off the async threads, as [`PolicyStore`] does).
    pub fn validate(&self, locations: &Locations) -> Result<ResolvedPolicy, String> {
        check_name(&self.name)?;
        if self.description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(format!(
                "description: at most {MAX_DESCRIPTION_CHARS} characters"
            ));
        }
        let listed = self.edge_devices.len() + self.backends.len();
        if listed == 0 {
            return Err(
                "a storage policy needs at least one location in backends or edge_devices"
                    .to_owned(),
            );
        }
        if listed > MAX_LOCATIONS {
            return Err(format!(
                "{listed} locations: a storage policy uses at most {MAX_LOCATIONS}"
            ));
        }
        let mut seen = HashSet::new();
        let mut names = Vec::with_capacity(listed);
        let lists = [
            ("edge_devices", &self.edge_devices, LocationKind::Edge),
            ("backends", &self.backends, LocationKind::Cloud),
        ];
        for (field, ids, kind) in lists {
            for &id in ids {
                let location = locations
                    .by_id(id)
                    .ok_or_else(|| format!("{field}: no storage location has id {id}"))?;
                if location.kind() != kind {
                    return Err(match kind {
                        LocationKind::Edge => format!(
                            "edge_devices: location {id} ({}) is a cloud location; list it in backends",
                            location.name()
                        ),
                        LocationKind::Cloud => format!(
                            "backends: location {id} ({}) is an edge device; list it in edge_devices",
                            location.name()
                        ),
                    });
                }
                if !seen.insert(id) {
                    return Err(format!("{field}: location {id} is listed twice"));
                }
                names.push(location.name().to_owned());
            }
        }
        let total = names.len();
        let parity = self.redundancy.redundant_packets;
        let Some(data) = total
            .checked_sub(usize::from(parity))
            .filter(|&data| data >= 1)
        else {
            return Err(format!(
                "redundancy.redundant_packets is {parity}: it must be less than the number of \
                 locations ({total}), so that at least one fragment carries data"
            ));
        };
        Erasure::new(self.redundancy.scheme, data, usize::from(parity))
            .map_err(|err| format!("redundancy: {err}"))?;
        let data = u8::try_from(data)
            .map_err(|_| format!("{data} data fragments: at most {MAX_LOCATIONS}"))?;
        let compression = match self.compression {
            None => Compression::None,
            Some(PolicyCompression { level, .. }) if !(1..=9).contains(&level) => {
                return Err(format!("compression.level is {level}: 1 to 9"));
            }
            Some(PolicyCompression {
                scheme: CompressionScheme::Deflate,
                level,
            }) => Compression::Deflate { level },
        };
        compression
            .validate()
            .map_err(|err| format!("compression: {err}"))?;
        if let Some(encryption) = &self.encryption
            && encryption.key_size != 256
        {
            return Err(format!(
                "encryption.key_size is {}: only 256 (AES-256-GCM) is supported",
                encryption.key_size
            ));
        }
        Ok(ResolvedPolicy {
            name: self.name.clone(),
            locations: names,
            scheme: self.redundancy.scheme,
            data,
            parity,
            compression,
            encrypted: self.encryption.is_some(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// Buckets still use the policy.
    #[error("storage policy {policy} is used by bucket(s) {}", buckets.join(", "))]
    InUse {
        policy: String,
        buckets: Vec<String>,
    },
    #[error("{0}")]
    Unavailable(String),
}

impl From<StoreError> for PolicyError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(message) => {
                PolicyError::Unavailable(format!("datastore unavailable: {message}"))
            }
            other => PolicyError::Unavailable(other.to_string()),
        }
    }
}

impl From<MetaError> for PolicyError {
    fn from(err: MetaError) -> Self {
        PolicyError::Unavailable(err.to_string())
    }
}

fn not_found(name: &str) -> PolicyError {
    PolicyError::NotFound(format!("storage policy {name} not found"))
}

fn exists(name: &str) -> PolicyError {
    PolicyError::Conflict(format!("storage policy {name} already exists"))
}

fn too_busy(name: &str) -> PolicyError {
    PolicyError::Unavailable(format!(
        "storage policy {name} is being changed concurrently; retry"
    ))
}

/// The policies in the datastore, validated against the configured locations.
#[derive(Debug, Clone)]
pub struct PolicyStore {
    store: TypedStore<StoragePolicy>,
    locations: Arc<Locations>,
}

impl PolicyStore {
    pub fn new(kv: Arc<dyn KvStore>, locations: Arc<Locations>) -> Self {
        Self {
            store: TypedStore::new(kv, POLICIES),
            locations,
        }
    }

    pub fn locations(&self) -> &Arc<Locations> {
        &self.locations
    }

    /// Validates `policy` off the async threads (building an RLNC code can take a while).
    pub async fn validate(&self, policy: &StoragePolicy) -> Result<ResolvedPolicy, PolicyError> {
        let policy = policy.clone();
        let locations = self.locations.clone();
        tokio::task::spawn_blocking(move || policy.validate(&locations))
            .await
            .map_err(|err| PolicyError::Unavailable(format!("validation did not finish: {err}")))?
            .map_err(PolicyError::Invalid)
    }

    /// Every policy, sorted by name.
    pub async fn list(&self) -> Result<Vec<StoragePolicy>, PolicyError> {
        let mut policies: Vec<StoragePolicy> = self
            .store
            .list()
            .await?
            .into_iter()
            .map(|v| v.value)
            .collect();
        policies.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(policies)
    }

    pub async fn get(&self, name: &str) -> Result<Option<StoragePolicy>, PolicyError> {
        Ok(self.versioned(name).await?.map(|v| v.value))
    }

    async fn versioned(&self, name: &str) -> Result<Option<Versioned<StoragePolicy>>, PolicyError> {
        if check_name(name).is_err() {
            // No policy can have this name; it must not reach the key space either.
            return Ok(None);
        }
        Ok(self.store.get(name).await?)
    }

    /// The policy named `name`, resolved against the current locations (for writes).
    pub async fn resolve(&self, name: &str) -> Result<ResolvedPolicy, PolicyError> {
        let policy = self.get(name).await?.ok_or_else(|| not_found(name))?;
        self.validate(&policy).await
    }

    /// The policy the S3 bucket `bucket` is bound to.
    pub async fn for_bucket(
        &self,
        meta: &dyn MetadataStore,
        bucket: &str,
    ) -> Result<StoragePolicy, PolicyError> {
        let found = meta
            .bucket(bucket)
            .await?
            .ok_or_else(|| PolicyError::NotFound(format!("bucket {bucket} not found")))?;
        self.get(&found.policy).await?.ok_or_else(|| {
            PolicyError::NotFound(format!(
                "bucket {bucket} uses storage policy {}, which does not exist",
                found.policy
            ))
        })
    }

    /// The id a policy named `name` gets: `requested` if no other policy has it, else a fresh
    /// random one. (Two concurrent creates asking for the same explicit id may both get it.)
    async fn assign_id(&self, name: &str, requested: Option<u64>) -> Result<u64, PolicyError> {
        let taken: Vec<(u64, String)> = self
            .store
            .list()
            .await?
            .into_iter()
            .filter_map(|v| v.value.id.map(|id| (id, v.value.name)))
            .collect();
        if let Some(id) = requested {
            return match taken
                .iter()
                .find(|(used, other)| *used == id && other != name)
            {
                Some((_, other)) => Err(PolicyError::Conflict(format!(
                    "id {id} is already used by storage policy {other}"
                ))),
                None => Ok(id),
            };
        }
        loop {
            let mut bytes = [0u8; 8];
            aws_lc_rs::rand::fill(&mut bytes).map_err(|_| {
                PolicyError::Unavailable("no randomness for a policy id".to_owned())
            })?;
            let id = u64::from_le_bytes(bytes) & MAX_ASSIGNED_ID;
            if id != 0 && !taken.iter().any(|(used, _)| *used == id) {
                return Ok(id);
            }
        }
    }

    /// Stores a new policy; Conflict when one of that name exists. Returns it with its id.
    pub async fn create(&self, policy: StoragePolicy) -> Result<StoragePolicy, PolicyError> {
        self.validate(&policy).await?;
        if self.versioned(&policy.name).await?.is_some() {
            return Err(exists(&policy.name));
        }
        let mut stored = policy;
        stored.id = Some(self.assign_id(&stored.name, stored.id).await?);
        match self.store.create(&stored.name, &stored).await? {
            TypedCas::Written(_) => Ok(stored),
            TypedCas::Conflict(_) => Err(exists(&stored.name)),
        }
    }

    /// Replaces the policy of the same name, keeping its id; NotFound when there is none.
    /// Objects written before keep the placement they were written with.
    pub async fn update(&self, policy: StoragePolicy) -> Result<StoragePolicy, PolicyError> {
        self.validate(&policy).await?;
        for _ in 0..CAS_ATTEMPTS {
            let current = self
                .versioned(&policy.name)
                .await?
                .ok_or_else(|| not_found(&policy.name))?;
            let mut stored = policy.clone();
            stored.id = match current.value.id {
                Some(id) => Some(id),
                None => Some(self.assign_id(&policy.name, None).await?),
            };
            match self
                .store
                .update(&stored.name, &stored, current.mod_revision)
                .await?
            {
                TypedCas::Written(_) => return Ok(stored),
                TypedCas::Conflict(None) => return Err(not_found(&policy.name)),
                TypedCas::Conflict(Some(_)) => continue,
            }
        }
        Err(too_busy(&policy.name))
    }

    /// Deletes the policy unless a bucket uses it (InUse names them). A bucket created with the
    /// policy while it is being deleted can slip through; its writes then fail with NotFound.
    pub async fn delete(&self, name: &str, meta: &dyn MetadataStore) -> Result<(), PolicyError> {
        for _ in 0..CAS_ATTEMPTS {
            let current = self.versioned(name).await?.ok_or_else(|| not_found(name))?;
            let mut users: Vec<String> = meta
                .buckets()
                .await?
                .into_iter()
                .filter(|bucket| bucket.policy == name)
                .map(|bucket| bucket.name)
                .collect();
            if !users.is_empty() {
                users.sort();
                return Err(PolicyError::InUse {
                    policy: name.to_owned(),
                    buckets: users,
                });
            }
            match self
                .store
                .compare_and_delete(name, current.mod_revision)
                .await?
            {
                TypedCas::Written(_) => return Ok(()),
                TypedCas::Conflict(None) => return Err(not_found(name)),
                TypedCas::Conflict(Some(_)) => continue,
            }
        }
        Err(too_busy(name))
    }

    /// Creates or replaces a policy from the configuration (at start). A stored policy keeps
    /// its id unless the configuration gives one.
    pub async fn ensure(&self, policy: StoragePolicy) -> Result<StoragePolicy, PolicyError> {
        self.validate(&policy).await?;
        for _ in 0..CAS_ATTEMPTS {
            let current = self.versioned(&policy.name).await?;
            let mut stored = policy.clone();
            let requested = policy
                .id
                .or_else(|| current.as_ref().and_then(|c| c.value.id));
            stored.id = Some(self.assign_id(&policy.name, requested).await?);
            let outcome = match &current {
                None => self.store.create(&stored.name, &stored).await?,
                Some(current) if current.value == stored => return Ok(stored),
                Some(current) => {
                    self.store
                        .update(&stored.name, &stored, current.mod_revision)
                        .await?
                }
            };
            if let TypedCas::Written(_) = outcome {
                return Ok(stored);
            }
        }
        Err(too_busy(&policy.name))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::locations::LocationConfig;
    use crate::meta::{BucketMeta, KvMetadata};
    use serrano_datastore::EmbeddedStore;

    /// Edge devices 1, 2, 3 and cloud locations 144 and 145 on a temporary directory.
    pub(crate) async fn test_locations(dir: &std::path::Path) -> Arc<Locations> {
        let mut configs: Vec<LocationConfig> = (1..=3)
            .map(|i| {
                LocationConfig::local(
                    i,
                    &format!("edge-{i}"),
                    LocationKind::Edge,
                    dir.join(format!("edge-{i}")),
                )
            })
            .collect();
        for id in [144, 145] {
            configs.push(LocationConfig::local(
                id,
                &format!("cloud-{id}"),
                LocationKind::Cloud,
                dir.join(format!("cloud-{id}")),
            ));
        }
        Arc::new(Locations::open(&configs).await.unwrap())
    }

    /// The sample policy of D6.7 Figure 56.
    pub(crate) fn hybrid() -> StoragePolicy {
        serde_json::from_value(serde_json::json!({
            "name": "Hybrid-storage-policy",
            "description": "3 edge devices and a cloud location, 3+1",
            "edge_devices": [1, 2, 3],
            "backends": [144],
            "redundancy": {"scheme": "RLNC", "redundant_packets": 1},
            "compression": {"scheme": "DEFLATE", "level": 7},
            "encryption": {"scheme": "AES", "key_size": 256, "block_mode": "GCM"}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn the_sample_policy_resolves_edge_devices_first() {
        let dir = tempfile::tempdir().unwrap();
        let locations = test_locations(dir.path()).await;
        let mut policy = hybrid();
        policy.backends = vec![145, 144];
        let resolved = policy.validate(&locations).unwrap();
        assert_eq!(
            resolved,
            ResolvedPolicy {
                name: "Hybrid-storage-policy".into(),
                locations: vec![
                    "edge-1".into(),
                    "edge-2".into(),
                    "edge-3".into(),
                    "cloud-145".into(),
                    "cloud-144".into()
                ],
                scheme: Scheme::Rlnc,
                data: 4,
                parity: 1,
                compression: Compression::Deflate { level: 7 },
                encrypted: true,
            }
        );
        // The minimal body of the original clients: no redundancy, compression or encryption.
        let minimal: StoragePolicy = serde_json::from_str(
            r#"{"id": 5, "name": "edge", "description": "", "edge_devices": [2]}"#,
        )
        .unwrap();
        let resolved = minimal.validate(&locations).unwrap();
        assert_eq!((resolved.data, resolved.parity), (1, 0));
        assert_eq!(resolved.compression, Compression::None);
        assert!(!resolved.encrypted);
        let rs: StoragePolicy = serde_json::from_str(
            r#"{"name": "rs", "backends": [144, 145], "redundancy": {"scheme": "RS", "redundant_packets": 1}}"#,
        )
        .unwrap();
        assert_eq!(rs.validate(&locations).unwrap().scheme, Scheme::ReedSolomon);
        // Serialised as the spec's sample: every field present, nulls included.
        let json = serde_json::to_value(&minimal).unwrap();
        assert_eq!(json["compression"], serde_json::Value::Null);
        assert_eq!(json["redundancy"]["scheme"], "RLNC");
        assert_eq!(json["backends"], serde_json::json!([]));
    }

    #[tokio::test]
    async fn every_rule_is_enforced_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let locations = test_locations(dir.path()).await;
        let check = |change: &dyn Fn(&mut StoragePolicy), expected: &str| {
            let mut policy = hybrid();
            change(&mut policy);
            let message = policy.validate(&locations).unwrap_err();
            assert!(
                message.contains(expected),
                "{message:?} should mention {expected:?}"
            );
        };
        check(&|p| p.name = String::new(), "policy name");
        check(&|p| p.name = "x".repeat(64), "policy name");
        check(&|p| p.name = "a/b".into(), "policy name");
        check(&|p| p.name = "a b".into(), "policy name");
        check(&|p| p.name = "..".into(), "policy name");
        check(&|p| p.description = "d".repeat(4097), "description");
        check(
            &|p| p.backends = vec![999],
            "backends: no storage location has id 999",
        );
        check(
            &|p| p.edge_devices = vec![1, 77],
            "edge_devices: no storage location has id 77",
        );
        check(
            &|p| p.backends = vec![2],
            "backends: location 2 (edge-2) is an edge device",
        );
        check(
            &|p| p.edge_devices = vec![144],
            "edge_devices: location 144 (cloud-144) is a cloud location",
        );
        check(
            &|p| p.edge_devices = vec![1, 2, 1],
            "edge_devices: location 1 is listed twice",
        );
        check(
            &|p| p.backends = vec![144, 144],
            "backends: location 144 is listed twice",
        );
        check(
            &|p| {
                p.backends.clear();
                p.edge_devices.clear();
            },
            "at least one location",
        );
        check(&|p| p.backends = vec![144; 300], "at most 255");
        check(
            &|p| p.redundancy.redundant_packets = 4,
            "redundant_packets is 4: it must be less than the number of locations (4)",
        );
        check(
            &|p| p.redundancy.redundant_packets = 200,
            "redundant_packets is 200",
        );
        check(
            &|p| {
                p.compression = Some(PolicyCompression {
                    scheme: CompressionScheme::Deflate,
                    level: 0,
                })
            },
            "compression.level is 0",
        );
        check(
            &|p| {
                p.compression = Some(PolicyCompression {
                    scheme: CompressionScheme::Deflate,
                    level: 10,
                })
            },
            "compression.level is 10",
        );
        check(
            &|p| {
                if let Some(e) = p.encryption.as_mut() {
                    e.key_size = 128;
                }
            },
            "encryption.key_size is 128",
        );

        // What the wire format itself refuses.
        let refused = |json: serde_json::Value, expected: &str| {
            let error = serde_json::from_value::<StoragePolicy>(json)
                .unwrap_err()
                .to_string();
            assert!(
                error.contains(expected),
                "{error:?} should mention {expected:?}"
            );
        };
        let mut sample = serde_json::to_value(hybrid()).unwrap();
        sample["encryption"]["scheme"] = "DES".into();
        refused(sample, "unknown variant `DES`");
        let mut sample = serde_json::to_value(hybrid()).unwrap();
        sample["encryption"]["block_mode"] = "CBC".into();
        refused(sample, "unknown variant `CBC`");
        let mut sample = serde_json::to_value(hybrid()).unwrap();
        sample["compression"]["scheme"] = "LZ4".into();
        refused(sample, "unknown variant `LZ4`");
        let mut sample = serde_json::to_value(hybrid()).unwrap();
        sample["redundancy"]["scheme"] = "XOR".into();
        refused(sample, "unknown variant `XOR`");
        let mut sample = serde_json::to_value(hybrid()).unwrap();
        sample["replicas"] = 3.into();
        refused(sample, "unknown field `replicas`");
        let mut sample = serde_json::to_value(hybrid()).unwrap();
        sample["redundancy"]["redundant_packets"] = 256.into();
        refused(sample, "invalid value");
    }

    async fn store(dir: &std::path::Path) -> (PolicyStore, KvMetadata) {
        let kv: Arc<dyn KvStore> = Arc::new(EmbeddedStore::open(dir.join("kv")).unwrap());
        let locations = test_locations(dir).await;
        (PolicyStore::new(kv.clone(), locations), KvMetadata::new(kv))
    }

    fn bucket(name: &str, policy: &str) -> BucketMeta {
        BucketMeta {
            name: name.into(),
            created_ms: 1,
            policy: policy.into(),
            owner: "ak".into(),
        }
    }

    #[tokio::test]
    async fn create_update_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let (policies, meta) = store(dir.path()).await;

        let created = policies.create(hybrid()).await.unwrap();
        let id = created.id.unwrap();
        assert!(id > 0 && id <= MAX_ASSIGNED_ID);
        assert_eq!(
            policies.create(hybrid()).await.unwrap_err(),
            PolicyError::Conflict("storage policy Hybrid-storage-policy already exists".into())
        );
        let mut invalid = hybrid();
        invalid.name = "other".into();
        invalid.backends = vec![7];
        assert!(matches!(
            policies.create(invalid).await.unwrap_err(),
            PolicyError::Invalid(message) if message.contains("id 7")
        ));

        // An explicit id is kept, but must be unique.
        let mut second = hybrid();
        second.name = "a-second".into();
        second.id = Some(id);
        assert!(matches!(
            policies.create(second.clone()).await.unwrap_err(),
            PolicyError::Conflict(message) if message.contains("already used by storage policy Hybrid-storage-policy")
        ));
        second.id = Some(42);
        assert_eq!(policies.create(second).await.unwrap().id, Some(42));
        let names: Vec<String> = policies
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, vec!["Hybrid-storage-policy", "a-second"]);

        // Updates keep the id, whatever the body says.
        let mut changed = hybrid();
        changed.id = Some(1);
        changed.description = "changed".into();
        changed.redundancy.redundant_packets = 2;
        let updated = policies.update(changed).await.unwrap();
        assert_eq!(updated.id, Some(id));
        let stored = policies
            .get("Hybrid-storage-policy")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.description, "changed");
        assert_eq!(stored.id, Some(id));
        assert_eq!(
            policies
                .resolve("Hybrid-storage-policy")
                .await
                .unwrap()
                .parity,
            2
        );
        let mut missing = hybrid();
        missing.name = "missing".into();
        assert_eq!(
            policies.update(missing).await.unwrap_err(),
            PolicyError::NotFound("storage policy missing not found".into())
        );
        assert!(matches!(
            policies.resolve("missing").await.unwrap_err(),
            PolicyError::NotFound(_)
        ));
        assert_eq!(policies.get("../x").await.unwrap(), None);

        // A policy in use cannot be deleted.
        meta.create_bucket(&bucket("results", "Hybrid-storage-policy"))
            .await
            .unwrap();
        meta.create_bucket(&bucket("inputs", "Hybrid-storage-policy"))
            .await
            .unwrap();
        meta.create_bucket(&bucket("other", "a-second"))
            .await
            .unwrap();
        let in_use = policies
            .delete("Hybrid-storage-policy", &meta)
            .await
            .unwrap_err();
        assert_eq!(
            in_use.to_string(),
            "storage policy Hybrid-storage-policy is used by bucket(s) inputs, results"
        );
        assert_eq!(
            policies.for_bucket(&meta, "results").await.unwrap().name,
            "Hybrid-storage-policy"
        );
        assert!(matches!(
            policies.for_bucket(&meta, "nope").await.unwrap_err(),
            PolicyError::NotFound(message) if message == "bucket nope not found"
        ));
        meta.delete_bucket("results").await.unwrap();
        meta.delete_bucket("inputs").await.unwrap();
        policies
            .delete("Hybrid-storage-policy", &meta)
            .await
            .unwrap();
        assert_eq!(policies.get("Hybrid-storage-policy").await.unwrap(), None);
        assert!(matches!(
            policies
                .delete("Hybrid-storage-policy", &meta)
                .await
                .unwrap_err(),
            PolicyError::NotFound(_)
        ));
    }

    #[tokio::test]
    async fn configured_policies_are_created_or_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let (policies, _) = store(dir.path()).await;
        let first = policies.ensure(hybrid()).await.unwrap();
        let mut changed = hybrid();
        changed.description = "from the new configuration".into();
        let second = policies.ensure(changed).await.unwrap();
        assert_eq!(second.id, first.id);
        assert_eq!(
            policies
                .get(&first.name)
                .await
                .unwrap()
                .unwrap()
                .description,
            "from the new configuration"
        );
        // Unchanged: nothing written, same answer.
        assert_eq!(policies.ensure(second.clone()).await.unwrap(), second);
        let mut with_id = hybrid();
        with_id.id = Some(9);
        assert_eq!(policies.ensure(with_id).await.unwrap().id, Some(9));
        let mut invalid = hybrid();
        invalid.edge_devices = vec![144];
        assert!(matches!(
            policies.ensure(invalid).await.unwrap_err(),
            PolicyError::Invalid(_)
        ));
    }
}

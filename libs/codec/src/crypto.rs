//! AES-256-GCM through aws-lc-rs (speeds.md: ~7x RustCrypto `aes-gcm` here; the latter checks
//! these routines in the tests). Every object gets its own random data key, wrapped by the
//! gateway's master key; a stripe's nonce is its index, so within one key a nonce is never
//! reused, and a rewrite of an object always gets a fresh key.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, Tag, UnboundKey};
use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::CodecError;

pub const KEY_BYTES: usize = 32;
pub const TAG_BYTES: usize = 16;

fn random<const N: usize>() -> Result<[u8; N], CodecError> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CodecError::Key("the system random source failed".to_owned()))?;
    Ok(bytes)
}

fn aead_key(bytes: &[u8; KEY_BYTES]) -> Result<LessSafeKey, CodecError> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| CodecError::Key("AES-256 key rejected".to_owned()))
}

/// The key-encryption key from configuration. Its `id` (a hash prefix, not secret) is stored
/// with every wrapped key so that a wrong master key is named as such.
pub struct MasterKey {
    key: LessSafeKey,
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        let bytes: [u8; KEY_BYTES] = bytes.try_into().map_err(|_| {
            CodecError::Key(format!(
                "a master key is {KEY_BYTES} bytes, got {}",
                bytes.len()
            ))
        })?;
        let hash = digest::digest(&digest::SHA256, &bytes);
        let id = hash.as_ref()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self {
            key: aead_key(&bytes)?,
            id,
        })
    }

    /// A master key written as 64 hex digits (how configuration carries it).
    pub fn from_hex(text: &str) -> Result<Self, CodecError> {
        let text = text.trim();
        if text.len() != KEY_BYTES * 2 || !text.is_ascii() {
            return Err(CodecError::Key(format!(
                "a master key is {} hex digits",
                KEY_BYTES * 2
            )));
        }
        let bytes =
            hex::decode(text).map_err(|_| CodecError::Key("a master key is hex".to_owned()))?;
        Self::from_bytes(&bytes)
    }

    /// A fresh random master key, as hex (for first start).
    pub fn generate_hex() -> Result<String, CodecError> {
        Ok(hex::encode(random::<KEY_BYTES>()?))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn wrap(&self, data_key: &DataKey) -> Result<WrappedKey, CodecError> {
        let nonce = random::<NONCE_LEN>()?;
        let mut sealed = data_key.bytes.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.id.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| CodecError::Key("wrapping the data key failed".to_owned()))?;
        Ok(WrappedKey {
            master_key_id: self.id.clone(),
            nonce: nonce.to_vec(),
            sealed,
        })
    }

    pub fn unwrap_key(&self, wrapped: &WrappedKey) -> Result<DataKey, CodecError> {
        if wrapped.master_key_id != self.id {
            return Err(CodecError::Key(format!(
                "the data key is wrapped by master key {}, this gateway has {}",
                wrapped.master_key_id, self.id
            )));
        }
        let nonce: [u8; NONCE_LEN] = wrapped
            .nonce
            .as_slice()
            .try_into()
            .map_err(|_| CodecError::Key("wrapped key: bad nonce".to_owned()))?;
        let mut sealed = wrapped.sealed.clone();
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.id.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| CodecError::Key("wrapped key does not authenticate".to_owned()))?;
        let bytes: [u8; KEY_BYTES] = (&*plain)
            .try_into()
            .map_err(|_| CodecError::Key("wrapped key: bad length".to_owned()))?;
        DataKey::from_bytes(bytes)
    }
}

/// A data key wrapped by the master key: what object metadata stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    pub master_key_id: String,
    #[serde(with = "hex_bytes")]
    pub nonce: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pub sealed: Vec<u8>,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(D::Error::custom)
    }
}

/// A per-object AES-256-GCM key.
pub struct DataKey {
    bytes: [u8; KEY_BYTES],
    key: LessSafeKey,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    pub fn generate() -> Result<Self, CodecError> {
        Self::from_bytes(random::<KEY_BYTES>()?)
    }

    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Result<Self, CodecError> {
        Ok(Self {
            key: aead_key(&bytes)?,
            bytes,
        })
    }

    /// The raw key (tests cross-check against another AES-GCM implementation).
    pub fn expose_bytes(&self) -> &[u8; KEY_BYTES] {
        &self.bytes
    }

    /// Encrypts `data` in place; returns the tag.
    pub(crate) fn seal(
        &self,
        stripe: u64,
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<[u8; TAG_BYTES], CodecError> {
        let tag: Tag = self
            .key
            .seal_in_place_separate_tag(stripe_nonce(stripe), Aad::from(aad), data)
            .map_err(|_| CodecError::Key("sealing failed".to_owned()))?;
        let mut out = [0u8; TAG_BYTES];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Decrypts `sealed` (ciphertext followed by its tag) in place; returns the plaintext length.
    pub(crate) fn open(
        &self,
        stripe: u64,
        aad: &[u8],
        sealed: &mut [u8],
    ) -> Result<usize, CodecError> {
        self.key
            .open_in_place(stripe_nonce(stripe), Aad::from(aad), sealed)
            .map(|plain| plain.len())
            .map_err(|_| CodecError::Authentication { stripe })
    }
}

/// Nonce of stripe `index`: 4 zero bytes then the index, big-endian.
pub fn stripe_nonce_bytes(stripe: u64) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[4..].copy_from_slice(&stripe.to_be_bytes());
    nonce
}

fn stripe_nonce(stripe: u64) -> Nonce {
    Nonce::assume_unique_for_key(stripe_nonce_bytes(stripe))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_keys_round_trip_and_name_the_wrong_master() {
        let master = MasterKey::from_hex(&MasterKey::generate_hex().expect("hex")).expect("key");
        let other = MasterKey::from_bytes(&[7u8; 32]).expect("key");
        let data = DataKey::generate().expect("key");
        let wrapped = master.wrap(&data).expect("wrap");
        let json = serde_json::to_string(&wrapped).expect("json");
        let back: WrappedKey = serde_json::from_str(&json).expect("json");
        assert_eq!(
            master.unwrap_key(&back).expect("unwrap").expose_bytes(),
            data.expose_bytes()
        );
        let err = other.unwrap_key(&back).expect_err("wrong master");
        assert!(err.to_string().contains(master.id()), "{err}");
        let mut tampered = back.clone();
        tampered.sealed[0] ^= 1;
        assert!(master.unwrap_key(&tampered).is_err());
        assert!(MasterKey::from_hex("abc").is_err());
        assert!(MasterKey::from_hex(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn debug_output_never_shows_key_bytes() {
        let master = MasterKey::from_bytes(&[0xab; 32]).expect("key");
        assert!(!format!("{master:?}").contains("ab, ab"));
        assert!(!format!("{master:?}").contains("171"));
        assert_eq!(
            format!("{:?}", DataKey::from_bytes([1; 32]).expect("key")),
            "DataKey(..)"
        );
    }
}

//! The secure storage data path of D6.7 4.8 (Secure Storage Service): every object is cut into
//! stripes; each stripe is compressed when a sample shows it pays, sealed with AES-256-GCM under
//! a per-object data key, and erasure coded into `k` data + `m` redundant fragments (systematic
//! Reed-Solomon, or systematic RLNC over GF(2^8) for the policy scheme `RLNC`).
//!
//! Pure: no I/O, no async. The storage gateway calls [`ObjectCodec::encode_stripe`] per stripe
//! while bytes stream in and [`ObjectCodec::decode_stripe`] per stripe while they stream out, so
//! memory stays bounded by a few stripes whatever the object size.

mod compress;
mod crypto;
mod erasure;
pub mod fragment;
mod gf256;
mod stripe;

pub use compress::Compression;
pub use crypto::{DataKey, KEY_BYTES, MasterKey, WrappedKey, stripe_nonce_bytes};
pub use erasure::{Erasure, Scheme};
pub use fragment::{FRAGMENT_HEADER_BYTES, Fragment, FragmentHeader};
pub use stripe::{DecodedStripe, EncodedStripe, ObjectCodec, StripeLayout};

/// Default stripe size: large enough for SIMD coding and AES-GCM to run at full speed, small
/// enough that a stripe and its fragments stay in cache (speeds.md: code stripe by stripe).
pub const DEFAULT_STRIPE_BYTES: usize = 1 << 20;
/// Largest stripe accepted (stripe lengths are stored as `u32`, and a stripe is held in memory).
pub const MAX_STRIPE_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("invalid coding parameters: {0}")]
    Parameters(String),
    #[error("stripe {stripe}: {available} usable fragments, {needed} needed")]
    NotEnoughFragments {
        stripe: u64,
        available: usize,
        needed: usize,
    },
    #[error("stripe {stripe}: authentication failed (wrong key, or data corrupted beyond repair)")]
    Authentication { stripe: u64 },
    #[error("fragment: {0}")]
    Fragment(String),
    #[error("key: {0}")]
    Key(String),
    #[error("decompression: {0}")]
    Decompression(String),
}

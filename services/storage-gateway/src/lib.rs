//! On-premises secure storage gateway (D6.7 4.8 Secure Storage Service, 4.10 storage policy and
//! location APIs): an S3 server whose objects are encrypted, erasure coded by `serrano-codec`
//! and spread over edge and cloud backends chosen by each bucket's storage policy.
//!
//! Layout: [`s3`] is the protocol (SigV4, XML, error codes: pure); the object pipeline, backends
//! and metadata store are adapters at the edge.

pub mod api;
pub mod backend;
pub mod locations;
pub mod meta;
pub mod meta_contract;
pub mod mongo;
pub mod objects;
pub mod policy;
pub mod s3;
pub mod s3_http;
pub mod server;

pub use server::{Config, Gateway, run, serve_with};

/// Milliseconds since the Unix epoch (record times, reclaim deadlines, probes).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub const SERVICE: &str = "storage-gateway";
/// Fixed default port (ARCHITECTURE.md "Ports").
pub const DEFAULT_PORT: u16 = 7113;

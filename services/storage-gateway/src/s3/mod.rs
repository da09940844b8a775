//! The S3 protocol, free of I/O: request authentication (AWS Signature V4), XML bodies and the
//! AWS error codes.

pub mod error;
pub mod sigv4;
pub mod xml;

pub use error::{S3Error, S3ErrorCode};

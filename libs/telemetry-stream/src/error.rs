//! Errors of the receiver, the sender and the sink.

use std::error::Error as StdError;

/// Failure to start or run a receiver or a sender.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The gRPC transport failed (bind, accept, or an invalid endpoint URI).
    #[error("grpc transport error")]
    Transport(#[from] tonic::transport::Error),
    /// An option is out of range.
    #[error("invalid option `{name}`: {reason}")]
    InvalidOption {
        /// The option's field name.
        name: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The endpoint is not an `http://host:port` URI.
    #[error("invalid endpoint `{endpoint}`: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The identity lacks a source UUID.
    #[error("the sender identity needs a non-empty source_uuid")]
    EmptySourceUuid,
    /// The bearer token cannot be sent as an HTTP header value.
    #[error("the bearer token contains characters not allowed in an HTTP header")]
    InvalidToken,
    /// The sender was started outside a Tokio runtime.
    #[error("the sender must be started inside a tokio runtime")]
    NoRuntime,
}

/// A sink could not store a batch; the receiver aborts the stream with `unavailable` so that the
/// sender resends the batch later.
#[derive(Debug, thiserror::Error)]
#[error("sink failed: {message}")]
pub struct SinkError {
    message: String,
    #[source]
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl SinkError {
    /// An error described by a message only.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An error caused by another error (a database or network failure).
    pub fn with_source(
        message: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// The message given at construction.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Why a batch is invalid. The receiver answers these with `invalid_argument`, except the size
/// limits, which get `resource_exhausted`; the sender refuses them in `send`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BatchError {
    /// `source_uuid` is empty.
    #[error("batch has an empty source_uuid")]
    EmptySourceUuid,
    /// `seq` is 0 (sequence numbers start at 1).
    #[error("batch has seq 0; sequence numbers start at 1")]
    ZeroSeq,
    /// The batch carries no sample.
    #[error("batch has no samples")]
    NoSamples,
    /// More samples than the configured limit.
    #[error("batch has {count} samples, the limit is {limit}")]
    TooManySamples {
        /// Samples in the batch.
        count: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The encoded batch is larger than the configured limit.
    #[error("batch encodes to {bytes} bytes, the limit is {limit}")]
    TooLarge {
        /// Encoded size in bytes.
        bytes: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A sample has an empty measurement name.
    #[error("sample {sample} has an empty measurement")]
    EmptyMeasurement {
        /// Index of the sample in the batch.
        sample: usize,
    },
    /// A sample has no field (a line-protocol point needs at least one).
    #[error("sample {sample} has no fields")]
    NoFields {
        /// Index of the sample in the batch.
        sample: usize,
    },
    /// A field or tag has an empty name.
    #[error("sample {sample} has an empty field or tag name")]
    EmptyName {
        /// Index of the sample in the batch.
        sample: usize,
    },
    /// A field value is NaN or infinite.
    #[error("sample {sample} field `{field}` is not a finite number")]
    NonFiniteField {
        /// Index of the sample in the batch.
        sample: usize,
        /// The field's name.
        field: String,
    },
    /// A stream carried batches of more than one (source_uuid, session_id).
    #[error("a stream carries batches of one (source_uuid, session_id) only")]
    MixedSession,
}

impl BatchError {
    /// Size limits are `resource_exhausted`, everything else `invalid_argument`.
    pub(crate) fn code(&self) -> tonic::Code {
        match self {
            Self::TooManySamples { .. } | Self::TooLarge { .. } => tonic::Code::ResourceExhausted,
            Self::EmptySourceUuid
            | Self::ZeroSeq
            | Self::NoSamples
            | Self::EmptyMeasurement { .. }
            | Self::NoFields { .. }
            | Self::EmptyName { .. }
            | Self::NonFiniteField { .. }
            | Self::MixedSession => tonic::Code::InvalidArgument,
        }
    }
}

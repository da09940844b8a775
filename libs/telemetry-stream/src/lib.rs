//! Streaming telemetry (D6.7 4.4.3.2): gRPC client-streaming of metric batches from a probe to
//! its Enhanced Telemetry Agent, and from an agent to the Central Telemetry Handler.
//!
//! Layout:
//! - [`pb`]: the generated messages and service (`proto/telemetry.proto`).
//! - [`receiver`]: validates batches, drops duplicates by seq per (source, session), hands the
//!   rest in order to a [`BatchSink`], acknowledges when the client ends the stream. Use
//!   [`service`] inside an existing tonic router, or [`serve`] on a listener.
//! - [`sender`]: [`StreamSender`], a non-blocking bounded buffer (drop-oldest when full, counted)
//!   drained by a background task that reconnects and resends until acknowledged.
//! - [`points`]: samples as time-series points, the form receivers store them in.
//!
//! Delivery: exactly once per (source, session) while the receiver runs, and across graceful
//! receiver restarts (the receiver acknowledges what it stored before stopping). Across a receiver
//! crash it is at least once, unless the sink implements [`BatchSink::last_seq`].

mod codec;
pub mod error;
pub mod points;
mod push_task;
pub mod receiver;
pub mod sender;
mod validate;

pub use error::{BatchError, SinkError, StreamError};
pub use receiver::{
    BatchSink, REJECTED_SEQ_METADATA, ReceiverOptions, TelemetryReceiver, TelemetryService,
    TokenCheck, serve, service,
};
pub use sender::{SenderOptions, SenderStats, StreamIdentity, StreamSender};

/// Generated from `proto/telemetry.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    tonic::include_proto!("serrano.telemetry.v1");
}

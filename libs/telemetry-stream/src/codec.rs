//! A gRPC codec whose request messages are already-encoded `MetricBatch` bytes: the sender keeps
//! unacknowledged batches encoded, so a resend costs a reference-count increment, not a re-encode.

use prost::Message as _;
use prost::bytes::{BufMut as _, Bytes};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use crate::pb;

/// Sends pre-encoded batches, decodes `PushAck`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PreEncoded;

impl Codec for PreEncoded {
    type Encode = Bytes;
    type Decode = pb::PushAck;
    type Encoder = PreEncoded;
    type Decoder = AckDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        PreEncoded
    }

    fn decoder(&mut self) -> Self::Decoder {
        AckDecoder
    }
}

impl Encoder for PreEncoded {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

/// Decodes the acknowledgement.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AckDecoder;

impl Decoder for AckDecoder {
    type Item = pb::PushAck;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<pb::PushAck>, Status> {
        pb::PushAck::decode(src)
            .map(Some)
            .map_err(|error| Status::internal(format!("invalid PushAck: {error}")))
    }
}

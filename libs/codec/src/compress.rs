//! Per-stripe DEFLATE (the policy's `compression {scheme: "DEFLATE", level}`), applied only when a
//! quick sample shows it pays: encrypted, media or already-compressed data is stored as is
//! instead of burning a core for nothing (speeds.md: compress only when a sample shows it pays).

use flate2::{Compress, Decompress, FlushCompress, FlushDecompress, Status};
use serde::{Deserialize, Serialize};

use crate::CodecError;

/// How stripes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "scheme")]
pub enum Compression {
    #[default]
    #[serde(rename = "NONE", alias = "none")]
    None,
    #[serde(rename = "DEFLATE", alias = "deflate")]
    Deflate {
        /// 0 (store) to 9 (smallest); the spec's example uses 7.
        #[serde(default = "default_level")]
        level: u32,
    },
}

fn default_level() -> u32 {
    6
}

/// Bytes compressed at level 1 to decide whether a stripe is worth compressing.
const SAMPLE_BYTES: usize = 8 << 10;
/// The sample must shrink to at most this share to try the whole stripe...
const SAMPLE_PAYS: f64 = 0.90;
/// ...and the whole stripe to at most this share to be stored compressed.
const STRIPE_PAYS: f64 = 0.97;

impl Compression {
    pub fn validate(&self) -> Result<(), CodecError> {
        match self {
            Compression::Deflate { level } if *level > 9 => Err(CodecError::Parameters(format!(
                "DEFLATE level {level}: 0 to 9"
            ))),
            _ => Ok(()),
        }
    }

    /// The compressed form of `plain` when compression is configured and pays; `None` otherwise.
    pub(crate) fn compress_if_it_pays(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let Compression::Deflate { level } = *self else {
            return None;
        };
        if level == 0 || plain.len() < 64 {
            return None;
        }
        if plain.len() > SAMPLE_BYTES {
            let sample = &plain[..SAMPLE_BYTES];
            let squeezed = deflate(sample, 1, (SAMPLE_BYTES as f64 * SAMPLE_PAYS) as usize)?;
            if squeezed.len() as f64 > sample.len() as f64 * SAMPLE_PAYS {
                return None;
            }
        }
        deflate(plain, level, (plain.len() as f64 * STRIPE_PAYS) as usize)
    }
}

/// Raw DEFLATE of `input`, or `None` when the output would exceed `limit` bytes.
fn deflate(input: &[u8], level: u32, limit: usize) -> Option<Vec<u8>> {
    let mut engine = Compress::new(flate2::Compression::new(level), false);
    let mut out = Vec::with_capacity(limit + 64);
    loop {
        let consumed = engine.total_in() as usize;
        let status = engine
            .compress_vec(&input[consumed..], &mut out, FlushCompress::Finish)
            .ok()?;
        if out.len() > limit {
            return None;
        }
        match status {
            Status::StreamEnd => return Some(out),
            Status::Ok | Status::BufError => {
                if out.len() == out.capacity() {
                    out.reserve(64 << 10);
                }
            }
        }
    }
}

/// Inflates `input`, which must give exactly `expected` bytes.
pub(crate) fn inflate(input: &[u8], expected: usize) -> Result<Vec<u8>, CodecError> {
    let mut engine = Decompress::new(false);
    let mut out = Vec::with_capacity(expected);
    loop {
        let consumed = engine.total_in() as usize;
        let before = out.len();
        let status = engine
            .decompress_vec(&input[consumed..], &mut out, FlushDecompress::Finish)
            .map_err(|err| CodecError::Decompression(err.to_string()))?;
        match status {
            Status::StreamEnd => break,
            _ if out.len() == out.capacity() => {
                if out.len() >= expected {
                    return Err(CodecError::Decompression(format!(
                        "more than the {expected} bytes recorded"
                    )));
                }
                out.reserve(expected - out.len());
            }
            _ if out.len() == before && engine.total_in() as usize == consumed => {
                return Err(CodecError::Decompression("truncated stream".to_owned()));
            }
            _ => {}
        }
    }
    if out.len() != expected {
        return Err(CodecError::Decompression(format!(
            "{} bytes, {expected} recorded",
            out.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(len: usize) -> Vec<u8> {
        b"timestamp=1700000000 cluster=uvt-k8s node=edge-3 cpu=0.42 mem=0.61\n"
            .iter()
            .copied()
            .cycle()
            .take(len)
            .collect()
    }

    fn noise(len: usize) -> Vec<u8> {
        let mut state = 0x1234_5678_u64;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    #[test]
    fn compressible_stripes_round_trip() {
        let policy = Compression::Deflate { level: 7 };
        for len in [64, 1000, SAMPLE_BYTES + 1, 1 << 20] {
            let plain = text(len);
            let packed = policy.compress_if_it_pays(&plain).expect("text compresses");
            let bound = if len >= 1000 { len / 4 } else { len };
            assert!(packed.len() < bound, "{len}: {}", packed.len());
            assert_eq!(inflate(&packed, len).expect("inflate"), plain);
        }
    }

    #[test]
    fn incompressible_or_tiny_stripes_are_stored_as_they_are() {
        let policy = Compression::Deflate { level: 7 };
        assert_eq!(policy.compress_if_it_pays(&noise(1 << 20)), None);
        assert_eq!(policy.compress_if_it_pays(&noise(1000)), None);
        assert_eq!(policy.compress_if_it_pays(b"tiny"), None);
        assert_eq!(Compression::None.compress_if_it_pays(&text(1 << 16)), None);
    }

    #[test]
    fn corrupt_or_mislabelled_input_is_an_error() {
        let packed = Compression::Deflate { level: 6 }
            .compress_if_it_pays(&text(10_000))
            .expect("compresses");
        assert!(inflate(&packed, 9_999).is_err());
        assert!(inflate(&packed, 10_001).is_err());
        assert!(inflate(&packed[..packed.len() / 2], 10_000).is_err());
        assert!(inflate(&[0xff; 100], 10).is_err());
    }

    #[test]
    fn policy_json_is_the_spec_shape() {
        let parsed: Compression =
            serde_json::from_str(r#"{"scheme": "DEFLATE", "level": 7}"#).expect("json");
        assert_eq!(parsed, Compression::Deflate { level: 7 });
        assert!(Compression::Deflate { level: 10 }.validate().is_err());
    }
}

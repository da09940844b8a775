//! The on-backend form of one fragment: a fixed 40-byte header, then the shard. The header makes
//! every fragment self-describing (a repair or scrub pass needs no metadata to check it) and its
//! CRC-32 names the corrupt fragment without trying decodes; the AES-GCM tag of the stripe still
//! guards everything end to end.
//!
//! ```text
//!  0..4  magic "SRF1"      8     fragment index    20..24 stored (sealed) stripe length
//!  4     format version    9     flags             24..28 plain stripe length
//!  5     scheme (0 RS, 1 RLNC) 10..12 reserved     28..32 RLNC seed (0 for RS)
//!  6     data shards k     12..20 stripe index     32..36 shard length
//!  7     redundant m                               36..40 CRC-32 of bytes 0..36 and the shard
//! ```

use crate::CodecError;
use crate::erasure::Scheme;

pub const FRAGMENT_HEADER_BYTES: usize = 40;
const MAGIC: &[u8; 4] = b"SRF1";
const VERSION: u8 = 1;

pub const FLAG_COMPRESSED: u8 = 1;
pub const FLAG_ENCRYPTED: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentHeader {
    pub scheme: Scheme,
    pub data: u8,
    pub parity: u8,
    pub index: u8,
    pub flags: u8,
    pub stripe: u64,
    pub stored_len: u32,
    pub plain_len: u32,
    pub seed: u32,
    pub shard_len: u32,
}

impl FragmentHeader {
    fn prefix(&self) -> [u8; 36] {
        let mut out = [0u8; 36];
        out[..4].copy_from_slice(MAGIC);
        out[4] = VERSION;
        out[5] = self.scheme.code();
        out[6] = self.data;
        out[7] = self.parity;
        out[8] = self.index;
        out[9] = self.flags;
        out[12..20].copy_from_slice(&self.stripe.to_le_bytes());
        out[20..24].copy_from_slice(&self.stored_len.to_le_bytes());
        out[24..28].copy_from_slice(&self.plain_len.to_le_bytes());
        out[28..32].copy_from_slice(&self.seed.to_le_bytes());
        out[32..36].copy_from_slice(&self.shard_len.to_le_bytes());
        out
    }

    /// The header bytes for `shard` (the CRC covers both).
    pub fn to_bytes(&self, shard: &[u8]) -> [u8; FRAGMENT_HEADER_BYTES] {
        let prefix = self.prefix();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&prefix);
        crc.update(shard);
        let mut out = [0u8; FRAGMENT_HEADER_BYTES];
        out[..36].copy_from_slice(&prefix);
        out[36..].copy_from_slice(&crc.finalize().to_le_bytes());
        out
    }

    /// Parses a header without checking the CRC (that needs the shard: [`Fragment::verify`]).
    pub fn parse(bytes: &[u8]) -> Result<(Self, u32), CodecError> {
        let bytes: &[u8; FRAGMENT_HEADER_BYTES] = bytes
            .get(..FRAGMENT_HEADER_BYTES)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| CodecError::Fragment("shorter than its header".to_owned()))?;
        if &bytes[..4] != MAGIC {
            return Err(CodecError::Fragment(
                "not a SERRANO fragment (bad magic)".to_owned(),
            ));
        }
        if bytes[4] != VERSION {
            return Err(CodecError::Fragment(format!("format version {}", bytes[4])));
        }
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let mut stripe = [0u8; 8];
        stripe.copy_from_slice(&bytes[12..20]);
        let header = FragmentHeader {
            scheme: Scheme::from_code(bytes[5])
                .ok_or_else(|| CodecError::Fragment(format!("scheme {}", bytes[5])))?,
            data: bytes[6],
            parity: bytes[7],
            index: bytes[8],
            flags: bytes[9],
            stripe: u64::from_le_bytes(stripe),
            stored_len: word(20),
            plain_len: word(24),
            seed: word(28),
            shard_len: word(32),
        };
        Ok((header, word(36)))
    }
}

/// A fragment read back from a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    pub header: FragmentHeader,
    crc: u32,
    pub shard: Vec<u8>,
}

impl Fragment {
    /// Splits header and shard (one copy of the shard).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        let (header, crc) = FragmentHeader::parse(bytes)?;
        Ok(Self {
            header,
            crc,
            shard: bytes[FRAGMENT_HEADER_BYTES..].to_vec(),
        })
    }

    /// From a header read on its own and the shard read after it (no copy).
    pub fn from_parts(header_bytes: &[u8], shard: Vec<u8>) -> Result<Self, CodecError> {
        let (header, crc) = FragmentHeader::parse(header_bytes)?;
        Ok(Self { header, crc, shard })
    }

    /// Whether the shard has its recorded length and CRC.
    pub fn verify(&self) -> Result<(), CodecError> {
        if self.shard.len() != self.header.shard_len as usize {
            return Err(CodecError::Fragment(format!(
                "{} shard bytes, header says {}",
                self.shard.len(),
                self.header.shard_len
            )));
        }
        let expected = self.header.to_bytes(&self.shard);
        if expected[36..] != self.crc.to_le_bytes() {
            return Err(CodecError::Fragment("CRC mismatch".to_owned()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_detect_damage() {
        let header = FragmentHeader {
            scheme: Scheme::Rlnc,
            data: 3,
            parity: 1,
            index: 2,
            flags: FLAG_ENCRYPTED | FLAG_COMPRESSED,
            stripe: 1 << 40,
            stored_len: 1_048_592,
            plain_len: 1 << 20,
            seed: 7,
            shard_len: 5,
        };
        let shard = b"hello".to_vec();
        let mut bytes = header.to_bytes(&shard).to_vec();
        bytes.extend_from_slice(&shard);
        let fragment = Fragment::from_bytes(&bytes).expect("parse");
        assert_eq!(fragment.header, header);
        fragment.verify().expect("intact");

        for at in [5usize, 8, 13, 37, 41] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            let ok = Fragment::from_bytes(&damaged).and_then(|f| f.verify());
            assert!(ok.is_err(), "flip at {at} went unnoticed");
        }
        assert!(Fragment::from_bytes(&bytes[..20]).is_err());
        assert!(Fragment::from_bytes(b"XXXX............................................").is_err());
        let short = Fragment::from_bytes(&bytes[..bytes.len() - 1]).expect("parse");
        assert!(short.verify().is_err());
    }
}

//! One object's codec: stripe in → `k + m` fragments out, and back (D6.7 4.8, the storage
//! policy's redundancy, compression and encryption applied stripe by stripe).

use crate::compress::{Compression, inflate};
use crate::crypto::{DataKey, TAG_BYTES};
use crate::erasure::Erasure;
use crate::fragment::{
    FLAG_COMPRESSED, FLAG_ENCRYPTED, FRAGMENT_HEADER_BYTES, Fragment, FragmentHeader,
};
use crate::{CodecError, MAX_STRIPE_BYTES};

/// Shards are padded to this multiple so SIMD loops run on whole vectors.
const SHARD_ALIGN: usize = 64;

/// What a stripe became: its sizes and flags (the same in every fragment header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StripeLayout {
    pub stripe: u64,
    pub plain_len: u32,
    pub stored_len: u32,
    pub shard_len: u32,
    pub flags: u8,
}

impl StripeLayout {
    pub fn compressed(&self) -> bool {
        self.flags & FLAG_COMPRESSED != 0
    }
    /// Bytes of one fragment on a backend (header included).
    pub fn fragment_bytes(&self) -> usize {
        FRAGMENT_HEADER_BYTES + self.shard_len as usize
    }
}

/// The fragments of one stripe, in one buffer: shard `i` is `buffer[i*shard_len..][..shard_len]`.
#[derive(Debug)]
pub struct EncodedStripe {
    pub layout: StripeLayout,
    headers: Vec<[u8; FRAGMENT_HEADER_BYTES]>,
    buffer: Vec<u8>,
}

impl EncodedStripe {
    pub fn fragment_count(&self) -> usize {
        self.headers.len()
    }

    /// Header and shard of fragment `index` (write them one after the other).
    pub fn fragment(&self, index: usize) -> Option<(&[u8; FRAGMENT_HEADER_BYTES], &[u8])> {
        let shard_len = self.layout.shard_len as usize;
        let header = self.headers.get(index)?;
        let shard = self
            .buffer
            .get(index * shard_len..(index + 1) * shard_len)?;
        Some((header, shard))
    }

    /// Fragment `index` as one byte vector (header then shard).
    pub fn fragment_vec(&self, index: usize) -> Option<Vec<u8>> {
        let (header, shard) = self.fragment(index)?;
        let mut out = Vec::with_capacity(header.len() + shard.len());
        out.extend_from_slice(header);
        out.extend_from_slice(shard);
        Some(out)
    }
}

/// A decoded stripe, and which fragments were unusable (to be repaired).
#[derive(Debug)]
pub struct DecodedStripe {
    pub plain: Vec<u8>,
    pub damaged: Vec<usize>,
}

/// Shards by fragment index (`None`: missing or unusable), the header they share, and the
/// indices of fragments that were present but unusable.
type UsableShards = (Vec<Option<Vec<u8>>>, Option<FragmentHeader>, Vec<usize>);

/// Codec of one object: its erasure code, compression, data key and identity (bound into every
/// stripe's authentication data, so fragments cannot be swapped between objects or positions).
pub struct ObjectCodec {
    erasure: Erasure,
    compression: Compression,
    key: Option<DataKey>,
    object_id: [u8; 16],
}

impl std::fmt::Debug for ObjectCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectCodec")
            .field("erasure", &self.erasure)
            .field("compression", &self.compression)
            .field("encrypted", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

impl ObjectCodec {
    /// `key` None stores stripes unencrypted (CRC-checked only).
    pub fn new(
        erasure: Erasure,
        compression: Compression,
        key: Option<DataKey>,
        object_id: [u8; 16],
    ) -> Result<Self, CodecError> {
        compression.validate()?;
        Ok(Self {
            erasure,
            compression,
            key,
            object_id,
        })
    }

    pub fn erasure(&self) -> &Erasure {
        &self.erasure
    }

    /// The AES-GCM associated data of a stripe: object id, stripe index, flags, plain length
    /// and code shape (public so that tests can check the ciphertext with another AES-GCM).
    pub fn aad(&self, stripe: u64, flags: u8, plain_len: u32) -> [u8; 35] {
        let mut aad = [0u8; 35];
        aad[..16].copy_from_slice(&self.object_id);
        aad[16..24].copy_from_slice(&stripe.to_le_bytes());
        aad[24] = flags;
        aad[25..29].copy_from_slice(&plain_len.to_le_bytes());
        aad[29] = self.erasure.scheme().code();
        aad[30] = self.erasure.data_shards() as u8;
        aad[31] = self.erasure.parity_shards() as u8;
        aad
    }

    fn header(&self, layout: &StripeLayout, index: usize) -> FragmentHeader {
        FragmentHeader {
            scheme: self.erasure.scheme(),
            data: self.erasure.data_shards() as u8,
            parity: self.erasure.parity_shards() as u8,
            index: index as u8,
            flags: layout.flags,
            stripe: layout.stripe,
            stored_len: layout.stored_len,
            plain_len: layout.plain_len,
            seed: self.erasure.seed(),
            shard_len: layout.shard_len,
        }
    }

    /// Compresses (when it pays), seals and erasure codes stripe number `stripe`.
    pub fn encode_stripe(&self, stripe: u64, plain: &[u8]) -> Result<EncodedStripe, CodecError> {
        if plain.len() > MAX_STRIPE_BYTES {
            return Err(CodecError::Parameters(format!(
                "a stripe is at most {MAX_STRIPE_BYTES} bytes"
            )));
        }
        let compressed = self.compression.compress_if_it_pays(plain);
        let body: &[u8] = compressed.as_deref().unwrap_or(plain);
        let mut flags = 0;
        if compressed.is_some() {
            flags |= FLAG_COMPRESSED;
        }
        if self.key.is_some() {
            flags |= FLAG_ENCRYPTED;
        }
        let tag_len = if self.key.is_some() { TAG_BYTES } else { 0 };
        let stored_len = body.len() + tag_len;
        let k = self.erasure.data_shards();
        let shard_len = stored_len.div_ceil(k).next_multiple_of(SHARD_ALIGN);
        let total = self.erasure.total_shards();
        let mut buffer = vec![0u8; shard_len * total];
        buffer[..body.len()].copy_from_slice(body);
        let plain_len = plain.len() as u32;
        if let Some(key) = &self.key {
            let aad = self.aad(stripe, flags, plain_len);
            let tag = key.seal(stripe, &aad, &mut buffer[..body.len()])?;
            buffer[body.len()..stored_len].copy_from_slice(&tag);
        }
        if shard_len > 0 {
            let mut shards: Vec<&mut [u8]> = buffer.chunks_mut(shard_len).collect();
            self.erasure.encode(&mut shards)?;
        }
        let layout = StripeLayout {
            stripe,
            plain_len,
            stored_len: stored_len as u32,
            shard_len: shard_len as u32,
            flags,
        };
        let headers = (0..total)
            .map(|i| {
                let shard = &buffer[i * shard_len..(i + 1) * shard_len];
                self.header(&layout, i).to_bytes(shard)
            })
            .collect();
        Ok(EncodedStripe {
            layout,
            headers,
            buffer,
        })
    }

    /// Checks fragments and keeps the usable ones as shards; the rest are reported damaged.
    fn usable_shards(
        &self,
        stripe: u64,
        fragments: Vec<Option<Fragment>>,
    ) -> Result<UsableShards, CodecError> {
        let total = self.erasure.total_shards();
        if fragments.len() != total {
            return Err(CodecError::Parameters(format!(
                "{} fragment slots given, the code has {total}",
                fragments.len()
            )));
        }
        let mut damaged = Vec::new();
        let mut reference: Option<FragmentHeader> = None;
        let mut shards: Vec<Option<Vec<u8>>> = vec![None; total];
        for (index, fragment) in fragments.into_iter().enumerate() {
            let Some(fragment) = fragment else { continue };
            let h = fragment.header;
            let fits = fragment.verify().is_ok()
                && usize::from(h.index) == index
                && h.stripe == stripe
                && h.scheme == self.erasure.scheme()
                && usize::from(h.data) == self.erasure.data_shards()
                && usize::from(h.parity) == self.erasure.parity_shards()
                && reference.is_none_or(|r| {
                    (r.flags, r.stored_len, r.plain_len, r.seed, r.shard_len)
                        == (h.flags, h.stored_len, h.plain_len, h.seed, h.shard_len)
                });
            if fits {
                reference.get_or_insert(h);
                shards[index] = Some(fragment.shard);
            } else {
                damaged.push(index);
            }
        }
        Ok((shards, reference, damaged))
    }

    /// Rebuilds stripe `stripe` from whatever fragments could be read (`None` = unreadable);
    /// any `k` intact ones suffice.
    pub fn decode_stripe(
        &self,
        stripe: u64,
        fragments: Vec<Option<Fragment>>,
    ) -> Result<DecodedStripe, CodecError> {
        let (shards, reference, damaged) = self.usable_shards(stripe, fragments)?;
        self.decode_shards(stripe, &shards, reference, damaged)
            .map(|(decoded, _)| decoded)
    }

    /// Decodes checked shards; also gives the header they share.
    fn decode_shards(
        &self,
        stripe: u64,
        shards: &[Option<Vec<u8>>],
        reference: Option<FragmentHeader>,
        mut damaged: Vec<usize>,
    ) -> Result<(DecodedStripe, FragmentHeader), CodecError> {
        let k = self.erasure.data_shards();
        let present: Vec<usize> = (0..shards.len()).filter(|&i| shards[i].is_some()).collect();
        let Some(header) = reference else {
            return Err(CodecError::NotEnoughFragments {
                stripe,
                available: 0,
                needed: k,
            });
        };
        if present.len() < k {
            return Err(CodecError::NotEnoughFragments {
                stripe,
                available: present.len(),
                needed: k,
            });
        }
        let other = self.erasure_for(&header)?;
        let erasure = other.as_ref().unwrap_or(&self.erasure);
        // The first k intact fragments; if the stripe does not authenticate (a fragment damaged
        // in a way its CRC did not show, e.g. rewritten whole), other subsets are tried.
        let first = self.open_with(erasure, &header, shards, &present[..k]);
        match first {
            Err(CodecError::Authentication { .. }) if present.len() > k => {
                for excluded in &present {
                    let subset: Vec<usize> = present
                        .iter()
                        .copied()
                        .filter(|i| i != excluded)
                        .take(k)
                        .collect();
                    if subset.len() < k {
                        continue;
                    }
                    if let Ok(plain) = self.open_with(erasure, &header, shards, &subset) {
                        damaged.push(*excluded);
                        damaged.sort_unstable();
                        return Ok((DecodedStripe { plain, damaged }, header));
                    }
                }
                Err(CodecError::Authentication { stripe })
            }
            other => other.map(|plain| (DecodedStripe { plain, damaged }, header)),
        }
    }

    /// The code the fragments were written with: normally this codec's own, rebuilt only when
    /// the header names another RLNC seed.
    fn erasure_for(&self, header: &FragmentHeader) -> Result<Option<Erasure>, CodecError> {
        if header.seed == self.erasure.seed() {
            return Ok(None);
        }
        Erasure::with_seed(
            header.scheme,
            usize::from(header.data),
            usize::from(header.parity),
            header.seed,
        )
        .map(Some)
    }

    /// Decodes from exactly the shards in `use_only`.
    fn open_with(
        &self,
        erasure: &Erasure,
        header: &FragmentHeader,
        shards: &[Option<Vec<u8>>],
        use_only: &[usize],
    ) -> Result<Vec<u8>, CodecError> {
        let k = erasure.data_shards();
        let shard_len = header.shard_len as usize;
        let stored_len = header.stored_len as usize;
        if stored_len > shard_len * k || header.plain_len as usize > MAX_STRIPE_BYTES {
            return Err(CodecError::Fragment(
                "stripe lengths out of range".to_owned(),
            ));
        }
        let mut sealed = Vec::with_capacity(shard_len * k);
        if use_only.iter().all(|&i| i < k) {
            // The data shards are all there: no decoding, just concatenation.
            for shard in shards.iter().take(k).flatten() {
                sealed.extend_from_slice(shard);
            }
        } else {
            let mut work: Vec<Option<Vec<u8>>> = (0..shards.len())
                .map(|i| {
                    if use_only.contains(&i) {
                        shards[i].clone()
                    } else {
                        None
                    }
                })
                .collect();
            erasure.reconstruct_data(&mut work)?;
            for shard in work.iter().take(k) {
                sealed.extend_from_slice(shard.as_deref().ok_or_else(|| {
                    CodecError::Fragment("a data shard could not be rebuilt".to_owned())
                })?);
            }
        }
        sealed.truncate(stored_len);
        let encrypted = header.flags & FLAG_ENCRYPTED != 0;
        if encrypted != self.key.is_some() {
            return Err(CodecError::Key(if encrypted {
                "the stripe is encrypted and no data key was given".to_owned()
            } else {
                "the stripe is not encrypted but a data key was given".to_owned()
            }));
        }
        let body_len = match &self.key {
            Some(key) => {
                let aad = self.aad(header.stripe, header.flags, header.plain_len);
                key.open(header.stripe, &aad, &mut sealed)?
            }
            None => stored_len,
        };
        sealed.truncate(body_len);
        if header.flags & FLAG_COMPRESSED != 0 {
            inflate(&sealed, header.plain_len as usize)
        } else if body_len == header.plain_len as usize {
            Ok(sealed)
        } else {
            Err(CodecError::Fragment(
                "stored and plain lengths disagree".to_owned(),
            ))
        }
    }

    /// Rebuilds the fragments that are missing or damaged (after checking that the stripe
    /// decodes and authenticates): `(index, fragment bytes)` to write back.
    pub fn repair_stripe(
        &self,
        stripe: u64,
        fragments: Vec<Option<Fragment>>,
    ) -> Result<Vec<(usize, Vec<u8>)>, CodecError> {
        let (mut shards, reference, damaged) = self.usable_shards(stripe, fragments)?;
        // Authenticates the stripe and names fragments whose damage the CRC did not show.
        let (decoded, header) = self.decode_shards(stripe, &shards, reference, damaged)?;
        for index in &decoded.damaged {
            shards[*index] = None;
        }
        let missing: Vec<usize> = (0..shards.len()).filter(|&i| shards[i].is_none()).collect();
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        let other = self.erasure_for(&header)?;
        other
            .as_ref()
            .unwrap_or(&self.erasure)
            .reconstruct(&mut shards)?;
        missing
            .into_iter()
            .map(|index| {
                let shard = shards[index].as_deref().ok_or_else(|| {
                    CodecError::Fragment(format!("fragment {index} could not be rebuilt"))
                })?;
                let mut h = header;
                h.index = index as u8;
                let mut bytes = h.to_bytes(shard).to_vec();
                bytes.extend_from_slice(shard);
                Ok((index, bytes))
            })
            .collect()
    }
}

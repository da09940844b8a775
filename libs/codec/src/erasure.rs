//! Erasure codes over GF(2^8): `k` data shards plus `m` redundant shards, any `k` of which
//! rebuild the data (D6.7 4.8: the policy's `redundancy {scheme, redundant_packets}`).
//!
//! - Reed-Solomon: reed-solomon-erasure (Vandermonde-derived systematic matrix, SIMD).
//! - RLNC: systematic random linear network coding. Data shards go out as they are; each redundant
//!   shard is a linear combination of the data shards with pseudorandom coefficients derived from a
//!   seed carried in every fragment header, so any holder can decode without a shared table. The
//!   encoder takes the first seed whose code is MDS (every `k` of the `k + m` shards independent,
//!   checked exhaustively where that is cheap), so a storage policy's `redundant_packets` losses
//!   are always survivable rather than only with high probability.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use reed_solomon_erasure::galois_8::ReedSolomon;
use serde::{Deserialize, Serialize};

use crate::{CodecError, gf256};

/// The coding scheme named by a storage policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scheme {
    #[serde(rename = "RS", alias = "rs", alias = "ReedSolomon")]
    ReedSolomon,
    #[serde(rename = "RLNC", alias = "rlnc")]
    Rlnc,
}

impl Scheme {
    pub fn code(self) -> u8 {
        match self {
            Scheme::ReedSolomon => 0,
            Scheme::Rlnc => 1,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Scheme::ReedSolomon),
            1 => Some(Scheme::Rlnc),
            _ => None,
        }
    }
}

/// One configured erasure code.
#[derive(Debug)]
pub struct Erasure {
    scheme: Scheme,
    data: usize,
    parity: usize,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    ReedSolomon(Option<Box<ReedSolomon>>),
    /// `coefficients[r][j]`: weight of data shard `j` in redundant shard `r`.
    Rlnc {
        seed: u32,
        coefficients: Vec<Vec<u8>>,
    },
}

/// Exhaustive MDS checks up to this many `k`-subsets; beyond, a random code over GF(2^8) is
/// accepted as it is (a singular subset is then possible but improbable).
const MDS_CHECK_LIMIT: u64 = 20_000;

impl Erasure {
    /// A code with `data` data shards and `parity` redundant ones (`parity` may be 0: no
    /// redundancy). RLNC picks its canonical seed for this shape.
    pub fn new(scheme: Scheme, data: usize, parity: usize) -> Result<Self, CodecError> {
        check_shape(data, parity)?;
        let seed = match scheme {
            Scheme::Rlnc => canonical_seed(data, parity),
            Scheme::ReedSolomon => 0,
        };
        Self::with_seed(scheme, data, parity, seed)
    }

    /// The code a fragment was written with (RLNC: the seed from its header).
    pub fn with_seed(
        scheme: Scheme,
        data: usize,
        parity: usize,
        seed: u32,
    ) -> Result<Self, CodecError> {
        check_shape(data, parity)?;
        let kind = match scheme {
            Scheme::ReedSolomon if parity == 0 => Kind::ReedSolomon(None),
            Scheme::ReedSolomon => Kind::ReedSolomon(Some(Box::new(
                ReedSolomon::new(data, parity)
                    .map_err(|err| CodecError::Parameters(format!("{err:?}")))?,
            ))),
            Scheme::Rlnc => Kind::Rlnc {
                seed,
                coefficients: rlnc_coefficients(seed, data, parity),
            },
        };
        Ok(Self {
            scheme,
            data,
            parity,
            kind,
        })
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }
    pub fn data_shards(&self) -> usize {
        self.data
    }
    pub fn parity_shards(&self) -> usize {
        self.parity
    }
    pub fn total_shards(&self) -> usize {
        self.data + self.parity
    }
    /// The RLNC seed (0 for Reed-Solomon).
    pub fn seed(&self) -> u32 {
        match &self.kind {
            Kind::Rlnc { seed, .. } => *seed,
            Kind::ReedSolomon(_) => 0,
        }
    }

    /// Fills the redundant shards from the data shards; `shards` holds `k + m` equal slices.
    pub fn encode(&self, shards: &mut [&mut [u8]]) -> Result<(), CodecError> {
        if shards.len() != self.total_shards() {
            return Err(CodecError::Parameters(format!(
                "{} shards given, {} expected",
                shards.len(),
                self.total_shards()
            )));
        }
        match &self.kind {
            Kind::ReedSolomon(None) => Ok(()),
            Kind::ReedSolomon(Some(rs)) => rs
                .encode(shards)
                .map_err(|err| CodecError::Parameters(format!("{err:?}"))),
            Kind::Rlnc { coefficients, .. } => {
                let (data, parity) = shards.split_at_mut(self.data);
                for (row, out) in coefficients.iter().zip(parity.iter_mut()) {
                    gf256::mul_slice(row[0], data[0], out);
                    for (c, input) in row.iter().zip(data.iter()).skip(1) {
                        gf256::mul_slice_add(*c, input, out);
                    }
                }
                Ok(())
            }
        }
    }

    /// Rebuilds the missing data shards (`None`) from any `k` present shards; redundant shards
    /// stay as they are.
    pub fn reconstruct_data(&self, shards: &mut [Option<Vec<u8>>]) -> Result<(), CodecError> {
        self.rebuild(shards, false)
    }

    /// Rebuilds every missing shard, data and redundant (repair).
    pub fn reconstruct(&self, shards: &mut [Option<Vec<u8>>]) -> Result<(), CodecError> {
        self.rebuild(shards, true)
    }

    fn rebuild(&self, shards: &mut [Option<Vec<u8>>], all: bool) -> Result<(), CodecError> {
        if shards.len() != self.total_shards() {
            return Err(CodecError::Parameters(format!(
                "{} shards given, {} expected",
                shards.len(),
                self.total_shards()
            )));
        }
        let present = shards.iter().filter(|s| s.is_some()).count();
        if present < self.data {
            return Err(CodecError::NotEnoughFragments {
                stripe: 0,
                available: present,
                needed: self.data,
            });
        }
        let missing_data = shards[..self.data].iter().any(Option::is_none);
        let missing_any = shards.iter().any(Option::is_none);
        if !(missing_data || all && missing_any) {
            return Ok(());
        }
        match &self.kind {
            Kind::ReedSolomon(None) => Ok(()),
            Kind::ReedSolomon(Some(rs)) => {
                let result = if all {
                    rs.reconstruct(shards)
                } else {
                    rs.reconstruct_data(shards)
                };
                result.map_err(|err| CodecError::Fragment(format!("{err:?}")))
            }
            Kind::Rlnc { coefficients, .. } => self.rlnc_rebuild(coefficients, shards, all),
        }
    }

    fn rlnc_rebuild(
        &self,
        coefficients: &[Vec<u8>],
        shards: &mut [Option<Vec<u8>>],
        all: bool,
    ) -> Result<(), CodecError> {
        let k = self.data;
        let len = shards.iter().flatten().map(Vec::len).next().unwrap_or(0);
        if shards.iter().flatten().any(|s| s.len() != len) {
            return Err(CodecError::Fragment(
                "shards of different lengths".to_owned(),
            ));
        }
        // Any k present shards, data shards first (their rows are unit vectors).
        let chosen: Vec<usize> = (0..shards.len())
            .filter(|&i| shards[i].is_some())
            .take(k)
            .collect();
        let generator_row = |i: usize| -> Vec<u8> {
            if i < k {
                (0..k).map(|j| u8::from(i == j)).collect()
            } else {
                coefficients[i - k].clone()
            }
        };
        let inverse = gf256::invert(chosen.iter().map(|&i| generator_row(i)).collect())
            .ok_or_else(|| {
                CodecError::Fragment("the received fragments are not independent".to_owned())
            })?;
        let mut rebuilt_data: Vec<(usize, Vec<u8>)> = Vec::new();
        for d in 0..k {
            if shards[d].is_some() {
                continue;
            }
            let mut out = vec![0u8; len];
            for (t, &source) in chosen.iter().enumerate() {
                let c = inverse[d][t];
                if c != 0
                    && let Some(input) = &shards[source]
                {
                    gf256::mul_slice_add(c, input, &mut out);
                }
            }
            rebuilt_data.push((d, out));
        }
        for (d, out) in rebuilt_data {
            shards[d] = Some(out);
        }
        if all {
            for r in 0..self.parity {
                if shards[k + r].is_some() {
                    continue;
                }
                let mut out = vec![0u8; len];
                for (j, c) in coefficients[r].iter().enumerate() {
                    if let Some(input) = &shards[j] {
                        gf256::mul_slice_add(*c, input, &mut out);
                    }
                }
                shards[k + r] = Some(out);
            }
        }
        Ok(())
    }
}

/// Fragment indices are one byte and at least one fragment carries data.
fn check_shape(data: usize, parity: usize) -> Result<(), CodecError> {
    if data == 0 || data + parity > 255 {
        return Err(CodecError::Parameters(format!(
            "{data} data + {parity} redundant fragments: need 1 to 255 in all, at least one data"
        )));
    }
    Ok(())
}

/// splitmix64: a tiny, well-distributed generator; coefficients must be reproducible from the
/// seed alone, on any machine, forever (so no external RNG whose stream may change).
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn rlnc_coefficients(seed: u32, data: usize, parity: usize) -> Vec<Vec<u8>> {
    let mut state = u64::from(seed) << 32 | (data as u64) << 8 | parity as u64;
    (0..parity)
        .map(|_| {
            (0..data)
                .map(|_| {
                    loop {
                        let c = (splitmix64(&mut state) & 0xff) as u8;
                        if c != 0 {
                            break c;
                        }
                    }
                })
                .collect()
        })
        .collect()
}

fn combinations(n: u64, k: u64) -> u64 {
    let k = k.min(n - k);
    (0..k).fold(1u64, |acc, i| acc.saturating_mul(n - i) / (i + 1))
}

/// Whether every `k`-subset of the rows of `[I; C]` is invertible.
fn is_mds(coefficients: &[Vec<u8>], data: usize) -> bool {
    let total = data + coefficients.len();
    let row = |i: usize| -> Vec<u8> {
        if i < data {
            (0..data).map(|j| u8::from(i == j)).collect()
        } else {
            coefficients[i - data].clone()
        }
    };
    let mut subset: Vec<usize> = (0..data).collect();
    loop {
        if subset.iter().any(|&i| i >= data)
            && gf256::invert(subset.iter().map(|&i| row(i)).collect()).is_none()
        {
            return false;
        }
        // Next k-subset in lexicographic order.
        let mut i = data;
        loop {
            if i == 0 {
                return true;
            }
            i -= 1;
            if subset[i] < total - data + i {
                subset[i] += 1;
                for j in i + 1..data {
                    subset[j] = subset[j - 1] + 1;
                }
                break;
            }
        }
    }
}

fn canonical_seed(data: usize, parity: usize) -> u32 {
    static SEEDS: OnceLock<Mutex<HashMap<(usize, usize), u32>>> = OnceLock::new();
    let seeds = SEEDS.get_or_init(Default::default);
    if let Ok(known) = seeds.lock()
        && let Some(seed) = known.get(&(data, parity))
    {
        return *seed;
    }
    let checkable =
        parity == 0 || combinations((data + parity) as u64, data as u64) <= MDS_CHECK_LIMIT;
    let seed = (1u32..1000)
        .find(|&seed| !checkable || is_mds(&rlnc_coefficients(seed, data, parity), data))
        .unwrap_or(1);
    if let Ok(mut known) = seeds.lock() {
        known.insert((data, parity), seed);
    }
    seed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shards_for(code: &Erasure, len: usize) -> Vec<Vec<u8>> {
        let mut buffer: Vec<u8> = (0..len * code.total_shards())
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        {
            let mut slices: Vec<&mut [u8]> = buffer.chunks_mut(len).collect();
            code.encode(&mut slices).expect("encode");
        }
        buffer.chunks(len).map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn any_k_shards_rebuild_everything() {
        for scheme in [Scheme::ReedSolomon, Scheme::Rlnc] {
            for (k, m) in [(1, 1), (3, 1), (4, 2), (6, 3), (10, 4)] {
                let code = Erasure::new(scheme, k, m).expect("code");
                let original = shards_for(&code, 67);
                // Every pattern of up to m losses.
                for mask in 0u32..(1 << (k + m)) {
                    if mask.count_ones() as usize > m {
                        continue;
                    }
                    let mut shards: Vec<Option<Vec<u8>>> = original
                        .iter()
                        .enumerate()
                        .map(|(i, s)| (mask & (1 << i) == 0).then(|| s.clone()))
                        .collect();
                    code.reconstruct(&mut shards).expect("rebuild");
                    let rebuilt: Vec<Vec<u8>> = shards.into_iter().flatten().collect();
                    assert_eq!(rebuilt, original, "{scheme:?} {k}+{m} lost {mask:b}");
                }
            }
        }
    }

    #[test]
    fn more_than_m_losses_is_an_error() {
        for scheme in [Scheme::ReedSolomon, Scheme::Rlnc] {
            let code = Erasure::new(scheme, 3, 1).expect("code");
            let original = shards_for(&code, 16);
            let mut shards: Vec<Option<Vec<u8>>> = original.into_iter().map(Some).collect();
            shards[0] = None;
            shards[3] = None;
            assert!(matches!(
                code.reconstruct_data(&mut shards),
                Err(CodecError::NotEnoughFragments {
                    available: 2,
                    needed: 3,
                    ..
                })
            ));
        }
    }

    #[test]
    fn rlnc_seed_is_reproducible_and_mds() {
        let a = Erasure::new(Scheme::Rlnc, 6, 3).expect("code");
        let b = Erasure::with_seed(Scheme::Rlnc, 6, 3, a.seed()).expect("code");
        assert_eq!(shards_for(&a, 40), shards_for(&b, 40));
        assert!(is_mds(&rlnc_coefficients(a.seed(), 6, 3), 6));
        assert_eq!(combinations(14, 10), 1001);
    }

    #[test]
    fn bad_shapes_are_refused() {
        assert!(Erasure::new(Scheme::ReedSolomon, 0, 1).is_err());
        assert!(Erasure::new(Scheme::Rlnc, 200, 56).is_err());
        let code = Erasure::new(Scheme::ReedSolomon, 3, 1).expect("code");
        let mut one = [0u8; 4];
        assert!(code.encode(&mut [&mut one[..]]).is_err());
    }
}

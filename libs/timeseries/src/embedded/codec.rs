//! Column chunk encodings (Gorilla-style, D6.7 4.4.2: PMDS keeps years of probe metrics, so the
//! history must be compact).
//!
//! A chunk holds the samples of one field of one series as two bit streams:
//!
//! - times: the first time in the header; while every step equals the first one nothing else
//!   is stored (aligned scrapes cost no bits per sample), otherwise the first step then deltas
//!   of steps, in units of `10^unit_exp` ns;
//! - values, by mode: `Const` (nothing per sample), `Xor` (Gorilla XOR of float bits), `Num`
//!   (integers, and floats that are decimals `m * 10^-k`, as delta or delta of delta divided by
//!   their GCD, in a fixed width or an adaptive code; a float that does not scale is escaped
//!   raw), `Bool` (one bit), `Str` (one bit "same as before", else the string in a side area).
//!
//! The adaptive code: `0` for zero, `10` + bits in the current width, `110` + 6-bit width +
//! bits, `111` + 64 raw bits (escape).
//!
//! A head chunk is appended to incrementally. Its parameters fit its first value; after
//! [`RETUNE_AT`] samples it re-picks the smallest candidate parameters from the samples seen,
//! and a sample that does not fit them (a larger delta, more decimals, an irregular step)
//! re-encodes the head. A sealed chunk keeps the head's bits.

use crate::line_protocol::RawValue;

use super::bits::{
    BitCounter, BitReader, BitWriter, ByteReader, Sink, put_ivarint, put_uvarint, unzigzag, width,
    zigzag,
};

/// The stored type of a field (a field keeps its first type: D6.7 4.4.2, Influx semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ColType {
    Float = 1,
    Int = 2,
    UInt = 3,
    Bool = 4,
    Str = 5,
}

impl ColType {
    pub fn of(v: &RawValue<'_>) -> ColType {
        match v {
            RawValue::Float(_) => ColType::Float,
            RawValue::Int(_) => ColType::Int,
            RawValue::UInt(_) => ColType::UInt,
            RawValue::Bool(_) => ColType::Bool,
            RawValue::Str(_) => ColType::Str,
        }
    }

    pub fn from_u8(b: u8) -> Option<ColType> {
        Some(match b {
            1 => ColType::Float,
            2 => ColType::Int,
            3 => ColType::UInt,
            4 => ColType::Bool,
            5 => ColType::Str,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ColType::Float => "float",
            ColType::Int => "integer",
            ColType::UInt => "unsigned",
            ColType::Bool => "boolean",
            ColType::Str => "string",
        }
    }
}

/// The bits of a non-string value (f64 bits, i64 as u64, u64, 0/1).
pub(crate) fn value_bits(v: &RawValue<'_>) -> u64 {
    match *v {
        RawValue::Float(f) => f.to_bits(),
        RawValue::Int(i) => i as u64,
        RawValue::UInt(u) => u,
        RawValue::Bool(b) => u64::from(b),
        RawValue::Str(_) => 0,
    }
}

/// How the values of a chunk are coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VMode {
    Const(u64),
    Xor,
    /// `k`: decimal exponent of floats (0 for integers); `order` 1 = delta, 2 = delta of delta;
    /// `fixed` > 0: every coded quantity in that many bits (no escapes), else adaptive code.
    Num {
        k: u8,
        order: u8,
        gcd: u64,
        fixed: u8,
    },
    Bool,
    Str,
}

const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];
const MAX_EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
/// Most decimals a float may have to be coded as a scaled integer.
const MAX_K: u8 = 15;
/// After this many samples a head re-picks its encoding parameters from what it has seen.
pub(crate) const RETUNE_AT: u32 = 32;
/// Most decimals the first value of a head may have for the head to use `Num`.
const HEAD_MAX_K: u8 = 9;

/// `v * 10^k` as an integer when that is exact, i.e. `m / 10^k` gives back the same bits.
#[inline]
fn to_scaled(v: f64, k: u8) -> Option<i64> {
    let p = *POW10.get(usize::from(k))?;
    let m = v * p;
    if m.is_nan() || m.abs() > MAX_EXACT {
        return None;
    }
    // Round half away from zero without a libm call; an off-by-one only fails the check
    // below (the value is then escaped or re-encoded), it never stores a wrong value.
    let mi = if m >= 0.0 {
        (m + 0.5) as i64
    } else {
        (m - 0.5) as i64
    };
    // Rebuilt from the integer, as the decoder does (so -0.0 does not pass as 0).
    ((mi as f64 / p).to_bits() == v.to_bits()).then_some(mi)
}

#[inline]
fn from_scaled(m: i64, k: u8) -> f64 {
    m as f64 / POW10.get(usize::from(k)).copied().unwrap_or(1.0)
}

/// The fewest decimals that represent `v` exactly.
fn dec_exp(v: f64) -> Option<u8> {
    (0..=MAX_K).find(|&k| to_scaled(v, k).is_some())
}

/// An incremental chunk encoder; `S` is a [`BitWriter`] (heads) or a [`BitCounter`] (sizing).
#[derive(Debug, Clone)]
pub(crate) struct Enc<S: Sink> {
    /// Value codes (and the string side area).
    pub sink: S,
    /// Time codes; stays empty while the times are regular (`t_regular`).
    pub tsink: S,
    /// Every step so far equals the first one: times are `t0 + i * t_delta * unit`, no
    /// time codes are written (regular scrapes cost nothing per sample).
    t_regular: bool,
    pub ty: ColType,
    pub unit_exp: u8,
    pub mode: VMode,
    pub count: u32,
    pub t0: i64,
    pub min_t: i64,
    pub max_t: i64,
    t_prev: i64,
    t_delta: i64,
    tw: u8,
    /// Xor: previous bits; Num: previous scaled integer.
    v_prev: u64,
    v_delta: i64,
    vw: u8,
    /// Values of the numeric sequence so far (Num: escapes excluded).
    n_num: u32,
    x_lead: u8,
    x_trail: u8,
    /// Str: the previous string.
    /// Str: where the previous string sits in `side`.
    s_prev: (u32, u32),
    /// Str: the strings, each `varint len | bytes`, written when it differs from the previous.
    pub side: Vec<u8>,
}

pub(crate) type Head = Enc<BitWriter>;

fn pow10_i64(e: u8) -> i64 {
    10i64.checked_pow(u32::from(e)).unwrap_or(1)
}

impl<S: Sink> Enc<S> {
    pub fn new(sink: S, tsink: S, ty: ColType, unit_exp: u8, mode: VMode) -> Enc<S> {
        Enc {
            sink,
            tsink,
            t_regular: true,
            ty,
            unit_exp,
            mode,
            count: 0,
            t0: 0,
            min_t: i64::MAX,
            max_t: i64::MIN,
            t_prev: 0,
            t_delta: 0,
            tw: 0,
            v_prev: 0,
            v_delta: 0,
            vw: 0,
            n_num: 0,
            x_lead: 0,
            x_trail: 0,
            s_prev: (0, 0),
            side: Vec::new(),
        }
    }

    /// Appends a sample if the parameters fit it (time step a multiple of the unit, value
    /// constant / decimal / divisible as the mode needs); false leaves the encoder unchanged
    /// (the caller rebuilds it with new parameters).
    #[inline]
    pub fn try_push(&mut self, t: i64, bits: u64, s: &[u8]) -> bool {
        if self.count > 0 && self.unit_exp > 0 {
            match t.checked_sub(self.t_prev) {
                Some(d) if d % pow10_i64(self.unit_exp) == 0 => {}
                _ => return false,
            }
        }
        match self.mode {
            VMode::Const(b) if b != bits => return false,
            VMode::Num {
                k,
                order,
                gcd,
                fixed,
            } => {
                let m = match self.ty {
                    ColType::Float => {
                        let v = f64::from_bits(bits);
                        match to_scaled(v, k) {
                            Some(m) => m,
                            // More decimals than `k`: rebuild with a larger `k`; not a
                            // decimal at all: escaped (not possible with fixed widths).
                            None if fixed > 0 || dec_exp(v).is_some() => return false,
                            None => {
                                self.push(t, bits, s);
                                return true;
                            }
                        }
                    }
                    _ => bits as i64,
                };
                if self.n_num > 0 && (gcd > 1 || fixed > 0) {
                    let d = m.wrapping_sub(self.v_prev as i64);
                    let c = if order == 1 || self.n_num == 1 {
                        d
                    } else {
                        d.wrapping_sub(self.v_delta)
                    };
                    if gcd > 1 && c % gcd as i64 != 0 {
                        return false;
                    }
                    let q = if gcd > 1 { c / gcd as i64 } else { c };
                    if fixed > 0 && width(zigzag(q)) > u32::from(fixed) {
                        return false;
                    }
                }
            }
            _ => {}
        }
        self.push(t, bits, s);
        true
    }

    /// Appends a sample: `bits` for numbers and bools, `s` (UTF-8 bytes) for strings. The
    /// parameters must fit it (see [`Enc::try_push`]).
    #[inline]
    pub fn push(&mut self, t: i64, bits: u64, s: &[u8]) {
        self.push_time(t);
        match self.mode {
            VMode::Const(_) => {}
            VMode::Bool => self.sink.put(bits & 1, 1),
            VMode::Str => self.push_str(s),
            VMode::Xor => self.push_xor(bits),
            VMode::Num {
                k,
                order,
                gcd,
                fixed,
            } => self.push_num(bits, k, order, gcd, fixed),
        }
        self.count += 1;
    }

    #[inline]
    fn push_time(&mut self, t: i64) {
        self.min_t = self.min_t.min(t);
        self.max_t = self.max_t.max(t);
        if self.count == 0 {
            self.t0 = t;
        } else {
            let step = t.wrapping_sub(self.t_prev);
            let d = if self.unit_exp == 0 {
                step
            } else {
                step / pow10_i64(self.unit_exp)
            };
            if self.count > 1 {
                let c = d.wrapping_sub(self.t_delta);
                if self.t_regular && c != 0 {
                    // The first irregular step: write the codes of the regular ones so far
                    // (the first step, then zero deltas of delta).
                    self.t_regular = false;
                    put_adaptive(&mut self.tsink, &mut self.tw, zigzag(self.t_delta));
                    let mut zeros = self.count - 2;
                    while zeros > 0 {
                        let n = zeros.min(64);
                        self.tsink.put(0, n);
                        zeros -= n;
                    }
                }
                if !self.t_regular {
                    put_adaptive(&mut self.tsink, &mut self.tw, zigzag(c));
                }
            }
            self.t_delta = d;
        }
        self.t_prev = t;
    }

    fn push_str(&mut self, s: &[u8]) {
        let (off, len) = (self.s_prev.0 as usize, self.s_prev.1 as usize);
        if self.count > 0 && self.side.get(off..off + len) == Some(s) {
            self.sink.put(0, 1);
            return;
        }
        self.sink.put(1, 1);
        put_uvarint(&mut self.side, s.len() as u64);
        // Offsets past 4 GiB of strings in one chunk only lose the "same as before" shortcut.
        self.s_prev = (
            u32::try_from(self.side.len()).unwrap_or(u32::MAX),
            u32::try_from(s.len()).unwrap_or(0),
        );
        self.side.extend_from_slice(s);
    }

    #[inline]
    fn push_xor(&mut self, bits: u64) {
        if self.count == 0 {
            self.sink.put(bits, 64);
            self.v_prev = bits;
            self.x_lead = u8::MAX;
            return;
        }
        let x = bits ^ self.v_prev;
        self.v_prev = bits;
        if x == 0 {
            self.sink.put(0, 1);
            return;
        }
        let lead = x.leading_zeros() as u8;
        let trail = x.trailing_zeros() as u8;
        if self.x_lead != u8::MAX && lead >= self.x_lead && trail >= self.x_trail {
            let len = 64 - u32::from(self.x_lead) - u32::from(self.x_trail);
            self.sink.put(0b10, 2);
            self.sink.put(x >> self.x_trail, len);
        } else {
            let len = 64 - u32::from(lead) - u32::from(trail);
            self.sink.put(0b11, 2);
            self.sink.put(u64::from(lead), 6);
            self.sink.put(u64::from(len - 1), 6);
            self.sink.put(x >> trail, len);
            self.x_lead = lead;
            self.x_trail = trail;
        }
    }

    #[inline]
    fn push_num(&mut self, bits: u64, k: u8, order: u8, gcd: u64, fixed: u8) {
        let m = match self.ty {
            ColType::Float => to_scaled(f64::from_bits(bits), k),
            _ => Some(bits as i64),
        };
        let Some(m) = m else {
            // Not a decimal with `k` digits: escaped raw, outside the numeric sequence.
            if self.n_num == 0 {
                self.sink.put(1, 1);
            } else {
                self.sink.put(0b111, 3);
            }
            self.sink.put(bits, 64);
            return;
        };
        if self.n_num == 0 {
            // Flag 0 (not an escape), then the value with its width.
            let zz = zigzag(m);
            let w = width(zz).max(1);
            self.sink.put(0, 1);
            self.sink.put(u64::from(w - 1), 6);
            self.sink.put(zz, w);
        } else {
            let d = m.wrapping_sub(self.v_prev as i64);
            let c = if order == 1 || self.n_num == 1 {
                d
            } else {
                d.wrapping_sub(self.v_delta)
            };
            // The gcd divides every coded quantity of a sealed chunk; heads use 1.
            let q = if gcd > 1 { c / gcd as i64 } else { c };
            if fixed > 0 {
                self.sink.put(zigzag(q), u32::from(fixed));
            } else {
                put_adaptive(&mut self.sink, &mut self.vw, zigzag(q));
            }
            self.v_delta = d;
        }
        self.v_prev = m as u64;
        self.n_num += 1;
    }
}

#[inline]
fn put_adaptive<S: Sink>(s: &mut S, w: &mut u8, zz: u64) {
    if zz == 0 {
        s.put(0, 1);
        return;
    }
    let need = width(zz) as u8;
    // Keep the width for smaller values unless it wastes more than a width change costs.
    if need <= *w && *w - need < 10 {
        s.put(0b10, 2);
        s.put(zz, u32::from(*w));
    } else {
        s.put(0b110, 3);
        s.put(u64::from(need - 1), 6);
        s.put(zz, u32::from(need));
        *w = need;
    }
}

enum Code {
    Num(u64),
    Escape(u64),
}

#[inline]
fn get_adaptive(r: &mut BitReader<'_>, w: &mut u8) -> Option<Code> {
    if !r.bit()? {
        return Some(Code::Num(0));
    }
    if !r.bit()? {
        return r.read(u32::from(*w)).map(Code::Num);
    }
    if !r.bit()? {
        let need = r.read(6)? as u8 + 1;
        *w = need;
        return r.read(u32::from(need)).map(Code::Num);
    }
    r.read(64).map(Code::Escape)
}

/// Decoded samples of one column chunk: `vals` holds bits (see [`value_bits`]) except for
/// strings, which are in `strs`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Samples {
    pub times: Vec<i64>,
    pub vals: Vec<u64>,
    pub strs: Vec<String>,
}

impl Samples {
    pub fn len(&self) -> usize {
        self.times.len()
    }
}

/// Parameters needed to decode a stream.
struct StreamParams {
    ty: ColType,
    unit_exp: u8,
    mode: VMode,
    count: u32,
    t0: i64,
    /// `Some(step)`: regular times, no time codes.
    t_regular: Option<i64>,
}

/// Most samples a stored chunk may claim (merged chunks hold at most a few thousand); a
/// corrupt count must not make the decoder loop or allocate without bound.
const MAX_CHUNK_SAMPLES: u32 = 1 << 16;

fn decode_stream(
    p: &StreamParams,
    mut tr: BitReader<'_>,
    mut r: BitReader<'_>,
    side: &[u8],
    out: &mut Samples,
) -> Option<()> {
    if p.count > MAX_CHUNK_SAMPLES {
        return None;
    }
    let mut side = ByteReader::new(side);
    let unit = pow10_i64(p.unit_exp);
    let (mut t_prev, mut t_delta, mut tw) = (p.t0, 0i64, 0u8);
    let (mut v_prev, mut v_delta, mut vw, mut n_num) = (0u64, 0i64, 0u8, 0u32);
    let (mut x_lead, mut x_trail) = (0u8, 0u8);
    let mut s_prev = String::new();
    out.times.reserve(p.count as usize);
    for i in 0..p.count {
        let t = if i == 0 {
            p.t0
        } else if let Some(step) = p.t_regular {
            t_prev.wrapping_add(step.wrapping_mul(unit))
        } else {
            let Code::Num(zz) = get_adaptive(&mut tr, &mut tw)? else {
                return None;
            };
            let c = unzigzag(zz);
            let d = if i == 1 { c } else { t_delta.wrapping_add(c) };
            t_delta = d;
            t_prev.wrapping_add(d.wrapping_mul(unit))
        };
        t_prev = t;
        out.times.push(t);
        match p.mode {
            VMode::Const(b) => out.vals.push(b),
            VMode::Bool => out.vals.push(r.read(1)?),
            VMode::Str => {
                if r.bit()? {
                    let len = usize::try_from(side.uvarint()?).ok()?;
                    let b = side.bytes(len)?;
                    s_prev = std::str::from_utf8(b).ok()?.to_string();
                }
                out.strs.push(s_prev.clone());
            }
            VMode::Xor => {
                if i == 0 {
                    v_prev = r.read(64)?;
                } else if r.bit()? {
                    if r.bit()? {
                        x_lead = r.read(6)? as u8;
                        let len = r.read(6)? as u32 + 1;
                        if u32::from(x_lead) + len > 64 {
                            return None;
                        }
                        x_trail = (64 - u32::from(x_lead) - len) as u8;
                        v_prev ^= r.read(len)? << x_trail;
                    } else {
                        let len = 64u32.checked_sub(u32::from(x_lead) + u32::from(x_trail))?;
                        if len == 0 {
                            return None;
                        }
                        v_prev ^= r.read(len)? << x_trail;
                    }
                }
                out.vals.push(v_prev);
            }
            VMode::Num {
                k,
                order,
                gcd,
                fixed,
            } => {
                let code = if n_num == 0 {
                    if r.bit()? {
                        Code::Escape(r.read(64)?)
                    } else {
                        let w = r.read(6)? as u32 + 1;
                        Code::Num(r.read(w)?)
                    }
                } else if fixed > 0 {
                    Code::Num(r.read(u32::from(fixed))?)
                } else {
                    get_adaptive(&mut r, &mut vw)?
                };
                let m = match code {
                    Code::Escape(raw) => {
                        out.vals.push(raw);
                        continue;
                    }
                    Code::Num(zz) if n_num == 0 => unzigzag(zz),
                    Code::Num(zz) => {
                        let c = unzigzag(zz).wrapping_mul(gcd.max(1) as i64);
                        let d = if order == 1 || n_num == 1 {
                            c
                        } else {
                            v_delta.wrapping_add(c)
                        };
                        v_delta = d;
                        (v_prev as i64).wrapping_add(d)
                    }
                };
                v_prev = m as u64;
                n_num += 1;
                out.vals.push(match p.ty {
                    ColType::Float => from_scaled(m, k).to_bits(),
                    _ => m as u64,
                });
            }
        }
    }
    Some(())
}

impl Head {
    /// A head for a column whose first value is `bits`: parameters that fit one value;
    /// [`Head::retune`] picks better ones once a few samples are in.
    pub fn for_first(ty: ColType, bits: u64) -> Head {
        let mode = match ty {
            ColType::Float => match dec_exp(f64::from_bits(bits)) {
                Some(k) if k <= HEAD_MAX_K => VMode::Num {
                    k,
                    order: 1,
                    gcd: 1,
                    fixed: 0,
                },
                _ => VMode::Xor,
            },
            ColType::Int | ColType::UInt => VMode::Num {
                k: 0,
                order: 1,
                gcd: 1,
                fixed: 0,
            },
            ColType::Bool => VMode::Bool,
            ColType::Str => VMode::Str,
        };
        // Room for a few dozen samples: fewer reallocations while the head grows.
        Enc::new(
            BitWriter::with_capacity(32),
            BitWriter::default(),
            ty,
            0,
            mode,
        )
    }

    /// The smallest encoding of `s` as a head (appendable).
    pub fn build(ty: ColType, s: &Samples) -> Head {
        let (unit_exp, mode) = best_params(ty, s);
        encode_into(ty, unit_exp, mode, s)
    }

    /// Appends a sample, re-encoding the head when its parameters do not fit the sample.
    pub fn append(&mut self, t: i64, bits: u64, s: &[u8]) {
        if !self.try_push(t, bits, s) {
            // Our own bits always decode; if not, losing one sample beats a panic.
            let Some(mut all) = self.samples() else {
                tracing::error!("a head chunk does not decode; sample dropped");
                return;
            };
            all.times.push(t);
            if self.ty == ColType::Str {
                all.strs.push(String::from_utf8_lossy(s).into_owned());
            } else {
                all.vals.push(bits);
            }
            // A few samples say little about the data: until the retune, rebuild with
            // parameters that only need to fit (no time unit, gcd or fixed width that the
            // next sample would break again).
            *self = if all.len() < RETUNE_AT as usize {
                let (unit_exp, mode) = robust_params(self.ty, &all);
                encode_into(self.ty, unit_exp, mode, &all)
            } else {
                Head::build(self.ty, &all)
            };
        }
        if self.count == RETUNE_AT {
            self.retune();
        }
    }

    /// Re-encodes the head with the best parameters for the samples so far.
    pub fn retune(&mut self) {
        if let Some(all) = self.samples() {
            let better = Head::build(self.ty, &all);
            if better.total_bits() < self.total_bits() {
                *self = better;
            }
        }
    }

    /// Every sample of the head, in append order.
    pub fn samples(&self) -> Option<Samples> {
        let mut out = Samples::default();
        let p = StreamParams {
            ty: self.ty,
            unit_exp: self.unit_exp,
            mode: self.mode,
            count: self.count,
            t0: self.t0,
            t_regular: self.t_regular.then_some(self.t_delta),
        };
        let times = BitReader::new(&self.tsink.buf, self.tsink.bit_len());
        let vals = BitReader::new(&self.sink.buf, self.sink.bit_len());
        decode_stream(&p, times, vals, &self.side, &mut out)?;
        Some(out)
    }

    pub fn heap_bytes(&self) -> usize {
        self.sink.heap_bytes() + self.tsink.heap_bytes() + self.side.capacity()
    }

    fn total_bits(&self) -> u64 {
        self.sink.bit_len() + self.tsink.bit_len() + self.side.len() as u64 * 8
    }

    /// The head as a sealed chunk (same bits; `base_t` is subtracted from the first time).
    pub fn to_chunk(&self, base_t: i64) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.sink.buf.len() + self.side.len() + 24);
        self.write_chunk(&mut out, base_t);
        out
    }

    /// Appends [`Head::to_chunk`] to `out`.
    pub fn write_chunk(&self, out: &mut Vec<u8>, base_t: i64) {
        out.push(self.ty as u8);
        put_uvarint(out, u64::from(self.count));
        out.push(self.unit_exp);
        put_ivarint(out, self.t0.wrapping_sub(base_t));
        if self.t_regular {
            out.push(0);
            put_ivarint(out, self.t_delta);
        } else {
            out.push(1);
            put_uvarint(out, self.tsink.bit_len());
            out.extend_from_slice(&self.tsink.buf);
        }
        match self.mode {
            VMode::Const(b) => {
                out.push(0);
                out.extend_from_slice(&b.to_le_bytes());
            }
            VMode::Xor => out.push(1),
            VMode::Num {
                k,
                order,
                gcd,
                fixed,
            } => {
                out.push(2);
                out.push(k);
                out.push(order);
                put_uvarint(out, gcd);
                out.push(fixed);
            }
            VMode::Bool => out.push(3),
            VMode::Str => out.push(4),
        }
        put_uvarint(out, self.sink.bit_len());
        out.extend_from_slice(&self.sink.buf);
        if self.ty == ColType::Str {
            put_uvarint(out, self.side.len() as u64);
            out.extend_from_slice(&self.side);
        }
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The gcd of the coded quantities of a numeric sequence for `order` (1 when none helps).
fn seq_gcd(seq: &[i64], order: u8) -> u64 {
    let mut g = 0u64;
    let mut prev_d = 0i64;
    for i in 1..seq.len() {
        let d = seq[i].wrapping_sub(seq[i - 1]);
        let c = if order == 1 || i == 1 {
            d
        } else {
            d.wrapping_sub(prev_d)
        };
        prev_d = d;
        g = gcd(g, c.unsigned_abs());
        if g == 1 {
            return 1;
        }
    }
    if g == 0 || g > i64::MAX as u64 { 1 } else { g }
}

fn encode_into<S: Sink + Default>(ty: ColType, unit_exp: u8, mode: VMode, s: &Samples) -> Enc<S> {
    let mut e = Enc::new(S::default(), S::default(), ty, unit_exp, mode);
    for i in 0..s.len() {
        let (bits, st) = match ty {
            ColType::Str => (0, s.strs.get(i).map_or(&b""[..], |x| x.as_bytes())),
            _ => (s.vals.get(i).copied().unwrap_or(0), &b""[..]),
        };
        e.push(s.times[i], bits, st);
    }
    e
}

/// The largest power-of-ten unit dividing every time step (0 when a step overflows).
fn time_unit(times: &[i64]) -> u8 {
    let mut g = 0u64;
    for w in times.windows(2) {
        match w[1].checked_sub(w[0]) {
            Some(d) => g = gcd(g, d.unsigned_abs()),
            None => return 0,
        }
    }
    if g == 0 {
        return 0;
    }
    let mut u = 0u8;
    while u < 18 && g.is_multiple_of(10) {
        g /= 10;
        u += 1;
    }
    u
}

/// The candidate value modes for samples.
fn candidates(ty: ColType, s: &Samples) -> Vec<VMode> {
    let mut out = Vec::with_capacity(4);
    let first = s.vals.first().copied().unwrap_or(0);
    match ty {
        ColType::Str => return vec![VMode::Str],
        _ if s.vals.iter().all(|&v| v == first) => return vec![VMode::Const(first)],
        ColType::Bool => return vec![VMode::Bool],
        ColType::Float => {
            out.push(VMode::Xor);
            let mut k = 0u8;
            let mut escapes = 0usize;
            for &b in &s.vals {
                match dec_exp(f64::from_bits(b)) {
                    Some(e) => k = k.max(e),
                    None => escapes += 1,
                }
            }
            if escapes * 4 < s.vals.len() {
                let seq: Vec<i64> = s
                    .vals
                    .iter()
                    .filter_map(|&b| to_scaled(f64::from_bits(b), k))
                    .collect();
                num_candidates(&seq, k, escapes == 0, &mut out);
            }
        }
        ColType::Int | ColType::UInt => {
            let seq: Vec<i64> = s.vals.iter().map(|&b| b as i64).collect();
            num_candidates(&seq, 0, true, &mut out);
        }
    }
    out
}

/// Delta and delta-of-delta codings of a numeric sequence, adaptive and (without escapes)
/// in the fixed width of the largest coded quantity.
fn num_candidates(seq: &[i64], k: u8, fixed_ok: bool, out: &mut Vec<VMode>) {
    for order in [1u8, 2] {
        let gcd = seq_gcd(seq, order);
        out.push(VMode::Num {
            k,
            order,
            gcd,
            fixed: 0,
        });
        if fixed_ok {
            out.push(VMode::Num {
                k,
                order,
                gcd,
                fixed: seq_width(seq, order, gcd).max(1),
            });
        }
    }
}

/// Bits of the widest zigzag coded quantity of a sequence.
fn seq_width(seq: &[i64], order: u8, gcd: u64) -> u8 {
    let mut w = 0u32;
    let mut prev_d = 0i64;
    for i in 1..seq.len() {
        let d = seq[i].wrapping_sub(seq[i - 1]);
        let c = if order == 1 || i == 1 {
            d
        } else {
            d.wrapping_sub(prev_d)
        };
        prev_d = d;
        let q = if gcd > 1 { c / gcd as i64 } else { c };
        w = w.max(width(zigzag(q)));
    }
    w as u8
}

/// Parameters that fit `s` without assuming anything of later samples.
fn robust_params(ty: ColType, s: &Samples) -> (u8, VMode) {
    let num = |k| VMode::Num {
        k,
        order: 1,
        gcd: 1,
        fixed: 0,
    };
    let mode = match ty {
        ColType::Str => VMode::Str,
        ColType::Bool => VMode::Bool,
        ColType::Int | ColType::UInt => num(0),
        ColType::Float => {
            let mut k = 0u8;
            let mut escapes = 0usize;
            for &b in &s.vals {
                match dec_exp(f64::from_bits(b)) {
                    Some(e) => k = k.max(e),
                    None => escapes += 1,
                }
            }
            if escapes * 4 < s.vals.len() {
                num(k)
            } else {
                VMode::Xor
            }
        }
    };
    (0, mode)
}

/// The time unit and value mode giving the fewest bits for `s`.
fn best_params(ty: ColType, s: &Samples) -> (u8, VMode) {
    let unit_exp = time_unit(&s.times);
    let modes = candidates(ty, s);
    let mut best = modes[0];
    if modes.len() > 1 {
        let mut best_bits = u64::MAX;
        for &m in &modes {
            let e: Enc<BitCounter> = encode_into(ty, unit_exp, m, s);
            let bits = e.sink.bits + e.tsink.bits + e.side.len() as u64 * 8;
            if bits < best_bits {
                best_bits = bits;
                best = m;
            }
        }
    }
    (unit_exp, best)
}

/// Encodes samples as a sealed chunk with the smallest candidate encoding; `base_t` is
/// subtracted from the first time (the caller stores it once per file).
#[cfg(test)]
pub(crate) fn encode_chunk(ty: ColType, s: &Samples, base_t: i64) -> Vec<u8> {
    Head::build(ty, s).to_chunk(base_t)
}

impl Head {
    /// A head from its chunk bytes ([`Head::to_chunk`]), appendable again with the same
    /// parameters (so the same bits).
    pub fn restore(bytes: &[u8], base_t: i64) -> Option<Head> {
        let (ty, unit_exp, mode, samples) = decode_parts(bytes, base_t)?;
        Some(encode_into(ty, unit_exp, mode, &samples))
    }
}

/// Decodes a sealed chunk written by [`Head::to_chunk`] with the same `base_t`.
pub(crate) fn decode_chunk(bytes: &[u8], base_t: i64) -> Option<(ColType, Samples)> {
    decode_parts(bytes, base_t).map(|(ty, _, _, s)| (ty, s))
}

fn decode_parts(bytes: &[u8], base_t: i64) -> Option<(ColType, u8, VMode, Samples)> {
    let mut r = ByteReader::new(bytes);
    let ty = ColType::from_u8(r.u8()?)?;
    let count = r.u32v()?;
    let unit_exp = r.u8()?;
    if unit_exp > 18 {
        return None;
    }
    let t0 = r.ivarint()?.wrapping_add(base_t);
    let (t_regular, tbits, tbit_len) = match r.u8()? {
        0 => (Some(r.ivarint()?), &[][..], 0),
        1 => {
            let n = r.uvarint()?;
            let b = r.bytes(usize::try_from(n.div_ceil(8)).ok()?)?;
            (None, b, n)
        }
        _ => return None,
    };
    let mode = match r.u8()? {
        0 => VMode::Const(r.u64_le()?),
        1 => VMode::Xor,
        2 => {
            let k = r.u8()?;
            let order = r.u8()?;
            let gcd = r.uvarint()?;
            let fixed = r.u8()?;
            if k > MAX_K
                || !(1..=2).contains(&order)
                || gcd == 0
                || gcd > i64::MAX as u64
                || fixed > 64
            {
                return None;
            }
            VMode::Num {
                k,
                order,
                gcd,
                fixed,
            }
        }
        3 => VMode::Bool,
        4 => VMode::Str,
        _ => return None,
    };
    let bit_len = r.uvarint()?;
    let nbytes = usize::try_from(bit_len.div_ceil(8)).ok()?;
    let bits = r.bytes(nbytes)?;
    let side = if ty == ColType::Str {
        r.lp_bytes()?
    } else {
        &[]
    };
    let p = StreamParams {
        ty,
        unit_exp,
        mode,
        count,
        t0,
        t_regular,
    };
    let mut out = Samples::default();
    decode_stream(
        &p,
        BitReader::new(tbits, tbit_len),
        BitReader::new(bits, bit_len),
        side,
        &mut out,
    )?;
    Some((ty, unit_exp, mode, out))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn floats(times: &[i64], vals: &[f64]) -> Samples {
        Samples {
            times: times.to_vec(),
            vals: vals.iter().map(|v| v.to_bits()).collect(),
            strs: vec![],
        }
    }

    fn round_trip(ty: ColType, s: &Samples) -> usize {
        let bytes = encode_chunk(ty, s, 1_700_000_000_000_000_000);
        let Some((t2, back)) = decode_chunk(&bytes, 1_700_000_000_000_000_000) else {
            let h = Head::build(ty, s);
            panic!(
                "{ty:?} {:?} unit {} n {} times {:?}",
                h.mode,
                h.unit_exp,
                s.len(),
                &s.times[..s.len().min(5)]
            );
        };
        assert_eq!(t2, ty);
        assert_eq!(&back, s);
        // An incrementally appended head must give the same samples too.
        let mut head = Head::for_first(ty, s.vals.first().copied().unwrap_or(0));
        for i in 0..s.len() {
            let st = s.strs.get(i).map_or(&b""[..], |x| x.as_bytes());
            head.append(s.times[i], s.vals.get(i).copied().unwrap_or(0), st);
            if i == 16 {
                head.retune();
            }
        }
        assert_eq!(&head.samples().unwrap(), s);
        let (_, again) = decode_chunk(&head.to_chunk(-5), -5).unwrap();
        assert_eq!(&again, s);
        // A restored head has the same bits and keeps appending.
        let restored = Head::restore(&head.to_chunk(7), 7).unwrap();
        assert_eq!(restored.to_chunk(0), head.to_chunk(0));
        bytes.len()
    }

    #[test]
    fn regular_decimal_gauge_is_small() {
        let t0 = 1_700_000_000_000_000_000i64;
        let times: Vec<i64> = (0..120).map(|i| t0 + i * 10_000_000_000).collect();
        let mut v = 42.5f64;
        let vals: Vec<f64> = (0..120)
            .map(|i| {
                v = ((v * 10.0).round() + f64::from((i % 7) - 3)) / 10.0;
                v
            })
            .collect();
        let n = round_trip(ColType::Float, &floats(&times, &vals));
        assert!(n < 120, "{n} bytes for 120 samples");
    }

    #[test]
    fn constant_and_counters() {
        let times: Vec<i64> = (0..100).map(|i| i * 1_000_000_000).collect();
        let n = round_trip(ColType::Float, &floats(&times, &[3.25; 100]));
        assert!(n < 40, "{n}");
        let counter: Vec<f64> = (0..100).map(|i| 1e9 + 4096.0 * f64::from(i)).collect();
        let n = round_trip(ColType::Float, &floats(&times, &counter));
        // Header and first value dominate: the 99 steps cost about one bit each.
        assert!(n < 60, "{n}");
    }

    #[test]
    fn random_values_of_every_type_round_trip() {
        let mut rng = StdRng::seed_from_u64(3);
        for round in 0..300 {
            let n = rng.random_range(1..200);
            let mut t = rng.random::<i64>() / 2;
            let times: Vec<i64> = (0..n)
                .map(|_| {
                    t = match rng.random_range(0..4) {
                        0 => t.wrapping_add(rng.random_range(-1000..1000)),
                        1 => rng.random(),
                        _ => t.wrapping_add(10_000_000_000),
                    };
                    t
                })
                .collect();
            let ty = [
                ColType::Float,
                ColType::Int,
                ColType::UInt,
                ColType::Bool,
                ColType::Str,
            ][round % 5];
            let mut s = Samples {
                times,
                ..Default::default()
            };
            for _ in 0..n {
                match ty {
                    ColType::Float => s.vals.push(match rng.random_range(0..4) {
                        0 => f64::from_bits(rng.random::<u64>() & !(0x7ff << 52)).to_bits(),
                        1 => (f64::from(rng.random_range(-1000..1000)) / 100.0).to_bits(),
                        2 => (-0.0f64).to_bits(),
                        _ => 1e300f64.to_bits(),
                    }),
                    ColType::Int | ColType::UInt => s.vals.push(match rng.random_range(0..3) {
                        0 => rng.random(),
                        _ => rng.random_range(0..100),
                    }),
                    ColType::Bool => s.vals.push(rng.random_range(0..2)),
                    ColType::Str => s.strs.push(
                        ["", "Running", "Pending", "é\"雪"][rng.random_range(0..4)].to_string(),
                    ),
                }
            }
            round_trip(ty, &s);
        }
    }

    #[test]
    fn corrupt_chunks_never_panic() {
        let times: Vec<i64> = (0..50).map(|i| i * 7).collect();
        let vals: Vec<f64> = (0..50).map(|i| f64::from(i) * 0.37).collect();
        let good = encode_chunk(ColType::Float, &floats(&times, &vals), 0);
        let mut rng = StdRng::seed_from_u64(5);
        for _ in 0..5000 {
            let mut b = good.clone();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..b.len());
                b[i] = rng.random();
            }
            if rng.random() {
                b.truncate(rng.random_range(0..b.len()));
            }
            let _ = decode_chunk(&b, 0);
        }
        assert!(decode_chunk(&[], 0).is_none());
        assert!(decode_chunk(&[1, 0xff, 0xff, 0xff, 0xff, 0x0f], 0).is_none());
    }
}

//! Bit and varint primitives of the chunk encodings. Readers never panic: a short or corrupt
//! buffer gives `None`.

/// Where encoded bits go: a real buffer or a counter (to size a candidate encoding without
/// writing it).
pub(crate) trait Sink {
    /// Appends the low `n` bits of `v` (most significant first), `n <= 64`.
    fn put(&mut self, v: u64, n: u32);
}

/// An append-only bit buffer.
#[derive(Debug, Clone, Default)]
pub(crate) struct BitWriter {
    pub buf: Vec<u8>,
    /// Bits used in the last byte (0 = the last byte is full or there is none).
    used: u8,
}

impl BitWriter {
    pub fn with_capacity(bytes: usize) -> BitWriter {
        BitWriter {
            buf: Vec::with_capacity(bytes),
            ..Default::default()
        }
    }

    pub fn bit_len(&self) -> u64 {
        let full = self.buf.len() as u64 * 8;
        if self.used == 0 {
            full
        } else {
            full - 8 + u64::from(self.used)
        }
    }

    /// Heap bytes held (for memory statistics).
    pub fn heap_bytes(&self) -> usize {
        self.buf.capacity()
    }
}

impl Sink for BitWriter {
    #[inline]
    fn put(&mut self, v: u64, n: u32) {
        let mut n = n.min(64);
        while n > 0 {
            if self.used == 0 {
                self.buf.push(0);
            }
            let free = 8 - u32::from(self.used);
            let take = free.min(n);
            let chunk = ((v >> (n - take)) & ((1u64 << take) - 1)) as u8;
            if let Some(last) = self.buf.last_mut() {
                *last |= chunk << (free - take);
            }
            n -= take;
            self.used = ((u32::from(self.used) + take) % 8) as u8;
        }
    }
}

/// Counts bits and side bytes.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct BitCounter {
    pub bits: u64,
}

impl Sink for BitCounter {
    #[inline]
    fn put(&mut self, _v: u64, n: u32) {
        self.bits += u64::from(n.min(64));
    }
}

/// Reads bits written by [`BitWriter`].
pub(crate) struct BitReader<'a> {
    buf: &'a [u8],
    pos: u64,
    end: u64,
}

impl<'a> BitReader<'a> {
    pub fn new(buf: &'a [u8], bit_len: u64) -> BitReader<'a> {
        BitReader {
            buf,
            pos: 0,
            end: bit_len.min(buf.len() as u64 * 8),
        }
    }

    #[inline]
    pub fn read(&mut self, n: u32) -> Option<u64> {
        if n == 0 {
            return Some(0);
        }
        if n > 64 || self.pos + u64::from(n) > self.end {
            return None;
        }
        let mut out: u64 = 0;
        let mut left = n;
        while left > 0 {
            let byte = *self.buf.get((self.pos / 8) as usize)?;
            let off = (self.pos % 8) as u32;
            let avail = 8 - off;
            let take = avail.min(left);
            let bits = (u64::from(byte) >> (avail - take)) & ((1u64 << take) - 1);
            out = if take == 64 {
                bits
            } else {
                (out << take) | bits
            };
            left -= take;
            self.pos += u64::from(take);
        }
        Some(out)
    }

    #[inline]
    pub fn bit(&mut self) -> Option<bool> {
        self.read(1).map(|b| b == 1)
    }
}

#[inline]
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Bits needed for `v` (0 for 0).
#[inline]
pub(crate) fn width(v: u64) -> u32 {
    64 - v.leading_zeros()
}

pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn put_ivarint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v));
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A cursor over a byte buffer for varint-framed structures.
pub(crate) struct ByteReader<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl<'a> ByteReader<'a> {
    pub fn new(buf: &'a [u8]) -> ByteReader<'a> {
        ByteReader { buf, pos: 0 }
    }

    pub fn u8(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    pub fn uvarint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for shift in (0..70).step_by(7) {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return None;
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    pub fn ivarint(&mut self) -> Option<i64> {
        self.uvarint().map(unzigzag)
    }

    pub fn u32v(&mut self) -> Option<u32> {
        u32::try_from(self.uvarint()?).ok()
    }

    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let b = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(b)
    }

    pub fn lp_bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.uvarint()?).ok()?;
        self.bytes(n)
    }

    pub fn u64_le(&mut self) -> Option<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(u64::from_le_bytes(a))
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn bits_round_trip_all_widths() {
        let mut w = BitWriter::default();
        let mut expect = Vec::new();
        for n in 0..=64u32 {
            let v = if n == 64 {
                0xdead_beef_cafe_f00d
            } else {
                0x5555_5555_5555_5555 & ((1u64 << n) - 1)
            };
            w.put(v, n);
            expect.push((v, n));
        }
        let total: u64 = (0..=64u64).sum();
        assert_eq!(w.bit_len(), total);
        let mut r = BitReader::new(&w.buf, w.bit_len());
        for (v, n) in expect {
            assert_eq!(r.read(n), Some(v), "width {n}");
        }
        assert_eq!(r.read(1), None, "reading past the end fails");
    }

    #[test]
    fn varints_and_zigzag() {
        let mut out = Vec::new();
        for v in [0i64, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(v)), v);
            put_ivarint(&mut out, v);
        }
        put_uvarint(&mut out, u64::MAX);
        let mut r = ByteReader::new(&out);
        for v in [0i64, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(r.ivarint(), Some(v));
        }
        assert_eq!(r.uvarint(), Some(u64::MAX));
        assert!(r.is_empty());
        assert_eq!(r.uvarint(), None);
        // Overlong varints are rejected, not wrapped.
        let mut r = ByteReader::new(&[0xff; 11]);
        assert_eq!(r.uvarint(), None);
    }
}

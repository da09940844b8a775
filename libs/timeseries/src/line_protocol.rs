//! Influx line protocol: the write format of every backend (D6.7 4.4.2: the ETA writes the probes'
//! metrics into InfluxDB 2 as line protocol; PMDS reads them back).
//!
//! `measurement[,tag=value...] field=value[,field=value...] [timestamp]`, one point per line.
//!
//! - [`parse`] turns a body into owned [`Point`]s (tags sorted by key, duplicate field keys: the
//!   last one wins, as InfluxDB does). A malformed line fails the whole body with
//!   `TsError::Invalid("line N: ...")`.
//! - [`Lines`] is the zero-copy scanner under it: it yields borrowed, still escaped slices so the
//!   embedded store can look a series up by its raw key bytes without allocating.
//! - [`encode`] / [`encode_point`] write points back with the escaping [`parse`] undoes;
//!   [`validate_point`] says whether a point can be written at all.
//!
//! Escaping (InfluxDB 2 documentation): in the measurement `\,` `\ ` and `\\`; in tag keys, tag
//! values and field keys also `\=`; in string field values `\"` and `\\`. A backslash before any
//! other character is literal. String field values may contain newlines; names may not.

use std::borrow::Cow;

use crate::{FieldValue, Point, Precision, TsError};

/// Characters a backslash escapes in a measurement.
const MEASUREMENT_SPECIALS: &[u8] = b", \\";
/// Characters a backslash escapes in tag keys, tag values and field keys.
const NAME_SPECIALS: &[u8] = b",= \\";

/// A field value as written, borrowed from the body.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RawValue<'a> {
    Float(f64),
    Int(i64),
    UInt(u64),
    Bool(bool),
    /// The bytes between the quotes, still escaped (see [`unescape_string`]); not yet checked
    /// for UTF-8.
    Str(&'a [u8]),
}

/// One `key=value` of a line, borrowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawField<'a> {
    /// Escaped key bytes (see [`unescape_name`]).
    pub key: &'a [u8],
    pub value: RawValue<'a>,
}

/// One line's series part and time, borrowed; its fields go to the caller's vector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawLine<'a> {
    /// 1-based line number in the body (for error messages).
    pub line: usize,
    /// The measurement and tag section exactly as written (escaped), not yet checked: see
    /// [`RawLine::split_key`]. Equal bytes always mean the same series; the same series may be
    /// written with different bytes (tag order).
    pub series_key: &'a [u8],
    /// The line's time in nanoseconds (the default time when the line has none).
    pub time_ns: i64,
}

impl<'a> RawLine<'a> {
    /// Checks the series key and splits it into the escaped measurement and the escaped tag
    /// section after the measurement's comma (`k=v,k=v`, empty without tags; iterate it with
    /// [`raw_tags`]). [`Lines`] only finds where the key ends, so a caller that sees a key for
    /// the first time calls this before trusting it.
    pub fn split_key(&self) -> Result<(&'a [u8], &'a [u8]), TsError> {
        split_series_key(self.series_key).map_err(|m| invalid(self.line, &m))
    }
}

/// See [`RawLine::split_key`]; `k` holds no unescaped space and no line break.
fn split_series_key(k: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let m_end = find_unescaped(k, 0, b',');
    if m_end == 0 {
        return Err("missing measurement".into());
    }
    if m_end == k.len() {
        return Ok((k, &[]));
    }
    let mut pos = m_end + 1;
    loop {
        let k_end = find_unescaped2(k, pos, b'=', b',');
        if k_end == k.len() || k[k_end] == b',' {
            return Err(format!(
                "tag key {:?} has no value",
                String::from_utf8_lossy(&k[pos..k_end])
            ));
        }
        if k_end == pos {
            return Err("empty tag key".into());
        }
        let v_end = find_unescaped(k, k_end + 1, b',');
        if v_end == k_end + 1 {
            return Err(format!(
                "tag {:?} has an empty value",
                String::from_utf8_lossy(&k[pos..k_end])
            ));
        }
        if v_end == k.len() {
            return Ok((&k[..m_end], &k[m_end + 1..]));
        }
        pos = v_end + 1;
    }
}

/// Index of the first byte of `set` at or after `i`, or `b.len()`; eight bytes at a time.
#[inline]
fn find_any<const N: usize>(b: &[u8], mut i: usize, set: [u8; N]) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pats = set.map(|c| LO.wrapping_mul(u64::from(c)));
    while i + 8 <= b.len() {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[i..i + 8]);
        let w = u64::from_le_bytes(a);
        let mut m = 0u64;
        for p in pats {
            let x = w ^ p;
            // High bit set in the lowest byte of x that is zero (higher ones may be false).
            m |= x.wrapping_sub(LO) & !x & HI;
        }
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && !set.contains(&b[i]) {
        i += 1;
    }
    i
}

/// A zero-copy scanner over a line-protocol body: blank lines and `#` comments are skipped;
/// fields and time of every other line are checked before it is returned, its series key only
/// delimited (check it with [`RawLine::split_key`] the first time a key is seen).
pub struct Lines<'a> {
    body: &'a [u8],
    pos: usize,
    /// Number of the line `pos` is on (1-based).
    line: usize,
    precision_nanos: i64,
    default_time_ns: i64,
    failed: bool,
}

impl<'a> Lines<'a> {
    pub fn new(body: &'a [u8], precision: Precision, default_time_ns: i64) -> Lines<'a> {
        Lines {
            body,
            pos: 0,
            line: 1,
            precision_nanos: precision.nanos(),
            default_time_ns,
            failed: false,
        }
    }

    /// The next line, its fields written into `fields` (cleared first; reuse the vector to
    /// avoid allocating). `None` at the end of the body or after an error.
    pub fn next_line(
        &mut self,
        fields: &mut Vec<RawField<'a>>,
    ) -> Option<Result<RawLine<'a>, TsError>> {
        fields.clear();
        if self.failed {
            return None;
        }
        if !self.skip_blank_and_comments() {
            return None;
        }
        let line = self.line;
        match self.scan_line(fields) {
            Ok(l) => Some(Ok(l)),
            Err(msg) => {
                self.failed = true;
                fields.clear();
                Some(Err(TsError::Invalid(format!("line {line}: {msg}"))))
            }
        }
    }

    /// Skips whitespace, empty lines and comment lines; false at the end of the body.
    fn skip_blank_and_comments(&mut self) -> bool {
        let b = self.body;
        loop {
            while self.pos < b.len() {
                match b[self.pos] {
                    b'\n' => self.line += 1,
                    // Not tabs: a tab may start a measurement name.
                    b' ' | b'\r' => {}
                    _ => break,
                }
                self.pos += 1;
            }
            if self.pos >= b.len() {
                return false;
            }
            if b[self.pos] != b'#' {
                return true;
            }
            while self.pos < b.len() && b[self.pos] != b'\n' {
                self.pos += 1;
            }
        }
    }

    fn scan_line(&mut self, fields: &mut Vec<RawField<'a>>) -> Result<RawLine<'a>, String> {
        let b = self.body;
        let start = self.pos;
        let line = self.line;

        // The series key runs to the first unescaped space (checked by `split_key`).
        let mut pos = start;
        loop {
            pos = find_any(b, pos, [b' ', b'\\', b'\n', b'\r']);
            if pos >= b.len() || b[pos] != b'\\' {
                break;
            }
            // A backslash before a line end is literal (it cannot escape the newline).
            pos += if matches!(b.get(pos + 1), Some(b'\n' | b'\r') | None) {
                1
            } else {
                2
            };
        }
        if pos >= b.len() || b[pos] != b' ' {
            return Err("missing fields".into());
        }
        if pos == start {
            return Err("missing measurement".into());
        }
        let series_key = &b[start..pos];

        // One or more spaces, then the field section.
        while pos < b.len() && b[pos] == b' ' {
            pos += 1;
        }
        if pos >= b.len() || b[pos] == b'\n' || b[pos] == b'\r' {
            return Err("missing fields".into());
        }
        loop {
            let k_start = pos;
            let k_end = scan_name(b, k_start, b'=', "field key")?;
            if b[k_end] != b'=' {
                return Err(format!(
                    "field {:?} has no value",
                    String::from_utf8_lossy(&b[k_start..k_end])
                ));
            }
            if k_end == k_start {
                return Err("empty field key".into());
            }
            let key = &b[k_start..k_end];
            pos = k_end + 1;
            let value = if pos < b.len() && b[pos] == b'"' {
                let s_start = pos + 1;
                let mut i = s_start;
                loop {
                    i = find_any(b, i, [b'\\', b'"', b'\n']);
                    if i >= b.len() {
                        return Err(format!(
                            "unterminated string value of field {:?}",
                            String::from_utf8_lossy(key)
                        ));
                    }
                    match b[i] {
                        b'\\' => i += 2,
                        b'"' => break,
                        b'\n' => {
                            self.line += 1;
                            i += 1;
                        }
                        _ => i += 1,
                    }
                }
                pos = i + 1;
                RawValue::Str(&b[s_start..i])
            } else {
                let v_start = pos;
                pos = find_any(b, pos, [b',', b' ', b'\n', b'\r']);
                parse_value(&b[v_start..pos])
                    .map_err(|e| format!("field {:?}: {e}", String::from_utf8_lossy(key)))?
            };
            fields.push(RawField { key, value });
            if pos >= b.len() {
                break;
            }
            match b[pos] {
                b',' => pos += 1,
                b' ' | b'\n' | b'\r' => break,
                c => {
                    return Err(format!(
                        "unexpected {:?} after the value of field {:?}",
                        c as char,
                        String::from_utf8_lossy(key)
                    ));
                }
            }
        }

        // Optional timestamp.
        while pos < b.len() && b[pos] == b' ' {
            pos += 1;
        }
        let mut time_ns = self.default_time_ns;
        if pos < b.len() && !matches!(b[pos], b'\n' | b'\r') {
            let t_start = pos;
            while pos < b.len() && !matches!(b[pos], b' ' | b'\n' | b'\r') {
                pos += 1;
            }
            let t = parse_i64(&b[t_start..pos]).ok_or_else(|| {
                format!(
                    "invalid timestamp {:?}",
                    String::from_utf8_lossy(&b[t_start..pos])
                )
            })?;
            time_ns = t
                .checked_mul(self.precision_nanos)
                .ok_or_else(|| format!("timestamp {t} overflows nanoseconds since the epoch"))?;
        }
        while pos < b.len() && matches!(b[pos], b' ' | b'\r') {
            pos += 1;
        }
        if pos < b.len() {
            if b[pos] != b'\n' {
                return Err(format!(
                    "unexpected text {:?} at the end of the line",
                    String::from_utf8_lossy(&b[pos..b.len().min(pos + 20)])
                ));
            }
            pos += 1;
            self.line += 1;
        }
        self.pos = pos;
        Ok(RawLine {
            line,
            series_key,
            time_ns,
        })
    }
}

/// Scans an escaped name from `start` up to `stop`, an unescaped space or (for tag and field
/// keys) comma; returns the index of that delimiter. A newline or the end of the body first is
/// an error.
fn scan_name(b: &[u8], start: usize, stop: u8, what: &str) -> Result<usize, String> {
    let mut i = start;
    while i < b.len() {
        i = find_any(b, i, [b'\\', b' ', b',', stop, b'\n', b'\r']);
        if i >= b.len() {
            break;
        }
        match b[i] {
            b'\\' => {
                // A backslash before a line end is literal (it cannot escape the newline).
                if i + 1 < b.len() && !matches!(b[i + 1], b'\n' | b'\r') {
                    i += 2;
                } else {
                    i += 1;
                }
            }
            b' ' | b',' => return Ok(i),
            c if c == stop => return Ok(i),
            b'\n' | b'\r' => break,
            _ => i += 1,
        }
    }
    Err(format!(
        "{what} {:?} not followed by a value",
        String::from_utf8_lossy(&b[start..i.min(b.len())])
    ))
}

/// Parses an unquoted field value: `12i`, `12u`, a bool, or a float.
fn parse_value(v: &[u8]) -> Result<RawValue<'static>, String> {
    let text = || String::from_utf8_lossy(v).into_owned();
    let Some(&last) = v.last() else {
        return Err("empty value".into());
    };
    match last {
        b'i' if v.len() > 1 => parse_i64(&v[..v.len() - 1])
            .map(RawValue::Int)
            .ok_or_else(|| format!("invalid integer {:?}", text())),
        b'u' if v.len() > 1 => parse_u64(&v[..v.len() - 1])
            .map(RawValue::UInt)
            .ok_or_else(|| format!("invalid unsigned integer {:?}", text())),
        _ => match v {
            b"t" | b"T" | b"true" | b"True" | b"TRUE" => Ok(RawValue::Bool(true)),
            b"f" | b"F" | b"false" | b"False" | b"FALSE" => Ok(RawValue::Bool(false)),
            _ => parse_f64(v)
                .map(RawValue::Float)
                .ok_or_else(|| format!("invalid value {:?}", text())),
        },
    }
}

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// A finite float in decimal or exponent notation (no `inf`/`nan`: not line protocol).
fn parse_f64(v: &[u8]) -> Option<f64> {
    // Fast path for plain decimals of at most 15 digits: the digits and the power of ten are
    // exact doubles, so one division rounds correctly (Clinger's fast path).
    let (neg, rest) = match v.first() {
        Some(b'-') => (true, &v[1..]),
        _ => (false, v),
    };
    let mut m: u64 = 0;
    let mut digits = 0usize;
    let mut frac = 0usize;
    let mut dot = false;
    let mut plain = !rest.is_empty();
    for &c in rest {
        match c {
            b'0'..=b'9' if digits < 15 => {
                m = m * 10 + u64::from(c - b'0');
                digits += 1;
                frac += usize::from(dot);
            }
            b'.' if !dot => dot = true,
            _ => {
                plain = false;
                break;
            }
        }
    }
    if plain && digits > 0 {
        let f = m as f64 / POW10[frac];
        return Some(if neg { -f } else { f });
    }
    let first = *v.first()?;
    if !(first.is_ascii_digit() || first == b'-' || first == b'.' || first == b'+') {
        return None;
    }
    if !v
        .iter()
        .all(|&c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'-' | b'+'))
    {
        return None;
    }
    let s = std::str::from_utf8(v).ok()?;
    let f: f64 = s.parse().ok()?;
    f.is_finite().then_some(f)
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &c in v {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(n)
}

fn parse_i64(v: &[u8]) -> Option<i64> {
    let (neg, digits) = match v.first() {
        Some(b'-') => (true, &v[1..]),
        _ => (false, v),
    };
    if digits.is_empty() {
        return None;
    }
    // Accumulate negatively so i64::MIN parses.
    let mut n: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_sub(i64::from(c - b'0'))?;
    }
    if neg { Some(n) } else { n.checked_neg() }
}

/// Iterates the escaped `(key, value)` pairs of a tag section returned by [`Lines`].
pub fn raw_tags(tags: &[u8]) -> RawTags<'_> {
    RawTags { rest: tags }
}

/// Iterator of [`raw_tags`].
pub struct RawTags<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for RawTags<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let b = self.rest;
        let eq = find_unescaped(b, 0, b'=');
        let key = &b[..eq];
        let v_start = (eq + 1).min(b.len());
        let comma = find_unescaped(b, v_start, b',');
        let value = &b[v_start..comma];
        self.rest = if comma < b.len() {
            &b[comma + 1..]
        } else {
            &[]
        };
        Some((key, value))
    }
}

/// Index of the first unescaped `c` or `d` at or after `from`, or `b.len()`.
fn find_unescaped2(b: &[u8], from: usize, c: u8, d: u8) -> usize {
    let mut i = from;
    while i < b.len() {
        if b[i] == b'\\' {
            i += 2;
        } else if b[i] == c || b[i] == d {
            return i;
        } else {
            i += 1;
        }
    }
    b.len()
}

/// Index of the first unescaped `c` at or after `from`, or `b.len()`.
fn find_unescaped(b: &[u8], from: usize, c: u8) -> usize {
    let mut i = from;
    while i < b.len() {
        if b[i] == b'\\' {
            i += 2;
        } else if b[i] == c {
            return i;
        } else {
            i += 1;
        }
    }
    b.len()
}

fn unescape_with<'a>(raw: &'a [u8], specials: &[u8]) -> Option<Cow<'a, str>> {
    if !raw.contains(&b'\\') {
        return std::str::from_utf8(raw).ok().map(Cow::Borrowed);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' && i + 1 < raw.len() && specials.contains(&raw[i + 1]) {
            out.push(raw[i + 1]);
            i += 2;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// The measurement name of escaped bytes; `None` when not UTF-8.
pub fn unescape_measurement(raw: &[u8]) -> Option<Cow<'_, str>> {
    unescape_with(raw, MEASUREMENT_SPECIALS)
}

/// A tag key, tag value or field key of escaped bytes; `None` when not UTF-8.
pub fn unescape_name(raw: &[u8]) -> Option<Cow<'_, str>> {
    unescape_with(raw, NAME_SPECIALS)
}

/// A string field value of the bytes between its quotes; `None` when not UTF-8.
pub fn unescape_string(raw: &[u8]) -> Option<Cow<'_, str>> {
    unescape_with(raw, b"\"\\")
}

/// The owned value of a raw field value; `None` when a string is not UTF-8.
pub fn to_field_value(v: &RawValue<'_>) -> Option<FieldValue> {
    Some(match *v {
        RawValue::Float(f) => FieldValue::Float(f),
        RawValue::Int(i) => FieldValue::Int(i),
        RawValue::UInt(u) => FieldValue::UInt(u),
        RawValue::Bool(b) => FieldValue::Bool(b),
        RawValue::Str(s) => FieldValue::Str(unescape_string(s)?.into_owned()),
    })
}

/// The owned, sorted tags of a raw line; errors on bad UTF-8 and duplicate keys.
pub fn owned_tags(line: &RawLine<'_>) -> Result<Vec<(String, String)>, TsError> {
    let n = line.line;
    let (_, raw) = line.split_key()?;
    let mut tags = Vec::new();
    for (k, v) in raw_tags(raw) {
        let k = unescape_name(k).ok_or_else(|| invalid(n, "tag key is not UTF-8"))?;
        let v = unescape_name(v).ok_or_else(|| invalid(n, "tag value is not UTF-8"))?;
        tags.push((k.into_owned(), v.into_owned()));
    }
    tags.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = tags.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(invalid(n, &format!("duplicate tag key {:?}", w[0].0)));
    }
    Ok(tags)
}

fn invalid(line: usize, msg: &str) -> TsError {
    TsError::Invalid(format!("line {line}: {msg}"))
}

/// Parses a line-protocol body; lines without a time get `default_time_ns`. Timestamps are in
/// `precision` units and converted to nanoseconds. Any malformed line fails the whole body.
pub fn parse(
    body: &[u8],
    precision: Precision,
    default_time_ns: i64,
) -> Result<Vec<Point>, TsError> {
    let mut lines = Lines::new(body, precision, default_time_ns);
    let mut raw_fields = Vec::new();
    let mut points = Vec::new();
    while let Some(line) = lines.next_line(&mut raw_fields) {
        let line = line?;
        let n = line.line;
        let (raw_measurement, _) = line.split_key()?;
        let measurement = unescape_measurement(raw_measurement)
            .ok_or_else(|| invalid(n, "measurement is not UTF-8"))?
            .into_owned();
        let tags = owned_tags(&line)?;
        let mut fields: Vec<(String, FieldValue)> = Vec::with_capacity(raw_fields.len());
        for f in &raw_fields {
            let key = unescape_name(f.key).ok_or_else(|| invalid(n, "field key is not UTF-8"))?;
            let value = to_field_value(&f.value).ok_or_else(|| {
                invalid(n, &format!("string value of field {key:?} is not UTF-8"))
            })?;
            // Duplicate field key: the last one wins (InfluxDB).
            match fields.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => fields.push((key.into_owned(), value)),
            }
        }
        points.push(Point {
            measurement,
            tags,
            fields,
            time_ns: line.time_ns,
        });
    }
    Ok(points)
}

/// Checks that a point can be written as line protocol: a measurement not starting with `#`,
/// non-empty names and tag values without line breaks, sorted unique tag keys, at least one
/// field, unique field keys, finite floats, string values are free.
pub fn validate_point(p: &Point) -> Result<(), TsError> {
    let bad = |msg: String| Err(TsError::Invalid(msg));
    let name_ok = |s: &str| !s.is_empty() && !s.contains(['\n', '\r']);
    if !name_ok(&p.measurement) || p.measurement.starts_with('#') {
        return bad(format!("invalid measurement {:?}", p.measurement));
    }
    for (k, v) in &p.tags {
        if !name_ok(k) || !name_ok(v) {
            return bad(format!("invalid tag {k:?}={v:?} in {:?}", p.measurement));
        }
    }
    if p.tags.windows(2).any(|w| w[0].0 >= w[1].0) {
        return bad(format!(
            "tags of {:?} are not sorted by unique key",
            p.measurement
        ));
    }
    if p.fields.is_empty() {
        return bad(format!("point of {:?} has no field", p.measurement));
    }
    for (i, (k, v)) in p.fields.iter().enumerate() {
        if !name_ok(k) {
            return bad(format!("invalid field key {k:?} in {:?}", p.measurement));
        }
        if p.fields[..i].iter().any(|(o, _)| o == k) {
            return bad(format!("duplicate field key {k:?} in {:?}", p.measurement));
        }
        if let FieldValue::Float(f) = v
            && !f.is_finite()
        {
            return bad(format!("field {k:?} is {f}, not a finite number"));
        }
    }
    Ok(())
}

fn escape_into(s: &str, specials: &[u8], out: &mut String) {
    if !s.bytes().any(|c| specials.contains(&c)) {
        out.push_str(s);
        return;
    }
    let bytes = s.as_bytes();
    for (i, ch) in s.char_indices() {
        if ch == '\\' {
            // A backslash stays literal unless the reader would take it as an escape: before
            // a special character, another backslash, or at the end of the name.
            match bytes.get(i + 1) {
                Some(next) if !specials.contains(next) => out.push('\\'),
                _ => out.push_str("\\\\"),
            }
        } else if ch.is_ascii() && specials.contains(&(ch as u8)) {
            out.push('\\');
            out.push(ch);
        } else {
            out.push(ch);
        }
    }
}

/// Appends the series part of a line (`measurement,k=v,...`, tags in the given order): the
/// canonical spelling of a series when the tags are sorted.
pub fn encode_series_key<K: AsRef<str>, V: AsRef<str>>(
    measurement: &str,
    tags: &[(K, V)],
    out: &mut String,
) {
    escape_into(measurement, MEASUREMENT_SPECIALS, out);
    for (k, v) in tags {
        out.push(',');
        escape_into(k.as_ref(), NAME_SPECIALS, out);
        out.push('=');
        escape_into(v.as_ref(), NAME_SPECIALS, out);
    }
}

/// Appends one point as a line (with its nanosecond time and a trailing newline). Check it
/// with [`validate_point`] first: a point that fails it gives a line the server rejects.
pub fn encode_point(p: &Point, out: &mut String) {
    use std::fmt::Write;
    encode_series_key(&p.measurement, &p.tags, out);
    out.push(' ');
    for (i, (k, v)) in p.fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        escape_into(k, NAME_SPECIALS, out);
        out.push('=');
        // Writing into a String cannot fail.
        let _ = match v {
            // `{:?}` is the shortest text that parses back to the same f64 (exponent for
            // very large and small magnitudes).
            FieldValue::Float(f) => write!(out, "{f:?}"),
            FieldValue::Int(i) => write!(out, "{i}i"),
            FieldValue::UInt(u) => write!(out, "{u}u"),
            FieldValue::Bool(b) => write!(out, "{b}"),
            FieldValue::Str(s) => {
                out.push('"');
                for ch in s.chars() {
                    if ch == '"' || ch == '\\' {
                        out.push('\\');
                    }
                    out.push(ch);
                }
                out.push('"');
                Ok(())
            }
        };
    }
    let _ = writeln!(out, " {}", p.time_ns);
}

/// Appends every point, one line each.
pub fn encode(points: &[Point], out: &mut String) {
    for p in points {
        encode_point(p, out);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn one(body: &str) -> Point {
        let mut v = parse(body.as_bytes(), Precision::Nanoseconds, 42).unwrap();
        assert_eq!(v.len(), 1, "{body}");
        v.remove(0)
    }

    fn err(body: &str) -> String {
        match parse(body.as_bytes(), Precision::Nanoseconds, 0) {
            Err(TsError::Invalid(m)) => m,
            other => panic!("expected invalid for {body:?}, got {other:?}"),
        }
    }

    fn s(v: &str) -> String {
        v.to_string()
    }

    #[test]
    fn full_line_with_all_types() {
        let p = one(
            "nodes,node_name=n1,group=cpu f=1.5,e=1e3,i=-12i,u=12u,b=t,B=FALSE,s=\"a \\\"q\\\" \\\\ z\" 1700000000000000000",
        );
        assert_eq!(p.measurement, "nodes");
        assert_eq!(
            p.tags,
            vec![(s("group"), s("cpu")), (s("node_name"), s("n1"))]
        );
        assert_eq!(
            p.fields,
            vec![
                (s("f"), FieldValue::Float(1.5)),
                (s("e"), FieldValue::Float(1000.0)),
                (s("i"), FieldValue::Int(-12)),
                (s("u"), FieldValue::UInt(12)),
                (s("b"), FieldValue::Bool(true)),
                (s("B"), FieldValue::Bool(false)),
                (s("s"), FieldValue::Str(s("a \"q\" \\ z"))),
            ]
        );
        assert_eq!(p.time_ns, 1_700_000_000_000_000_000);
    }

    #[test]
    fn bools_all_spellings() {
        for (t, v) in [
            ("t", true),
            ("T", true),
            ("true", true),
            ("True", true),
            ("TRUE", true),
            ("f", false),
            ("F", false),
            ("false", false),
            ("False", false),
            ("FALSE", false),
        ] {
            assert_eq!(one(&format!("m x={t}")).fields[0].1, FieldValue::Bool(v));
        }
        err("m x=tRue");
        err("m x=yes");
    }

    #[test]
    fn default_time_and_precision() {
        assert_eq!(one("m v=1").time_ns, 42);
        let p = parse(b"m v=1 17", Precision::Seconds, 0).unwrap();
        assert_eq!(p[0].time_ns, 17_000_000_000);
        let p = parse(b"m v=1 17", Precision::Milliseconds, 0).unwrap();
        assert_eq!(p[0].time_ns, 17_000_000);
        let p = parse(b"m v=1 -17", Precision::Microseconds, 0).unwrap();
        assert_eq!(p[0].time_ns, -17_000);
        let m = match parse(b"m v=1 9223372036854775807", Precision::Seconds, 0) {
            Err(TsError::Invalid(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(m.contains("overflows"), "{m}");
        assert_eq!(one("m v=1 -9223372036854775808").time_ns, i64::MIN);
        assert!(err("m v=1 9223372036854775808").contains("timestamp"));
        assert!(err("m v=1 12a").contains("timestamp"));
    }

    #[test]
    fn escapes_in_names() {
        let p = one(r"my\ meas\,x,t\ k\=y=v\,1\ 2\=3 f\,\=\ k=1i");
        assert_eq!(p.measurement, "my meas,x");
        assert_eq!(p.tags, vec![(s("t k=y"), s("v,1 2=3"))]);
        assert_eq!(p.fields[0].0, "f,= k");
        // A backslash before an ordinary character is literal; a doubled one is one.
        let p = one(r"a\b,t=x\\y v=1");
        assert_eq!(p.measurement, r"a\b");
        assert_eq!(p.tags[0].1, r"x\y");
        // `=` needs no escape in a measurement.
        assert_eq!(one("a=b v=1").measurement, "a=b");
    }

    #[test]
    fn comments_blank_lines_crlf_and_spaces() {
        let body = "# header\r\n\r\n  \nm,t=1 v=1 10\r\n# mid\nm v=2i   20  \r\n\nm v=\"x\"\n";
        let p = parse(body.as_bytes(), Precision::Nanoseconds, 5).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].time_ns, 10);
        assert_eq!(p[1].fields[0].1, FieldValue::Int(2));
        assert_eq!(p[1].time_ns, 20);
        assert_eq!(p[2].time_ns, 5);
        assert!(parse(b"", Precision::Nanoseconds, 0).unwrap().is_empty());
        assert!(
            parse(b"# only\n\n", Precision::Nanoseconds, 0)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn string_with_newline_and_commas() {
        let body = "m s=\"a,b c\nd=e\" 1\nm v=1 2\n";
        let p = parse(body.as_bytes(), Precision::Nanoseconds, 0).unwrap();
        assert_eq!(p[0].fields[0].1, FieldValue::Str(s("a,b c\nd=e")));
        assert_eq!(p[1].time_ns, 2);
        // Line numbers count physical lines.
        let m = err("m s=\"a\nb\" 1\nm v=oops\n");
        assert!(m.starts_with("line 3:"), "{m}");
    }

    #[test]
    fn duplicate_field_last_wins_and_duplicate_tag_rejected() {
        let p = one("m a=1,b=2,a=3i");
        assert_eq!(
            p.fields,
            vec![
                (s("a"), FieldValue::Int(3)),
                (s("b"), FieldValue::Float(2.0))
            ]
        );
        assert!(err("m,t=1,t=2 v=1").contains("duplicate tag"));
    }

    #[test]
    fn numbers() {
        assert_eq!(one("m v=-1.5e-3").fields[0].1, FieldValue::Float(-0.0015));
        assert_eq!(one("m v=12").fields[0].1, FieldValue::Float(12.0));
        assert_eq!(one("m v=.5").fields[0].1, FieldValue::Float(0.5));
        assert_eq!(
            one("m v=-9223372036854775808i").fields[0].1,
            FieldValue::Int(i64::MIN)
        );
        assert_eq!(
            one("m v=18446744073709551615u").fields[0].1,
            FieldValue::UInt(u64::MAX)
        );
        assert!(err("m v=9223372036854775808i").contains("invalid integer"));
        assert!(err("m v=18446744073709551616u").contains("unsigned"));
        assert!(err("m v=-1u").contains("unsigned"));
        assert!(err("m v=NaN").contains("invalid value"));
        assert!(err("m v=inf").contains("invalid value"));
        assert!(err("m v=1e400").contains("invalid value"));
        assert!(err("m v=1.2.3").contains("invalid value"));
        assert!(err("m v=i").contains("invalid value"));
    }

    #[test]
    fn fast_float_path_matches_the_standard_parser() {
        let mut rng = StdRng::seed_from_u64(13);
        for _ in 0..50_000 {
            let exp: u32 = rng.random_range(1..16);
            let int: u64 = rng.random_range(0..10u64.pow(exp));
            let digits = int.to_string();
            let dot = rng.random_range(0..=digits.len());
            let mut text = format!("{}.{}", &digits[..dot], &digits[dot..]);
            if rng.random() {
                text.insert(0, '-');
            }
            if text.ends_with('.') && rng.random() {
                text.pop();
            }
            if text == "." || text == "-." {
                continue;
            }
            let want: f64 = text.parse().unwrap();
            let got = parse_f64(text.as_bytes()).unwrap();
            assert_eq!(got.to_bits(), want.to_bits(), "{text}");
        }
        for text in [
            "0.1",
            "-0",
            "123456789012345",
            "1234567890123456789",
            "0.000000000000000001",
        ] {
            let want: f64 = text.parse().unwrap();
            assert_eq!(
                parse_f64(text.as_bytes()).unwrap().to_bits(),
                want.to_bits()
            );
        }
    }

    #[test]
    fn malformed_lines_name_their_number() {
        let cases = [
            ("m", "missing fields"),
            ("m ", "missing fields"),
            ("m,t v=1", "has no value"),
            ("m,t= v=1", "empty value"),
            ("m,=x v=1", "empty tag key"),
            (",t=1 v=1", "missing measurement"),
            (" ,t=1 v=1", "missing measurement"),
            ("m v", "not followed by a value"),
            ("m v,w=1", "has no value"),
            ("m =1", "empty field key"),
            ("m v=", "empty value"),
            ("m v=\"abc", "unterminated"),
            ("m v=\"abc\"x", "unexpected"),
            ("m v=1 1 2", "unexpected text"),
            ("m,t=1\nv=1", "missing fields"),
            ("m,t=1 v\nv=1", "not followed"),
        ];
        for (line, want) in cases {
            let body = format!("ok v=1\n{line}\n");
            let m = err(&body);
            assert!(m.starts_with("line 2: "), "{line:?}: {m}");
            assert!(m.contains(want), "{line:?}: {m} (want {want})");
        }
        let bad_utf8 = parse(b"m,t=\xff v=1", Precision::Nanoseconds, 0);
        assert!(matches!(bad_utf8, Err(TsError::Invalid(m)) if m.contains("UTF-8")));
    }

    #[test]
    fn lines_zero_copy_view() {
        let body = b"cpu,b=2,a=1 x=1,y=\"s\\\"\" 5\ncpu,b=2,a=1 x=2 6\n";
        let mut lines = Lines::new(body, Precision::Nanoseconds, 0);
        let mut fields = Vec::new();
        let l1 = lines.next_line(&mut fields).unwrap().unwrap();
        assert_eq!(l1.series_key, b"cpu,b=2,a=1");
        let (m, tags) = l1.split_key().unwrap();
        assert_eq!(m, b"cpu");
        assert_eq!(
            raw_tags(tags).collect::<Vec<_>>(),
            vec![(&b"b"[..], &b"2"[..]), (&b"a"[..], &b"1"[..])]
        );
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[1].value, RawValue::Str(b"s\\\""));
        assert_eq!(l1.time_ns, 5);
        let l2 = lines.next_line(&mut fields).unwrap().unwrap();
        assert_eq!(l2.series_key, l1.series_key);
        assert_eq!(l2.line, 2);
        assert_eq!(fields.len(), 1);
        assert!(lines.next_line(&mut fields).is_none());
    }

    #[test]
    fn validate_point_rejects_unwritable() {
        let good = Point {
            measurement: s("m"),
            tags: vec![(s("a"), s("1")), (s("b"), s("2"))],
            fields: vec![(s("v"), FieldValue::Float(1.0))],
            time_ns: 0,
        };
        validate_point(&good).unwrap();
        let mut p = good.clone();
        p.fields[0].1 = FieldValue::Float(f64::NAN);
        assert!(validate_point(&p).is_err());
        let mut p = good.clone();
        p.fields.clear();
        assert!(validate_point(&p).is_err());
        let mut p = good.clone();
        p.tags.reverse();
        assert!(validate_point(&p).is_err());
        let mut p = good.clone();
        p.tags[0].1 = s("a\nb");
        assert!(validate_point(&p).is_err());
        let mut p = good.clone();
        p.measurement = s("#x");
        assert!(validate_point(&p).is_err());
        let mut p = good.clone();
        p.fields.push((s("v"), FieldValue::Int(1)));
        assert!(validate_point(&p).is_err());
        let mut p = good;
        p.tags[1].1 = String::new();
        assert!(validate_point(&p).is_err());
    }

    const NASTY: &[&str] = &[
        ",", "=", " ", "\\", "\"", "#", "a", "b", "Z", "0", "é", "雪", "\\\\", "\t", "x\\", "'",
    ];

    fn nasty(rng: &mut StdRng, min: usize) -> String {
        let n = rng.random_range(min..6);
        (0..n)
            .map(|_| NASTY[rng.random_range(0..NASTY.len())])
            .collect()
    }

    fn random_point(rng: &mut StdRng) -> Point {
        let mut measurement = nasty(rng, 1);
        if measurement.starts_with('#') {
            measurement.insert(0, 'm');
        }
        let mut tags: Vec<(String, String)> = (0..rng.random_range(0..4))
            .map(|_| (nasty(rng, 1), nasty(rng, 1)))
            .collect();
        tags.sort_by(|a, b| a.0.cmp(&b.0));
        tags.dedup_by(|a, b| a.0 == b.0);
        let mut fields: Vec<(String, FieldValue)> = Vec::new();
        for _ in 0..rng.random_range(1..5) {
            let key = nasty(rng, 1);
            if fields.iter().any(|(k, _)| *k == key) {
                continue;
            }
            let value = match rng.random_range(0..6) {
                0 => FieldValue::Float(f64::from_bits(rng.random::<u64>())),
                1 => FieldValue::Float(rng.random_range(-1e6..1e6)),
                2 => FieldValue::Int(rng.random()),
                3 => FieldValue::UInt(rng.random()),
                4 => FieldValue::Bool(rng.random()),
                _ => FieldValue::Str(nasty(rng, 0) + if rng.random() { "\n" } else { "" }),
            };
            if let FieldValue::Float(f) = value
                && !f.is_finite()
            {
                fields.push((key, FieldValue::Float(0.25)));
                continue;
            }
            fields.push((key, value));
        }
        Point {
            measurement,
            tags,
            fields,
            time_ns: rng.random(),
        }
    }

    #[test]
    fn encode_parse_round_trip_random_points() {
        let mut rng = StdRng::seed_from_u64(7);
        for round in 0..300 {
            let points: Vec<Point> = (0..rng.random_range(1..20))
                .map(|_| random_point(&mut rng))
                .collect();
            for p in &points {
                validate_point(p).unwrap();
            }
            let mut body = String::new();
            encode(&points, &mut body);
            let back = parse(body.as_bytes(), Precision::Nanoseconds, 0)
                .unwrap_or_else(|e| panic!("round {round}: {e}\n{body}"));
            assert_eq!(back, points, "round {round}:\n{body}");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = StdRng::seed_from_u64(11);
        let alphabet = b"m,= \"\\\n\r#t1.5ei-uTf9x";
        for _ in 0..20_000 {
            let n = rng.random_range(0..40);
            let body: Vec<u8> = (0..n)
                .map(|_| {
                    if rng.random_range(0..10) == 0 {
                        rng.random()
                    } else {
                        alphabet[rng.random_range(0..alphabet.len())]
                    }
                })
                .collect();
            for precision in [Precision::Nanoseconds, Precision::Seconds] {
                if let Ok(points) = parse(&body, precision, 0) {
                    // Whatever parses must encode and parse back the same.
                    let mut text = String::new();
                    encode(&points, &mut text);
                    let again = parse(text.as_bytes(), Precision::Nanoseconds, 0).unwrap();
                    assert_eq!(again, points, "{:?}", String::from_utf8_lossy(&body));
                }
            }
        }
    }
}

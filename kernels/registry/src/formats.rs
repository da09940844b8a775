//! Array formats of kernel inputs and outputs: CSV (what the original HPC kernels read and
//! write), a compact binary format, and NumPy `.npy` (what data scientists already have).
//!
//! Binary format (little endian): magic `SRNK` · version u8 (1) · dtype u8 (1 = f32, 2 = u32) ·
//! 2 reserved zero bytes · rows u64 · cols u64 · rows×cols values, row-major. 24-byte header,
//! so a file is `24 + 4·rows·cols` bytes; decoding checks the length exactly.

use serrano_kernel_core::{KernelError, Matrix, Result, Table};

const MAGIC: &[u8; 4] = b"SRNK";
const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";
const HEADER_LEN: usize = 24;
/// The largest row or column count a file may declare (keeps shape arithmetic far from overflow
/// even for empty arrays, whose size check passes trivially).
const MAX_DIM: u64 = 1 << 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Binary,
    Npy,
}

impl Format {
    /// By file or object name: `.csv`/`.txt` → CSV, `.bin`/`.srnk` → binary, `.npy` → npy.
    pub fn from_name(name: &str) -> Option<Format> {
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "csv" | "txt" => Some(Format::Csv),
            "bin" | "srnk" => Some(Format::Binary),
            "npy" => Some(Format::Npy),
            _ => None,
        }
    }

    pub fn parse(name: &str) -> Option<Format> {
        match name.trim().to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "bin" | "binary" | "srnk" => Some(Format::Binary),
            "npy" => Some(Format::Npy),
            _ => None,
        }
    }

    /// By content: the binary and npy magics, else CSV.
    pub fn sniff(bytes: &[u8]) -> Format {
        if bytes.starts_with(MAGIC) {
            Format::Binary
        } else if bytes.starts_with(NPY_MAGIC) {
            Format::Npy
        } else {
            Format::Csv
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Binary => "bin",
            Format::Npy => "npy",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv",
            Format::Binary | Format::Npy => "application/octet-stream",
        }
    }
}

pub fn decode(bytes: &[u8], format: Format) -> Result<Table> {
    match format {
        Format::Csv => decode_csv(bytes).map(Table::F32),
        Format::Binary => decode_binary(bytes),
        Format::Npy => decode_npy(bytes),
    }
}

/// Decodes by content (binary/npy magic, else CSV).
pub fn decode_sniffed(bytes: &[u8]) -> Result<Table> {
    decode(bytes, Format::sniff(bytes))
}

pub fn encode(table: &Table, format: Format) -> Vec<u8> {
    match format {
        Format::Csv => encode_csv(table),
        Format::Binary => encode_binary(table),
        Format::Npy => encode_npy(table),
    }
}

fn format_err(msg: impl Into<String>) -> KernelError {
    KernelError::Format(msg.into())
}

// ---------------------------------------------------------------------------------------------
// CSV

/// Numeric CSV: comma (or semicolon/tab) separated, one row per line; blank lines and `#` lines
/// are skipped; a first line without any numeric field is a header. `nan`, `inf`, `-inf` are accepted;
/// an empty field is an error (a missing value must be written as `nan`).
pub fn decode_csv(bytes: &[u8]) -> Result<Matrix> {
    let text =
        std::str::from_utf8(bytes).map_err(|e| format_err(format!("CSV is not UTF-8: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut data = Vec::new();
    let mut cols: Option<usize> = None;
    let mut rows = 0usize;
    let mut first_content_line = true;
    for (line_no, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields = split_fields(line);
        let start = data.len();
        let mut ok = true;
        let mut count = 0usize;
        for field in &fields {
            count += 1;
            match parse_number(field.trim()) {
                Some(v) => data.push(v),
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            data.truncate(start);
            // A header has no numeric field at all; a first row with some numbers is bad data.
            if first_content_line && fields.iter().all(|f| parse_number(f.trim()).is_none()) {
                first_content_line = false;
                continue;
            }
            return Err(format_err(format!(
                "CSV line {}: not a number in '{}'",
                line_no + 1,
                truncate(line, 80)
            )));
        }
        first_content_line = false;
        match cols {
            None => cols = Some(count),
            Some(c) if c != count => {
                return Err(format_err(format!(
                    "CSV line {}: {count} fields where earlier rows have {c}",
                    line_no + 1
                )));
            }
            Some(_) => {}
        }
        rows += 1;
    }
    Matrix::new(rows, cols.unwrap_or(0), data)
}

/// The fields of a line: separated by commas, else semicolons, else tabs, else runs of spaces
/// (numpy's `savetxt` default); a double-quoted field may contain the separator.
fn split_fields(line: &str) -> Vec<String> {
    let sep = [',', ';', '\t'].into_iter().find(|c| line.contains(*c));
    let Some(sep) = sep else {
        return line.split_whitespace().map(str::to_string).collect();
    };
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c == sep && !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn parse_number(field: &str) -> Option<f32> {
    let field = field.trim_matches('"');
    if field.is_empty() {
        return None;
    }
    if let Ok(v) = field.parse::<f32>() {
        return Some(v);
    }
    match field.to_ascii_lowercase().as_str() {
        "nan" => Some(f32::NAN),
        "inf" | "+inf" | "infinity" => Some(f32::INFINITY),
        "-inf" | "-infinity" => Some(f32::NEG_INFINITY),
        _ => None,
    }
}

pub fn encode_csv(table: &Table) -> Vec<u8> {
    match table {
        Table::F32(m) => csv_rows(m),
        Table::U32(m) => csv_rows(m),
    }
}

/// `{}` prints the shortest text that reads back to the same value (f32 included).
fn csv_rows<T: std::fmt::Display + Copy>(m: &Matrix<T>) -> Vec<u8> {
    use std::fmt::Write;
    let mut out = String::with_capacity(m.len() * 10);
    for r in 0..m.rows() {
        for (c, v) in m.row(r).iter().enumerate() {
            if c > 0 {
                out.push(',');
            }
            let _ = write!(out, "{v}");
        }
        out.push('\n');
    }
    out.into_bytes()
}

/// The values, little endian, row-major (the payload of the binary and npy formats).
fn le_payload(table: &Table, out: &mut Vec<u8>) {
    match table {
        Table::F32(m) => m
            .data()
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        Table::U32(m) => m
            .data()
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
    }
}

// ---------------------------------------------------------------------------------------------
// binary

pub fn encode_binary(table: &Table) -> Vec<u8> {
    let (dtype, rows, cols) = match table {
        Table::F32(m) => (1u8, m.rows(), m.cols()),
        Table::U32(m) => (2u8, m.rows(), m.cols()),
    };
    let mut out = Vec::with_capacity(HEADER_LEN + 4 * rows * cols);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, dtype, 0, 0]);
    out.extend_from_slice(&(rows as u64).to_le_bytes());
    out.extend_from_slice(&(cols as u64).to_le_bytes());
    le_payload(table, &mut out);
    out
}

pub fn decode_binary(bytes: &[u8]) -> Result<Table> {
    if bytes.len() < HEADER_LEN || &bytes[..4] != MAGIC {
        return Err(format_err("not a SERRANO binary array (magic SRNK)"));
    }
    if bytes[4] != 1 {
        return Err(format_err(format!(
            "binary array version {} is not supported",
            bytes[4]
        )));
    }
    let dtype = bytes[5];
    let rows = u64_at(bytes, 8);
    let cols = u64_at(bytes, 16);
    if rows > MAX_DIM || cols > MAX_DIM {
        return Err(format_err(format!(
            "binary array shape {rows}x{cols} is too large"
        )));
    }
    let count = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(4))
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format_err(format!("binary array shape {rows}x{cols} is too large")))?;
    let payload = &bytes[HEADER_LEN..];
    if payload.len() != count {
        return Err(format_err(format!(
            "binary array {rows}x{cols} needs {count} payload bytes, got {}",
            payload.len()
        )));
    }
    let (rows, cols) = (rows as usize, cols as usize);
    let words = payload.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]);
    match dtype {
        1 => Matrix::new(rows, cols, words.map(f32::from_le_bytes).collect()).map(Table::F32),
        2 => Matrix::new(rows, cols, words.map(u32::from_le_bytes).collect()).map(Table::U32),
        other => Err(format_err(format!(
            "binary array dtype {other} is not supported (1 = f32, 2 = u32)"
        ))),
    }
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

// ---------------------------------------------------------------------------------------------
// npy (format version 1.0/2.0/3.0; 1-D or 2-D, C order, f4/f8/i4/i8/u4 little endian)

pub fn decode_npy(bytes: &[u8]) -> Result<Table> {
    if bytes.len() < 10 || &bytes[..6] != NPY_MAGIC {
        return Err(format_err("not a .npy file"));
    }
    let major = bytes[6];
    let (header_len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => return Err(format_err(format!(".npy version {major} is not supported"))),
    };
    let header = bytes
        .get(start..start + header_len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| format_err(".npy header is truncated or not text"))?;
    let descr = npy_field(header, "descr").ok_or_else(|| format_err(".npy header has no descr"))?;
    let fortran = npy_field(header, "fortran_order").unwrap_or("False");
    if fortran.starts_with("True") {
        return Err(format_err(
            ".npy in Fortran order is not supported; save with C order",
        ));
    }
    let shape_text =
        npy_field(header, "shape").ok_or_else(|| format_err(".npy header has no shape"))?;
    let dims: Vec<usize> = shape_text
        .trim_start_matches('(')
        .split(')')
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format_err(format!(".npy shape '{shape_text}' is malformed")))
        })
        .collect::<Result<_>>()?;
    if dims.iter().any(|&d| d as u64 > MAX_DIM) {
        return Err(format_err(format!(
            ".npy shape '{shape_text}' is too large"
        )));
    }
    let (rows, cols) = match dims.as_slice() {
        [] => (1, 1),
        [n] => (*n, 1),
        [r, c] => (*r, *c),
        _ => {
            return Err(format_err(format!(
                ".npy arrays of {} dimensions are not supported",
                dims.len()
            )));
        }
    };
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    if !descr.is_ascii() || descr.len() < 3 {
        return Err(format_err(format!(
            ".npy dtype '{descr}' is not supported (f4, f8, i4, i8, u4, u8)"
        )));
    }
    let width = match &descr[descr.len().saturating_sub(2)..] {
        "f4" | "i4" | "u4" => 4,
        "f8" | "i8" | "u8" => 8,
        _ => {
            return Err(format_err(format!(
                ".npy dtype '{descr}' is not supported (f4, f8, i4, i8, u4, u8)"
            )));
        }
    };
    if descr.starts_with('>') {
        return Err(format_err(".npy big-endian data is not supported"));
    }
    let count = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(width))
        .ok_or_else(|| format_err(".npy shape is too large"))?;
    let payload = &bytes[start + header_len..];
    if payload.len() != count {
        return Err(format_err(format!(
            ".npy {rows}x{cols} needs {count} bytes, got {}",
            payload.len()
        )));
    }
    let kind = &descr[descr.len() - 2..descr.len() - 1];
    let values: Vec<f32> = match (kind, width) {
        ("f", 4) => payload
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        ("f", _) => payload
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(arr8(c)) as f32)
            .collect(),
        ("i", 4) => payload
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
            .collect(),
        ("i", _) => payload
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(arr8(c)) as f32)
            .collect(),
        ("u", 4) => {
            let v = payload
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            return Matrix::new(rows, cols, v).map(Table::U32);
        }
        _ => payload
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(arr8(c)) as f32)
            .collect(),
    };
    Matrix::new(rows, cols, values).map(Table::F32)
}

fn arr8(c: &[u8]) -> [u8; 8] {
    let mut b = [0u8; 8];
    b.copy_from_slice(c);
    b
}

/// The text after `'key':` up to the next top-level comma of the header dict.
fn npy_field<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
    if rest.starts_with('(') {
        let end = rest.find(')')?;
        return Some(&rest[..=end]);
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

pub fn encode_npy(table: &Table) -> Vec<u8> {
    let (descr, rows, cols) = match table {
        Table::F32(m) => ("<f4", m.rows(), m.cols()),
        Table::U32(m) => ("<u4", m.rows(), m.cols()),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // Pad so that the data starts on a 64-byte boundary, header ending in '\n' (format 1.0).
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + 4 * rows * cols);
    out.extend_from_slice(NPY_MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    le_payload(table, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        Table::F32(
            Matrix::new(2, 3, vec![1.5, -2.0, 3.25e-7, f32::NAN, f32::INFINITY, 0.1]).unwrap(),
        )
    }

    fn same(a: &Table, b: &Table) -> bool {
        let (a, b) = (a.to_f32(), b.to_f32());
        a.rows() == b.rows()
            && a.cols() == b.cols()
            && a.data()
                .iter()
                .zip(b.data())
                .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
    }

    #[test]
    fn every_format_round_trips_exactly() {
        for f in [Format::Csv, Format::Binary, Format::Npy] {
            let t = sample();
            let back = decode(&encode(&t, f), f).unwrap();
            assert!(same(&t, &back), "{f:?}: {back:?}");
            assert_eq!(Format::sniff(&encode(&t, f)), f);
        }
        let ints = Table::U32(Matrix::new(1, 2, vec![7, 4_000_000_000]).unwrap());
        assert_eq!(decode_binary(&encode_binary(&ints)).unwrap(), ints);
        assert_eq!(decode_npy(&encode_npy(&ints)).unwrap(), ints);
    }

    #[test]
    fn csv_header_blank_lines_and_separators() {
        let m = decode_csv(b"x,y\n1,2\n\n# note\n3,4\n").unwrap();
        assert_eq!((m.rows(), m.cols()), (2, 2));
        assert_eq!(m.data(), &[1.0, 2.0, 3.0, 4.0]);
        let m = decode_csv(b"1;2\n3;4\n").unwrap();
        assert_eq!(m.data(), &[1.0, 2.0, 3.0, 4.0]);
        let m = decode_csv(b"5\n6\n7\n").unwrap();
        assert_eq!((m.rows(), m.cols()), (3, 1));
        assert_eq!(decode_csv(b"").unwrap().rows(), 0);
    }

    #[test]
    fn csv_errors_name_the_line() {
        let e = decode_csv(b"1,2\n3\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("1 fields"), "{e}");
        let e = decode_csv(b"1,2\n3,abc\n").unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = decode_csv(b"1,,2\n").unwrap_err().to_string();
        assert!(e.contains("line 1") || e.contains("not a number"), "{e}");
        assert!(decode_csv(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn binary_rejects_truncation_and_lies() {
        let mut b = encode_binary(&sample());
        b.pop();
        assert!(
            decode_binary(&b)
                .unwrap_err()
                .to_string()
                .contains("payload bytes")
        );
        let mut b = encode_binary(&sample());
        b[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode_binary(&b).is_err());
        let mut b = encode_binary(&sample());
        b[5] = 9;
        assert!(
            decode_binary(&b)
                .unwrap_err()
                .to_string()
                .contains("dtype 9")
        );
        assert!(decode_binary(b"SRN").is_err());
    }

    #[test]
    fn npy_of_numpy_shapes_and_dtypes() {
        // A 1-D float64 array as numpy writes it.
        let mut f = NPY_MAGIC.to_vec();
        f.extend_from_slice(&[1, 0]);
        let mut h = "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }".to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        f.extend_from_slice(&(h.len() as u16).to_le_bytes());
        f.extend_from_slice(h.as_bytes());
        for v in [1.0f64, 2.5, -3.0] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        let t = decode_npy(&f).unwrap().into_f32();
        assert_eq!((t.rows(), t.cols()), (3, 1));
        assert_eq!(t.data(), &[1.0, 2.5, -3.0]);
        let bad = String::from_utf8_lossy(&f)
            .replace("<f8", "<c8")
            .into_bytes();
        assert!(decode_npy(&bad).is_err());
        assert!(decode_npy(&f[..f.len() - 1]).is_err());
    }

    #[test]
    fn csv_bom_quotes_and_spaces() {
        let m = decode_csv("\u{feff}1,2\n3,4\n".as_bytes()).unwrap();
        assert_eq!(m.data(), &[1.0, 2.0, 3.0, 4.0]);
        // A quoted decimal comma is one (bad) field, not two numbers.
        let e = decode_csv(b"0,0\n\"1,5\",\"2,5\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        let m = decode_csv(b"\"1\",\"2\"\n").unwrap();
        assert_eq!(m.data(), &[1.0, 2.0]);
        // numpy.savetxt's default: space separated, one line.
        let m = decode_csv(b"1.0e+00 2.5e+00 -3.0e+00\n").unwrap();
        assert_eq!((m.rows(), m.cols()), (1, 3));
    }

    #[test]
    fn crafted_headers_are_errors_not_panics() {
        let mut f = NPY_MAGIC.to_vec();
        f.extend_from_slice(&[1, 0]);
        let h = "{'descr': '\u{20ac}', 'fortran_order': False, 'shape': (1,), }\n";
        f.extend_from_slice(&(h.len() as u16).to_le_bytes());
        f.extend_from_slice(h.as_bytes());
        f.extend_from_slice(&[0; 4]);
        assert!(decode_npy(&f).is_err());
        let mut b = encode_binary(&Table::F32(Matrix::new(0, 0, vec![]).unwrap()));
        b[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(
            decode_binary(&b)
                .unwrap_err()
                .to_string()
                .contains("too large")
        );
    }

    #[test]
    fn names_map_to_formats() {
        assert_eq!(Format::from_name("a/b/points.csv"), Some(Format::Csv));
        assert_eq!(Format::from_name("x.BIN"), Some(Format::Binary));
        assert_eq!(Format::from_name("x.npy"), Some(Format::Npy));
        assert_eq!(Format::from_name("x"), None);
    }
}

//! A parser for the Prometheus text exposition format (version 0.0.4), enough for what the
//! probes scrape: node-exporter (`/metrics` on every Kubernetes node), MinIO
//! (`/minio/v2/metrics/cluster`) and the SERRANO storage gateway (`/metrics`).
//!
//! Lines are `name{label="value",...} value [timestamp]`, `# HELP`/`# TYPE` comments and blank
//! lines. Label values may carry the escapes `\\`, `\"` and `\n`; values may be `NaN`, `+Inf`,
//! `-Inf`. A malformed line is an error naming its line number: a scrape that cannot be read is
//! reported as such rather than silently missing series.

use std::collections::BTreeMap;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    /// Labels in the order they were written.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Milliseconds since the Unix epoch, when the line carries one.
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A parsed scrape: the samples in order plus the `# TYPE` and `# HELP` of each family.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    pub samples: Vec<Sample>,
    pub types: BTreeMap<String, String>,
    pub help: BTreeMap<String, String>,
}

/// Why a text could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("prometheus text line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    pub reason: String,
}

impl Scrape {
    /// Samples of metric `name`.
    pub fn series<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// Sum of every sample of `name`; `None` when there is none.
    pub fn sum(&self, name: &str) -> Option<f64> {
        self.sum_where(name, |_| true)
    }

    /// Sum of the samples of `name` that `keep` accepts; `None` when none is accepted.
    pub fn sum_where(&self, name: &str, keep: impl Fn(&Sample) -> bool) -> Option<f64> {
        self.series(name)
            .filter(|s| keep(s))
            .fold(None, |acc, s| Some(acc.unwrap_or(0.0) + s.value))
    }

    /// Whether any sample of `name` exists.
    pub fn has(&self, name: &str) -> bool {
        self.series(name).next().is_some()
    }
}

/// Parses a whole exposition text.
pub fn parse(text: &str) -> Result<Scrape, ParseError> {
    let mut scrape = Scrape::default();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            parse_comment(comment, &mut scrape);
            continue;
        }
        let sample = parse_sample(line).map_err(|reason| ParseError {
            line: line_no,
            reason,
        })?;
        scrape.samples.push(sample);
    }
    Ok(scrape)
}

/// `# HELP name text` and `# TYPE name type` are kept; any other comment is ignored.
fn parse_comment(comment: &str, scrape: &mut Scrape) {
    let comment = comment.trim_start();
    let (keyword, rest) = match comment.split_once(char::is_whitespace) {
        Some(parts) => parts,
        None => return,
    };
    let rest = rest.trim_start();
    let (name, text) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if name.is_empty() {
        return;
    }
    match keyword {
        "TYPE" => {
            scrape.types.insert(name.to_owned(), text.trim().to_owned());
        }
        "HELP" => {
            scrape
                .help
                .insert(name.to_owned(), unescape_help(text.trim()));
        }
        _ => {}
    }
}

fn unescape_help(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('\\') => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .char_indices()
        .find(|&(_, c)| !is_name_char(c))
        .map_or(line.len(), |(i, _)| i);
    let name = &line[..name_end];
    if !name.chars().next().is_some_and(is_name_start) {
        return Err(format!("invalid metric name in {line:?}"));
    }
    // Blanks may separate the name from its labels (as the Go parser accepts).
    let mut rest = line[name_end..].trim_start();
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        let (parsed, remaining) = parse_labels(after_brace)?;
        labels = parsed;
        rest = remaining;
    }
    let mut fields = rest.split_whitespace();
    let value_text = fields
        .next()
        .ok_or_else(|| format!("missing value for {name}"))?;
    let value = parse_value(value_text)?;
    let timestamp_ms = match fields.next() {
        None => None,
        Some(ts) => Some(
            ts.parse::<i64>()
                .map_err(|_| format!("invalid timestamp {ts:?} for {name}"))?,
        ),
    };
    if let Some(extra) = fields.next() {
        return Err(format!("unexpected {extra:?} after the sample of {name}"));
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
        timestamp_ms,
    })
}

type Labels = Vec<(String, String)>;

/// Parses `a="b",c="d"}` (the opening brace already consumed); returns the labels and what
/// follows the closing brace.
fn parse_labels(mut text: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let name_end = text
            .char_indices()
            .find(|&(_, c)| !is_name_char(c))
            .map_or(text.len(), |(i, _)| i);
        let label = &text[..name_end];
        if !label.chars().next().is_some_and(is_name_start) {
            return Err(format!("invalid label name at {text:?}"));
        }
        text = text[name_end..].trim_start();
        text = text
            .strip_prefix('=')
            .ok_or_else(|| format!("expected '=' after label {label}"))?
            .trim_start();
        text = text
            .strip_prefix('"')
            .ok_or_else(|| format!("expected '\"' to open the value of label {label}"))?;
        let (value, rest) =
            parse_quoted(text).ok_or_else(|| format!("unterminated value of label {label}"))?;
        labels.push((label.to_owned(), value));
        text = rest.trim_start();
        if let Some(rest) = text.strip_prefix(',') {
            text = rest;
        } else if !text.starts_with('}') {
            return Err(format!("expected ',' or '}}' after label {label}"));
        }
    }
}

/// Reads a label value up to its closing quote, resolving escapes; `None` when unterminated.
fn parse_quoted(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[i + 1..])),
            '\\' => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, '"')) => value.push('"'),
                Some((_, '\\')) => value.push('\\'),
                // Unknown escapes are kept literally, as Prometheus itself does.
                Some((_, other)) => {
                    value.push('\\');
                    value.push(other);
                }
                None => return None,
            },
            other => value.push(other),
        }
    }
    None
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "NaN" | "nan" => Ok(f64::NAN),
        "+Inf" | "Inf" | "+inf" | "inf" => Ok(f64::INFINITY),
        "-Inf" | "-inf" => Ok(f64::NEG_INFINITY),
        _ => text
            .parse::<f64>()
            .ok()
            // Rust also reads "infinity" and "nan" spelled otherwise; the format does not.
            .filter(|_| text.chars().any(|c| c.is_ascii_digit()))
            .ok_or_else(|| format!("invalid sample value {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_names_labels_values_and_timestamps() {
        let text = "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n\
                    # TYPE node_cpu_seconds_total counter\n\
                    node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 508444.15\n\
                    node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 1.5e3 1700000000123\n\
                    \n\
                    node_boot_time_seconds 1.700000e+09\n\
                    up{} 1\n";
        let scrape = parse(text).unwrap();
        assert_eq!(scrape.samples.len(), 4);
        assert_eq!(
            scrape
                .types
                .get("node_cpu_seconds_total")
                .map(String::as_str),
            Some("counter")
        );
        assert_eq!(
            scrape
                .help
                .get("node_cpu_seconds_total")
                .map(String::as_str),
            Some("Seconds the CPUs spent in each mode.")
        );
        let first = &scrape.samples[0];
        assert_eq!(first.name, "node_cpu_seconds_total");
        assert_eq!(first.label("cpu"), Some("0"));
        assert_eq!(first.label("mode"), Some("idle"));
        assert_eq!(first.value, 508444.15);
        assert_eq!(first.timestamp_ms, None);
        assert_eq!(scrape.samples[1].value, 1500.0);
        assert_eq!(scrape.samples[1].timestamp_ms, Some(1_700_000_000_123));
        assert_eq!(scrape.samples[2].value, 1.7e9);
        assert!(scrape.samples[2].labels.is_empty());
        assert!(scrape.samples[3].labels.is_empty());
        assert_eq!(scrape.sum("node_cpu_seconds_total"), Some(509944.15));
        assert_eq!(
            scrape.sum_where("node_cpu_seconds_total", |s| s.label("mode")
                == Some("idle")),
            Some(508444.15)
        );
        assert_eq!(scrape.sum("absent"), None);
        assert!(scrape.has("up"));
    }

    #[test]
    fn resolves_escapes_and_odd_spacing() {
        let text = r#"m{path="C:\\dir",quote="say \"hi\"",nl="a\nb",odd="\x", trailing="y",} -2"#;
        let scrape = parse(text).unwrap();
        let sample = &scrape.samples[0];
        assert_eq!(sample.label("path"), Some("C:\\dir"));
        assert_eq!(sample.label("quote"), Some("say \"hi\""));
        assert_eq!(sample.label("nl"), Some("a\nb"));
        assert_eq!(sample.label("odd"), Some("\\x"));
        assert_eq!(sample.label("trailing"), Some("y"));
        assert_eq!(sample.value, -2.0);
        // Braces and commas inside a quoted value do not end it.
        let scrape = parse("m{a=\"},{\"} 3").unwrap();
        assert_eq!(scrape.samples[0].label("a"), Some("},{"));
        let scrape = parse("  m { a = \"b\" }   4   ").unwrap();
        assert_eq!(scrape.samples[0].label("a"), Some("b"));
        assert_eq!(scrape.samples[0].value, 4.0);
    }

    #[test]
    fn special_values() {
        let scrape = parse("a NaN\nb +Inf\nc -Inf\nd Inf\ne 0x10\n")
            .err()
            .unwrap();
        assert_eq!(scrape.line, 5, "hex is not a valid value");
        let scrape = parse("a NaN\nb +Inf\nc -Inf\nd Inf\n").unwrap();
        assert!(scrape.samples[0].value.is_nan());
        assert_eq!(scrape.samples[1].value, f64::INFINITY);
        assert_eq!(scrape.samples[2].value, f64::NEG_INFINITY);
        assert_eq!(scrape.samples[3].value, f64::INFINITY);
        assert!(parse("a infinity").is_err());
    }

    #[test]
    fn comments_other_than_help_and_type_are_ignored() {
        let scrape = parse("# just a comment\n#\n# EOF\n# TYPE\nx 1\n").unwrap();
        assert_eq!(scrape.samples.len(), 1);
        assert!(scrape.types.is_empty());
        let scrape = parse("# HELP x multi\\nline \\\\ help\nx 1").unwrap();
        assert_eq!(
            scrape.help.get("x").map(String::as_str),
            Some("multi\nline \\ help")
        );
    }

    #[test]
    fn malformed_lines_name_their_line() {
        for (text, line, needle) in [
            ("ok 1\n9bad 1", 2, "invalid metric name"),
            ("m{a=\"b\" 1", 1, "expected ','"),
            ("m{a=\"b} 1", 1, "unterminated"),
            ("m{a=b} 1", 1, "expected '\"'"),
            ("m{a} 1", 1, "expected '='"),
            ("m{=\"b\"} 1", 1, "invalid label name"),
            ("m", 1, "missing value"),
            ("m abc", 1, "invalid sample value"),
            ("m 1 notatime", 1, "invalid timestamp"),
            ("m 1 2 3", 1, "unexpected"),
            ("\n\nm{a=\"\\", 3, "unterminated"),
        ] {
            let error = parse(text).unwrap_err();
            assert_eq!(error.line, line, "{text:?}");
            assert!(error.reason.contains(needle), "{text:?}: {}", error.reason);
        }
    }
}

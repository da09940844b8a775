//! VictoriaMetrics as a [`TimeSeriesStore`] (D6.7 4.4: the PMDS history on a PromQL store).
//!
//! - Writes are Influx line protocol to `/api/v2/write?precision=ms`, with the bucket added to
//!   every series as the label `serrano_bucket` (`extra_label=`, so buckets stay apart) and the
//!   measurement as the label `serrano_measurement`, so that a read of measurement `cpu` never
//!   picks up measurement `cpu_extra` (VictoriaMetrics names a series `<measurement>_<field>`).
//! - Reads are `/api/v1/export` with one series selector:
//!   `{__name__=~"<measurement>_(<f1>|<f2>)", serrano_bucket="…", serrano_measurement="…",
//!   <tag>="…"}`, every label value escaped as a MetricsQL string and every name quoted as a
//!   regular expression literal; the metric name is split back into measurement and field.
//! - `flush` is `GET /internal/force_flush`.
//!
//! What VictoriaMetrics cannot keep, and what this adapter does about it:
//! - **String fields are dropped on write** (VictoriaMetrics would store them as `0`); a point
//!   whose fields are all strings writes nothing. Bools become 1/0, integers floats; reads return
//!   [`FieldValue::Float`] only ([`Capabilities::typed_fields`] is false). NaN and infinite
//!   values are dropped too (line protocol cannot carry them).
//! - Times are kept in milliseconds; a query compares times truncated to the millisecond.
//! - Two writes of the same series at the same millisecond are both kept by VictoriaMetrics;
//!   reads return the last one exported.
//! - Samples older than the server's `-retentionPeriod` (one month by default) are dropped by the
//!   server silently.
//! - Data written to VictoriaMetrics by other means lacks the two labels and is not read here.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use crate::{Capabilities, FieldValue, Point, Query, Row, TimeSeriesStore, TsError};

/// Label that carries the bucket (added by VictoriaMetrics from `extra_label=`).
pub const BUCKET_LABEL: &str = "serrano_bucket";
/// Label that carries the measurement (added to every written line).
pub const MEASUREMENT_LABEL: &str = "serrano_measurement";

/// Largest line-protocol body sent in one request; bigger writes are split.
const MAX_WRITE_BODY: usize = 8 * 1024 * 1024;

/// A VictoriaMetrics single-node server.
#[derive(Debug, Clone)]
pub struct VictoriaMetrics {
    base: String,
    http: reqwest::Client,
}

impl VictoriaMetrics {
    /// A store on the server at `url` (`http://host:8428`), with a 10 s connect and a 120 s
    /// request timeout.
    pub fn new(url: &str) -> Result<Self, TsError> {
        Self::with_timeout(url, Duration::from_secs(120))
    }

    /// As [`VictoriaMetrics::new`] with another request timeout.
    pub fn with_timeout(url: &str, timeout: Duration) -> Result<Self, TsError> {
        let base = normalise_url(url)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(timeout)
            .build()
            .map_err(|err| TsError::Unavailable(format!("cannot build HTTP client: {err}")))?;
        Ok(Self { base, http })
    }

    /// The server's base URL, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.base
    }

    async fn post_lines(&self, bucket: &str, body: String) -> Result<(), TsError> {
        let response = self
            .http
            .post(format!("{}/api/v2/write", self.base))
            .query(&[
                ("precision", "ms"),
                ("extra_label", &format!("{BUCKET_LABEL}={bucket}")),
            ])
            .body(body)
            .send()
            .await
            .map_err(|err| unavailable("write", &err))?;
        check_status("write", response).await.map(drop)
    }
}

fn normalise_url(url: &str) -> Result<String, TsError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|err| TsError::Invalid(format!("invalid VictoriaMetrics URL {url:?}: {err}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(TsError::Invalid(format!(
            "VictoriaMetrics URL {url:?} must be http or https"
        )));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

fn unavailable(what: &str, err: &reqwest::Error) -> TsError {
    let mut message = format!("VictoriaMetrics {what}: {err}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let _ = write!(message, ": {cause}");
        source = cause.source();
    }
    TsError::Unavailable(message)
}

/// Turns a non-2xx answer into an error: 4xx means the request itself was refused.
async fn check_status(
    what: &str,
    response: reqwest::Response,
) -> Result<reqwest::Response, TsError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await.unwrap_or_default();
    let text = text.trim();
    let message = format!("VictoriaMetrics {what} answered {status}: {text}");
    if status.is_client_error() {
        Err(TsError::Invalid(message))
    } else {
        Err(TsError::Unavailable(message))
    }
}

#[async_trait]
impl TimeSeriesStore for VictoriaMetrics {
    async fn write(&self, bucket: &str, points: &[Point]) -> Result<(), TsError> {
        check_bucket(bucket)?;
        let mut body = String::new();
        for point in points {
            encode_point(point, &mut body)?;
            if body.len() >= MAX_WRITE_BODY {
                self.post_lines(bucket, std::mem::take(&mut body)).await?;
            }
        }
        if !body.is_empty() {
            self.post_lines(bucket, body).await?;
        }
        Ok(())
    }

    async fn query(&self, query: &Query) -> Result<Vec<Row>, TsError> {
        check_bucket(&query.bucket)?;
        if query.measurement.is_empty() {
            return Err(TsError::Invalid("query without a measurement".into()));
        }
        let Some((start_ms, end_ms)) = query_window_ms(query.start_ns, query.stop_ns) else {
            return Ok(Vec::new());
        };
        let selector = selector(query);
        let response = self
            .http
            .get(format!("{}/api/v1/export", self.base))
            .query(&[
                ("match[]", selector.as_str()),
                ("start", &ms_to_seconds(start_ms)),
                ("end", &ms_to_seconds(end_ms)),
            ])
            .send()
            .await
            .map_err(|err| unavailable("export", &err))?;
        let response = check_status("export", response).await?;
        let body = response
            .bytes()
            .await
            .map_err(|err| unavailable("export", &err))?;
        let mut rows = parse_export(&body, query, start_ms, end_ms)?;
        sort_and_dedup(&mut rows);
        if let Some(limit) = query.limit {
            rows.truncate(limit);
        }
        Ok(rows)
    }

    async fn flush(&self) -> Result<(), TsError> {
        let response = self
            .http
            .get(format!("{}/internal/force_flush", self.base))
            .send()
            .await
            .map_err(|err| unavailable("flush", &err))?;
        check_status("flush", response).await.map(drop)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            typed_fields: false,
            time_resolution_ns: 1_000_000,
        }
    }

    fn kind(&self) -> &'static str {
        "victoriametrics"
    }
}

fn check_bucket(bucket: &str) -> Result<(), TsError> {
    if bucket.is_empty() {
        return Err(TsError::Invalid("empty bucket name".into()));
    }
    if bucket.chars().any(char::is_control) {
        return Err(TsError::Invalid(format!(
            "bucket name {bucket:?} has control characters"
        )));
    }
    Ok(())
}

/// The inclusive millisecond window of `[start_ns, stop_ns)` (times compared after truncation
/// to the millisecond, as stored), from 0 on (nothing is kept earlier); `None` when empty.
fn query_window_ms(start_ns: i64, stop_ns: i64) -> Option<(i64, i64)> {
    let start_ms = start_ns.div_euclid(1_000_000).max(0);
    // Exclusive stop → last included millisecond: a stored ms `t` is in when t*1e6 < stop_ns.
    let end_ms = stop_ns.div_euclid(1_000_000) - i64::from(stop_ns.rem_euclid(1_000_000) == 0);
    (start_ms <= end_ms).then_some((start_ms, end_ms))
}

/// `1700000000123` → `1700000000.123` (the export API takes seconds with a fraction).
fn ms_to_seconds(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

// ---------------------------------------------------------------------------------------------
// Line protocol out (floats only: what VictoriaMetrics stores).

/// Appends one line for `point` (string and non-finite fields dropped; nothing when no field
/// is left).
fn encode_point(point: &Point, out: &mut String) -> Result<(), TsError> {
    let numeric: Vec<(&str, f64)> = point
        .fields
        .iter()
        .filter_map(|(key, value)| {
            let number = value.as_f64()?;
            number.is_finite().then_some((key.as_str(), number))
        })
        .collect();
    if numeric.is_empty() {
        return Ok(());
    }
    if point.measurement.is_empty() {
        return Err(TsError::Invalid("point without a measurement".into()));
    }
    let start = out.len();
    let result = encode_numeric(point, &numeric, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn encode_numeric(point: &Point, fields: &[(&str, f64)], out: &mut String) -> Result<(), TsError> {
    escape_lp(&point.measurement, true, out)?;
    // The measurement label goes in sorted position with the others; VictoriaMetrics sorts
    // labels anyway, but a point's own tag of that name would be ambiguous.
    out.push(',');
    out.push_str(MEASUREMENT_LABEL);
    out.push('=');
    escape_lp(&point.measurement, false, out)?;
    for (key, value) in &point.tags {
        if key == MEASUREMENT_LABEL || key == BUCKET_LABEL || key == "__name__" {
            return Err(TsError::Invalid(format!(
                "tag key {key:?} is reserved by the VictoriaMetrics adapter"
            )));
        }
        if value.is_empty() {
            // Line protocol has no empty tag values; an absent label reads back the same.
            continue;
        }
        out.push(',');
        escape_lp(key, false, out)?;
        out.push('=');
        escape_lp(value, false, out)?;
    }
    for (i, (key, value)) in fields.iter().enumerate() {
        out.push(if i == 0 { ' ' } else { ',' });
        escape_lp(key, false, out)?;
        // Debug keeps the shortest round-trip form ("1.5", "1e300"), which the server parses.
        let _ = write!(out, "={value:?}");
    }
    let _ = writeln!(out, " {}", point.time_ns.div_euclid(1_000_000));
    Ok(())
}

/// Escapes a measurement (`measurement = true`: commas and spaces) or a key / tag value
/// (commas, equals signs, spaces); backslashes are doubled because VictoriaMetrics reads `\\`
/// as one backslash. Line protocol has no escape for line breaks.
fn escape_lp(text: &str, measurement: bool, out: &mut String) -> Result<(), TsError> {
    if text.is_empty() {
        return Err(TsError::Invalid("empty name in a point".into()));
    }
    for c in text.chars() {
        match c {
            '\n' | '\r' => {
                return Err(TsError::Invalid(format!(
                    "{text:?}: line breaks cannot be written in line protocol"
                )));
            }
            ',' | ' ' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '=' if !measurement => out.push_str("\\="),
            _ => out.push(c),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The series selector.

/// The MetricsQL series selector of `query`.
pub fn selector(query: &Query) -> String {
    let mut name = regex_literal(&query.measurement);
    name.push('_');
    if query.fields.is_empty() {
        name.push_str(".+");
    } else {
        name.push('(');
        for (i, field) in query.fields.iter().enumerate() {
            if i > 0 {
                name.push('|');
            }
            name.push_str(&regex_literal(field));
        }
        name.push(')');
    }
    let mut out = String::from("{__name__=~");
    push_string_literal(&name, &mut out);
    out.push_str(", ");
    out.push_str(BUCKET_LABEL);
    out.push('=');
    push_string_literal(&query.bucket, &mut out);
    out.push_str(", ");
    out.push_str(MEASUREMENT_LABEL);
    out.push('=');
    push_string_literal(&query.measurement, &mut out);
    for (key, value) in &query.tags {
        out.push_str(", ");
        push_label_name(key, &mut out);
        out.push('=');
        push_string_literal(value, &mut out);
    }
    out.push('}');
    out
}

/// `text` as a regular expression that matches exactly it (RE2 metacharacters escaped).
fn regex_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A double-quoted MetricsQL string.
fn push_string_literal(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            _ => out.push(c),
        }
    }
    out.push('"');
}

/// A label name: identifier characters as they are, anything else backslash-escaped
/// (MetricsQL's escaping inside identifiers), so keys like `a-b` or `tä g` select too.
fn push_label_name(name: &str, out: &mut String) {
    for (i, c) in name.chars().enumerate() {
        let plain = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if !plain {
            out.push('\\');
        }
        out.push(c);
    }
}

// ---------------------------------------------------------------------------------------------
// Export parsing.

#[derive(Deserialize)]
struct ExportLine {
    metric: BTreeMap<String, String>,
    values: Vec<serde_json::Value>,
    timestamps: Vec<i64>,
}

fn parse_export(
    body: &[u8],
    query: &Query,
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<Row>, TsError> {
    let prefix_len = query.measurement.len() + 1;
    let mut rows = Vec::new();
    for line in body.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let line: ExportLine = serde_json::from_slice(line).map_err(|err| {
            TsError::Unavailable(format!("VictoriaMetrics export: unreadable line: {err}"))
        })?;
        let mut metric = line.metric;
        let Some(name) = metric.remove("__name__") else {
            continue;
        };
        if metric.remove(BUCKET_LABEL).as_deref() != Some(query.bucket.as_str())
            || metric.remove(MEASUREMENT_LABEL).as_deref() != Some(query.measurement.as_str())
        {
            continue;
        }
        let Some(field) = name.get(prefix_len..).filter(|f| !f.is_empty()) else {
            continue;
        };
        if !query.fields.is_empty() && !query.fields.iter().any(|f| f == field) {
            continue;
        }
        let tags: Vec<(String, String)> = metric.into_iter().collect();
        if !query
            .tags
            .iter()
            .all(|(key, value)| tags.iter().any(|(k, v)| k == key && v == value))
        {
            continue;
        }
        for (value, time_ms) in line.values.iter().zip(&line.timestamps) {
            let Some(value) = value.as_f64() else {
                // NaN (staleness markers) and the like come back as non-numbers.
                continue;
            };
            if *time_ms < start_ms || *time_ms > end_ms {
                continue;
            }
            rows.push(Row {
                measurement: query.measurement.clone(),
                tags: tags.clone(),
                field: field.to_owned(),
                value: FieldValue::Float(value),
                time_ns: time_ms.saturating_mul(1_000_000),
            });
        }
    }
    Ok(rows)
}

/// Sorts by (tags, field, time) and keeps the last of samples sharing all three.
fn sort_and_dedup(rows: &mut Vec<Row>) {
    // Stable sort: among equal keys the export order stays, and the last one wins.
    rows.sort_by(|a, b| (&a.tags, &a.field, a.time_ns).cmp(&(&b.tags, &b.field, b.time_ns)));
    let mut kept: Vec<Row> = Vec::with_capacity(rows.len());
    for row in rows.drain(..) {
        match kept.last_mut() {
            Some(last)
                if last.time_ns == row.time_ns
                    && last.field == row.field
                    && last.tags == row.tags =>
            {
                *last = row;
            }
            _ => kept.push(row),
        }
    }
    *rows = kept;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(tags: &[(&str, &str)], fields: Vec<(&str, FieldValue)>) -> Point {
        Point {
            measurement: "cpu load".into(),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            time_ns: 1_700_000_000_123_456_789,
        }
    }

    #[test]
    fn encodes_floats_with_labels_and_escapes() {
        let mut out = String::new();
        let p = point(
            &[("host", "a,b c=d\\"), ("empty", "")],
            vec![
                ("usage", FieldValue::Float(1.5)),
                ("n", FieldValue::Int(-3)),
                ("ok", FieldValue::Bool(true)),
                ("name", FieldValue::Str("dropped".into())),
                ("nan", FieldValue::Float(f64::NAN)),
            ],
        );
        encode_point(&p, &mut out).unwrap();
        assert_eq!(
            out,
            "cpu\\ load,serrano_measurement=cpu\\ load,host=a\\,b\\ c\\=d\\\\ usage=1.5,n=-3.0,ok=1.0 1700000000123\n"
        );
    }

    #[test]
    fn string_only_points_write_nothing_and_newlines_are_refused() {
        let mut out = String::new();
        encode_point(
            &point(&[], vec![("s", FieldValue::Str("x".into()))]),
            &mut out,
        )
        .unwrap();
        assert!(out.is_empty());
        let bad = point(&[("host", "a\nb")], vec![("v", FieldValue::Int(1))]);
        assert!(matches!(
            encode_point(&bad, &mut out),
            Err(TsError::Invalid(_))
        ));
        assert!(out.is_empty(), "a refused point leaves nothing behind");
        let reserved = point(&[(BUCKET_LABEL, "x")], vec![("v", FieldValue::Int(1))]);
        assert!(matches!(
            encode_point(&reserved, &mut out),
            Err(TsError::Invalid(_))
        ));
    }

    #[test]
    fn selector_escapes_names_values_and_regex() {
        let query = Query {
            bucket: "b\"1".into(),
            measurement: "we.ird".into(),
            tags: vec![
                ("a-b".into(), "x\"y\\z\n".into()),
                ("1x".into(), "2".into()),
            ],
            fields: vec!["f.1".into(), "g|h".into()],
            start_ns: 0,
            stop_ns: 1,
            limit: None,
        };
        assert_eq!(
            selector(&query),
            r#"{__name__=~"we\\.ird_(f\\.1|g\\|h)", serrano_bucket="b\"1", serrano_measurement="we.ird", a\-b="x\"y\\z\n", \1x="2"}"#
        );
        let all = Query {
            fields: vec![],
            tags: vec![],
            ..query
        };
        assert!(selector(&all).starts_with(r#"{__name__=~"we\\.ird_.+", "#));
    }

    #[test]
    fn window_truncates_to_milliseconds() {
        assert_eq!(query_window_ms(1_500_000, 3_000_000), Some((1, 2)));
        assert_eq!(query_window_ms(1_500_000, 3_000_001), Some((1, 3)));
        assert_eq!(query_window_ms(5_000_000, 5_000_000), None);
        assert_eq!(
            query_window_ms(i64::MIN, i64::MAX),
            Some((0, i64::MAX / 1_000_000))
        );
        assert_eq!(ms_to_seconds(1_700_000_000_012), "1700000000.012");
    }

    #[test]
    fn export_lines_become_sorted_rows() {
        let body = br#"{"metric":{"__name__":"cpu_usage","host":"b","serrano_bucket":"k","serrano_measurement":"cpu"},"values":[2,null],"timestamps":[2000,3000]}
{"metric":{"__name__":"cpu_usage","host":"a","serrano_bucket":"k","serrano_measurement":"cpu"},"values":[1,5,6],"timestamps":[1000,1000,9000]}
{"metric":{"__name__":"cpu_extra_x","host":"a","serrano_bucket":"k","serrano_measurement":"cpu_extra"},"values":[9],"timestamps":[1000]}
"#;
        let query = Query {
            bucket: "k".into(),
            measurement: "cpu".into(),
            start_ns: 0,
            stop_ns: 5_000_000_000,
            ..Query::default()
        };
        let mut rows = parse_export(body, &query, 0, 4999).unwrap();
        sort_and_dedup(&mut rows);
        let got: Vec<(String, String, f64, i64)> = rows
            .iter()
            .map(|r| {
                (
                    r.tags[0].1.clone(),
                    r.field.clone(),
                    r.value.as_f64().unwrap(),
                    r.time_ns,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("a".into(), "usage".into(), 5.0, 1_000_000_000),
                ("b".into(), "usage".into(), 2.0, 2_000_000_000),
            ]
        );
        assert!(parse_export(b"not json\n", &query, 0, 1).is_err());
    }

    #[test]
    fn urls_are_checked() {
        assert!(VictoriaMetrics::new("ftp://x").is_err());
        assert!(VictoriaMetrics::new("not a url").is_err());
        assert_eq!(
            VictoriaMetrics::new("http://127.0.0.1:8428/")
                .unwrap()
                .url(),
            "http://127.0.0.1:8428"
        );
    }
}

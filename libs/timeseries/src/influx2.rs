//! InfluxDB 2 as a [`TimeSeriesStore`], through the `influxdb2` crate (D6.7 4.4: the original
//! PMDS kept its history in InfluxDB 2; the design card names this crate).
//!
//! - Writes: line protocol (nanosecond times) to `/api/v2/write` with the crate's
//!   `write_line_protocol_with_precision`. A bucket is looked up on first use and created
//!   through the buckets API when missing (`GET /api/v2/orgs` for the organisation id, then
//!   `POST /api/v2/buckets`, no expiry).
//! - Reads: one Flux query per [`Query`], built by [`flux_query`] where **every** user value
//!   (bucket, measurement, tag keys and values, field names) is a Flux string literal escaped by
//!   [`flux_string`], never spliced raw; times are integers (`time(v: <ns>)`). The request body is
//!   the crate's `models::Query` (annotations `datatype`, `group`, `default`); the annotated CSV
//!   answer is parsed here into [`Row`]s, because the crate's own CSV reader unwraps on malformed
//!   input (a bad answer must be an error, never a panic).
//!
//! No InfluxDB 2 server installs on the build machines (notes/servers.md): writes are tested
//! against VictoriaMetrics, which accepts `/api/v2/write`, and bucket creation and Flux queries
//! against a recorded-response server in `tests/influx2.rs` that checks the exact Flux text and
//! answers annotated CSV in the format of the InfluxDB 2 documentation.

use std::collections::HashSet;
use std::fmt::{self, Write as _};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use influxdb2::RequestError;
use influxdb2::api::buckets::ListBucketsRequest;
use influxdb2::api::organization::ListOrganizationRequest;
use influxdb2::api::write::TimestampPrecision;
use influxdb2::models::PostBucketRequest;

use crate::{Capabilities, FieldValue, Point, Query, Row, TimeSeriesStore, TsError, line_protocol};

/// Largest line-protocol body sent in one request; bigger writes are split.
const MAX_WRITE_BODY: usize = 8 * 1024 * 1024;

/// An InfluxDB 2 server (or anything speaking its v2 API).
pub struct InfluxDb2 {
    client: influxdb2::Client,
    /// For `/api/v2/query`, whose answer is read here (see the module docs).
    http: reqwest::Client,
    base: String,
    org: String,
    token: String,
    create_buckets: bool,
    known_buckets: Mutex<HashSet<String>>,
    org_id: tokio::sync::OnceCell<String>,
}

impl fmt::Debug for InfluxDb2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token is a credential: never in logs.
        f.debug_struct("InfluxDb2")
            .field("url", &self.base)
            .field("org", &self.org)
            .field("create_buckets", &self.create_buckets)
            .finish_non_exhaustive()
    }
}

impl InfluxDb2 {
    /// A store on the server at `url` (`http://host:8086`) in organisation `org`, authenticating
    /// with `token` (`Authorization: Token …`; empty = none).
    pub fn new(url: &str, org: &str, token: &str) -> Result<Self, TsError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|err| TsError::Invalid(format!("invalid InfluxDB URL {url:?}: {err}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.cannot_be_a_base() {
            return Err(TsError::Invalid(format!(
                "InfluxDB URL {url:?} must be an http or https base URL"
            )));
        }
        if org.is_empty() {
            return Err(TsError::Invalid("InfluxDB organisation is empty".into()));
        }
        // The URL parses (same `url` crate), so the builder's own parse cannot panic.
        let client = influxdb2::ClientBuilder::new(url, org, token)
            .build()
            .map_err(|err| TsError::Unavailable(format!("cannot build InfluxDB client: {err}")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|err| TsError::Unavailable(format!("cannot build HTTP client: {err}")))?;
        Ok(Self {
            client,
            http,
            base: url.trim_end_matches('/').to_owned(),
            org: org.to_owned(),
            token: token.to_owned(),
            create_buckets: true,
            known_buckets: Mutex::new(HashSet::new()),
            org_id: tokio::sync::OnceCell::new(),
        })
    }

    /// Whether a missing bucket is created on first write (default true). Off for servers
    /// without the buckets API (VictoriaMetrics) or tokens without the right to create.
    pub fn create_buckets(mut self, create: bool) -> Self {
        self.create_buckets = create;
        self
    }

    fn bucket_known(&self, bucket: &str) -> bool {
        self.known_buckets
            .lock()
            .map(|known| known.contains(bucket))
            .unwrap_or(false)
    }

    fn remember_bucket(&self, bucket: &str) {
        if let Ok(mut known) = self.known_buckets.lock() {
            known.insert(bucket.to_owned());
        }
    }

    async fn org_id(&self) -> Result<&str, TsError> {
        self.org_id
            .get_or_try_init(|| async {
                let request = ListOrganizationRequest {
                    org: Some(self.org.clone()),
                    ..ListOrganizationRequest::default()
                };
                let orgs = self
                    .client
                    .list_organizations(request)
                    .await
                    .map_err(|err| request_error("list organisations", err))?;
                orgs.orgs
                    .into_iter()
                    .find(|o| o.name == self.org)
                    .and_then(|o| o.id)
                    .ok_or_else(|| {
                        TsError::Unavailable(format!("InfluxDB has no organisation {:?}", self.org))
                    })
            })
            .await
            .map(String::as_str)
    }

    /// Looks `bucket` up and creates it when missing (once per bucket and process).
    async fn ensure_bucket(&self, bucket: &str) -> Result<(), TsError> {
        if !self.create_buckets || self.bucket_known(bucket) {
            return Ok(());
        }
        let request = ListBucketsRequest {
            name: Some(bucket.to_owned()),
            org: Some(self.org.clone()),
            ..ListBucketsRequest::default()
        };
        let found = self
            .client
            .list_buckets(Some(request))
            .await
            .map_err(|err| request_error("list buckets", err))?;
        if !found.buckets.iter().any(|b| b.name == bucket) {
            let org_id = self.org_id().await?.to_owned();
            let created = self
                .client
                .create_bucket(Some(PostBucketRequest::new(org_id, bucket.to_owned())))
                .await;
            match created {
                Ok(()) => tracing::info!(bucket, "created InfluxDB bucket"),
                // Another writer created it in between.
                Err(RequestError::Http { status, .. }) if status.as_u16() == 422 => {}
                Err(err) => return Err(request_error("create bucket", err)),
            }
        }
        self.remember_bucket(bucket);
        Ok(())
    }

    async fn post_lines(&self, bucket: &str, body: String) -> Result<(), TsError> {
        self.client
            .write_line_protocol_with_precision(
                &self.org,
                bucket,
                body,
                TimestampPrecision::Nanoseconds,
            )
            .await
            .map_err(|err| request_error("write", err))
    }
}

/// Maps the crate's errors: a 400 is bad input, anything else means the server is not usable.
fn request_error(what: &str, err: RequestError) -> TsError {
    match err {
        RequestError::Http { status, text } if status.as_u16() == 400 => {
            TsError::Invalid(format!("InfluxDB {what}: {}", text.trim()))
        }
        RequestError::Http { status, text } => TsError::Unavailable(format!(
            "InfluxDB {what} answered {status}: {}",
            text.trim()
        )),
        other => TsError::Unavailable(format!("InfluxDB {what}: {other}")),
    }
}

#[async_trait]
impl TimeSeriesStore for InfluxDb2 {
    async fn write(&self, bucket: &str, points: &[Point]) -> Result<(), TsError> {
        if bucket.is_empty() {
            return Err(TsError::Invalid("empty bucket name".into()));
        }
        for point in points {
            line_protocol::validate_point(point)?;
        }
        if points.is_empty() {
            return Ok(());
        }
        self.ensure_bucket(bucket).await?;
        let mut body = String::new();
        for point in points {
            line_protocol::encode_point(point, &mut body);
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
        if query.bucket.is_empty() || query.measurement.is_empty() {
            return Err(TsError::Invalid(
                "query needs a bucket and a measurement".into(),
            ));
        }
        if query.start_ns >= query.stop_ns || query.limit == Some(0) {
            return Ok(Vec::new());
        }
        let mut request = influxdb2::models::Query::new(flux_query(query));
        request.r#type = Some(influxdb2::models::query::Type::Flux);
        let mut builder = self
            .http
            .post(format!("{}/api/v2/query", self.base))
            .query(&[("org", self.org.as_str())])
            .header("Accept", "application/csv")
            .json(&request);
        if !self.token.is_empty() {
            builder = builder.header("Authorization", format!("Token {}", self.token));
        }
        let response = builder.send().await.map_err(|err| {
            TsError::Unavailable(format!(
                "InfluxDB query: {}",
                crate_error_chain(&err as &dyn std::error::Error)
            ))
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|err| TsError::Unavailable(format!("InfluxDB query: {err}")))?;
        if status.as_u16() == 404 {
            // A bucket nobody wrote to yet: no rows, as on every other backend.
            return Ok(Vec::new());
        }
        if status.as_u16() == 400 {
            return Err(TsError::Invalid(format!("InfluxDB query: {}", text.trim())));
        }
        if !status.is_success() {
            return Err(TsError::Unavailable(format!(
                "InfluxDB query answered {status}: {}",
                text.trim()
            )));
        }
        let mut rows = parse_annotated_csv(&text)?;
        rows.sort_by(|a, b| (&a.tags, &a.field, a.time_ns).cmp(&(&b.tags, &b.field, b.time_ns)));
        if let Some(limit) = query.limit {
            rows.truncate(limit);
        }
        Ok(rows)
    }

    async fn flush(&self) -> Result<(), TsError> {
        // A 204 from `/api/v2/write` means the points are durable and queryable.
        Ok(())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            typed_fields: true,
            time_resolution_ns: 1,
        }
    }

    fn kind(&self) -> &'static str {
        "influxdb2"
    }
}

fn crate_error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let _ = write!(message, ": {cause}");
        source = cause.source();
    }
    message
}

// ---------------------------------------------------------------------------------------------
// Flux text.

/// `text` as a Flux string literal: quotes, backslashes, line breaks, tabs and the `${` of
/// string interpolation escaped, so no value can end the literal or run code.
pub fn flux_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The Flux query of `query` (the `limit` is per table, i.e. per series and field, which is
/// enough for the global cut applied after sorting).
pub fn flux_query(query: &Query) -> String {
    let mut flux = String::new();
    let _ = writeln!(flux, "from(bucket: {})", flux_string(&query.bucket));
    let _ = writeln!(
        flux,
        "  |> range(start: time(v: {}), stop: time(v: {}))",
        query.start_ns, query.stop_ns
    );
    let _ = writeln!(
        flux,
        "  |> filter(fn: (r) => r._measurement == {})",
        flux_string(&query.measurement)
    );
    for (key, value) in &query.tags {
        let _ = writeln!(
            flux,
            "  |> filter(fn: (r) => r[{}] == {})",
            flux_string(key),
            flux_string(value)
        );
    }
    if !query.fields.is_empty() {
        let alternatives: Vec<String> = query
            .fields
            .iter()
            .map(|f| format!("r._field == {}", flux_string(f)))
            .collect();
        let _ = writeln!(
            flux,
            "  |> filter(fn: (r) => {})",
            alternatives.join(" or ")
        );
    }
    if let Some(limit) = query.limit {
        let _ = writeln!(flux, "  |> limit(n: {limit})");
    }
    flux
}

// ---------------------------------------------------------------------------------------------
// Annotated CSV (InfluxDB 2 "Annotated CSV" documentation).

/// Columns of every Flux table that are not tags.
const NON_TAG_COLUMNS: [&str; 8] = [
    "result",
    "table",
    "_start",
    "_stop",
    "_time",
    "_value",
    "_field",
    "_measurement",
];

#[derive(Default)]
struct Table {
    datatypes: Vec<String>,
    defaults: Vec<String>,
    header: Option<Vec<String>>,
}

/// Parses an annotated CSV answer of a Flux query into rows (unsorted).
pub fn parse_annotated_csv(text: &str) -> Result<Vec<Row>, TsError> {
    let mut rows = Vec::new();
    let mut table = Table::default();
    let mut in_annotations = false;
    for record in CsvRecords::new(text) {
        let record = record?;
        if record.len() == 1 && record[0].is_empty() {
            // A blank line ends a table.
            table = Table::default();
            in_annotations = false;
            continue;
        }
        let first = record[0].as_str();
        if first.starts_with('#') {
            if !in_annotations {
                table = Table::default();
                in_annotations = true;
            }
            let rest = record[1..].to_vec();
            match first {
                "#datatype" => table.datatypes = rest,
                "#default" => table.defaults = rest,
                _ => {} // #group and unknown annotations carry nothing we need
            }
            continue;
        }
        in_annotations = false;
        let cells = &record[1..];
        let Some(header) = &table.header else {
            table.header = Some(cells.to_vec());
            continue;
        };
        // An error table: its header names `error`, its one row holds the message.
        if header.first().map(String::as_str) == Some("error") {
            let message = cells.first().cloned().unwrap_or_default();
            return Err(TsError::Invalid(format!("InfluxDB query error: {message}")));
        }
        rows.push(csv_row(header, &table, cells)?);
    }
    Ok(rows)
}

fn csv_row(header: &[String], table: &Table, cells: &[String]) -> Result<Row, TsError> {
    if cells.len() != header.len() {
        return Err(bad_csv(format!(
            "a row has {} cells, the header {}",
            cells.len(),
            header.len()
        )));
    }
    let cell = |i: usize| -> &str {
        let value = cells[i].as_str();
        if value.is_empty() {
            table.defaults.get(i).map_or("", String::as_str)
        } else {
            value
        }
    };
    let column = |name: &str| header.iter().position(|h| h == name);
    let (Some(time_i), Some(value_i), Some(field_i), Some(measurement_i)) = (
        column("_time"),
        column("_value"),
        column("_field"),
        column("_measurement"),
    ) else {
        return Err(bad_csv(
            "a table lacks _time, _value, _field or _measurement".into(),
        ));
    };
    let datatype = table
        .datatypes
        .get(value_i)
        .map_or("string", String::as_str);
    let value = parse_value(cell(value_i), datatype)?;
    let time_ns = parse_rfc3339_ns(cell(time_i))?;
    let mut tags: Vec<(String, String)> = header
        .iter()
        .enumerate()
        .filter(|(i, name)| !NON_TAG_COLUMNS.contains(&name.as_str()) && !cell(*i).is_empty())
        .map(|(i, name)| (name.clone(), cell(i).to_owned()))
        .collect();
    tags.sort();
    Ok(Row {
        measurement: cell(measurement_i).to_owned(),
        tags,
        field: cell(field_i).to_owned(),
        value,
        time_ns,
    })
}

fn bad_csv(message: String) -> TsError {
    TsError::Unavailable(format!("InfluxDB query: unreadable CSV answer: {message}"))
}

fn parse_value(text: &str, datatype: &str) -> Result<FieldValue, TsError> {
    let bad = || bad_csv(format!("{text:?} is not a {datatype}"));
    Ok(match datatype {
        "double" => FieldValue::Float(match text {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            _ => text.parse().map_err(|_| bad())?,
        }),
        "long" => FieldValue::Int(text.parse().map_err(|_| bad())?),
        "unsignedLong" => FieldValue::UInt(text.parse().map_err(|_| bad())?),
        "boolean" => FieldValue::Bool(match text {
            "true" => true,
            "false" => false,
            _ => return Err(bad()),
        }),
        _ => FieldValue::Str(text.to_owned()),
    })
}

fn parse_rfc3339_ns(text: &str) -> Result<i64, TsError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .ok_or_else(|| bad_csv(format!("{text:?} is not an RFC 3339 time")))
}

/// RFC 4180 records: commas, double-quoted cells with `""` escapes and line breaks inside,
/// `\n` or `\r\n` line ends. A blank line is one record with one empty cell.
struct CsvRecords<'a> {
    rest: &'a str,
}

impl<'a> CsvRecords<'a> {
    fn new(text: &'a str) -> Self {
        Self { rest: text }
    }
}

impl Iterator for CsvRecords<'_> {
    type Item = Result<Vec<String>, TsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let mut record = Vec::new();
        let mut cell = String::new();
        let mut chars = self.rest.char_indices().peekable();
        let mut quoted = false;
        let mut at_cell_start = true;
        while let Some((i, c)) = chars.next() {
            if quoted {
                if c == '"' {
                    if chars.peek().map(|(_, n)| *n) == Some('"') {
                        chars.next();
                        cell.push('"');
                    } else {
                        quoted = false;
                    }
                } else {
                    cell.push(c);
                }
                continue;
            }
            match c {
                '"' if at_cell_start => {
                    quoted = true;
                    at_cell_start = false;
                }
                ',' => {
                    record.push(std::mem::take(&mut cell));
                    at_cell_start = true;
                }
                '\n' => {
                    record.push(std::mem::take(&mut cell));
                    self.rest = &self.rest[i + 1..];
                    return Some(Ok(record));
                }
                '\r' if chars.peek().map(|(_, n)| *n) == Some('\n') => {}
                _ => {
                    cell.push(c);
                    at_cell_start = false;
                }
            }
        }
        self.rest = "";
        if quoted {
            return Some(Err(bad_csv("unterminated quoted cell".into())));
        }
        record.push(cell);
        Some(Ok(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flux_strings_cannot_escape_their_quotes() {
        assert_eq!(flux_string("plain"), r#""plain""#);
        assert_eq!(
            flux_string("a\"b\\c\nd\re\tf${g}$h"),
            r#""a\"b\\c\nd\re\tf\${g}$h""#
        );
        // A value trying to close the literal and add a clause stays one literal.
        assert_eq!(
            flux_string(r#"x") or true or (r.a == "y"#),
            r#""x\") or true or (r.a == \"y""#
        );
    }

    #[test]
    fn flux_query_text() {
        let query = Query {
            bucket: "b\"1".into(),
            measurement: "cpu".into(),
            tags: vec![("host".into(), "a\nb".into())],
            fields: vec!["usage".into(), "idle".into()],
            start_ns: 1,
            stop_ns: 2,
            limit: Some(10),
        };
        assert_eq!(
            flux_query(&query),
            "from(bucket: \"b\\\"1\")\n  |> range(start: time(v: 1), stop: time(v: 2))\n  |> filter(fn: (r) => r._measurement == \"cpu\")\n  |> filter(fn: (r) => r[\"host\"] == \"a\\nb\")\n  |> filter(fn: (r) => r._field == \"usage\" or r._field == \"idle\")\n  |> limit(n: 10)\n"
        );
    }

    const CSV: &str = "#group,false,false,true,true,false,false,true,true,true\r\n\
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string\r\n\
#default,_result,,,,,,,,\r\n\
,result,table,_start,_stop,_time,_value,_field,_measurement,host\r\n\
,,0,2023-11-30T00:00:00Z,2023-12-01T00:00:00Z,2023-11-30T14:50:04.520099Z,1.5,usage,cpu,\"a,\"\"b\"\"\"\r\n\
,,0,2023-11-30T00:00:00Z,2023-12-01T00:00:00Z,2023-11-30T14:50:05Z,2,usage,cpu,\"a,\"\"b\"\"\"\r\n\
\r\n\
#group,false,false,true,true,false,false,true,true\r\n\
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,string,string,string\r\n\
#default,_result,,,,,,,\r\n\
,result,table,_start,_stop,_time,_value,_field,_measurement\r\n\
,,1,2023-11-30T00:00:00Z,2023-12-01T00:00:00Z,2023-11-30T14:50:04Z,\"two\nlines\",phase,pods\r\n\
\r\n";

    #[test]
    fn annotated_csv_becomes_rows() {
        let rows = parse_annotated_csv(CSV).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].measurement, "cpu");
        assert_eq!(rows[0].tags, vec![("host".into(), "a,\"b\"".into())]);
        assert_eq!(rows[0].field, "usage");
        assert_eq!(rows[0].value, FieldValue::Float(1.5));
        assert_eq!(rows[0].time_ns, 1_701_355_804_520_099_000);
        assert_eq!(rows[1].value, FieldValue::Float(2.0));
        assert_eq!(rows[2].value, FieldValue::Str("two\nlines".into()));
        assert!(rows[2].tags.is_empty());
    }

    #[test]
    fn error_tables_and_garbage_are_errors() {
        let error = "#datatype,string,string\n#group,true,true\n#default,,\n,error,reference\n,\"failed to parse\",897\n";
        assert!(
            matches!(parse_annotated_csv(error), Err(TsError::Invalid(m)) if m.contains("failed to parse"))
        );
        let bad_number = CSV.replace(",1.5,", ",x,");
        assert!(matches!(
            parse_annotated_csv(&bad_number),
            Err(TsError::Unavailable(_))
        ));
        assert!(parse_annotated_csv("#datatype,string\n,\"open").is_err());
        assert!(parse_annotated_csv("").unwrap().is_empty());
    }

    #[test]
    fn urls_and_debug() {
        assert!(InfluxDb2::new("nope", "o", "t").is_err());
        assert!(InfluxDb2::new("http://x:8086", "", "t").is_err());
        let store = InfluxDb2::new("http://127.0.0.1:8086", "org", "s3cret").unwrap();
        assert!(!format!("{store:?}").contains("s3cret"));
    }
}

//! S3 XML bodies, free of I/O: the response documents the gateway writes, the request documents
//! it parses (CreateBucket, CompleteMultipartUpload, DeleteObjects) and the ListObjects v1/v2
//! pagination logic (start point, common-prefix roll-up, truncation, continuation tokens).
//!
//! Writers follow the AWS element names and order; every document starts with the XML
//! declaration and carries the S3 namespace on its root. Timestamps are ISO 8601 with
//! milliseconds (`2026-11-23T10:00:00.000Z`), ETags are written quoted.
//!
//! `encoding-type=url`: keys, prefixes, delimiter and markers are percent-encoded as UTF-8 bytes,
//! keeping only `A-Z a-z 0-9 - . _ ~ /` literal; a space is `%20` (never `+`) and `+` is `%2B`,
//! so both plus-aware decoders (boto3's `unquote_plus`, Java's `URLDecoder`) and plain percent
//! decoders read the original key back.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use quick_xml::Reader;
use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::{BytesRef, BytesStart, Event};

use crate::s3::error::escape;
use crate::s3::{S3Error, S3ErrorCode};

/// The S3 namespace carried by the root of every response document.
pub const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
/// The most keys one ListObjects page returns (and the default).
pub const MAX_LIST_KEYS: usize = 1000;
/// The most objects one DeleteObjects request may name.
pub const MAX_DELETE_KEYS: usize = 1000;
/// Part numbers run from 1 to this, so a CompleteMultipartUpload lists at most this many parts.
pub const MAX_PART_NUMBER: u32 = 10_000;

const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
const MALFORMED_XML: &str =
    "The XML you provided was not well-formed or did not validate against our published schema";
const BAD_TOKEN: &str = "The continuation token provided is incorrect";

/// Owner / initiator of buckets, objects and uploads (`<ID>`, `<DisplayName>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Owner {
    pub id: String,
    pub display_name: String,
}

// ---------------------------------------------------------------------------------------------
// Formatting helpers
// ---------------------------------------------------------------------------------------------

/// Formats unix milliseconds as ISO 8601 UTC with milliseconds, as S3 listings do.
pub fn iso8601_millis(unix_ms: i64) -> String {
    const DAY_MS: i64 = 86_400_000;
    let (y, m, d) = civil_from_days(unix_ms.div_euclid(DAY_MS));
    let ms = unix_ms.rem_euclid(DAY_MS);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Everything but the RFC 3986 unreserved characters and `/` is percent-encoded.
const URL_KEY_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// Percent-encodes a key for `encoding-type=url` (see the module documentation).
pub fn url_encode_key(key: &str) -> String {
    utf8_percent_encode(key, URL_KEY_SET).to_string()
}

/// The quoted ETag as element text (`&quot;<hex>&quot;`); quotes left on are not doubled.
fn quoted_etag(etag: &str) -> String {
    let bare = etag.strip_prefix('"').unwrap_or(etag);
    let bare = bare.strip_suffix('"').unwrap_or(bare);
    escape(&format!("\"{bare}\""))
}

/// A small writer: elements are appended in call order, text is escaped by the caller's choice.
struct Xml {
    out: String,
    root: &'static str,
}

impl Xml {
    fn root(root: &'static str) -> Self {
        let mut out = String::with_capacity(512);
        out.push_str(XML_DECL);
        out.push('<');
        out.push_str(root);
        out.push_str(" xmlns=\"");
        out.push_str(S3_NAMESPACE);
        out.push_str("\">");
        Self { out, root }
    }

    fn open(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    /// An element whose text is already safe XML (escaped, percent-encoded or a number).
    fn raw(&mut self, name: &str, safe: &str) {
        self.open(name);
        self.out.push_str(safe);
        self.close(name);
    }

    /// An element with arbitrary text, escaped (`escape` writes CR as `&#13;`, as AWS does).
    fn text(&mut self, name: &str, text: &str) {
        self.raw(name, &escape(text));
    }

    /// A key-like element: percent-encoded with `encoding-type=url`, escaped otherwise.
    fn key(&mut self, name: &str, key: &str, url: bool) {
        if url {
            // Percent-encoded output holds no XML special characters, escaping is a no-op.
            self.raw(name, &url_encode_key(key));
        } else {
            self.text(name, key);
        }
    }

    fn display(&mut self, name: &str, value: impl std::fmt::Display) {
        self.raw(name, &value.to_string());
    }

    fn owner(&mut self, name: &str, owner: &Owner) {
        self.open(name);
        self.text("ID", &owner.id);
        self.text("DisplayName", &owner.display_name);
        self.close(name);
    }

    fn finish(mut self) -> String {
        let root = self.root;
        self.close(root);
        self.out
    }
}

// ---------------------------------------------------------------------------------------------
// Writers
// ---------------------------------------------------------------------------------------------

/// ListBuckets: `ListAllMyBucketsResult` with the owner and `(name, created unix ms)` buckets.
pub fn list_buckets<S: AsRef<str>>(owner: &Owner, buckets: &[(S, i64)]) -> String {
    let mut x = Xml::root("ListAllMyBucketsResult");
    x.owner("Owner", owner);
    x.open("Buckets");
    for (name, created_ms) in buckets {
        x.open("Bucket");
        x.text("Name", name.as_ref());
        x.raw("CreationDate", &iso8601_millis(*created_ms));
        x.close("Bucket");
    }
    x.close("Buckets");
    x.finish()
}

/// GetBucketLocation: `LocationConstraint`, empty for the default region (as AWS for us-east-1).
pub fn location_constraint(location: Option<&str>) -> String {
    let mut out = String::from(XML_DECL);
    out.push_str("<LocationConstraint xmlns=\"");
    out.push_str(S3_NAMESPACE);
    out.push_str("\">");
    out.push_str(&escape(location.unwrap_or("")));
    out.push_str("</LocationConstraint>");
    out
}

fn list_contents(x: &mut Xml, page: &ListPage, url: bool, owner: Option<&Owner>) {
    for entry in &page.contents {
        x.open("Contents");
        x.key("Key", &entry.key, url);
        x.raw("LastModified", &iso8601_millis(entry.last_modified_ms));
        x.raw("ETag", &quoted_etag(&entry.etag));
        x.display("Size", entry.size);
        if let Some(owner) = owner {
            x.owner("Owner", owner);
        }
        x.raw("StorageClass", "STANDARD");
        x.close("Contents");
    }
    for prefix in &page.common_prefixes {
        x.open("CommonPrefixes");
        x.key("Prefix", prefix, url);
        x.close("CommonPrefixes");
    }
}

fn delimiter(req: &ListRequest) -> Option<&str> {
    req.delimiter.as_deref().filter(|d| !d.is_empty())
}

/// ListObjects (v1): `ListBucketResult` with Marker / NextMarker; objects always carry Owner.
pub fn list_objects_v1(page: &ListPage, req: &ListRequest, owner: &Owner) -> String {
    let url = req.encoding_url;
    let mut x = Xml::root("ListBucketResult");
    x.text("Name", &req.bucket);
    x.key("Prefix", &req.prefix, url);
    x.key("Marker", req.start_after.as_deref().unwrap_or(""), url);
    if let Some(next) = &page.next_marker {
        x.key("NextMarker", next, url);
    }
    x.display("MaxKeys", req.max_keys);
    if let Some(d) = delimiter(req) {
        x.key("Delimiter", d, url);
    }
    if url {
        x.raw("EncodingType", "url");
    }
    x.display("IsTruncated", page.is_truncated);
    list_contents(&mut x, page, url, Some(owner));
    x.finish()
}

/// ListObjectsV2: `ListBucketResult` with ContinuationToken / NextContinuationToken /
/// StartAfter and KeyCount (objects plus common prefixes); Owner only with `fetch-owner=true`.
pub fn list_objects_v2(page: &ListPage, req: &ListRequest, owner: &Owner) -> String {
    let url = req.encoding_url;
    let mut x = Xml::root("ListBucketResult");
    x.text("Name", &req.bucket);
    x.key("Prefix", &req.prefix, url);
    if let Some(token) = &req.continuation_token {
        x.text("ContinuationToken", token);
    }
    if let Some(next) = &page.next_continuation_token {
        x.text("NextContinuationToken", next);
    }
    if let Some(start_after) = &req.start_after {
        x.key("StartAfter", start_after, url);
    }
    x.display("KeyCount", page.contents.len() + page.common_prefixes.len());
    x.display("MaxKeys", req.max_keys);
    if let Some(d) = delimiter(req) {
        x.key("Delimiter", d, url);
    }
    if url {
        x.raw("EncodingType", "url");
    }
    x.display("IsTruncated", page.is_truncated);
    list_contents(&mut x, page, url, req.fetch_owner.then_some(owner));
    x.finish()
}

/// ListObjects v1 or v2, as the request asked.
pub fn list_objects(page: &ListPage, req: &ListRequest, owner: &Owner) -> String {
    if req.v2 {
        list_objects_v2(page, req, owner)
    } else {
        list_objects_v1(page, req, owner)
    }
}

/// CreateMultipartUpload: `InitiateMultipartUploadResult`.
pub fn initiate_multipart_upload(bucket: &str, key: &str, upload_id: &str) -> String {
    let mut x = Xml::root("InitiateMultipartUploadResult");
    x.text("Bucket", bucket);
    x.text("Key", key);
    x.text("UploadId", upload_id);
    x.finish()
}

/// CompleteMultipartUpload: `CompleteMultipartUploadResult` (ETag unquoted, e.g. `<hex>-N`).
pub fn complete_multipart_upload(location: &str, bucket: &str, key: &str, etag: &str) -> String {
    let mut x = Xml::root("CompleteMultipartUploadResult");
    x.text("Location", location);
    x.text("Bucket", bucket);
    x.text("Key", key);
    x.raw("ETag", &quoted_etag(etag));
    x.finish()
}

fn copy_result(root: &'static str, etag: &str, last_modified_ms: i64) -> String {
    let mut x = Xml::root(root);
    x.raw("LastModified", &iso8601_millis(last_modified_ms));
    x.raw("ETag", &quoted_etag(etag));
    x.finish()
}

/// CopyObject: `CopyObjectResult`.
pub fn copy_object_result(etag: &str, last_modified_ms: i64) -> String {
    copy_result("CopyObjectResult", etag, last_modified_ms)
}

/// UploadPartCopy: `CopyPartResult`.
pub fn copy_part_result(etag: &str, last_modified_ms: i64) -> String {
    copy_result("CopyPartResult", etag, last_modified_ms)
}

/// One uploaded part, as ListParts shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartEntry {
    pub part_number: u32,
    pub last_modified_ms: i64,
    /// Unquoted.
    pub etag: String,
    pub size: u64,
}

/// The content of a ListParts response.
#[derive(Debug, Clone, Copy)]
pub struct ListPartsBody<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub upload_id: &'a str,
    /// Initiator and owner of the upload.
    pub owner: &'a Owner,
    /// The `part-number-marker` of the request (0 when absent).
    pub part_number_marker: u32,
    /// The last part number of this page (0 when empty): the next request's marker.
    pub next_part_number_marker: u32,
    pub max_parts: usize,
    pub is_truncated: bool,
    pub parts: &'a [PartEntry],
}

/// ListParts: `ListPartsResult`.
pub fn list_parts(body: &ListPartsBody<'_>) -> String {
    let mut x = Xml::root("ListPartsResult");
    x.text("Bucket", body.bucket);
    x.text("Key", body.key);
    x.text("UploadId", body.upload_id);
    x.owner("Initiator", body.owner);
    x.owner("Owner", body.owner);
    x.raw("StorageClass", "STANDARD");
    x.display("PartNumberMarker", body.part_number_marker);
    x.display("NextPartNumberMarker", body.next_part_number_marker);
    x.display("MaxParts", body.max_parts);
    x.display("IsTruncated", body.is_truncated);
    for part in body.parts {
        x.open("Part");
        x.display("PartNumber", part.part_number);
        x.raw("LastModified", &iso8601_millis(part.last_modified_ms));
        x.raw("ETag", &quoted_etag(&part.etag));
        x.display("Size", part.size);
        x.close("Part");
    }
    x.finish()
}

/// One in-progress multipart upload, as ListMultipartUploads shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadEntry {
    pub key: String,
    pub upload_id: String,
    pub initiated_ms: i64,
}

/// The content of a ListMultipartUploads response.
#[derive(Debug, Clone, Copy)]
pub struct ListUploadsBody<'a> {
    pub bucket: &'a str,
    /// Initiator and owner of every upload.
    pub owner: &'a Owner,
    pub key_marker: &'a str,
    pub upload_id_marker: &'a str,
    pub next_key_marker: &'a str,
    pub next_upload_id_marker: &'a str,
    pub prefix: &'a str,
    pub delimiter: Option<&'a str>,
    pub max_uploads: usize,
    pub is_truncated: bool,
    pub encoding_url: bool,
    pub uploads: &'a [UploadEntry],
    pub common_prefixes: &'a [String],
}

/// ListMultipartUploads: `ListMultipartUploadsResult`.
pub fn list_multipart_uploads(body: &ListUploadsBody<'_>) -> String {
    let url = body.encoding_url;
    let mut x = Xml::root("ListMultipartUploadsResult");
    x.text("Bucket", body.bucket);
    x.key("KeyMarker", body.key_marker, url);
    x.text("UploadIdMarker", body.upload_id_marker);
    x.key("NextKeyMarker", body.next_key_marker, url);
    x.text("NextUploadIdMarker", body.next_upload_id_marker);
    if let Some(d) = body.delimiter.filter(|d| !d.is_empty()) {
        x.key("Delimiter", d, url);
    }
    x.key("Prefix", body.prefix, url);
    x.display("MaxUploads", body.max_uploads);
    if url {
        x.raw("EncodingType", "url");
    }
    x.display("IsTruncated", body.is_truncated);
    for upload in body.uploads {
        x.open("Upload");
        x.key("Key", &upload.key, url);
        x.text("UploadId", &upload.upload_id);
        x.owner("Initiator", body.owner);
        x.owner("Owner", body.owner);
        x.raw("StorageClass", "STANDARD");
        x.raw("Initiated", &iso8601_millis(upload.initiated_ms));
        x.close("Upload");
    }
    for prefix in body.common_prefixes {
        x.open("CommonPrefixes");
        x.key("Prefix", prefix, url);
        x.close("CommonPrefixes");
    }
    x.finish()
}

/// DeleteObjects: `DeleteResult`; in quiet mode only the errors are listed (as AWS).
/// `errors` are `(key, code, message)`.
pub fn delete_result<S: AsRef<str>>(
    deleted: &[S],
    errors: &[(String, S3ErrorCode, String)],
    quiet: bool,
) -> String {
    let mut x = Xml::root("DeleteResult");
    if !quiet {
        for key in deleted {
            x.open("Deleted");
            x.text("Key", key.as_ref());
            x.close("Deleted");
        }
    }
    for (key, code, message) in errors {
        x.open("Error");
        x.text("Key", key);
        x.raw("Code", code.as_str());
        x.text("Message", message);
        x.close("Error");
    }
    x.finish()
}

// ---------------------------------------------------------------------------------------------
// Parsers
// ---------------------------------------------------------------------------------------------

fn malformed() -> S3Error {
    S3Error::new(S3ErrorCode::MalformedXML, MALFORMED_XML)
}

/// Our documents nest three levels; anything deeper is not one of them.
const MAX_DEPTH: usize = 8;

/// A parsed element: local name (namespace prefix dropped), its text and its child elements.
#[derive(Debug, Default)]
struct Element {
    name: String,
    text: String,
    children: Vec<Element>,
}

impl Element {
    /// The text of an element that must hold text only.
    fn leaf_text(&self) -> Result<&str, S3Error> {
        if self.children.is_empty() {
            Ok(&self.text)
        } else {
            Err(malformed())
        }
    }
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn trim_xml(text: &str) -> &str {
    text.trim_matches(is_xml_space)
}

fn set_once<T>(slot: &mut Option<T>, value: T) -> Result<(), S3Error> {
    if slot.is_some() {
        return Err(malformed());
    }
    *slot = Some(value);
    Ok(())
}

/// Parses a whole document into a tree of at most `max_elements` elements whose root must be
/// named `root`. Well-formedness is checked (tags matched, one root, no stray text, known
/// entities, UTF-8); DTDs are refused so no entity can be declared or expanded.
fn parse_document(body: &[u8], root: &str, max_elements: usize) -> Result<Element, S3Error> {
    let text = std::str::from_utf8(body).map_err(|_| malformed())?;
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut document: Option<Element> = None;
    let mut elements = 0usize;
    loop {
        match reader.read_event().map_err(|_| malformed())? {
            Event::Start(start) => {
                let element = open_element(&start, &stack, &document, &mut elements, max_elements)?;
                stack.push(element);
            }
            Event::Empty(start) => {
                let element = open_element(&start, &stack, &document, &mut elements, max_elements)?;
                close_element(element, &mut stack, &mut document)?;
            }
            Event::End(_) => {
                let element = stack.pop().ok_or_else(malformed)?;
                close_element(element, &mut stack, &mut document)?;
            }
            Event::Text(t) => push_text(&mut stack, &t.xml10_content().map_err(|_| malformed())?)?,
            Event::CData(c) => push_text(&mut stack, &c.xml10_content().map_err(|_| malformed())?)?,
            Event::GeneralRef(r) => push_text(&mut stack, &resolve_reference(&r)?)?,
            Event::DocType(_) => return Err(malformed()),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(malformed());
    }
    match document {
        Some(document) if document.name == root => Ok(document),
        _ => Err(malformed()),
    }
}

fn open_element(
    start: &BytesStart<'_>,
    stack: &[Element],
    document: &Option<Element>,
    elements: &mut usize,
    max_elements: usize,
) -> Result<Element, S3Error> {
    // A second root, too deep or too many elements: not one of our documents.
    if (stack.is_empty() && document.is_some()) || stack.len() >= MAX_DEPTH {
        return Err(malformed());
    }
    *elements += 1;
    if *elements > max_elements {
        return Err(malformed());
    }
    // Attributes (the namespace declaration) are ignored but must be well-formed.
    for attribute in start.attributes() {
        attribute.map_err(|_| malformed())?;
    }
    let local = start.local_name();
    let name = std::str::from_utf8(local.as_ref()).map_err(|_| malformed())?;
    Ok(Element {
        name: name.to_owned(),
        ..Element::default()
    })
}

fn close_element(
    element: Element,
    stack: &mut [Element],
    document: &mut Option<Element>,
) -> Result<(), S3Error> {
    // Mixed content (text beside child elements) is in none of the S3 schemas.
    if !element.children.is_empty() && !trim_xml(&element.text).is_empty() {
        return Err(malformed());
    }
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *document = Some(element),
    }
    Ok(())
}

fn push_text(stack: &mut [Element], text: &str) -> Result<(), S3Error> {
    match stack.last_mut() {
        Some(element) => element.text.push_str(text),
        // Outside the root only whitespace may appear.
        None if trim_xml(text).is_empty() => {}
        None => return Err(malformed()),
    }
    Ok(())
}

/// `&#x0D;` / `&#13;` character references and the five predefined entities.
fn resolve_reference(reference: &BytesRef<'_>) -> Result<Cow<'static, str>, S3Error> {
    if let Some(c) = reference.resolve_char_ref().map_err(|_| malformed())? {
        return Ok(Cow::Owned(c.to_string()));
    }
    let name = reference.decode().map_err(|_| malformed())?;
    resolve_xml_entity(&name)
        .map(Cow::Borrowed)
        .ok_or_else(malformed)
}

/// CreateBucket body: the `LocationConstraint` of a `CreateBucketConfiguration`; an empty body
/// or an empty constraint means none (the default region).
pub fn parse_create_bucket(body: &[u8]) -> Result<Option<String>, S3Error> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(None);
    }
    // Room for the optional Location, Bucket and Tags sections.
    let root = parse_document(body, "CreateBucketConfiguration", 1024)?;
    let mut location = None;
    for child in &root.children {
        if child.name == "LocationConstraint" {
            set_once(&mut location, trim_xml(child.leaf_text()?).to_owned())?;
        }
    }
    Ok(location.filter(|l| !l.is_empty()))
}

/// One part named by a CompleteMultipartUpload request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    pub part_number: u32,
    /// With its quotes stripped.
    pub etag: String,
    /// `(element name, value)`, e.g. `("ChecksumCRC32", "AAAAAA==")`.
    pub checksums: Vec<(String, String)>,
}

fn parse_part_number(text: &str) -> Result<u32, S3Error> {
    let text = trim_xml(text);
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    // Digits that overflow are out of range too.
    match text.parse::<u32>() {
        Ok(n) if (1..=MAX_PART_NUMBER).contains(&n) => Ok(n),
        _ => Err(S3Error::new(
            S3ErrorCode::InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive",
        )),
    }
}

/// CompleteMultipartUpload body: 1 to 10000 parts in strictly ascending part order
/// (InvalidPartOrder otherwise); part numbers outside 1..=10000 are InvalidArgument.
pub fn parse_complete_multipart(body: &[u8]) -> Result<Vec<CompletedPart>, S3Error> {
    // Part, PartNumber, ETag and up to five checksums per part, plus slack.
    let root = parse_document(
        body,
        "CompleteMultipartUpload",
        10 * MAX_PART_NUMBER as usize,
    )?;
    let mut parts: Vec<CompletedPart> = Vec::new();
    for child in root.children.iter().filter(|c| c.name == "Part") {
        if parts.len() >= MAX_PART_NUMBER as usize {
            return Err(malformed());
        }
        let mut part_number = None;
        let mut etag = None;
        let mut checksums: Vec<(String, String)> = Vec::new();
        for field in &child.children {
            let name = field.name.as_str();
            if name == "PartNumber" {
                set_once(&mut part_number, parse_part_number(field.leaf_text()?)?)?;
            } else if name == "ETag" {
                let text = trim_xml(field.leaf_text()?);
                let text = text.strip_prefix('"').unwrap_or(text);
                let text = text.strip_suffix('"').unwrap_or(text);
                set_once(&mut etag, text.to_owned())?;
            } else if name.starts_with("Checksum") {
                if checksums.iter().any(|(n, _)| n == name) {
                    return Err(malformed());
                }
                checksums.push((name.to_owned(), trim_xml(field.leaf_text()?).to_owned()));
            }
        }
        parts.push(CompletedPart {
            part_number: part_number.ok_or_else(malformed)?,
            etag: etag.ok_or_else(malformed)?,
            checksums,
        });
    }
    if parts.is_empty() {
        return Err(malformed());
    }
    if parts
        .windows(2)
        .any(|w| matches!(w, [a, b] if b.part_number <= a.part_number))
    {
        return Err(S3Error::new(
            S3ErrorCode::InvalidPartOrder,
            "The list of parts was not in ascending order. Parts must be ordered by part number.",
        ));
    }
    Ok(parts)
}

/// A DeleteObjects request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteRequest {
    pub quiet: bool,
    /// `(key, version id)` in request order; keys are kept exactly (no trimming, may be empty:
    /// the caller reports per-key errors).
    pub objects: Vec<(String, Option<String>)>,
}

fn parse_bool(text: &str) -> Result<bool, S3Error> {
    let text = trim_xml(text);
    if text.eq_ignore_ascii_case("true") || text == "1" {
        Ok(true)
    } else if text.eq_ignore_ascii_case("false") || text == "0" {
        Ok(false)
    } else {
        Err(malformed())
    }
}

/// DeleteObjects body: `Delete` with 1 to 1000 `Object`s and an optional `Quiet`.
pub fn parse_delete(body: &[u8]) -> Result<DeleteRequest, S3Error> {
    let root = parse_document(body, "Delete", 16 * MAX_DELETE_KEYS)?;
    let mut quiet = None;
    let mut objects = Vec::new();
    for child in &root.children {
        match child.name.as_str() {
            "Quiet" => set_once(&mut quiet, parse_bool(child.leaf_text()?)?)?,
            "Object" => {
                if objects.len() >= MAX_DELETE_KEYS {
                    return Err(malformed());
                }
                let mut key = None;
                let mut version = None;
                for field in &child.children {
                    match field.name.as_str() {
                        "Key" => set_once(&mut key, field.leaf_text()?.to_owned())?,
                        "VersionId" => {
                            set_once(&mut version, trim_xml(field.leaf_text()?).to_owned())?;
                        }
                        // ETag / LastModifiedTime / Size (conditional deletes) are not enforced.
                        _ => {}
                    }
                }
                let key = key.ok_or_else(malformed)?;
                objects.push((key, version.filter(|v| !v.is_empty())));
            }
            _ => {}
        }
    }
    if objects.is_empty() {
        return Err(malformed());
    }
    Ok(DeleteRequest {
        quiet: quiet.unwrap_or(false),
        objects,
    })
}

// ---------------------------------------------------------------------------------------------
// Listing
// ---------------------------------------------------------------------------------------------

/// A ListObjects (v1) or ListObjectsV2 request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    pub bucket: String,
    pub prefix: String,
    /// None when absent or empty.
    pub delimiter: Option<String>,
    /// Clamped to 0..=1000, default 1000.
    pub max_keys: usize,
    /// v2 `start-after` or v1 `marker` (None when absent or empty).
    pub start_after: Option<String>,
    /// v2 only, as sent (echoed in the response); decodes with [`decode_continuation_token`].
    pub continuation_token: Option<String>,
    pub encoding_url: bool,
    pub v2: bool,
    pub fetch_owner: bool,
}

impl ListRequest {
    /// A request listing the whole bucket, 1000 keys a page.
    pub fn new(bucket: &str, v2: bool) -> Self {
        Self {
            bucket: bucket.to_owned(),
            prefix: String::new(),
            delimiter: None,
            max_keys: MAX_LIST_KEYS,
            start_after: None,
            continuation_token: None,
            encoding_url: false,
            v2,
            fetch_owner: false,
        }
    }
}

/// An object as listings show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEntry {
    pub key: String,
    pub size: u64,
    /// Unquoted.
    pub etag: String,
    pub last_modified_ms: i64,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListPage {
    pub contents: Vec<ObjectEntry>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// v1, truncated, with a delimiter (AWS only returns NextMarker then; without a delimiter
    /// clients continue from the last key).
    pub next_marker: Option<String>,
    /// v2, truncated.
    pub next_continuation_token: Option<String>,
}

fn invalid_argument(message: &str) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidArgument, message)
}

/// The opaque continuation token of a listing resuming after `last` (key or common prefix).
/// URL-safe base64 so that clients that forget to encode it still send it intact.
pub fn encode_continuation_token(last: &str) -> String {
    URL_SAFE_NO_PAD.encode(last.as_bytes())
}

/// The key or common prefix a continuation token resumes after.
pub fn decode_continuation_token(token: &str) -> Result<String, S3Error> {
    if token.is_empty() {
        return Err(invalid_argument(BAD_TOKEN));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token.as_bytes())
        .map_err(|_| invalid_argument(BAD_TOKEN))?;
    String::from_utf8(bytes).map_err(|_| invalid_argument(BAD_TOKEN))
}

/// Builds a listing request from query parameters (already percent-decoded pairs): v1 without
/// `list-type`, v2 with `list-type=2`. Bad list-type, max-keys (not a number, negative, above
/// 2^31-1), encoding-type or continuation token -> InvalidArgument.
pub fn list_request(bucket: &str, query: &[(String, String)]) -> Result<ListRequest, S3Error> {
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let non_empty = |name: &str| get(name).filter(|v| !v.is_empty()).map(str::to_owned);
    let v2 = match get("list-type") {
        None => false,
        Some("2") => true,
        Some(_) => return Err(invalid_argument("Invalid List Type specified")),
    };
    let max_keys = match get("max-keys") {
        None => MAX_LIST_KEYS,
        Some(value) => {
            let n: i64 = value.trim().parse().map_err(|_| {
                invalid_argument("Provided max-keys not an integer or within integer range")
            })?;
            if !(0..=i64::from(i32::MAX)).contains(&n) {
                return Err(invalid_argument(
                    "Argument maxKeys must be an integer between 0 and 2147483647",
                ));
            }
            usize::try_from(n).map_or(MAX_LIST_KEYS, |n| n.min(MAX_LIST_KEYS))
        }
    };
    let encoding_url = match get("encoding-type") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("url") => true,
        Some(_) => {
            return Err(invalid_argument(
                "Invalid Encoding Method specified in Request",
            ));
        }
    };
    let continuation_token = if v2 {
        get("continuation-token").map(str::to_owned)
    } else {
        None
    };
    if let Some(token) = &continuation_token {
        decode_continuation_token(token)?;
    }
    Ok(ListRequest {
        bucket: bucket.to_owned(),
        prefix: get("prefix").unwrap_or("").to_owned(),
        delimiter: non_empty("delimiter"),
        max_keys,
        start_after: non_empty(if v2 { "start-after" } else { "marker" }),
        continuation_token,
        encoding_url,
        v2,
        fetch_owner: v2 && get("fetch-owner").is_some_and(|v| v.eq_ignore_ascii_case("true")),
    })
}

/// The common prefix `key` rolls up into: prefix + everything up to and including the first
/// delimiter after the prefix.
fn common_prefix_of<'k>(req: &ListRequest, key: &'k str) -> Option<&'k str> {
    let delimiter = delimiter(req)?;
    let rest = key.strip_prefix(req.prefix.as_str())?;
    let at = rest.find(delimiter)?;
    key.get(..req.prefix.len() + at + delimiter.len())
}

/// The smallest string greater than every string that starts with `prefix` (None when no
/// string is: empty prefix, or only U+10FFFF). Appending U+10FFFF is not enough (`p` +
/// U+10FFFF U+10FFFF is greater); instead the last character that has a successor is
/// incremented and the rest dropped: UTF-8 byte order is code point order, so this bounds all
/// of `p*` and nothing smaller does.
pub fn skip_past(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The largest of start-after / marker and the decoded continuation token (None when neither).
/// A token that does not decode is ignored here: [`list_request`] has refused it already.
fn start_marker(req: &ListRequest) -> Option<String> {
    let token = req
        .continuation_token
        .as_deref()
        .and_then(|t| decode_continuation_token(t).ok());
    match (req.start_after.clone(), token) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// (lower bound, exclusive, common prefix of the marker already listed).
fn start_point(req: &ListRequest) -> (String, bool, Option<String>) {
    let Some(marker) = start_marker(req) else {
        return (req.prefix.clone(), false, None);
    };
    // A marker inside a rolled-up prefix (a previous page's NextMarker, or any key below it):
    // that prefix was listed already, resume after all of it (as AWS / Ceph RGW do).
    if let Some(cp) = common_prefix_of(req, &marker) {
        return match skip_past(cp) {
            Some(next) => (next, false, Some(cp.to_owned())),
            None => (cp.to_owned(), true, Some(cp.to_owned())),
        };
    }
    if marker.as_str() >= req.prefix.as_str() {
        (marker, true, None)
    } else {
        (req.prefix.clone(), false, None)
    }
}

/// The first key to read from the sorted store: the largest of the prefix, start-after /
/// marker and the decoded continuation token. With `exclusive` the bound itself is skipped
/// (`bound + "\0"` is the equivalent inclusive bound).
pub fn where_to_start(req: &ListRequest) -> (String, bool) {
    let (lower, exclusive, _) = start_point(req);
    (lower, exclusive)
}

/// What the walker wants next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalkStep {
    /// Feed the following key.
    Next,
    /// Keys below this bound roll up into a common prefix already listed: the caller may seek
    /// to it (inclusive); feeding them anyway is harmless.
    SeekTo(String),
    /// The page is complete; call [`ListWalker::finish`].
    Done,
}

/// Builds one listing page from keys fed in ascending order, letting the caller seek past
/// rolled-up prefixes. [`paginate`] drives it from an iterator.
#[derive(Debug)]
pub struct ListWalker<'r> {
    req: &'r ListRequest,
    lower: String,
    exclusive: bool,
    marker_prefix: Option<String>,
    page: ListPage,
    /// The greatest key or common prefix in the page: what the next page resumes after.
    last: Option<String>,
    done: bool,
}

impl<'r> ListWalker<'r> {
    pub fn new(req: &'r ListRequest) -> Self {
        let (lower, exclusive, marker_prefix) = start_point(req);
        Self {
            req,
            lower,
            exclusive,
            marker_prefix,
            page: ListPage::default(),
            last: None,
            // max-keys=0: an empty page, not truncated (as AWS).
            done: req.max_keys == 0,
        }
    }

    /// Where to start reading (see [`where_to_start`]).
    pub fn start(&self) -> (&str, bool) {
        (&self.lower, self.exclusive)
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    fn is_full(&self) -> bool {
        self.page.contents.len() + self.page.common_prefixes.len() >= self.req.max_keys
    }

    fn seek_past(&mut self, prefix: &str) -> WalkStep {
        match skip_past(prefix) {
            Some(next) => WalkStep::SeekTo(next),
            None => {
                self.done = true;
                WalkStep::Done
            }
        }
    }

    /// Offers the next key (ascending order).
    pub fn push(&mut self, entry: ObjectEntry) -> WalkStep {
        if self.done {
            return WalkStep::Done;
        }
        let key = entry.key.as_str();
        if key < self.lower.as_str() || (self.exclusive && key == self.lower) {
            return WalkStep::Next;
        }
        // key >= lower >= prefix: a key outside the prefix is past its whole range.
        if !key.starts_with(self.req.prefix.as_str()) {
            self.done = true;
            return WalkStep::Done;
        }
        if let Some(cp) = common_prefix_of(self.req, key) {
            let seen = self.marker_prefix.as_deref() == Some(cp)
                || self.page.common_prefixes.last().map(String::as_str) == Some(cp);
            if seen {
                let cp = cp.to_owned();
                return self.seek_past(&cp);
            }
            if self.is_full() {
                self.page.is_truncated = true;
                self.done = true;
                return WalkStep::Done;
            }
            let cp = cp.to_owned();
            self.page.common_prefixes.push(cp.clone());
            self.last = Some(cp.clone());
            return self.seek_past(&cp);
        }
        if self.is_full() {
            self.page.is_truncated = true;
            self.done = true;
            return WalkStep::Done;
        }
        self.last = Some(entry.key.clone());
        self.page.contents.push(entry);
        WalkStep::Next
    }

    /// The page, with NextMarker (v1 with a delimiter) or NextContinuationToken (v2) set when
    /// truncated.
    pub fn finish(self) -> ListPage {
        let mut page = self.page;
        if page.is_truncated
            && let Some(last) = self.last
        {
            if self.req.v2 {
                page.next_continuation_token = Some(encode_continuation_token(&last));
            } else if delimiter(self.req).is_some() {
                page.next_marker = Some(last);
            }
        }
        page
    }
}

/// Builds one page from keys in ascending order, starting at [`where_to_start`] (earlier keys
/// are skipped): stops once max-keys entries (objects plus common prefixes) are gathered and
/// one more is seen (truncated), or at the first key outside the prefix, or when the input
/// ends. Keys rolling up into a common prefix already listed are skipped.
pub fn paginate(req: &ListRequest, entries: impl IntoIterator<Item = ObjectEntry>) -> ListPage {
    let mut walker = ListWalker::new(req);
    if !walker.is_done() {
        for entry in entries {
            if walker.push(entry) == WalkStep::Done {
                break;
            }
        }
    }
    walker.finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry(key: &str) -> ObjectEntry {
        ObjectEntry {
            key: key.to_owned(),
            size: key.len() as u64,
            etag: "d41d8cd98f00b204e9800998ecf8427e".to_owned(),
            last_modified_ms: 1_795_428_000_000,
        }
    }

    fn owner() -> Owner {
        Owner {
            id: "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a".to_owned(),
            display_name: "serrano".to_owned(),
        }
    }

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn sample_keys() -> Vec<String> {
        let mut keys = Vec::new();
        for i in 0..120 {
            keys.push(format!("photos/{}/img{i:03}.jpg", 2000 + i % 6));
        }
        for i in 0..60 {
            keys.push(format!("photos/top{i:02}.jpg"));
        }
        for i in 0..40 {
            keys.push(format!("docs/{i}"));
        }
        for i in 0..30 {
            keys.push(format!("a b/é{i}/x"));
        }
        for i in 0..30 {
            keys.push(format!("z&<%/{i}"));
        }
        for k in [
            "photos",
            "photos/",
            "photos0",
            "photos/2001/",
            "photos//double",
            "日本/語",
            "\u{10FFFF}",
            "\u{10FFFF}/x",
            "\u{10FFFF}\u{10FFFF}/y",
            "ctl\u{1}/\u{7f}",
        ] {
            keys.push(k.to_owned());
        }
        keys.sort();
        keys.dedup();
        keys
    }

    /// The store: sorted entries read from a lower bound, as the metadata store does.
    fn read_from(
        keys: &[String],
        lower: &str,
        exclusive: bool,
    ) -> impl Iterator<Item = ObjectEntry> {
        let start = keys.partition_point(|k| k.as_str() < lower || (exclusive && k == lower));
        keys[start..]
            .iter()
            .map(|k| entry(k))
            .collect::<Vec<_>>()
            .into_iter()
    }

    /// Independent model of a full listing: keys and deduplicated common prefixes, in order.
    fn reference(keys: &[String], prefix: &str, delimiter: Option<&str>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for key in keys.iter().filter(|k| k.starts_with(prefix)) {
            let rest = &key[prefix.len()..];
            let item = match delimiter.and_then(|d| rest.split_once(d).map(|(head, _)| (head, d))) {
                Some((head, d)) => format!("{prefix}{head}{d}"),
                None => key.clone(),
            };
            if out.last() != Some(&item) {
                out.push(item);
            }
        }
        out
    }

    fn page_items(page: &ListPage) -> Vec<String> {
        let mut items: Vec<String> = page.contents.iter().map(|e| e.key.clone()).collect();
        items.extend(page.common_prefixes.iter().cloned());
        items.sort();
        items
    }

    fn check_page(page: &ListPage, max_keys: usize) {
        let n = page.contents.len() + page.common_prefixes.len();
        assert!(n <= max_keys);
        if page.is_truncated {
            assert_eq!(n, max_keys);
        }
        assert!(page.contents.windows(2).all(|w| w[0].key < w[1].key));
        assert!(page.common_prefixes.windows(2).all(|w| w[0] < w[1]));
    }

    #[derive(Clone, Copy)]
    enum Walk {
        Tokens,
        Markers,
        Seeking,
    }

    /// Lists every page of `keys` and returns the concatenated items.
    fn walk_all(
        keys: &[String],
        prefix: &str,
        delimiter: Option<&str>,
        max_keys: usize,
        walk: Walk,
    ) -> Vec<String> {
        let mut req = ListRequest::new("b", !matches!(walk, Walk::Markers));
        req.prefix = prefix.to_owned();
        req.delimiter = delimiter.map(str::to_owned);
        req.max_keys = max_keys;
        let mut all = Vec::new();
        for _ in 0..=keys.len() + 1 {
            let page = match walk {
                Walk::Seeking => {
                    // Drive the walker like a handler with a seekable store would.
                    let mut walker = ListWalker::new(&req);
                    let (lower, exclusive) = walker.start();
                    let mut at = keys.partition_point(|k| {
                        k.as_str() < lower || (exclusive && k.as_str() == lower)
                    });
                    while !walker.is_done() && at < keys.len() {
                        match walker.push(entry(&keys[at])) {
                            WalkStep::Next => at += 1,
                            WalkStep::SeekTo(bound) => {
                                assert!(bound.as_str() > keys[at].as_str());
                                at = keys.partition_point(|k| k.as_str() < bound.as_str());
                            }
                            WalkStep::Done => break,
                        }
                    }
                    walker.finish()
                }
                _ => {
                    let (lower, exclusive) = where_to_start(&req);
                    paginate(&req, read_from(keys, &lower, exclusive))
                }
            };
            check_page(&page, max_keys);
            let items = page_items(&page);
            all.extend(items.iter().cloned());
            if !page.is_truncated {
                assert!(page.next_continuation_token.is_none() && page.next_marker.is_none());
                return all;
            }
            match walk {
                Walk::Tokens | Walk::Seeking => {
                    let token = page.next_continuation_token.clone().unwrap();
                    assert_eq!(
                        decode_continuation_token(&token).unwrap(),
                        *items.last().unwrap()
                    );
                    req.continuation_token = Some(token);
                }
                Walk::Markers => {
                    // As boto3's paginator: NextMarker, else the last key.
                    assert_eq!(page.next_marker.is_some(), delimiter.is_some());
                    req.start_after = Some(
                        page.next_marker
                            .clone()
                            .unwrap_or_else(|| page.contents.last().unwrap().key.clone()),
                    );
                }
            }
        }
        panic!("listing did not end");
    }

    #[test]
    fn paging_lists_every_key_and_prefix_once_in_order() {
        let keys = sample_keys();
        assert!(keys.len() > 280);
        let cases: &[(&str, Option<&str>)] = &[
            ("", None),
            ("", Some("/")),
            ("photos/", Some("/")),
            ("photos/", None),
            ("photos", Some("/")),
            ("photos/20", Some("0")),
            ("", Some("/im")),
            ("a b/", Some("/")),
            ("\u{10FFFF}", Some("/")),
            ("nope/", Some("/")),
        ];
        for &(prefix, delimiter) in cases {
            let expected = reference(&keys, prefix, delimiter);
            for max_keys in [1, 2, 3, 7, 50, 1000] {
                for walk in [Walk::Tokens, Walk::Markers, Walk::Seeking] {
                    let got = walk_all(&keys, prefix, delimiter, max_keys, walk);
                    assert_eq!(
                        got, expected,
                        "prefix {prefix:?} delimiter {delimiter:?} max {max_keys}"
                    );
                }
            }
        }
    }

    #[test]
    fn first_page_shape() {
        let keys = sample_keys();
        let mut req = ListRequest::new("b", true);
        req.prefix = "photos/".to_owned();
        req.delimiter = Some("/".to_owned());
        let page = paginate(&req, read_from(&keys, "photos/", false));
        assert!(!page.is_truncated);
        assert_eq!(
            page.common_prefixes,
            [
                "photos//",
                "photos/2000/",
                "photos/2001/",
                "photos/2002/",
                "photos/2003/",
                "photos/2004/",
                "photos/2005/"
            ]
        );
        assert_eq!(page.contents.len(), 61); // "photos/" itself and top00..top59
        assert_eq!(page.contents[0].key, "photos/");
    }

    #[test]
    fn max_keys_edges() {
        let keys = sample_keys();
        let mut req = ListRequest::new("b", true);
        req.max_keys = 0;
        let page = paginate(&req, read_from(&keys, "", false));
        assert_eq!(page, ListPage::default());

        // Exactly max-keys entries left: not truncated.
        req.max_keys = 3;
        let tail = ["x1".to_owned(), "x2".to_owned(), "x3".to_owned()];
        let page = paginate(&req, read_from(&tail, "", false));
        assert!(!page.is_truncated && page.contents.len() == 3);
        // The last page holding only a rolled-up prefix already listed: not truncated.
        req.delimiter = Some("/".to_owned());
        req.max_keys = 1;
        let tail = ["d/1".to_owned(), "d/2".to_owned()];
        let page = paginate(&req, read_from(&tail, "", false));
        assert!(!page.is_truncated);
        assert_eq!(page.common_prefixes, ["d/"]);

        let mk = |v: &str| list_request("b", &query(&[("list-type", "2"), ("max-keys", v)]));
        assert_eq!(mk("0").unwrap().max_keys, 0);
        assert_eq!(mk("1").unwrap().max_keys, 1);
        assert_eq!(mk("1000").unwrap().max_keys, 1000);
        assert_eq!(mk("5000").unwrap().max_keys, 1000);
        assert_eq!(mk("2147483647").unwrap().max_keys, 1000);
        for bad in [
            "-1",
            "abc",
            "",
            "1.5",
            "2147483648",
            "99999999999999999999999",
        ] {
            assert_eq!(
                mk(bad).unwrap_err().code,
                S3ErrorCode::InvalidArgument,
                "{bad}"
            );
        }
        assert_eq!(list_request("b", &[]).unwrap().max_keys, 1000);
    }

    #[test]
    fn list_request_parses_v1_and_v2() {
        let v1 = list_request(
            "b",
            &query(&[
                ("prefix", "a/"),
                ("delimiter", "/"),
                ("marker", "a/m"),
                ("start-after", "ignored"),
                ("continuation-token", "ignored too"),
                ("encoding-type", "url"),
            ]),
        )
        .unwrap();
        assert!(!v1.v2 && v1.encoding_url && !v1.fetch_owner);
        assert_eq!(v1.start_after.as_deref(), Some("a/m"));
        assert_eq!(v1.continuation_token, None);
        assert_eq!(v1.delimiter.as_deref(), Some("/"));

        let token = encode_continuation_token("k/é");
        let v2 = list_request(
            "b",
            &query(&[
                ("list-type", "2"),
                ("start-after", "a"),
                ("marker", "ignored"),
                ("continuation-token", &token),
                ("fetch-owner", "true"),
                ("delimiter", ""),
            ]),
        )
        .unwrap();
        assert!(v2.v2 && v2.fetch_owner && v2.delimiter.is_none());
        assert_eq!(v2.start_after.as_deref(), Some("a"));
        assert_eq!(where_to_start(&v2), ("k/é".to_owned(), true));

        for q in [
            &[("list-type", "3")][..],
            &[("list-type", "2"), ("continuation-token", "")][..],
            &[("list-type", "2"), ("continuation-token", "not base64!")][..],
            &[("list-type", "2"), ("continuation-token", "_w")][..], // 0xff: not UTF-8
            &[("encoding-type", "base64")][..],
        ] {
            let err = list_request("b", &query(q)).unwrap_err();
            assert_eq!(err.code, S3ErrorCode::InvalidArgument, "{q:?}");
        }
    }

    #[test]
    fn start_points() {
        let mut req = ListRequest::new("b", true);
        assert_eq!(where_to_start(&req), (String::new(), false));
        req.prefix = "p/".to_owned();
        assert_eq!(where_to_start(&req), ("p/".to_owned(), false));
        req.start_after = Some("a".to_owned());
        assert_eq!(where_to_start(&req), ("p/".to_owned(), false));
        req.start_after = Some("p/".to_owned());
        assert_eq!(where_to_start(&req), ("p/".to_owned(), true));
        req.start_after = Some("p/k".to_owned());
        assert_eq!(where_to_start(&req), ("p/k".to_owned(), true));
        // Token and start-after: the later wins.
        req.continuation_token = Some(encode_continuation_token("p/z"));
        assert_eq!(where_to_start(&req), ("p/z".to_owned(), true));
        req.continuation_token = Some(encode_continuation_token("p/a"));
        assert_eq!(where_to_start(&req), ("p/k".to_owned(), true));
        // A marker inside a rolled-up prefix resumes after the whole prefix.
        req.continuation_token = None;
        req.delimiter = Some("/".to_owned());
        req.start_after = Some("p/d/x".to_owned());
        assert_eq!(where_to_start(&req), ("p/d0".to_owned(), false));
        req.start_after = Some("p/d/".to_owned());
        assert_eq!(where_to_start(&req), ("p/d0".to_owned(), false));
        let keys: Vec<String> = ["p/d/", "p/d/y", "p/e"].map(str::to_owned).to_vec();
        let page = paginate(&req, read_from(&keys, "", false));
        assert_eq!(page_items(&page), ["p/e"]);
    }

    #[test]
    fn skip_past_bounds_every_key_with_the_prefix() {
        assert_eq!(skip_past(""), None);
        assert_eq!(skip_past("\u{10FFFF}\u{10FFFF}"), None);
        assert_eq!(skip_past("a/").as_deref(), Some("a0"));
        assert_eq!(skip_past("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(skip_past("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(skip_past("\u{7F}").as_deref(), Some("\u{80}"));
        let tails = [
            "",
            "\0",
            "z",
            "\u{7FF}",
            "\u{FFFF}",
            "\u{10FFFF}\u{10FFFF}\u{10FFFF}",
        ];
        let others = ["", "a", "a/", "a0", "b", "a.", "\u{E000}", "\u{10FFFF}"];
        for p in ["a/", "é", "a\u{10FFFF}", "\u{D7FF}", "x\u{7F}", "日本"] {
            let bound = skip_past(p).unwrap();
            for t in tails {
                assert!(format!("{p}{t}") < bound, "{p:?}{t:?}");
            }
            // Nothing smaller bounds them: every string between p and the bound has the prefix.
            for o in others.iter().chain(tails.iter()) {
                for s in [o.to_string(), format!("{p}{o}")] {
                    if s.as_str() > p && s < bound {
                        assert!(s.starts_with(p), "{s:?}");
                    }
                }
            }
            // Byte order agrees with String order.
            assert!(format!("{p}\u{10FFFF}\u{10FFFF}").as_bytes() < bound.as_bytes());
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(iso8601_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            iso8601_millis(1_795_428_000_000),
            "2026-11-23T10:00:00.000Z"
        );
        assert_eq!(iso8601_millis(951_868_799_999), "2000-02-29T23:59:59.999Z");
        assert_eq!(iso8601_millis(-1000), "1969-12-31T23:59:59.000Z");
        assert_eq!(
            iso8601_millis(4_107_542_400_000),
            "2100-03-01T00:00:00.000Z"
        );
        // Cross-check the calendar against httpdate over ~130 years.
        let months = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let mut secs: u64 = 0;
        while secs < 4_102_444_800 {
            let http = httpdate::fmt_http_date(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
            );
            // "Sun, 06 Nov 1994 08:49:37 GMT"
            let parts: Vec<&str> = http.split(' ').collect();
            let month = months.iter().position(|m| *m == parts[2]).unwrap() + 1;
            let iso = format!("{}-{month:02}-{}T{}.000Z", parts[3], parts[1], parts[4]);
            assert_eq!(iso8601_millis(secs as i64 * 1000), iso);
            secs += 86_400 * 7 + 3_601;
        }
    }

    fn child<'e>(el: &'e Element, name: &str) -> &'e Element {
        el.children.iter().find(|c| c.name == name).unwrap()
    }

    fn texts(el: &Element, outer: &str, inner: &str) -> Vec<String> {
        el.children
            .iter()
            .filter(|c| c.name == outer)
            .map(|c| child(c, inner).text.clone())
            .collect()
    }

    const TRICKY: [&str; 8] = [
        "plain.txt",
        "dir/with space.txt",
        "amp&lt<gt>\"q'",
        "pct%20+plus",
        "日本語/é",
        "ctl\u{1}\u{1f}\r\n\t.bin",
        "tilde~-._*",
        "emoji😀",
    ];

    fn tricky_page() -> (ListPage, ListRequest) {
        let mut req = ListRequest::new("bucket&co", true);
        req.delimiter = Some("/".to_owned());
        let mut keys: Vec<String> = TRICKY.iter().map(|k| (*k).to_owned()).collect();
        keys.sort();
        let page = paginate(&req, keys.iter().map(|k| entry(k)));
        (page, req)
    }

    #[test]
    fn listing_xml_escapes_and_round_trips() {
        let (page, mut req) = tricky_page();
        assert_eq!(page.common_prefixes, ["dir/", "日本語/"]);
        for v2 in [false, true] {
            req.v2 = v2;
            req.fetch_owner = false;
            let xml = list_objects(&page, &req, &owner());
            assert!(xml.starts_with(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bucket&amp;co</Name>"
            ));
            assert!(xml.contains("<ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag>"));
            assert!(xml.contains("<LastModified>2026-11-23T10:00:00.000Z</LastModified>"));
            assert!(xml.contains("<StorageClass>STANDARD</StorageClass>"));
            assert!(xml.contains("<Key>amp&amp;lt&lt;gt&gt;&quot;q&apos;</Key>"));
            assert_eq!(xml.contains("<Owner>"), !v2);
            assert_eq!(xml.contains("<KeyCount>"), v2);
            assert_eq!(xml.contains("<Marker></Marker>"), !v2);
            let doc = parse_document(xml.as_bytes(), "ListBucketResult", 10_000).unwrap();
            let keys = texts(&doc, "Contents", "Key");
            let expected: Vec<String> = page
                .contents
                .iter()
                .map(|e| e.key.replace(['\u{1}', '\u{1f}'], "\u{FFFD}"))
                .collect();
            // XML 1.0 cannot carry most control characters: they are replaced; CR, LF, TAB stay.
            assert_eq!(keys, expected);
            assert!(xml.contains("<Key>ctl\u{FFFD}\u{FFFD}&#13;\n\t.bin</Key>"));
            assert_eq!(
                texts(&doc, "CommonPrefixes", "Prefix"),
                page.common_prefixes
            );
        }
        req.fetch_owner = true;
        let xml = list_objects_v2(&page, &req, &owner());
        assert!(xml.contains("<Owner><ID>75aa"));
        assert!(xml.contains("<KeyCount>8</KeyCount>"));
    }

    #[test]
    fn listing_xml_url_encoding_round_trips_exactly() {
        let (page, mut req) = tricky_page();
        req.encoding_url = true;
        req.prefix = String::new();
        req.start_after = Some("a b".to_owned());
        for v2 in [false, true] {
            req.v2 = v2;
            let xml = list_objects(&page, &req, &owner());
            assert!(xml.contains("<EncodingType>url</EncodingType>"));
            assert!(xml.contains("<Key>dir/with%20space.txt</Key>") || !xml.contains("with"));
            assert!(xml.contains("<Key>pct%2520%2Bplus</Key>"));
            assert!(xml.contains("<Key>tilde~-._%2A</Key>"));
            assert!(xml.contains("<Prefix>%E6%97%A5%E6%9C%AC%E8%AA%9E/</Prefix>"));
            assert!(xml.contains("<Delimiter>/</Delimiter>"));
            let doc = parse_document(xml.as_bytes(), "ListBucketResult", 10_000).unwrap();
            let decode = |s: &String| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .unwrap()
                    .into_owned()
            };
            let keys: Vec<String> = texts(&doc, "Contents", "Key").iter().map(decode).collect();
            let expected: Vec<String> = page.contents.iter().map(|e| e.key.clone()).collect();
            assert_eq!(keys, expected);
            let marker = child(&doc, if v2 { "StartAfter" } else { "Marker" });
            assert_eq!(marker.text, "a%20b");
        }
        assert_eq!(url_encode_key("a b+c/d~é"), "a%20b%2Bc/d~%C3%A9");
    }

    #[test]
    fn v1_and_v2_markers_in_xml() {
        let keys: Vec<String> = ["a/1", "a/2", "b", "c/1"].map(str::to_owned).to_vec();
        let mut req = ListRequest::new("b", false);
        req.delimiter = Some("/".to_owned());
        req.max_keys = 2;
        let page = paginate(&req, read_from(&keys, "", false));
        assert_eq!(page.next_marker.as_deref(), Some("b"));
        let xml = list_objects_v1(&page, &req, &owner());
        assert!(xml.contains("<NextMarker>b</NextMarker><MaxKeys>2</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>"));
        req.v2 = true;
        req.start_after = Some("0".to_owned());
        let page = paginate(&req, read_from(&keys, "", false));
        let token = page.next_continuation_token.clone().unwrap();
        let xml = list_objects_v2(&page, &req, &owner());
        assert!(xml.contains(&format!("<NextContinuationToken>{token}</NextContinuationToken><StartAfter>0</StartAfter><KeyCount>2</KeyCount>")));
        req.continuation_token = Some(token.clone());
        let page = paginate(&req, read_from(&keys, &where_to_start(&req).0, true));
        assert_eq!(page.common_prefixes, ["c/"]);
        let xml = list_objects_v2(&page, &req, &owner());
        assert!(xml.contains(&format!("<ContinuationToken>{token}</ContinuationToken>")));
        assert!(!xml.contains("NextContinuationToken"));
    }

    #[test]
    fn other_writers_are_well_formed() {
        let o = owner();
        let xml = list_buckets(&o, &[("b1", 0), ("b&2", 1_795_428_000_000)]);
        let doc = parse_document(xml.as_bytes(), "ListAllMyBucketsResult", 100).unwrap();
        assert_eq!(child(child(&doc, "Owner"), "DisplayName").text, "serrano");
        assert_eq!(
            texts(child(&doc, "Buckets"), "Bucket", "Name"),
            ["b1", "b&2"]
        );
        assert_eq!(
            texts(child(&doc, "Buckets"), "Bucket", "CreationDate"),
            ["1970-01-01T00:00:00.000Z", "2026-11-23T10:00:00.000Z"]
        );

        assert_eq!(
            location_constraint(None),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></LocationConstraint>"
        );
        let doc = parse_document(
            location_constraint(Some("eu-west-1")).as_bytes(),
            "LocationConstraint",
            1,
        )
        .unwrap();
        assert_eq!(doc.text, "eu-west-1");

        let xml = initiate_multipart_upload("b", "k<&>", "up-1");
        let doc = parse_document(xml.as_bytes(), "InitiateMultipartUploadResult", 10).unwrap();
        assert_eq!(child(&doc, "Key").text, "k<&>");
        assert_eq!(child(&doc, "UploadId").text, "up-1");

        let xml = complete_multipart_upload("http://h/b/k", "b", "k", "abc-3");
        assert!(xml.contains("<ETag>&quot;abc-3&quot;</ETag>"));
        let doc = parse_document(xml.as_bytes(), "CompleteMultipartUploadResult", 10).unwrap();
        assert_eq!(child(&doc, "ETag").text, "\"abc-3\"");
        assert_eq!(child(&doc, "Location").text, "http://h/b/k");

        // Quotes already present are not doubled.
        for (xml, root) in [
            (
                copy_object_result("\"abc\"", 1_795_428_000_000),
                "CopyObjectResult",
            ),
            (copy_part_result("abc", 1_795_428_000_000), "CopyPartResult"),
        ] {
            assert!(xml.contains("><LastModified>2026-11-23T10:00:00.000Z</LastModified><ETag>&quot;abc&quot;</ETag></"));
            parse_document(xml.as_bytes(), root, 10).unwrap();
        }

        let parts = [
            PartEntry {
                part_number: 1,
                last_modified_ms: 0,
                etag: "e1".to_owned(),
                size: 5 << 20,
            },
            PartEntry {
                part_number: 2,
                last_modified_ms: 0,
                etag: "e2".to_owned(),
                size: 7,
            },
        ];
        let xml = list_parts(&ListPartsBody {
            bucket: "b",
            key: "k",
            upload_id: "u",
            owner: &o,
            part_number_marker: 0,
            next_part_number_marker: 2,
            max_parts: 1000,
            is_truncated: false,
            parts: &parts,
        });
        let doc = parse_document(xml.as_bytes(), "ListPartsResult", 100).unwrap();
        assert_eq!(texts(&doc, "Part", "PartNumber"), ["1", "2"]);
        assert_eq!(texts(&doc, "Part", "ETag"), ["\"e1\"", "\"e2\""]);
        assert_eq!(texts(&doc, "Part", "Size"), ["5242880", "7"]);
        assert_eq!(child(&doc, "NextPartNumberMarker").text, "2");
        assert_eq!(child(child(&doc, "Initiator"), "ID").text, o.id);

        let uploads = [UploadEntry {
            key: "a b".to_owned(),
            upload_id: "u1".to_owned(),
            initiated_ms: 0,
        }];
        let prefixes = ["p/".to_owned()];
        let body = ListUploadsBody {
            bucket: "b",
            owner: &o,
            key_marker: "",
            upload_id_marker: "",
            next_key_marker: "a b",
            next_upload_id_marker: "u1",
            prefix: "",
            delimiter: Some("/"),
            max_uploads: 1000,
            is_truncated: true,
            encoding_url: true,
            uploads: &uploads,
            common_prefixes: &prefixes,
        };
        let xml = list_multipart_uploads(&body);
        let doc = parse_document(xml.as_bytes(), "ListMultipartUploadsResult", 100).unwrap();
        assert_eq!(texts(&doc, "Upload", "Key"), ["a%20b"]);
        assert_eq!(
            texts(&doc, "Upload", "Initiated"),
            ["1970-01-01T00:00:00.000Z"]
        );
        assert_eq!(texts(&doc, "CommonPrefixes", "Prefix"), ["p/"]);
        assert_eq!(child(&doc, "NextKeyMarker").text, "a%20b");
        assert_eq!(child(&doc, "IsTruncated").text, "true");

        let errors = [(
            "k&2".to_owned(),
            S3ErrorCode::AccessDenied,
            "Access Denied".to_owned(),
        )];
        let xml = delete_result(&["k<1"], &errors, false);
        let doc = parse_document(xml.as_bytes(), "DeleteResult", 100).unwrap();
        assert_eq!(texts(&doc, "Deleted", "Key"), ["k<1"]);
        assert_eq!(texts(&doc, "Error", "Key"), ["k&2"]);
        assert_eq!(texts(&doc, "Error", "Code"), ["AccessDenied"]);
        let quiet = delete_result(&["k<1"], &errors, true);
        assert!(!quiet.contains("<Deleted>") && quiet.contains("<Error>"));
        let empty = delete_result::<&str>(&[], &[], true);
        assert!(empty.ends_with(
            "<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></DeleteResult>"
        ));
    }

    const DELETE_EXAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
    <Object>
         <Key>sample1.txt</Key>
    </Object>
    <Object>
         <Key>sample2.txt</Key>
         <VersionId>OYcLXagmS.WaD..oyH4KRguB95_YhLs7</VersionId>
    </Object>
    <Quiet>true</Quiet>
</Delete>"#;

    const COMPLETE_EXAMPLE: &str = r#"<CompleteMultipartUpload>
  <Part>
    <PartNumber>1</PartNumber>
    <ETag>"a54357aff0632cce46d942af68356b38"</ETag>
  </Part>
  <Part>
    <ETag>&quot;0c78aef83f66abc1fa1e8477f296d394&quot;</ETag>
    <PartNumber>2</PartNumber>
    <ChecksumCRC32>AAAAAA==</ChecksumCRC32>
  </Part>
  <Part>
    <PartNumber>3</PartNumber>
    <ETag>acbd18db4cc2f85cedef654fccc4a4d8</ETag>
  </Part>
</CompleteMultipartUpload>"#;

    #[test]
    fn parses_aws_examples() {
        let d = parse_delete(DELETE_EXAMPLE.as_bytes()).unwrap();
        assert!(d.quiet);
        assert_eq!(
            d.objects,
            [
                ("sample1.txt".to_owned(), None),
                (
                    "sample2.txt".to_owned(),
                    Some("OYcLXagmS.WaD..oyH4KRguB95_YhLs7".to_owned())
                ),
            ]
        );
        let parts = parse_complete_multipart(COMPLETE_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(
            parts
                .iter()
                .map(|p| (p.part_number, p.etag.as_str()))
                .collect::<Vec<_>>(),
            [
                (1, "a54357aff0632cce46d942af68356b38"),
                (2, "0c78aef83f66abc1fa1e8477f296d394"),
                (3, "acbd18db4cc2f85cedef654fccc4a4d8"),
            ]
        );
        assert_eq!(
            parts[1].checksums,
            [("ChecksumCRC32".to_owned(), "AAAAAA==".to_owned())]
        );
        assert!(parts[0].checksums.is_empty());

        let cb = br#"<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <LocationConstraint>Europe</LocationConstraint>
</CreateBucketConfiguration >"#;
        assert_eq!(parse_create_bucket(cb).unwrap().as_deref(), Some("Europe"));
        assert_eq!(parse_create_bucket(b"").unwrap(), None);
        assert_eq!(parse_create_bucket(b" \r\n").unwrap(), None);
        assert_eq!(
            parse_create_bucket(
                b"<CreateBucketConfiguration><LocationConstraint/></CreateBucketConfiguration>"
            )
            .unwrap(),
            None
        );
        assert_eq!(
            parse_create_bucket(b"<CreateBucketConfiguration/>").unwrap(),
            None
        );
        // Namespace prefixes and a BOM are tolerated.
        let prefixed = "\u{FEFF}<s3:CreateBucketConfiguration xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\"><s3:LocationConstraint> eu-west-1 </s3:LocationConstraint></s3:CreateBucketConfiguration>";
        assert_eq!(
            parse_create_bucket(prefixed.as_bytes()).unwrap().as_deref(),
            Some("eu-west-1")
        );
    }

    #[test]
    fn delete_keys_decode_entities_exactly() {
        let body = "<Delete><Quiet>false</Quiet><Object><Key>a&amp;b&lt;c&gt;&quot;&apos;</Key></Object>\
            <Object><Key>line&#x0D;&#13;&#10;end</Key></Object>\
            <Object><Key>raw\r\nlf</Key></Object>\
            <Object><Key> spaced </Key><VersionId></VersionId></Object>\
            <Object><Key><![CDATA[<cdata>&amp;]]></Key></Object>\
            <Object><Key>日本語 %20+</Key></Object></Delete>";
        let d = parse_delete(body.as_bytes()).unwrap();
        assert!(!d.quiet);
        let keys: Vec<&str> = d.objects.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "a&b<c>\"'",
                "line\r\r\nend",
                "raw\nlf",
                " spaced ",
                "<cdata>&amp;",
                "日本語 %20+"
            ]
        );
        assert!(d.objects.iter().all(|(_, v)| v.is_none()));
    }

    #[test]
    fn malformed_documents_are_refused() {
        let malformed_delete = [
            "",
            "   ",
            "<Delete></Delete>",
            "<Delete><Quiet>true</Quiet></Delete>",
            "<Delete><Object><Key>a</Key></Object>",
            "<Delete><Object><Key>a</Key></Object></Delet>",
            "<Delete><Object><Key>a</Object></Key></Delete>",
            "<Delete><Object><VersionId>v</VersionId></Object></Delete>",
            "<Delete><Object><Key>a</Key><Key>b</Key></Object></Delete>",
            "<Delete><Object><Key>a<b/></Key></Object></Delete>",
            "<Delete><Object><Key>a</Key></Object><Quiet>maybe</Quiet></Delete>",
            "<Delete><Object><Key>a</Key></Object><Quiet>true</Quiet><Quiet>true</Quiet></Delete>",
            "<Delete><Object><Key>a&unknown;</Key></Object></Delete>",
            "<Delete><Object><Key>a & b</Key></Object></Delete>",
            "<Delete><Object><Key>&#0;</Key></Object></Delete>",
            "<Delete><Object><Key>a</Key></Object>text</Delete>",
            "<Delete><Object><Key>a</Key></Object></Delete><Delete/>",
            "<Delete><Object><Key>a</Key></Object></Delete>trailing",
            "<!DOCTYPE d [<!ENTITY x \"y\">]><Delete><Object><Key>&x;</Key></Object></Delete>",
            "<CompleteMultipartUpload><Object><Key>a</Key></Object></CompleteMultipartUpload>",
            "<Deletes><Object><Key>a</Key></Object></Deletes>",
            "<Delete attr=><Object><Key>a</Key></Object></Delete>",
            "not xml at all",
            "<Delete><Object><Key>a</Key></Object><b><c><d><e><f><g><h><i>deep</i></h></g></f></e></d></c></b></Delete>",
        ];
        for body in malformed_delete {
            let err = parse_delete(body.as_bytes()).unwrap_err();
            assert_eq!(err.code, S3ErrorCode::MalformedXML, "{body:?}");
        }
        assert_eq!(
            parse_delete(b"<Delete><Object><Key>\xff</Key></Object></Delete>")
                .unwrap_err()
                .code,
            S3ErrorCode::MalformedXML
        );
        // Every proper prefix of a valid document is malformed.
        for n in 0..DELETE_EXAMPLE.len() {
            assert!(
                parse_delete(&DELETE_EXAMPLE.as_bytes()[..n]).is_err(),
                "{n}"
            );
        }
        for n in 0..COMPLETE_EXAMPLE.len() {
            assert!(
                parse_complete_multipart(&COMPLETE_EXAMPLE.as_bytes()[..n]).is_err(),
                "{n}"
            );
        }

        for body in [
            "<CreateBucketConfiguration><LocationConstraint>a</LocationConstraint>",
            "<Delete/>",
            "<CreateBucketConfiguration><LocationConstraint>a</LocationConstraint><LocationConstraint>b</LocationConstraint></CreateBucketConfiguration>",
            "<CreateBucketConfiguration><LocationConstraint><x/></LocationConstraint></CreateBucketConfiguration>",
        ] {
            assert_eq!(
                parse_create_bucket(body.as_bytes()).unwrap_err().code,
                S3ErrorCode::MalformedXML,
                "{body}"
            );
        }
    }

    fn complete_body(numbers: impl IntoIterator<Item = String>) -> String {
        let mut body = String::from("<CompleteMultipartUpload>");
        for n in numbers {
            body.push_str(&format!(
                "<Part><PartNumber>{n}</PartNumber><ETag>\"e{n}\"</ETag></Part>"
            ));
        }
        body.push_str("</CompleteMultipartUpload>");
        body
    }

    #[test]
    fn complete_multipart_checks_parts() {
        let code = |nums: &[&str]| {
            parse_complete_multipart(complete_body(nums.iter().map(|s| (*s).to_owned())).as_bytes())
                .map(|p| p.len())
                .map_err(|e| e.code)
        };
        assert_eq!(code(&["1", "3", "10000"]), Ok(3));
        assert_eq!(code(&[" 7 "]), Ok(1));
        assert_eq!(code(&["2", "1"]), Err(S3ErrorCode::InvalidPartOrder));
        assert_eq!(code(&["1", "1"]), Err(S3ErrorCode::InvalidPartOrder));
        assert_eq!(code(&["0"]), Err(S3ErrorCode::InvalidArgument));
        assert_eq!(code(&["10001"]), Err(S3ErrorCode::InvalidArgument));
        assert_eq!(
            code(&["99999999999999999999"]),
            Err(S3ErrorCode::InvalidArgument)
        );
        assert_eq!(code(&["-1"]), Err(S3ErrorCode::MalformedXML));
        assert_eq!(code(&["+1"]), Err(S3ErrorCode::MalformedXML));
        assert_eq!(code(&["one"]), Err(S3ErrorCode::MalformedXML));
        assert_eq!(code(&[""]), Err(S3ErrorCode::MalformedXML));
        assert_eq!(code(&[]), Err(S3ErrorCode::MalformedXML));
        let missing_etag = b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>";
        assert_eq!(
            parse_complete_multipart(missing_etag).unwrap_err().code,
            S3ErrorCode::MalformedXML
        );
        let two_numbers = b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><PartNumber>2</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>";
        assert_eq!(
            parse_complete_multipart(two_numbers).unwrap_err().code,
            S3ErrorCode::MalformedXML
        );

        let all = complete_body((1..=MAX_PART_NUMBER).map(|n| n.to_string()));
        let parts = parse_complete_multipart(all.as_bytes()).unwrap();
        assert_eq!(parts.len(), 10_000);
        assert_eq!(parts[9_999].etag, "e10000");
        let too_many = complete_body((1..=MAX_PART_NUMBER + 1).map(|n| n.to_string()));
        assert_eq!(
            parse_complete_multipart(too_many.as_bytes())
                .unwrap_err()
                .code,
            S3ErrorCode::MalformedXML
        );
    }

    #[test]
    fn delete_is_bounded_to_1000_keys() {
        let body = |n: usize| {
            let mut b = String::from("<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
            for i in 0..n {
                b.push_str(&format!("<Object><Key>k{i}</Key></Object>"));
            }
            b.push_str("</Delete>");
            b
        };
        assert_eq!(
            parse_delete(body(1000).as_bytes()).unwrap().objects.len(),
            1000
        );
        assert_eq!(
            parse_delete(body(1001).as_bytes()).unwrap_err().code,
            S3ErrorCode::MalformedXML
        );
    }

    #[test]
    fn parsers_never_panic_on_mutated_input() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let seeds = [
            DELETE_EXAMPLE.as_bytes().to_vec(),
            COMPLETE_EXAMPLE.as_bytes().to_vec(),
            b"<CreateBucketConfiguration><LocationConstraint>eu</LocationConstraint></CreateBucketConfiguration>".to_vec(),
        ];
        let alphabet = b"<>/&;#x\"'=! \r\n\xff\xc3?[]-0aZ";
        for seed in &seeds {
            for _ in 0..2000 {
                let mut doc = seed.clone();
                for _ in 0..1 + next() % 4 {
                    let at = (next() % doc.len() as u64) as usize;
                    let byte = alphabet[(next() % alphabet.len() as u64) as usize];
                    match next() % 3 {
                        0 => doc[at] = byte,
                        1 => doc.insert(at, byte),
                        _ => {
                            doc.remove(at);
                        }
                    }
                }
                let _ = parse_delete(&doc);
                let _ = parse_complete_multipart(&doc);
                let _ = parse_create_bucket(&doc);
            }
        }
    }
}

//! AWS Signature Version 4 verification for the S3 API, free of I/O: header and query-string
//! (presigned) authentication (S3 API Reference "Authenticating Requests (AWS Signature Version
//! 4)") and the `aws-chunked` body decoder with chunk, trailer and flexible-checksum verification
//! ("sigv4-streaming", "sigv4-streaming-trailers").

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::{constant_time, digest, hmac};
use base64::Engine as _;
use http::HeaderMap;

use crate::s3::{S3Error, S3ErrorCode};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const SERVICE: &str = "s3";
const TERMINATOR: &str = "aws4_request";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
const STREAMING_SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
const EMPTY_SHA256_HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const UNSUPPORTED_MECHANISM: &str =
    "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.";

/// Largest accepted difference between the request time and the server clock (S3: 15 minutes).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);
/// Longest presigned URL validity (`X-Amz-Expires`, seven days).
pub const MAX_PRESIGNED_EXPIRES: u64 = 604_800;
/// Largest accepted `aws-chunked` chunk (SDKs send 64 KiB..1 MiB).
pub const MAX_CHUNK_SIZE: u64 = 16 << 20;
/// Longest chunk-size or trailer line, CRLF included.
const MAX_LINE: usize = 4096;
const MAX_TRAILER_LINES: usize = 8;

/// What the handler knows of the request, borrowed from the `http::Request`.
///
/// Over HTTP/2 there is no `Host` header (the authority is in the URI): a caller serving h2 must
/// insert `host` into the map it passes here, since SigV4 always signs it.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// The path as received, still percent-encoded.
    pub raw_path: &'a str,
    /// The query as received (without `?`), still percent-encoded.
    pub raw_query: Option<&'a str>,
    pub headers: &'a HeaderMap,
}

impl<'a> RequestParts<'a> {
    pub fn from_request<B>(req: &'a http::Request<B>) -> Self {
        Self {
            method: req.method().as_str(),
            raw_path: req.uri().path(),
            raw_query: req.uri().query(),
            headers: req.headers(),
        }
    }
}

/// How the body must be checked after authentication.
#[derive(Debug)]
pub enum PayloadCheck {
    /// `UNSIGNED-PAYLOAD` (header or presigned): nothing to check.
    Unsigned,
    /// `x-amz-content-sha256` is the body digest: hash the body and call [`check_sha256`].
    Sha256([u8; 32]),
    /// `aws-chunked` body (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`): pass the raw body through the decoder.
    Streaming(Box<ChunkedDecoder>),
}

/// An authenticated request.
#[derive(Debug)]
pub struct Authenticated {
    pub access_key: String,
    /// The region of the credential scope (any string is accepted: the gateway has one region).
    pub region: String,
    pub payload: PayloadCheck,
    /// Authenticated by query parameters (presigned URL) rather than the `Authorization` header.
    pub presigned: bool,
}

/// Verifies the request's SigV4 signature (header or presigned) against the secret that
/// `secret_for(access_key)` returns (`None`: unknown key, `InvalidAccessKeyId`).
pub fn authenticate(
    parts: &RequestParts<'_>,
    now: SystemTime,
    secret_for: impl Fn(&str) -> Option<String>,
) -> Result<Authenticated, S3Error> {
    let query = parse_query(parts.raw_query.unwrap_or(""));
    let mut auth_headers = parts.headers.get_all(http::header::AUTHORIZATION).iter();
    let auth_header = auth_headers.next();
    if auth_headers.next().is_some() {
        return Err(S3Error::new(
            S3ErrorCode::AuthorizationHeaderMalformed,
            "more than one Authorization header",
        ));
    }
    let has = |name: &str| query.iter().any(|(n, _)| n.as_slice() == name.as_bytes());
    let presigned = has("X-Amz-Algorithm") || has("X-Amz-Credential") || has("X-Amz-Signature");
    let request = match (auth_header, presigned) {
        (Some(_), true) => {
            return Err(S3Error::new(
                S3ErrorCode::InvalidArgument,
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified",
            ));
        }
        (Some(value), false) => header_request(value, parts.headers)?,
        (None, true) => query_request(&query)?,
        (None, false) => {
            if has("AWSAccessKeyId") || has("Signature") {
                return Err(S3Error::new(
                    S3ErrorCode::InvalidRequest,
                    UNSUPPORTED_MECHANISM,
                ));
            }
            return Err(S3Error::new(
                S3ErrorCode::AccessDenied,
                "Access Denied: the request is not signed",
            ));
        }
    };

    let secret = secret_for(&request.access_key).ok_or_else(|| {
        S3Error::new(
            S3ErrorCode::InvalidAccessKeyId,
            "The AWS Access Key Id you provided does not exist in our records.",
        )
    })?;
    check_time(&request, now)?;
    check_all_amz_headers_signed(parts.headers, &request)?;

    let key = signing_key(&secret, &request.scope_date, &request.region);
    let scope = format!(
        "{}/{}/{SERVICE}/{TERMINATOR}",
        request.scope_date, request.region
    );
    let query_string = canonical_query(&query, request.presigned);
    let headers_block = canonical_headers(parts.headers, &request.signed_headers)?;
    let signed_headers = request.signed_headers.join(";");
    let mut matched = false;
    for uri in uri_candidates(parts.raw_path) {
        let mut creq = Vec::with_capacity(
            parts.method.len()
                + uri.len()
                + query_string.len()
                + headers_block.len()
                + signed_headers.len()
                + request.payload_hash.len()
                + 8,
        );
        for (i, piece) in [
            parts.method.as_bytes(),
            uri.as_bytes(),
            query_string.as_bytes(),
            headers_block.as_slice(),
            signed_headers.as_bytes(),
            request.payload_hash.as_bytes(),
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                creq.push(b'\n');
            }
            creq.extend_from_slice(piece);
        }
        let string_to_sign = format!(
            "{ALGORITHM}\n{}\n{scope}\n{}",
            request.amz_date,
            hex::encode(digest::digest(&digest::SHA256, &creq).as_ref())
        );
        let computed = hmac_sha256(&key, string_to_sign.as_bytes());
        // Every candidate is computed so the time taken does not say which one matched.
        matched |= constant_time::verify_slices_are_equal(&computed, &request.signature).is_ok();
    }
    if !matched {
        return Err(S3Error::new(
            S3ErrorCode::SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        ));
    }

    let payload = payload_check(&request, parts.headers, key, scope)?;
    Ok(Authenticated {
        access_key: request.access_key,
        region: request.region,
        payload,
        presigned: request.presigned,
    })
}

/// Compares the digest announced in `x-amz-content-sha256` with the one computed over the body.
pub fn check_sha256(expected: &[u8; 32], actual: &[u8; 32]) -> Result<(), S3Error> {
    constant_time::verify_slices_are_equal(expected, actual).map_err(|_| {
        S3Error::new(
            S3ErrorCode::XAmzContentSHA256Mismatch,
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )
    })
}

/// The authentication fields of a request, from the `Authorization` header or the query.
struct SignedRequest {
    access_key: String,
    scope_date: String,
    region: String,
    /// `yyyyMMdd'T'HHmmss'Z'`, as signed.
    amz_date: String,
    date: SystemTime,
    /// `X-Amz-Expires` (presigned only).
    expires: Option<u64>,
    signed_headers: Vec<String>,
    signature: [u8; 32],
    /// The last line of the canonical request.
    payload_hash: String,
    presigned: bool,
}

fn header_request(
    value: &http::HeaderValue,
    headers: &HeaderMap,
) -> Result<SignedRequest, S3Error> {
    let malformed = |m: &str| {
        S3Error::new(
            S3ErrorCode::AuthorizationHeaderMalformed,
            format!("The authorization header is malformed; {m}"),
        )
    };
    let value = value
        .to_str()
        .map_err(|_| malformed("it is not visible ASCII"))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme != ALGORITHM {
        return Err(S3Error::new(
            S3ErrorCode::InvalidRequest,
            UNSUPPORTED_MECHANISM,
        ));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (name, field) = part
            .split_once('=')
            .ok_or_else(|| malformed(&format!("component '{part}' has no '='")))?;
        let slot = match name.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            other => return Err(malformed(&format!("unknown component '{other}'"))),
        };
        if slot.replace(field.trim()).is_some() {
            return Err(malformed(&format!("'{}' given twice", name.trim())));
        }
    }
    let code = S3ErrorCode::AuthorizationHeaderMalformed;
    let credential = parse_credential(
        credential.ok_or_else(|| malformed("missing Credential"))?,
        code,
    )?;
    let signed_headers = parse_signed_headers(
        signed_headers.ok_or_else(|| malformed("missing SignedHeaders"))?,
        code,
    )?;
    let signature = parse_signature(
        signature.ok_or_else(|| malformed("missing Signature"))?,
        code,
    )?;

    let no_date = || {
        S3Error::new(
            S3ErrorCode::AccessDenied,
            "AWS authentication requires a valid Date or x-amz-date header",
        )
    };
    let amz_date = single_header(headers, "x-amz-date")?.ok_or_else(no_date)?;
    let date = parse_amz_date(amz_date).ok_or_else(no_date)?;
    check_scope_date(&credential, amz_date, code)?;
    let payload_hash = single_header(headers, "x-amz-content-sha256")?.ok_or_else(|| {
        S3Error::new(
            S3ErrorCode::InvalidRequest,
            "Missing required header for this request: x-amz-content-sha256",
        )
    })?;
    Ok(SignedRequest {
        access_key: credential.access_key,
        scope_date: credential.date,
        region: credential.region,
        amz_date: amz_date.to_owned(),
        date,
        expires: None,
        signed_headers,
        signature,
        payload_hash: payload_hash.to_owned(),
        presigned: false,
    })
}

fn query_request(query: &[(Vec<u8>, Vec<u8>)]) -> Result<SignedRequest, S3Error> {
    let invalid = |m: String| S3Error::new(S3ErrorCode::InvalidArgument, m);
    let param = |name: &str| -> Result<Option<&str>, S3Error> {
        let mut found = None;
        for (n, v) in query {
            if n.as_slice() == name.as_bytes() {
                if found.is_some() {
                    return Err(invalid(format!("{name} is given more than once")));
                }
                let v = std::str::from_utf8(v)
                    .map_err(|_| invalid(format!("{name} is not valid UTF-8")))?;
                found = Some(v);
            }
        }
        Ok(found)
    };
    let required = |name: &str| {
        param(name)?.ok_or_else(|| {
            invalid(format!(
                "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters; {name} is missing"
            ))
        })
    };
    if required("X-Amz-Algorithm")? != ALGORITHM {
        return Err(invalid(
            "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"".to_owned(),
        ));
    }
    let code = S3ErrorCode::InvalidArgument;
    let credential = parse_credential(required("X-Amz-Credential")?, code)?;
    let amz_date = required("X-Amz-Date")?;
    let date = parse_amz_date(amz_date).ok_or_else(|| {
        invalid("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"".to_owned())
    })?;
    check_scope_date(&credential, amz_date, code)?;
    let expires = required("X-Amz-Expires")?;
    let expires = parse_decimal(expires)
        .filter(|e| (1..=MAX_PRESIGNED_EXPIRES).contains(e))
        .ok_or_else(|| {
            invalid(format!(
                "X-Amz-Expires must be between 1 and {MAX_PRESIGNED_EXPIRES} seconds"
            ))
        })?;
    let signed_headers = parse_signed_headers(required("X-Amz-SignedHeaders")?, code)?;
    let signature = parse_signature(required("X-Amz-Signature")?, code)?;
    let payload_hash = param("X-Amz-Content-Sha256")?.unwrap_or(UNSIGNED_PAYLOAD);
    Ok(SignedRequest {
        access_key: credential.access_key,
        scope_date: credential.date,
        region: credential.region,
        amz_date: amz_date.to_owned(),
        date,
        expires: Some(expires),
        signed_headers,
        signature,
        payload_hash: payload_hash.to_owned(),
        presigned: true,
    })
}

struct Credential {
    access_key: String,
    date: String,
    region: String,
}

/// `AKID/yyyyMMdd/region/s3/aws4_request`.
fn parse_credential(value: &str, code: S3ErrorCode) -> Result<Credential, S3Error> {
    let bad = |m: &str| S3Error::new(code, format!("Invalid credential '{value}': {m}"));
    // From the right: the scope has a fixed shape, the key id is whatever precedes it.
    let mut fields = value.rsplitn(5, '/');
    let (Some(terminator), Some(service), Some(region), Some(date), Some(access_key)) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(bad("expected <key>/<date>/<region>/s3/aws4_request"));
    };
    if access_key.is_empty() || !access_key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("invalid access key id"));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("invalid date"));
    }
    if region.is_empty() || !region.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("invalid region"));
    }
    if service != SERVICE {
        return Err(bad(&format!(
            "incorrect service \"{service}\"; this endpoint belongs to \"s3\""
        )));
    }
    if terminator != TERMINATOR {
        return Err(bad("the scope must end with aws4_request"));
    }
    Ok(Credential {
        access_key: access_key.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
    })
}

fn check_scope_date(
    credential: &Credential,
    amz_date: &str,
    code: S3ErrorCode,
) -> Result<(), S3Error> {
    if amz_date.get(..8) == Some(credential.date.as_str()) {
        Ok(())
    } else {
        Err(S3Error::new(
            code,
            format!(
                "Invalid credential date \"{}\": it is not the date of the request time \"{amz_date}\"",
                credential.date
            ),
        ))
    }
}

fn parse_signed_headers(value: &str, code: S3ErrorCode) -> Result<Vec<String>, S3Error> {
    let names: Vec<String> = value.split(';').map(str::to_owned).collect();
    let valid = |n: &String| {
        !n.is_empty()
            && n.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
            })
    };
    if !names.iter().all(valid) {
        return Err(S3Error::new(
            code,
            format!(
                "Invalid SignedHeaders \"{value}\": lowercase header names separated by ';' expected"
            ),
        ));
    }
    if !names.iter().any(|n| n == "host") {
        return Err(S3Error::new(code, "SignedHeaders must include host"));
    }
    Ok(names)
}

fn parse_signature(value: &str, code: S3ErrorCode) -> Result<[u8; 32], S3Error> {
    parse_hex32(value.as_bytes())
        .ok_or_else(|| S3Error::new(code, "Signature must be 64 hexadecimal characters"))
}

fn single_header<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, S3Error> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(S3Error::new(
            S3ErrorCode::InvalidArgument,
            format!("header {name} is given more than once"),
        ));
    }
    value.to_str().map(|v| Some(v.trim())).map_err(|_| {
        S3Error::new(
            S3ErrorCode::InvalidArgument,
            format!("header {name} is not visible ASCII"),
        )
    })
}

fn check_time(request: &SignedRequest, now: SystemTime) -> Result<(), S3Error> {
    let skewed = || {
        S3Error::new(
            S3ErrorCode::RequestTimeTooSkewed,
            "The difference between the request time and the current time is too large.",
        )
    };
    if request
        .date
        .duration_since(now)
        .is_ok_and(|ahead| ahead > MAX_CLOCK_SKEW)
    {
        return Err(skewed());
    }
    match request.expires {
        Some(expires) => {
            if now
                .duration_since(request.date)
                .is_ok_and(|age| age > Duration::from_secs(expires))
            {
                return Err(S3Error::new(
                    S3ErrorCode::AccessDenied,
                    "Request has expired",
                ));
            }
        }
        None => {
            if now
                .duration_since(request.date)
                .is_ok_and(|age| age > MAX_CLOCK_SKEW)
            {
                return Err(skewed());
            }
        }
    }
    Ok(())
}

/// S3's "HeadersNotSigned": every `x-amz-*` header sent must be signed, or anyone on the path
/// could add one (`x-amz-copy-source`, `x-amz-acl`, `x-amz-meta-*`...). Exempt: those bound by
/// the string to sign anyway, and those SDKs leave unsigned.
fn check_all_amz_headers_signed(
    headers: &HeaderMap,
    request: &SignedRequest,
) -> Result<(), S3Error> {
    let mut unsigned: Vec<&str> = Vec::new();
    for name in headers.keys() {
        let name = name.as_str();
        if !name.starts_with("x-amz-") || request.signed_headers.iter().any(|s| s == name) {
            continue;
        }
        let exempt = matches!(name, "x-amz-user-agent" | "x-amz-checksum-mode")
            || (!request.presigned && matches!(name, "x-amz-date" | "x-amz-content-sha256"));
        if !exempt {
            unsigned.push(name);
        }
    }
    if unsigned.is_empty() {
        Ok(())
    } else {
        Err(S3Error::new(
            S3ErrorCode::AccessDenied,
            format!(
                "There were headers present in the request which were not signed: {}",
                unsigned.join(", ")
            ),
        ))
    }
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), "s3"), "aws4_request")`.
fn signing_key(secret: &str, date: &str, region: &str) -> hmac::Key {
    let k_date = hmac_sha256(
        &hmac::Key::new(hmac::HMAC_SHA256, format!("AWS4{secret}").as_bytes()),
        date.as_bytes(),
    );
    let k_region = hmac_sha256(
        &hmac::Key::new(hmac::HMAC_SHA256, &k_date),
        region.as_bytes(),
    );
    let k_service = hmac_sha256(
        &hmac::Key::new(hmac::HMAC_SHA256, &k_region),
        SERVICE.as_bytes(),
    );
    let k_signing = hmac_sha256(
        &hmac::Key::new(hmac::HMAC_SHA256, &k_service),
        TERMINATOR.as_bytes(),
    );
    hmac::Key::new(hmac::HMAC_SHA256, &k_signing)
}

fn hmac_sha256(key: &hmac::Key, data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(hmac::sign(key, data).as_ref());
    out
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

/// The canonical URIs to try. S3 signs the path as sent, neither normalised nor double-encoded:
/// first the raw path (what a client signs when it signs what it sends), then the path
/// re-encoded segment by segment with the SigV4 `UriEncode` rules (what a client signs when it
/// canonicalises itself but sends, e.g., `+`, `!` or lowercase escapes). Both decode to the same
/// segments, so accepting either never lets a signature cover a different key.
fn uri_candidates(raw_path: &str) -> Vec<Cow<'_, str>> {
    let raw: Cow<'_, str> = if raw_path.is_empty() {
        Cow::Borrowed("/")
    } else {
        Cow::Borrowed(raw_path)
    };
    let mut encoded = String::with_capacity(raw.len() + 16);
    for (i, segment) in raw.split('/').enumerate() {
        if i > 0 {
            encoded.push('/');
        }
        let decoded: Vec<u8> = percent_encoding::percent_decode(segment.as_bytes()).collect();
        uri_encode(&mut encoded, &decoded);
    }
    if encoded == raw {
        vec![raw]
    } else {
        vec![raw, Cow::Owned(encoded)]
    }
}

/// SigV4 `UriEncode`: everything but `A-Za-z0-9-_.~` as `%XX` (uppercase hex).
fn uri_encode(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

/// Query pairs, percent-decoded with `+` as space (`application/x-www-form-urlencoded`, as the
/// SDK signers parse it); a name without `=` has an empty value (`?uploads`).
fn parse_query(raw: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let decode = |s: &str| -> Vec<u8> {
        let plus_as_space: Vec<u8> = s
            .bytes()
            .map(|b| if b == b'+' { b' ' } else { b })
            .collect();
        percent_encoding::percent_decode(&plus_as_space).collect()
    };
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) => (decode(name), decode(value)),
            None => (decode(pair), Vec::new()),
        })
        .collect()
}

/// Pairs URI-encoded, sorted by name then value, `X-Amz-Signature` left out when presigned.
fn canonical_query(query: &[(Vec<u8>, Vec<u8>)], presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .filter(|(name, _)| !(presigned && name.as_slice() == b"X-Amz-Signature"))
        .map(|(name, value)| {
            let (mut n, mut v) = (String::new(), String::new());
            uri_encode(&mut n, name);
            uri_encode(&mut v, value);
            (n, v)
        })
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// `name:value\n` per signed header: values trimmed, runs of spaces collapsed, repeated headers
/// joined with `,`.
fn canonical_headers(headers: &HeaderMap, signed: &[String]) -> Result<Vec<u8>, S3Error> {
    let mut out = Vec::new();
    for name in signed {
        let mut values = headers.get_all(name.as_str()).iter().peekable();
        if values.peek().is_none() {
            return Err(S3Error::new(
                S3ErrorCode::SignatureDoesNotMatch,
                format!("The signed header '{name}' is not present in the request"),
            ));
        }
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        for (i, value) in values.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let value = value.as_bytes().trim_ascii();
            let mut previous_space = false;
            for &b in value {
                if b == b' ' && previous_space {
                    continue;
                }
                previous_space = b == b' ';
                out.push(b);
            }
        }
        out.push(b'\n');
    }
    Ok(out)
}

fn payload_check(
    request: &SignedRequest,
    headers: &HeaderMap,
    key: hmac::Key,
    scope: String,
) -> Result<PayloadCheck, S3Error> {
    let mode = match request.payload_hash.as_str() {
        UNSIGNED_PAYLOAD => return Ok(PayloadCheck::Unsigned),
        STREAMING_SIGNED => StreamingMode::Signed,
        STREAMING_SIGNED_TRAILER => StreamingMode::SignedTrailer,
        STREAMING_UNSIGNED_TRAILER => StreamingMode::UnsignedTrailer,
        other => {
            return match parse_hex32(other.as_bytes()) {
                Some(digest) => Ok(PayloadCheck::Sha256(digest)),
                None => Err(S3Error::new(
                    S3ErrorCode::InvalidArgument,
                    "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER], STREAMING-UNSIGNED-PAYLOAD-TRAILER or a SHA-256 hex digest",
                )),
            };
        }
    };
    let trailer = match single_header(headers, "x-amz-trailer")?.filter(|t| !t.is_empty()) {
        None => None,
        Some(_) if mode == StreamingMode::Signed => {
            return Err(S3Error::new(
                S3ErrorCode::InvalidRequest,
                "x-amz-trailer needs x-amz-content-sha256 STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            ));
        }
        Some(name) => Some(ChecksumKind::from_header(&name.to_ascii_lowercase()).ok_or_else(
            || {
                S3Error::new(
                    S3ErrorCode::InvalidRequest,
                    format!("Unsupported x-amz-trailer \"{name}\": one of x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha1, -sha256 expected"),
                )
            },
        )?),
    };
    let decoded_len = single_header(headers, "x-amz-decoded-content-length")?
        .map(|v| {
            parse_decimal(v).ok_or_else(|| {
                S3Error::new(
                    S3ErrorCode::InvalidArgument,
                    "x-amz-decoded-content-length must be a decimal number",
                )
            })
        })
        .transpose()?;
    let signer = (mode != StreamingMode::UnsignedTrailer).then(|| ChunkSigner {
        key,
        amz_date: request.amz_date.clone(),
        scope,
        previous: hex::encode(request.signature),
    });
    Ok(PayloadCheck::Streaming(Box::new(ChunkedDecoder::new(
        mode,
        signer,
        decoded_len,
        trailer,
    ))))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamingMode {
    Signed,
    SignedTrailer,
    UnsignedTrailer,
}

/// Verifies the chained chunk and trailer signatures ("sigv4-streaming"): each string to sign
/// carries the previous signature, starting from the request's (seed) signature.
struct ChunkSigner {
    key: hmac::Key,
    amz_date: String,
    scope: String,
    /// Lowercase hex of the last verified signature.
    previous: String,
}

impl ChunkSigner {
    fn verify_chunk(&mut self, data_sha256: &[u8; 32], provided: &[u8; 32]) -> Result<(), S3Error> {
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{EMPTY_SHA256_HEX}\n{}",
            self.amz_date,
            self.scope,
            self.previous,
            hex::encode(data_sha256)
        );
        self.verify(&string_to_sign, provided, "chunk")
    }

    fn verify_trailer(
        &mut self,
        canonical_trailers: &[u8],
        provided: &[u8; 32],
    ) -> Result<(), S3Error> {
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            self.amz_date,
            self.scope,
            self.previous,
            hex::encode(sha256(canonical_trailers))
        );
        self.verify(&string_to_sign, provided, "trailer")
    }

    fn verify(
        &mut self,
        string_to_sign: &str,
        provided: &[u8; 32],
        what: &str,
    ) -> Result<(), S3Error> {
        let computed = hmac_sha256(&self.key, string_to_sign.as_bytes());
        constant_time::verify_slices_are_equal(&computed, provided).map_err(|_| {
            S3Error::new(
                S3ErrorCode::SignatureDoesNotMatch,
                format!("The {what} signature we calculated does not match the one you provided."),
            )
        })?;
        self.previous = hex::encode(computed);
        Ok(())
    }
}

/// The flexible checksums S3 accepts as a trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChecksumKind {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumKind {
    fn from_header(name: &str) -> Option<Self> {
        Some(match name {
            "x-amz-checksum-crc32" => Self::Crc32,
            "x-amz-checksum-crc32c" => Self::Crc32c,
            "x-amz-checksum-crc64nvme" => Self::Crc64Nvme,
            "x-amz-checksum-sha1" => Self::Sha1,
            "x-amz-checksum-sha256" => Self::Sha256,
            _ => return None,
        })
    }

    fn header(self) -> &'static str {
        match self {
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Self::Sha1 => "x-amz-checksum-sha1",
            Self::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// Bytes of the checksum value.
    fn width(self) -> usize {
        match self {
            Self::Crc32 | Self::Crc32c => 4,
            Self::Crc64Nvme => 8,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }

    fn hasher(self) -> Checksum {
        use crc_fast::CrcAlgorithm;
        let crc =
            |algorithm| Checksum::Crc(Box::new(crc_fast::Digest::new(algorithm)), self.width());
        match self {
            Self::Crc32 => crc(CrcAlgorithm::Crc32IsoHdlc),
            Self::Crc32c => crc(CrcAlgorithm::Crc32Iscsi),
            Self::Crc64Nvme => crc(CrcAlgorithm::Crc64Nvme),
            Self::Sha1 => Checksum::Sha(digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY)),
            Self::Sha256 => Checksum::Sha(digest::Context::new(&digest::SHA256)),
        }
    }
}

/// A flexible checksum sent as a request header (`x-amz-checksum-crc32: <base64>` and the
/// others): computed over the decoded body and compared at its end.
pub struct HeaderChecksum {
    kind: ChecksumKind,
    expected: Vec<u8>,
    hasher: Checksum,
}

impl fmt::Debug for HeaderChecksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderChecksum")
            .field("header", &self.kind.header())
            .finish_non_exhaustive()
    }
}

impl HeaderChecksum {
    /// The checksum header of a request, if it has one (more than one is refused).
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, S3Error> {
        let mut found: Option<Self> = None;
        for (name, value) in headers {
            let Some(kind) = ChecksumKind::from_header(name.as_str()) else {
                continue;
            };
            if found.is_some() {
                return Err(S3Error::new(
                    S3ErrorCode::InvalidRequest,
                    "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
                ));
            }
            let expected = value
                .to_str()
                .ok()
                .and_then(|text| {
                    base64::engine::general_purpose::STANDARD
                        .decode(text.trim())
                        .ok()
                })
                .filter(|bytes| bytes.len() == kind.width())
                .ok_or_else(|| {
                    S3Error::new(
                        S3ErrorCode::InvalidRequest,
                        format!("Value for {} header is invalid.", kind.header()),
                    )
                })?;
            found = Some(Self {
                kind,
                expected,
                hasher: kind.hasher(),
            });
        }
        Ok(found)
    }

    pub fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
    }

    /// Compares with the header; gives the header back (name, base64 value) to echo.
    pub fn verify(self) -> Result<(String, String), S3Error> {
        let actual = self.hasher.finish();
        if actual != self.expected {
            return Err(S3Error::new(
                S3ErrorCode::BadDigest,
                format!(
                    "The {} you specified did not match the calculated checksum.",
                    self.kind.header()
                ),
            ));
        }
        Ok((
            self.kind.header().to_owned(),
            base64::engine::general_purpose::STANDARD.encode(actual),
        ))
    }
}

enum Checksum {
    /// The CRC and its width in bytes (sent big-endian).
    Crc(Box<crc_fast::Digest>, usize),
    Sha(digest::Context),
}

impl Checksum {
    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Crc(crc, _) => crc.update(data),
            Self::Sha(ctx) => ctx.update(data),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Self::Crc(crc, width) => {
                let bytes = crc.finalize().to_be_bytes();
                bytes
                    .get(bytes.len().saturating_sub(width)..)
                    .unwrap_or(&bytes)
                    .to_vec()
            }
            Self::Sha(ctx) => ctx.finish().as_ref().to_vec(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading `hex-size[;chunk-signature=sig]\r\n`.
    ChunkHeader,
    Data {
        remaining: u64,
    },
    /// Expecting the CRLF after chunk data; `seen` bytes of it read.
    DataEnd {
        seen: u8,
    },
    /// After the zero-length chunk: trailer lines up to an empty line.
    Trailer,
    Done,
}

/// Incremental `aws-chunked` decoder. Feed the raw body in pieces of any size; decoded payload
/// bytes are appended to `out`. Every chunk signature (signed variants, chained from the seed
/// signature), the final zero-length chunk, the trailer signature (signed `-TRAILER`) and the
/// trailing checksum are verified, and `x-amz-decoded-content-length` is enforced when sent.
///
/// A chunk's bytes reach `out` before its signature (at the chunk's end) and the checksum (at
/// the trailer) are checked: nothing decoded may be committed before [`finish`](Self::finish)
/// returns `Ok`. Memory stays bounded whatever the input (lines and chunks are capped).
pub struct ChunkedDecoder {
    mode: StreamingMode,
    signer: Option<ChunkSigner>,
    expected_len: Option<u64>,
    expected_trailer: Option<ChecksumKind>,
    checksum: Option<Checksum>,
    state: State,
    line: Vec<u8>,
    chunk_sha256: Option<digest::Context>,
    chunk_signature: [u8; 32],
    decoded_len: u64,
    trailers: Vec<(String, String)>,
    trailer_signature: Option<[u8; 32]>,
    blank_before_trailers: bool,
    trailer_checksum: Option<(String, String)>,
    failed: Option<S3Error>,
}

/// The result of a fully decoded and verified `aws-chunked` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedInfo {
    pub decoded_len: u64,
    /// The verified trailing checksum: its header name (`x-amz-checksum-crc32`...) and base64 value.
    pub trailer_checksum: Option<(String, String)>,
}

impl fmt::Debug for ChunkedDecoder {
    // The signing key stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkedDecoder")
            .field("mode", &self.mode)
            .field("expected_len", &self.expected_len)
            .field("expected_trailer", &self.expected_trailer)
            .field("state", &self.state)
            .field("decoded_len", &self.decoded_len)
            .finish_non_exhaustive()
    }
}

fn malformed(message: impl Into<String>) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidRequest, message)
}

impl ChunkedDecoder {
    fn new(
        mode: StreamingMode,
        signer: Option<ChunkSigner>,
        expected_len: Option<u64>,
        expected_trailer: Option<ChecksumKind>,
    ) -> Self {
        Self {
            mode,
            signer,
            expected_len,
            expected_trailer,
            checksum: expected_trailer.map(ChecksumKind::hasher),
            state: State::ChunkHeader,
            line: Vec::new(),
            chunk_sha256: None,
            chunk_signature: [0; 32],
            decoded_len: 0,
            trailers: Vec::new(),
            trailer_signature: None,
            blank_before_trailers: false,
            trailer_checksum: None,
            failed: None,
        }
    }

    /// `x-amz-decoded-content-length`, when the client sent it.
    pub fn decoded_content_length(&self) -> Option<u64> {
        self.expected_len
    }

    /// The checksum header announced in `x-amz-trailer`, if any.
    pub fn expected_trailer(&self) -> Option<&'static str> {
        self.expected_trailer.map(ChecksumKind::header)
    }

    /// Decodes the next piece of the raw body. After an error every later call fails the same way.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), S3Error> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let result = self.feed_inner(input, out);
        if let Err(error) = &result {
            self.failed = Some(error.clone());
        }
        result
    }

    /// Ends the body: fails if it stopped before the final chunk and trailer were complete.
    pub fn finish(self) -> Result<DecodedInfo, S3Error> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        if self.state != State::Done {
            return Err(S3Error::new(
                S3ErrorCode::IncompleteBody,
                "The request body ended before the final aws-chunked chunk.",
            ));
        }
        Ok(DecodedInfo {
            decoded_len: self.decoded_len,
            trailer_checksum: self.trailer_checksum,
        })
    }

    fn feed_inner(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), S3Error> {
        while !input.is_empty() {
            match self.state {
                State::ChunkHeader | State::Trailer => {
                    let (piece, rest, complete) = match input.iter().position(|&b| b == b'\n') {
                        Some(end) => {
                            let (piece, rest) = input.split_at(end + 1);
                            (piece, rest, true)
                        }
                        None => (input, &[][..], false),
                    };
                    if self.line.len() + piece.len() > MAX_LINE {
                        return Err(malformed(format!(
                            "aws-chunked line longer than {MAX_LINE} bytes"
                        )));
                    }
                    self.line.extend_from_slice(piece);
                    input = rest;
                    if complete {
                        let line = std::mem::take(&mut self.line);
                        let line = line
                            .strip_suffix(b"\r\n")
                            .ok_or_else(|| malformed("aws-chunked lines must end with CRLF"))?;
                        if self.state == State::ChunkHeader {
                            self.on_chunk_header(line)?;
                        } else {
                            self.on_trailer_line(line)?;
                        }
                    }
                }
                State::Data { remaining } => {
                    let take = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(input.len());
                    let (data, rest) = input.split_at(take);
                    if let Some(ctx) = &mut self.chunk_sha256 {
                        ctx.update(data);
                    }
                    if let Some(checksum) = &mut self.checksum {
                        checksum.update(data);
                    }
                    out.extend_from_slice(data);
                    input = rest;
                    let remaining =
                        remaining.saturating_sub(u64::try_from(take).unwrap_or(u64::MAX));
                    self.state = State::Data { remaining };
                    if remaining == 0 {
                        if let (Some(signer), Some(ctx)) =
                            (&mut self.signer, self.chunk_sha256.take())
                        {
                            let mut data_sha256 = [0u8; 32];
                            data_sha256.copy_from_slice(ctx.finish().as_ref());
                            signer.verify_chunk(&data_sha256, &self.chunk_signature)?;
                        }
                        self.state = State::DataEnd { seen: 0 };
                    }
                }
                State::DataEnd { seen } => {
                    let expected = if seen == 0 { b'\r' } else { b'\n' };
                    let (&byte, rest) = input
                        .split_first()
                        .ok_or_else(|| malformed("aws-chunked framing"))?;
                    if byte != expected {
                        return Err(malformed("aws-chunked chunk data must be followed by CRLF"));
                    }
                    input = rest;
                    self.state = if seen == 0 {
                        State::DataEnd { seen: 1 }
                    } else {
                        State::ChunkHeader
                    };
                }
                State::Done => {
                    return Err(malformed("data after the end of the aws-chunked body"));
                }
            }
        }
        Ok(())
    }

    fn on_chunk_header(&mut self, line: &[u8]) -> Result<(), S3Error> {
        let mut fields = line.split(|&b| b == b';');
        let size = fields.next().unwrap_or_default();
        if size.is_empty() || size.len() > 16 || !size.iter().all(u8::is_ascii_hexdigit) {
            return Err(malformed("invalid aws-chunked chunk size"));
        }
        let size = size
            .iter()
            .try_fold(0u64, |acc, &d| {
                let digit = u64::from(char::from(d).to_digit(16)?);
                acc.checked_mul(16)?.checked_add(digit)
            })
            .ok_or_else(|| malformed("invalid aws-chunked chunk size"))?;
        if size > MAX_CHUNK_SIZE {
            return Err(malformed(format!(
                "aws-chunked chunk of {size} bytes exceeds the {MAX_CHUNK_SIZE}-byte limit"
            )));
        }
        let new_len = self.decoded_len.saturating_add(size);
        if self.expected_len.is_some_and(|expected| new_len > expected) {
            return Err(malformed(
                "the aws-chunked body is longer than x-amz-decoded-content-length",
            ));
        }
        if self.signer.is_some() {
            let mut signature = None;
            for extension in fields {
                if let Some(value) = extension.strip_prefix(b"chunk-signature=") {
                    if signature.is_some() {
                        return Err(malformed("chunk-signature given twice"));
                    }
                    signature = Some(parse_hex32(value).ok_or_else(|| {
                        S3Error::new(
                            S3ErrorCode::SignatureDoesNotMatch,
                            "chunk-signature must be 64 hexadecimal characters",
                        )
                    })?);
                }
            }
            self.chunk_signature =
                signature.ok_or_else(|| malformed("aws-chunked chunk without chunk-signature"))?;
        }
        self.decoded_len = new_len;
        if size == 0 {
            if let Some(signer) = &mut self.signer {
                signer.verify_chunk(&sha256(&[]), &self.chunk_signature)?;
            }
            self.state = State::Trailer;
        } else {
            self.chunk_sha256 = self
                .signer
                .is_some()
                .then(|| digest::Context::new(&digest::SHA256));
            self.state = State::Data { remaining: size };
        }
        Ok(())
    }

    fn on_trailer_line(&mut self, line: &[u8]) -> Result<(), S3Error> {
        if line.is_empty() {
            // Tolerates a blank line between the final chunk and the trailers.
            let nothing_yet = self.trailers.is_empty() && self.trailer_signature.is_none();
            if nothing_yet && self.expected_trailer.is_some() && !self.blank_before_trailers {
                self.blank_before_trailers = true;
                return Ok(());
            }
            return self.end_of_trailers();
        }
        if self.mode == StreamingMode::Signed {
            return Err(malformed(
                "trailers need x-amz-content-sha256 STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
            ));
        }
        if self.trailer_signature.is_some() {
            return Err(malformed(
                "x-amz-trailer-signature must be the last trailer",
            ));
        }
        if self.trailers.len() >= MAX_TRAILER_LINES {
            return Err(malformed("too many trailers"));
        }
        let line = std::str::from_utf8(line).map_err(|_| malformed("trailer is not UTF-8"))?;
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| malformed("trailer without ':'"))?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        if name == "x-amz-trailer-signature" {
            if self.mode != StreamingMode::SignedTrailer {
                return Err(malformed(
                    "x-amz-trailer-signature in an unsigned aws-chunked body",
                ));
            }
            self.trailer_signature = Some(parse_hex32(value.as_bytes()).ok_or_else(|| {
                S3Error::new(
                    S3ErrorCode::SignatureDoesNotMatch,
                    "x-amz-trailer-signature must be 64 hexadecimal characters",
                )
            })?);
            return Ok(());
        }
        if self.expected_trailer.map(ChecksumKind::header) != Some(name.as_str()) {
            return Err(malformed(format!(
                "trailer {name} was not announced in x-amz-trailer"
            )));
        }
        if self.trailers.iter().any(|(n, _)| *n == name) {
            return Err(malformed(format!("trailer {name} given twice")));
        }
        self.trailers.push((name, value.to_owned()));
        Ok(())
    }

    fn end_of_trailers(&mut self) -> Result<(), S3Error> {
        if let Some(signer) = &mut self.signer
            && (!self.trailers.is_empty() || self.trailer_signature.is_some())
        {
            let provided = self.trailer_signature.ok_or_else(|| {
                S3Error::new(
                    S3ErrorCode::SignatureDoesNotMatch,
                    "signed trailers need x-amz-trailer-signature",
                )
            })?;
            let mut sorted: Vec<&(String, String)> = self.trailers.iter().collect();
            sorted.sort();
            let mut canonical = Vec::new();
            for (name, value) in sorted {
                canonical.extend_from_slice(name.as_bytes());
                canonical.push(b':');
                canonical.extend_from_slice(value.as_bytes());
                canonical.push(b'\n');
            }
            signer.verify_trailer(&canonical, &provided)?;
        }
        if let Some(kind) = self.expected_trailer {
            let value = self
                .trailers
                .iter()
                .find(|(name, _)| name == kind.header())
                .map(|(_, value)| value.clone())
                .ok_or_else(|| {
                    malformed(format!(
                        "the trailing checksum {} announced in x-amz-trailer is missing",
                        kind.header()
                    ))
                })?;
            let sent = base64::engine::general_purpose::STANDARD
                .decode(value.as_bytes())
                .map_err(|_| {
                    S3Error::new(
                        S3ErrorCode::InvalidDigest,
                        format!("Value for {} trailing header is invalid.", kind.header()),
                    )
                })?;
            let computed = self
                .checksum
                .take()
                .map(Checksum::finish)
                .unwrap_or_default();
            if sent.len() != computed.len() {
                return Err(S3Error::new(
                    S3ErrorCode::InvalidDigest,
                    format!("Value for {} trailing header is invalid.", kind.header()),
                ));
            }
            if constant_time::verify_slices_are_equal(&sent, &computed).is_err() {
                return Err(S3Error::new(
                    S3ErrorCode::BadDigest,
                    format!(
                        "The {} you specified did not match the calculated checksum.",
                        kind.header()
                    ),
                ));
            }
            self.trailer_checksum = Some((kind.header().to_owned(), value));
        }
        if let Some(expected) = self.expected_len
            && self.decoded_len != expected
        {
            return Err(S3Error::new(
                S3ErrorCode::IncompleteBody,
                format!(
                    "The aws-chunked body decoded to {} bytes, x-amz-decoded-content-length says {expected}.",
                    self.decoded_len
                ),
            ));
        }
        self.state = State::Done;
        Ok(())
    }
}

fn parse_hex32(text: &[u8]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `yyyyMMdd'T'HHmmss'Z'` (ISO 8601 basic format, UTC).
fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let bytes = text.as_bytes();
    if bytes.len() != 16 || bytes.get(8) != Some(&b'T') || bytes.get(15) != Some(&b'Z') {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<u64> {
        let digits = bytes.get(from..to)?;
        digits.iter().try_fold(0u64, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + u64::from(d - b'0'))
        })
    };
    let (year, month, day) = (number(0, 4)?, number(4, 6)?, number(6, 8)?);
    let (hour, minute, second) = (number(9, 11)?, number(11, 13)?, number(13, 15)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if year < 1970 || day == 0 || day > month_days || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Days from 1970-01-01 ("days_from_civil", H. Hinnant), all values non-negative here.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = (era * 146_097 + day_of_era).checked_sub(719_468)?;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
        SigningSettings, UriPathNormalizationMode, sign,
    };
    use aws_sigv4::sign::v4;
    use aws_smithy_runtime_api::client::identity::Identity;
    use http::{HeaderName, HeaderValue};

    const AK: &str = "AKIDSERRANOTEST0001";
    const SK: &str = "serrano/secret+KEY0123456789abcdefEXAMPLE";
    const HOST: &str = "gw.local:7113";
    /// 2026-11-23T10:00:00Z.
    const T0: u64 = 1_795_428_000;

    fn t0() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(T0)
    }

    fn secrets(access_key: &str) -> Option<String> {
        (access_key == AK).then(|| SK.to_owned())
    }

    struct Req {
        method: &'static str,
        path: String,
        query: Option<String>,
        headers: HeaderMap,
        signature: String,
    }

    impl Req {
        fn parts(&self) -> RequestParts<'_> {
            RequestParts {
                method: self.method,
                raw_path: &self.path,
                raw_query: self.query.as_deref(),
                headers: &self.headers,
            }
        }

        fn auth(&self, now: SystemTime) -> Result<Authenticated, S3Error> {
            authenticate(&self.parts(), now, secrets)
        }
    }

    fn s3_settings() -> SigningSettings {
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings
    }

    /// Signs with the reference implementation (`aws-sigv4`, S3 settings: single encoding, no
    /// path normalisation, `x-amz-content-sha256`), as an SDK would send the request.
    fn signed(
        method: &'static str,
        path_and_query: &str,
        extra: &[(&str, &str)],
        body: SignableBody<'_>,
        time: SystemTime,
        secret: &str,
        presign: Option<Duration>,
    ) -> Req {
        let identity: Identity = Credentials::new(AK, secret, None, None, "test").into();
        let mut settings = s3_settings();
        if let Some(expires) = presign {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(expires);
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("local")
            .name("s3")
            .time(time)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let mut input = vec![("host", HOST)];
        input.extend_from_slice(extra);
        let request = SignableRequest::new(
            method,
            format!("http://{HOST}{path_and_query}"),
            input.iter().copied(),
            body,
        )
        .unwrap();
        let (instructions, signature) = sign(request, &params).unwrap().into_parts();
        let mut headers = HeaderMap::new();
        let added = instructions
            .headers()
            .map(|(n, v)| (n.to_owned(), v.to_owned()));
        let original = input.iter().map(|(n, v)| (n.to_string(), v.to_string()));
        for (name, value) in original.chain(added) {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(&value).unwrap(),
            );
        }
        let (path, mut query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (path_and_query.to_owned(), None),
        };
        for (name, value) in instructions.params() {
            let mut pair = format!("{name}=");
            uri_encode(&mut pair, value.as_bytes());
            query = Some(match query {
                Some(q) if !q.is_empty() => format!("{q}&{pair}"),
                _ => pair,
            });
        }
        Req {
            method,
            path,
            query,
            headers,
            signature,
        }
    }

    fn get(path_and_query: &str) -> Req {
        signed(
            "GET",
            path_and_query,
            &[],
            SignableBody::empty(),
            t0(),
            SK,
            None,
        )
    }

    fn code(result: Result<Authenticated, S3Error>) -> S3ErrorCode {
        result.unwrap_err().code
    }

    #[test]
    fn header_auth_get_verifies() {
        let req = get("/bucket/key.txt");
        let auth = req.auth(t0()).unwrap();
        assert_eq!(auth.access_key, AK);
        assert_eq!(auth.region, "local");
        assert!(!auth.presigned);
        // SignableBody::empty() signs the digest of the empty body.
        match auth.payload {
            PayloadCheck::Sha256(d) => assert_eq!(hex::encode(d), EMPTY_SHA256_HEX),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn header_auth_put_with_payload_hash_and_unsigned_payload() {
        let body = b"hello, storage";
        let req = signed(
            "PUT",
            "/bucket/obj",
            &[
                ("content-type", "text/plain"),
                ("x-amz-meta-colour", "  deep   blue "),
            ],
            SignableBody::Bytes(body),
            t0(),
            SK,
            None,
        );
        let PayloadCheck::Sha256(expected) = req.auth(t0()).unwrap().payload else {
            panic!("sha256 payload expected");
        };
        check_sha256(&expected, &sha256(body)).unwrap();
        let err = check_sha256(&expected, &sha256(b"other")).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::XAmzContentSHA256Mismatch);

        let req = signed(
            "PUT",
            "/bucket/obj",
            &[],
            SignableBody::UnsignedPayload,
            t0(),
            SK,
            None,
        );
        assert!(matches!(
            req.auth(t0()).unwrap().payload,
            PayloadCheck::Unsigned
        ));
    }

    #[test]
    fn keys_with_special_characters() {
        // As SDKs send them: each segment UriEncoded, `/` kept.
        for key in [
            "a b.txt",
            "100%",
            "c++/x=y&z",
            "ünïcödé/日本語",
            "~tilde-_.",
            "semi;colon,comma",
        ] {
            let mut path = String::from("/bucket");
            for segment in key.split('/') {
                path.push('/');
                uri_encode(&mut path, segment.as_bytes());
            }
            let req = get(&path);
            req.auth(t0()).unwrap_or_else(|e| panic!("{key}: {e}"));
        }
        // Signed as sent, not SDK-encoded (the raw candidate).
        for path in ["/bucket/a+b=c!", "/bucket/(x)*'y'", "/bucket/%c3%a9"] {
            get(path)
                .auth(t0())
                .unwrap_or_else(|e| panic!("{path}: {e}"));
        }
        // Signed canonically, sent with `+`, `!` and lowercase escapes (the re-encoded candidate).
        let mut req = get("/bucket/a%2Bb%21/%C3%A9");
        req.path = "/bucket/a+b!/%c3%a9".to_owned();
        req.auth(t0()).unwrap();
        // `%2F` is not `/`: a different key, so the signature must not cover it.
        let mut req = get("/bucket/a%2Fb");
        req.path = "/bucket/a/b".to_owned();
        assert_eq!(code(req.auth(t0())), S3ErrorCode::SignatureDoesNotMatch);
    }

    #[test]
    fn query_strings() {
        for pq in [
            "/bucket?uploads",
            "/bucket?list-type=2&prefix=a%20b",
            "/bucket?prefix=a+b&delimiter=%2F",
            "/bucket?versions&prefix=&max-keys=10&key-marker=k%C3%A9",
            "/bucket/obj?partNumber=2&uploadId=abc%2Bdef%3D%3D",
            "/bucket?z=1&a=2&a=1&m",
            "/bucket?prefix=photos/2026/",
        ] {
            get(pq).auth(t0()).unwrap_or_else(|e| panic!("{pq}: {e}"));
        }
        let mut req = get("/bucket?list-type=2&prefix=a");
        req.query = Some("list-type=2&prefix=b".to_owned());
        assert_eq!(code(req.auth(t0())), S3ErrorCode::SignatureDoesNotMatch);
    }

    #[test]
    fn presigned_get() {
        let req = signed(
            "GET",
            "/bucket/some%20key.bin?response-content-type=text%2Fplain",
            &[],
            SignableBody::UnsignedPayload,
            t0(),
            SK,
            Some(Duration::from_secs(300)),
        );
        assert!(req.headers.get("authorization").is_none());
        let auth = req.auth(t0() + Duration::from_secs(299)).unwrap();
        assert!(auth.presigned);
        assert!(matches!(auth.payload, PayloadCheck::Unsigned));

        let expired = req.auth(t0() + Duration::from_secs(301)).unwrap_err();
        assert_eq!(expired.code, S3ErrorCode::AccessDenied);
        assert_eq!(expired.message, "Request has expired");
        assert_eq!(
            code(req.auth(t0() - Duration::from_secs(16 * 60))),
            S3ErrorCode::RequestTimeTooSkewed
        );
        // Still valid when the URL was made a little in the future by a skewed client clock.
        req.auth(t0() - Duration::from_secs(60)).unwrap();

        let mut tampered = signed(
            "GET",
            "/bucket/k",
            &[],
            SignableBody::UnsignedPayload,
            t0(),
            SK,
            Some(Duration::from_secs(300)),
        );
        tampered.query = tampered
            .query
            .map(|q| q.replace("X-Amz-Expires=300", "X-Amz-Expires=600"));
        assert_eq!(
            code(tampered.auth(t0())),
            S3ErrorCode::SignatureDoesNotMatch
        );

        let too_long = signed(
            "GET",
            "/bucket/k",
            &[],
            SignableBody::UnsignedPayload,
            t0(),
            SK,
            Some(Duration::from_secs(MAX_PRESIGNED_EXPIRES + 1)),
        );
        assert_eq!(code(too_long.auth(t0())), S3ErrorCode::InvalidArgument);
    }

    #[test]
    fn rejections() {
        let wrong_secret = signed(
            "GET",
            "/b/k",
            &[],
            SignableBody::empty(),
            t0(),
            "nope",
            None,
        );
        assert_eq!(
            code(wrong_secret.auth(t0())),
            S3ErrorCode::SignatureDoesNotMatch
        );

        let req = get("/b/k");
        let unknown = authenticate(&req.parts(), t0(), |_| None);
        assert_eq!(code(unknown), S3ErrorCode::InvalidAccessKeyId);

        let mut tampered = signed(
            "GET",
            "/b/k",
            &[("range", "bytes=0-9")],
            SignableBody::empty(),
            t0(),
            SK,
            None,
        );
        tampered
            .headers
            .insert("range", HeaderValue::from_static("bytes=0-99"));
        assert_eq!(
            code(tampered.auth(t0())),
            S3ErrorCode::SignatureDoesNotMatch
        );

        let mut method = get("/b/k");
        method.method = "DELETE";
        assert_eq!(code(method.auth(t0())), S3ErrorCode::SignatureDoesNotMatch);

        let skew = Duration::from_secs(16 * 60);
        assert_eq!(
            code(req.auth(t0() + skew)),
            S3ErrorCode::RequestTimeTooSkewed
        );
        assert_eq!(
            code(req.auth(t0() - skew)),
            S3ErrorCode::RequestTimeTooSkewed
        );
        req.auth(t0() + Duration::from_secs(14 * 60)).unwrap();

        let mut unsigned_amz = get("/b/k");
        unsigned_amz.headers.insert(
            "x-amz-copy-source",
            HeaderValue::from_static("/other/secret"),
        );
        let err = unsigned_amz.auth(t0()).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::AccessDenied);
        assert!(err.message.contains("x-amz-copy-source"));

        let mut no_sha = get("/b/k");
        no_sha.headers.remove("x-amz-content-sha256");
        assert_eq!(code(no_sha.auth(t0())), S3ErrorCode::InvalidRequest);

        let anonymous = Req {
            method: "GET",
            path: "/b/k".into(),
            query: None,
            headers: HeaderMap::new(),
            signature: String::new(),
        };
        assert_eq!(code(anonymous.auth(t0())), S3ErrorCode::AccessDenied);

        let mut v2 = get("/b/k");
        v2.headers.insert(
            "authorization",
            HeaderValue::from_static("AWS AKID:c2lnbmF0dXJl"),
        );
        assert_eq!(code(v2.auth(t0())), S3ErrorCode::InvalidRequest);

        for bad in [
            "AWS4-HMAC-SHA256 Credential=AKID/20261123/local/s3/aws4_request, SignedHeaders=host",
            "AWS4-HMAC-SHA256 Credential=AKID/20261123/local/ec2/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKID/2026112/local/s3/aws4_request,SignedHeaders=host,Signature=0000000000000000000000000000000000000000000000000000000000000000",
            "AWS4-HMAC-SHA256 Credential=AKID/20261123/local/s3/aws4_request,SignedHeaders=x-amz-date,Signature=0000000000000000000000000000000000000000000000000000000000000000",
            "AWS4-HMAC-SHA256 Credential=AKID/20261124/local/s3/aws4_request,SignedHeaders=host,Signature=0000000000000000000000000000000000000000000000000000000000000000",
            "AWS4-HMAC-SHA256 Credential=AKID/20261123/local/s3/aws4_request,SignedHeaders=Host,Signature=0000000000000000000000000000000000000000000000000000000000000000",
            "AWS4-HMAC-SHA256 Bogus=1",
            "AWS4-HMAC-SHA256",
        ] {
            let mut req = get("/b/k");
            req.headers
                .insert("authorization", HeaderValue::from_str(bad).unwrap());
            assert_eq!(
                code(req.auth(t0())),
                S3ErrorCode::AuthorizationHeaderMalformed,
                "{bad}"
            );
        }
    }

    #[test]
    fn amz_dates() {
        let at = |s| parse_amz_date(s).map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs());
        assert_eq!(at("19700101T000000Z"), Some(0));
        assert_eq!(at("20130524T000000Z"), Some(1_369_353_600));
        assert_eq!(at("20261123T100000Z"), Some(T0));
        assert_eq!(at("20240229T235959Z"), Some(1_709_251_199));
        for bad in [
            "20230229T000000Z",
            "20261323T000000Z",
            "20261123T240000Z",
            "20261123 100000Z",
            "2026-11-23T10:00",
            "+0261123T100000Z",
            "",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
    }

    #[test]
    fn crc_algorithms_match_the_catalogue() {
        let check = |kind: ChecksumKind| {
            let mut c = kind.hasher();
            c.update(b"1234");
            c.update(b"56789");
            c.finish()
        };
        assert_eq!(check(ChecksumKind::Crc32), 0xCBF4_3926u32.to_be_bytes());
        assert_eq!(check(ChecksumKind::Crc32c), 0xE306_9283u32.to_be_bytes());
        assert_eq!(
            check(ChecksumKind::Crc64Nvme),
            0xAE8B_1486_0A79_9888u64.to_be_bytes()
        );
        assert_eq!(check(ChecksumKind::Sha1).len(), 20);
        assert_eq!(check(ChecksumKind::Sha256), sha256(b"123456789"));
    }

    // --- aws-chunked ---

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn checksum_of(kind: ChecksumKind, data: &[u8]) -> String {
        let mut c = kind.hasher();
        c.update(data);
        b64(&c.finish())
    }

    /// Tiny deterministic generator for split points and data.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn feed_split(
        decoder: &mut ChunkedDecoder,
        body: &[u8],
        rng: &mut Rng,
        max_piece: usize,
    ) -> Result<Vec<u8>, S3Error> {
        let mut out = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            let n = (1 + rng.below(max_piece)).min(rest.len());
            let (piece, tail) = rest.split_at(n);
            decoder.feed(piece, &mut out)?;
            rest = tail;
        }
        Ok(out)
    }

    /// An aws-chunked body as the SDK writes it; chunk and trailer signatures from `aws-sigv4`.
    fn chunked_body(
        data: &[u8],
        chunk_size: usize,
        seed: &str,
        time: SystemTime,
        mode: StreamingMode,
        trailer: Option<(&str, String)>,
    ) -> Vec<u8> {
        let identity: Identity = Credentials::new(AK, SK, None, None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("local")
            .name("s3")
            .time(time)
            .settings(s3_settings())
            .build()
            .unwrap();
        let signed = mode != StreamingMode::UnsignedTrailer;
        let mut running = seed.to_owned();
        let mut body = Vec::new();
        let mut chunks: Vec<&[u8]> = data.chunks(chunk_size).collect();
        chunks.push(&[]);
        for chunk in chunks {
            body.extend_from_slice(format!("{:X}", chunk.len()).as_bytes());
            if signed {
                let bytes = bytes::Bytes::copy_from_slice(chunk);
                running = v4::sign_chunk(&bytes, &running, &params)
                    .unwrap()
                    .signature()
                    .to_owned();
                body.extend_from_slice(format!(";chunk-signature={running}").as_bytes());
            }
            body.extend_from_slice(b"\r\n");
            body.extend_from_slice(chunk);
            if !chunk.is_empty() {
                body.extend_from_slice(b"\r\n");
            }
        }
        if let Some((name, value)) = trailer {
            body.extend_from_slice(format!("{name}:{value}\r\n").as_bytes());
            if signed {
                let mut headers = aws_smithy_runtime_api::http::Headers::new();
                headers.insert(name.to_owned(), value.clone());
                let signature = v4::sign_trailer(&headers, &running, &params).unwrap();
                body.extend_from_slice(
                    format!("x-amz-trailer-signature:{}\r\n", signature.signature()).as_bytes(),
                );
            }
        }
        body.extend_from_slice(b"\r\n");
        body
    }

    fn streaming_request(mode: StreamingMode, len: usize, trailer: Option<&str>) -> Req {
        let hash = match mode {
            StreamingMode::Signed => STREAMING_SIGNED,
            StreamingMode::SignedTrailer => STREAMING_SIGNED_TRAILER,
            StreamingMode::UnsignedTrailer => STREAMING_UNSIGNED_TRAILER,
        };
        let len = len.to_string();
        let mut extra = vec![
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", len.as_str()),
        ];
        if let Some(name) = trailer {
            extra.push(("x-amz-trailer", name));
        }
        signed(
            "PUT",
            "/bucket/big%20object",
            &extra,
            SignableBody::Precomputed(hash.to_owned()),
            t0(),
            SK,
            None,
        )
    }

    fn decoder_of(req: &Req) -> Box<ChunkedDecoder> {
        match req.auth(t0()).unwrap().payload {
            PayloadCheck::Streaming(decoder) => decoder,
            other => panic!("streaming expected, got {other:?}"),
        }
    }

    fn replace_last(haystack: &[u8], needle: &[u8], replacement: &[u8]) -> Vec<u8> {
        let at = haystack
            .windows(needle.len())
            .rposition(|w| w == needle)
            .unwrap();
        [&haystack[..at], replacement, &haystack[at + needle.len()..]].concat()
    }

    fn test_data(len: usize, seed: u64) -> Vec<u8> {
        let mut rng = Rng(seed);
        (0..len).map(|_| rng.next() as u8).collect()
    }

    #[test]
    fn own_seed_signature_matches_aws_sigv4() {
        let req = streaming_request(StreamingMode::Signed, 10, None);
        let decoder = decoder_of(&req);
        assert_eq!(decoder.signer.as_ref().unwrap().previous, req.signature);
    }

    #[test]
    fn signed_chunks_decode_with_any_split() {
        let data = test_data(200_000, 7);
        let req = streaming_request(StreamingMode::Signed, data.len(), None);
        let body = chunked_body(
            &data,
            65_536,
            &req.signature,
            t0(),
            StreamingMode::Signed,
            None,
        );
        let mut rng = Rng(42);
        for max_piece in [1, 2, 7, 100, 4096, 70_000, body.len()] {
            let mut decoder = decoder_of(&req);
            let out = feed_split(&mut decoder, &body, &mut rng, max_piece).unwrap();
            assert_eq!(out, data);
            let info = decoder.finish().unwrap();
            assert_eq!(info.decoded_len, data.len() as u64);
            assert_eq!(info.trailer_checksum, None);
        }
    }

    #[test]
    fn signed_chunks_reject_tampering_and_truncation() {
        let data = test_data(20_000, 9);
        let req = streaming_request(StreamingMode::Signed, data.len(), None);
        let body = chunked_body(
            &data,
            8192,
            &req.signature,
            t0(),
            StreamingMode::Signed,
            None,
        );

        let mut tampered = body.clone();
        let at = tampered.len() / 2;
        tampered[at] ^= 1;
        let mut decoder = decoder_of(&req);
        let err = decoder.feed(&tampered, &mut Vec::new()).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::SignatureDoesNotMatch);
        assert_eq!(decoder.feed(b"", &mut Vec::new()).unwrap_err(), err);

        // Chunks swapped in order: the chain breaks.
        let other = chunked_body(
            &data,
            4096,
            &req.signature,
            t0(),
            StreamingMode::Signed,
            None,
        );
        let mut decoder = decoder_of(&req);
        let first_chunk_end = other.windows(2).position(|w| w == b"\r\n").unwrap() + 2 + 4096 + 2;
        let second = &other[first_chunk_end..];
        let err = decoder.feed(second, &mut Vec::new()).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::SignatureDoesNotMatch);

        for cut in [1, 10, body.len() / 2, body.len() - 2, body.len() - 1] {
            let mut decoder = decoder_of(&req);
            decoder.feed(&body[..cut], &mut Vec::new()).unwrap();
            assert_eq!(
                decoder.finish().unwrap_err().code,
                S3ErrorCode::IncompleteBody,
                "cut {cut}"
            );
        }

        // The declared decoded length is enforced both ways.
        let short = streaming_request(StreamingMode::Signed, data.len() - 1, None);
        let body = chunked_body(
            &data,
            8192,
            &short.signature,
            t0(),
            StreamingMode::Signed,
            None,
        );
        assert!(decoder_of(&short).feed(&body, &mut Vec::new()).is_err());
        let long = streaming_request(StreamingMode::Signed, data.len() + 1, None);
        let body = chunked_body(
            &data,
            8192,
            &long.signature,
            t0(),
            StreamingMode::Signed,
            None,
        );
        let err = decoder_of(&long).feed(&body, &mut Vec::new()).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::IncompleteBody);

        // Trailing garbage after the end.
        let mut decoder = decoder_of(&req);
        let body = chunked_body(
            &data,
            8192,
            &req.signature,
            t0(),
            StreamingMode::Signed,
            None,
        );
        decoder.feed(&body, &mut Vec::new()).unwrap();
        assert!(decoder.feed(b"x", &mut Vec::new()).is_err());
    }

    #[test]
    fn signed_trailer_variant() {
        let data = test_data(100_000, 3);
        for kind in [
            ChecksumKind::Crc32,
            ChecksumKind::Crc32c,
            ChecksumKind::Crc64Nvme,
            ChecksumKind::Sha1,
            ChecksumKind::Sha256,
        ] {
            let req = streaming_request(
                StreamingMode::SignedTrailer,
                data.len(),
                Some(kind.header()),
            );
            let value = checksum_of(kind, &data);
            let body = chunked_body(
                &data,
                65_536,
                &req.signature,
                t0(),
                StreamingMode::SignedTrailer,
                Some((kind.header(), value.clone())),
            );
            let mut decoder = decoder_of(&req);
            let out = feed_split(&mut decoder, &body, &mut Rng(5), 3000).unwrap();
            assert_eq!(out, data);
            let info = decoder.finish().unwrap();
            assert_eq!(
                info.trailer_checksum,
                Some((kind.header().to_owned(), value))
            );

            // A forged checksum breaks the trailer signature.
            let wrong = checksum_of(kind, b"other data");
            let forged = replace_last(&body, checksum_of(kind, &data).as_bytes(), wrong.as_bytes());
            let err = decoder_of(&req).feed(&forged, &mut Vec::new());
            assert_eq!(err.unwrap_err().code, S3ErrorCode::SignatureDoesNotMatch);
        }
        // Correctly signed but wrong checksum: BadDigest.
        let kind = ChecksumKind::Crc32;
        let req = streaming_request(
            StreamingMode::SignedTrailer,
            data.len(),
            Some(kind.header()),
        );
        let body = chunked_body(
            &data,
            65_536,
            &req.signature,
            t0(),
            StreamingMode::SignedTrailer,
            Some((kind.header(), checksum_of(kind, b"nope"))),
        );
        let err = decoder_of(&req).feed(&body, &mut Vec::new()).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::BadDigest);
    }

    #[test]
    fn unsigned_trailer_variant() {
        let data = test_data(70_000, 11);
        for kind in [
            ChecksumKind::Crc32,
            ChecksumKind::Crc32c,
            ChecksumKind::Crc64Nvme,
        ] {
            let req = streaming_request(
                StreamingMode::UnsignedTrailer,
                data.len(),
                Some(kind.header()),
            );
            let good = checksum_of(kind, &data);
            let body = chunked_body(
                &data,
                16_384,
                "",
                t0(),
                StreamingMode::UnsignedTrailer,
                Some((kind.header(), good.clone())),
            );
            let mut decoder = decoder_of(&req);
            let out = feed_split(&mut decoder, &body, &mut Rng(17), 1).unwrap();
            assert_eq!(out, data);
            assert_eq!(
                decoder.finish().unwrap().trailer_checksum,
                Some((kind.header().to_owned(), good))
            );

            let bad = checksum_of(kind, b"tampered");
            let body = chunked_body(
                &data,
                16_384,
                "",
                t0(),
                StreamingMode::UnsignedTrailer,
                Some((kind.header(), bad)),
            );
            let err = decoder_of(&req).feed(&body, &mut Vec::new()).unwrap_err();
            assert_eq!(err.code, S3ErrorCode::BadDigest);

            // The announced trailer must come.
            let body = chunked_body(
                &data,
                16_384,
                "",
                t0(),
                StreamingMode::UnsignedTrailer,
                None,
            );
            let mut decoder = decoder_of(&req);
            decoder.feed(&body, &mut Vec::new()).unwrap();
            assert!(decoder.finish().is_err());

            // Invalid base64: InvalidDigest.
            let body = chunked_body(
                &data,
                16_384,
                "",
                t0(),
                StreamingMode::UnsignedTrailer,
                Some((kind.header(), "***".into())),
            );
            let err = decoder_of(&req).feed(&body, &mut Vec::new()).unwrap_err();
            assert_eq!(err.code, S3ErrorCode::InvalidDigest);
        }
        // Exact bytes as aws-smithy writes them (aws-runtime content_encoding tests).
        let req = streaming_request(
            StreamingMode::UnsignedTrailer,
            10,
            Some("x-amz-checksum-crc32"),
        );
        let mut decoder = decoder_of(&req);
        let crc = checksum_of(ChecksumKind::Crc32, b"1234567890");
        let body = format!("A\r\n1234567890\r\n0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n");
        let mut out = Vec::new();
        decoder.feed(body.as_bytes(), &mut out).unwrap();
        assert_eq!(out, b"1234567890");
        decoder.finish().unwrap();
    }

    #[test]
    fn malformed_bodies_are_rejected_without_panic() {
        let req = streaming_request(StreamingMode::UnsignedTrailer, 5, None);
        let too_long_line = vec![b'1'; MAX_LINE + 1];
        let cases: Vec<&[u8]> = vec![
            b"zz\r\n",
            b"-1\r\n",
            b"+5\r\n",
            b"\r\n",
            b"5\nhello\r\n",
            b"5\r\nhelloXX",
            b"2000000\r\n",
            b"11111111111111111\r\n",
            b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n",
            b"5\r\nhello\r\n0\r\nx-amz-trailer-signature:00\r\n\r\n",
            b"5\r\nhello\r\n0\r\nno-colon\r\n\r\n",
            &too_long_line,
        ];
        for case in cases {
            let mut decoder = decoder_of(&req);
            assert!(
                decoder.feed(case, &mut Vec::new()).is_err(),
                "{:?}",
                String::from_utf8_lossy(case)
            );
        }
        let mut decoder = decoder_of(&req);
        decoder
            .feed(b"5\r\nhello\r\n0\r\n\r\n", &mut Vec::new())
            .unwrap();
        decoder.finish().unwrap();

        // Signed chunks without their signature.
        let req = streaming_request(StreamingMode::Signed, 5, None);
        assert!(
            decoder_of(&req)
                .feed(b"5\r\nhello\r\n", &mut Vec::new())
                .is_err()
        );

        // Random garbage never panics.
        let mut rng = Rng(99);
        for _ in 0..2000 {
            let len = rng.below(64);
            let alphabet = b"0123456789abcdefABCDEF;=\r\n:x-";
            let garbage: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            let mut decoder = decoder_of(&req);
            let _ = decoder.feed(&garbage, &mut Vec::new());
            let _ = decoder.finish();
        }
    }

    // --- the S3 API Reference examples ("sigv4-streaming", "sigv4-streaming-trailers") ---

    const AWS_AK: &str = "AKIAIOSFODNN7EXAMPLE";
    const AWS_SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn aws_example_body(chunk_signatures: [&str; 3], trailer: Option<(&str, &str)>) -> Vec<u8> {
        let mut body = Vec::new();
        for (size, signature) in [
            (65_536usize, chunk_signatures[0]),
            (1024, chunk_signatures[1]),
        ] {
            body.extend_from_slice(format!("{size:x};chunk-signature={signature}\r\n").as_bytes());
            body.extend(std::iter::repeat_n(b'a', size));
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("0;chunk-signature={}\r\n", chunk_signatures[2]).as_bytes());
        if let Some((checksum, signature)) = trailer {
            body.extend_from_slice(
                format!(
                    "x-amz-checksum-crc32c:{checksum}\r\nx-amz-trailer-signature:{signature}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(b"\r\n");
        body
    }

    /// Authenticates the examples' `PUT /examplebucket/chunkObject.txt` (20130524T000000Z,
    /// us-east-1) and returns its decoder.
    fn aws_example_decoder(extra: &[(&'static str, &str)], seed: &str) -> Box<ChunkedDecoder> {
        let mut headers = HeaderMap::new();
        let mut signed_headers: Vec<&str> = vec![];
        for (name, value) in [
            ("host", "s3.amazonaws.com"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "66560"),
        ]
        .iter()
        .chain(extra)
        {
            headers.insert(*name, HeaderValue::from_str(value).unwrap());
            signed_headers.push(name);
        }
        signed_headers.sort_unstable();
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={AWS_AK}/20130524/us-east-1/s3/aws4_request,SignedHeaders={},Signature={seed}",
            signed_headers.join(";")
        );
        headers.insert(
            "authorization",
            HeaderValue::from_str(&authorization).unwrap(),
        );
        let parts = RequestParts {
            method: "PUT",
            raw_path: "/examplebucket/chunkObject.txt",
            raw_query: None,
            headers: &headers,
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_369_353_600);
        let auth =
            authenticate(&parts, now, |ak| (ak == AWS_AK).then(|| AWS_SK.to_owned())).unwrap();
        assert_eq!(auth.region, "us-east-1");
        let PayloadCheck::Streaming(decoder) = auth.payload else {
            panic!("streaming expected");
        };
        decoder
    }

    #[test]
    fn aws_streaming_example() {
        let mut decoder = aws_example_decoder(
            &[
                ("x-amz-content-sha256", STREAMING_SIGNED),
                ("content-length", "66824"),
            ],
            "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
        );
        let body = aws_example_body(
            [
                "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
                "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
                "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
            ],
            None,
        );
        assert_eq!(body.len(), 66_824);
        let mut out = Vec::new();
        decoder.feed(&body, &mut out).unwrap();
        assert_eq!(out, vec![b'a'; 66_560]);
        assert_eq!(decoder.finish().unwrap().decoded_len, 66_560);
    }

    #[test]
    fn aws_streaming_trailer_example() {
        let mut decoder = aws_example_decoder(
            &[
                ("x-amz-content-sha256", STREAMING_SIGNED_TRAILER),
                ("x-amz-trailer", "x-amz-checksum-crc32c"),
            ],
            "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e",
        );
        let body = aws_example_body(
            [
                "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
                "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
                "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
            ],
            Some((
                "sOO8/Q==",
                "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435",
            )),
        );
        let out = feed_split(&mut decoder, &body, &mut Rng(1), 999).unwrap();
        assert_eq!(out, vec![b'a'; 66_560]);
        let info = decoder.finish().unwrap();
        assert_eq!(
            info.trailer_checksum,
            Some(("x-amz-checksum-crc32c".to_owned(), "sOO8/Q==".to_owned()))
        );
    }
}

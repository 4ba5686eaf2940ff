//! Parsing and checking of SigV4 signatures. Error names and messages are the ones AWS JSON
//! services answer with, so SDK error handling (including clock-skew retries) behaves as on AWS.

use hmac::{Hmac, Mac};
use http::HeaderMap;
use oxbow_core::{ApiError, ErrorKind};
use sha2::{Digest, Sha256};
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use crate::canonical;

/// SHA-256 of the empty string: what clients sign for bodiless or streaming requests.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// The payload hash clients send when they choose not to sign the body.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const MAX_SKEW: Duration = Duration::minutes(15);
const MAX_PRESIGN_EXPIRES: i64 = 604_800;

/// The parts of an HTTP request that a signature covers.
pub struct Request<'a> {
    pub method: &'a str,
    /// The path exactly as received (still percent-encoded).
    pub path: &'a str,
    /// The query exactly as received, without the `?`.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// The payload hashes this request may have been signed with, and the only ones: the
    /// SHA-256 of the body received for ordinary requests; the empty-body hash (and
    /// `UNSIGNED-PAYLOAD`) for bodiless requests and PutMedia's streaming body. A declared
    /// `x-amz-content-sha256` must be one of them, so a signed head cannot be replayed with
    /// another body.
    pub payload_hashes: &'a [&'a str],
}

/// A claimed credential and signature, read from the request before the secret is known.
#[derive(Debug, Clone)]
pub struct ParsedAuth {
    pub access_key_id: String,
    pub security_token: Option<String>,
    pub presigned: bool,
    scope_date: String,
    pub region: String,
    pub service: String,
    signed_headers: Vec<String>,
    signature: String,
    amz_date: String,
    expires: Option<i64>,
}

fn err(kind: ErrorKind, msg: impl Into<String>) -> ApiError {
    ApiError::new(kind, msg)
}

fn incomplete(msg: impl Into<String>) -> ApiError {
    err(ErrorKind::IncompleteSignature, msg)
}

/// Headers that carry authentication; each may appear once. Taking the first of two would
/// let a proxy and Oxbow disagree on what was signed.
const SINGLE_HEADERS: [&str; 4] = [
    "authorization",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];
/// Query members of a presigned request that may appear once.
const SINGLE_QUERY: [&str; 7] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
];

/// Reads the claimed credential from the `Authorization` header or, failing that, the query.
pub fn parse(req: &Request<'_>) -> Result<ParsedAuth, ApiError> {
    for name in SINGLE_HEADERS {
        if req.headers.get_all(name).iter().count() > 1 {
            return Err(incomplete(format!(
                "The request has more than one '{name}' header."
            )));
        }
    }
    if let Some(value) = req.headers.get(http::header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| incomplete("Authorization header is not valid ASCII."))?;
        return parse_header(value, req.headers);
    }
    let query = req.query.unwrap_or("");
    if query.split('&').any(|p| p.starts_with("X-Amz-Signature=")) {
        return parse_query(query);
    }
    Err(err(
        ErrorKind::MissingAuthenticationToken,
        "Missing Authentication Token",
    ))
}

fn parse_header(value: &str, headers: &HeaderMap) -> Result<ParsedAuth, ApiError> {
    let rest = value
        .strip_prefix(ALGORITHM)
        .filter(|r| r.starts_with(' '))
        .ok_or_else(|| {
            incomplete(format!(
                "Authorization header requires the '{ALGORITHM}' algorithm."
            ))
        })?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let missing = |name: &str| {
        incomplete(format!(
            "Authorization header requires '{name}' parameter. Authorization={value}"
        ))
    };
    let credential = credential.ok_or_else(|| missing("Credential"))?;
    let signed = signed.ok_or_else(|| missing("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| missing("Signature"))?;
    let amz_date = header_str(headers, "x-amz-date").ok_or_else(|| {
        incomplete("Authorization header requires existence of a 'X-Amz-Date' header.")
    })?;
    let security_token = header_str(headers, "x-amz-security-token");
    build(
        credential,
        signed,
        signature,
        amz_date,
        security_token,
        None,
        false,
    )
}

fn parse_query(query: &str) -> Result<ParsedAuth, ApiError> {
    for name in SINGLE_QUERY {
        let count = query
            .split('&')
            .filter(|p| canonical::decode(p.split_once('=').map_or(*p, |(k, _)| k)) == name)
            .count();
        if count > 1 {
            return Err(incomplete(format!(
                "The request has more than one '{name}' query parameter."
            )));
        }
    }
    let get = |name: &str| {
        query.split('&').find_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (canonical::decode(k) == name).then(|| canonical::decode(v))
        })
    };
    let need = |name: &str| {
        get(name).ok_or_else(|| {
            incomplete(format!(
                "Presigned request requires the '{name}' query parameter."
            ))
        })
    };
    if need("X-Amz-Algorithm")? != ALGORITHM {
        return Err(incomplete(format!(
            "X-Amz-Algorithm only supports '{ALGORITHM}'."
        )));
    }
    let expires = match get("X-Amz-Expires") {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=MAX_PRESIGN_EXPIRES).contains(&n) => Some(n),
            _ => {
                return Err(incomplete(format!(
                    "X-Amz-Expires must be a number of seconds from 1 to {MAX_PRESIGN_EXPIRES}."
                )))
            }
        },
    };
    build(
        &need("X-Amz-Credential")?,
        &need("X-Amz-SignedHeaders")?,
        &need("X-Amz-Signature")?,
        need("X-Amz-Date")?,
        get("X-Amz-Security-Token"),
        expires,
        true,
    )
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

fn build(
    credential: &str,
    signed: &str,
    signature: &str,
    amz_date: String,
    security_token: Option<String>,
    expires: Option<i64>,
    presigned: bool,
) -> Result<ParsedAuth, ApiError> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, scope_date, region, service, terminator] = parts[..] else {
        return Err(incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    };
    if terminator != "aws4_request" {
        return Err(err(
            ErrorKind::InvalidSignature,
            format!("Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."),
        ));
    }
    let signed_headers: Vec<String> = signed.split(';').map(|h| h.to_ascii_lowercase()).collect();
    if signed_headers.iter().any(|h| h.is_empty()) {
        return Err(incomplete("SignedHeaders contains an empty header name."));
    }
    Ok(ParsedAuth {
        access_key_id: access_key_id.to_string(),
        security_token,
        presigned,
        scope_date: scope_date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers,
        signature: signature.to_string(),
        amz_date,
        expires,
    })
}

fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(s, fmt)
        .ok()
        .map(|t| t.assume_utc())
}

fn format_amz_date(t: OffsetDateTime) -> String {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    t.format(fmt).unwrap_or_default()
}

/// Checks the signature with `secret`, the scope against `region` and `service`, and the
/// request time against `now` (15 minutes either way; presigned URLs until they expire).
pub fn verify(
    auth: &ParsedAuth,
    req: &Request<'_>,
    secret: &str,
    region: &str,
    service: &str,
    now: OffsetDateTime,
) -> Result<(), ApiError> {
    check_scope(auth, region, service)?;
    check_time(auth, now)?;
    let key = signing_key(secret, &auth.scope_date, &auth.region, &auth.service);
    let query = canonical::query(req.query, auth.presigned.then_some("X-Amz-Signature"));
    let header_variants = canonical::header_variants(req.headers, &auth.signed_headers);
    let signed = auth.signed_headers.join(";");
    let claimed = hex::decode(&auth.signature).map_err(|_| mismatch())?;
    if let Some(declared) = header_str(req.headers, "x-amz-content-sha256") {
        if !req.payload_hashes.contains(&declared.as_str()) {
            return Err(err(
                ErrorKind::InvalidSignature,
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ));
        }
    }
    for headers in &header_variants {
        for uri in canonical::uris(req.path) {
            for hash in req.payload_hashes {
                let canonical_request = format!(
                    "{}\n{uri}\n{query}\n{headers}\n{signed}\n{hash}",
                    req.method
                );
                let to_sign = string_to_sign(auth, &canonical_request);
                let mut mac = hmac(&key);
                mac.update(to_sign.as_bytes());
                if mac.verify_slice(&claimed).is_ok() {
                    return Ok(());
                }
            }
        }
    }
    Err(mismatch())
}

fn mismatch() -> ApiError {
    err(
        ErrorKind::InvalidSignature,
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
    )
}

fn check_scope(auth: &ParsedAuth, region: &str, service: &str) -> Result<(), ApiError> {
    if auth.service != service {
        return Err(err(
            ErrorKind::InvalidSignature,
            format!("Credential should be scoped to correct service: '{service}'. "),
        ));
    }
    if auth.region != region {
        return Err(err(
            ErrorKind::InvalidSignature,
            format!(
                "Credential should be scoped to a valid region, not '{}'. ",
                auth.region
            ),
        ));
    }
    if !auth.amz_date.starts_with(&auth.scope_date) {
        return Err(err(
            ErrorKind::InvalidSignature,
            format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
                auth.scope_date,
                auth.amz_date.get(..8).unwrap_or(""),
                auth.amz_date
            ),
        ));
    }
    Ok(())
}

fn check_time(auth: &ParsedAuth, now: OffsetDateTime) -> Result<(), ApiError> {
    let signed_at = parse_amz_date(&auth.amz_date).ok_or_else(|| {
        incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{}'. See http://en.wikipedia.org/wiki/ISO_8601",
            auth.amz_date
        ))
    })?;
    let expired = |limit: OffsetDateTime, note: String| {
        err(
            ErrorKind::InvalidSignature,
            format!(
                "Signature expired: {} is now earlier than {} ({note})",
                auth.amz_date,
                format_amz_date(limit)
            ),
        )
    };
    if signed_at > now + MAX_SKEW {
        return Err(err(
            ErrorKind::InvalidSignature,
            format!(
                "Signature not yet current: {} is still later than {} ({} + 15 min.)",
                auth.amz_date,
                format_amz_date(now + MAX_SKEW),
                format_amz_date(now)
            ),
        ));
    }
    match auth.expires {
        Some(secs) if now > signed_at + Duration::seconds(secs) => Err(expired(
            now - Duration::seconds(secs),
            format!("{} - {secs} sec.", format_amz_date(now)),
        )),
        None if signed_at < now - MAX_SKEW => Err(expired(
            now - MAX_SKEW,
            format!("{} - 15 min.", format_amz_date(now)),
        )),
        _ => Ok(()),
    }
}

fn hmac(key: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length")
}

fn hmac_bytes(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = hmac(key);
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Derived signing keys are valid for a whole day and cost four HMACs; each thread keeps the
/// ones it derived recently.
const SIGNING_KEY_CACHE_MAX: usize = 256;

thread_local! {
    static SIGNING_KEYS: std::cell::RefCell<std::collections::HashMap<String, Vec<u8>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let id = format!("{date}/{region}/{service}/{secret}");
    if let Some(k) = SIGNING_KEYS.with(|c| c.borrow().get(&id).cloned()) {
        return k;
    }
    let key = derive_signing_key(secret, date, region, service);
    SIGNING_KEYS.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= SIGNING_KEY_CACHE_MAX {
            c.clear();
        }
        c.insert(id, key.clone());
    });
    key
}

fn derive_signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac_bytes(format!("AWS4{secret}").as_bytes(), date);
    let k_region = hmac_bytes(&k_date, region);
    let k_service = hmac_bytes(&k_region, service);
    hmac_bytes(&k_service, "aws4_request")
}

fn string_to_sign(auth: &ParsedAuth, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}/{}/{}/aws4_request\n{}",
        auth.amz_date,
        auth.scope_date,
        auth.region,
        auth.service,
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn at(s: &str) -> OffsetDateTime {
        parse_amz_date(s).unwrap()
    }

    /// The `get-vanilla` case of the AWS SigV4 test suite.
    #[test]
    fn aws_test_suite_get_vanilla() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("example.amazonaws.com"));
        headers.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
        headers.insert("authorization", HeaderValue::from_static(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"));
        let req = Request {
            method: "GET",
            path: "/",
            query: None,
            headers: &headers,
            payload_hashes: &[EMPTY_SHA256],
        };
        let auth = parse(&req).unwrap();
        assert_eq!(auth.access_key_id, "AKIDEXAMPLE");
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        verify(
            &auth,
            &req,
            secret,
            "us-east-1",
            "service",
            at("20150830T123600Z"),
        )
        .unwrap();
        let e = verify(
            &auth,
            &req,
            "wrong",
            "us-east-1",
            "service",
            at("20150830T123600Z"),
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidSignature);
        let e = verify(
            &auth,
            &req,
            secret,
            "us-east-1",
            "service",
            at("20150830T125200Z"),
        )
        .unwrap_err();
        assert!(e.message.starts_with("Signature expired"), "{}", e.message);
        let e = verify(
            &auth,
            &req,
            secret,
            "us-west-2",
            "service",
            at("20150830T123600Z"),
        )
        .unwrap_err();
        assert!(e.message.contains("region"));
    }

    #[test]
    fn missing_and_malformed() {
        let headers = HeaderMap::new();
        let req = Request {
            method: "POST",
            path: "/listStreams",
            query: None,
            headers: &headers,
            payload_hashes: &[EMPTY_SHA256],
        };
        assert_eq!(
            parse(&req).unwrap_err().kind,
            ErrorKind::MissingAuthenticationToken
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=a/b"),
        );
        let req = Request {
            headers: &headers,
            ..req
        };
        assert_eq!(
            parse(&req).unwrap_err().kind,
            ErrorKind::IncompleteSignature
        );
    }
}

/// What a signer needs to sign one request with the header form.
pub struct SigningParams<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub security_token: Option<&'a str>,
    pub region: &'a str,
    pub service: &'a str,
    pub time: OffsetDateTime,
}

/// Signs a request: returns the headers to add (`x-amz-date`, optional
/// `x-amz-security-token`, `authorization`). `headers` must already hold `host` and any other
/// header to be signed; every header in it is signed.
pub fn sign(
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    payload_hash: &str,
    p: &SigningParams<'_>,
) -> Vec<(&'static str, String)> {
    let amz_date = format_amz_date(p.time);
    let mut all = headers.clone();
    let mut added: Vec<(&'static str, String)> = vec![("x-amz-date", amz_date.clone())];
    if let Some(t) = p.security_token {
        added.push(("x-amz-security-token", t.to_string()));
    }
    for (k, v) in &added {
        if let Ok(v) = http::HeaderValue::from_str(v) {
            all.insert(*k, v);
        }
    }
    let mut names: Vec<String> = all.keys().map(|k| k.as_str().to_string()).collect();
    names.sort();
    names.dedup();
    let auth = ParsedAuth {
        access_key_id: p.access_key_id.to_string(),
        security_token: p.security_token.map(str::to_string),
        presigned: false,
        scope_date: amz_date[..8].to_string(),
        region: p.region.to_string(),
        service: p.service.to_string(),
        signed_headers: names,
        signature: String::new(),
        amz_date,
        expires: None,
    };
    let uri = canonical::uris(path).remove(0);
    let canonical_request = format!(
        "{method}\n{uri}\n{}\n{}\n{}\n{payload_hash}",
        canonical::query(query, None),
        canonical::headers(&all, &auth.signed_headers),
        auth.signed_headers.join(";"),
    );
    let key = signing_key(p.secret_access_key, &auth.scope_date, p.region, p.service);
    let signature = hex::encode(hmac_bytes(&key, &string_to_sign(&auth, &canonical_request)));
    added.push((
        "authorization",
        format!(
            "{ALGORITHM} Credential={}/{}/{}/{}/aws4_request, SignedHeaders={}, Signature={signature}",
            p.access_key_id,
            auth.scope_date,
            p.region,
            p.service,
            auth.signed_headers.join(";")
        ),
    ));
    added
}

/// Presigns a bodiless request (a WebSocket URL): returns the query string to append, made
/// of `params` plus the SigV4 query members, with only `host` signed as the KVS SDKs do.
pub fn presign(
    method: &str,
    host: &str,
    path: &str,
    params: &[(&str, &str)],
    expires_secs: u64,
    p: &SigningParams<'_>,
) -> String {
    let amz_date = format_amz_date(p.time);
    let scope_date = amz_date[..8].to_string();
    let credential = format!(
        "{}/{scope_date}/{}/{}/aws4_request",
        p.access_key_id, p.region, p.service
    );
    let expires = expires_secs.to_string();
    let mut members: Vec<(&str, &str)> = params.to_vec();
    members.extend([
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", credential.as_str()),
        ("X-Amz-Date", amz_date.as_str()),
        ("X-Amz-Expires", expires.as_str()),
        ("X-Amz-SignedHeaders", "host"),
    ]);
    if let Some(t) = p.security_token {
        members.push(("X-Amz-Security-Token", t));
    }
    let query = members
        .iter()
        .map(|(k, v)| format!("{}={}", canonical::encode(k), canonical::encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut headers = HeaderMap::new();
    if let Ok(h) = http::HeaderValue::from_str(host) {
        headers.insert(http::header::HOST, h);
    }
    let auth = ParsedAuth {
        access_key_id: p.access_key_id.to_string(),
        security_token: p.security_token.map(str::to_string),
        presigned: true,
        scope_date,
        region: p.region.to_string(),
        service: p.service.to_string(),
        signed_headers: vec!["host".to_string()],
        signature: String::new(),
        amz_date,
        expires: Some(expires_secs as i64),
    };
    let canonical_request = format!(
        "{method}\n{}\n{}\n{}\nhost\n{EMPTY_SHA256}",
        canonical::uris(path).remove(0),
        canonical::query(Some(&query), None),
        canonical::headers(&headers, &auth.signed_headers),
    );
    let key = signing_key(p.secret_access_key, &auth.scope_date, p.region, p.service);
    let signature = hex::encode(hmac_bytes(&key, &string_to_sign(&auth, &canonical_request)));
    format!("{query}&X-Amz-Signature={signature}")
}

#[cfg(test)]
mod sign_tests {
    use super::*;
    use http::HeaderValue;

    fn test_params(now: OffsetDateTime) -> SigningParams<'static> {
        SigningParams {
            access_key_id: "AKIAEXAMPLE",
            secret_access_key: "secret",
            security_token: None,
            region: "us-east-1",
            service: "kinesisvideo",
            time: now,
        }
    }

    #[test]
    fn our_signature_verifies() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1"));
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        let now = OffsetDateTime::now_utc();
        let p = test_params(now);
        for (k, v) in sign("POST", "/listStreams", None, &headers, EMPTY_SHA256, &p) {
            headers.insert(k, HeaderValue::from_str(&v).unwrap());
        }
        let req = Request {
            method: "POST",
            path: "/listStreams",
            query: None,
            headers: &headers,
            payload_hashes: &[EMPTY_SHA256],
        };
        let auth = parse(&req).unwrap();
        verify(&auth, &req, "secret", "us-east-1", "kinesisvideo", now).unwrap();
    }

    #[test]
    fn our_presigned_url_verifies_and_covers_its_parameters() {
        let now = OffsetDateTime::now_utc();
        let p = SigningParams {
            access_key_id: "ASIAEXAMPLE",
            secret_access_key: "secret",
            security_token: Some("token"),
            region: "us-east-1",
            service: "kinesisvideo",
            time: now,
        };
        let arn = "arn:aws:kinesisvideo:us-east-1:1:channel/cam/1";
        let query = presign(
            "GET",
            "localhost:8080",
            "/",
            &[("X-Amz-ChannelARN", arn), ("X-Amz-ClientId", "viewer-1")],
            299,
            &p,
        );
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("localhost:8080"));
        let check = |q: &str| {
            let req = Request {
                method: "GET",
                path: "/",
                query: Some(q),
                headers: &headers,
                payload_hashes: &[EMPTY_SHA256],
            };
            let auth = parse(&req)?;
            assert_eq!(auth.security_token.as_deref(), Some("token"));
            verify(&auth, &req, "secret", "us-east-1", "kinesisvideo", now)
        };
        check(&query).unwrap();
        let other = query.replace("channel%2Fcam%2F1", "channel%2Fother%2F1");
        assert!(check(&other).is_err(), "the channel is signed");
    }

    #[test]
    fn a_host_signed_without_its_port_verifies_another_host_does_not() {
        let now = OffsetDateTime::now_utc();
        let p = test_params(now);
        let arn = "arn:aws:kinesisvideo:us-east-1:1:channel/cam/1";
        let verify_as = |signed_host: &str, sent_host: &'static str| {
            let query = presign(
                "GET",
                signed_host,
                "/",
                &[("X-Amz-ChannelARN", arn)],
                299,
                &p,
            );
            let mut headers = HeaderMap::new();
            headers.insert("host", HeaderValue::from_static(sent_host));
            let req = Request {
                method: "GET",
                path: "/",
                query: Some(&query),
                headers: &headers,
                payload_hashes: &[EMPTY_SHA256],
            };
            let auth = parse(&req)?;
            verify(&auth, &req, "secret", "us-east-1", "kinesisvideo", now)
        };
        // The C SDK signs `host` without the port it connects to; the JS SDK with it.
        verify_as("127.0.0.1", "127.0.0.1:8443").unwrap();
        verify_as("127.0.0.1:8443", "127.0.0.1:8443").unwrap();
        verify_as("[::1]", "[::1]:8443").unwrap();
        assert!(verify_as("127.0.0.2", "127.0.0.1:8443").is_err());
        assert!(verify_as("127.0.0.1:9443", "127.0.0.1:8443").is_err());
        assert!(verify_as("127.0.0.1:8443", "127.0.0.1").is_err());
    }
}

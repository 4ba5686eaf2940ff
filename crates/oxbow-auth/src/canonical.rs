//! The pieces of a SigV4 canonical request. Kept apart from the protocol flow because these are
//! the parts where clients differ (path encoding, query encoding, header folding).

use http::HeaderMap;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// SigV4 encodes everything except the unreserved characters of RFC 3986.
const SIGV4: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, SIGV4).to_string()
}

/// Canonical URIs to try for a raw request path. Non-S3 AWS SDKs encode the (already encoded)
/// path once more; some embedded clients sign the path as sent. Both agree for plain paths.
pub fn uris(raw_path: &str) -> Vec<String> {
    let path = if raw_path.is_empty() { "/" } else { raw_path };
    let double: String = path.split('/').map(encode).collect::<Vec<_>>().join("/");
    if double == path {
        vec![double]
    } else {
        vec![double, path.to_string()]
    }
}

/// The canonical query string: every pair decoded, re-encoded strictly, sorted.
/// `skip` names a parameter to leave out (the signature itself, in presigned URLs).
pub fn query(raw_query: Option<&str>, skip: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .filter(|(k, _)| Some(k.as_str()) != skip)
        .map(|(k, v)| (encode(&k), encode(&v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The canonical header block for the signed header names: each `name:value\n`, values of a
/// repeated header joined by commas, whitespace trimmed and runs of spaces folded.
pub fn headers(headers: &HeaderMap, signed: &[String]) -> String {
    let mut out = String::new();
    for name in signed {
        let values: Vec<String> = headers
            .get_all(name.as_str())
            .iter()
            .map(|v| fold_spaces(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out
}

/// The canonical headers as received and, when a signed `host` carries a port, also with
/// the port left out: the KVS C SDK signs the host without the port it connects to.
pub fn header_variants(headers: &HeaderMap, signed: &[String]) -> Vec<String> {
    let mut out = vec![self::headers(headers, signed)];
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|_| signed.iter().any(|s| s == "host"));
    if let Some((bare, port)) = host.and_then(|h| h.rsplit_once(':')) {
        let ipv6_without_port = bare.contains(':') && !bare.ends_with(']');
        if !ipv6_without_port && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
            let mut portless = headers.clone();
            if let Ok(v) = http::HeaderValue::from_str(bare) {
                portless.insert(http::header::HOST, v);
                out.push(self::headers(&portless, signed));
            }
        }
    }
    out
}

fn fold_spaces(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_sorted_and_strictly_encoded() {
        assert_eq!(
            query(
                Some("b=2&a=x%2Fy&X-Amz-Signature=zz&c"),
                Some("X-Amz-Signature")
            ),
            "a=x%2Fy&b=2&c="
        );
        assert_eq!(query(Some("arn=a:b/c"), None), "arn=a%3Ab%2Fc");
    }

    #[test]
    fn uri_encoding() {
        assert_eq!(uris("/describeStream"), vec!["/describeStream"]);
        assert_eq!(uris(""), vec!["/"]);
        assert_eq!(uris("/a%20b"), vec!["/a%2520b", "/a%20b"]);
    }

    #[test]
    fn header_folding() {
        let mut h = HeaderMap::new();
        h.insert("host", "example.com".parse().unwrap());
        h.append("x-multi", " a   b ".parse().unwrap());
        h.append("x-multi", "c".parse().unwrap());
        let signed = vec!["host".to_string(), "x-multi".to_string()];
        assert_eq!(headers(&h, &signed), "host:example.com\nx-multi:a b,c\n");
    }
}

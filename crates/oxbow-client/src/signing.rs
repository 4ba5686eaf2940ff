//! SigV4 for the requests this client sends.

use http::{HeaderMap, HeaderValue};
use time::OffsetDateTime;

/// The keys requests are signed with.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

pub const SERVICE: &str = "kinesisvideo";

/// Adds `x-amz-date`, the session token if any, and `authorization`.
pub fn sign(
    headers: &mut HeaderMap,
    method: &str,
    path: &str,
    payload_hash: &str,
    creds: &Credentials,
    region: &str,
) {
    let params = oxbow_auth::SigningParams {
        access_key_id: &creds.access_key_id,
        secret_access_key: &creds.secret_access_key,
        security_token: creds.session_token.as_deref(),
        region,
        service: SERVICE,
        time: OffsetDateTime::now_utc(),
    };
    for (k, v) in oxbow_auth::sign(method, path, None, headers, payload_hash, &params) {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(k, v);
        }
    }
}

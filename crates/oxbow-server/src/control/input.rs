//! Request bodies: JSON objects whose members use the API's PascalCase names. Unknown members
//! are ignored (newer SDKs may send them); a body that is not JSON, or a member of the wrong
//! JSON type, is a `SerializationException`, as on AWS.

use oxbow_core::{ApiError, ErrorKind};
use serde::de::DeserializeOwned;

pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorKind::Serialization,
            format!("Could not parse the request body: {e}"),
        )
    })
}

/// A `NextToken` for list pagination: the last key returned, hex-encoded so it stays within
/// the token alphabet `[a-zA-Z0-9+/=]`.
pub fn next_token(last_key: &str) -> String {
    hex::encode(last_key)
}

/// The key a `NextToken` continues after.
pub fn token_key(token: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(t) = token.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    hex::decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .map(Some)
        .ok_or_else(|| ApiError::invalid_argument("The NextToken is not valid."))
}

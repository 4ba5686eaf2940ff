//! Request bodies: JSON objects whose members use the API's PascalCase names. Unknown members
//! are ignored (newer SDKs may send them); a body that is not JSON, or a member of the wrong
//! JSON type, is a `SerializationException`, as on AWS.
//!
//! Every body is first checked as a whole, ignored members included: valid UTF-8, no member
//! named twice in one object, nesting at most [`MAX_DEPTH`] deep. Without that check an API
//! whose members are all optional would accept what the others refuse, since the parser
//! skips unknown members without looking into them.

use std::collections::HashSet;
use std::fmt;

use oxbow_core::{ApiError, ErrorKind};
use serde::de::{DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;

/// How deep objects and arrays may nest in a request body (no KVS request needs more than
/// a handful of levels).
pub const MAX_DEPTH: usize = 32;

pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let serialization = |e: serde_json::Error| {
        ApiError::new(
            ErrorKind::Serialization,
            format!("Could not parse the request body: {e}"),
        )
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    Checked { depth: 0 }
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(serialization)?;
    serde_json::from_slice(body).map_err(serialization)
}

/// Walks any JSON value, refusing duplicate members and excessive nesting. Strings are read
/// as `&str`/`String`, which makes the parser validate their UTF-8.
#[derive(Clone, Copy)]
struct Checked {
    depth: usize,
}

impl Checked {
    fn deeper<E: serde::de::Error>(self) -> Result<Self, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format!(
                "the body nests deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(Self {
            depth: self.depth + 1,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.deeper()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.deeper()?;
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "member {key} appears more than once"
                )));
            }
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct AllOptional {
        #[serde(rename = "MaxResults")]
        max_results: Option<u32>,
    }

    fn refused(body: &[u8]) -> bool {
        parse::<AllOptional>(body).is_err_and(|e| e.kind == ErrorKind::Serialization)
    }

    #[test]
    fn ignored_members_are_checked_too() {
        assert!(parse::<AllOptional>(br#"{"MaxResults":5,"New":{"a":[1,2]}}"#).is_ok());
        assert!(refused(b"{\"X\":\"\xff\xfe\"}"), "invalid UTF-8");
        assert!(refused(br#"{"X":1,"X":2}"#), "duplicate member");
        assert!(refused(br#"{"MaxResults":1,"MaxResults":2}"#));
        assert!(refused(br#"{"X":{"a":1,"a":1}}"#), "duplicate below");
        let deep = format!("{{\"X\":{}{}}}", "[".repeat(20_000), "]".repeat(20_000));
        assert!(refused(deep.as_bytes()), "deep nesting");
        let ok = format!("{{\"X\":{}{}}}", "[".repeat(20), "]".repeat(20));
        assert!(parse::<AllOptional>(ok.as_bytes()).is_ok());
        assert!(refused(br#"{"MaxResults":1} trailing"#));
    }
}

//! Streaming session tokens: what a GetHLS/DASHStreamingSessionURL call decided (the stream
//! incarnation, the mode, the range, the options, the expiry), carried in the URL it returns
//! and signed with a server key, so the player's later requests need no other state and no
//! signature of their own. A token names one stream incarnation: it reads nothing of another
//! stream, nor of a stream later created under the same name.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use oxbow_core::{ApiError, ErrorKind};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    #[serde(rename = "L")]
    Live,
    #[serde(rename = "R")]
    LiveReplay,
    #[serde(rename = "D")]
    OnDemand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Discontinuity {
    #[serde(rename = "A")]
    Always,
    #[serde(rename = "N")]
    Never,
    #[serde(rename = "O")]
    AtGaps,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Container {
    #[serde(rename = "M")]
    Fmp4,
    #[serde(rename = "T")]
    Ts,
}

/// Which protocol a session serves: its token opens only that protocol's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    #[serde(rename = "H")]
    Hls,
    #[serde(rename = "D")]
    Dash,
}

/// Everything a session's resources need, decided once when the URL was issued. Its JSON
/// names are short: the token travels in every playlist line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    #[serde(rename = "p")]
    pub protocol: Protocol,
    /// The stream incarnation's media key (name and creation time).
    #[serde(rename = "k")]
    pub stream_key: String,
    /// The stream's creation time (fragment numbers carry it).
    #[serde(rename = "c")]
    pub creation_ms: i64,
    #[serde(rename = "m")]
    pub mode: Mode,
    #[serde(rename = "f")]
    pub container: Container,
    /// Whether fragments are selected by producer (else server) timestamp.
    #[serde(rename = "t")]
    pub producer_time: bool,
    #[serde(rename = "s")]
    pub start_ms: Option<i64>,
    #[serde(rename = "e")]
    pub end_ms: Option<i64>,
    /// Fragments a playlist or manifest lists at most.
    #[serde(rename = "n")]
    pub max_fragments: usize,
    #[serde(rename = "d")]
    pub discontinuity: Discontinuity,
    #[serde(rename = "dt")]
    pub display_timestamp: bool,
    /// DASH: `kvs:fn` on each segment.
    #[serde(rename = "dn")]
    pub display_number: bool,
    /// LIVE: the oldest fragment the session lists (the first of its first playlist).
    #[serde(rename = "q")]
    pub first_seq: u64,
    #[serde(rename = "i")]
    pub issued_ms: i64,
    #[serde(rename = "x")]
    pub expires_ms: i64,
}

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], body: &[u8]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    m.update(body);
    m
}

impl Session {
    /// The token: the session as JSON and its MAC, both URL-safe base64.
    pub fn seal(&self, key: &[u8]) -> String {
        let body = serde_json::to_vec(self).expect("a session serializes");
        let tag = mac(key, &body).finalize().into_bytes();
        format!("{}.{}", B64.encode(&body), B64.encode(tag))
    }

    /// Opens a token for `protocol`: one this server sealed, unexpired at `now_ms`.
    pub fn open(
        token: &str,
        key: &[u8],
        protocol: Protocol,
        now_ms: i64,
    ) -> Result<Self, ApiError> {
        let refused = || {
            ApiError::new(
                ErrorKind::NotAuthorized,
                "The session token is not valid for this request.",
            )
        };
        let (body, tag) = token.split_once('.').ok_or_else(refused)?;
        let body = B64.decode(body).map_err(|_| refused())?;
        let tag = B64.decode(tag).map_err(|_| refused())?;
        mac(key, &body).verify_slice(&tag).map_err(|_| refused())?;
        let session: Session = serde_json::from_slice(&body).map_err(|_| refused())?;
        if session.protocol != protocol {
            return Err(refused());
        }
        if now_ms >= session.expires_ms {
            return Err(ApiError::new(
                ErrorKind::NotAuthorized,
                "The streaming session has expired.",
            ));
        }
        Ok(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            protocol: Protocol::Hls,
            stream_key: "cam-1700000000000".into(),
            creation_ms: 1_700_000_000_000,
            mode: Mode::Live,
            container: Container::Fmp4,
            producer_time: false,
            start_ms: None,
            end_ms: None,
            max_fragments: 5,
            discontinuity: Discontinuity::Always,
            display_timestamp: false,
            display_number: false,
            first_seq: 3,
            issued_ms: 1_000,
            expires_ms: 301_000,
        }
    }

    #[test]
    fn a_sealed_session_opens_until_it_expires() {
        let key = [7u8; 32];
        let token = session().seal(&key);
        assert_eq!(
            Session::open(&token, &key, Protocol::Hls, 300_999).unwrap(),
            session()
        );
        let expired = Session::open(&token, &key, Protocol::Hls, 301_000).unwrap_err();
        assert_eq!(expired.kind, ErrorKind::NotAuthorized);
        assert!(expired.message.contains("expired"), "{}", expired.message);
    }

    #[test]
    fn forged_foreign_or_mangled_tokens_are_refused() {
        let key = [7u8; 32];
        let token = session().seal(&key);
        // Another server's key, the other protocol, a changed body, garbage.
        assert!(Session::open(&token, &[8u8; 32], Protocol::Hls, 0).is_err());
        assert!(Session::open(&token, &key, Protocol::Dash, 0).is_err());
        let (body, tag) = token.split_once('.').unwrap();
        let mut other = session();
        other.stream_key = "other-1".into();
        let forged = format!("{}.{tag}", B64.encode(serde_json::to_vec(&other).unwrap()));
        assert_ne!(forged.split_once('.').unwrap().0, body);
        assert!(Session::open(&forged, &key, Protocol::Hls, 0).is_err());
        for bad in ["", ".", "abc", "a.b.c", "%%%.%%%"] {
            assert!(Session::open(bad, &key, Protocol::Hls, 0).is_err(), "{bad}");
        }
    }
}

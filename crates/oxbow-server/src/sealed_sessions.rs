//! Temporary credentials that carry themselves: the session token holds the session (its
//! access key id, principal, expiry, context and session policy) under an HMAC-SHA256 seal,
//! and the secret access key is derived from the sealed text with the same key. Issuing one
//! writes nothing, so a flood of AssumeRole, IoT credential or camera-URL requests cannot grow
//! the catalog, and any node holding the key verifies them.
//!
//! Token: `OXS1.<key id>.<payload, base64url JSON>.<seal, base64url>`. The key id names which
//! of the server's keys sealed it: the current key seals, the current and the previous one
//! verify, so a key is rotated by making the current one the previous (see `Keyring`).
//! Revocation stays possible without state per session: a role session is bound to its role's
//! unique id (deleting the role revokes it), a revocation record per principal refuses the
//! sessions issued before it (`admin/revocations.rs`), and expiry bounds the rest.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use oxbow_catalog::AccessKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const PREFIX: &str = "OXS1";

/// The keys sessions are sealed with: the current one seals, both verify. Clones share the
/// keys, so a rotation reaches every holder at once.
#[derive(Clone)]
pub struct Keyring(Arc<RwLock<Keys>>);

struct Keys {
    current: Vec<u8>,
    previous: Option<Vec<u8>>,
}

/// What a token carries.
#[derive(Serialize, Deserialize)]
struct Payload {
    #[serde(rename = "a")]
    access_key_id: String,
    #[serde(rename = "p")]
    principal: String,
    #[serde(rename = "c")]
    created_ms: i64,
    #[serde(rename = "e")]
    expires_ms: i64,
    #[serde(rename = "x", default, skip_serializing_if = "BTreeMap::is_empty")]
    context: BTreeMap<String, String>,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    session_policy: Option<String>,
}

fn hmac_of(key: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
        m.update(b"\n");
    }
    m
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    hmac_of(key, parts).finalize().into_bytes().to_vec()
}

/// A short public name of a key, so a token says which key sealed it.
fn key_id(key: &[u8]) -> String {
    hex::encode(&Sha256::digest(key)[..4])
}

impl Keyring {
    pub fn new(current: Vec<u8>, previous: Option<Vec<u8>>) -> Self {
        Self(Arc::new(RwLock::new(Keys { current, previous })))
    }

    /// Puts other keys in place (a rotation, here or at another node of a cluster).
    pub fn replace(&self, current: Vec<u8>, previous: Option<Vec<u8>>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Keys { current, previous };
    }

    pub fn previous(&self) -> Option<Vec<u8>> {
        self.keys().previous.clone()
    }

    /// The public names of the current key and the previous one.
    pub fn key_ids(&self) -> (String, Option<String>) {
        let keys = self.keys();
        (key_id(&keys.current), keys.previous.as_deref().map(key_id))
    }

    /// Whether one of the keys has the name `token` says sealed it (a token of a key rotated
    /// in at another node does not, until this node reads that key).
    pub fn knows_sealer_of(&self, token: &str) -> bool {
        let Some(kid) = token.strip_prefix(PREFIX).and_then(|t| t.split('.').nth(1)) else {
            return true;
        };
        let keys = self.keys();
        key_id(&keys.current) == kid || keys.previous.as_deref().is_some_and(|k| key_id(k) == kid)
    }

    fn keys(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Seals a session: fills in its token and its secret access key.
    pub fn seal(&self, mut key: AccessKey) -> AccessKey {
        let keys = self.keys();
        let payload = Payload {
            access_key_id: key.access_key_id.clone(),
            principal: key.principal.clone(),
            created_ms: key.created_ms,
            expires_ms: key.expires_ms.unwrap_or(key.created_ms),
            context: key.context.clone(),
            session_policy: key.session_policy.clone(),
        };
        let body = B64.encode(serde_json::to_vec(&payload).unwrap_or_default());
        let kid = key_id(&keys.current);
        let seal = B64.encode(mac(
            &keys.current,
            &[b"seal", kid.as_bytes(), body.as_bytes()],
        ));
        key.secret_access_key = secret(&keys.current, &body);
        key.session_token = Some(format!("{PREFIX}.{kid}.{body}.{seal}"));
        key
    }

    /// The session a token carries, if one of the keys sealed it (expiry is the caller's
    /// check, so an expired session is told apart from a forged one).
    pub fn open(&self, token: &str) -> Option<AccessKey> {
        let mut parts = token.split('.');
        let (Some(PREFIX), Some(kid), Some(body), Some(seal), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let keys = self.keys();
        let key = [Some(&keys.current), keys.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|k| key_id(k) == kid)?;
        // (verify_slice compares in constant time: a forged seal learns nothing)
        hmac_of(key, &[b"seal", kid.as_bytes(), body.as_bytes()])
            .verify_slice(&B64.decode(seal).ok()?)
            .ok()?;
        let p: Payload = serde_json::from_slice(&B64.decode(body).ok()?).ok()?;
        Some(AccessKey {
            secret_access_key: secret(key, body),
            access_key_id: p.access_key_id,
            principal: p.principal,
            session_token: Some(token.to_string()),
            expires_ms: Some(p.expires_ms),
            created_ms: p.created_ms,
            active: true,
            context: p.context,
            session_policy: p.session_policy,
        })
    }
}

/// The secret of a sealed session: derived from the key and the sealed text, never stored.
fn secret(key: &[u8], body: &str) -> String {
    let raw = mac(key, &[b"secret", body.as_bytes()]);
    // 40 characters, like an AWS secret access key.
    B64.encode(raw).chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> AccessKey {
        let mut context = BTreeMap::new();
        context.insert("aws:RoleSessionName".into(), "me".into());
        AccessKey {
            access_key_id: "ASIATESTTESTTESTTEST".into(),
            secret_access_key: String::new(),
            principal: "role/viewer".into(),
            session_token: None,
            expires_ms: Some(2_000),
            created_ms: 1_000,
            active: true,
            context,
            session_policy: Some(r#"{"Statement":[]}"#.into()),
        }
    }

    #[test]
    fn a_sealed_session_opens_to_itself_with_its_secret() {
        let ring = Keyring::new(vec![7; 32], None);
        let sealed = ring.seal(session());
        assert_eq!(sealed.secret_access_key.len(), 40);
        let token = sealed.session_token.clone().unwrap();
        let opened = ring.open(&token).unwrap();
        assert_eq!(opened.access_key_id, "ASIATESTTESTTESTTEST");
        assert_eq!(opened.secret_access_key, sealed.secret_access_key);
        assert_eq!(opened.principal, "role/viewer");
        assert_eq!((opened.created_ms, opened.expires_ms), (1_000, Some(2_000)));
        assert_eq!(opened.context, sealed.context);
        assert_eq!(opened.session_policy, sealed.session_policy);
    }

    #[test]
    fn forged_or_foreign_tokens_open_to_nothing() {
        let ring = Keyring::new(vec![7; 32], None);
        let token = ring.seal(session()).session_token.unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        // Another principal in the payload, the seal kept: refused.
        let mut p: serde_json::Value =
            serde_json::from_slice(&B64.decode(parts[2]).unwrap()).unwrap();
        p["p"] = "root".into();
        let forged = format!(
            "{}.{}.{}.{}",
            parts[0],
            parts[1],
            B64.encode(p.to_string()),
            parts[3]
        );
        assert!(ring.open(&forged).is_none());
        // Another server's key: refused; garbage: refused.
        assert!(Keyring::new(vec![8; 32], None).open(&token).is_none());
        assert!(ring.open("OXS1.x.y").is_none());
        assert!(ring.open("not a token").is_none());
    }

    #[test]
    fn the_previous_key_still_opens_after_a_rotation() {
        let old = Keyring::new(vec![1; 32], None);
        let token = old.seal(session()).session_token.unwrap();
        let rotated = Keyring::new(vec![2; 32], Some(vec![1; 32]));
        assert!(rotated.open(&token).is_some());
        // Rotated twice, the oldest key is gone.
        let again = Keyring::new(vec![3; 32], Some(vec![2; 32]));
        assert!(again.open(&token).is_none());
    }

    #[test]
    fn a_replacement_reaches_every_clone_and_names_the_keys() {
        let ring = Keyring::new(vec![1; 32], None);
        let held = ring.clone();
        let token = ring.seal(session()).session_token.unwrap();
        assert!(held.knows_sealer_of(&token));
        held.replace(vec![2; 32], Some(vec![1; 32]));
        let (current, previous) = ring.key_ids();
        assert_eq!(previous.as_deref(), Some(key_id(&[1; 32]).as_str()));
        assert_eq!(current, key_id(&[2; 32]));
        // Sealed with the new key now, the old token still opens.
        let newer = ring.seal(session()).session_token.unwrap();
        assert!(newer.starts_with(&format!("OXS1.{current}.")));
        assert!(ring.open(&token).is_some());
        ring.replace(vec![3; 32], Some(vec![2; 32]));
        assert!(!held.knows_sealer_of(&token));
        assert!(held.open(&token).is_none());
        assert!(held.open(&newer).is_some());
        // Not a sealed token: nothing to look up.
        assert!(held.knows_sealer_of("FwoGZXIvYXdzEJr"));
    }
}

//! Temporary credentials: an `ASIA…` access key, its secret and a session token, with an
//! expiry, a session context (policy variables) and optionally a session policy, sealed into
//! the token (`sealed_sessions.rs`) rather than stored. STS AssumeRole, the IoT credentials
//! provider and camera-owner URLs all mint them.

use std::collections::BTreeMap;

use oxbow_catalog::AccessKey;
use oxbow_core::time::now_ms;
use oxbow_core::{ids, ApiError};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::state::AppState;

/// What a new session is for.
pub struct SessionSpec {
    /// `role/<name>` or `session`.
    pub principal: String,
    pub duration_secs: i64,
    pub context: BTreeMap<String, String>,
    pub session_policy: Option<String>,
}

/// Creates a temporary key (async for its callers' sake: nothing is awaited or stored).
pub async fn mint(state: &AppState, spec: SessionSpec) -> Result<AccessKey, ApiError> {
    let now = now_ms();
    let key = AccessKey {
        access_key_id: ids::access_key_id("ASIA"),
        secret_access_key: String::new(),
        principal: spec.principal,
        session_token: None,
        expires_ms: Some(now + spec.duration_secs * 1000),
        created_ms: now,
        active: true,
        context: spec.context,
        session_policy: spec.session_policy,
    };
    Ok(state.keys.seal(key))
}

/// An expiry as the ISO-8601 UTC string STS and the IoT credentials provider return.
pub fn expiration(key: &AccessKey) -> String {
    let ms = key.expires_ms.unwrap_or_default();
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

//! Temporary credentials: an `ASIA…` access key, its secret and a session token, stored like
//! any key but with an expiry, a session context (policy variables) and optionally a session
//! policy. STS AssumeRole, the IoT credentials provider and camera-owner URLs all mint them.

use std::collections::BTreeMap;

use oxbow_catalog::AccessKey;
use oxbow_core::time::now_ms;
use oxbow_core::{ids, ApiError};
use rand::distr::{Alphanumeric, SampleString};
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

/// Creates and stores a temporary key.
pub async fn mint(state: &AppState, spec: SessionSpec) -> Result<AccessKey, ApiError> {
    let now = now_ms();
    let key = AccessKey {
        access_key_id: ids::access_key_id("ASIA"),
        secret_access_key: ids::secret_access_key(),
        principal: spec.principal,
        session_token: Some(Alphanumeric.sample_string(&mut rand::rng(), 120)),
        expires_ms: Some(now + spec.duration_secs * 1000),
        created_ms: now,
        active: true,
        context: spec.context,
        session_policy: spec.session_policy,
    };
    state
        .catalog
        .access_keys()
        .insert(key.clone(), u64::MAX)
        .await
        .map_err(|e| ApiError::dependency("store a temporary access key", e))?;
    Ok(key)
}

/// An expiry as the ISO-8601 UTC string STS and the IoT credentials provider return.
pub fn expiration(key: &AccessKey) -> String {
    let ms = key.expires_ms.unwrap_or_default();
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

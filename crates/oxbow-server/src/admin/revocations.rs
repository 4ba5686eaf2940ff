//! Revoking temporary credentials: every session issued to a role, to a user (and the role
//! sessions it obtained), or to anyone before a time is refused from then on. Sessions carry
//! themselves (sealed tokens), so a revocation is one record per principal, not per session.
//! Rotating the key they are sealed with ends, at the second rotation, every session the
//! oldest key sealed.

use oxbow_catalog::{CatalogError, RevocationRecord};
use oxbow_core::time::{ms_to_json_seconds, now_ms};
use oxbow_core::validate as v;
use oxbow_core::ApiError;
use serde_json::{json, Value};

use super::{all, storage, Args};
use crate::state::AppState;

fn revocation_json(r: &RevocationRecord) -> Value {
    json!({"Principal": r.key, "RevokedBefore": ms_to_json_seconds(r.before_ms),
           "CreationDate": ms_to_json_seconds(r.created_ms)})
}

/// Exactly one of `RoleName`, `UserName` or `All: true`; `Before` (epoch seconds, default
/// now) is the issue time sessions must be newer than. A later revocation of the same
/// principal only ever moves the time forward.
pub async fn revoke_sessions(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let key = match (
        a.opt("RoleName", &v::IAM_NAME)?,
        a.opt("UserName", &v::IAM_NAME)?,
        a.flag("All"),
    ) {
        (Some(role), None, false) => format!("role/{role}"),
        (None, Some(user), false) => format!("user/{user}"),
        (None, None, true) => "*".to_string(),
        _ => {
            return Err(ApiError::invalid_argument(
                "Name exactly one of RoleName, UserName or All.",
            ))
        }
    };
    let now = now_ms();
    let before_ms = match a.int("Before", 0, 0, i64::MAX / 1000)? {
        0 => now,
        secs => secs * 1000,
    };
    let record = RevocationRecord {
        key: key.clone(),
        before_ms,
        created_ms: now,
    };
    let table = state.catalog.revocations();
    let stored = match table.insert(record.clone(), u64::MAX).await {
        Ok(()) => record,
        Err(CatalogError::Exists) => table
            .update(
                &key,
                Box::new(move |r: &mut RevocationRecord| {
                    r.before_ms = r.before_ms.max(before_ms);
                    r.created_ms = now;
                    Ok(())
                }),
            )
            .await
            .map_err(storage)?,
        Err(e) => return Err(storage(e)),
    };
    tracing::info!(principal = %stored.key, before_ms = stored.before_ms, "sessions revoked");
    Ok(json!({ "Revocation": revocation_json(&stored) }))
}

pub async fn list_revocations(state: &AppState) -> Result<Value, ApiError> {
    let all = all(state.catalog.revocations()).await?;
    Ok(json!({ "Revocations": all.iter().map(revocation_json).collect::<Vec<_>>() }))
}

/// A new key seals temporary credentials from now on; the one it replaces still opens its
/// sessions; the one before that opens nothing more (see `session_keys`).
pub async fn rotate_session_key(state: &AppState) -> Result<Value, ApiError> {
    let (current, previous) = state.keys.session_keys().rotate().await?;
    Ok(json!({ "KeyId": current, "PreviousKeyId": previous }))
}

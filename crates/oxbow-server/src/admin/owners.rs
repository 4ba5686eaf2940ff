//! Camera ownership: which user owns the camera behind which signaling channel, and which
//! signaling roles (VIEWER, MASTER) the owner may ask a URL for.

use oxbow_catalog::CameraOwnerRecord;
use oxbow_core::time::{ms_to_json_seconds, now_ms};
use oxbow_core::validate as v;
use oxbow_core::ApiError;
use serde_json::{json, Value};

use super::{not_found, storage, Args};
use crate::state::AppState;

pub const ROLES: &[&str] = &["VIEWER", "MASTER"];

fn owner_json(o: &CameraOwnerRecord) -> Value {
    json!({"UserName": o.owner, "ChannelName": o.channel, "Roles": o.roles,
           "CreateDate": ms_to_json_seconds(o.created_ms)})
}

/// `UserName`, `ChannelName`, `Roles` (default VIEWER). Adding again replaces the roles.
pub async fn add(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let owner = a.req("UserName", &v::IAM_NAME)?;
    let channel = a.req("ChannelName", &v::CHANNEL_NAME)?;
    let roles = a.list("Roles").unwrap_or_else(|| vec!["VIEWER".into()]);
    if roles.is_empty() || roles.iter().any(|r| !ROLES.contains(&r.as_str())) {
        return Err(ApiError::invalid_argument(
            "Roles must list VIEWER and/or MASTER.",
        ));
    }
    if state
        .catalog
        .users()
        .get(&owner)
        .await
        .map_err(storage)?
        .is_none()
    {
        return Err(not_found("user", &owner));
    }
    let record = CameraOwnerRecord {
        key: CameraOwnerRecord::key_for(&owner, &channel),
        owner,
        channel,
        roles,
        created_ms: now_ms(),
    };
    let table = state.catalog.camera_owners();
    table.remove(&record.key).await.map_err(storage)?;
    table
        .insert(record.clone(), u64::MAX)
        .await
        .map_err(storage)?;
    Ok(json!({ "CameraOwner": owner_json(&record) }))
}

/// All ownerships, or one user's (`UserName`).
pub async fn list(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let prefix = a
        .opt("UserName", &v::IAM_NAME)?
        .map(|u| CameraOwnerRecord::key_for(&u, ""));
    let all = state
        .catalog
        .camera_owners()
        .list(prefix.as_deref(), None, usize::MAX)
        .await
        .map_err(storage)?;
    Ok(json!({ "CameraOwners": all.iter().map(owner_json).collect::<Vec<_>>() }))
}

pub async fn remove(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let owner = a.req("UserName", &v::IAM_NAME)?;
    let channel = a.req("ChannelName", &v::CHANNEL_NAME)?;
    let key = CameraOwnerRecord::key_for(&owner, &channel);
    let table = state.catalog.camera_owners();
    if table.get(&key).await.map_err(storage)?.is_none() {
        return Err(not_found("camera ownership", &key));
    }
    table.remove(&key).await.map_err(storage)?;
    Ok(json!({}))
}

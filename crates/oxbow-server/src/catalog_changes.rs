//! Keeps this node's caches beside the catalog (access keys, compiled policies and decisions,
//! stream and channel ARNs) true when another node of a cluster changes the shared catalog:
//! the catalog announces each write (PostgreSQL LISTEN/NOTIFY), and this drops what it
//! touched. A revoked key or a changed policy thus stops working on every node within the
//! announcement's delay, not the caches' minute. The embedded catalog announces nothing.

use std::sync::Arc;

use oxbow_catalog::CatalogChange;
use oxbow_core::ResourceType;
use tokio::sync::broadcast::error::RecvError;

use crate::state::AppState;

/// Follows the catalog's announcements until it closes.
pub async fn follow(state: Arc<AppState>) {
    let Some(mut changes) = state.catalog.changes() else {
        return;
    };
    loop {
        match changes.recv().await {
            Ok(change) => apply(&state, &change),
            // Announcements were dropped: anything may have changed.
            Err(RecvError::Lagged(_)) => apply(
                &state,
                &CatalogChange {
                    table: None,
                    key: None,
                },
            ),
            Err(RecvError::Closed) => return,
        }
    }
}

fn apply(state: &Arc<AppState>, change: &CatalogChange) {
    match (change.table.as_deref(), change.key.as_deref()) {
        // The session key was rotated at another node: seal and open with the new keys.
        (Some("server_secrets"), Some(crate::session_keys::CURRENT_RECORD)) => {
            reload_session_keys(state)
        }
        (Some("access_keys"), Some(id)) => {
            state.keys.invalidate(id);
            state.authz.clear();
        }
        (Some("streams"), Some(name)) => state.authz.forget_arn(ResourceType::Stream, name),
        (Some("channels"), Some(name)) => state.authz.forget_arn(ResourceType::Channel, name),
        // Ownership and the shared secrets decide nothing about access (and leases are
        // renewed every few seconds: clearing on them would leave the caches always cold).
        (Some("leases" | "server_secrets"), Some(_)) => {}
        // Users, roles, policies, revocations, IoT records: decisions may differ now.
        (Some(_), Some(_)) => state.authz.clear(),
        _ => {
            reload_session_keys(state);
            state.keys.clear();
            state.authz.clear();
            state.authz.forget_all_arns();
        }
    }
    tracing::debug!(table = ?change.table, key = ?change.key, "catalog change from the cluster applied");
}

fn reload_session_keys(state: &Arc<AppState>) {
    let state = Arc::clone(state);
    tokio::spawn(async move {
        if let Err(e) = state.keys.session_keys().reload().await {
            tracing::warn!(error = %e, "cannot read the session keys again");
        }
    });
}

//! Periodic housekeeping: removes catalog records whose deletion has completed, enforces each
//! stream's data retention (and the live buffer's window) in the media store, and deletes the
//! media of streams that no longer exist (including any left behind by a crash). Once a minute
//! it also drops temporary credentials that expired over an hour ago (until then a client
//! using them is told ExpiredToken rather than that the key is unknown).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use oxbow_catalog::StreamRecord;
use oxbow_core::time::now_ms;

use crate::resource::media_key;
use crate::state::AppState;

const INTERVAL: Duration = Duration::from_secs(1);
/// Sweeps between two purges of expired temporary keys.
const KEY_PURGE_EVERY: u64 = 60;
/// How long an expired temporary key is kept.
const EXPIRED_KEY_GRACE_MS: i64 = 3_600_000;

pub async fn run(state: Arc<AppState>) {
    let mut tick: u64 = 0;
    loop {
        if let Err(e) = sweep(&state, tick == 0).await {
            tracing::warn!(error = %e, "housekeeping sweep failed");
        }
        if tick.is_multiple_of(KEY_PURGE_EVERY) {
            if let Err(e) = purge_expired_keys(&state).await {
                tracing::warn!(error = %e, "purging expired credentials failed");
            }
        }
        tick += 1;
        tokio::time::sleep(INTERVAL).await;
    }
}

async fn purge_expired_keys(state: &AppState) -> Result<(), Box<dyn std::error::Error>> {
    let cutoff = now_ms() - EXPIRED_KEY_GRACE_MS;
    let keys = state.catalog.access_keys();
    let mut purged = 0;
    for k in keys.list(None, None, usize::MAX).await? {
        if k.expires_ms.is_some_and(|t| t < cutoff) {
            keys.remove(&k.access_key_id).await?;
            state.keys.invalidate(&k.access_key_id);
            purged += 1;
        }
    }
    if purged > 0 {
        tracing::info!(purged, "dropped expired temporary credentials");
    }
    Ok(())
}

async fn sweep(state: &AppState, check_disk: bool) -> Result<(), Box<dyn std::error::Error>> {
    let now = now_ms();
    // What the store holds is taken before the catalog is read: a stream is in the catalog
    // before its media exists, so every key seen here that the catalog then lacks belongs to
    // a deleted stream. Read the other way round, a stream created between the two reads
    // would look deleted and lose its media.
    let opened = state.store.open_streams();
    let on_disk = if check_disk {
        // A directory listing: not on the async executor.
        let store = std::sync::Arc::clone(&state.store);
        tokio::task::spawn_blocking(move || store.keys_on_disk()).await??
    } else {
        Vec::new()
    };
    let mut live: HashMap<String, StreamRecord> = HashMap::new();
    let streams = state.catalog.streams();
    for s in streams.list(None, None, usize::MAX).await? {
        if s.lifecycle.at(now).is_none() {
            streams.remove(&s.name).await?;
        } else {
            live.insert(media_key(&s), s);
        }
    }
    let channels = state.catalog.channels();
    for c in channels.list(None, None, usize::MAX).await? {
        if c.lifecycle.at(now).is_none() {
            channels.remove(&c.name).await?;
        }
    }
    for (key, log) in opened {
        match live.get(&key) {
            Some(s) => {
                let retention = (s.retention_hours > 0).then(|| s.retention_hours * 3_600_000);
                // Expiry deletes segment files: not on the async executor.
                tokio::task::spawn_blocking(move || log.enforce_retention(now, retention)).await?;
            }
            None => state.store.remove_stream(&key).await?,
        }
    }
    if check_disk {
        for key in on_disk {
            if !live.contains_key(&key) {
                tracing::info!(%key, "deleting media of a stream that no longer exists");
                state.store.remove_stream(&key).await?;
            }
        }
    }
    Ok(())
}

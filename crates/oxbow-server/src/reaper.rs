//! Periodic housekeeping: removes catalog records whose deletion has completed, enforces each
//! stream's data retention (and the live buffer's window) in the media store, and deletes the
//! media of streams that no longer exist (including any left behind by a crash).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use oxbow_catalog::StreamRecord;
use oxbow_core::time::now_ms;

use crate::media::media_key;
use crate::state::AppState;

const INTERVAL: Duration = Duration::from_secs(1);

pub async fn run(state: Arc<AppState>) {
    let mut first = true;
    loop {
        if let Err(e) = sweep(&state, first).await {
            tracing::warn!(error = %e, "housekeeping sweep failed");
        }
        first = false;
        tokio::time::sleep(INTERVAL).await;
    }
}

async fn sweep(state: &AppState, check_disk: bool) -> Result<(), Box<dyn std::error::Error>> {
    let now = now_ms();
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
    for (key, log) in state.store.open_streams() {
        match live.get(&key) {
            Some(s) => {
                let retention = (s.retention_hours > 0).then(|| s.retention_hours * 3_600_000);
                log.enforce_retention(now, retention);
            }
            None => state.store.delete_stream(&key)?,
        }
    }
    if check_disk {
        for key in state.store.keys_on_disk()? {
            if !live.contains_key(&key) {
                tracing::info!(%key, "deleting media of a stream that no longer exists");
                state.store.delete_stream(&key)?;
            }
        }
    }
    Ok(())
}

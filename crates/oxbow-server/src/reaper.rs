//! Removes records whose deletion has completed (DELETING past its settle time). Reads already
//! treat such records as gone; this only frees their rows and their names' quota slots.

use std::sync::Arc;
use std::time::Duration;

use oxbow_core::time::now_ms;

use crate::state::AppState;

const INTERVAL: Duration = Duration::from_secs(5);

pub async fn run(state: Arc<AppState>) {
    loop {
        tokio::time::sleep(INTERVAL).await;
        if let Err(e) = sweep(&state).await {
            tracing::warn!(error = %e, "reaper sweep failed");
        }
    }
}

async fn sweep(state: &AppState) -> Result<(), oxbow_catalog::CatalogError> {
    let now = now_ms();
    let streams = state.catalog.streams();
    for s in streams.list(None, None, usize::MAX).await? {
        if s.lifecycle.at(now).is_none() {
            streams.remove(&s.name).await?;
        }
    }
    let channels = state.catalog.channels();
    for c in channels.list(None, None, usize::MAX).await? {
        if c.lifecycle.at(now).is_none() {
            channels.remove(&c.name).await?;
        }
    }
    Ok(())
}

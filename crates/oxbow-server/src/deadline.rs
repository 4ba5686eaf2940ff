//! What the drivers of the sans-IO machines (PutMedia ingest, the signaling hub) wait on: the
//! machine's next deadline, or nothing when it has none.

use std::time::Instant;

/// Sleeps until `deadline`; never wakes when there is none.
pub async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

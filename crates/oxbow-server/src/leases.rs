//! Ownership in a cluster: one node at a time ingests a stream, through a lease in the shared
//! catalog (`stream/<name>`) that it renews while it uses it. GetDataEndpoint hands out the
//! owner's URL, so unmodified producers go where the stream is written; a PutMedia that reaches
//! another node is refused with a retryable error, after which the SDKs ask GetDataEndpoint
//! again (the producer SDK's state machine goes from PUT_STREAM back to DESCRIBE and
//! GET_ENDPOINT on a failed PutMedia). When the owner dies its lease runs out and the next
//! GetDataEndpoint or PutMedia makes the node it reached the owner, with a larger epoch.
//!
//! An owner fences itself by time: it numbers a fragment only while its lease is unexpired by
//! its own clock, and a new owner takes over only after the old lease expired, so two nodes
//! never number fragments of one stream at once (as long as clocks agree within the lease's
//! length). The decisions are pure functions of the stored lease, the node and the time
//! ([`judge`]); [`Leases`] is the thin driver over the catalog.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use oxbow_catalog::{CatalogError, LeaseRecord};
use oxbow_core::time::now_ms;
use oxbow_core::{ApiError, ErrorKind};

use oxbow_catalog::Catalog;

/// What a stored lease means for this node at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// This node holds it (until `expires_ms`).
    Mine { epoch: u64, expires_ms: i64 },
    /// Another node holds it, unexpired.
    Theirs { url: String },
    /// Nobody holds it: the next claim takes it with `epoch`.
    Free { epoch: u64 },
}

/// The lease `stored` (if any) as `node` sees it at `now_ms`.
pub fn judge(stored: Option<&LeaseRecord>, node: &str, now_ms: i64) -> Judgement {
    match stored {
        None => Judgement::Free { epoch: 1 },
        Some(l) if l.owner == node && l.expires_ms > now_ms => Judgement::Mine {
            epoch: l.epoch,
            expires_ms: l.expires_ms,
        },
        Some(l) if l.expires_ms > now_ms => Judgement::Theirs { url: l.url.clone() },
        // Expired, or ours but expired: a new term, so whoever held it can tell.
        Some(l) => Judgement::Free { epoch: l.epoch + 1 },
    }
}

/// The outcome of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This node owns the stream; `fresh` when it just took it over (its view of the stream's
    /// media must be read again from the bucket).
    Mine {
        epoch: u64,
        fresh: bool,
    },
    Theirs {
        url: String,
    },
}

impl Claim {
    /// The owner's URL if another node owns it.
    pub fn elsewhere(self) -> Option<String> {
        match self {
            Claim::Theirs { url } => Some(url),
            Claim::Mine { .. } => None,
        }
    }
}

/// This node's leases.
pub struct Leases {
    node: String,
    url: String,
    ttl_ms: i64,
    /// Leases held (renewed only while in use).
    held: Mutex<HashMap<String, Held>>,
    /// Leases kept while something long-lived uses them (open signaling connections), with
    /// how many such users each has.
    pins: Mutex<HashMap<String, usize>>,
}

/// A lease this node holds, as it last wrote or read it.
#[derive(Debug, Clone, Copy)]
struct Held {
    epoch: u64,
    /// When the lease runs out unless renewed: nobody else can take it before, so until then
    /// this node knows it holds the lease without asking the catalog.
    expires_ms: i64,
    /// When it was last used.
    used_ms: i64,
}

/// A renewal is due when less than this part of the lease is left.
const RENEW_WHEN_LEFT: i64 = 2;

impl Leases {
    pub fn new(node: String, url: String, ttl: Duration) -> Self {
        Self {
            node,
            url,
            ttl_ms: ttl.as_millis() as i64,
            held: Mutex::new(HashMap::new()),
            pins: Mutex::new(HashMap::new()),
        }
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hold(&self, key: &str, epoch: u64, expires_ms: i64, now: i64) {
        let held = Held {
            epoch,
            expires_ms,
            used_ms: now,
        };
        self.held().insert(key.to_string(), held);
    }

    /// Who owns `key` now, taking it when nobody does (or renewing it when it is ours).
    pub async fn claim(&self, catalog: &dyn Catalog, key: &str) -> Result<Claim, ApiError> {
        let table = catalog.leases();
        let failed = |e| ApiError::dependency("claim a lease", e);
        for _ in 0..3 {
            let now = now_ms();
            let stored = table.get(key).await.map_err(failed)?;
            let record = |epoch| LeaseRecord {
                key: key.to_string(),
                owner: self.node.clone(),
                url: self.url.clone(),
                epoch,
                expires_ms: now + self.ttl_ms,
            };
            let taken = match judge(stored.as_ref(), &self.node, now) {
                Judgement::Theirs { url } => return Ok(Claim::Theirs { url }),
                Judgement::Mine { epoch, expires_ms } => {
                    self.hold(key, epoch, expires_ms, now);
                    if expires_ms - now <= self.ttl_ms / RENEW_WHEN_LEFT {
                        self.renew(catalog, key, epoch).await?;
                    }
                    return Ok(Claim::Mine {
                        epoch,
                        fresh: false,
                    });
                }
                Judgement::Free { epoch } if stored.is_none() => {
                    match table.insert(record(epoch), u64::MAX).await {
                        Ok(()) => Some(epoch),
                        Err(CatalogError::Exists) => None,
                        Err(e) => return Err(failed(e)),
                    }
                }
                Judgement::Free { epoch } => {
                    let (node, expected) = (self.node.clone(), stored.as_ref().map(|s| s.epoch));
                    let next = record(epoch);
                    let outcome = table
                        .update(
                            key,
                            Box::new(move |l: &mut LeaseRecord| {
                                // Taken only if nobody took it since it was read.
                                if Some(l.epoch) != expected
                                    || judge(Some(l), &node, now_ms())
                                        != (Judgement::Free { epoch })
                                {
                                    return Err("the lease changed".into());
                                }
                                *l = next;
                                Ok(())
                            }),
                        )
                        .await;
                    match outcome {
                        Ok(_) => Some(epoch),
                        Err(CatalogError::Rejected(_) | CatalogError::NotFound) => None,
                        Err(e) => return Err(failed(e)),
                    }
                }
            };
            if let Some(epoch) = taken {
                self.hold(key, epoch, now + self.ttl_ms, now);
                tracing::info!(lease = %key, epoch, "took ownership");
                return Ok(Claim::Mine { epoch, fresh: true });
            }
        }
        Err(ApiError::new(
            ErrorKind::ServiceUnavailable,
            "Ownership of the stream is changing; try again.",
        ))
    }

    /// Extends this node's lease on `key` (term `epoch`).
    async fn renew(&self, catalog: &dyn Catalog, key: &str, epoch: u64) -> Result<(), ApiError> {
        let (node, until) = (self.node.clone(), now_ms() + self.ttl_ms);
        catalog
            .leases()
            .update(
                key,
                Box::new(move |l: &mut LeaseRecord| {
                    if l.owner != node || l.epoch != epoch {
                        return Err("the lease was taken".into());
                    }
                    l.expires_ms = until;
                    Ok(())
                }),
            )
            .await
            .map(|_| {
                if let Some(held) = self.held().get_mut(key) {
                    held.expires_ms = held.expires_ms.max(until);
                }
            })
            .map_err(|e| {
                if matches!(e, CatalogError::Rejected(_) | CatalogError::NotFound) {
                    self.held().remove(key);
                }
                ApiError::dependency("renew a lease", e)
            })
    }

    /// Whether this node holds `key` now, by its own clock (the fencing check before each
    /// fragment is numbered). Answered from what this node last wrote: no other node can take
    /// a lease before it expires, so asking the catalog would tell nothing more.
    pub fn holds(&self, key: &str) -> bool {
        self.held()
            .get(key)
            .is_some_and(|h| h.expires_ms > now_ms())
    }

    /// The URL of the node that owns `key` now, if another node does.
    pub async fn other_owner(&self, catalog: &dyn Catalog, key: &str) -> Option<String> {
        let stored = catalog.leases().get(key).await.ok().flatten();
        match judge(stored.as_ref(), &self.node, now_ms()) {
            Judgement::Theirs { url } => Some(url),
            _ => None,
        }
    }

    fn pins(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.pins.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `key` renewed until as many [`Leases::unpin`]s (a signaling connection open on
    /// this node holds its channel here).
    pub fn pin(&self, key: &str) {
        *self.pins().entry(key.to_string()).or_default() += 1;
    }

    pub fn unpin(&self, key: &str) {
        let mut pins = self.pins();
        if let Some(n) = pins.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                pins.remove(key);
            }
        }
    }

    /// Marks `key` in use, so it is renewed.
    pub fn touch(&self, key: &str) {
        if let Some(held) = self.held().get_mut(key) {
            held.used_ms = now_ms();
        }
    }

    /// Renews, every third of a lease, the leases used within the last two lease lengths;
    /// lets the others lapse.
    pub async fn keep(&self, catalog: &dyn Catalog) {
        let every = Duration::from_millis((self.ttl_ms / 3).max(100) as u64);
        loop {
            tokio::time::sleep(every).await;
            let now = now_ms();
            let due: Vec<(String, u64)> = {
                let pinned: Vec<String> = self.pins().keys().cloned().collect();
                let mut held = self.held();
                held.retain(|key, h| now - h.used_ms < 2 * self.ttl_ms || pinned.contains(key));
                held.iter().map(|(k, h)| (k.clone(), h.epoch)).collect()
            };
            for (key, epoch) in due {
                // The renewal itself checks that the lease is still this node's term.
                if let Err(e) = self.renew(catalog, &key, epoch).await {
                    if self.held().contains_key(&key) {
                        tracing::warn!(lease = %key, error = %e.message, "lease not renewed");
                    } else {
                        tracing::warn!(lease = %key, "lease lost");
                    }
                }
            }
        }
    }

    /// Gives every lease back (a graceful stop), so other nodes take the streams at once.
    pub async fn release_all(&self, catalog: &dyn Catalog) {
        let keys: Vec<String> = self.held().drain().map(|(k, _)| k).collect();
        for key in keys {
            let node = self.node.clone();
            let released = catalog
                .leases()
                .update(
                    &key,
                    Box::new(move |l: &mut LeaseRecord| {
                        if l.owner != node {
                            return Err("not ours".into());
                        }
                        l.expires_ms = 0;
                        Ok(())
                    }),
                )
                .await;
            if released.is_ok() {
                tracing::info!(lease = %key, "lease handed back");
            }
        }
    }
}

/// The refusal of a PutMedia that reached a node not owning the stream: retryable (503), so
/// the SDKs ask GetDataEndpoint again, which names the owner.
pub fn not_here(url: &str) -> ApiError {
    ApiError::new(
        ErrorKind::ServiceUnavailable,
        format!("Another node ({url}) serves this stream now; call GetDataEndpoint again."),
    )
}

/// The lease key of a stream.
pub fn stream_key(name: &str) -> String {
    format!("stream/{name}")
}

/// The lease key of a signaling channel.
pub fn channel_key(name: &str) -> String {
    format!("channel/{name}")
}

/// The WebSocket URL of a node's public URL (`http` → `ws`, `https` → `wss`).
pub fn ws_url(url: &str) -> String {
    match url.strip_prefix("https://") {
        Some(rest) => format!("wss://{rest}"),
        None => format!("ws://{}", url.trim_start_matches("http://")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(owner: &str, epoch: u64, expires_ms: i64) -> LeaseRecord {
        LeaseRecord {
            key: "stream/s".into(),
            owner: owner.into(),
            url: format!("http://{owner}"),
            epoch,
            expires_ms,
        }
    }

    #[test]
    fn a_lease_is_free_mine_or_theirs_by_owner_and_time() {
        assert_eq!(judge(None, "a", 0), Judgement::Free { epoch: 1 });
        let l = lease("a", 3, 1000);
        assert_eq!(
            judge(Some(&l), "a", 999),
            Judgement::Mine {
                epoch: 3,
                expires_ms: 1000
            }
        );
        assert_eq!(
            judge(Some(&l), "b", 999),
            Judgement::Theirs {
                url: "http://a".into()
            }
        );
        // Expired: a new term for anyone, the old owner included.
        assert_eq!(judge(Some(&l), "b", 1000), Judgement::Free { epoch: 4 });
        assert_eq!(judge(Some(&l), "a", 1500), Judgement::Free { epoch: 4 });
    }

    /// Two nodes on one (embedded) catalog: the holder knows it holds the lease by its own
    /// clock, stops holding it when it runs out, and cannot renew it once the other node took
    /// the next term.
    #[tokio::test]
    async fn a_lease_is_held_until_it_runs_out_then_taken_with_the_next_epoch() {
        let dir =
            std::env::temp_dir().join(format!("oxbow-leases-{}-{}", std::process::id(), now_ms()));
        std::fs::create_dir_all(&dir).unwrap();
        let catalog = oxbow_catalog::SqliteCatalog::open(&dir.join("catalog.db")).unwrap();
        let ttl = Duration::from_millis(300);
        let a = Leases::new("a".into(), "http://a".into(), ttl);
        let b = Leases::new("b".into(), "http://b".into(), ttl);
        let key = stream_key("s");
        let mine = |epoch, fresh| Claim::Mine { epoch, fresh };
        assert_eq!(a.claim(&catalog, &key).await.unwrap(), mine(1, true));
        assert!(a.holds(&key) && !b.holds(&key));
        let theirs = b.claim(&catalog, &key).await.unwrap();
        assert_eq!(
            theirs,
            Claim::Theirs {
                url: "http://a".into()
            }
        );
        assert_eq!(a.claim(&catalog, &key).await.unwrap(), mine(1, false));

        tokio::time::sleep(ttl + Duration::from_millis(50)).await;
        assert!(!a.holds(&key), "a lease past its expiry is not held");
        assert_eq!(b.claim(&catalog, &key).await.unwrap(), mine(2, true));
        assert!(a.renew(&catalog, &key, 1).await.is_err());
        assert!(!a.holds(&key));
        let theirs = a.claim(&catalog, &key).await.unwrap();
        assert_eq!(
            theirs,
            Claim::Theirs {
                url: "http://b".into()
            }
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}

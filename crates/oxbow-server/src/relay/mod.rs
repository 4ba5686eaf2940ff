//! Signaling's shared state: the sans-IO [`hub::Hub`] behind one lock, and each connection's
//! outbox. The hub decides; this delivers its outputs to the connections' tasks through
//! bounded queues. A connection whose outbox is full is too slow to be a peer: it is cut off
//! (its queue closes), never waited for while the lock is held.

pub mod hub;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use hub::Hub;
pub use hub::{ConnId, HubLimits, Out, Refused, Role};

/// Frames queued for one connection at most.
const OUTBOX: usize = 64;

pub struct Relay {
    inner: Mutex<Inner>,
}

struct Inner {
    hub: Hub,
    outboxes: HashMap<ConnId, mpsc::Sender<Out>>,
}

impl Relay {
    pub fn new(limits: HubLimits) -> Self {
        Self {
            inner: Mutex::new(Inner {
                hub: Hub::new(limits),
                outboxes: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connects a client; its outbox receives what the hub sends it.
    pub fn connect(
        &self,
        channel: &str,
        ttl: Duration,
        role: Role,
    ) -> Result<(ConnId, mpsc::Receiver<Out>), Refused> {
        let mut inner = self.lock();
        inner.hub.sweep(Instant::now());
        let (id, outs) = inner.hub.connect(Instant::now(), channel, ttl, role)?;
        let (tx, rx) = mpsc::channel(OUTBOX);
        inner.outboxes.insert(id, tx);
        inner.deliver(outs);
        Ok((id, rx))
    }

    pub fn message(&self, conn: ConnId, text: &str) {
        let mut inner = self.lock();
        let outs = inner.hub.message(Instant::now(), conn, text);
        inner.deliver(outs);
    }

    pub fn poll_timeout(&self, conn: ConnId) -> Option<Instant> {
        self.lock().hub.poll_timeout(conn)
    }

    pub fn timeout(&self, conn: ConnId) {
        let mut inner = self.lock();
        let outs = inner.hub.timeout(Instant::now(), conn);
        inner.deliver(outs);
    }

    pub fn disconnect(&self, conn: ConnId) {
        let mut inner = self.lock();
        inner.hub.disconnect(conn);
        inner.outboxes.remove(&conn);
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.lock().hub.connections()
    }
}

impl Inner {
    fn deliver(&mut self, outs: Vec<(ConnId, Out)>) {
        for (to, out) in outs {
            let Some(tx) = self.outboxes.get(&to) else {
                continue;
            };
            if let Err(e) = tx.try_send(out) {
                if let mpsc::error::TrySendError::Full(_) = e {
                    tracing::info!(
                        conn = to,
                        "signaling: a peer too slow to take its messages is cut off"
                    );
                }
                self.outboxes.remove(&to);
            }
        }
    }
}

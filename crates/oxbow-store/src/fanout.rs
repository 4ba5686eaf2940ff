//! Live fan-out: a stream's live events (a fragment starts, its frames, its end) from the
//! producer's session to the stream's live readers. A seam of its own so that signaling and
//! a cluster can plug in: the in-process bus is a broadcast channel per stream; a cluster bus
//! relays the events of streams whose producer is on another node into the same kind of
//! [`Subscription`].

use tokio::sync::broadcast;

use crate::fragment::LiveEvent;

/// Makes the feed of each stream.
pub trait LiveBus: Send + Sync + 'static {
    /// The feed of stream `key`; a reader may fall `capacity` events behind before it misses
    /// some (and must re-read from the index).
    fn feed(&self, key: &str, capacity: usize) -> Box<dyn LiveFeed>;
}

/// One stream's live events.
pub trait LiveFeed: Send + Sync {
    /// Sends an event to every current subscriber; nobody listening is not an error.
    fn publish(&self, event: LiveEvent);

    /// Every event published after this call.
    fn subscribe(&self) -> Subscription;
}

/// Why a subscriber got no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    /// The subscriber fell this many events behind; they are gone.
    Lagged(u64),
    /// The feed ended (the stream's log was dropped).
    Closed,
}

/// A reader's end of a feed.
pub struct Subscription(broadcast::Receiver<LiveEvent>);

impl Subscription {
    /// A subscription fed by a broadcast channel (how every bus hands events to readers).
    pub fn from_broadcast(rx: broadcast::Receiver<LiveEvent>) -> Self {
        Self(rx)
    }

    pub async fn recv(&mut self) -> Result<LiveEvent, Missed> {
        self.0.recv().await.map_err(|e| match e {
            broadcast::error::RecvError::Lagged(n) => Missed::Lagged(n),
            broadcast::error::RecvError::Closed => Missed::Closed,
        })
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<LiveEvent> {
        self.0.try_recv().ok()
    }
}

/// Readers in this process: one broadcast channel per stream.
#[derive(Debug, Default, Clone, Copy)]
pub struct InProcessBus;

impl LiveBus for InProcessBus {
    fn feed(&self, _key: &str, capacity: usize) -> Box<dyn LiveFeed> {
        let (tx, _) = broadcast::channel(capacity.max(16));
        Box::new(BroadcastFeed(tx))
    }
}

struct BroadcastFeed(broadcast::Sender<LiveEvent>);

impl LiveFeed for BroadcastFeed {
    fn publish(&self, event: LiveEvent) {
        let _ = self.0.send(event);
    }

    fn subscribe(&self) -> Subscription {
        Subscription(self.0.subscribe())
    }
}

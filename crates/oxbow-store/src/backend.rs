//! The durable half of the store, behind traits: where fragments become durable and how they
//! are found again. [`crate::LocalBackend`] keeps them in segment files on local disk with
//! group-committed fsyncs; an object-store backend (cluster mode) implements the same two
//! traits with objects instead of segments. The in-memory half — index, live buffer, live
//! events — is [`crate::StreamLog`] and is the same for every backend.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;

use crate::fragment::{FragmentMeta, StoredFragment, StreamHeader};
use crate::StoreError;

/// Called once an append is durable (or failed).
pub type Done = Box<dyn FnOnce(std::io::Result<()>) + Send>;

/// A writer's place in a backend's write queue; dropping it gives the place back.
pub type Ticket = Box<dyn std::any::Any + Send>;

/// Admission to a backend's write queue, taken before an append and without holding any
/// lock: a writer waits here while the queue is full, so the queue stays bounded.
pub trait WriteGate: Send + Sync + 'static {
    /// Waits for a place (blocking: call it on a blocking thread).
    fn enter(&self) -> Ticket;
}

/// A durable fragment, as its backend can read it back. Reads block: call them on a
/// blocking thread.
pub trait Stored: Send + Sync + std::fmt::Debug + 'static {
    /// The whole fragment.
    fn read(&self) -> Result<StoredFragment, StoreError>;

    /// `len` bytes at `offset` of the fragment's payload (clamped to its end), so a reader
    /// can stream a large fragment without holding it whole.
    fn read_range(&self, offset: u64, len: usize) -> Result<Bytes, StoreError>;

    /// The payload length.
    fn payload_len(&self) -> u64;
}

/// Where a durable fragment can be read back.
pub type Location = Arc<dyn Stored>;

/// What a stream's durable log already holds when it is opened, oldest first.
#[derive(Default)]
pub struct Recovered {
    pub headers: Vec<(u32, StreamHeader)>,
    pub fragments: Vec<(FragmentMeta, Location)>,
    /// No fragment number below this may be handed out again: numbers leased before a
    /// restart may have been shown to clients in BUFFERING acks.
    pub next_seq_floor: u64,
}

/// One stream's durable log.
pub trait DurableLog: Send + 'static {
    /// Starts making `fragment` durable, with its stream header if the log needs it beside
    /// the fragment; `done` runs once everything is durable. Never calls `done` before
    /// returning.
    fn append(
        &mut self,
        header: (u32, &StreamHeader),
        fragment: &StoredFragment,
        done: Done,
    ) -> Result<Location, StoreError>;

    /// The gate appends pass first, if the backend's queue is bounded.
    fn write_gate(&self) -> Option<Arc<dyn WriteGate>> {
        None
    }

    /// What reads the fragments other processes append to this log, if any can (cluster
    /// mode: every node's backend sees one bucket, but only the stream's owner writes).
    fn follower(&self) -> Option<Arc<dyn Follower>> {
        None
    }

    /// Deletes durable data all of whose fragments arrived before `cutoff_ms` (server time).
    fn expire(&mut self, cutoff_ms: i64);

    /// Makes durable that numbers below `upto` may have been handed out, so a restart starts
    /// at `upto` or later (see [`Recovered::next_seq_floor`]).
    fn lease_seqs(&mut self, upto: u64) -> Result<(), StoreError>;
}

/// Reads, without the log's lock, what another process appended to a durable log.
pub trait Follower: Send + Sync + 'static {
    /// The fragments numbered above `after_seq`, oldest first, with the headers they use that
    /// are not in `known_headers` (`next_seq_floor` is unused). Blocking.
    fn newer(&self, after_seq: u64, known_headers: &HashSet<u32>) -> Result<Recovered, StoreError>;
}

/// Where streams' durable logs live. Object-safe, so the server holds whichever backend the
/// deployment uses (local segment files, or objects in cluster mode) behind one type.
pub trait Backend: Send + Sync + 'static {
    /// Opens (creating if needed) one stream's log and returns what it already holds.
    fn open(&self, key: &str) -> Result<(Box<dyn DurableLog>, Recovered), StoreError>;

    /// The keys of every stream with durable data.
    fn keys(&self) -> Result<Vec<String>, StoreError>;

    /// Deletes a stream's durable data.
    fn delete(&self, key: &str) -> Result<(), StoreError>;
}

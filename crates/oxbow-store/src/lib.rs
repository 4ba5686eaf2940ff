//! The fragment store. Each stream has an in-memory index (by fragment sequence, with producer
//! and server timestamps), a live buffer of recent fragments and a broadcast of live frames
//! ([`StreamLog`]), in front of a durable log kept by a [`Backend`].
//!
//! The embedded backend ([`LocalBackend`]) appends CRC'd records to per-stream segment files;
//! one committer thread batches every stream's pending records into one round of
//! `fdatasync`s (group commit). A fragment is reported persisted only after its fsync
//! returned; a failed write is cut back so the log stays a run of whole records. On open, each
//! segment's data ends at its first incomplete record (the newest is CRC-checked), and nothing
//! after it in other segments is lost. Durable I/O goes through [`Disk`], which tests replace
//! to cut power or fill the disk. The object backend ([`ObjectBackend`], cluster mode) keeps
//! each fragment as an object in an S3-compatible bucket, so every node can read it.

#![forbid(unsafe_code)]

mod backend;
mod committer;
mod disk;
mod fanout;
mod fragment;
mod local;
mod log;
mod object;
mod record;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub use backend::{
    Backend, Done, DurableLog, Follower, Location, Recovered, Stored, Ticket, WriteGate,
};
pub use disk::{Disk, RealDisk};
pub use fanout::{InProcessBus, LiveBus, LiveFeed, Missed, Subscription};
pub use fragment::{FragmentHead, FragmentMeta, LiveEvent, StoredFragment, StreamHeader};
pub use local::{LocalBackend, SegmentLocation, SegmentLog, DEFAULT_RESERVE_BYTES};
pub use log::{FragmentSource, Partial, StreamLog};
pub use object::{Bucket, ListedObject, ObjectBackend, ObjectLocation};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt record in {path} at offset {offset}")]
    Corrupt { path: String, offset: u64 },
    #[error("the disk is full: {available} bytes free, {reserve} kept in reserve")]
    DiskFull { available: u64, reserve: u64 },
    #[error("fragment {0} is no longer available")]
    Gone(u64),
    #[error("the store is shutting down")]
    Closed,
}

/// Tuning knobs, with defaults that follow KVS where KVS documents a number.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// A segment file is sealed and a new one started past this size.
    pub segment_bytes: u64,
    /// Completed fragments stay in memory this long (the KVS host buffer keeps 5 minutes).
    pub live_window_ms: i64,
    /// ... and at most this many bytes per stream (KVS: 200 MB).
    pub live_bytes: usize,
    /// How long fragments of streams with retention stay in memory once persisted.
    pub persisted_window_ms: i64,
    /// Live events a lagging reader may fall behind before it must re-read from the index.
    pub live_channel: usize,
    /// Free space media leaves on the data filesystem, so the catalog can still write (and
    /// a DeleteStream free space) when media has filled the disk.
    pub reserve_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            live_window_ms: 5 * 60 * 1000,
            live_bytes: 200 << 20,
            persisted_window_ms: 0,
            live_channel: 256,
            reserve_bytes: DEFAULT_RESERVE_BYTES,
        }
    }
}

/// Every stream's log, over one backend.
pub struct Store {
    backend: Box<dyn Backend>,
    bus: Arc<dyn LiveBus>,
    config: StoreConfig,
    streams: Mutex<HashMap<String, Arc<StreamLog>>>,
    /// Streams being opened, each behind its own gate.
    opening: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl Store {
    /// The embedded store in `dir`.
    pub fn open(dir: &Path, config: StoreConfig) -> Result<Self, StoreError> {
        Self::open_on(dir, config, Arc::new(RealDisk))
    }

    /// The embedded store in `dir`, doing its durable I/O through `disk`.
    pub fn open_on(
        dir: &Path,
        config: StoreConfig,
        disk: Arc<dyn Disk>,
    ) -> Result<Self, StoreError> {
        let backend =
            LocalBackend::with_disk(dir, config.segment_bytes, config.reserve_bytes, disk)?;
        Ok(Self::with_backend(Box::new(backend), config))
    }

    /// A store over any backend, with live readers in this process.
    pub fn with_backend(backend: Box<dyn Backend>, config: StoreConfig) -> Self {
        Self::with_parts(backend, Arc::new(InProcessBus), config)
    }

    /// A store over any backend and live bus.
    pub fn with_parts(
        backend: Box<dyn Backend>,
        bus: Arc<dyn LiveBus>,
        config: StoreConfig,
    ) -> Self {
        Self {
            backend,
            bus,
            config,
            streams: Mutex::new(HashMap::new()),
            opening: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<StreamLog>>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The log of one stream incarnation (`key` names it uniquely, e.g. name + creation ms),
    /// opened and recovered on first use. Blocking on first use (recovery reads the segments):
    /// async callers use [`Store::open_stream`]. The store-wide lock is held only to look up
    /// and insert, never across the recovery, so one stream's recovery delays no other.
    pub fn stream(&self, key: &str) -> Result<Arc<StreamLog>, StoreError> {
        if let Some(s) = self.lock().get(key) {
            return Ok(Arc::clone(s));
        }
        // One opener per key: a second recovery of a log the first opener already appends
        // to could cut the first one's newest record off as a torn tail.
        let gate = {
            let mut opening = self.opening.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(opening.entry(key.to_string()).or_default())
        };
        let _opening = gate.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = self.lock().get(key) {
            return Ok(Arc::clone(s));
        }
        let opened = self.backend.open(key).map(|(durable, recovered)| {
            let feed = self.bus.feed(key, self.config.live_channel);
            let log = Arc::new(StreamLog::new(
                durable,
                recovered,
                self.config.clone(),
                feed,
            ));
            self.lock().insert(key.to_string(), Arc::clone(&log));
            log
        });
        self.opening
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
        opened
    }

    /// [`Store::stream`] for async callers: a first use opens and recovers the log on a
    /// blocking thread.
    pub async fn open_stream(self: &Arc<Self>, key: &str) -> Result<Arc<StreamLog>, StoreError> {
        if let Some(s) = self.lock().get(key) {
            return Ok(Arc::clone(s));
        }
        let store = Arc::clone(self);
        let key = key.to_string();
        tokio::task::spawn_blocking(move || store.stream(&key))
            .await
            .map_err(|_| StoreError::Closed)?
    }

    /// [`Store::delete_stream`] on a blocking thread (deleting a directory of large files
    /// takes a while).
    pub async fn remove_stream(self: &Arc<Self>, key: &str) -> Result<(), StoreError> {
        let store = Arc::clone(self);
        let key = key.to_string();
        tokio::task::spawn_blocking(move || store.delete_stream(&key))
            .await
            .map_err(|_| StoreError::Closed)?
    }

    /// Every stream log opened so far.
    pub fn open_streams(&self) -> Vec<(String, Arc<StreamLog>)> {
        self.lock()
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect()
    }

    /// Stream keys that have durable data, opened or not.
    pub fn keys_on_disk(&self) -> Result<Vec<String>, StoreError> {
        self.backend.keys()
    }

    /// Forgets a stream's log, keeping its durable data: the next use opens and recovers it
    /// again (in a cluster, after another node wrote to the shared bucket).
    pub fn forget(&self, key: &str) {
        if let Some(log) = self.lock().remove(key) {
            log.close();
        }
    }

    /// Forgets a stream and deletes its durable data.
    pub fn delete_stream(&self, key: &str) -> Result<(), StoreError> {
        self.forget(key);
        self.backend.delete(key)
    }
}

//! The fragment store. Each stream has an append-only log of segment files holding its stream
//! headers and fragments; an in-memory index (by fragment sequence, with producer and server
//! timestamps) and a live buffer of recent fragments sit in front of it.
//!
//! Durability: records are written and fsynced by one committer thread that batches every
//! stream's pending records into one round of `fdatasync`s (group commit). A fragment is
//! reported persisted only after its fsync returned. On open, each stream's newest segment is
//! checked record by record and a torn tail is cut off.

mod committer;
mod fragment;
mod log;
mod record;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use fragment::{FragmentMeta, LiveEvent, StoredFragment, StreamHeader};
pub use log::{Partial, StreamLog};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt record in {path} at offset {offset}")]
    Corrupt { path: String, offset: u64 },
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
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            live_window_ms: 5 * 60 * 1000,
            live_bytes: 200 << 20,
            persisted_window_ms: 0,
            live_channel: 256,
        }
    }
}

/// All streams' logs under one directory.
pub struct Store {
    dir: PathBuf,
    config: StoreConfig,
    committer: committer::Committer,
    streams: Mutex<HashMap<String, Arc<StreamLog>>>,
}

impl Store {
    pub fn open(dir: &Path, config: StoreConfig) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            committer: committer::Committer::start(),
            streams: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<StreamLog>>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The log of one stream incarnation (`key` names it uniquely, e.g. name + creation ms),
    /// opened and recovered on first use.
    pub fn stream(&self, key: &str) -> Result<Arc<StreamLog>, StoreError> {
        if let Some(s) = self.lock().get(key) {
            return Ok(Arc::clone(s));
        }
        let log = Arc::new(StreamLog::open(
            &self.dir.join(key),
            self.config.clone(),
            self.committer.clone(),
        )?);
        let mut streams = self.lock();
        Ok(Arc::clone(streams.entry(key.to_string()).or_insert(log)))
    }

    /// Every stream log opened so far.
    pub fn open_streams(&self) -> Vec<(String, Arc<StreamLog>)> {
        self.lock()
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect()
    }

    /// Stream keys that have files on disk, opened or not.
    pub fn keys_on_disk(&self) -> Result<Vec<String>, StoreError> {
        Ok(std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect())
    }

    /// Forgets a stream and deletes its files.
    pub fn delete_stream(&self, key: &str) -> Result<(), StoreError> {
        if let Some(log) = self.lock().remove(key) {
            log.close();
        }
        let dir = self.dir.join(key);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

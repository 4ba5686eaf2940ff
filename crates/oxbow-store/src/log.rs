//! One stream's in-memory half: the index of fragments (by sequence, with producer and server
//! timestamps), the live buffer, the fragment in progress, and the broadcast that live
//! readers follow. Durability is the backend's ([`DurableLog`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::backend::{DurableLog, Follower, Location, Recovered, Ticket, WriteGate};
use crate::fanout::{LiveFeed, Subscription};
use crate::fragment::{FragmentHead, FragmentMeta, LiveEvent, StoredFragment, StreamHeader};
use crate::record;
use crate::{StoreConfig, StoreError};

/// How many fragment numbers one durable lease covers: one small fsynced write per this many
/// fragments.
const SEQ_LEASE_BLOCK: u64 = 1024;

struct Entry {
    meta: FragmentMeta,
    /// Where the backend keeps it, once written.
    durable: Option<Location>,
    /// The fragment itself while it is in the live buffer.
    memory: Option<Arc<StoredFragment>>,
}

struct Inner {
    entries: VecDeque<Entry>,
    headers: HashMap<u32, StreamHeader>,
    current_header: Option<u32>,
    next_seq: u64,
    /// Numbers below this are leased durably (see [`DurableLog::lease_seqs`]).
    leased_upto: u64,
    next_header_id: u32,
    memory_bytes: usize,
    /// The fragment being received, so a reader joining mid-fragment gets it whole.
    partial: Option<Partial>,
    durable: Box<dyn DurableLog>,
}

/// The fragment in progress: its start and the frames received so far.
#[derive(Debug, Clone)]
pub struct Partial {
    pub seq: u64,
    pub header_id: u32,
    pub producer_ts_ms: i64,
    pub server_ts_ms: i64,
    pub cluster_timecode: u64,
    pub frames: Vec<Bytes>,
}

pub struct StreamLog {
    config: StoreConfig,
    /// Passed before the index is locked for an append (see [`WriteGate`]).
    gate: Option<Arc<dyn WriteGate>>,
    inner: Mutex<Inner>,
    live: Box<dyn LiveFeed>,
    writer_epoch: AtomicU64,
    closed: AtomicBool,
    /// Reads what other processes appended (cluster mode).
    follower: Option<Arc<dyn Follower>>,
}

impl StreamLog {
    /// The in-memory half over a backend's log and what it already held.
    pub fn new(
        durable: Box<dyn DurableLog>,
        recovered: Recovered,
        config: StoreConfig,
        live: Box<dyn LiveFeed>,
    ) -> Self {
        let gate = durable.write_gate();
        let follower = durable.follower();
        let mut inner = Inner {
            entries: VecDeque::new(),
            headers: HashMap::new(),
            current_header: None,
            next_seq: recovered.next_seq_floor.max(1),
            leased_upto: recovered.next_seq_floor,
            next_header_id: 1,
            memory_bytes: 0,
            partial: None,
            durable,
        };
        for (id, h) in recovered.headers {
            inner.next_header_id = inner.next_header_id.max(id + 1);
            inner.headers.insert(id, h);
        }
        for (meta, location) in recovered.fragments {
            inner.next_seq = inner.next_seq.max(meta.seq + 1);
            inner.entries.push_back(Entry {
                meta,
                durable: Some(location),
                memory: None,
            });
        }
        Self {
            config,
            gate,
            inner: Mutex::new(inner),
            live,
            writer_epoch: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            follower,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the caller the stream's one producer; earlier producers see
    /// [`StreamLog::is_writer`] turn false (the newest connection wins, as on KVS).
    pub fn claim_writer(&self) -> u64 {
        self.writer_epoch.fetch_add(1, Ordering::AcqRel) + 1
    }

    pub fn is_writer(&self, epoch: u64) -> bool {
        self.writer_epoch.load(Ordering::Acquire) == epoch && !self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Registers the producer's stream header; an unchanged header keeps its id.
    pub fn set_header(&self, header: StreamHeader) -> u32 {
        let mut inner = self.lock();
        if let Some(id) = inner.current_header {
            if inner.headers.get(&id) == Some(&header) {
                return id;
            }
        }
        if let Some((&id, _)) = inner.headers.iter().find(|(_, h)| **h == header) {
            inner.current_header = Some(id);
            return id;
        }
        let id = inner.next_header_id;
        inner.next_header_id += 1;
        inner.headers.insert(id, header);
        inner.current_header = Some(id);
        id
    }

    /// The header the stream's newest media uses: the producer's current one, else (after a
    /// restart) that of the newest fragment.
    pub fn latest_header(&self) -> Option<StreamHeader> {
        let inner = self.lock();
        let id = inner
            .current_header
            .or_else(|| inner.entries.back().map(|e| e.meta.header_id))?;
        inner.headers.get(&id).cloned()
    }

    pub fn header(&self, id: u32) -> Option<StreamHeader> {
        self.lock().headers.get(&id).cloned()
    }

    /// Starts a fragment: assigns its number and tells live readers. The number may be shown
    /// to a client at once (BUFFERING), so it is leased durably first, in blocks, and never
    /// handed out again after a restart.
    pub fn begin(
        &self,
        header_id: u32,
        producer_ts_ms: i64,
        server_ts_ms: i64,
        cluster_timecode: u64,
    ) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let seq = inner.next_seq;
        if seq >= inner.leased_upto {
            let upto = seq + SEQ_LEASE_BLOCK;
            inner.durable.lease_seqs(upto)?;
            inner.leased_upto = upto;
        }
        inner.next_seq += 1;
        inner.partial = Some(Partial {
            seq,
            header_id,
            producer_ts_ms,
            server_ts_ms,
            cluster_timecode,
            frames: Vec::new(),
        });
        self.live.publish(LiveEvent::Start {
            seq,
            header_id,
            producer_ts_ms,
            server_ts_ms,
            cluster_timecode,
        });
        Ok(seq)
    }

    /// Forwards a frame of the fragment in progress to live readers.
    pub fn frame(&self, seq: u64, element: Bytes) {
        let mut inner = self.lock();
        if let Some(p) = inner.partial.as_mut().filter(|p| p.seq == seq) {
            p.frames.push(element.clone());
        }
        self.live.publish(LiveEvent::Frame { seq, element });
    }

    /// Drops a fragment that will not complete.
    pub fn abandon(&self, seq: u64) {
        let mut inner = self.lock();
        if inner.partial.as_ref().is_some_and(|p| p.seq == seq) {
            inner.partial = None;
        }
        self.live.publish(LiveEvent::End {
            seq,
            ok: false,
            tags: Vec::new(),
        });
    }

    /// The fragment in progress, as far as it has arrived.
    pub fn partial(&self) -> Option<Partial> {
        self.lock().partial.clone()
    }

    /// Follows the stream live: the receiver gets every event after this call, and the
    /// snapshot is the fragment in progress at this instant (if any).
    pub fn subscribe(&self) -> (Subscription, Option<Partial>) {
        let inner = self.lock();
        (self.live.subscribe(), inner.partial.clone())
    }

    /// Adds a completed fragment: readable at once from memory; when `persist`, the returned
    /// receiver resolves once it is written and fsynced. Blocking when `persist` (it may wait
    /// for room in the backend's write queue, or start a segment file): call it on a
    /// blocking thread.
    pub fn complete(
        self: &Arc<Self>,
        fragment: StoredFragment,
        persist: bool,
    ) -> oneshot::Receiver<Result<(), StoreError>> {
        let (tx, rx) = oneshot::channel();
        let fragment = Arc::new(fragment);
        let meta = FragmentMeta {
            seq: fragment.seq,
            producer_ts_ms: fragment.producer_ts_ms,
            server_ts_ms: fragment.server_ts_ms,
            duration_ms: fragment.duration_ms,
            size: record::fragment_size(&fragment),
            header_id: fragment.header_id,
            persisted: false,
        };
        // The queue place is taken before the lock: the committer's callback takes the lock.
        let ticket = persist
            .then(|| self.gate.as_ref().map(|g| g.enter()))
            .flatten();
        let mut inner = self.lock();
        inner.memory_bytes += fragment.cluster.len();
        let mut tx = Some(tx);
        let durable = if persist {
            match self.append(&mut inner, &fragment, &mut tx, ticket) {
                Ok(location) => Some(location),
                Err(e) => {
                    inner.partial = None;
                    self.live.publish(LiveEvent::End {
                        seq: fragment.seq,
                        ok: false,
                        tags: Vec::new(),
                    });
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(Err(e));
                    }
                    return rx;
                }
            }
        } else {
            None
        };
        inner.entries.push_back(Entry {
            meta,
            durable,
            memory: Some(Arc::clone(&fragment)),
        });
        if inner
            .partial
            .as_ref()
            .is_some_and(|p| p.seq == fragment.seq)
        {
            inner.partial = None;
        }
        self.live.publish(LiveEvent::End {
            seq: fragment.seq,
            ok: true,
            tags: fragment.tags.clone(),
        });
        if let Some(tx) = tx.take() {
            let _ = tx.send(Ok(()));
        }
        rx
    }

    /// Hands the fragment to the backend; the sender moves into the completion callback.
    fn append(
        self: &Arc<Self>,
        inner: &mut Inner,
        fragment: &StoredFragment,
        tx: &mut Option<oneshot::Sender<Result<(), StoreError>>>,
        ticket: Option<Ticket>,
    ) -> Result<Location, StoreError> {
        let header = inner
            .headers
            .get(&fragment.header_id)
            .cloned()
            .ok_or(StoreError::Closed)?;
        let log = Arc::downgrade(self);
        let seq = fragment.seq;
        // Shared with the callback: if the backend refuses the append at once (and drops the
        // callback unrun), the sender comes back here so the caller learns why.
        let sender = Arc::new(Mutex::new(tx.take()));
        let for_done = Arc::clone(&sender);
        let done: crate::backend::Done = Box::new(move |result| {
            // The queue place goes back when this callback has run, or is dropped unrun.
            let _ticket = ticket;
            if let Some(log) = log.upgrade() {
                if result.is_ok() {
                    log.mark_persisted(seq);
                } else {
                    log.forget(seq);
                }
            }
            let tx = for_done.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(tx) = tx {
                let _ = tx.send(result.map_err(StoreError::from));
            }
        });
        let result = inner
            .durable
            .append((fragment.header_id, &header), fragment, done);
        if result.is_err() {
            *tx = sender.lock().unwrap_or_else(|p| p.into_inner()).take();
        }
        result
    }

    /// Drops a fragment whose write failed: it was never durable (its producer got an error
    /// ack) and its bytes were cut off the log.
    fn forget(&self, seq: u64) {
        let mut inner = self.lock();
        if let Some(i) = position(&inner.entries, seq) {
            if let Some(e) = inner.entries.remove(i) {
                if let Some(m) = e.memory {
                    inner.memory_bytes = inner.memory_bytes.saturating_sub(m.cluster.len());
                }
            }
        }
    }

    fn mark_persisted(&self, seq: u64) {
        let mut inner = self.lock();
        if let Some(e) = find_mut(&mut inner.entries, seq) {
            e.meta.persisted = true;
        }
    }

    /// Adds to the index the fragments another process appended to the durable log since
    /// this log was opened (cluster mode: a node that does not own the stream reads what the
    /// owner writes into the shared bucket); returns how many. Only fragments numbered above
    /// the newest one indexed are taken, so the owner's own view never changes. One listing
    /// per call, so a read that follows an acknowledgement sees the acknowledged fragment;
    /// the listing runs without the index locked. Blocking.
    pub fn catch_up(&self) -> Result<usize, StoreError> {
        let Some(follower) = &self.follower else {
            return Ok(0);
        };
        let (after, known) = {
            let inner = self.lock();
            let newest = inner.entries.back().map_or(0, |e| e.meta.seq);
            let known: HashSet<u32> = inner.headers.keys().copied().collect();
            (newest, known)
        };
        let newer = follower.newer(after, &known)?;
        let mut inner = self.lock();
        for (id, header) in newer.headers {
            inner.next_header_id = inner.next_header_id.max(id + 1);
            inner.headers.entry(id).or_insert(header);
        }
        let mut added = 0;
        for (meta, location) in newer.fragments {
            if inner.entries.back().is_some_and(|e| e.meta.seq >= meta.seq) {
                continue;
            }
            inner.next_seq = inner.next_seq.max(meta.seq + 1);
            inner.entries.push_back(Entry {
                meta,
                durable: Some(location),
                memory: None,
            });
            added += 1;
        }
        Ok(added)
    }

    /// Index entries, oldest first.
    pub fn fragments(&self) -> Vec<FragmentMeta> {
        self.lock().entries.iter().map(|e| e.meta).collect()
    }

    /// The index entry of fragment `seq`, if the index holds it.
    pub fn meta(&self, seq: u64) -> Option<FragmentMeta> {
        find(&self.lock().entries, seq).map(|e| e.meta)
    }

    /// Whether the index holds fragment `seq`.
    pub fn contains(&self, seq: u64) -> bool {
        find(&self.lock().entries, seq).is_some()
    }

    /// The number the next fragment will get.
    pub fn next_seq(&self) -> u64 {
        self.lock().next_seq
    }

    /// Reads a fragment from the live buffer or, failing that, from disk.
    pub async fn read(&self, seq: u64) -> Result<Arc<StoredFragment>, StoreError> {
        let disk = {
            let inner = self.lock();
            let e = find(&inner.entries, seq).ok_or(StoreError::Gone(seq))?;
            if let Some(m) = &e.memory {
                return Ok(Arc::clone(m));
            }
            e.durable.clone().ok_or(StoreError::Gone(seq))?
        };
        tokio::task::spawn_blocking(move || disk.read())
            .await
            .map_err(|_| StoreError::Closed)?
            .map(Arc::new)
    }

    /// Opens a fragment for reading in pieces: its head at once, its cluster through
    /// [`FragmentSource::piece`]. A fragment on disk is never held whole.
    pub async fn open_fragment(&self, seq: u64) -> Result<FragmentSource, StoreError> {
        let disk = {
            let inner = self.lock();
            let e = find(&inner.entries, seq).ok_or(StoreError::Gone(seq))?;
            if let Some(m) = &e.memory {
                return Ok(FragmentSource::Memory(Arc::clone(m)));
            }
            e.durable.clone().ok_or(StoreError::Gone(seq))?
        };
        let location = Arc::clone(&disk);
        let prefix =
            tokio::task::spawn_blocking(move || location.read_range(0, record::MAX_FRAGMENT_HEAD))
                .await
                .map_err(|_| StoreError::Closed)??;
        let (head, cluster_at) =
            record::decode_fragment_head(&prefix).ok_or(StoreError::Gone(seq))?;
        let cluster_len = disk.payload_len() - cluster_at as u64;
        Ok(FragmentSource::Disk {
            head,
            location: disk,
            cluster_at: cluster_at as u64,
            cluster_len,
        })
    }

    /// Drops what retention no longer allows: fragments older than `retention_ms` (all once
    /// they leave the live buffer when `None`), whole segments once every fragment in them
    /// is gone, and live-buffer copies past its time or size window.
    pub fn enforce_retention(&self, now_ms: i64, retention_ms: Option<i64>) {
        let mut inner = self.lock();
        let cutoff = retention_ms.map(|r| now_ms - r);
        while let Some(front) = inner.entries.front() {
            let expired = cutoff.is_some_and(|c| front.meta.server_ts_ms < c);
            let unkept = retention_ms.is_none() && front.memory.is_none();
            if !(expired || unkept) {
                break;
            }
            if let Some(e) = inner.entries.pop_front() {
                if let Some(m) = e.memory {
                    inner.memory_bytes = inner.memory_bytes.saturating_sub(m.cluster.len());
                }
            }
        }
        self.trim_memory(&mut inner, now_ms, retention_ms.is_some());
        if let Some(c) = cutoff {
            inner.durable.expire(c);
        }
    }

    /// Evicts live-buffer copies past the window; a fragment that is not on disk leaves the
    /// index with its copy.
    fn trim_memory(&self, inner: &mut Inner, now_ms: i64, persisting: bool) {
        // Streams with retention serve older fragments from disk (the page cache, mostly),
        // so their copies leave memory once durable; memory-only streams keep the window.
        let window = if persisting {
            self.config.persisted_window_ms
        } else {
            self.config.live_window_ms
        };
        let max_bytes = self.config.live_bytes;
        let mut i = 0;
        while i < inner.entries.len() {
            let e = &inner.entries[i];
            let Some(size) = e.memory.as_ref().map(|m| m.cluster.len()) else {
                i += 1;
                continue;
            };
            let over = inner.memory_bytes > max_bytes;
            let old = now_ms - e.meta.server_ts_ms > window;
            if !over && !old {
                break;
            }
            let on_disk = e.durable.is_some();
            if on_disk && !e.meta.persisted {
                // Keep the copy until the write is durable.
                i += 1;
                continue;
            }
            inner.memory_bytes = inner.memory_bytes.saturating_sub(size);
            if on_disk {
                inner.entries[i].memory = None;
                i += 1;
            } else {
                inner.entries.remove(i);
            }
        }
    }

    pub fn memory_bytes(&self) -> usize {
        self.lock().memory_bytes
    }
}

fn position(entries: &VecDeque<Entry>, seq: u64) -> Option<usize> {
    entries.binary_search_by_key(&seq, |e| e.meta.seq).ok()
}

fn find(entries: &VecDeque<Entry>, seq: u64) -> Option<&Entry> {
    entries.get(position(entries, seq)?)
}

fn find_mut(entries: &mut VecDeque<Entry>, seq: u64) -> Option<&mut Entry> {
    let i = position(entries, seq)?;
    entries.get_mut(i)
}

/// A fragment being read: from the live buffer (already in memory) or from the durable log
/// (read piece by piece).
pub enum FragmentSource {
    Memory(Arc<StoredFragment>),
    Disk {
        head: FragmentHead,
        location: Location,
        cluster_at: u64,
        cluster_len: u64,
    },
}

impl FragmentSource {
    pub fn head(&self) -> FragmentHead {
        match self {
            Self::Memory(f) => FragmentHead {
                seq: f.seq,
                producer_ts_ms: f.producer_ts_ms,
                server_ts_ms: f.server_ts_ms,
                duration_ms: f.duration_ms,
                header_id: f.header_id,
                tags: f.tags.clone(),
            },
            Self::Disk { head, .. } => head.clone(),
        }
    }

    /// The cluster's length in bytes.
    pub fn cluster_len(&self) -> u64 {
        match self {
            Self::Memory(f) => f.cluster.len() as u64,
            Self::Disk { cluster_len, .. } => *cluster_len,
        }
    }

    /// The next up to `max` bytes of the cluster from `*offset`, which it advances; `None` at
    /// the cluster's end. A fragment that cannot be read to its end (retention removed it
    /// meanwhile) is [`StoreError::Gone`].
    pub async fn next_piece(
        &self,
        offset: &mut u64,
        max: usize,
    ) -> Result<Option<Bytes>, StoreError> {
        if *offset >= self.cluster_len() {
            return Ok(None);
        }
        let piece = self.piece(*offset, max).await?;
        if piece.is_empty() {
            return Err(StoreError::Gone(self.head().seq));
        }
        *offset += piece.len() as u64;
        Ok(Some(piece))
    }

    /// Up to `max` bytes of the cluster from `offset`; empty at its end.
    async fn piece(&self, offset: u64, max: usize) -> Result<Bytes, StoreError> {
        match self {
            Self::Memory(f) => {
                let start = (offset as usize).min(f.cluster.len());
                let end = start.saturating_add(max).min(f.cluster.len());
                Ok(f.cluster.slice(start..end))
            }
            Self::Disk {
                location,
                cluster_at,
                cluster_len,
                ..
            } => {
                let want = (max as u64).min(cluster_len.saturating_sub(offset)) as usize;
                if want == 0 {
                    return Ok(Bytes::new());
                }
                let location = Arc::clone(location);
                let at = cluster_at + offset;
                tokio::task::spawn_blocking(move || location.read_range(at, want))
                    .await
                    .map_err(|_| StoreError::Closed)?
            }
        }
    }
}

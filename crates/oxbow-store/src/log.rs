//! One stream's log: segment files on disk, the index and live buffer in memory, and the
//! broadcast that live readers follow.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::{broadcast, oneshot};

use crate::committer::{Committer, Job, SegmentFile};
use crate::fragment::{FragmentMeta, LiveEvent, StoredFragment, StreamHeader};
use crate::record::{self, HEAD_LEN};
use crate::{StoreConfig, StoreError};

/// Where a fragment's payload is on disk: (segment, payload offset, payload length).
type DiskLocation = (Arc<SegmentFile>, u64, u32);

/// Bytes to write at an offset of a segment.
type Write = (Arc<SegmentFile>, u64, Vec<Bytes>);

struct Entry {
    meta: FragmentMeta,
    disk: Option<DiskLocation>,
    /// The fragment itself while it is in the live buffer.
    memory: Option<Arc<StoredFragment>>,
}

struct Segment {
    file: Arc<SegmentFile>,
    /// Where the next record goes.
    len: u64,
    headers: HashSet<u32>,
    last_server_ts_ms: i64,
}

struct Inner {
    entries: VecDeque<Entry>,
    headers: HashMap<u32, StreamHeader>,
    current_header: Option<u32>,
    next_seq: u64,
    next_header_id: u32,
    /// Sealed segments first, the active one last.
    segments: Vec<Segment>,
    memory_bytes: usize,
    /// The fragment being received, so a reader joining mid-fragment gets it whole.
    partial: Option<Partial>,
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
    dir: PathBuf,
    config: StoreConfig,
    committer: Committer,
    inner: Mutex<Inner>,
    live: broadcast::Sender<LiveEvent>,
    writer_epoch: AtomicU64,
    closed: AtomicBool,
}

fn open_segment(path: &Path) -> Result<File, StoreError> {
    Ok(OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?)
}

impl StreamLog {
    /// Opens the log in `dir`, rebuilding the index from the segment files and cutting a torn
    /// tail off the newest one.
    pub fn open(dir: &Path, config: StoreConfig, committer: Committer) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "seg"))
            .collect();
        paths.sort();
        let mut inner = Inner {
            entries: VecDeque::new(),
            headers: HashMap::new(),
            current_header: None,
            next_seq: 1,
            next_header_id: 1,
            segments: Vec::new(),
            memory_bytes: 0,
            partial: None,
        };
        let last = paths.len().saturating_sub(1);
        for (i, path) in paths.iter().enumerate() {
            recover_segment(path, i == last, &mut inner)?;
        }
        let (live, _) = broadcast::channel(config.live_channel.max(16));
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            committer,
            inner: Mutex::new(inner),
            live,
            writer_epoch: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        })
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

    pub fn header(&self, id: u32) -> Option<StreamHeader> {
        self.lock().headers.get(&id).cloned()
    }

    /// Starts a fragment: assigns its number and tells live readers.
    pub fn begin(
        &self,
        header_id: u32,
        producer_ts_ms: i64,
        server_ts_ms: i64,
        cluster_timecode: u64,
    ) -> u64 {
        let mut inner = self.lock();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.partial = Some(Partial {
            seq,
            header_id,
            producer_ts_ms,
            server_ts_ms,
            cluster_timecode,
            frames: Vec::new(),
        });
        let _ = self.live.send(LiveEvent::Start {
            seq,
            header_id,
            producer_ts_ms,
            server_ts_ms,
            cluster_timecode,
        });
        seq
    }

    /// Forwards a frame of the fragment in progress to live readers.
    pub fn frame(&self, seq: u64, element: Bytes) {
        let mut inner = self.lock();
        if let Some(p) = inner.partial.as_mut().filter(|p| p.seq == seq) {
            p.frames.push(element.clone());
        }
        let _ = self.live.send(LiveEvent::Frame { seq, element });
    }

    /// Drops a fragment that will not complete.
    pub fn abandon(&self, seq: u64) {
        let mut inner = self.lock();
        if inner.partial.as_ref().is_some_and(|p| p.seq == seq) {
            inner.partial = None;
        }
        let _ = self.live.send(LiveEvent::End {
            seq,
            ok: false,
            tags: Vec::new(),
        });
    }

    /// Follows the stream live: the receiver gets every event after this call, and the
    /// snapshot is the fragment in progress at this instant (if any).
    pub fn subscribe(&self) -> (broadcast::Receiver<LiveEvent>, Option<Partial>) {
        let inner = self.lock();
        (self.live.subscribe(), inner.partial.clone())
    }

    /// Adds a completed fragment: readable at once from memory; when `persist`, the returned
    /// receiver resolves once it is written and fsynced.
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
        let job = {
            let mut inner = self.lock();
            inner.memory_bytes += fragment.cluster.len();
            let mut job = None;
            let mut disk = None;
            if persist {
                match self.place(&mut inner, &fragment) {
                    Ok((j, loc)) => {
                        job = Some(j);
                        disk = Some(loc);
                    }
                    Err(e) => {
                        inner.partial = None;
                        let _ = self.live.send(LiveEvent::End {
                            seq: fragment.seq,
                            ok: false,
                            tags: Vec::new(),
                        });
                        let _ = tx.send(Err(e));
                        return rx;
                    }
                }
            }
            inner.entries.push_back(Entry {
                meta,
                disk,
                memory: Some(Arc::clone(&fragment)),
            });
            if inner
                .partial
                .as_ref()
                .is_some_and(|p| p.seq == fragment.seq)
            {
                inner.partial = None;
            }
            let _ = self.live.send(LiveEvent::End {
                seq: fragment.seq,
                ok: true,
                tags: fragment.tags.clone(),
            });
            job
        };
        match job {
            None => {
                let _ = tx.send(Ok(()));
            }
            Some(parts) => self.submit(parts, fragment.seq, tx),
        }
        rx
    }

    /// Decides where the fragment's record goes (rotating segments as needed) and returns the
    /// bytes to write there.
    fn place(
        &self,
        inner: &mut Inner,
        f: &StoredFragment,
    ) -> Result<(Write, DiskLocation), StoreError> {
        let rotate = match inner.segments.last() {
            None => true,
            Some(s) => s.len >= self.config.segment_bytes || s.file.failed.load(Ordering::Acquire),
        };
        if rotate {
            let path = self.dir.join(format!("{:020}.seg", f.seq));
            let file = open_segment(&path)?;
            let len = file.metadata()?.len();
            inner.segments.push(Segment {
                file: Arc::new(SegmentFile {
                    path,
                    file,
                    failed: AtomicBool::new(false),
                }),
                len,
                headers: HashSet::new(),
                last_server_ts_ms: f.server_ts_ms,
            });
        }
        let header = inner.headers.get(&f.header_id).cloned();
        let seg = inner.segments.last_mut().ok_or(StoreError::Closed)?;
        let offset = seg.len;
        let mut parts = Vec::new();
        if !seg.headers.contains(&f.header_id) {
            if let Some(h) = header {
                parts.extend(record::encode_header(f.header_id, &h));
                seg.headers.insert(f.header_id);
            }
        }
        let before: u64 = parts.iter().map(|p| p.len() as u64).sum();
        let fragment_parts = record::encode_fragment(f);
        let payload_len = fragment_parts
            .iter()
            .skip(1)
            .map(|p| p.len())
            .sum::<usize>() as u32;
        parts.extend(fragment_parts);
        let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
        seg.len += total;
        seg.last_server_ts_ms = seg.last_server_ts_ms.max(f.server_ts_ms);
        let payload_offset = offset + before + HEAD_LEN as u64;
        let file = Arc::clone(&seg.file);
        Ok((
            (Arc::clone(&file), offset, parts),
            (file, payload_offset, payload_len),
        ))
    }

    fn submit(
        self: &Arc<Self>,
        (file, offset, parts): Write,
        seq: u64,
        tx: oneshot::Sender<Result<(), StoreError>>,
    ) {
        let log = Arc::downgrade(self);
        self.committer.submit(Job {
            file,
            offset,
            parts,
            done: Box::new(move |result| {
                if result.is_ok() {
                    if let Some(log) = log.upgrade() {
                        log.mark_persisted(seq);
                    }
                }
                let _ = tx.send(result.map_err(StoreError::from));
            }),
        });
    }

    fn mark_persisted(&self, seq: u64) {
        let mut inner = self.lock();
        if let Some(e) = find_mut(&mut inner.entries, seq) {
            e.meta.persisted = true;
        }
    }

    /// Index entries, oldest first.
    pub fn fragments(&self) -> Vec<FragmentMeta> {
        self.lock().entries.iter().map(|e| e.meta).collect()
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
            e.disk.clone().ok_or(StoreError::Gone(seq))?
        };
        tokio::task::spawn_blocking(move || read_fragment(&disk.0, disk.1, disk.2))
            .await
            .map_err(|_| StoreError::Closed)?
            .map(Arc::new)
    }

    /// Drops what retention no longer allows: fragments older than `retention_ms` (all once
    /// they leave the live buffer when `None`), whole segments once every fragment in them
    /// is gone, and live-buffer copies past its time or size window.
    pub fn enforce_retention(&self, now_ms: i64, retention_ms: Option<i64>) {
        let mut doomed = Vec::new();
        {
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
                let sealed = inner.segments.len().saturating_sub(1);
                let mut keep = Vec::new();
                for (i, s) in std::mem::take(&mut inner.segments).into_iter().enumerate() {
                    if i < sealed && s.last_server_ts_ms < c {
                        doomed.push(s.file.path.clone());
                    } else {
                        keep.push(s);
                    }
                }
                inner.segments = keep;
            }
        }
        for path in doomed {
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "could not delete an expired segment");
            }
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
            let on_disk = e.disk.is_some();
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

fn find(entries: &VecDeque<Entry>, seq: u64) -> Option<&Entry> {
    let i = entries.binary_search_by_key(&seq, |e| e.meta.seq).ok()?;
    entries.get(i)
}

fn find_mut(entries: &mut VecDeque<Entry>, seq: u64) -> Option<&mut Entry> {
    let i = entries.binary_search_by_key(&seq, |e| e.meta.seq).ok()?;
    entries.get_mut(i)
}

fn read_fragment(file: &SegmentFile, offset: u64, len: u32) -> Result<StoredFragment, StoreError> {
    let mut buf = vec![0u8; len as usize];
    file.file.read_exact_at(&mut buf, offset)?;
    record::decode_fragment(Bytes::from(buf)).ok_or_else(|| StoreError::Corrupt {
        path: file.path.display().to_string(),
        offset,
    })
}

/// Reads one segment into the index. The newest segment is verified record by record and cut
/// at the first incomplete or corrupt one; older segments were sealed after an fsync and are
/// only walked.
fn recover_segment(path: &Path, newest: bool, inner: &mut Inner) -> Result<(), StoreError> {
    let file = open_segment(path)?;
    let file_len = file.metadata()?.len();
    let seg = Arc::new(SegmentFile {
        path: path.to_path_buf(),
        file,
        failed: AtomicBool::new(false),
    });
    let mut offset = 0u64;
    let mut headers = HashSet::new();
    let mut last_ts = i64::MIN;
    let mut head_buf = [0u8; HEAD_LEN];
    while offset + HEAD_LEN as u64 <= file_len {
        if seg.file.read_exact_at(&mut head_buf, offset).is_err() {
            break;
        }
        let Some(head) = record::parse_head(&head_buf) else {
            break;
        };
        let payload_at = offset + HEAD_LEN as u64;
        if payload_at + u64::from(head.len) > file_len {
            break;
        }
        let need = if newest {
            head.len as usize
        } else {
            record::FRAGMENT_PREFIX_LEN.min(head.len as usize)
        };
        let need = if record::is_fragment(&head) {
            need
        } else {
            head.len as usize
        };
        let mut payload = vec![0u8; need];
        seg.file.read_exact_at(&mut payload, payload_at)?;
        if newest && !record::crc_ok(&head, &payload) {
            break;
        }
        if record::is_fragment(&head) {
            let meta =
                record::fragment_meta(&payload, head.len).ok_or_else(|| StoreError::Corrupt {
                    path: path.display().to_string(),
                    offset,
                })?;
            last_ts = last_ts.max(meta.server_ts_ms);
            inner.next_seq = inner.next_seq.max(meta.seq + 1);
            inner.entries.push_back(Entry {
                meta,
                disk: Some((Arc::clone(&seg), payload_at, head.len)),
                memory: None,
            });
        } else if let Some((id, h)) = record::decode_header(Bytes::from(payload)) {
            headers.insert(id);
            inner.next_header_id = inner.next_header_id.max(id + 1);
            inner.headers.insert(id, h);
        }
        offset = payload_at + u64::from(head.len);
    }
    if offset < file_len {
        if newest {
            tracing::warn!(path = %path.display(), kept = offset, dropped = file_len - offset, "cut a torn tail off the log");
            seg.file.set_len(offset)?;
            seg.file.sync_all()?;
        } else {
            return Err(StoreError::Corrupt {
                path: path.display().to_string(),
                offset,
            });
        }
    }
    inner.segments.push(Segment {
        file: seg,
        len: offset,
        headers,
        last_server_ts_ms: last_ts,
    });
    Ok(())
}

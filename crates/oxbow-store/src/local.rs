//! The local backend: each stream is a directory of segment files (`<first seq>.seg`, 64 MB
//! each) holding CRC'd records; one committer thread writes and fsyncs every stream's records
//! in batches. On open, the newest segment is verified record by record; older segments were
//! sealed after an fsync and are only walked. Any segment's data ends at its first record that
//! is not whole (a torn write, a failed write that could not be cut back): that tail is cut
//! off and every whole record before it, and in every other segment, is kept.
//!
//! Creating and removing files is made durable with an fsync of their directory. Media writes
//! stop while the filesystem has less than the reserve free, so the catalog (and a
//! DeleteStream that frees space) can still write when media has filled the disk.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::backend::{Backend, Done, DurableLog, Location, Recovered, Stored};
use crate::committer::{Committer, Job, SegmentFile};
use crate::disk::{Disk, RealDisk};
use crate::fragment::{StoredFragment, StreamHeader};
use crate::record::{self, HEAD_LEN};
use crate::StoreError;

/// Streams' segment files under one directory.
pub struct LocalBackend {
    dir: PathBuf,
    segment_bytes: u64,
    committer: Committer,
    disk: Arc<dyn Disk>,
    space: Arc<FreeSpace>,
}

impl LocalBackend {
    pub fn new(dir: &Path, segment_bytes: u64) -> Result<Self, StoreError> {
        Self::with_disk(
            dir,
            segment_bytes,
            DEFAULT_RESERVE_BYTES,
            Arc::new(RealDisk),
        )
    }

    /// The backend over `disk`, keeping `reserve_bytes` of the filesystem free of media.
    pub fn with_disk(
        dir: &Path,
        segment_bytes: u64,
        reserve_bytes: u64,
        disk: Arc<dyn Disk>,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            segment_bytes,
            committer: Committer::start(Arc::clone(&disk)),
            space: Arc::new(FreeSpace {
                dir: dir.to_path_buf(),
                reserve: reserve_bytes,
                disk: Arc::clone(&disk),
                known: Mutex::new(None),
            }),
            disk,
        })
    }
}

/// What media may leave free on the data directory's filesystem by default.
pub const DEFAULT_RESERVE_BYTES: u64 = 16 << 20;
/// How long a free-space reading is trusted (minus what was written since).
const SPACE_READING_TTL: Duration = Duration::from_millis(100);

/// Free space on the data filesystem, read at most every [`SPACE_READING_TTL`], less what
/// was handed to the committer since.
struct FreeSpace {
    dir: PathBuf,
    reserve: u64,
    disk: Arc<dyn Disk>,
    known: Mutex<Option<(Instant, u64)>>,
}

impl FreeSpace {
    /// Takes `bytes` from the free space, or refuses if that would eat into the reserve.
    fn take(&self, bytes: u64) -> Result<(), StoreError> {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let (at, available) = match *known {
            Some((at, left)) if now.duration_since(at) < SPACE_READING_TTL => (at, left),
            _ => (now, self.disk.available_bytes(&self.dir)?),
        };
        if available < self.reserve.saturating_add(bytes) {
            *known = Some((at, available));
            return Err(StoreError::DiskFull {
                available,
                reserve: self.reserve,
            });
        }
        *known = Some((at, available - bytes));
        Ok(())
    }
}

impl Backend for LocalBackend {
    fn open(&self, key: &str) -> Result<(Box<dyn DurableLog>, Recovered), StoreError> {
        let dir = self.dir.join(key);
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir)?;
            self.disk.sync_dir(&self.dir)?;
        }
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "seg"))
            .collect();
        paths.sort();
        let mut recovered = Recovered {
            headers: Vec::new(),
            fragments: Vec::new(),
            next_seq_floor: read_lease(&dir.join(LEASE_FILE)),
        };
        let mut segments = Vec::new();
        let last = paths.len().saturating_sub(1);
        for (i, path) in paths.iter().enumerate() {
            segments.push(recover_segment(path, i == last, &mut recovered)?);
        }
        let log = SegmentLog {
            dir,
            segment_bytes: self.segment_bytes,
            committer: self.committer.clone(),
            disk: Arc::clone(&self.disk),
            space: Arc::clone(&self.space),
            segments,
        };
        Ok((Box::new(log), recovered))
    }

    fn keys(&self) -> Result<Vec<String>, StoreError> {
        Ok(std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        match std::fs::remove_dir_all(self.dir.join(key)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(self.disk.sync_dir(&self.dir)?),
        }
    }
}

/// The file that keeps the next fragment number a stream may hand out after a restart.
const LEASE_FILE: &str = "seq.lease";

/// The lease's value, or 0 when there is none (or it is not whole).
fn read_lease(path: &Path) -> u64 {
    let Ok(bytes) = std::fs::read(path) else {
        return 0;
    };
    if bytes.len() != 12 {
        return 0;
    }
    let (value, crc) = bytes.split_at(8);
    if crc32fast::hash(value).to_le_bytes() != crc {
        return 0;
    }
    u64::from_le_bytes(value.try_into().unwrap_or_default())
}

/// Where a fragment's payload is: (segment, payload offset, payload length).
/// A record's payload in a segment file: the file, where the payload starts, its length.
#[derive(Debug)]
pub struct SegmentLocation {
    file: Arc<SegmentFile>,
    at: u64,
    len: u32,
}

impl Stored for SegmentLocation {
    fn read(&self) -> Result<StoredFragment, StoreError> {
        let payload = self.read_range(0, self.len as usize)?;
        record::decode_fragment(payload).ok_or_else(|| StoreError::Corrupt {
            path: self.file.path.display().to_string(),
            offset: self.at,
        })
    }

    fn read_range(&self, offset: u64, want: usize) -> Result<Bytes, StoreError> {
        let end = u64::from(self.len);
        let start = offset.min(end);
        let n = (want as u64).min(end - start) as usize;
        let mut buf = vec![0u8; n];
        self.file.file.read_exact_at(&mut buf, self.at + start)?;
        Ok(Bytes::from(buf))
    }

    fn payload_len(&self) -> u64 {
        u64::from(self.len)
    }
}

fn location(file: &Arc<SegmentFile>, at: u64, len: u32) -> Location {
    Arc::new(SegmentLocation {
        file: Arc::clone(file),
        at,
        len,
    })
}

struct Segment {
    file: Arc<SegmentFile>,
    /// Where the next record goes.
    len: u64,
    /// Stream headers recorded in this segment, with the offset of their record.
    headers: HashMap<u32, u64>,
    last_server_ts_ms: i64,
}

/// One stream's segment files.
pub struct SegmentLog {
    dir: PathBuf,
    segment_bytes: u64,
    committer: Committer,
    disk: Arc<dyn Disk>,
    space: Arc<FreeSpace>,
    /// Sealed segments first, the active one last.
    segments: Vec<Segment>,
}

fn open_segment(path: &Path) -> Result<File, StoreError> {
    Ok(OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?)
}

impl SegmentLog {
    /// The segment the next record goes to. After a failed write the active segment was cut
    /// back to its last whole record; once none of its writes is in flight the log rewinds to
    /// that point and goes on in the same file (a failing disk must not leave a new file per
    /// failed fragment). A new segment starts past the size limit.
    fn active(&mut self, first_seq: u64, server_ts_ms: i64) -> Result<&mut Segment, StoreError> {
        if let Some(seg) = self.segments.last_mut() {
            if seg.file.failed.load(Ordering::Acquire) {
                if seg.file.in_flight.load(Ordering::Acquire) > 0 {
                    return Err(StoreError::Io(std::io::Error::other(
                        "an earlier write of this stream failed and is still settling",
                    )));
                }
                let valid = seg.file.valid_len.load(Ordering::Acquire);
                seg.len = valid;
                seg.headers.retain(|_, at| *at < valid);
                seg.file.failed.store(false, Ordering::Release);
            }
        }
        let rotate = self
            .segments
            .last()
            .is_none_or(|s| s.len >= self.segment_bytes);
        if rotate {
            let path = self.dir.join(format!("{first_seq:020}.seg"));
            let file = open_segment(&path)?;
            let len = file.metadata()?.len();
            self.disk.sync_dir(&self.dir)?;
            self.segments.push(Segment {
                file: Arc::new(SegmentFile::new(path, file)),
                len,
                headers: HashMap::new(),
                last_server_ts_ms: server_ts_ms,
            });
        }
        self.segments.last_mut().ok_or(StoreError::Closed)
    }
}

impl DurableLog for SegmentLog {
    fn write_gate(&self) -> Option<Arc<dyn crate::backend::WriteGate>> {
        Some(Arc::new(self.committer.clone()))
    }

    fn append(
        &mut self,
        (header_id, header): (u32, &StreamHeader),
        f: &StoredFragment,
        done: Done,
    ) -> Result<Location, StoreError> {
        let space = Arc::clone(&self.space);
        let seg = self.active(f.seq, f.server_ts_ms)?;
        let offset = seg.len;
        let mut parts: Vec<Bytes> = Vec::new();
        if !seg.headers.contains_key(&header_id) {
            parts.extend(record::encode_header(header_id, header));
        }
        let before: u64 = parts.iter().map(|p| p.len() as u64).sum();
        let fragment_parts = record::encode_fragment(f);
        let payload_len = fragment_parts
            .iter()
            .skip(1)
            .map(|p| p.len())
            .sum::<usize>() as u32;
        parts.extend(fragment_parts);
        let total = parts.iter().map(|p| p.len() as u64).sum::<u64>();
        space.take(total)?;
        if before > 0 {
            seg.headers.insert(header_id, offset);
        }
        seg.len += total;
        seg.last_server_ts_ms = seg.last_server_ts_ms.max(f.server_ts_ms);
        let file = Arc::clone(&seg.file);
        self.committer.submit(Job {
            file: Arc::clone(&file),
            offset,
            parts,
            done,
        })?;
        Ok(location(
            &file,
            offset + before + HEAD_LEN as u64,
            payload_len,
        ))
    }

    fn expire(&mut self, cutoff_ms: i64) {
        let sealed = self.segments.len().saturating_sub(1);
        let mut keep = Vec::new();
        let mut removed = false;
        for (i, s) in std::mem::take(&mut self.segments).into_iter().enumerate() {
            if i < sealed && s.last_server_ts_ms < cutoff_ms {
                match std::fs::remove_file(&s.file.path) {
                    Ok(()) => removed = true,
                    Err(e) => {
                        tracing::warn!(path = %s.file.path.display(), error = %e, "could not delete an expired segment")
                    }
                }
            } else {
                keep.push(s);
            }
        }
        self.segments = keep;
        if removed {
            if let Err(e) = self.disk.sync_dir(&self.dir) {
                tracing::warn!(dir = %self.dir.display(), error = %e, "could not sync a stream directory");
            }
        }
    }

    fn lease_seqs(&mut self, upto: u64) -> Result<(), StoreError> {
        let mut bytes = upto.to_le_bytes().to_vec();
        bytes.extend_from_slice(&crc32fast::hash(&upto.to_le_bytes()).to_le_bytes());
        let tmp = self.dir.join(format!("{LEASE_FILE}.tmp"));
        let file = File::create(&tmp)?;
        self.disk.write_at(&tmp, &file, &bytes, 0)?;
        self.disk.sync_data(&tmp, &file)?;
        std::fs::rename(&tmp, self.dir.join(LEASE_FILE))?;
        self.disk.sync_dir(&self.dir)?;
        Ok(())
    }
}

/// Reads one segment into `out`. Its data ends at the first record that is not whole
/// (CRC-checked in the newest segment, walked by their heads in sealed ones); what follows is
/// cut off, and recovery goes on with the next segment.
fn recover_segment(path: &Path, newest: bool, out: &mut Recovered) -> Result<Segment, StoreError> {
    let file = open_segment(path)?;
    let file_len = file.metadata()?.len();
    let seg = Arc::new(SegmentFile::new(path.to_path_buf(), file));
    let mut offset = 0u64;
    let mut headers = HashMap::new();
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
        let fragment = record::is_fragment(&head);
        let need = if fragment && !newest {
            record::FRAGMENT_PREFIX_LEN.min(head.len as usize)
        } else {
            head.len as usize
        };
        let mut payload = vec![0u8; need];
        seg.file.read_exact_at(&mut payload, payload_at)?;
        if newest && !record::crc_ok(&head, &payload) {
            break;
        }
        if fragment {
            let Some(meta) = record::fragment_meta(&payload, head.len) else {
                break;
            };
            last_ts = last_ts.max(meta.server_ts_ms);
            out.fragments
                .push((meta, location(&seg, payload_at, head.len)));
        } else if let Some((id, h)) = record::decode_header(Bytes::from(payload)) {
            headers.insert(id, offset);
            out.headers.push((id, h));
        } else {
            break;
        }
        offset = payload_at + u64::from(head.len);
    }
    if offset < file_len {
        tracing::warn!(path = %path.display(), kept = offset, dropped = file_len - offset, "cut an incomplete record off a segment");
        seg.file.set_len(offset)?;
        seg.file.sync_all()?;
    }
    Ok(Segment {
        file: seg,
        len: offset,
        headers,
        last_server_ts_ms: last_ts,
    })
}

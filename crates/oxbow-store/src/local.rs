//! The local backend: each stream is a directory of segment files (`<first seq>.seg`, 64 MB
//! each) holding CRC'd records; one committer thread writes and fsyncs every stream's records
//! in batches. On open, the newest segment is verified record by record and a torn tail is
//! cut off; older segments were sealed after an fsync and are only walked.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use crate::backend::{Backend, Done, DurableLog, Recovered};
use crate::committer::{Committer, Job, SegmentFile};
use crate::fragment::{StoredFragment, StreamHeader};
use crate::record::{self, HEAD_LEN};
use crate::StoreError;

/// Streams' segment files under one directory.
pub struct LocalBackend {
    dir: PathBuf,
    segment_bytes: u64,
    committer: Committer,
}

impl LocalBackend {
    pub fn new(dir: &Path, segment_bytes: u64) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            segment_bytes,
            committer: Committer::start(),
        })
    }
}

impl Backend for LocalBackend {
    type Log = SegmentLog;

    fn open(&self, key: &str) -> Result<(SegmentLog, Recovered<Location>), StoreError> {
        let dir = self.dir.join(key);
        std::fs::create_dir_all(&dir)?;
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "seg"))
            .collect();
        paths.sort();
        let mut recovered = Recovered {
            headers: Vec::new(),
            fragments: Vec::new(),
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
            segments,
        };
        Ok((log, recovered))
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
            _ => Ok(()),
        }
    }
}

/// Where a fragment's payload is: (segment, payload offset, payload length).
pub type Location = (Arc<SegmentFile>, u64, u32);

struct Segment {
    file: Arc<SegmentFile>,
    /// Where the next record goes.
    len: u64,
    headers: HashSet<u32>,
    last_server_ts_ms: i64,
}

/// One stream's segment files.
pub struct SegmentLog {
    dir: PathBuf,
    segment_bytes: u64,
    committer: Committer,
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
    /// The segment the next record goes to, starting a new one past the size limit or after a
    /// failed write (later records must not land after a hole that recovery would cut off).
    fn active(&mut self, first_seq: u64, server_ts_ms: i64) -> Result<&mut Segment, StoreError> {
        let rotate = match self.segments.last() {
            None => true,
            Some(s) => s.len >= self.segment_bytes || s.file.failed.load(Ordering::Acquire),
        };
        if rotate {
            let path = self.dir.join(format!("{first_seq:020}.seg"));
            let file = open_segment(&path)?;
            let len = file.metadata()?.len();
            self.segments.push(Segment {
                file: Arc::new(SegmentFile {
                    path,
                    file,
                    failed: AtomicBool::new(false),
                }),
                len,
                headers: HashSet::new(),
                last_server_ts_ms: server_ts_ms,
            });
        }
        self.segments.last_mut().ok_or(StoreError::Closed)
    }
}

impl DurableLog for SegmentLog {
    type Location = Location;

    fn append(
        &mut self,
        (header_id, header): (u32, &StreamHeader),
        f: &StoredFragment,
        done: Done,
    ) -> Result<Location, StoreError> {
        let seg = self.active(f.seq, f.server_ts_ms)?;
        let offset = seg.len;
        let mut parts: Vec<Bytes> = Vec::new();
        if seg.headers.insert(header_id) {
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
        seg.len += parts.iter().map(|p| p.len() as u64).sum::<u64>();
        seg.last_server_ts_ms = seg.last_server_ts_ms.max(f.server_ts_ms);
        let file = Arc::clone(&seg.file);
        self.committer.submit(Job {
            file: Arc::clone(&file),
            offset,
            parts,
            done,
        });
        Ok((file, offset + before + HEAD_LEN as u64, payload_len))
    }

    fn read((file, offset, len): &Location) -> Result<StoredFragment, StoreError> {
        let mut buf = vec![0u8; *len as usize];
        file.file.read_exact_at(&mut buf, *offset)?;
        record::decode_fragment(Bytes::from(buf)).ok_or_else(|| StoreError::Corrupt {
            path: file.path.display().to_string(),
            offset: *offset,
        })
    }

    fn expire(&mut self, cutoff_ms: i64) {
        let sealed = self.segments.len().saturating_sub(1);
        let mut keep = Vec::new();
        for (i, s) in std::mem::take(&mut self.segments).into_iter().enumerate() {
            if i < sealed && s.last_server_ts_ms < cutoff_ms {
                if let Err(e) = std::fs::remove_file(&s.file.path) {
                    tracing::warn!(path = %s.file.path.display(), error = %e, "could not delete an expired segment");
                }
            } else {
                keep.push(s);
            }
        }
        self.segments = keep;
    }
}

/// Reads one segment into `out`; cuts a torn tail off the newest one.
fn recover_segment(
    path: &Path,
    newest: bool,
    out: &mut Recovered<Location>,
) -> Result<Segment, StoreError> {
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
            let meta =
                record::fragment_meta(&payload, head.len).ok_or_else(|| StoreError::Corrupt {
                    path: path.display().to_string(),
                    offset,
                })?;
            last_ts = last_ts.max(meta.server_ts_ms);
            out.fragments
                .push((meta, (Arc::clone(&seg), payload_at, head.len)));
        } else if let Some((id, h)) = record::decode_header(Bytes::from(payload)) {
            headers.insert(id);
            out.headers.push((id, h));
        }
        offset = payload_at + u64::from(head.len);
    }
    if offset < file_len {
        if !newest {
            return Err(StoreError::Corrupt {
                path: path.display().to_string(),
                offset,
            });
        }
        tracing::warn!(path = %path.display(), kept = offset, dropped = file_len - offset, "cut a torn tail off the log");
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

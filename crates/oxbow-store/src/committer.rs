//! Group commit: one thread writes every stream's records and then fsyncs each touched file
//! once per batch. Under load, many fragments from many streams share one fsync; idle, a
//! single fragment is written and synced at once.
//!
//! A write or fsync that fails (a full disk, an I/O error) is cut back: the file is truncated
//! to where the failed record began, so the log on disk stays a sequence of whole records, and
//! the file is marked failed so records queued behind it are refused rather than written after
//! a hole. The stream's log rewinds to the cut once nothing of it is in flight (see
//! `SegmentLog::active`).

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use bytes::Bytes;

use crate::disk::Disk;

/// A segment file as the committer and readers share it.
#[derive(Debug)]
pub struct SegmentFile {
    pub path: PathBuf,
    pub file: File,
    /// A write to this file failed and it was cut back to `valid_len`.
    pub failed: AtomicBool,
    /// Where the file's whole records end after a failure.
    pub valid_len: AtomicU64,
    /// Jobs submitted for this file and not done yet.
    pub in_flight: AtomicUsize,
}

impl SegmentFile {
    pub fn new(path: PathBuf, file: File) -> Self {
        Self {
            path,
            file,
            failed: AtomicBool::new(false),
            valid_len: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }
}

pub type Done = Box<dyn FnOnce(std::io::Result<()>) + Send>;

/// Records to write at an offset of a file, and who to tell once they are durable.
pub struct Job {
    pub file: Arc<SegmentFile>,
    pub offset: u64,
    pub parts: Vec<Bytes>,
    pub done: Done,
}

#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<Job>,
    slots: Arc<Slots>,
}

/// Places in the committer's queue. A writer takes one before it locks anything the
/// committer's callbacks lock (a stream's index), waits there while the queue is full, and
/// gives it back when its job's callback has run (or its job was refused): so the queue is
/// bounded and a full queue can never deadlock against a callback.
struct Slots {
    used: std::sync::Mutex<usize>,
    freed: std::sync::Condvar,
}

/// A place in the committer's queue, given back when dropped.
pub struct Slot(Arc<Slots>);

impl Drop for Slot {
    fn drop(&mut self) {
        let mut used = self.0.used.lock().unwrap_or_else(|p| p.into_inner());
        *used -= 1;
        self.0.freed.notify_one();
    }
}

impl crate::backend::WriteGate for Committer {
    fn enter(&self) -> crate::backend::Ticket {
        let mut used = self.slots.used.lock().unwrap_or_else(|p| p.into_inner());
        while *used >= MAX_QUEUED {
            used = self
                .slots
                .freed
                .wait(used)
                .unwrap_or_else(|p| p.into_inner());
        }
        *used += 1;
        Box::new(Slot(Arc::clone(&self.slots)))
    }
}

const MAX_BATCH: usize = 4096;
/// Appends waiting for the committer; a writer past this waits for the disk (see [`Slots`]).
/// Sessions bound what they leave waiting (the server's `put_max_pending_bytes`), so this is
/// a backstop; writers append from blocking threads, where waiting is safe.
const MAX_QUEUED: usize = 4096;

impl Committer {
    pub fn start(disk: Arc<dyn Disk>) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("oxbow-committer".into())
            .spawn(move || run(rx, disk.as_ref()))
            .expect("spawn the committer thread");
        Self {
            tx,
            slots: Arc::new(Slots {
                used: std::sync::Mutex::new(0),
                freed: std::sync::Condvar::new(),
            }),
        }
    }

    /// Queues a job (its writer holds a [`Slot`], see [`WriteGate`]). When the committer has
    /// stopped the job is dropped unrun (its `done` with it, never called: the caller may
    /// hold locks its callback takes).
    ///
    /// [`WriteGate`]: crate::backend::WriteGate
    pub fn submit(&self, job: Job) -> Result<(), crate::StoreError> {
        job.file.in_flight.fetch_add(1, Ordering::AcqRel);
        if let Err(mpsc::SendError(job)) = self.tx.send(job) {
            job.file.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(crate::StoreError::Closed);
        }
        Ok(())
    }
}

fn run(rx: mpsc::Receiver<Job>, disk: &dyn Disk) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        commit(disk, batch);
    }
}

/// Cuts `file` back to `len` after a failed write or sync, and refuses what follows. A file
/// cut back earlier keeps the earlier (shorter) cut.
fn cut_back(disk: &dyn Disk, file: &SegmentFile, len: u64, cause: &std::io::Error) {
    let len = if file.failed.swap(true, Ordering::AcqRel) {
        len.min(file.valid_len.load(Ordering::Acquire))
    } else {
        len
    };
    file.valid_len.store(len, Ordering::Release);
    let cut = file
        .file
        .set_len(len)
        .and_then(|()| disk.sync_data(&file.path, &file.file));
    tracing::warn!(path = %file.path.display(), offset = len, error = %cause, cut_ok = cut.is_ok(), "write failed; the segment is cut back to its last whole record");
}

fn write(disk: &dyn Disk, job: &Job) -> std::io::Result<()> {
    if job.file.failed.load(Ordering::Acquire) {
        return Err(std::io::Error::other(
            "an earlier write to this segment failed",
        ));
    }
    let mut offset = job.offset;
    for part in &job.parts {
        if let Err(e) = disk.write_at(&job.file.path, &job.file.file, part, offset) {
            cut_back(disk, &job.file, job.offset, &e);
            return Err(e);
        }
        offset += part.len() as u64;
    }
    Ok(())
}

fn commit(disk: &dyn Disk, batch: Vec<Job>) {
    let mut results: Vec<std::io::Result<()>> = batch.iter().map(|j| write(disk, j)).collect();
    // One fsync per file that took a write; a failed one fails every record of the batch in
    // that file, which is cut back to where the first of them began.
    let mut synced: Vec<(*const SegmentFile, bool)> = Vec::new();
    for i in 0..batch.len() {
        if results[i].is_err() {
            continue;
        }
        let file = &batch[i].file;
        let key = Arc::as_ptr(file);
        let ok = match synced.iter().find(|(k, _)| *k == key) {
            Some((_, ok)) => *ok,
            None => {
                let ok = match disk.sync_data(&file.path, &file.file) {
                    Ok(()) => true,
                    Err(e) => {
                        let first = batch
                            .iter()
                            .zip(&results)
                            .filter(|(j, r)| r.is_ok() && Arc::ptr_eq(&j.file, file))
                            .map(|(j, _)| j.offset)
                            .min()
                            .unwrap_or(batch[i].offset);
                        cut_back(disk, file, first, &e);
                        false
                    }
                };
                synced.push((key, ok));
                ok
            }
        };
        if !ok {
            results[i] = Err(std::io::Error::other("fdatasync failed"));
        }
    }
    for (job, result) in batch.into_iter().zip(results) {
        job.file.in_flight.fetch_sub(1, Ordering::AcqRel);
        (job.done)(result);
    }
}

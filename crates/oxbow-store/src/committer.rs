//! Group commit: one thread writes every stream's records and then fsyncs each touched file
//! once per batch. Under load, many fragments from many streams share one fsync; idle, a
//! single fragment is written and synced at once.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use bytes::Bytes;

/// A segment file as the committer and readers share it.
#[derive(Debug)]
pub struct SegmentFile {
    pub path: PathBuf,
    pub file: File,
    /// A write to this file failed: later records must go to a new segment, or they would
    /// land after a hole that recovery cuts off.
    pub failed: AtomicBool,
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
}

const MAX_BATCH: usize = 4096;

impl Committer {
    pub fn start() -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("oxbow-committer".into())
            .spawn(move || run(rx))
            .expect("spawn the committer thread");
        Self { tx }
    }

    pub fn submit(&self, job: Job) {
        if let Err(mpsc::SendError(job)) = self.tx.send(job) {
            (job.done)(Err(std::io::Error::other("committer stopped")));
        }
    }
}

fn run(rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        commit(batch);
    }
}

fn write(job: &Job) -> std::io::Result<()> {
    if job.file.failed.load(Ordering::Acquire) {
        return Err(std::io::Error::other("segment failed earlier"));
    }
    let mut offset = job.offset;
    for part in &job.parts {
        job.file.file.write_all_at(part, offset)?;
        offset += part.len() as u64;
    }
    Ok(())
}

fn commit(batch: Vec<Job>) {
    let mut results: Vec<std::io::Result<()>> = batch.iter().map(write).collect();
    let mut synced: Vec<(*const SegmentFile, bool)> = Vec::new();
    for (i, job) in batch.iter().enumerate() {
        let key = Arc::as_ptr(&job.file);
        let ok = match synced.iter().find(|(k, _)| *k == key) {
            Some((_, ok)) => *ok,
            None => {
                let ok = job.file.file.sync_data().is_ok();
                synced.push((key, ok));
                ok
            }
        };
        if !ok && results[i].is_ok() {
            results[i] = Err(std::io::Error::other("fdatasync failed"));
        }
        if results[i].is_err() {
            job.file.failed.store(true, Ordering::Release);
        }
    }
    for (job, result) in batch.into_iter().zip(results) {
        (job.done)(result);
    }
}

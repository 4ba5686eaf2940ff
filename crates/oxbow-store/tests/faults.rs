//! The store under faults that `kill -9` cannot show: a power cut (everything not fsynced is
//! lost, and so is every directory entry not synced), a disk that runs out of space in the
//! middle of a record, and a filesystem down to its reserve. A [`FaultDisk`] stands in for
//! the real disk in the committer; recovery then runs on the real files.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
mod util;

use oxbow_store::{Disk, Store, StoreConfig, StoreError, StoredFragment};
use util::{dir, header, segments};

const ENOSPC: i32 = 28;

/// A disk that remembers what was made durable, can run out of space, and can report how
/// much is free.
#[derive(Default)]
struct FaultDisk {
    /// Bytes that may still be written; negative: unlimited.
    budget: AtomicI64,
    /// What `available_bytes` answers.
    available: AtomicU64,
    /// Inode → length at its last fdatasync.
    synced: Mutex<HashMap<u64, u64>>,
    /// Directory entries made durable by a directory sync.
    durable_names: Mutex<HashSet<PathBuf>>,
    /// Directory syncs take this long (a slow disk).
    dir_sync_delay: Mutex<Duration>,
}

impl FaultDisk {
    fn new() -> Arc<Self> {
        let d = Self::default();
        d.budget.store(-1, Ordering::SeqCst);
        d.available.store(u64::MAX / 2, Ordering::SeqCst);
        Arc::new(d)
    }

    /// What a power cut leaves under `root`: files whose entry was never synced are gone,
    /// the others are cut to their last synced length.
    fn power_cut(&self, root: &Path) {
        let synced = self.synced.lock().unwrap().clone();
        let names = self.durable_names.lock().unwrap().clone();
        for stream in std::fs::read_dir(root).unwrap() {
            let stream = stream.unwrap().path();
            if !names.contains(&stream) {
                std::fs::remove_dir_all(&stream).unwrap();
                continue;
            }
            for f in std::fs::read_dir(&stream).unwrap() {
                let path = f.unwrap().path();
                if !names.contains(&path) {
                    std::fs::remove_file(&path).unwrap();
                    continue;
                }
                let ino = std::fs::metadata(&path).unwrap().ino();
                let keep = synced.get(&ino).copied().unwrap_or(0);
                let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                if file.metadata().unwrap().len() > keep {
                    file.set_len(keep).unwrap();
                }
            }
        }
    }
}

impl Disk for FaultDisk {
    fn write_at(&self, _path: &Path, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        let budget = self.budget.load(Ordering::SeqCst);
        if budget >= 0 && (buf.len() as i64) > budget {
            // A short write, then the disk is full: what ENOSPC leaves behind.
            file.write_all_at(&buf[..budget as usize], offset)?;
            self.budget.store(0, Ordering::SeqCst);
            return Err(io::Error::from_raw_os_error(ENOSPC));
        }
        if budget >= 0 {
            self.budget.fetch_sub(buf.len() as i64, Ordering::SeqCst);
        }
        file.write_all_at(buf, offset)
    }

    fn sync_data(&self, _path: &Path, file: &File) -> io::Result<()> {
        file.sync_data()?;
        let m = file.metadata()?;
        self.synced.lock().unwrap().insert(m.ino(), m.len());
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let delay = *self.dir_sync_delay.lock().unwrap();
        std::thread::sleep(delay);
        let mut names = self.durable_names.lock().unwrap();
        names.retain(|p| p.parent() != Some(dir) || p.exists());
        for e in std::fs::read_dir(dir)? {
            names.insert(e?.path());
        }
        Ok(())
    }

    fn available_bytes(&self, _dir: &Path) -> io::Result<u64> {
        Ok(self.available.load(Ordering::SeqCst))
    }
}

fn config(segment_bytes: u64) -> StoreConfig {
    StoreConfig {
        segment_bytes,
        reserve_bytes: 1 << 20,
        ..Default::default()
    }
}

/// Begins and completes one fragment of `size` bytes; the outcome of making it durable.
async fn put(store: &Store, key: &str, size: usize) -> (u64, Bytes, Result<(), StoreError>) {
    let log = store.stream(key).unwrap();
    let h = log.set_header(header());
    let ts = 1_700_000_000_000 + log.next_seq() as i64 * 1000;
    let seq = log.begin(h, ts, ts, 0).unwrap();
    let cluster = Bytes::from(
        (0..size)
            .map(|i| (i as u64 * 31 + seq) as u8)
            .collect::<Vec<u8>>(),
    );
    let f = StoredFragment {
        seq,
        producer_ts_ms: ts,
        server_ts_ms: ts,
        duration_ms: 1000,
        header_id: h,
        tags: Vec::new(),
        cluster: cluster.clone(),
    };
    let result = match log.complete(f, true).await {
        Ok(r) => r,
        Err(_) => Err(StoreError::Closed),
    };
    (seq, cluster, result)
}

/// Every fragment acknowledged durable survives a power cut byte-identical, and no number
/// handed out before it is handed out again. Fails if the committer's fdatasync, the
/// directory syncs or the number lease are taken away.
#[tokio::test]
async fn persisted_fragments_survive_a_power_cut() {
    let d = dir("power");
    let disk = FaultDisk::new();
    let (persisted, handed_out) = {
        let store = Store::open_on(&d, config(20_000), disk.clone()).unwrap();
        let mut persisted = Vec::new();
        for _ in 0..30 {
            let (seq, cluster, result) = put(&store, "cam-1", 3_000).await;
            result.unwrap();
            persisted.push((seq, cluster));
        }
        // A fragment shown to its producer (BUFFERING) but not complete at the cut.
        let log = store.stream("cam-1").unwrap();
        let h = log.set_header(header());
        let open = log.begin(h, 1, 1, 0).unwrap();
        (persisted, open)
    };
    assert!(segments(&d.join("cam-1")).len() > 3, "segments rotated");
    disk.power_cut(&d);
    let store = Store::open(&d, config(20_000)).unwrap();
    let log = store.stream("cam-1").unwrap();
    let seqs: Vec<u64> = log.fragments().iter().map(|m| m.seq).collect();
    assert_eq!(
        seqs,
        persisted.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        "every PERSISTED fragment is back"
    );
    for (seq, cluster) in &persisted {
        assert_eq!(&log.read(*seq).await.unwrap().cluster, cluster, "{seq}");
    }
    assert!(
        log.next_seq() > handed_out,
        "number {handed_out} was shown to a client; next is {}",
        log.next_seq()
    );
}

/// A disk that fills in the middle of a record: the producer is told, the partial record is
/// cut back, no segment file is created per failed fragment, the log stays readable after a
/// restart, and ingest resumes in the same segment when space returns.
#[tokio::test]
async fn a_full_disk_is_cut_back_and_ingest_resumes() {
    let d = dir("enospc");
    let disk = FaultDisk::new();
    let store = Store::open_on(&d, config(1 << 30), disk.clone()).unwrap();
    let mut kept = Vec::new();
    for _ in 0..5 {
        let (seq, cluster, result) = put(&store, "cam", 4_000).await;
        result.unwrap();
        kept.push((seq, cluster));
    }
    let seg_dir = d.join("cam");
    let files_before = segments(&seg_dir);
    let len_before = std::fs::metadata(&files_before[0]).unwrap().len();
    // Room for half a record, then nothing.
    disk.budget.store(2_000, Ordering::SeqCst);
    let mut failed = Vec::new();
    for _ in 0..4 {
        let (seq, _, result) = put(&store, "cam", 4_000).await;
        assert!(result.is_err(), "fragment {seq} cannot be durable");
        failed.push(seq);
    }
    assert_eq!(segments(&seg_dir), files_before, "no new segment files");
    assert_eq!(
        std::fs::metadata(&files_before[0]).unwrap().len(),
        len_before,
        "the partial record was cut back"
    );
    let log = store.stream("cam").unwrap();
    assert!(
        log.fragments().iter().all(|m| !failed.contains(&m.seq)),
        "failed fragments are not in the index"
    );
    // Space returns.
    disk.budget.store(-1, Ordering::SeqCst);
    for _ in 0..2 {
        let (seq, cluster, result) = put(&store, "cam", 4_000).await;
        result.unwrap();
        kept.push((seq, cluster));
    }
    assert_eq!(segments(&seg_dir), files_before, "same segment");
    drop(log);
    drop(store);
    let store = Store::open(&d, config(1 << 30)).unwrap();
    let log = store.stream("cam").unwrap();
    let seqs: Vec<u64> = log.fragments().iter().map(|m| m.seq).collect();
    assert_eq!(seqs, kept.iter().map(|(s, _)| *s).collect::<Vec<_>>());
    for (seq, cluster) in &kept {
        assert_eq!(&log.read(*seq).await.unwrap().cluster, cluster);
    }
}

/// Media stops at the reserve, before the disk is full: nothing is written, the producer is
/// told, and writing resumes when space is back.
#[tokio::test]
async fn media_leaves_the_reserve_free() {
    let d = dir("reserve");
    let disk = FaultDisk::new();
    let store = Store::open_on(&d, config(1 << 30), disk.clone()).unwrap();
    put(&store, "cam", 1_000).await.2.unwrap();
    let seg = segments(&d.join("cam")).remove(0);
    let len = std::fs::metadata(&seg).unwrap().len();
    disk.available.store((1 << 20) + 500, Ordering::SeqCst);
    // The free-space reading is cached for 100 ms.
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let (_, _, result) = put(&store, "cam", 1_000).await;
    assert!(
        matches!(result, Err(StoreError::DiskFull { .. })),
        "{result:?}"
    );
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), len);
    disk.available.store(u64::MAX / 2, Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    put(&store, "cam", 1_000).await.2.unwrap();
}

/// What a failed write used to leave (seed repro d1): an incomplete record at the end of a
/// segment that another segment follows, and an empty segment. Recovery keeps every whole
/// record before and after it.
#[tokio::test]
async fn an_incomplete_record_in_a_sealed_segment_ends_only_that_segment() {
    let d = dir("sealed");
    let persisted = {
        let store = Store::open(&d, config(10_000)).unwrap();
        let mut v = Vec::new();
        for _ in 0..12 {
            let (seq, cluster, result) = put(&store, "cam", 3_000).await;
            result.unwrap();
            v.push((seq, cluster));
        }
        v
    };
    let files = segments(&d.join("cam"));
    assert!(files.len() >= 3);
    let f = std::fs::OpenOptions::new()
        .append(true)
        .open(&files[0])
        .unwrap();
    std::io::Write::write_all(&mut &f, &[0x4f; 832]).unwrap();
    File::create(d.join("cam").join("00000000000000000099.seg")).unwrap();
    let store = Store::open(&d, config(10_000)).unwrap();
    let log = store.stream("cam").unwrap();
    let seqs: Vec<u64> = log.fragments().iter().map(|m| m.seq).collect();
    assert_eq!(seqs, persisted.iter().map(|(s, _)| *s).collect::<Vec<_>>());
    for (seq, cluster) in &persisted {
        assert_eq!(&log.read(*seq).await.unwrap().cluster, cluster);
    }
}

/// Opening one stream (recovery, directory syncs) never holds up the others: the store-wide
/// lock is taken only to look up and insert.
#[test]
fn a_slow_open_does_not_block_other_streams() {
    let d = dir("slowopen");
    let disk = FaultDisk::new();
    let store = Arc::new(Store::open_on(&d, config(1 << 20), disk.clone()).unwrap());
    store.stream("warm").unwrap();
    *disk.dir_sync_delay.lock().unwrap() = Duration::from_millis(1500);
    let slow = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || store.stream("cold").map(|_| ()))
    };
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    store.stream("warm").unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "waited {:?} behind another stream's open",
        started.elapsed()
    );
    slow.join().unwrap().unwrap();
}

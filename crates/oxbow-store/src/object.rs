//! The object backend (cluster mode): each fragment is one object in a bucket, so any node can
//! read what any node stored. Layout under the configured prefix, per stream key:
//!
//! - `<key>/f/<seq, 20 digits>_<server ms>_<producer ms>_<duration ms>_<header id>`: a
//!   fragment's payload (the same bytes a segment record holds). Its index entry is in its
//!   name and size, so opening a stream is one listing, with no object read.
//! - `<key>/h/<header id>`: a stream header's payload, written before the first fragment that
//!   needs it.
//! - `<key>/lease`: the fragment number no restart may go below (8 bytes, little-endian).
//!
//! A fragment is durable when its PUT succeeded: that is when `done` runs and PERSISTED may be
//! sent. The bucket itself is behind [`Bucket`], so the store needs no S3 client and its tests
//! run on an in-memory bucket.

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex};

use bytes::Bytes;

use crate::backend::{
    Backend, Done, DurableLog, Follower, Location, Recovered, Stored, Ticket, WriteGate,
};
use crate::fragment::{FragmentMeta, StoredFragment, StreamHeader};
use crate::record;
use crate::StoreError;

/// An object as a listing gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
}

/// What the object backend needs of a bucket. Every call but [`Bucket::put`] blocks: the
/// store calls them on blocking threads.
pub trait Bucket: Send + Sync + 'static {
    /// Starts storing `body` under `key`; `done` runs once the object is durable (or the
    /// write failed), never before `put` returns.
    fn put(&self, key: String, body: Bytes, done: Done);

    /// Stores `body` under `key` and returns once it is durable.
    fn put_now(&self, key: &str, body: Bytes) -> std::io::Result<()>;

    /// The object's bytes `start..end` (clamped to its size), or all of it.
    fn get(&self, key: &str, range: Option<(u64, u64)>) -> std::io::Result<Option<Bytes>>;

    /// Every object whose key starts with `prefix` (and sorts after `start_after`, if given),
    /// in key order.
    fn list(&self, prefix: &str, start_after: Option<&str>) -> std::io::Result<Vec<ListedObject>>;

    /// The distinct next path segments below `prefix` (`prefix` ends with `/`).
    fn list_dirs(&self, prefix: &str) -> std::io::Result<Vec<String>>;

    /// Deletes the objects (missing ones are no error).
    fn delete(&self, keys: &[String]) -> std::io::Result<()>;
}

/// Writes a backend keeps in flight at most: the bound on its queue.
const MAX_IN_FLIGHT: usize = 64;

/// Streams' fragments as objects in one bucket, under one prefix.
pub struct ObjectBackend {
    bucket: Arc<dyn Bucket>,
    /// Ends with `/`, or is empty.
    prefix: String,
    gate: Arc<InFlight>,
}

impl ObjectBackend {
    pub fn new(bucket: Arc<dyn Bucket>, prefix: &str) -> Self {
        let prefix = prefix.trim_matches('/');
        Self {
            bucket,
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            gate: Arc::new(InFlight::default()),
        }
    }

    fn stream_prefix(&self, key: &str) -> String {
        format!("{}{key}/", self.prefix)
    }
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Io(e)
}

/// A fragment's object name below `<key>/f/`, and back.
fn fragment_name(f: &StoredFragment) -> String {
    format!(
        "{:020}_{}_{}_{}_{}",
        f.seq, f.server_ts_ms, f.producer_ts_ms, f.duration_ms, f.header_id
    )
}

fn parse_fragment_name(name: &str, size: u64) -> Option<FragmentMeta> {
    let mut parts = name.split('_');
    let meta = FragmentMeta {
        seq: parts.next()?.parse().ok()?,
        server_ts_ms: parts.next()?.parse().ok()?,
        producer_ts_ms: parts.next()?.parse().ok()?,
        duration_ms: parts.next()?.parse().ok()?,
        header_id: parts.next()?.parse().ok()?,
        size,
        persisted: true,
    };
    parts.next().is_none().then_some(meta)
}

/// A listed fragment object (`name` below `f/`) as its index entry and where to read it.
fn fragment_object(
    bucket: &Arc<dyn Bucket>,
    name: &str,
    o: &ListedObject,
) -> Option<(FragmentMeta, Location)> {
    let meta = parse_fragment_name(name, o.size)?;
    let at = ObjectLocation {
        bucket: Arc::clone(bucket),
        key: o.key.clone(),
        len: o.size,
    };
    Some((meta, Arc::new(at) as Location))
}

/// A stream header object's id and header, if it exists and decodes.
fn read_header(bucket: &dyn Bucket, key: &str) -> Result<Option<(u32, StreamHeader)>, StoreError> {
    let Some(payload) = bucket.get(key, None).map_err(io)? else {
        return Ok(None);
    };
    let header = record::decode_header(payload);
    if header.is_none() {
        tracing::warn!(object = %key, "unreadable stream header; skipped");
    }
    Ok(header)
}

fn concat(parts: Vec<Bytes>) -> Bytes {
    let mut out = Vec::with_capacity(parts.iter().map(Bytes::len).sum());
    for p in parts {
        out.extend_from_slice(&p);
    }
    Bytes::from(out)
}

impl Backend for ObjectBackend {
    fn open(&self, key: &str) -> Result<(Box<dyn DurableLog>, Recovered), StoreError> {
        let base = self.stream_prefix(key);
        let mut recovered = Recovered::default();
        let mut objects = Vec::new();
        for o in self.bucket.list(&base, None).map_err(io)? {
            let Some(rest) = o.key.strip_prefix(&base) else {
                continue;
            };
            if let Some(name) = rest.strip_prefix("f/") {
                match fragment_object(&self.bucket, name, &o) {
                    Some((meta, at)) => {
                        objects.push((meta.seq, meta.server_ts_ms, o.key.clone()));
                        recovered.fragments.push((meta, at));
                    }
                    None => tracing::warn!(object = %o.key, "not a fragment object; skipped"),
                }
            } else if rest.starts_with("h/") {
                recovered
                    .headers
                    .extend(read_header(self.bucket.as_ref(), &o.key)?);
            } else if rest == "lease" {
                if let Some(b) = self.bucket.get(&o.key, None).map_err(io)? {
                    if let Ok(bytes) = <[u8; 8]>::try_from(&b[..]) {
                        recovered.next_seq_floor = u64::from_le_bytes(bytes);
                    }
                }
            }
        }
        recovered.fragments.sort_by_key(|(m, _)| m.seq);
        objects.sort();
        let written = recovered.headers.iter().map(|(id, _)| *id).collect();
        Ok((
            Box::new(ObjectLog {
                bucket: Arc::clone(&self.bucket),
                base,
                headers_written: written,
                objects,
                gate: Arc::clone(&self.gate),
            }),
            recovered,
        ))
    }

    fn keys(&self) -> Result<Vec<String>, StoreError> {
        self.bucket.list_dirs(&self.prefix).map_err(io)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let keys: Vec<String> = self
            .bucket
            .list(&self.stream_prefix(key), None)
            .map_err(io)?
            .into_iter()
            .map(|o| o.key)
            .collect();
        for chunk in keys.chunks(1000) {
            self.bucket.delete(chunk).map_err(io)?;
        }
        Ok(())
    }
}

/// One stream's objects.
pub struct ObjectLog {
    bucket: Arc<dyn Bucket>,
    /// `<prefix><key>/`.
    base: String,
    headers_written: HashSet<u32>,
    /// (seq, server ms, object key) of every fragment object, oldest first, for retention.
    objects: Vec<(u64, i64, String)>,
    gate: Arc<InFlight>,
}

impl DurableLog for ObjectLog {
    fn append(
        &mut self,
        (header_id, header): (u32, &StreamHeader),
        f: &StoredFragment,
        done: Done,
    ) -> Result<Location, StoreError> {
        // A fragment is only readable with its header: that goes first, and durably.
        if !self.headers_written.contains(&header_id) {
            let payload = concat(record::encode_header(header_id, header).split_off(1));
            self.bucket
                .put_now(&format!("{}h/{header_id}", self.base), payload)
                .map_err(io)?;
            self.headers_written.insert(header_id);
        }
        let key = format!("{}f/{}", self.base, fragment_name(f));
        let payload = concat(record::encode_fragment(f).split_off(1));
        let len = payload.len() as u64;
        self.objects.push((f.seq, f.server_ts_ms, key.clone()));
        self.bucket.put(key.clone(), payload, done);
        Ok(Arc::new(ObjectLocation {
            bucket: Arc::clone(&self.bucket),
            key,
            len,
        }))
    }

    fn write_gate(&self) -> Option<Arc<dyn WriteGate>> {
        Some(Arc::new(Arc::clone(&self.gate)))
    }

    fn follower(&self) -> Option<Arc<dyn Follower>> {
        Some(Arc::new(ObjectFollower {
            bucket: Arc::clone(&self.bucket),
            base: self.base.clone(),
        }))
    }

    fn expire(&mut self, cutoff_ms: i64) {
        let old: Vec<String> = self
            .objects
            .iter()
            .filter(|(_, ts, _)| *ts < cutoff_ms)
            .map(|(_, _, k)| k.clone())
            .collect();
        if old.is_empty() {
            return;
        }
        let mut deleted = true;
        for chunk in old.chunks(1000) {
            if let Err(e) = self.bucket.delete(chunk) {
                tracing::warn!(error = %e, "cannot delete expired fragment objects; will retry");
                deleted = false;
                break;
            }
        }
        if deleted {
            self.objects.retain(|(_, ts, _)| *ts >= cutoff_ms);
        }
    }

    fn lease_seqs(&mut self, upto: u64) -> Result<(), StoreError> {
        self.bucket
            .put_now(
                &format!("{}lease", self.base),
                Bytes::copy_from_slice(&upto.to_le_bytes()),
            )
            .map_err(io)
    }
}

/// Lists one stream's newer fragment objects: one LIST that starts after the newest fragment
/// known, so its cost does not grow with the stream's archive.
struct ObjectFollower {
    bucket: Arc<dyn Bucket>,
    base: String,
}

impl Follower for ObjectFollower {
    fn newer(&self, after_seq: u64, known_headers: &HashSet<u32>) -> Result<Recovered, StoreError> {
        let dir = format!("{}f/", self.base);
        // '`' sorts after every character of a name's tail ('_', '-' and digits), so the
        // listing starts at the first fragment numbered above `after_seq`.
        let start = format!("{dir}{after_seq:020}`");
        let mut newer = Recovered::default();
        let mut wanted = HashSet::new();
        for o in self.bucket.list(&dir, Some(&start)).map_err(io)? {
            let Some((meta, at)) = o
                .key
                .strip_prefix(&dir)
                .and_then(|name| fragment_object(&self.bucket, name, &o))
            else {
                continue;
            };
            if meta.seq <= after_seq {
                continue;
            }
            if !known_headers.contains(&meta.header_id) {
                wanted.insert(meta.header_id);
            }
            newer.fragments.push((meta, at));
        }
        for id in wanted {
            let key = format!("{}h/{id}", self.base);
            newer
                .headers
                .extend(read_header(self.bucket.as_ref(), &key)?);
        }
        newer.fragments.sort_by_key(|(m, _)| m.seq);
        Ok(newer)
    }
}

/// A fragment object.
#[derive(Debug)]
pub struct ObjectLocation {
    bucket: Arc<dyn Bucket>,
    key: String,
    len: u64,
}

impl std::fmt::Debug for dyn Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bucket")
    }
}

impl Stored for ObjectLocation {
    fn read(&self) -> Result<StoredFragment, StoreError> {
        let payload = self.read_range(0, self.len as usize)?;
        record::decode_fragment(payload).ok_or_else(|| StoreError::Corrupt {
            path: self.key.clone(),
            offset: 0,
        })
    }

    fn read_range(&self, offset: u64, want: usize) -> Result<Bytes, StoreError> {
        let start = offset.min(self.len);
        let end = start.saturating_add(want as u64).min(self.len);
        if start == end {
            return Ok(Bytes::new());
        }
        let bytes = self
            .bucket
            .get(&self.key, Some((start, end)))
            .map_err(io)?
            .ok_or(StoreError::Gone(0))?;
        if bytes.len() as u64 != end - start {
            return Err(StoreError::Corrupt {
                path: self.key.clone(),
                offset: start,
            });
        }
        Ok(bytes)
    }

    fn payload_len(&self) -> u64 {
        self.len
    }
}

/// Bounds the writes in flight to the bucket: a writer waits for a place before appending.
#[derive(Default)]
struct InFlight {
    count: Mutex<usize>,
    freed: Condvar,
}

struct Place(Arc<InFlight>);

impl Drop for Place {
    fn drop(&mut self) {
        let mut n = self.0.count.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
        self.0.freed.notify_one();
    }
}

impl WriteGate for Arc<InFlight> {
    fn enter(&self) -> Ticket {
        let mut n = self.count.lock().unwrap_or_else(|p| p.into_inner());
        while *n >= MAX_IN_FLIGHT {
            n = self.freed.wait(n).unwrap_or_else(|p| p.into_inner());
        }
        *n += 1;
        Box::new(Place(Arc::clone(self)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A bucket in memory; writes complete on another thread, after `put` returns.
    #[derive(Default)]
    struct MemoryBucket {
        objects: Arc<Mutex<BTreeMap<String, Bytes>>>,
    }

    impl Bucket for MemoryBucket {
        fn put(&self, key: String, body: Bytes, done: Done) {
            let objects = Arc::clone(&self.objects);
            std::thread::spawn(move || {
                objects.lock().unwrap().insert(key, body);
                done(Ok(()));
            });
        }
        fn put_now(&self, key: &str, body: Bytes) -> std::io::Result<()> {
            self.objects.lock().unwrap().insert(key.to_string(), body);
            Ok(())
        }
        fn get(&self, key: &str, range: Option<(u64, u64)>) -> std::io::Result<Option<Bytes>> {
            Ok(self.objects.lock().unwrap().get(key).map(|b| match range {
                Some((s, e)) => b.slice(s as usize..(e as usize).min(b.len())),
                None => b.clone(),
            }))
        }
        fn list(
            &self,
            prefix: &str,
            start_after: Option<&str>,
        ) -> std::io::Result<Vec<ListedObject>> {
            Ok(self
                .objects
                .lock()
                .unwrap()
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .filter(|(k, _)| start_after.is_none_or(|s| k.as_str() > s))
                .map(|(k, v)| ListedObject {
                    key: k.clone(),
                    size: v.len() as u64,
                })
                .collect())
        }
        fn list_dirs(&self, prefix: &str) -> std::io::Result<Vec<String>> {
            let mut dirs: Vec<String> = self
                .objects
                .lock()
                .unwrap()
                .keys()
                .filter_map(|k| {
                    k.strip_prefix(prefix)?
                        .split_once('/')
                        .map(|(d, _)| d.to_string())
                })
                .collect();
            dirs.dedup();
            Ok(dirs)
        }
        fn delete(&self, keys: &[String]) -> std::io::Result<()> {
            let mut o = self.objects.lock().unwrap();
            for k in keys {
                o.remove(k);
            }
            Ok(())
        }
    }

    fn header() -> StreamHeader {
        StreamHeader {
            ebml: Bytes::from_static(b"\x1a\x45\xdf\xa3ebml"),
            segment_head: Bytes::from_static(b"info+tracks"),
        }
    }

    fn fragment(seq: u64, server_ts_ms: i64) -> StoredFragment {
        StoredFragment {
            seq,
            producer_ts_ms: -5 + seq as i64,
            server_ts_ms,
            duration_ms: 1000,
            header_id: 1,
            tags: vec![("AWS_KINESISVIDEO_X".into(), format!("v{seq}"))],
            cluster: Bytes::from(vec![seq as u8; 3000]),
        }
    }

    fn append(log: &mut Box<dyn DurableLog>, f: &StoredFragment) -> Location {
        let (tx, rx) = std::sync::mpsc::channel();
        let location = log
            .append(
                (1, &header()),
                f,
                Box::new(move |r| {
                    tx.send(r.is_ok()).unwrap();
                }),
            )
            .unwrap();
        assert!(rx.recv().unwrap(), "the put succeeded");
        location
    }

    /// A node that does not own a stream (a plain log over the bucket) adds what the owner
    /// appends since, headers included, each fragment once.
    #[test]
    fn a_reader_catches_up_with_what_the_owner_appends() {
        let bucket = Arc::new(MemoryBucket::default());
        let (mut owner, _) = ObjectBackend::new(bucket.clone(), "media")
            .open("cam-1700")
            .unwrap();
        for seq in [1, 2] {
            append(&mut owner, &fragment(seq, 10_000 + seq as i64));
        }
        let reader = crate::Store::with_backend(
            Box::new(ObjectBackend::new(bucket.clone(), "media")),
            crate::StoreConfig::default(),
        );
        let log = reader.stream("cam-1700").unwrap();
        let seqs = |log: &crate::StreamLog| -> Vec<u64> {
            log.fragments().iter().map(|m| m.seq).collect()
        };
        assert_eq!(seqs(&log), [1, 2]);

        // The owner goes on, the last fragment under a new header.
        let changed = StreamHeader {
            ebml: header().ebml,
            segment_head: Bytes::from_static(b"info+other tracks"),
        };
        append(&mut owner, &fragment(3, 10_003));
        let mut f4 = fragment(4, 10_004);
        f4.header_id = 2;
        let (tx, rx) = std::sync::mpsc::channel();
        let done = Box::new(move |r: std::io::Result<()>| tx.send(r.is_ok()).unwrap());
        owner.append((2, &changed), &f4, done).unwrap();
        assert!(rx.recv().unwrap());

        assert_eq!(log.catch_up().unwrap(), 2);
        assert_eq!(seqs(&log), [1, 2, 3, 4]);
        assert_eq!(log.header(2), Some(changed));
        assert_eq!(log.meta(4).unwrap().size, record::fragment_size(&f4));
        assert_eq!(log.next_seq(), 5);

        append(&mut owner, &fragment(5, 10_005));
        assert_eq!(log.catch_up().unwrap(), 1);
        assert_eq!(log.catch_up().unwrap(), 0, "nothing taken twice");
        assert_eq!(seqs(&log), [1, 2, 3, 4, 5]);
    }

    #[test]
    fn fragments_come_back_from_a_listing_alone() {
        let bucket = Arc::new(MemoryBucket::default());
        let backend = ObjectBackend::new(bucket.clone(), "media/");
        let (mut log, recovered) = backend.open("cam-1700").unwrap();
        assert!(recovered.fragments.is_empty());
        log.lease_seqs(64).unwrap();
        let written: Vec<StoredFragment> = (0..3)
            .map(|i| fragment(i, 10_000 + i as i64 * 1000))
            .collect();
        for f in &written {
            let at = append(&mut log, f);
            assert_eq!(at.payload_len(), record::fragment_size(f));
        }
        // One header object, three fragments, the lease.
        assert_eq!(bucket.list("media/cam-1700/", None).unwrap().len(), 5);

        // Another node (or a restart with an empty disk) opens the stream.
        let other = ObjectBackend::new(bucket.clone(), "media");
        assert_eq!(other.keys().unwrap(), ["cam-1700"]);
        let (_, again) = other.open("cam-1700").unwrap();
        assert_eq!(again.next_seq_floor, 64);
        assert_eq!(again.headers, vec![(1, header())]);
        assert_eq!(again.fragments.len(), 3);
        for ((meta, at), f) in again.fragments.iter().zip(&written) {
            assert_eq!(
                (
                    meta.seq,
                    meta.server_ts_ms,
                    meta.producer_ts_ms,
                    meta.duration_ms,
                    meta.size
                ),
                (
                    f.seq,
                    f.server_ts_ms,
                    f.producer_ts_ms,
                    f.duration_ms,
                    record::fragment_size(f)
                )
            );
            let back = at.read().unwrap();
            assert_eq!(
                (back.cluster, back.tags),
                (f.cluster.clone(), f.tags.clone())
            );
            // Ranges, as a reader streams a fragment.
            let tail = at.read_range(at.payload_len() - 10, 100).unwrap();
            assert_eq!(&tail[..], &f.cluster[f.cluster.len() - 10..]);
            assert!(at.read_range(at.payload_len(), 10).unwrap().is_empty());
        }
    }

    #[test]
    fn retention_and_deletion_remove_objects() {
        let bucket = Arc::new(MemoryBucket::default());
        let backend = ObjectBackend::new(bucket.clone(), "");
        let (mut log, _) = backend.open("s").unwrap();
        for i in 0..4 {
            append(&mut log, &fragment(i, 1000 * i as i64));
        }
        log.expire(2000);
        let names: Vec<String> = bucket
            .list("s/f/", None)
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(names.len(), 2);
        assert!(
            names[0].starts_with("s/f/00000000000000000002_2000_"),
            "{names:?}"
        );
        backend.delete("s").unwrap();
        assert!(bucket.list("s/", None).unwrap().is_empty());
        assert!(backend.keys().unwrap().is_empty());
    }

    #[test]
    fn names_round_trip_with_negative_times() {
        let mut f = fragment(7, -3);
        f.producer_ts_ms = -12;
        let meta = parse_fragment_name(&fragment_name(&f), 99).unwrap();
        assert_eq!(
            (meta.seq, meta.server_ts_ms, meta.producer_ts_ms, meta.size),
            (7, -3, -12, 99)
        );
        assert!(parse_fragment_name("7_1_2", 1).is_none());
        assert!(parse_fragment_name("7_1_2_3_4_5", 1).is_none());
    }
}

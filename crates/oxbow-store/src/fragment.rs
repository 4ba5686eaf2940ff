//! What the store keeps about a fragment, and what it tells live readers.

use bytes::Bytes;

/// The part of the producer's MKV that precedes its Clusters, kept once per change and
/// replayed at the start of every chunk a reader receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHeader {
    /// The EBML header element.
    pub ebml: Bytes,
    /// The Info and Tracks elements, back to back.
    pub segment_head: Bytes,
}

/// A complete fragment: one Cluster and the producer's metadata tags that came with it.
#[derive(Debug, Clone)]
pub struct StoredFragment {
    pub seq: u64,
    pub producer_ts_ms: i64,
    pub server_ts_ms: i64,
    pub duration_ms: i64,
    /// Which stream header (see [`StreamHeader`]) the fragment's tracks are described by.
    pub header_id: u32,
    pub tags: Vec<(String, String)>,
    /// The Cluster element, sized, exactly as it will be served.
    pub cluster: Bytes,
}

impl StoredFragment {
    /// Bytes the fragment occupies (what ListFragments reports as its size).
    pub fn size(&self) -> u64 {
        self.cluster.len() as u64
            + self
                .tags
                .iter()
                .map(|(k, v)| (k.len() + v.len()) as u64)
                .sum::<u64>()
    }
}

/// A fragment without its cluster: what a reader needs before streaming the cluster in
/// pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentHead {
    pub seq: u64,
    pub producer_ts_ms: i64,
    pub server_ts_ms: i64,
    pub duration_ms: i64,
    pub header_id: u32,
    pub tags: Vec<(String, String)>,
}

/// The index entry of a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentMeta {
    pub seq: u64,
    pub producer_ts_ms: i64,
    pub server_ts_ms: i64,
    pub duration_ms: i64,
    pub size: u64,
    pub header_id: u32,
    /// Written and fsynced.
    pub persisted: bool,
}

/// What live readers hear, in order, for each fragment as it arrives.
#[derive(Debug, Clone)]
pub enum LiveEvent {
    /// A fragment began; its number is already assigned.
    Start {
        seq: u64,
        header_id: u32,
        producer_ts_ms: i64,
        server_ts_ms: i64,
        cluster_timecode: u64,
    },
    /// One SimpleBlock/BlockGroup element of the fragment in progress.
    Frame { seq: u64, element: Bytes },
    /// The fragment completed (`ok`) or was abandoned.
    End {
        seq: u64,
        ok: bool,
        tags: Vec<(String, String)>,
    },
}

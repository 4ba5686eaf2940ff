//! The MKV chunks GetMedia and GetMediaForFragmentList send: each a complete MKV document
//! (EBML header, Segment of unknown size, the producer's Info and Tracks, KVS's tags, the
//! Cluster, the producer's fragment metadata).

use bytes::Bytes;
use oxbow_mkv::ids;
use oxbow_mkv::write;
use oxbow_store::StreamHeader;

/// Everything before the Cluster: the document start and the fragment's identifying tags.
pub fn start(header: &StreamHeader, tags: &[(&str, &str)]) -> Bytes {
    let mut out = Vec::with_capacity(header.ebml.len() + header.segment_head.len() + 256);
    out.extend_from_slice(&header.ebml);
    out.extend(write::unknown_size(ids::SEGMENT));
    out.extend_from_slice(&header.segment_head);
    out.extend(write::tags(tags));
    Bytes::from(out)
}

/// A live Cluster's opening: unknown size, so frames can follow as they arrive.
pub fn live_cluster_start(timecode: u64) -> Bytes {
    let mut out = write::unknown_size(ids::CLUSTER);
    out.extend(write::uint(ids::TIMECODE, timecode));
    Bytes::from(out)
}

/// The producer's fragment metadata, then the closing tags.
pub fn end(producer_tags: &[(String, String)], closing: &[(&str, &str)]) -> Bytes {
    let mut out = Vec::new();
    for (k, v) in producer_tags {
        out.extend(write::tags(&[(k.as_str(), v.as_str())]));
    }
    if !closing.is_empty() {
        out.extend(write::tags(closing));
    }
    Bytes::from(out)
}

/// A minimal document carrying only tags (errors that end a response).
pub fn tags_only(tags: &[(&str, &str)]) -> Bytes {
    let mut out = write::ebml_header();
    out.extend(write::unknown_size(ids::SEGMENT));
    out.extend(write::tags(tags));
    Bytes::from(out)
}

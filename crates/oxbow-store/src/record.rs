//! On-disk records. Each record is `magic | kind | payload length | CRC-32 of payload |
//! payload`, so a reader can tell a complete record from a torn one after a crash.
//!
//! Fragment payload: `seq u64 | producer ms i64 | server ms i64 | duration ms i64 |
//! header id u32 | tag count u16 | (name len u16, value len u16, name, value)* | cluster`.
//! Header payload: `header id u32 | ebml len u32 | ebml | info+tracks`.

use bytes::{Buf, Bytes};

use crate::fragment::{FragmentHead, FragmentMeta, StoredFragment, StreamHeader};

pub const MAGIC: [u8; 4] = *b"OXF1";
pub const HEAD_LEN: usize = 13;
const KIND_HEADER: u8 = 1;
const KIND_FRAGMENT: u8 = 2;
const FRAGMENT_FIXED: usize = 38;

/// A decoded record head.
#[derive(Debug, Clone, Copy)]
pub struct Head {
    pub kind: u8,
    pub len: u32,
    pub crc: u32,
}

pub fn parse_head(b: &[u8]) -> Option<Head> {
    if b.len() < HEAD_LEN || b[..4] != MAGIC {
        return None;
    }
    let kind = b[4];
    if kind != KIND_HEADER && kind != KIND_FRAGMENT {
        return None;
    }
    let len = u32::from_le_bytes([b[5], b[6], b[7], b[8]]);
    let crc = u32::from_le_bytes([b[9], b[10], b[11], b[12]]);
    Some(Head { kind, len, crc })
}

fn head(kind: u8, payload_parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = payload_parts.iter().map(|p| p.len()).sum();
    let mut crc = crc32fast::Hasher::new();
    for p in payload_parts {
        crc.update(p);
    }
    let mut out = Vec::with_capacity(HEAD_LEN);
    out.extend_from_slice(&MAGIC);
    out.push(kind);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out
}

/// The parts to write for a header record.
pub fn encode_header(id: u32, h: &StreamHeader) -> Vec<Bytes> {
    let mut fixed = Vec::with_capacity(8);
    fixed.extend_from_slice(&id.to_le_bytes());
    fixed.extend_from_slice(&(h.ebml.len() as u32).to_le_bytes());
    let head = head(KIND_HEADER, &[&fixed, &h.ebml, &h.segment_head]);
    vec![
        head.into(),
        fixed.into(),
        h.ebml.clone(),
        h.segment_head.clone(),
    ]
}

fn fragment_prefix(f: &StoredFragment) -> Vec<u8> {
    let mut p = Vec::with_capacity(FRAGMENT_FIXED + 64);
    p.extend_from_slice(&f.seq.to_le_bytes());
    p.extend_from_slice(&f.producer_ts_ms.to_le_bytes());
    p.extend_from_slice(&f.server_ts_ms.to_le_bytes());
    p.extend_from_slice(&f.duration_ms.to_le_bytes());
    p.extend_from_slice(&f.header_id.to_le_bytes());
    p.extend_from_slice(&(f.tags.len() as u16).to_le_bytes());
    for (k, v) in &f.tags {
        p.extend_from_slice(&(k.len() as u16).to_le_bytes());
        p.extend_from_slice(&(v.len() as u16).to_le_bytes());
        p.extend_from_slice(k.as_bytes());
        p.extend_from_slice(v.as_bytes());
    }
    p
}

/// The parts to write for a fragment record (the cluster is not copied).
pub fn encode_fragment(f: &StoredFragment) -> Vec<Bytes> {
    let prefix = fragment_prefix(f);
    let head = head(KIND_FRAGMENT, &[&prefix, &f.cluster]);
    vec![head.into(), prefix.into(), f.cluster.clone()]
}

/// A fragment's size as recorded: its whole payload.
pub fn fragment_size(f: &StoredFragment) -> u64 {
    (fragment_prefix(f).len() + f.cluster.len()) as u64
}

pub fn is_fragment(h: &Head) -> bool {
    h.kind == KIND_FRAGMENT
}

pub fn crc_ok(h: &Head, payload: &[u8]) -> bool {
    crc32fast::hash(payload) == h.crc
}

/// The index entry from a fragment payload's fixed prefix.
pub fn fragment_meta(prefix: &[u8], payload_len: u32) -> Option<FragmentMeta> {
    if prefix.len() < FRAGMENT_FIXED {
        return None;
    }
    let mut b = prefix;
    Some(FragmentMeta {
        seq: b.get_u64_le(),
        producer_ts_ms: b.get_i64_le(),
        server_ts_ms: b.get_i64_le(),
        duration_ms: b.get_i64_le(),
        header_id: b.get_u32_le(),
        size: u64::from(payload_len),
        persisted: true,
    })
}

pub const FRAGMENT_PREFIX_LEN: usize = FRAGMENT_FIXED;

pub fn decode_fragment(payload: Bytes) -> Option<StoredFragment> {
    let (head, cluster_at) = decode_fragment_head(&payload)?;
    Some(StoredFragment {
        seq: head.seq,
        producer_ts_ms: head.producer_ts_ms,
        server_ts_ms: head.server_ts_ms,
        duration_ms: head.duration_ms,
        header_id: head.header_id,
        tags: head.tags,
        cluster: payload.slice(cluster_at..),
    })
}

/// A fragment's metadata from the start of its payload (fixed fields and tags), and where
/// its cluster begins within the payload; `None` if `prefix` is too short or malformed.
pub fn decode_fragment_head(prefix: &[u8]) -> Option<(FragmentHead, usize)> {
    if prefix.len() < FRAGMENT_FIXED {
        return None;
    }
    let mut b = prefix;
    let seq = b.get_u64_le();
    let producer_ts_ms = b.get_i64_le();
    let server_ts_ms = b.get_i64_le();
    let duration_ms = b.get_i64_le();
    let header_id = b.get_u32_le();
    let count = b.get_u16_le();
    let mut tags = Vec::with_capacity(count as usize);
    for _ in 0..count {
        if b.remaining() < 4 {
            return None;
        }
        let (kl, vl) = (b.get_u16_le() as usize, b.get_u16_le() as usize);
        if b.remaining() < kl + vl {
            return None;
        }
        let k = String::from_utf8_lossy(&b[..kl]).into_owned();
        let v = String::from_utf8_lossy(&b[kl..kl + vl]).into_owned();
        b.advance(kl + vl);
        tags.push((k, v));
    }
    let head = FragmentHead {
        seq,
        producer_ts_ms,
        server_ts_ms,
        duration_ms,
        header_id,
        tags,
    };
    Some((head, prefix.len() - b.remaining()))
}

/// Bytes of a fragment payload's start that always hold its whole head (the fixed fields
/// and at most 10 tags of 128 + 256 bytes, with room to spare).
pub const MAX_FRAGMENT_HEAD: usize = 8 << 10;

pub fn decode_header(payload: Bytes) -> Option<(u32, StreamHeader)> {
    if payload.len() < 8 {
        return None;
    }
    let mut b = payload;
    let id = b.get_u32_le();
    let ebml_len = b.get_u32_le() as usize;
    if b.remaining() < ebml_len {
        return None;
    }
    let ebml = b.split_to(ebml_len);
    Some((
        id,
        StreamHeader {
            ebml,
            segment_head: b,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn concat(parts: &[Bytes]) -> Vec<u8> {
        parts.iter().flat_map(|p| p.iter().copied()).collect()
    }

    #[test]
    fn fragment_round_trip() {
        let f = StoredFragment {
            seq: 42,
            producer_ts_ms: 1_700_000_000_123,
            server_ts_ms: 1_700_000_000_456,
            duration_ms: 2000,
            header_id: 3,
            tags: vec![("camera".into(), "porch".into())],
            cluster: Bytes::from_static(b"cluster-bytes"),
        };
        let bytes = concat(&encode_fragment(&f));
        let head = parse_head(&bytes).unwrap();
        let payload = Bytes::copy_from_slice(&bytes[HEAD_LEN..]);
        assert!(crc_ok(&head, &payload));
        assert_eq!(u64::from(head.len), fragment_size(&f));
        let back = decode_fragment(payload.clone()).unwrap();
        assert_eq!(
            (back.seq, back.tags.clone(), back.cluster.clone()),
            (42, f.tags.clone(), f.cluster.clone())
        );
        let meta = fragment_meta(&payload, head.len).unwrap();
        assert_eq!((meta.seq, meta.duration_ms, meta.header_id), (42, 2000, 3));
        let mut torn = payload.to_vec();
        torn[20] ^= 1;
        assert!(!crc_ok(&head, &torn));
    }

    #[test]
    fn header_round_trip() {
        let h = StreamHeader {
            ebml: Bytes::from_static(b"ebml"),
            segment_head: Bytes::from_static(b"info+tracks"),
        };
        let bytes = concat(&encode_header(7, &h));
        let head = parse_head(&bytes).unwrap();
        assert!(!is_fragment(&head));
        let (id, back) = decode_header(Bytes::copy_from_slice(&bytes[HEAD_LEN..])).unwrap();
        assert_eq!((id, back), (7, h));
    }
}

//! Building Matroska elements: what Oxbow writes into GetMedia chunks and test streams.

use crate::ids::*;
use crate::vint::{write_id, write_size, UNKNOWN_SIZE};

/// A complete element with a known size.
pub fn element(id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 12);
    write_id(&mut out, id);
    write_size(&mut out, body.len() as u64);
    out.extend_from_slice(body);
    out
}

/// An element header of unknown size (its children follow).
pub fn unknown_size(id: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    write_id(&mut out, id);
    out.extend_from_slice(&UNKNOWN_SIZE);
    out
}

/// An unsigned integer element in the fewest bytes.
pub fn uint(id: u32, value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    element(id, &bytes[skip..])
}

pub fn string(id: u32, value: &str) -> Vec<u8> {
    element(id, value.as_bytes())
}

/// The EBML header of a Matroska document.
pub fn ebml_header() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(uint(0x4286, 1)); // EBMLVersion
    body.extend(uint(0x42F7, 1)); // EBMLReadVersion
    body.extend(uint(0x42F2, 4)); // EBMLMaxIDLength
    body.extend(uint(0x42F3, 8)); // EBMLMaxSizeLength
    body.extend(string(DOC_TYPE, "matroska"));
    body.extend(uint(0x4287, 2)); // DocTypeVersion
    body.extend(uint(0x4285, 2)); // DocTypeReadVersion
    element(EBML, &body)
}

/// A level-1 Tags element with one Tag holding one SimpleTag per pair.
pub fn tags(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut tag = element(TARGETS, &[]);
    for (name, value) in pairs {
        let mut simple = string(TAG_NAME, name);
        simple.extend(string(TAG_STRING, value));
        tag.extend(element(SIMPLE_TAG, &simple));
    }
    element(TAGS, &element(TAG, &tag))
}

/// A SimpleBlock for `track` at `relative` timecode units from its Cluster.
pub fn simple_block(track: u64, relative: i16, keyframe: bool, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(payload.len() + 4);
    write_size(&mut body, track);
    body.extend_from_slice(&relative.to_be_bytes());
    body.push(if keyframe { 0x80 } else { 0x00 });
    body.extend_from_slice(payload);
    element(SIMPLE_BLOCK, &body)
}

/// An Info element with a timecode scale and a title.
pub fn info(timecode_scale_ns: u64, title: &str) -> Vec<u8> {
    let mut body = uint(TIMECODE_SCALE, timecode_scale_ns);
    body.extend(string(0x7BA9, title)); // Title
    body.extend(string(0x4D80, "oxbow")); // MuxingApp
    body.extend(string(0x5741, "oxbow")); // WritingApp
    element(INFO, &body)
}

/// A Tracks element with one entry per (number, type, codec id, codec private).
pub fn tracks(entries: &[(u64, u64, &str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (number, kind, codec, private) in entries {
        let mut e = uint(TRACK_NUMBER, *number);
        e.extend(uint(0x73C5, *number)); // TrackUID
        e.extend(uint(TRACK_TYPE, *kind));
        e.extend(string(CODEC_ID, codec));
        if !private.is_empty() {
            e.extend(element(0x63A2, private)); // CodecPrivate
        }
        body.extend(element(TRACK_ENTRY, &e));
    }
    element(TRACKS, &body)
}

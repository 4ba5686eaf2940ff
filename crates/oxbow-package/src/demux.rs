//! One stored fragment (a Matroska cluster under its stream header) into timed samples.

use std::collections::BTreeMap;

use bytes::Bytes;
use oxbow_mkv::{block_data, Event, MkvParser, TrackInfo};

use crate::track::{PackageError, Track};

/// A frame as stored: which track, when (epoch nanoseconds, presentation time), whether it
/// starts a GOP, its coded bytes.
#[derive(Debug, Clone)]
pub struct Frame {
    pub track: u64,
    pub pts_ns: i64,
    pub keyframe: bool,
    pub data: Bytes,
}

/// A fragment's tracks (from its stream header) and its frames in stored (decode) order.
#[derive(Debug, Clone)]
pub struct Demuxed {
    pub tracks: Vec<TrackInfo>,
    pub frames: Vec<Frame>,
    /// Where the fragment's media ends (epoch ns): its start plus its stored duration.
    pub end_ns: i64,
}

/// Reads a fragment. `ebml` and `segment_head` are its stream header's parts (the EBML
/// header; Info and Tracks); `start_ms` and `duration_ms` its index entry's producer time and
/// duration. Frame times are `start_ms` plus each block's offset in the cluster, so they line
/// up across fragments whatever timecodes the producer wrote.
pub fn demux(
    ebml: &[u8],
    segment_head: &[u8],
    cluster: &[u8],
    start_ms: i64,
    duration_ms: i64,
) -> Result<Demuxed, PackageError> {
    let bad = |e: oxbow_mkv::MkvError| PackageError::InvalidMediaFrame(e.to_string());
    let mut parser = MkvParser::new();
    parser.push(ebml);
    // A Segment of unknown size around the stored header and the cluster.
    parser.push(&[0x18, 0x53, 0x80, 0x67]);
    parser.push(&oxbow_mkv::vint::UNKNOWN_SIZE);
    parser.push(segment_head);
    parser.push(cluster);
    let (mut events, _) = parser.finish().map_err(bad)?;
    let mut tracks = Vec::new();
    let mut scale_ns = 1_000_000i64;
    let mut frames = Vec::new();
    let start_ns = start_ms.saturating_mul(1_000_000);
    for event in events.drain(..) {
        match event {
            Event::Header(h) => {
                tracks = h.track_list;
                scale_ns = i64::try_from(h.timecode_scale_ns).unwrap_or(1_000_000);
            }
            Event::Frame(f) => {
                let block = block_data(&f.element).map_err(bad)?;
                frames.push(Frame {
                    track: block.track,
                    pts_ns: start_ns + i64::from(block.relative_timecode) * scale_ns,
                    keyframe: f.keyframe,
                    data: block.payload,
                });
            }
            _ => {}
        }
    }
    Ok(Demuxed {
        tracks,
        frames,
        end_ns: start_ns + duration_ms.saturating_mul(1_000_000),
    })
}

/// A sample on its track's timeline, ready for a `trun`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Decode time, in the track's timescale.
    pub dts: u64,
    /// Presentation minus decode time.
    pub cts: i32,
    pub duration: u32,
    pub keyframe: bool,
    pub data: Bytes,
}

fn ticks(ns: i64, timescale: u32) -> u64 {
    (i128::from(ns.max(0)) * i128::from(timescale) / 1_000_000_000) as u64
}

/// The samples of one track of a fragment. Matroska stores presentation times in decode
/// order; decode times are those same times sorted (what a reorder-free decoder would
/// assume), so B-frames get positive or negative composition offsets. The last sample lasts
/// as long as the one before it (a lone sample: until the fragment's end).
pub fn samples(demuxed: &Demuxed, track: &Track) -> Vec<Sample> {
    let frames: Vec<&Frame> = demuxed
        .frames
        .iter()
        .filter(|f| f.track == track.number)
        .collect();
    let pts: Vec<u64> = frames
        .iter()
        .map(|f| ticks(f.pts_ns, track.timescale))
        .collect();
    let mut dts = pts.clone();
    dts.sort_unstable();
    let end = ticks(demuxed.end_ns, track.timescale);
    let mut out: Vec<Sample> = Vec::with_capacity(frames.len());
    for (i, frame) in frames.iter().enumerate() {
        let duration = match dts.get(i + 1) {
            Some(next) => next - dts[i],
            // The last sample lasts as long as the one before it: the fragment's stored end
            // may belong to another track (audio running past the last video frame).
            None => match out.last().map(|s| u64::from(s.duration)) {
                Some(before) if before > 0 => before,
                _ => match end.saturating_sub(dts[i]) {
                    0 => u64::from(track.timescale / 30),
                    tail => tail,
                },
            },
        };
        out.push(Sample {
            dts: dts[i],
            cts: (pts[i] as i64 - dts[i] as i64) as i32,
            duration: duration.min(u64::from(u32::MAX)) as u32,
            keyframe: frame.keyframe || !track.is_video(),
            data: frame.data.clone(),
        });
    }
    out
}

/// Frames per track number, for callers that want counts.
pub fn frame_counts(demuxed: &Demuxed) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for f in &demuxed.frames {
        *counts.entry(f.track).or_insert(0) += 1;
    }
    counts
}

//! Low-latency HLS on LIVE sessions: the parts of the newest fragments (cut by
//! `oxbow_package::parts` from the stored fragment, or from the frames of the one still
//! arriving), and the driver that holds a blocking request (a playlist reload for a segment or
//! part not there yet, a preload-hinted part) until what it names exists.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use oxbow_core::{ApiError, ErrorKind};
use oxbow_mkv::{ids, write};
use oxbow_package::demux::{self, Sample};
use oxbow_package::parts::{parts, Part};
use oxbow_package::{fmp4, Track};
use oxbow_store::{StreamHeader, StreamLog};

use super::segments::{self, package_error};
use crate::byte_cache::ByteCache;

/// Part target duration: five frames at 25 fps.
pub const PART_TARGET_MS: u64 = 200;

/// How long a blocking request is held at most (the spec's three target durations, for
/// one-second fragments).
pub const HOLD: Duration = Duration::from_secs(3);

/// A fragment's start on a track's timeline.
fn start_ticks(producer_ts_ms: i64, track: &Track) -> u64 {
    (producer_ts_ms.max(0) as u64) * u64::from(track.timescale) / 1000
}

fn target_ticks(track: &Track) -> u64 {
    PART_TARGET_MS * u64::from(track.timescale) / 1000
}

/// One track's samples of a fragment and where it starts, with whether it is complete.
pub struct FragmentSamples {
    pub seq: u64,
    pub header_id: u32,
    pub start: u64,
    pub samples: Vec<Sample>,
    pub complete: bool,
}

impl FragmentSamples {
    /// Its parts so far.
    pub fn parts(&self, track: &Track) -> Vec<Part> {
        parts(
            &self.samples,
            self.start,
            target_ticks(track),
            self.complete,
        )
    }
}

/// The fragment still arriving, if it is `seq` (or any, for `None`).
pub fn arriving(
    log: &StreamLog,
    header: impl Fn(u32) -> Result<StreamHeader, ApiError>,
    track_number: u64,
    seq: Option<u64>,
) -> Result<Option<(FragmentSamples, Track)>, ApiError> {
    let Some(p) = log.partial().filter(|p| seq.is_none_or(|s| s == p.seq)) else {
        return Ok(None);
    };
    let head = header(p.header_id)?;
    let tracks = segments::tracks_of(&head, true)?;
    let track = segments::track(&tracks, track_number)?.clone();
    // The frames so far, as a cluster of unknown size under the stream's header.
    let mut cluster = write::unknown_size(ids::CLUSTER);
    cluster.extend(write::uint(ids::TIMECODE, p.cluster_timecode));
    for f in &p.frames {
        cluster.extend_from_slice(f);
    }
    let demuxed = demux::demux(
        &head.ebml,
        &head.segment_head,
        &cluster,
        p.producer_ts_ms,
        0,
    )
    .map_err(package_error)?;
    Ok(Some((
        FragmentSamples {
            seq: p.seq,
            header_id: p.header_id,
            start: start_ticks(p.producer_ts_ms, &track),
            samples: demux::samples(&demuxed, &track),
            complete: false,
        },
        track,
    )))
}

/// A stored fragment's samples of one track.
pub async fn stored(
    log: &Arc<StreamLog>,
    seq: u64,
    track_number: u64,
) -> Result<(FragmentSamples, Track), ApiError> {
    let f = segments::read_demuxed(log, seq, true).await?;
    let track = segments::track(&f.tracks, track_number)?.clone();
    Ok((
        FragmentSamples {
            seq: f.seq,
            header_id: f.header_id,
            start: start_ticks(f.producer_ts_ms, &track),
            samples: demux::samples(&f.demuxed, &track),
            complete: true,
        },
        track,
    ))
}

/// Holds until `ready` says yes (checked now and after every live event of the stream) or
/// `HOLD` passes; returns its last answer.
pub async fn hold_until(log: &StreamLog, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + HOLD;
    let (mut events, _) = log.subscribe();
    loop {
        if ready() {
            return true;
        }
        tokio::select! {
            event = events.recv() => {
                if event.is_err() {
                    // Fell behind or the stream's log closed: look again shortly.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            _ = tokio::time::sleep_until(deadline) => return ready(),
        }
    }
}

/// Part `position` of fragment `seq` of a track, waiting for it while the fragment arrives.
pub async fn part(
    cache: &ByteCache,
    stream_key: &str,
    log: &Arc<StreamLog>,
    seq: u64,
    track_number: u64,
    position: usize,
) -> Result<Bytes, ApiError> {
    let key = format!("{stream_key}/part/{seq}/{track_number}/{position}");
    if let Some(b) = cache.get(&key) {
        return Ok(b);
    }
    let header = |id| segments::header(log, id);
    let stored_now = |log: &StreamLog| log.contains(seq);
    let exists = |log: &StreamLog| -> bool {
        stored_now(log)
            || arriving(log, header, track_number, Some(seq))
                .ok()
                .flatten()
                .is_some_and(|(f, t)| f.parts(&t).len() > position)
    };
    // Held while the fragment may still grow to have it; a stored fragment has every part
    // it will ever have.
    if !exists(log) && !hold_until(log, || exists(log) || stored_now(log)).await {
        return Err(ApiError::new(
            ErrorKind::ResourceNotFound,
            "The part did not arrive in time.",
        ));
    }
    let (fragment, track) = match arriving(log, header, track_number, Some(seq))? {
        Some(arriving) if !stored_now(log) => arriving,
        _ => stored(log, seq, track_number).await?,
    };
    let all = fragment.parts(&track);
    let p = all.get(position).ok_or_else(|| {
        ApiError::new(
            ErrorKind::ResourceNotFound,
            "The fragment has no such part.",
        )
    })?;
    let sequence = (seq % 0xFF_FFFF) as u32 * 256 + position as u32 + 1;
    let bytes = Bytes::from(fmp4::media_segment(
        sequence,
        &[(&track, &fragment.samples[p.samples.clone()])],
    ));
    // Parts of a stored fragment never change; an arriving fragment's complete parts neither.
    cache.put(key, bytes.clone());
    Ok(bytes)
}

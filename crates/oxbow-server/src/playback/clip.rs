//! GetClip: one MP4 file (not fragmented) of a time range, at most the first 200 fragments or
//! 100 MB from its start, remuxed from the stored frames.

use std::sync::Arc;

use bytes::Bytes;
use oxbow_core::time::now_ms;
use oxbow_core::validate::Checks;
use oxbow_core::{ApiError, ErrorKind};
use oxbow_package::demux;
use oxbow_package::mp4::{clip, ClipTrack};
use serde::Deserialize;

use super::issue::Selector;
use super::{reply, segments};
use crate::api::Call;
use crate::http::Reply;
use crate::resource::StreamRef;
use crate::state::AppState;

/// Fragments a clip holds at most (KVS: 200).
const MAX_FRAGMENTS: usize = 200;
/// Media bytes a clip holds at most (KVS: 100 MB).
const MAX_BYTES: u64 = 100 << 20;
/// The longest range (KVS: 24 hours).
const MAX_RANGE_MS: i64 = 24 * 3600 * 1000;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClipRequest {
    #[serde(flatten)]
    stream: StreamRef,
    clip_fragment_selector: Option<Selector>,
}

pub async fn get_clip(state: &Arc<AppState>, call: &Call) -> Result<Reply, ApiError> {
    let req: ClipRequest = crate::input::parse(call.bytes())?;
    let sel = req.clip_fragment_selector.as_ref();
    let kind = sel.and_then(|s| s.fragment_selector_type.as_deref());
    let range = sel.and_then(|s| s.timestamp_range.as_ref());
    let mut checks = Checks::new();
    checks.required("clipFragmentSelector", sel).one_of(
        "clipFragmentSelector.fragmentSelectorType",
        kind,
        &["PRODUCER_TIMESTAMP", "SERVER_TIMESTAMP"],
    );
    if sel.is_some() {
        checks
            .required("clipFragmentSelector.fragmentSelectorType", kind)
            .required("clipFragmentSelector.timestampRange", range);
    }
    if let Some(r) = range {
        checks
            .required(
                "clipFragmentSelector.timestampRange.startTimestamp",
                r.start_timestamp.as_ref(),
            )
            .required(
                "clipFragmentSelector.timestampRange.endTimestamp",
                r.end_timestamp.as_ref(),
            );
    }
    let target = req.stream.resolve(state, &mut checks)?;
    let (Some(start), Some(end)) = (
        range.and_then(|r| r.start_timestamp),
        range.and_then(|r| r.end_timestamp),
    ) else {
        return Err(ApiError::invalid_argument(
            "ClipFragmentSelector is required.",
        ));
    };
    let (start_ms, end_ms) = super::range_ms(start, end)?;
    let producer = kind == Some("PRODUCER_TIMESTAMP");
    if end_ms <= start_ms {
        return Err(ApiError::invalid_argument(
            "EndTimestamp must be later than StartTimestamp.",
        ));
    }
    if end_ms - start_ms > MAX_RANGE_MS {
        return Err(ApiError::invalid_argument(
            "EndTimestamp must be within 24 hours of StartTimestamp.",
        ));
    }
    if !producer && end_ms > now_ms() {
        return Err(ApiError::invalid_argument(
            "EndTimestamp must be in the past for SERVER_TIMESTAMP.",
        ));
    }
    let (_, log) = super::archive(state, &target, "GetClip").await?;
    // The first fragments starting in the range, in ingestion order, within the limits.
    let mut chosen = Vec::new();
    let mut bytes = 0;
    for m in log.fragments() {
        let t = if producer {
            m.producer_ts_ms
        } else {
            m.server_ts_ms
        };
        if !(start_ms..=end_ms).contains(&t) {
            continue;
        }
        if chosen.len() == MAX_FRAGMENTS || (bytes + m.size > MAX_BYTES && !chosen.is_empty()) {
            break;
        }
        bytes += m.size;
        chosen.push(m);
    }
    let Some(first) = chosen.first() else {
        return Err(ApiError::new(
            ErrorKind::ResourceNotFound,
            "No fragments were found in the stream for the requested time range.",
        ));
    };
    let header_id = first.header_id;
    let header = segments::header(&log, header_id)?;
    let tracks = segments::tracks_of(&header, true)?;
    // One clip is built at a time per permit: each may hold 100 MB twice over.
    let _permit = state
        .heavy_permits
        .acquire()
        .await
        .map_err(|e| ApiError::server("wait to build a clip", e))?;
    let mut fragments = Vec::with_capacity(chosen.len());
    for m in &chosen {
        // A clip has one set of tracks: it ends where the producer's header changes.
        if m.header_id != header_id {
            break;
        }
        match log.read(m.seq).await {
            Ok(f) => fragments.push(f),
            // Gone to retention since it was listed.
            Err(_) => continue,
        }
    }
    let file = tokio::task::spawn_blocking(move || -> Result<Bytes, ApiError> {
        let mut per_track: Vec<ClipTrack> = tracks
            .iter()
            .map(|track| ClipTrack {
                track,
                chunks: Vec::with_capacity(fragments.len()),
            })
            .collect();
        for f in &fragments {
            let demuxed = demux::demux(
                &header.ebml,
                &header.segment_head,
                &f.cluster,
                f.producer_ts_ms,
                f.duration_ms,
            )
            .map_err(segments::package_error)?;
            for t in &mut per_track {
                t.chunks.push(demux::samples(&demuxed, t.track));
            }
        }
        Ok(Bytes::from(clip(per_track)))
    })
    .await
    .map_err(|e| ApiError::server("build a clip", e))??;
    Ok(reply(file, "video/mp4"))
}

//! HLS: the master playlist, then for fMP4 a media playlist per track with init and media
//! segments, for MPEG-TS one media playlist of segments that carry every track; all named
//! relative to the session URL as KVS names them.

use std::sync::Arc;

use oxbow_core::time::now_ms;
use oxbow_core::{ApiError, ErrorKind};
use oxbow_package::hls::{LowLatency, MediaPlaylist, PartEntry, Segment, Variant};
use oxbow_store::StreamLog;

use super::live;
use super::segments::{self, Packaging};
use super::select::{self, Window};
use super::session::{Container, Mode, Protocol, Session};
use super::{init, media, open, reply, urlencode, Listed};
use crate::api::Call;
use crate::http::Reply;
use crate::resource::FragmentNumber;
use crate::state::AppState;

/// A resource under the session URL.
pub async fn resource(state: &Arc<AppState>, call: &Call) -> Result<Reply, ApiError> {
    let (query, session, log) = open(state, call, Protocol::Hls).await?;
    let name = call.parts.uri.path().trim_start_matches("/hls/v1/");
    let token_q = urlencode(query.required("SessionToken")?);
    match name {
        "getHLSMasterPlaylist.m3u8" => master(&session, &log, &token_q),
        "getHLSMediaPlaylist.m3u8" => {
            let track = match session.container {
                Container::Fmp4 => Some(query.number("TrackNumber")?),
                Container::Ts => None,
            };
            // Low latency on LIVE fMP4 playlists unless the operator turned it off.
            let live = LivePlaylist {
                low_latency: state.config.limits.hls_low_latency
                    && session.mode == Mode::Live
                    && track.is_some(),
                msn: query
                    .get("_HLS_msn")
                    .map(|v| v.parse::<u64>())
                    .transpose()
                    .map_err(|_| ApiError::invalid_argument("_HLS_msn must be a number."))?,
                part: query
                    .get("_HLS_part")
                    .map(|v| v.parse::<usize>())
                    .transpose()
                    .map_err(|_| ApiError::invalid_argument("_HLS_part must be a number."))?,
            };
            media_playlist(&session, &log, &token_q, track, live).await
        }
        "getMP4InitFragment.mp4" => init(state, &query, &session, &log),
        "getMP4MediaFragment.mp4" if query.get("Part").is_some() => {
            // A part of a LIVE session's newest fragments: it may still be arriving, or not
            // have begun (a preload hint names the next one).
            let number = query.required("FragmentNumber")?;
            let position: usize = query.number("Part")? as usize;
            let seq = FragmentNumber::parse(number, session.creation_ms)
                .map(|n| n.seq)
                .filter(|seq| {
                    session.mode == Mode::Live
                        && *seq >= session.first_seq
                        && *seq <= log.next_seq()
                })
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorKind::ResourceNotFound,
                        "The fragment is not part of this streaming session.",
                    )
                })?;
            let track = query.number("TrackNumber")?;
            let bytes = live::part(
                &state.segment_cache,
                &session.stream_key,
                &log,
                seq,
                track,
                position,
            )
            .await?;
            Ok(reply(bytes, "video/mp4"))
        }
        "getMP4MediaFragment.mp4" => {
            let number = query.required("FragmentNumber")?;
            let seq = FragmentNumber::parse(number, session.creation_ms)
                .map(|n| n.seq)
                .filter(|seq| belongs(&session, &log, *seq));
            let track = query.number("TrackNumber")?;
            media(state, &session, &log, seq, Packaging::Fmp4 { track }).await
        }
        "getTSFragment.ts" if session.container == Container::Ts => {
            let number = query.required("FragmentNumber")?;
            let seq = FragmentNumber::parse(number, session.creation_ms)
                .map(|n| n.seq)
                .filter(|seq| belongs(&session, &log, *seq));
            media(state, &session, &log, seq, Packaging::Ts).await
        }
        _ => Err(ApiError::new(
            ErrorKind::ResourceNotFound,
            "There is no such resource in an HLS streaming session.",
        )),
    }
}

fn belongs(session: &Session, log: &StreamLog, seq: u64) -> bool {
    log.meta(seq).is_some_and(|m| select::serves(session, &m))
}

const M3U8: &str = "application/vnd.apple.mpegurl";

fn window(session: &Session, log: &StreamLog) -> Window {
    select::window(session, &log.fragments(), now_ms())
}

/// The master playlist: the video track's playlist as the variant, the audio track's as its
/// rendition (or the audio playlist alone for an audio-only stream).
fn master(session: &Session, log: &StreamLog, token: &str) -> Result<Reply, ApiError> {
    let listed = Listed::now(session, log)?;
    let tracks = listed.tracks;
    let playlist =
        |n: u64| format!("getHLSMediaPlaylist.m3u8?SessionToken={token}&TrackNumber={n}");
    let lead = &tracks[0];
    // fMP4 plays audio as its own rendition; a TS segment carries every track.
    let (uri, audio) = match session.container {
        Container::Fmp4 => (playlist(lead.number), tracks.get(1)),
        Container::Ts => (
            format!("getHLSMediaPlaylist.m3u8?SessionToken={token}"),
            None,
        ),
    };
    let variant = Variant {
        uri,
        bandwidth: listed.bandwidth,
        codecs: tracks.iter().map(|t| t.codec_string()).collect(),
        resolution: lead.is_video().then_some((lead.width, lead.height)),
        frame_rate: None,
        audio_uri: audio.map(|a| playlist(a.number)),
    };
    Ok(reply(variant.render_master(), M3U8))
}

/// How a media playlist request is served live: with LL-HLS, and held until the segment or
/// part it names (`_HLS_msn`, `_HLS_part`) exists.
struct LivePlaylist {
    low_latency: bool,
    msn: Option<u64>,
    part: Option<usize>,
}

/// The session number the next segment will have, and the parts of it so far (`track`).
fn next_segment(session: &Session, log: &StreamLog, track: u64) -> (u64, usize) {
    let w = window(session, log);
    let next = w.first_number + w.entries.len() as u64;
    let parts = live::arriving(log, |id| segments::header(log, id), track, None)
        .ok()
        .flatten()
        .filter(|(f, _)| f.seq >= session.first_seq)
        .map(|(f, t)| f.parts(&t).len())
        .unwrap_or(0);
    (next, parts)
}

/// A media playlist: of one track (fMP4), or of every track (`None`, MPEG-TS).
async fn media_playlist(
    session: &Session,
    log: &Arc<StreamLog>,
    token: &str,
    track: Option<u64>,
    live: LivePlaylist,
) -> Result<Reply, ApiError> {
    let ll_track = track.filter(|_| live.low_latency);
    if let (Some(t), Some(msn)) = (ll_track, live.msn) {
        // Blocking reload: answer once segment `msn` (or its part `part`) exists.
        let (next, _) = next_segment(session, log, t);
        if msn > next + 1 {
            return Err(ApiError::invalid_argument(
                "_HLS_msn is more than one segment ahead of the playlist.",
            ));
        }
        let t0 = std::time::Instant::now();
        let ready = live::hold_until(log, || {
            let (next, parts) = next_segment(session, log, t);
            msn < next || live.part.is_some_and(|p| msn == next && p < parts)
        })
        .await;
        tracing::debug!(msn, part = ?live.part, ready, held_ms = t0.elapsed().as_millis() as u64, "blocking playlist reload");
    }
    let w = window(session, log);
    let following = log
        .partial()
        .filter(|p| session.mode == Mode::Live && p.seq >= session.first_seq)
        .map(|p| p.producer_ts_ms);
    let durations = select::durations(&w.entries, following);
    let segments = w
        .entries
        .iter()
        .zip(durations)
        .map(|(e, duration_ms)| {
            let number = FragmentNumber::new(session.creation_ms, e.meta.seq);
            let (uri, map_uri) = match track {
                Some(track) => (
                    format!("getMP4MediaFragment.mp4?FragmentNumber={number}&SessionToken={token}&TrackNumber={track}"),
                    Some(format!(
                        "getMP4InitFragment.mp4?SessionToken={token}&TrackNumber={track}&SequenceNumber={}",
                        e.meta.header_id
                    )),
                ),
                None => (format!("getTSFragment.ts?FragmentNumber={number}&SessionToken={token}"), None),
            };
            Segment {
                uri,
                duration_s: duration_ms as f64 / 1000.0,
                map_uri,
                discontinuity: e.discontinuity,
                date_ms: session
                    .display_timestamp
                    .then(|| select::time_of(session, &e.meta)),
                parts: Vec::new(),
            }
        })
        .collect::<Vec<_>>();
    let mut segments = segments;
    let low_latency = match ll_track {
        Some(t) => Some(low_latency(session, log, token, t, &w, &mut segments).await?),
        None => None,
    };
    let playlist = MediaPlaylist {
        media_sequence: w.first_number,
        discontinuity_sequence: w.discontinuities_before,
        segments,
        ended: w.ended,
        vod: session.mode == Mode::OnDemand,
        low_latency,
    };
    Ok(reply(playlist.render(), M3U8))
}

/// The LL-HLS part of a live playlist: the parts of its newest complete segment, the parts of
/// the one arriving, and a hint naming the next part.
async fn low_latency(
    session: &Session,
    log: &Arc<StreamLog>,
    token: &str,
    track: u64,
    w: &Window,
    segments: &mut [Segment],
) -> Result<LowLatency, ApiError> {
    let part_uri = |seq: u64, i: usize| {
        let number = FragmentNumber::new(session.creation_ms, seq);
        format!("getMP4MediaFragment.mp4?FragmentNumber={number}&SessionToken={token}&TrackNumber={track}&Part={i}")
    };
    let entries = |f: &live::FragmentSamples, t: &oxbow_package::Track| -> Vec<PartEntry> {
        f.parts(t)
            .iter()
            .enumerate()
            .map(|(i, p)| PartEntry {
                uri: part_uri(f.seq, i),
                duration_s: p.duration as f64 / f64::from(t.timescale),
                independent: p.independent,
            })
            .collect()
    };
    if let (Some(last), Some(segment)) = (w.entries.last(), segments.last_mut()) {
        let (f, t) = live::stored(log, last.meta.seq, track).await?;
        segment.parts = entries(&f, &t);
    }
    let arriving = live::arriving(log, |id| segments::header(log, id), track, None)?
        .filter(|(f, _)| f.seq >= session.first_seq);
    Ok(match arriving {
        Some((f, t)) => {
            let pending = entries(&f, &t);
            LowLatency {
                part_target_s: live::PART_TARGET_MS as f64 / 1000.0,
                pending_map_uri: Some(format!(
                    "getMP4InitFragment.mp4?SessionToken={token}&TrackNumber={track}&SequenceNumber={}",
                    f.header_id
                )),
                // No hint: the next part may be in this fragment or the next, which only the
                // producer knows (it starts one at its next key frame); a hint that names a
                // part that never comes holds the player for nothing. Blocking reloads
                // announce each part as it completes instead.
                preload_hint: None,
                pending,
            }
        }
        None => LowLatency {
            part_target_s: live::PART_TARGET_MS as f64 / 1000.0,
            pending_map_uri: None,
            pending: Vec::new(),
            preload_hint: Some(part_uri(log.next_seq(), 0)),
        },
    })
}

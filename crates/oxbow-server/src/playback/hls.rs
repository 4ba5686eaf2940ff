//! HLS: the master playlist, then for fMP4 a media playlist per track with init and media
//! segments, for MPEG-TS one media playlist of segments that carry every track; all named
//! relative to the session URL as KVS names them.

use std::sync::Arc;

use oxbow_core::time::now_ms;
use oxbow_core::{ApiError, ErrorKind};
use oxbow_package::hls::{MediaPlaylist, Segment, Variant};
use oxbow_store::StreamLog;

use super::segments::Packaging;
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
            media_playlist(&session, &log, &token_q, track)
        }
        "getMP4InitFragment.mp4" => init(state, &query, &session, &log),
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
    log.fragments()
        .iter()
        .find(|m| m.seq == seq)
        .is_some_and(|m| select::serves(session, m))
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

/// A media playlist: of one track (fMP4), or of every track (`None`, MPEG-TS).
fn media_playlist(
    session: &Session,
    log: &StreamLog,
    token: &str,
    track: Option<u64>,
) -> Result<Reply, ApiError> {
    let w = window(session, log);
    let segments = w
        .entries
        .iter()
        .map(|e| {
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
                duration_s: e.meta.duration_ms as f64 / 1000.0,
                map_uri,
                discontinuity: e.discontinuity,
                date_ms: session
                    .display_timestamp
                    .then(|| select::time_of(session, &e.meta)),
            }
        })
        .collect();
    let playlist = MediaPlaylist {
        media_sequence: w.first_number,
        discontinuity_sequence: w.discontinuities_before,
        segments,
        ended: w.ended,
        vod: session.mode == Mode::OnDemand,
    };
    Ok(reply(playlist.render(), M3U8))
}

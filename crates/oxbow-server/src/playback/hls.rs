//! HLS: the session URL, then the master playlist, a media playlist per track, init segments
//! and fMP4 media segments, all named relative to the session URL as KVS names them.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use oxbow_core::time::now_ms;
use oxbow_core::{ApiError, ErrorKind};
use oxbow_package::hls::{MediaPlaylist, Segment, Variant};
use oxbow_store::StreamLog;
use serde::Deserialize;
use serde_json::json;

use super::issue::{self, Selector};
use super::select::{self, Window};
use super::session::{Container, Mode, Protocol, Session};
use super::{segments, Query};
use crate::api::Call;
use crate::http::{full, Reply};
use crate::resource::{FragmentNumber, StreamRef};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HlsRequest {
    #[serde(flatten)]
    stream: StreamRef,
    playback_mode: Option<String>,
    #[serde(rename = "HLSFragmentSelector")]
    selector: Option<Selector>,
    container_format: Option<String>,
    discontinuity_mode: Option<String>,
    display_fragment_timestamp: Option<String>,
    expires: Option<i64>,
    max_media_playlist_fragment_results: Option<i64>,
}

/// GetHLSStreamingSessionURL.
pub async fn issue(state: &Arc<AppState>, call: &Call) -> Result<Reply, ApiError> {
    let req: HlsRequest = crate::input::parse(call.bytes())?;
    let (session, _) = issue::issue(
        state,
        issue::Request {
            stream: &req.stream,
            protocol: Protocol::Hls,
            playback_mode: req.playback_mode.as_deref(),
            selector: req.selector.as_ref(),
            selector_name: "HLSFragmentSelector",
            container: req.container_format.as_deref(),
            discontinuity: req.discontinuity_mode.as_deref(),
            display_timestamp: req.display_fragment_timestamp.as_deref(),
            display_number: None,
            expires: req.expires,
            max_results: req.max_media_playlist_fragment_results,
            max_results_name: "MaxMediaPlaylistFragmentResults",
        },
    )
    .await?;
    if session.container == Container::Ts {
        return Err(ApiError::new(
            ErrorKind::NotImplemented,
            "ContainerFormat MPEG_TS is not served by this version of Oxbow; use FRAGMENTED_MP4.",
        ));
    }
    let endpoint = call.plain_url().unwrap_or_else(|| state.public_url.clone());
    let token = session.seal(&state.playback_key);
    let url = format!("{endpoint}/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken={token}");
    let body = json!({ "HLSStreamingSessionURL": url }).to_string();
    Ok(crate::http::json(StatusCode::OK, Bytes::from(body)))
}

/// A resource under the session URL.
pub async fn resource(state: &Arc<AppState>, call: &Call) -> Result<Reply, ApiError> {
    let query = Query::of(call);
    let token = query.required("SessionToken")?;
    let session = Session::open(token, &state.playback_key, Protocol::Hls, now_ms())?;
    let log = state
        .store
        .open_stream(&session.stream_key)
        .await
        .map_err(|e| ApiError::dependency("open the stream's media log", e))?;
    let name = call.parts.uri.path().trim_start_matches("/hls/v1/");
    let token_q = urlencode(token);
    match name {
        "getHLSMasterPlaylist.m3u8" => master(&session, &log, &token_q),
        "getHLSMediaPlaylist.m3u8" => {
            media_playlist(&session, &log, &token_q, query.number("TrackNumber")?)
        }
        "getMP4InitFragment.mp4" => {
            let header_id = query.get("SequenceNumber").unwrap_or("0");
            let header_id: u32 = header_id
                .parse()
                .map_err(|_| ApiError::invalid_argument("SequenceNumber must be a number."))?;
            let bytes = segments::init_segment(
                &state.segment_cache,
                &session.stream_key,
                &log,
                header_id,
                query.number("TrackNumber")?,
            )?;
            Ok(reply(bytes, "video/mp4"))
        }
        "getMP4MediaFragment.mp4" => {
            let number = query.required("FragmentNumber")?;
            let seq = FragmentNumber::parse(number, session.creation_ms)
                .map(|n| n.seq)
                .filter(|seq| belongs(&session, &log, *seq))
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorKind::ResourceNotFound,
                        "The fragment is not part of this streaming session.",
                    )
                })?;
            let bytes = segments::media_segment(
                &state.segment_cache,
                &session.stream_key,
                &log,
                seq,
                query.number("TrackNumber")?,
            )
            .await?;
            Ok(reply(bytes, "video/mp4"))
        }
        _ => Err(ApiError::new(
            ErrorKind::ResourceNotFound,
            "There is no such resource in an HLS streaming session.",
        )),
    }
}

/// Whether a fragment is one the session may serve: in its range, and for LIVE not older than
/// its first.
fn belongs(session: &Session, log: &StreamLog, seq: u64) -> bool {
    let Some(meta) = log.fragments().into_iter().find(|m| m.seq == seq) else {
        return false;
    };
    let t = select::time_of(session, &meta);
    match session.mode {
        Mode::Live => seq >= session.first_seq,
        _ => session.start_ms.is_none_or(|s| t >= s) && session.end_ms.is_none_or(|e| t <= e),
    }
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn reply(bytes: impl Into<Bytes>, content_type: &'static str) -> Reply {
    let mut r = Response::new(full(bytes.into()));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

const M3U8: &str = "application/vnd.apple.mpegurl";

fn window(session: &Session, log: &StreamLog) -> Window {
    select::window(session, &log.fragments(), now_ms())
}

/// The master playlist: the video track's playlist as the variant, the audio track's as its
/// rendition (or the audio playlist alone for an audio-only stream).
fn master(session: &Session, log: &StreamLog, token: &str) -> Result<Reply, ApiError> {
    let w = window(session, log);
    let header_id = w
        .entries
        .first()
        .map(|e| e.meta.header_id)
        .or_else(|| log.fragments().last().map(|m| m.header_id))
        .ok_or_else(|| ApiError::new(ErrorKind::ResourceNotFound, "The stream has no media."))?;
    let tracks = segments::tracks_of(&segments::header(log, header_id)?, true)?;
    let playlist =
        |n: u64| format!("getHLSMediaPlaylist.m3u8?SessionToken={token}&TrackNumber={n}");
    let bits = w
        .entries
        .iter()
        .filter(|e| e.meta.duration_ms > 0)
        .map(|e| e.meta.size * 8 * 1000 / e.meta.duration_ms as u64)
        .max()
        .unwrap_or(1_000_000);
    let lead = &tracks[0];
    let audio = tracks.get(1);
    let variant = Variant {
        uri: playlist(lead.number),
        bandwidth: bits,
        codecs: tracks.iter().map(|t| t.codec_string()).collect(),
        resolution: lead.is_video().then_some((lead.width, lead.height)),
        frame_rate: None,
        audio_uri: audio.map(|a| playlist(a.number)),
    };
    Ok(reply(variant.render_master(), M3U8))
}

/// A track's media playlist.
fn media_playlist(
    session: &Session,
    log: &StreamLog,
    token: &str,
    track: u64,
) -> Result<Reply, ApiError> {
    let w = window(session, log);
    let segments = w
        .entries
        .iter()
        .map(|e| {
            let number = FragmentNumber::new(session.creation_ms, e.meta.seq);
            Segment {
                uri: format!(
                    "getMP4MediaFragment.mp4?FragmentNumber={number}&SessionToken={token}&TrackNumber={track}"
                ),
                duration_s: e.meta.duration_ms as f64 / 1000.0,
                map_uri: Some(format!(
                    "getMP4InitFragment.mp4?SessionToken={token}&TrackNumber={track}&SequenceNumber={}",
                    e.meta.header_id
                )),
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

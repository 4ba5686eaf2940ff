//! Issuing a streaming session (GetHLSStreamingSessionURL, GetDASHStreamingSessionURL): the
//! request's rules as the API reference gives them, then the stream's (it exists, keeps
//! data, has media for the mode, its tracks can be packaged), then the sealed session.

use std::sync::Arc;

use oxbow_catalog::StreamRecord;
use oxbow_core::time::now_ms;
use oxbow_core::validate::Checks;
use oxbow_core::{ApiError, ErrorKind};
use serde::Deserialize;

use super::select;
use super::session::{Container, Discontinuity, Mode, Protocol, Session};
use crate::api::Call;
use crate::http::Reply;
use crate::resource::{media_key, StreamRef};
use crate::state::AppState;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct TimestampRange {
    pub start_timestamp: Option<f64>,
    pub end_timestamp: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Selector {
    pub fragment_selector_type: Option<String>,
    pub timestamp_range: Option<TimestampRange>,
}

/// A GetHLSStreamingSessionURL or GetDASHStreamingSessionURL body: the members they share,
/// the selector and maximum under either API's name, and those only one of them has.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SessionRequest {
    #[serde(flatten)]
    stream: StreamRef,
    playback_mode: Option<String>,
    #[serde(rename = "HLSFragmentSelector", alias = "DASHFragmentSelector")]
    selector: Option<Selector>,
    /// HLS only.
    container_format: Option<String>,
    /// HLS only.
    discontinuity_mode: Option<String>,
    display_fragment_timestamp: Option<String>,
    /// DASH only.
    display_fragment_number: Option<String>,
    expires: Option<i64>,
    #[serde(
        rename = "MaxMediaPlaylistFragmentResults",
        alias = "MaxManifestFragmentResults"
    )]
    max_results: Option<i64>,
}

/// Answers a session API call: checks it, seals the session, returns its URL as
/// `HLSStreamingSessionURL` or `DASHStreamingSessionURL`.
pub async fn session_url(
    state: &Arc<AppState>,
    call: &Call,
    protocol: Protocol,
) -> Result<Reply, ApiError> {
    let req: SessionRequest = crate::input::parse(call.bytes())?;
    let (session, _) = issue(state, &req, protocol).await?;
    let endpoint = call.plain_url().unwrap_or_else(|| state.public_url.clone());
    let token = session.seal(&state.playback_key);
    let (path, member) = match protocol {
        Protocol::Hls => ("hls/v1/getHLSMasterPlaylist.m3u8", "HLSStreamingSessionURL"),
        Protocol::Dash => ("dash/v1/getDASHManifest.mpd", "DASHStreamingSessionURL"),
    };
    let body = serde_json::json!({ member: format!("{endpoint}/{path}?SessionToken={token}") });
    Ok(crate::http::json(
        http::StatusCode::OK,
        bytes::Bytes::from(body.to_string()),
    ))
}

/// The longest range a session may cover (KVS: 24 hours).
const MAX_RANGE_MS: i64 = 24 * 3600 * 1000;

fn ms(secs: f64) -> i64 {
    (secs * 1000.0).round() as i64
}

/// Checks the request and the stream; returns the session to seal and the stream.
async fn issue(
    state: &Arc<AppState>,
    req: &SessionRequest,
    protocol: Protocol,
) -> Result<(Session, StreamRecord), ApiError> {
    let (selector_name, max_results_name) = match protocol {
        Protocol::Hls => ("HLSFragmentSelector", "MaxMediaPlaylistFragmentResults"),
        Protocol::Dash => ("DASHFragmentSelector", "MaxManifestFragmentResults"),
    };
    let sel_type = req
        .selector
        .as_ref()
        .and_then(|s| s.fragment_selector_type.as_deref());
    let range = req
        .selector
        .as_ref()
        .and_then(|s| s.timestamp_range.as_ref());
    let mut checks = Checks::new();
    let lower = |s: &str| {
        let mut c = s.chars();
        c.next()
            .map(|f| f.to_lowercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    };
    checks
        .one_of(
            "playbackMode",
            req.playback_mode.as_deref(),
            &["LIVE", "LIVE_REPLAY", "ON_DEMAND"],
        )
        .one_of(
            "containerFormat",
            req.container_format.as_deref(),
            &["FRAGMENTED_MP4", "MPEG_TS"],
        )
        .one_of(
            "discontinuityMode",
            req.discontinuity_mode.as_deref(),
            &["ALWAYS", "NEVER", "ON_DISCONTINUITY"],
        )
        .one_of(
            "displayFragmentTimestamp",
            req.display_fragment_timestamp.as_deref(),
            &["ALWAYS", "NEVER"],
        )
        .one_of(
            "displayFragmentNumber",
            req.display_fragment_number.as_deref(),
            &["ALWAYS", "NEVER"],
        )
        .range("expires", req.expires, 300, 43_200)
        .range(&lower(max_results_name), req.max_results, 1, 5000)
        .one_of(
            &format!("{}.fragmentSelectorType", lower(selector_name)),
            sel_type,
            &["PRODUCER_TIMESTAMP", "SERVER_TIMESTAMP"],
        );
    let target = req.stream.resolve(state, &mut checks)?;
    let mode = match req.playback_mode.as_deref().unwrap_or("LIVE") {
        "LIVE_REPLAY" => Mode::LiveReplay,
        "ON_DEMAND" => Mode::OnDemand,
        _ => Mode::Live,
    };
    let now = now_ms();
    let producer_time = sel_type == Some("PRODUCER_TIMESTAMP");
    let start = range.and_then(|r| r.start_timestamp);
    let end = range.and_then(|r| r.end_timestamp);
    let invalid = |m: &str| Err(ApiError::invalid_argument(m));
    match mode {
        Mode::Live if range.is_some() => {
            return invalid("TimestampRange must not be set when PlaybackMode is LIVE.");
        }
        Mode::OnDemand if start.is_none() || end.is_none() => {
            return invalid(
                "StartTimestamp and EndTimestamp must be set when PlaybackMode is ON_DEMAND.",
            );
        }
        Mode::LiveReplay if start.is_none() => {
            return invalid("StartTimestamp must be set when PlaybackMode is LIVE_REPLAY.");
        }
        _ => {}
    }
    for t in [start, end].into_iter().flatten() {
        if !oxbow_core::time::is_time(t) {
            return invalid("A timestamp must be a time from the epoch to the year 9999.");
        }
    }
    let (start_ms, end_ms) = (start.map(ms), end.map(ms));
    if let (Some(s), Some(e)) = (start_ms, end_ms) {
        if e <= s {
            return invalid("EndTimestamp must be later than StartTimestamp.");
        }
        if e - s > MAX_RANGE_MS {
            return invalid("EndTimestamp must be within 24 hours of StartTimestamp.");
        }
        if !producer_time && e > now {
            return invalid("EndTimestamp must be in the past for SERVER_TIMESTAMP.");
        }
    }
    let (stream, log) = super::archive(state, &target, api_name(protocol)).await?;
    state.limit_rate(&stream.arn, api_name(protocol), 25, "stream")?;
    let key = media_key(&stream);
    let fragments = log.fragments();
    let max = req
        .max_results
        .map(|m| m as usize)
        .unwrap_or(if mode == Mode::OnDemand { 1000 } else { 5 });
    let mut session = Session {
        protocol,
        stream_key: key,
        creation_ms: stream.creation_ms,
        mode,
        container: if req.container_format.as_deref() == Some("MPEG_TS") {
            Container::Ts
        } else {
            Container::Fmp4
        },
        producer_time,
        start_ms,
        end_ms,
        max_fragments: max,
        discontinuity: match req.discontinuity_mode.as_deref() {
            Some("ALWAYS") => Discontinuity::Always,
            Some("NEVER") => Discontinuity::Never,
            Some(_) => Discontinuity::AtGaps,
            None if producer_time => Discontinuity::Never,
            None => Discontinuity::Always,
        },
        display_timestamp: req.display_fragment_timestamp.as_deref() == Some("ALWAYS"),
        display_number: req.display_fragment_number.as_deref() == Some("ALWAYS"),
        first_seq: 0,
        issued_ms: now,
        expires_ms: now + req.expires.unwrap_or(300) * 1000,
    };
    if !select::has_media(&session, &fragments, now) {
        return Err(ApiError::new(
            ErrorKind::ResourceNotFound,
            match mode {
                Mode::Live => "No fragments were ingested into the stream in the last 30 seconds.",
                _ => "No fragments were found in the stream for the requested time range.",
            },
        ));
    }
    if mode == Mode::Live {
        session.first_seq = select::live_first_seq(&fragments, max);
    }
    // The tracks of the first fragment the session plays must be playable.
    let first = select::window(&session, &fragments, now)
        .entries
        .first()
        .map(|e| e.meta.header_id)
        .or_else(|| {
            fragments
                .iter()
                .find(|m| select::time_of(&session, m) >= start_ms.unwrap_or(0))
                .map(|m| m.header_id)
        });
    if let Some(header_id) = first {
        let header = super::segments::header(&log, header_id)?;
        super::segments::tracks_of(&header, session.container == Container::Fmp4)?;
    }
    Ok((session, stream))
}

/// The API's name, for its rate limit.
fn api_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Hls => "GetHLSStreamingSessionURL",
        Protocol::Dash => "GetDASHStreamingSessionURL",
    }
}

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
use crate::resource::{lookup, media_key, Need, StreamRef};
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

/// The members both session APIs share, under their own names where they differ.
pub struct Request<'a> {
    pub stream: &'a StreamRef,
    pub protocol: Protocol,
    pub playback_mode: Option<&'a str>,
    pub selector: Option<&'a Selector>,
    /// The selector's member name (`HLSFragmentSelector` / `DASHFragmentSelector`).
    pub selector_name: &'static str,
    pub container: Option<&'a str>,
    pub discontinuity: Option<&'a str>,
    pub display_timestamp: Option<&'a str>,
    pub display_number: Option<&'a str>,
    pub expires: Option<i64>,
    pub max_results: Option<i64>,
    /// `MaxMediaPlaylistFragmentResults` / `MaxManifestFragmentResults`.
    pub max_results_name: &'static str,
}

/// The longest range a session may cover (KVS: 24 hours).
const MAX_RANGE_MS: i64 = 24 * 3600 * 1000;

fn ms(secs: f64) -> i64 {
    (secs * 1000.0).round() as i64
}

/// Checks the request and the stream; returns the session to seal and the stream.
pub async fn issue(
    state: &Arc<AppState>,
    req: Request<'_>,
) -> Result<(Session, StreamRecord), ApiError> {
    let sel_type = req
        .selector
        .and_then(|s| s.fragment_selector_type.as_deref());
    let range = req.selector.and_then(|s| s.timestamp_range.as_ref());
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
            req.playback_mode,
            &["LIVE", "LIVE_REPLAY", "ON_DEMAND"],
        )
        .one_of(
            "containerFormat",
            req.container,
            &["FRAGMENTED_MP4", "MPEG_TS"],
        )
        .one_of(
            "discontinuityMode",
            req.discontinuity,
            &["ALWAYS", "NEVER", "ON_DISCONTINUITY"],
        )
        .one_of(
            "displayFragmentTimestamp",
            req.display_timestamp,
            &["ALWAYS", "NEVER"],
        )
        .one_of(
            "displayFragmentNumber",
            req.display_number,
            &["ALWAYS", "NEVER"],
        )
        .range("expires", req.expires, 300, 43_200)
        .range(&lower(req.max_results_name), req.max_results, 1, 5000)
        .one_of(
            &format!("{}.fragmentSelectorType", lower(req.selector_name)),
            sel_type,
            &["PRODUCER_TIMESTAMP", "SERVER_TIMESTAMP"],
        );
    let target = req.stream.resolve(state, &mut checks)?;
    let mode = match req.playback_mode.unwrap_or("LIVE") {
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
    let stream: StreamRecord = lookup::get(state, &target, Need::Live).await?;
    state.limit_rate(&stream.arn, api_name(req.protocol), 25, "stream")?;
    if stream.retention_hours == 0 {
        return Err(ApiError::new(
            ErrorKind::NoDataRetention,
            "The stream does not retain data: playback needs a data retention period greater than 0.",
        ));
    }
    let key = media_key(&stream);
    let log = state
        .store
        .open_stream(&key)
        .await
        .map_err(|e| ApiError::dependency("open the stream's media log", e))?;
    let fragments = log.fragments();
    let max = req
        .max_results
        .map(|m| m as usize)
        .unwrap_or(if mode == Mode::OnDemand { 1000 } else { 5 });
    let mut session = Session {
        protocol: req.protocol,
        stream_key: key,
        creation_ms: stream.creation_ms,
        mode,
        container: if req.container == Some("MPEG_TS") {
            Container::Ts
        } else {
            Container::Fmp4
        },
        producer_time,
        start_ms,
        end_ms,
        max_fragments: max,
        discontinuity: match req.discontinuity {
            Some("ALWAYS") => Discontinuity::Always,
            Some("NEVER") => Discontinuity::Never,
            Some(_) => Discontinuity::AtGaps,
            None if producer_time => Discontinuity::Never,
            None => Discontinuity::Always,
        },
        display_timestamp: req.display_timestamp == Some("ALWAYS"),
        display_number: req.display_number == Some("ALWAYS"),
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

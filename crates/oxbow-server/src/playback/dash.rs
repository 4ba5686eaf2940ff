//! MPEG-DASH: the session URL, then the manifest (an MPD with a SegmentTimeline per track)
//! and the same fMP4 init and media segments HLS serves, numbered by the session.

use std::sync::Arc;

use oxbow_core::{ApiError, ErrorKind};
use oxbow_package::dash::{Manifest, Segment};

use super::segments::Packaging;
use super::session::{Mode, Protocol, Session};
use super::{init, media, open, reply, select, urlencode, Listed};
use crate::api::Call;
use crate::http::Reply;
use crate::resource::FragmentNumber;
use crate::state::AppState;

/// A resource under the session URL.
pub async fn resource(state: &Arc<AppState>, call: &Call) -> Result<Reply, ApiError> {
    let (query, session, log) = open(state, call, Protocol::Dash).await?;
    match call.parts.uri.path().trim_start_matches("/dash/v1/") {
        "getDASHManifest.mpd" => {
            let token = urlencode(query.required("SessionToken")?);
            manifest(&session, &log, &token)
        }
        "getMP4InitFragment.mp4" => init(state, &query, &session, &log),
        "getMP4MediaFragment.mp4" => {
            let number = query.number("SequenceNumber")?;
            let seq = select::nth(&session, &log.fragments(), number).map(|m| m.seq);
            let track = query.number("TrackNumber")?;
            media(state, &session, &log, seq, Packaging::Fmp4 { track }).await
        }
        _ => Err(ApiError::new(
            ErrorKind::ResourceNotFound,
            "There is no such resource in a DASH streaming session.",
        )),
    }
}

/// The MPD. Its tracks are those of the first listed fragment: a DASH session's codec private
/// data may not change (KVS fails such fragments when they load).
fn manifest(
    session: &Session,
    log: &oxbow_store::StreamLog,
    token: &str,
) -> Result<Reply, ApiError> {
    let listed = Listed::now(session, log)?;
    let Listed {
        window: w,
        tracks,
        header_id,
        bandwidth,
        now_ms: now,
    } = listed;
    let following = log
        .partial()
        .filter(|p| session.mode == Mode::Live && p.seq >= session.first_seq)
        .map(|p| p.producer_ts_ms);
    let manifest = Manifest {
        dynamic: session.mode != Mode::OnDemand && !w.ended,
        tracks: tracks.iter().collect(),
        segments: w
            .entries
            .iter()
            .zip(select::durations(&w.entries, following))
            .map(|(e, duration_ms)| Segment {
                start_ms: e.meta.producer_ts_ms,
                duration_ms,
                fragment_number: session
                    .display_number
                    .then(|| FragmentNumber::new(session.creation_ms, e.meta.seq).to_string()),
                timestamp_ms: session
                    .display_timestamp
                    .then(|| select::time_of(session, &e.meta)),
            })
            .collect(),
        start_number: w.first_number,
        query: format!("SessionToken={token}"),
        init_sequence: header_id,
        now_ms: now,
        bandwidth,
    };
    Ok(reply(manifest.render(), "application/dash+xml"))
}

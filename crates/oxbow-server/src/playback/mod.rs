//! Playback: streaming sessions that players follow. GetHLSStreamingSessionURL checks the
//! request and the stream and returns a URL carrying a sealed session ([`session`]); the
//! playlists and segments under that URL are opened by the session token alone, selected by
//! the pure rules of [`select`] and packaged by `oxbow-package` ([`segments`]).

mod clip;
mod dash;
mod hls;
mod images;
mod issue;
mod live;
mod segments;
mod select;
mod session;

use std::sync::Arc;

use http::Method;
use oxbow_core::time::now_ms;
use oxbow_core::{ApiError, ErrorKind, ResourceType};

use crate::access::{named, naming};
use crate::api::{Auth, Call, Handled, Judged, Operation};
use crate::authz::Access;
use crate::http::Reply;
use crate::state::AppState;

pub fn route(parts: &http::request::Parts) -> Option<Box<dyn Operation>> {
    let path = parts.uri.path();
    match parts.method {
        Method::POST if path == "/getHLSStreamingSessionURL" => {
            Some(Box::new(StreamCall::HlsSession))
        }
        Method::POST if path == "/getDASHStreamingSessionURL" => {
            Some(Box::new(StreamCall::DashSession))
        }
        Method::POST if path == "/getClip" => Some(Box::new(StreamCall::Clip)),
        Method::POST if path == "/getImages" => Some(Box::new(StreamCall::Images)),
        Method::GET | Method::HEAD if path.starts_with("/hls/v1/") => Some(Box::new(HlsResource)),
        Method::GET | Method::HEAD if path.starts_with("/dash/v1/") => Some(Box::new(DashResource)),
        _ => None,
    }
}

/// The signed calls: each judged on the stream its body names.
#[derive(Clone, Copy)]
enum StreamCall {
    HlsSession,
    DashSession,
    Clip,
    Images,
}

impl Operation for StreamCall {
    fn access<'a>(&'a self, state: &'a AppState, call: &'a Call) -> Judged<'a> {
        Box::pin(async move {
            let n = naming(call.bytes());
            Some(Access {
                action: match self {
                    Self::HlsSession => "kinesisvideo:GetHLSStreamingSessionURL",
                    Self::DashSession => "kinesisvideo:GetDASHStreamingSessionURL",
                    Self::Clip => "kinesisvideo:GetClip",
                    Self::Images => "kinesisvideo:GetImages",
                },
                resource: named(state, ResourceType::Stream, n.stream_arn, n.stream_name).await,
                denied: ErrorKind::NotAuthorized,
            })
        })
    }

    fn handle<'a>(&'a self, state: &'a Arc<AppState>, call: Call) -> Handled<'a> {
        Box::pin(async move {
            match self {
                Self::HlsSession => issue::session_url(state, &call, session::Protocol::Hls).await,
                Self::DashSession => {
                    issue::session_url(state, &call, session::Protocol::Dash).await
                }
                Self::Clip => clip::get_clip(state, &call).await,
                Self::Images => images::get_images(state, &call).await,
            }
        })
    }
}

/// A resource under an HLS session URL: opened by its session token.
struct HlsResource;

impl Operation for HlsResource {
    fn auth(&self) -> Auth {
        Auth::SessionToken
    }

    fn handle<'a>(&'a self, state: &'a Arc<AppState>, call: Call) -> Handled<'a> {
        Box::pin(async move { hls::resource(state, &call).await })
    }
}

/// A resource under a DASH session URL: opened by its session token.
struct DashResource;

impl Operation for DashResource {
    fn auth(&self) -> Auth {
        Auth::SessionToken
    }

    fn handle<'a>(&'a self, state: &'a Arc<AppState>, call: Call) -> Handled<'a> {
        Box::pin(async move { dash::resource(state, &call).await })
    }
}

/// A session resource's request: its query, its opened session, the stream's media log.
async fn open(
    state: &AppState,
    call: &Call,
    protocol: session::Protocol,
) -> Result<(Query, session::Session, Arc<oxbow_store::StreamLog>), ApiError> {
    let query = Query::of(call);
    let token = query.required("SessionToken")?;
    let session = session::Session::open(token, &state.playback_key, protocol, now_ms())?;
    // The media key is `<name>-<creation ms>`.
    let suffix = format!("-{}", session.creation_ms);
    let name = session.stream_key.strip_suffix(&suffix).unwrap_or_default();
    let log = crate::media::open_log_for_reading(state, &session.stream_key, name).await?;
    Ok((query, session, log))
}

/// `getMP4InitFragment.mp4?TrackNumber=&SequenceNumber=`: the init segment of a track under
/// one stream header (the sequence number names the header).
fn init(
    state: &AppState,
    query: &Query,
    session: &session::Session,
    log: &oxbow_store::StreamLog,
) -> Result<Reply, ApiError> {
    let header_id: u32 = query
        .get("SequenceNumber")
        .unwrap_or("0")
        .parse()
        .map_err(|_| ApiError::invalid_argument("SequenceNumber must be a number."))?;
    let bytes = segments::init_segment(
        &state.segment_cache,
        &session.stream_key,
        log,
        header_id,
        query.number("TrackNumber")?,
    )?;
    Ok(reply(bytes, "video/mp4"))
}

/// What a playlist or manifest lists now, and the tracks it describes: those of its first
/// fragment (or of the newest, before any is listed).
struct Listed {
    window: select::Window,
    tracks: Vec<oxbow_package::Track>,
    header_id: u32,
    /// Peak bits per second over the listed fragments.
    bandwidth: u64,
    now_ms: i64,
}

impl Listed {
    fn now(session: &session::Session, log: &oxbow_store::StreamLog) -> Result<Self, ApiError> {
        let now = now_ms();
        let fragments = log.fragments();
        let window = select::window(session, &fragments, now);
        let header_id = window
            .entries
            .first()
            .map(|e| e.meta.header_id)
            .or_else(|| fragments.last().map(|m| m.header_id))
            .ok_or_else(|| {
                ApiError::new(ErrorKind::ResourceNotFound, "The stream has no media.")
            })?;
        let tracks = segments::tracks_of(&segments::header(log, header_id)?, true)?;
        let bandwidth = window
            .entries
            .iter()
            .filter(|e| e.meta.duration_ms > 0)
            .map(|e| e.meta.size * 8 * 1000 / e.meta.duration_ms as u64)
            .max()
            .unwrap_or(1_000_000);
        Ok(Self {
            window,
            tracks,
            header_id,
            bandwidth,
            now_ms: now,
        })
    }
}

/// A media segment of the fragment the protocol's query named (`None`: not one of the
/// session's).
async fn media(
    state: &AppState,
    session: &session::Session,
    log: &Arc<oxbow_store::StreamLog>,
    seq: Option<u64>,
    packaging: segments::Packaging,
) -> Result<Reply, ApiError> {
    let seq = seq.ok_or_else(|| {
        ApiError::new(
            ErrorKind::ResourceNotFound,
            "The fragment is not part of this streaming session.",
        )
    })?;
    let bytes = segments::media_segment(
        &state.segment_cache,
        &session.stream_key,
        log,
        seq,
        packaging,
    )
    .await?;
    let kind = match packaging {
        segments::Packaging::Fmp4 { .. } => "video/mp4",
        segments::Packaging::Ts => "video/mp2t",
    };
    Ok(reply(bytes, kind))
}

/// A request's time range in epoch milliseconds, each end a time at all.
fn range_ms(start: f64, end: f64) -> Result<(i64, i64), ApiError> {
    if !oxbow_core::time::is_time(start) || !oxbow_core::time::is_time(end) {
        return Err(ApiError::invalid_argument(
            "A timestamp must be a time from the epoch to the year 9999.",
        ));
    }
    Ok((
        (start * 1000.0).round() as i64,
        (end * 1000.0).round() as i64,
    ))
}

/// The stream a read of the archive names and its media log: it must exist and keep data
/// (`api` names the call in the NoDataRetention message).
async fn archive(
    state: &AppState,
    target: &crate::resource::Target,
    api: &str,
) -> Result<(oxbow_catalog::StreamRecord, Arc<oxbow_store::StreamLog>), ApiError> {
    let stream: oxbow_catalog::StreamRecord =
        crate::resource::lookup::get(state, target, crate::resource::Need::Live).await?;
    if stream.retention_hours == 0 {
        return Err(ApiError::new(
            ErrorKind::NoDataRetention,
            format!("The stream does not retain data: {api} needs a data retention period greater than 0."),
        ));
    }
    let key = crate::resource::media_key(&stream);
    let log = crate::media::open_log_for_reading(state, &key, &stream.name).await?;
    Ok((stream, log))
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn reply(bytes: impl Into<bytes::Bytes>, content_type: &'static str) -> Reply {
    let mut r = http::Response::new(crate::http::full(bytes.into()));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    r
}

/// A session resource's query: its members by name.
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    fn of(call: &Call) -> Self {
        Self(
            form_urlencoded::parse(call.parts.uri.query().unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)
            .ok_or_else(|| ApiError::invalid_argument(format!("{name} is required.")))
    }

    fn number(&self, name: &str) -> Result<u64, ApiError> {
        self.required(name)?
            .parse()
            .map_err(|_| ApiError::invalid_argument(format!("{name} must be a number.")))
    }
}

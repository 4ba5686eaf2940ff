//! The media data plane: PutMedia (ingest with acknowledgements), GetMedia (archive then live),
//! ListFragments and GetMediaForFragmentList. Fragments live in `oxbow-store`; this module
//! turns HTTP into store operations and back.

mod body;
mod chunk;
mod get;
mod ingest;
mod list;
mod put;
mod reader;

pub use crate::resource::FragmentNumber;
pub use body::ChannelBody;
pub use put::put_media;
pub(crate) use put::{start_ingest, Session as IngestSession};

use std::borrow::Cow;
use std::sync::Arc;

use http::{HeaderMap, Method};
use oxbow_core::{ApiError, ErrorKind, ResourceType};

use crate::access::{named, naming};
use crate::api::{Auth, Call, CallBody, Handled, Judged, Operation, Payload};
use crate::auth::SERVICE;
use crate::authz::Access;
use crate::http::Reply;
use crate::state::AppState;

/// A media operation that reads a JSON request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaOp {
    GetMedia,
    ListFragments,
    GetMediaForFragmentList,
}

impl MediaOp {
    pub fn from_path(path: &str) -> Option<Self> {
        match path {
            "/getMedia" => Some(Self::GetMedia),
            "/listFragments" => Some(Self::ListFragments),
            "/getMediaForFragmentList" => Some(Self::GetMediaForFragmentList),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::GetMedia => "GetMedia",
            Self::ListFragments => "ListFragments",
            Self::GetMediaForFragmentList => "GetMediaForFragmentList",
        }
    }

    /// The IAM action, `kinesisvideo:<name>`.
    pub fn action(self) -> &'static str {
        match self {
            Self::GetMedia => "kinesisvideo:GetMedia",
            Self::ListFragments => "kinesisvideo:ListFragments",
            Self::GetMediaForFragmentList => "kinesisvideo:GetMediaForFragmentList",
        }
    }
}

/// Routes the media operations: `POST /putMedia` and the three that read a JSON body.
pub fn route(parts: &http::request::Parts) -> Option<Box<dyn Operation>> {
    if parts.method != Method::POST {
        return None;
    }
    match parts.uri.path() {
        "/putMedia" => Some(Box::new(PutMedia)),
        path => MediaOp::from_path(path).map(|op| Box::new(op) as Box<dyn Operation>),
    }
}

impl Operation for MediaOp {
    fn access<'a>(&'a self, state: &'a AppState, call: &'a Call) -> Judged<'a> {
        Box::pin(async move {
            // StreamName/StreamARN are top-level members in all three.
            let n = naming(call.bytes());
            Some(Access {
                action: self.action(),
                resource: named(state, ResourceType::Stream, n.stream_arn, n.stream_name).await,
                denied: ErrorKind::NotAuthorized,
            })
        })
    }

    fn handle<'a>(&'a self, state: &'a Arc<AppState>, call: Call) -> Handled<'a> {
        Box::pin(async move { dispatch(*self, call.bytes(), state).await })
    }
}

/// PutMedia: its body streams into the session, so the producer SDK signs it as empty.
struct PutMedia;

impl Operation for PutMedia {
    fn auth(&self) -> Auth {
        Auth::SigV4 {
            service: SERVICE,
            payload: Payload::Streamed,
        }
    }

    /// Judged on the stream its headers name.
    fn access<'a>(&'a self, state: &'a AppState, call: &'a Call) -> Judged<'a> {
        Box::pin(async move {
            let headers: &HeaderMap = &call.parts.headers;
            let header = |k: &str| {
                headers
                    .get(k)
                    .and_then(|v| v.to_str().ok())
                    .map(Cow::Borrowed)
            };
            let resource = named(
                state,
                ResourceType::Stream,
                header("x-amzn-stream-arn"),
                header("x-amzn-stream-name"),
            )
            .await;
            Some(Access {
                action: "kinesisvideo:PutMedia",
                resource,
                denied: ErrorKind::NotAuthorized,
            })
        })
    }

    fn handle<'a>(&'a self, state: &'a Arc<AppState>, call: Call) -> Handled<'a> {
        Box::pin(async move {
            let CallBody::Streamed(body) = call.body else {
                return Err(ApiError::internal(
                    "PutMedia's body was read before its session",
                ));
            };
            put_media(Arc::clone(state), &call.parts.headers, body).await
        })
    }
}

async fn dispatch(op: MediaOp, body: &[u8], state: &Arc<AppState>) -> Result<Reply, ApiError> {
    use crate::input::parse;
    match op {
        MediaOp::GetMedia => get::get_media(state, parse(body)?).await,
        MediaOp::ListFragments => list::list_fragments(state, parse(body)?).await,
        MediaOp::GetMediaForFragmentList => get::get_for_list(state, parse(body)?).await,
    }
}

/// The media log of a stream incarnation, opened (and recovered) on first use.
async fn open_log(
    store: &Arc<oxbow_store::Store>,
    key: &str,
) -> Result<Arc<oxbow_store::StreamLog>, ApiError> {
    store
        .open_stream(key)
        .await
        .map_err(|e| ApiError::dependency("open the stream's media log", e))
}

/// The media log of a stream for a reader. In a cluster a node that does not own the stream
/// first adds what the owner stored since this node last looked, so an archived read
/// (ListFragments, GetMedia from a past fragment, GetMediaForFragmentList, HLS/DASH/clips)
/// that reached it directly sees what the owner had stored when it was asked (one LIST).
pub(crate) async fn open_log_for_reading(
    state: &AppState,
    key: &str,
    stream_name: &str,
) -> Result<Arc<oxbow_store::StreamLog>, ApiError> {
    let log = open_log(&state.store, key).await?;
    if state.owns_stream(stream_name) {
        return Ok(log);
    }
    let following = Arc::clone(&log);
    match tokio::task::spawn_blocking(move || following.catch_up()).await {
        Ok(Ok(0)) | Err(_) => {}
        Ok(Ok(n)) => {
            tracing::debug!(stream = %stream_name, fragments = n, "caught up with the owner")
        }
        // The view as it was is still right, only older: serve it.
        Ok(Err(e)) => {
            tracing::warn!(stream = %stream_name, error = %e, "cannot read what the owner stored since; serving the older view")
        }
    }
    Ok(log)
}

/// Holds a transfer to `max_bytes_per_sec` (0: unlimited): sleeps while `bytes` moved since
/// `started` are ahead of the rate. KVS reads PutMedia at most at 12.5 MB/s and sends GetMedia
/// at most at 25 MB/s per stream.
pub(crate) async fn throttle(bytes: u64, started: std::time::Instant, max_bytes_per_sec: u64) {
    if max_bytes_per_sec == 0 {
        return;
    }
    let due = std::time::Duration::from_secs_f64(bytes as f64 / max_bytes_per_sec as f64);
    let elapsed = started.elapsed();
    if due > elapsed + std::time::Duration::from_millis(5) {
        tokio::time::sleep(due - elapsed).await;
    }
}

/// Refuses a media call past the per-stream rate (KVS: 5 calls per second per stream).
pub(crate) fn check_rate(state: &AppState, key: &str, api: &'static str) -> Result<(), ApiError> {
    state.limit_rate(key, api, state.config.limits.media_tps_per_stream, "stream")
}

pub(crate) use oxbow_core::time::{is_time, MAX_TIME_MS};

/// Epoch milliseconds as the decimal seconds KVS writes in MKV tags (`1726677687.758`).
pub fn tag_seconds(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

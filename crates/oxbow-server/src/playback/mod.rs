//! Playback: streaming sessions that players follow. GetHLSStreamingSessionURL checks the
//! request and the stream and returns a URL carrying a sealed session ([`session`]); the
//! playlists and segments under that URL are opened by the session token alone, selected by
//! the pure rules of [`select`] and packaged by `oxbow-package` ([`segments`]).

mod hls;
mod issue;
mod segments;
mod select;
mod session;

pub use session::load_or_create_key;

use std::sync::Arc;

use http::Method;
use oxbow_core::{ApiError, ErrorKind, ResourceType};

use crate::access::{named, naming};
use crate::api::{Auth, Call, Handled, Judged, Operation};
use crate::authz::Access;
use crate::state::AppState;

pub fn route(parts: &http::request::Parts) -> Option<Box<dyn Operation>> {
    let path = parts.uri.path();
    match parts.method {
        Method::POST if path == "/getHLSStreamingSessionURL" => Some(Box::new(IssueHls)),
        Method::GET | Method::HEAD if path.starts_with("/hls/v1/") => Some(Box::new(HlsResource)),
        _ => None,
    }
}

/// GetHLSStreamingSessionURL: signed and judged on the stream it names.
struct IssueHls;

impl Operation for IssueHls {
    fn access<'a>(&'a self, state: &'a AppState, call: &'a Call) -> Judged<'a> {
        Box::pin(async move {
            let n = naming(call.bytes());
            Some(Access {
                action: "kinesisvideo:GetHLSStreamingSessionURL",
                resource: named(state, ResourceType::Stream, n.stream_arn, n.stream_name).await,
                denied: ErrorKind::NotAuthorized,
            })
        })
    }

    fn handle<'a>(&'a self, state: &'a Arc<AppState>, call: Call) -> Handled<'a> {
        Box::pin(async move { hls::issue(state, &call).await })
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

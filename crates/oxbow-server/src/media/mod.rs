//! The media data plane: PutMedia (ingest with acknowledgements), GetMedia (archive then live),
//! ListFragments and GetMediaForFragmentList. Fragments live in `oxbow-store`; this module
//! turns HTTP into store operations and back.

mod body;
mod chunk;
mod get;
mod list;
mod numbers;
mod put;

pub use body::ChannelBody;
pub use numbers::FragmentNumber;
pub use put::put_media;

use oxbow_catalog::StreamRecord;

use crate::front::Reply;
use crate::state::AppState;
use oxbow_core::ApiError;

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
}

pub async fn dispatch(
    op: MediaOp,
    body: &[u8],
    state: &std::sync::Arc<AppState>,
) -> Result<Reply, ApiError> {
    use crate::control::parse;
    match op {
        MediaOp::GetMedia => get::get_media(state, parse(body)?).await,
        MediaOp::ListFragments => list::list_fragments(state, parse(body)?).await,
        MediaOp::GetMediaForFragmentList => get::get_for_list(state, parse(body)?).await,
    }
}

/// The store key of a stream incarnation: its name and creation time, so a recreated stream
/// of the same name never sees the old one's media.
pub fn media_key(s: &StreamRecord) -> String {
    format!("{}-{}", s.name, s.creation_ms)
}

/// Epoch milliseconds as the decimal seconds KVS writes in MKV tags (`1726677687.758`).
pub fn tag_seconds(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

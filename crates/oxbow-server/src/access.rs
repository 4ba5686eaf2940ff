//! What each API asks permission for: its IAM action (`kinesisvideo:<Api>`), the ARN of the
//! resource the request names, and the error a denial gets. The spec declares
//! NotAuthorizedException for the stream APIs and the media data plane and
//! AccessDeniedException for the channel, tagging, configuration and edge APIs.
//!
//! A request that names a resource by name is judged against the resource's real ARN; a
//! resource that does not exist yet is judged against the ARN it would get if created now, so
//! `stream/cam-1/*` patterns work for CreateStream and for requests that then get a 404.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use http::HeaderMap;
use oxbow_catalog::Table;
use oxbow_core::time::now_ms;
use oxbow_core::{ErrorKind, ResourceType};
use serde::Deserialize;

use crate::authz::Access;
use crate::control::{lookup::Managed, Op};
use crate::media::MediaOp;
use crate::state::AppState;

/// Where a request names its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Names {
    Stream,
    Channel,
    /// `ResourceARN` (TagResource and friends).
    AnyArn,
    /// No particular resource (the List operations).
    Nothing,
}

fn names(op: Op) -> Names {
    use Op::*;
    match op {
        ListStreams | ListSignalingChannels | ListEdgeAgentConfigurations => Names::Nothing,
        TagResource | UntagResource | ListTagsForResource => Names::AnyArn,
        CreateSignalingChannel
        | DescribeSignalingChannel
        | DeleteSignalingChannel
        | UpdateSignalingChannel
        | GetSignalingChannelEndpoint
        | DescribeMediaStorageConfiguration
        | UpdateMediaStorageConfiguration => Names::Channel,
        _ => Names::Stream,
    }
}

/// The error a denied control-plane call answers with.
pub fn denied_error(op: Op) -> ErrorKind {
    use Op::*;
    match op {
        CreateStream
        | DescribeStream
        | ListStreams
        | DeleteStream
        | UpdateStream
        | UpdateDataRetention
        | GetDataEndpoint
        | TagStream
        | UntagStream
        | ListTagsForStream
        | ListEdgeAgentConfigurations => ErrorKind::NotAuthorized,
        _ => ErrorKind::AccessDenied,
    }
}

/// The members that name a request's resource, borrowed from the body where they need no
/// unescaping; everything else in the body is skipped unparsed. A body that does not parse
/// names nothing (the handler then reports why).
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Naming<'a> {
    #[serde(borrow)]
    stream_name: Option<Cow<'a, str>>,
    #[serde(rename = "StreamARN", borrow)]
    stream_arn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    channel_name: Option<Cow<'a, str>>,
    #[serde(rename = "ChannelARN", borrow)]
    channel_arn: Option<Cow<'a, str>>,
    #[serde(rename = "ResourceARN", borrow)]
    resource_arn: Option<Cow<'a, str>>,
}

fn naming(body: &[u8]) -> Naming<'_> {
    serde_json::from_slice(body).unwrap_or_default()
}

/// `*`: the resource of requests that name none.
fn anything() -> Arc<str> {
    static ANY: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("*"));
    Arc::clone(&ANY)
}

/// The permission a control-plane request needs.
pub async fn control(state: &AppState, op: Op, body: &[u8]) -> Access {
    let n = naming(body);
    let resource = match names(op) {
        Names::Nothing => anything(),
        Names::AnyArn => n
            .resource_arn
            .map_or_else(anything, |a| Arc::from(a.as_ref())),
        Names::Stream => named(state, ResourceType::Stream, n.stream_arn, n.stream_name).await,
        Names::Channel => named(state, ResourceType::Channel, n.channel_arn, n.channel_name).await,
    };
    Access {
        action: op.action(),
        resource,
        denied: denied_error(op),
    }
}

/// The permission a GetMedia, ListFragments or GetMediaForFragmentList request needs.
pub async fn media(state: &AppState, op: MediaOp, body: &[u8]) -> Access {
    // StreamName/StreamARN are top-level members in all three.
    let n = naming(body);
    Access {
        action: op.action(),
        resource: named(state, ResourceType::Stream, n.stream_arn, n.stream_name).await,
        denied: ErrorKind::NotAuthorized,
    }
}

/// The permission a PutMedia request needs (the stream is named in headers).
pub async fn put_media(state: &AppState, headers: &HeaderMap) -> Access {
    let header = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(Cow::Borrowed)
    };
    Access {
        action: "kinesisvideo:PutMedia",
        resource: named(
            state,
            ResourceType::Stream,
            header("x-amzn-stream-arn"),
            header("x-amzn-stream-name"),
        )
        .await,
        denied: ErrorKind::NotAuthorized,
    }
}

/// The permission to connect to a channel's signaling as master or viewer.
pub fn connect(channel_arn: &str, as_master: bool) -> Access {
    Access {
        action: if as_master {
            "kinesisvideo:ConnectAsMaster"
        } else {
            "kinesisvideo:ConnectAsViewer"
        },
        resource: Arc::from(channel_arn),
        denied: ErrorKind::AccessDenied,
    }
}

/// The ARN a request names: the given ARN, else the named resource's ARN, else (no such
/// resource yet) the ARN it would get now; `*` if the request names nothing.
async fn named(
    state: &AppState,
    kind: ResourceType,
    arn: Option<Cow<'_, str>>,
    name: Option<Cow<'_, str>>,
) -> Arc<str> {
    if let Some(arn) = arn {
        return Arc::from(arn.as_ref());
    }
    let Some(name) = name.as_deref() else {
        return anything();
    };
    if let Some(arn) = state.authz.known_arn(kind, name) {
        return arn;
    }
    let existing = match kind {
        ResourceType::Stream => current_arn(state.catalog.streams(), name).await,
        ResourceType::Channel => current_arn(state.catalog.channels(), name).await,
    };
    match existing {
        Some(arn) => {
            let arn: Arc<str> = Arc::from(arn);
            state.authz.remember_arn(kind, name, Arc::clone(&arn));
            arn
        }
        None => Arc::from(state.arn(kind, name, now_ms())),
    }
}

/// The ARN of the live record called `name`, if any. Callers cache it: every change to a
/// stream or channel goes through `control::lookup`, which forgets the cached ARN.
async fn current_arn<T: Managed>(table: &dyn Table<T>, name: &str) -> Option<String> {
    let record = table.get(name).await.ok().flatten()?;
    record
        .lifecycle()
        .at(now_ms())
        .map(|_| record.arn().to_string())
}

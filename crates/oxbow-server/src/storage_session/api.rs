//! JoinStorageSession (`POST /joinStorageSession`, on the WEBRTC endpoint): a camera asks the
//! channel's storage session to offer to it. Judged as seed 004 says: the caller needs
//! `kinesisvideo:JoinStorageSession` on the channel, and, since the recording is written on
//! its behalf, DescribeStream, GetDataEndpoint and PutMedia on the stream the channel stores
//! into. The 200 comes at once; the offer follows over the signaling WebSocket.
//!
//! The C SDK sends a viewer's join to this same path with a `clientId`; viewers through the
//! storage session are not served by this version (see `unbuilt.rs` for the viewer API).

use std::sync::Arc;

use http::{Method, StatusCode};
use oxbow_catalog::{ChannelRecord, StreamRecord};
use oxbow_core::validate::{self as v, Checks};
use oxbow_core::{ApiError, ErrorKind};
use serde::Deserialize;

use super::{session, Command, Delivery};
use crate::api::{Call, Handled, Judged, Operation};
use crate::authz::Access;
use crate::http::{forbidden_on_denial, json, Reply};
use crate::resource::lookup::{self, Need};
use crate::resource::{channel_arn_target, check_client_id};
use crate::state::AppState;

/// Joins per second per channel (ClientLimitExceeded past it).
const TPS_PER_CHANNEL: u32 = 5;

pub fn route(parts: &http::request::Parts) -> Option<Box<dyn Operation>> {
    (parts.method == Method::POST && parts.uri.path() == "/joinStorageSession")
        .then(|| Box::new(JoinStorageSession) as Box<dyn Operation>)
}

struct JoinStorageSession;

/// The body, in the camelCase the API uses (and the PascalCase of the rest of KVS, which a
/// hand-written client may send).
#[derive(Deserialize)]
struct Request {
    #[serde(rename = "channelArn", alias = "ChannelARN", alias = "channelARN")]
    channel_arn: Option<String>,
    #[serde(rename = "clientId", alias = "ClientId")]
    client_id: Option<String>,
}

fn channel_arn(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Request>(body)
        .ok()
        .and_then(|r| r.channel_arn)
}

impl Operation for JoinStorageSession {
    fn access<'a>(&'a self, _state: &'a AppState, call: &'a Call) -> Judged<'a> {
        Box::pin(async move {
            Some(Access {
                action: "kinesisvideo:JoinStorageSession",
                resource: channel_arn(call.bytes())
                    .map(Arc::from)
                    .unwrap_or_else(crate::access::anything),
                denied: ErrorKind::AccessDenied,
            })
        })
    }

    fn handle<'a>(&'a self, state: &'a Arc<AppState>, call: Call) -> Handled<'a> {
        Box::pin(async move { join(state, call).await })
    }

    /// AccessDeniedException is 403 on this API, as its reference declares.
    fn error(&self, e: &ApiError, request_id: &str) -> Reply {
        forbidden_on_denial(e, request_id)
    }
}

async fn join(state: &Arc<AppState>, call: Call) -> Result<Reply, ApiError> {
    let req: Request = crate::input::parse(call.bytes())?;
    let mut checks = Checks::new();
    checks.string("channelArn", req.channel_arn.as_deref(), &v::RESOURCE_ARN);
    let target = channel_arn_target(state, req.channel_arn.as_deref(), &mut checks)?;
    if let Some(id) = req.client_id.as_deref() {
        check_client_id(id)?;
        return Err(ApiError::new(
            ErrorKind::NotImplemented,
            "Viewers joining a storage session (JoinStorageSession with a clientId) are not implemented by this version of Oxbow.",
        ));
    }
    let channel: ChannelRecord = lookup::get(state, &target, Need::Active).await?;
    state.limit_rate(
        &channel.arn,
        "JoinStorageSession",
        TPS_PER_CHANNEL,
        "channel",
    )?;
    let Some(stream_arn) = stored_in(&channel) else {
        return Err(ApiError::invalid_argument(
            "The channel's media storage configuration is not ENABLED: call UpdateMediaStorageConfiguration first.",
        ));
    };
    // The recording is written on the caller's behalf: it needs the stream rights a
    // producer needs, on the stream as configured.
    let key = call.key()?;
    for action in [
        "kinesisvideo:DescribeStream",
        "kinesisvideo:GetDataEndpoint",
        "kinesisvideo:PutMedia",
    ] {
        let access = Access {
            action,
            resource: Arc::from(stream_arn.as_str()),
            denied: ErrorKind::AccessDenied,
        };
        state.authz.authorize(key, &access, call.env()).await?;
    }
    let stream_target = lookup::target::<StreamRecord>(
        state,
        None,
        Some(stream_arn.as_str()),
        ErrorKind::ResourceNotFound,
    )?;
    let stream: StreamRecord = lookup::get(state, &stream_target, Need::Active).await?;
    // The newest join wins: a running session offers again; otherwise one starts.
    match state
        .storage_sessions
        .command(&channel.arn, Command::JoinMaster)
    {
        Ok(()) => {}
        Err(Delivery::Busy) => {
            return Err(ApiError::new(
                ErrorKind::ClientLimitExceeded,
                "The storage session of this channel is busy; call again.",
            ))
        }
        Err(Delivery::NotRunning(first)) => session::start(state, channel, stream, first).await?,
    }
    Ok(json(StatusCode::OK, bytes::Bytes::new()))
}

/// The stream an ENABLED media storage configuration names.
fn stored_in(channel: &ChannelRecord) -> Option<String> {
    let m = channel.media_storage.as_ref()?;
    (m.get("Status")?.as_str()? == "ENABLED")
        .then(|| m.get("StreamARN")?.as_str().map(str::to_string))
        .flatten()
}

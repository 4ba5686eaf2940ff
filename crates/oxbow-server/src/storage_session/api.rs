//! JoinStorageSession and JoinStorageSessionAsViewer (`POST /joinStorageSession`,
//! `POST /joinStorageSessionAsViewer`, on the WEBRTC endpoint): a camera, or a viewer naming
//! its `clientId`, asks the channel's storage session to offer to it. Judged as seed 004 says:
//! the operation's action on the channel, and, since media is stored on the caller's behalf,
//! DescribeStream, GetDataEndpoint and PutMedia on the stream the channel stores into ("both
//! Master and Viewer roles"). The 200 comes at once for a camera; a viewer's comes once it has
//! a seat (at most three). The offer follows over the signaling WebSocket.
//!
//! The C SDK sends a viewer's join to `/joinStorageSession` with a `clientId`: that is a
//! viewer's join too.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use oxbow_catalog::{ChannelRecord, StreamRecord};
use oxbow_core::validate::{self as v, Checks};
use oxbow_core::{ApiError, ErrorKind};
use serde::Deserialize;
use tokio::sync::oneshot;

use super::{session, Command, Delivery};
use crate::api::{Call, Handled, Judged, Operation};
use crate::authz::Access;
use crate::http::{forbidden_on_denial, json, Reply};
use crate::resource::lookup::{self, Need};
use crate::resource::{channel_arn_target, check_client_id};
use crate::state::AppState;

/// Joins per second per channel (ClientLimitExceeded past it).
const TPS_PER_CHANNEL: u32 = 5;

/// How long a viewer's join waits for its session to seat it.
const SEAT_WAIT: Duration = Duration::from_secs(5);

pub fn route(parts: &http::request::Parts) -> Option<Box<dyn Operation>> {
    if parts.method != Method::POST {
        return None;
    }
    let action = match parts.uri.path() {
        "/joinStorageSession" => "kinesisvideo:JoinStorageSession",
        "/joinStorageSessionAsViewer" => "kinesisvideo:JoinStorageSessionAsViewer",
        _ => return None,
    };
    Some(Box::new(Join { action }))
}

struct Join {
    action: &'static str,
}

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

impl Operation for Join {
    fn access<'a>(&'a self, _state: &'a AppState, call: &'a Call) -> Judged<'a> {
        Box::pin(async move {
            Some(Access {
                action: self.action,
                resource: channel_arn(call.bytes())
                    .map(Arc::from)
                    .unwrap_or_else(crate::access::anything),
                denied: ErrorKind::AccessDenied,
            })
        })
    }

    fn handle<'a>(&'a self, state: &'a Arc<AppState>, call: Call) -> Handled<'a> {
        let as_viewer = self.action.ends_with("AsViewer");
        Box::pin(async move { join(state, call, as_viewer).await })
    }

    /// AccessDeniedException is 403 on this API, as its reference declares.
    fn error(&self, e: &ApiError, request_id: &str) -> Reply {
        forbidden_on_denial(e, request_id)
    }
}

async fn join(state: &Arc<AppState>, call: Call, as_viewer: bool) -> Result<Reply, ApiError> {
    let req: Request = crate::input::parse(call.bytes())?;
    let mut checks = Checks::new();
    checks.string("channelArn", req.channel_arn.as_deref(), &v::RESOURCE_ARN);
    if as_viewer {
        checks.required("clientId", req.client_id.as_ref());
    }
    let target = channel_arn_target(state, req.channel_arn.as_deref(), &mut checks)?;
    let viewer = req.client_id.as_deref().map(check_client_id).transpose()?;
    let channel: ChannelRecord = lookup::get(state, &target, Need::Active).await?;
    let op = match viewer {
        None => "JoinStorageSession",
        Some(_) => "JoinStorageSessionAsViewer",
    };
    state.limit_rate(&channel.arn, op, TPS_PER_CHANNEL, "channel")?;
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
    // A running session takes the join (the newest camera wins); otherwise one starts.
    let (command, seated) = match viewer {
        None => (Command::JoinMaster, None),
        Some(id) => {
            let (tx, rx) = oneshot::channel();
            let command = Command::JoinViewer {
                client_id: id.to_string(),
                seated: tx,
            };
            (command, Some(rx))
        }
    };
    match state.storage_sessions.command(&channel.arn, command) {
        Ok(()) => {}
        Err(Delivery::Busy) => return Err(busy()),
        Err(Delivery::NotRunning(first)) => session::start(state, channel, stream, first).await?,
    }
    if let Some(seated) = seated {
        match tokio::time::timeout(SEAT_WAIT, seated).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                return Err(ApiError::new(
                    ErrorKind::ClientLimitExceeded,
                    "The maximum number of viewers connected to the session has been reached.",
                ))
            }
            _ => return Err(busy()),
        }
    }
    Ok(json(StatusCode::OK, bytes::Bytes::new()))
}

fn busy() -> ApiError {
    ApiError::new(
        ErrorKind::ClientLimitExceeded,
        "The storage session of this channel is busy; call again.",
    )
}

/// The stream an ENABLED media storage configuration names.
fn stored_in(channel: &ChannelRecord) -> Option<String> {
    let m = channel.media_storage.as_ref()?;
    (m.get("Status")?.as_str()? == "ENABLED")
        .then(|| m.get("StreamARN")?.as_str().map(str::to_string))
        .flatten()
}

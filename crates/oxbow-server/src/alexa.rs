//! SendAlexaOfferToMaster (`POST /v1/send-alexa-offer-to-master`): an Alexa device's SDP offer
//! goes to the channel's master as a signaling message from `SenderClientId`, and the HTTP
//! call returns the master's SDP answer. The caller joins the hub as a viewer without a socket
//! for as long as it waits: the offer is delivered as soon as the master is connected (it
//! waits in the channel's queue meanwhile), the answer addressed to the sender comes back
//! here, and ICE candidates for it are dropped (Alexa does not trickle). No answer within the
//! channel's message TTL is ResourceNotFound (no master answered).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use oxbow_catalog::ChannelRecord;
use oxbow_core::validate::{self as v, Checks, StrRule};
use oxbow_core::{ApiError, ErrorKind};
use serde::Deserialize;
use serde_json::json;

use crate::access::channel_in_body;
use crate::api::{Call, Handled, Judged, Operation};
use crate::http::json;
use crate::relay::{Out, Role};
use crate::resource::channel_arn_target;
use crate::resource::lookup::{self, Need};
use crate::state::AppState;

const TPS_PER_CHANNEL: u32 = 5;

static PAYLOAD: StrRule = StrRule {
    min: 1,
    max: 10_000,
    pattern: None,
};

pub fn route(parts: &http::request::Parts) -> Option<Box<dyn Operation>> {
    (parts.method == Method::POST && parts.uri.path() == "/v1/send-alexa-offer-to-master")
        .then(|| Box::new(SendAlexaOfferToMaster) as Box<dyn Operation>)
}

struct SendAlexaOfferToMaster;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    #[serde(rename = "ChannelARN")]
    channel_arn: Option<String>,
    sender_client_id: Option<String>,
    message_payload: Option<String>,
}

impl Operation for SendAlexaOfferToMaster {
    fn access<'a>(&'a self, state: &'a AppState, call: &'a Call) -> Judged<'a> {
        Box::pin(async move {
            Some(channel_in_body(state, "kinesisvideo:SendAlexaOfferToMaster", call.bytes()).await)
        })
    }

    fn handle<'a>(&'a self, state: &'a Arc<AppState>, call: Call) -> Handled<'a> {
        Box::pin(async move {
            let req: Request = crate::input::parse(call.bytes())?;
            let mut checks = Checks::new();
            checks
                .required("senderClientId", req.sender_client_id.as_ref())
                .string(
                    "senderClientId",
                    req.sender_client_id.as_deref(),
                    &v::CLIENT_ID,
                )
                .required("messagePayload", req.message_payload.as_ref())
                .string("messagePayload", req.message_payload.as_deref(), &PAYLOAD);
            if req.message_payload.as_deref().is_some_and(|p| {
                !p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
            }) {
                checks.custom("Value at 'messagePayload' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9+/=]+");
            }
            let target = channel_arn_target(state, req.channel_arn.as_deref(), &mut checks)?;
            let channel: ChannelRecord = lookup::get(state, &target, Need::Active).await?;
            state.limit_rate(
                &channel.arn,
                "SendAlexaOfferToMaster",
                TPS_PER_CHANNEL,
                "channel",
            )?;
            let sender = req.sender_client_id.unwrap_or_default();
            let ttl = Duration::from_secs(channel.message_ttl_seconds.clamp(5, 120) as u64);
            let (conn, mut inbox) = state
                .relay
                .connect(&channel.arn, ttl, Role::Viewer(sender))
                .map_err(|_| {
                    ApiError::new(
                        ErrorKind::ClientLimitExceeded,
                        "More than the supported maximum number of viewers are connected to the channel.",
                    )
                })?;
            let offer = json!({"action": "SDP_OFFER", "messagePayload": req.message_payload});
            state.relay.message(conn, &offer.to_string());
            let answer = tokio::time::timeout(ttl, async {
                while let Some(Out::Text(t)) = inbox.recv().await {
                    let Ok(m) = serde_json::from_str::<serde_json::Value>(&t) else {
                        continue;
                    };
                    if m["messageType"] == "SDP_ANSWER" {
                        return m["messagePayload"].as_str().map(str::to_string);
                    }
                }
                None
            })
            .await;
            state.relay.disconnect(conn);
            match answer {
                Ok(Some(answer)) => Ok(json(
                    StatusCode::OK,
                    Bytes::from(json!({ "Answer": answer }).to_string()),
                )),
                _ => Err(ApiError::new(
                    ErrorKind::ResourceNotFound,
                    "The channel's master did not answer the offer within the channel's message TTL.",
                )),
            }
        })
    }
}

//! GetIceServerConfig (`POST /v1/get-ice-server-config`): the TURN servers a peer of a
//! channel may relay through, with credentials that expire. They follow the TURN REST
//! convention (draft-uberti-behave-turn-rest, coturn's `use-auth-secret`): the username is
//! `<expiry>:<opaque>`, the password base64(HMAC-SHA1(secret, username)), so any TURN server
//! that shares the secret accepts them without asking Oxbow. The opaque part names the channel
//! (`v1:<ARN>`, as KVS does), which lets a TURN server apply per-channel quotas.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{Method, StatusCode};
use oxbow_catalog::ChannelRecord;
use oxbow_core::time::now_ms;
use oxbow_core::validate::{self as v, Checks};
use oxbow_core::{ApiError, ErrorKind};
use serde::Deserialize;
use serde_json::json;

use crate::access::channel_in_body;
use crate::api::{Call, Handled, Judged, Operation};
use crate::config::TurnConfig;
use crate::http::json;
use crate::resource::channel_arn_target;
use crate::resource::lookup::{self, Need};
use crate::state::AppState;

/// GetIceServerConfig calls per second per channel (KVS: 5).
const TPS_PER_CHANNEL: u32 = 5;

pub fn route(parts: &http::request::Parts) -> Option<Box<dyn Operation>> {
    (parts.method == Method::POST && parts.uri.path() == "/v1/get-ice-server-config")
        .then(|| Box::new(GetIceServerConfig) as Box<dyn Operation>)
}

struct GetIceServerConfig;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    #[serde(rename = "ChannelARN")]
    channel_arn: Option<String>,
    client_id: Option<String>,
    service: Option<String>,
    username: Option<String>,
}

impl Operation for GetIceServerConfig {
    fn access<'a>(&'a self, state: &'a AppState, call: &'a Call) -> Judged<'a> {
        Box::pin(async move {
            Some(channel_in_body(state, "kinesisvideo:GetIceServerConfig", call.bytes()).await)
        })
    }

    fn handle<'a>(&'a self, state: &'a Arc<AppState>, call: Call) -> Handled<'a> {
        Box::pin(async move {
            let req: Request = crate::input::parse(call.bytes())?;
            let mut checks = Checks::new();
            checks
                .string("clientId", req.client_id.as_deref(), &v::CLIENT_ID)
                .string("username", req.username.as_deref(), &v::CLIENT_ID)
                .one_of("service", req.service.as_deref(), &["TURN"]);
            let target = channel_arn_target(state, req.channel_arn.as_deref(), &mut checks)?;
            let channel: ChannelRecord = lookup::get(state, &target, Need::Active).await?;
            state.limit_rate(
                &channel.arn,
                "GetIceServerConfig",
                TPS_PER_CHANNEL,
                "channel",
            )?;
            let now = now_ms() / 1000;
            let servers = match (&state.config.turn, &state.turn) {
                (Some(external), _) => vec![ice_server(external, &channel.arn, now)],
                (None, Some(embedded)) => {
                    let turn = TurnConfig {
                        uris: embedded.uris(),
                        secret: state.turn_secret.clone(),
                        ttl_secs: 300,
                    };
                    let server = ice_server(&turn, &channel.arn, now);
                    let (user, password) =
                        (server["Username"].as_str(), server["Password"].as_str());
                    if let (Some(u), Some(p)) = (user, password) {
                        if !embedded.add_user(u.to_string(), p.to_string()) {
                            return Err(ApiError::new(
                                ErrorKind::ClientLimitExceeded,
                                "The TURN server cannot take more credentials now.",
                            ));
                        }
                    }
                    vec![server]
                }
                (None, None) => Vec::new(),
            };
            let body = json!({ "IceServerList": servers }).to_string();
            Ok(json(StatusCode::OK, Bytes::from(body)))
        })
    }
}

/// One IceServer entry with credentials valid from `now_secs` for the configured TTL.
fn ice_server(turn: &TurnConfig, channel_arn: &str, now_secs: i64) -> serde_json::Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let expiry = now_secs + turn.ttl_secs as i64;
    let username = format!("{expiry}:{}", b64.encode(format!("v1:{channel_arn}")));
    json!({
        "Password": rest_password(&turn.secret, &username),
        "Ttl": turn.ttl_secs,
        "Uris": turn.uris,
        "Username": username,
    })
}

/// The TURN REST password of `username`: base64(HMAC-SHA1(secret, username)).
pub fn rest_password(secret: &str, username: &str) -> String {
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_follow_the_turn_rest_convention() {
        let turn = TurnConfig {
            uris: vec!["turn:127.0.0.1:3478?transport=udp".into()],
            secret: "north".into(),
            ttl_secs: 300,
        };
        let arn = "arn:aws:kinesisvideo:us-east-1:123456789012:channel/door/1";
        let s = ice_server(&turn, arn, 1_700_000_000);
        let username = s["Username"].as_str().unwrap();
        let (expiry, opaque) = username.split_once(':').unwrap();
        assert_eq!(expiry, "1700000300");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(opaque)
            .unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), format!("v1:{arn}"));
        assert_eq!(s["Ttl"], 300);
        // RFC 2202 test case 2 (key "Jefe"), as a check of the HMAC-SHA1 itself.
        assert_eq!(
            rest_password("Jefe", "what do ya want for nothing?"),
            base64::engine::general_purpose::STANDARD
                .encode(hex::decode("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79").unwrap())
        );
    }
}

//! Camera-owner signaling URLs (seed 001, done right) and the authorization of the signaling
//! WebSocket handshake those URLs open.
//!
//! `GET /camera-url?channelName=<name>&role=VIEWER|MASTER[&clientId=<id>]`, signed by an app
//! user with their own keys, answers `{"signedURL": "wss://...", ...}` only if the catalog says
//! the user owns that very channel with that role (403 otherwise, before the channel's existence
//! is revealed). The URL is presigned with a fresh five-minute session key whose only right is
//! connecting to that channel in that role, so a leaked URL cannot be widened or reused later.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode};

use oxbow_auth::SigningParams;
use oxbow_catalog::{AccessKey, CameraOwnerRecord, ChannelRecord, SESSION_ISSUED_TO};
use oxbow_core::validate::{self as v, Checks};
use oxbow_core::{ApiError, ErrorKind};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::api::{Call, Handled, Operation};
use crate::authz::PrincipalRef;
use crate::http::{forbidden_on_denial, json, Reply};
use crate::resource::lookup::{self, Need, Target};
use crate::sessions::{self, SessionSpec};
use crate::state::AppState;

/// How long a camera URL's session key lives, and the URL's `X-Amz-Expires` (the SDKs use 299).
const SESSION_SECS: i64 = 300;
const URL_EXPIRES_SECS: u64 = 299;

/// Routes `GET /camera-url`.
pub fn route(parts: &http::request::Parts) -> Option<Box<dyn Operation>> {
    (parts.method == Method::GET && parts.uri.path() == "/camera-url")
        .then(|| Box::new(CameraUrl) as Box<dyn Operation>)
}

/// Judges the caller itself, on the catalog's ownership records.
struct CameraUrl;

impl Operation for CameraUrl {
    fn handle<'a>(&'a self, state: &'a Arc<AppState>, call: Call) -> Handled<'a> {
        Box::pin(async move {
            let v = camera_url(state, call.key()?, call.parts.uri.query()).await?;
            Ok(json(StatusCode::OK, Bytes::from(v.to_string())))
        })
    }

    fn error(&self, e: &ApiError, request_id: &str) -> Reply {
        forbidden_on_denial(e, request_id)
    }
}

fn query_map(query: Option<&str>) -> BTreeMap<String, String> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn not_owner(channel: &str, role: &str) -> ApiError {
    ApiError::new(
        ErrorKind::AccessDenied,
        format!("You do not own a camera on channel {channel} with role {role}."),
    )
}

/// Answers `GET /camera-url` for the authenticated `key`.
async fn camera_url(
    state: &AppState,
    key: &AccessKey,
    query: Option<&str>,
) -> Result<Value, ApiError> {
    let q = query_map(query);
    let channel = q.get("channelName").map(String::as_str);
    let role = q.get("role").map(String::as_str).unwrap_or("VIEWER");
    let client_id = q.get("clientId").map(String::as_str);
    Checks::new()
        .required("channelName", channel)
        .string("channelName", channel, &v::CHANNEL_NAME)
        .finish()?;
    let channel = channel.unwrap_or_default();
    if role != "VIEWER" && role != "MASTER" {
        return Err(ApiError::invalid_argument("role must be VIEWER or MASTER."));
    }
    check_owner(state, key, channel, role).await?;
    let target = Target {
        name: channel.to_string(),
        arn: None,
    };
    let record: ChannelRecord = lookup::get(state, &target, Need::Live).await?;
    let client_id = match (role, client_id) {
        ("MASTER", _) => None,
        (_, Some(id)) => Some(crate::resource::check_client_id(id)?.to_string()),
        (_, None) => Some(oxbow_core::ids::request_id()),
    };
    let session = sessions::mint(
        state,
        SessionSpec {
            principal: "session".into(),
            duration_secs: SESSION_SECS,
            context: BTreeMap::from([(SESSION_ISSUED_TO.to_string(), key.principal.clone())]),
            session_policy: Some(session_policy(&record.arn, role)),
        },
    )
    .await?;
    let url = presigned_url(state, &session, &record.arn, client_id.as_deref());
    Ok(json!({
        "signedURL": url,
        "ChannelARN": record.arn,
        "Role": role,
        "ClientId": client_id,
        "Expiration": sessions::expiration(&session),
    }))
}

/// Root may ask for any channel; a user only for channels the catalog says they own.
async fn check_owner(
    state: &AppState,
    key: &AccessKey,
    channel: &str,
    role: &str,
) -> Result<(), ApiError> {
    let owner = match PrincipalRef::parse(&key.principal) {
        Some(PrincipalRef::Root) => return Ok(()),
        Some(PrincipalRef::User(name)) => name,
        _ => return Err(not_owner(channel, role)),
    };
    let record = state
        .catalog
        .camera_owners()
        .get(&CameraOwnerRecord::key_for(owner, channel))
        .await
        .map_err(|e| ApiError::dependency("read the camera owners", e))?;
    match record {
        Some(r) if r.roles.iter().any(|x| x == role) => Ok(()),
        _ => Err(not_owner(channel, role)),
    }
}

/// The only rights the URL's session key has: this role on this channel (and, for viewers
/// and masters alike, the ICE servers of this channel).
fn session_policy(channel_arn: &str, role: &str) -> String {
    let connect = if role == "MASTER" {
        "kinesisvideo:ConnectAsMaster"
    } else {
        "kinesisvideo:ConnectAsViewer"
    };
    json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Action": [connect, "kinesisvideo:GetIceServerConfig"],
        "Resource": channel_arn,
    }]})
    .to_string()
}

fn presigned_url(
    state: &AppState,
    key: &AccessKey,
    channel_arn: &str,
    client_id: Option<&str>,
) -> String {
    let base = state.public_ws_url.trim_end_matches('/');
    let host = base.split_once("://").map(|(_, h)| h).unwrap_or(base);
    let mut params = vec![("X-Amz-ChannelARN", channel_arn)];
    if let Some(id) = client_id {
        params.push(("X-Amz-ClientId", id));
    }
    let signing = SigningParams {
        access_key_id: &key.access_key_id,
        secret_access_key: &key.secret_access_key,
        security_token: key.session_token.as_deref(),
        region: &state.config.region,
        service: crate::auth::SERVICE,
        time: OffsetDateTime::now_utc(),
    };
    let query = oxbow_auth::presign("GET", host, "/", &params, URL_EXPIRES_SECS, &signing);
    format!("{base}/?{query}")
}

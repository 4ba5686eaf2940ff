//! Endpoint discovery: GetDataEndpoint (where the media APIs of a stream are served) and
//! GetSignalingChannelEndpoint (where a channel's WebSocket, HTTPS and WebRTC APIs are).
//! Oxbow serves everything from one listener, so both hand out the configured public URL;
//! with `--public-url https://host` the URLs carry no port, which the KVS C SDKs require.

use oxbow_catalog::{ChannelRecord, StreamRecord};
use oxbow_core::validate::Checks;
use serde::Deserialize;
use serde_json::json;

use super::Reply;
use crate::resource::channel_arn_target as arn_target;
use crate::resource::lookup::{self, Need};
use crate::resource::StreamRef;
use crate::state::AppState;

const API_NAMES: &[&str] = &[
    "PUT_MEDIA",
    "GET_MEDIA",
    "LIST_FRAGMENTS",
    "GET_MEDIA_FOR_FRAGMENT_LIST",
    "GET_HLS_STREAMING_SESSION_URL",
    "GET_DASH_STREAMING_SESSION_URL",
    "GET_CLIP",
    "GET_IMAGES",
];

#[derive(Deserialize)]
pub struct GetDataEndpoint {
    #[serde(rename = "APIName")]
    api_name: Option<String>,
    #[serde(flatten)]
    stream: StreamRef,
}

pub async fn data(state: &AppState, req: GetDataEndpoint, endpoint: &str) -> Reply {
    let mut checks = Checks::new();
    checks.required("aPIName", req.api_name.as_ref()).one_of(
        "aPIName",
        req.api_name.as_deref(),
        API_NAMES,
    );
    let target = req.stream.resolve(state, &mut checks)?;
    let stream: StreamRecord = lookup::get(state, &target, Need::Live).await?;
    // In a cluster the stream's owner serves it: a producer asking where to write makes this
    // node the owner if nobody is.
    let owner = match &state.leases {
        Some(leases) => {
            let key = crate::leases::stream_key(&stream.name);
            if req.api_name.as_deref() == Some("PUT_MEDIA") {
                leases
                    .claim(state.catalog.as_ref(), &key)
                    .await?
                    .elsewhere()
            } else {
                leases.other_owner(state.catalog.as_ref(), &key).await
            }
        }
        None => None,
    };
    Ok(Some(
        json!({ "DataEndpoint": owner.as_deref().unwrap_or(endpoint) }),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointConfiguration {
    protocols: Option<Vec<String>>,
    role: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetSignalingChannelEndpoint {
    #[serde(rename = "ChannelARN")]
    channel_arn: Option<String>,
    single_master_channel_endpoint_configuration: Option<EndpointConfiguration>,
}

pub async fn signaling(state: &AppState, req: GetSignalingChannelEndpoint) -> Reply {
    let mut checks = Checks::new();
    let config = req.single_master_channel_endpoint_configuration;
    let protocols = config.as_ref().and_then(|c| c.protocols.clone());
    let field = "singleMasterChannelEndpointConfiguration";
    checks
        .count(
            &format!("{field}.protocols"),
            protocols.as_ref().map(Vec::len),
            1,
            5,
        )
        .one_of(
            &format!("{field}.role"),
            config.as_ref().and_then(|c| c.role.as_deref()),
            &["MASTER", "VIEWER"],
        );
    for p in protocols.iter().flatten() {
        checks.one_of(
            &format!("{field}.protocols.member"),
            Some(p),
            &["WSS", "HTTPS", "WEBRTC"],
        );
    }
    let target = arn_target(state, req.channel_arn.as_deref(), &mut checks)?;
    let channel: ChannelRecord = lookup::get(state, &target, Need::Active).await?;
    // In a cluster one node relays a channel: master and viewers that asked different nodes
    // are all sent to it (the node asked takes the channel if nobody has it).
    let owner = match &state.leases {
        Some(leases) => {
            let key = crate::leases::channel_key(&channel.name);
            leases
                .claim(state.catalog.as_ref(), &key)
                .await?
                .elsewhere()
        }
        None => None,
    };
    let (https, wss) = match &owner {
        Some(url) => (url.clone(), crate::leases::ws_url(url)),
        None => (state.public_url.clone(), state.public_ws_url.clone()),
    };
    let mut seen = Vec::new();
    for p in protocols.unwrap_or_else(|| vec!["WSS".into(), "HTTPS".into()]) {
        if !seen.contains(&p) {
            seen.push(p);
        }
    }
    let list: Vec<_> = seen
        .iter()
        .map(|p| {
            let endpoint = match p.as_str() {
                "WSS" => &wss,
                _ => &https,
            };
            json!({ "Protocol": p, "ResourceEndpoint": endpoint })
        })
        .collect();
    Ok(Some(json!({ "ResourceEndpointList": list })))
}

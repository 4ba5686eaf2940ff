//! WebRTC media storage: which stream a signaling channel's media is stored in
//! (Describe/UpdateMediaStorageConfiguration) and the reverse view from the stream
//! (DescribeMappedResourceConfiguration). A channel maps to at most one stream and a stream
//! to at most one channel.

use oxbow_catalog::{ChannelRecord, StreamRecord};
use oxbow_core::validate::{self as v, Checks};
use oxbow_core::{ApiError, ErrorKind};
use serde::Deserialize;
use serde_json::{json, Value};

use super::features::no_retention;
use super::Reply;
use crate::resource::lookup::{self, Need};
use crate::resource::StreamRef;
use crate::resource::{channel_arn_target as arn_target, ChannelRef};
use crate::state::AppState;

/// The `Type` DescribeMappedResourceConfiguration reports for a mapped channel. The API
/// reference leaves its values unspecified; this is Oxbow's stable choice.
const MAPPED_TYPE: &str = "SIGNALING_CHANNEL";

fn mapped_stream(c: &ChannelRecord) -> Option<&str> {
    let m = c.media_storage.as_ref()?;
    (m.get("Status")?.as_str()? == "ENABLED")
        .then(|| m.get("StreamARN")?.as_str())
        .flatten()
}

pub async fn describe(state: &AppState, req: ChannelRef) -> Reply {
    let target = req.resolve(state, &mut Checks::new())?;
    let c: ChannelRecord = lookup::get(state, &target, Need::Live).await?;
    let config = c
        .media_storage
        .unwrap_or_else(|| json!({ "Status": "DISABLED" }));
    Ok(Some(json!({ "MediaStorageConfiguration": config })))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MediaStorageConfiguration {
    status: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateMediaStorage {
    #[serde(rename = "ChannelARN")]
    channel_arn: Option<String>,
    media_storage_configuration: Option<MediaStorageConfiguration>,
}

pub async fn update(state: &AppState, req: UpdateMediaStorage) -> Reply {
    let mut checks = Checks::new();
    let config = req.media_storage_configuration.as_ref();
    let status = config.and_then(|c| c.status.as_deref());
    let stream_arn = config.and_then(|c| c.stream_arn.clone());
    checks
        .required("mediaStorageConfiguration", config)
        .required("mediaStorageConfiguration.status", config.and(status))
        .one_of(
            "mediaStorageConfiguration.status",
            status,
            &["ENABLED", "DISABLED"],
        )
        .string(
            "mediaStorageConfiguration.streamARN",
            stream_arn.as_deref(),
            &v::RESOURCE_ARN,
        );
    let channel = arn_target(state, req.channel_arn.as_deref(), &mut checks)?;
    let enabled = status == Some("ENABLED");
    if enabled {
        let Some(arn) = stream_arn.as_deref() else {
            return Err(ApiError::invalid_argument(
                "StreamARN is required when the media storage Status is ENABLED.",
            ));
        };
        check_stream_available(state, arn, &channel.name).await?;
    }
    let mut stored = json!({ "Status": status.unwrap_or("DISABLED") });
    if let Some(arn) = stream_arn {
        stored["StreamARN"] = arn.into();
    }
    let updated = lookup::update(
        state,
        &channel,
        Need::Active,
        move |c: &mut ChannelRecord| {
            c.media_storage = Some(stored);
            Ok(())
        },
    )
    .await?;
    // A running storage session records under the configuration it started with: any change
    // ends it (its last fragment completed); the camera's next join starts the new one.
    state.storage_sessions.stop(&updated.arn);
    Ok(None)
}

/// The stream must exist, be ACTIVE, retain data, and not be mapped to another channel.
async fn check_stream_available(
    state: &AppState,
    arn: &str,
    channel: &str,
) -> Result<(), ApiError> {
    let sref = StreamRef {
        name: None,
        arn: Some(arn.to_string()),
    };
    let target = sref.resolve(state, &mut Checks::new())?;
    let s: StreamRecord = lookup::get(state, &target, Need::Active).await?;
    if s.retention_hours == 0 {
        return Err(no_retention());
    }
    let taken = lookup::all::<ChannelRecord>(state)
        .await?
        .into_iter()
        .any(|c| c.name != channel && mapped_stream(&c) == Some(arn));
    if taken {
        return Err(ApiError::new(
            ErrorKind::ResourceInUse,
            "The stream is already mapped to a different signaling channel.",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeMapped {
    #[serde(flatten)]
    stream: StreamRef,
    max_results: Option<i64>,
    next_token: Option<String>,
}

pub async fn mapped(state: &AppState, req: DescribeMapped) -> Reply {
    let mut checks = Checks::new();
    checks.range("maxResults", req.max_results, 1, 1).string(
        "nextToken",
        req.next_token.as_deref(),
        &v::NEXT_TOKEN,
    );
    let target = req.stream.resolve(state, &mut checks)?;
    let s: StreamRecord = lookup::get(state, &target, Need::Live).await?;
    let list: Vec<Value> = lookup::all::<ChannelRecord>(state)
        .await?
        .iter()
        .filter(|c| mapped_stream(c) == Some(s.arn.as_str()))
        .map(|c| json!({ "ARN": c.arn, "Type": MAPPED_TYPE }))
        .take(1)
        .collect();
    Ok(Some(json!({ "MappedResourceConfigurationList": list })))
}

/// Drops every channel's mapping to a stream that is being deleted.
pub async fn unmap_stream(state: &AppState, stream_arn: &str) -> Result<(), ApiError> {
    for c in lookup::all::<ChannelRecord>(state).await? {
        if mapped_stream(&c) == Some(stream_arn) {
            let target = lookup::Target {
                name: c.name.clone(),
                arn: None,
            };
            lookup::update(state, &target, Need::Exists, |c: &mut ChannelRecord| {
                c.media_storage = None;
                Ok(())
            })
            .await?;
            state.storage_sessions.stop(&c.arn);
        }
    }
    Ok(())
}

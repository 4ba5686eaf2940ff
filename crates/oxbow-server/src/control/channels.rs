//! Signaling channel operations: Create/Describe/List/Delete/UpdateSignalingChannel.

use oxbow_catalog::{ChannelRecord, Lifecycle, Status};
use oxbow_core::time::{ms_to_json_seconds, now_ms};
use oxbow_core::validate::{self as v, Checks};
use oxbow_core::{ids, ApiError, ErrorKind, ResourceType};
use serde::Deserialize;
use serde_json::{json, Value};

use super::paging::{list_page, ListQuery, NameCondition};
use super::tags::{tag_list, Tag};
use super::Reply;
use crate::resource::lookup::{self, Need};
use crate::resource::{channel_arn_target as arn_target, ChannelRef};
use crate::state::AppState;

const DEFAULT_TTL_SECONDS: i64 = 60;

pub fn channel_info(c: &ChannelRecord, status: Status) -> Value {
    json!({
        "ChannelARN": c.arn,
        "ChannelName": c.name,
        "ChannelStatus": status.as_str(),
        "ChannelType": c.channel_type,
        "CreationTime": ms_to_json_seconds(c.creation_ms),
        "SingleMasterConfiguration": { "MessageTtlSeconds": c.message_ttl_seconds },
        "Version": c.version,
    })
}

fn version_mismatch() -> ApiError {
    ApiError::new(
        ErrorKind::VersionMismatch,
        "The channel version that you specified is not the latest version. To get the latest version, use the DescribeSignalingChannel API.",
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SingleMasterConfiguration {
    message_ttl_seconds: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateChannel {
    channel_name: Option<String>,
    channel_type: Option<String>,
    single_master_configuration: Option<SingleMasterConfiguration>,
    tags: Option<Vec<Tag>>,
}

fn ttl(c: Option<&SingleMasterConfiguration>) -> Option<i64> {
    c.and_then(|c| c.message_ttl_seconds)
}

pub async fn create(state: &AppState, req: CreateChannel) -> Reply {
    let mut checks = Checks::new();
    checks
        .required("channelName", req.channel_name.as_ref())
        .string("channelName", req.channel_name.as_deref(), &v::CHANNEL_NAME)
        .one_of(
            "channelType",
            req.channel_type.as_deref(),
            &["SINGLE_MASTER", "FULL_MESH"],
        )
        .range(
            "singleMasterConfiguration.messageTtlSeconds",
            ttl(req.single_master_configuration.as_ref()),
            5,
            120,
        );
    let tags = tag_list(&mut checks, "tags", req.tags.as_deref().unwrap_or_default())?;
    checks.finish()?;
    if req.channel_type.as_deref() == Some("FULL_MESH") {
        return Err(ApiError::invalid_argument(
            "Currently, SINGLE_MASTER is the only supported channel type.",
        ));
    }
    let name = req.channel_name.unwrap_or_default();
    let now = now_ms();
    let config = &state.config;
    let arn = state.arn(ResourceType::Channel, &name, now);
    let record = ChannelRecord {
        name,
        arn: arn.clone(),
        creation_ms: now,
        version: ids::version(),
        lifecycle: Lifecycle::new(Status::Creating, now, config.limits.lifecycle_delay_ms),
        channel_type: "SINGLE_MASTER".into(),
        message_ttl_seconds: ttl(req.single_master_configuration.as_ref())
            .unwrap_or(DEFAULT_TTL_SECONDS),
        tags,
        media_storage: None,
    };
    let limit_error = ApiError::new(
        ErrorKind::AccountChannelLimitExceeded,
        "You have reached the maximum limit of active signaling channels for this AWS account in this region.",
    );
    lookup::insert(state, record, config.limits.max_channels, limit_error).await?;
    tracing::info!(%arn, "signaling channel created");
    Ok(Some(json!({ "ChannelARN": arn })))
}

pub async fn describe(state: &AppState, req: ChannelRef) -> Reply {
    let target = req.resolve(state, &mut Checks::new())?;
    let c: ChannelRecord = lookup::get(state, &target, Need::Exists).await?;
    let status = lookup::check(&c, &target, Need::Exists)?;
    Ok(Some(json!({ "ChannelInfo": channel_info(&c, status) })))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListChannels {
    max_results: Option<i64>,
    next_token: Option<String>,
    channel_name_condition: Option<NameCondition>,
}

pub async fn list(state: &AppState, req: ListChannels) -> Reply {
    let query = ListQuery {
        max_results: req.max_results,
        default_max: 500,
        next_token: req.next_token.as_deref(),
        condition: req.channel_name_condition.as_ref(),
        condition_field: "channelNameCondition",
        name_rule: &v::CHANNEL_NAME,
        list_key: "ChannelInfoList",
    };
    list_page::<ChannelRecord>(state, query, channel_info).await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteChannel {
    #[serde(rename = "ChannelARN")]
    channel_arn: Option<String>,
    current_version: Option<String>,
}

pub async fn delete(state: &AppState, req: DeleteChannel) -> Reply {
    let mut checks = Checks::new();
    checks.string(
        "currentVersion",
        req.current_version.as_deref(),
        &v::VERSION,
    );
    let target = arn_target(state, req.channel_arn.as_deref(), &mut checks)?;
    let delay = state.config.limits.lifecycle_delay_ms;
    let version = req.current_version;
    let c: ChannelRecord =
        lookup::update(state, &target, Need::Live, move |c: &mut ChannelRecord| {
            if version.as_ref().is_some_and(|v| *v != c.version) {
                return Err(version_mismatch());
            }
            c.lifecycle = Lifecycle::new(Status::Deleting, now_ms(), delay);
            Ok(())
        })
        .await?;
    if delay <= 0 {
        state
            .catalog
            .channels()
            .remove(&c.name)
            .await
            .map_err(lookup::storage_error::<ChannelRecord>)?;
    }
    state.storage_sessions.stop(&c.arn);
    tracing::info!(arn = %c.arn, "signaling channel deleted");
    Ok(None)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateChannel {
    #[serde(rename = "ChannelARN")]
    channel_arn: Option<String>,
    current_version: Option<String>,
    single_master_configuration: Option<SingleMasterConfiguration>,
}

pub async fn update(state: &AppState, req: UpdateChannel) -> Reply {
    let mut checks = Checks::new();
    checks
        .required("currentVersion", req.current_version.as_ref())
        .string(
            "currentVersion",
            req.current_version.as_deref(),
            &v::VERSION,
        )
        .range(
            "singleMasterConfiguration.messageTtlSeconds",
            ttl(req.single_master_configuration.as_ref()),
            5,
            120,
        );
    let target = arn_target(state, req.channel_arn.as_deref(), &mut checks)?;
    let delay = state.config.limits.lifecycle_delay_ms;
    let version = req.current_version;
    let new_ttl = ttl(req.single_master_configuration.as_ref());
    lookup::update(
        state,
        &target,
        Need::Active,
        move |c: &mut ChannelRecord| {
            if version.as_deref() != Some(c.version.as_str()) {
                return Err(version_mismatch());
            }
            if let Some(t) = new_ttl {
                c.message_ttl_seconds = t;
            }
            c.version = ids::version();
            c.lifecycle = Lifecycle::new(Status::Updating, now_ms(), delay);
            Ok(())
        },
    )
    .await?;
    Ok(None)
}

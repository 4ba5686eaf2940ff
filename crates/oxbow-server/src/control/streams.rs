//! Stream operations: Create/Describe/List/Delete/UpdateStream, UpdateDataRetention and the
//! stream storage configuration.

use std::collections::BTreeMap;

use oxbow_catalog::{Lifecycle, Status, StreamRecord};
use oxbow_core::time::{ms_to_json_seconds, now_ms};
use oxbow_core::validate::{self as v, Checks};
use oxbow_core::{ids, ApiError, ErrorKind, ResourceType};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::paging::{list_page, ListQuery, NameCondition};
use super::tags::check_tag_map;
use super::Reply;
use crate::resource::lookup::{self, Need, Target};
use crate::resource::StreamRef;
use crate::state::AppState;

const MAX_RETENTION_HOURS: i64 = 87_600;
const STORAGE_TIERS: &[&str] = &["HOT", "WARM"];

/// `StreamInfo` as DescribeStream and ListStreams return it.
pub fn stream_info(s: &StreamRecord, status: Status) -> Value {
    let mut info = Map::new();
    info.insert("CreationTime".into(), ms_to_json_seconds(s.creation_ms));
    info.insert("DataRetentionInHours".into(), s.retention_hours.into());
    if let Some(d) = &s.device_name {
        info.insert("DeviceName".into(), d.clone().into());
    }
    info.insert("KmsKeyId".into(), s.kms_key_id.clone().into());
    if let Some(m) = &s.media_type {
        info.insert("MediaType".into(), m.clone().into());
    }
    info.insert("Status".into(), status.as_str().into());
    info.insert("StreamARN".into(), s.arn.clone().into());
    info.insert("StreamName".into(), s.name.clone().into());
    info.insert("Version".into(), s.version.clone().into());
    Value::Object(info)
}

pub fn version_mismatch() -> ApiError {
    ApiError::new(
        ErrorKind::VersionMismatch,
        "The stream version that you specified is not the latest version. To get the latest version, use the DescribeStream API.",
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StorageConfig {
    default_storage_tier: Option<String>,
}

fn check_storage(checks: &mut Checks, field: &str, c: &StorageConfig) {
    let tier_field = format!("{field}.defaultStorageTier");
    checks
        .required(&tier_field, c.default_storage_tier.as_ref())
        .one_of(
            &tier_field,
            c.default_storage_tier.as_deref(),
            STORAGE_TIERS,
        );
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateStream {
    stream_name: Option<String>,
    data_retention_in_hours: Option<i64>,
    device_name: Option<String>,
    kms_key_id: Option<String>,
    media_type: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    stream_storage_configuration: Option<StorageConfig>,
}

pub async fn create(state: &AppState, req: CreateStream) -> Reply {
    let mut checks = Checks::new();
    checks
        .required("streamName", req.stream_name.as_ref())
        .string("streamName", req.stream_name.as_deref(), &v::STREAM_NAME)
        .range(
            "dataRetentionInHours",
            req.data_retention_in_hours,
            0,
            MAX_RETENTION_HOURS,
        )
        .string("deviceName", req.device_name.as_deref(), &v::DEVICE_NAME)
        .string("kmsKeyId", req.kms_key_id.as_deref(), &v::KMS_KEY_ID)
        .string("mediaType", req.media_type.as_deref(), &v::MEDIA_TYPE);
    if let Some(c) = &req.stream_storage_configuration {
        check_storage(&mut checks, "streamStorageConfiguration", c);
    }
    let tags = req.tags.unwrap_or_default();
    check_tag_map(&mut checks, "tags", &tags)?;
    checks.finish()?;
    let name = req.stream_name.unwrap_or_default();
    let now = now_ms();
    let config = &state.config;
    let arn = state.arn(ResourceType::Stream, &name, now);
    let record = StreamRecord {
        name,
        arn: arn.clone(),
        creation_ms: now,
        version: ids::version(),
        lifecycle: Lifecycle::new(Status::Creating, now, config.limits.lifecycle_delay_ms),
        retention_hours: req.data_retention_in_hours.unwrap_or(0),
        device_name: req.device_name,
        media_type: req.media_type,
        kms_key_id: req.kms_key_id.unwrap_or_else(|| state.default_kms_key()),
        storage_tier: req
            .stream_storage_configuration
            .and_then(|c| c.default_storage_tier)
            .unwrap_or_else(|| "HOT".into()),
        tags,
        image_generation: None,
        notification: None,
        edge: None,
    };
    let limit_error = ApiError::new(
        ErrorKind::AccountStreamLimitExceeded,
        "The number of streams created for the account is too high.",
    );
    lookup::insert(state, record, config.limits.max_streams, limit_error).await?;
    tracing::info!(%arn, "stream created");
    Ok(Some(json!({ "StreamARN": arn })))
}

pub async fn describe(state: &AppState, req: StreamRef) -> Reply {
    let target = req.resolve(state, &mut Checks::new())?;
    let s: StreamRecord = lookup::get(state, &target, Need::Exists).await?;
    let status = lookup::check(&s, &target, Need::Exists)?;
    Ok(Some(json!({ "StreamInfo": stream_info(&s, status) })))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreams {
    max_results: Option<i64>,
    next_token: Option<String>,
    stream_name_condition: Option<NameCondition>,
}

pub async fn list(state: &AppState, req: ListStreams) -> Reply {
    let query = ListQuery {
        max_results: req.max_results,
        default_max: 10_000,
        next_token: req.next_token.as_deref(),
        condition: req.stream_name_condition.as_ref(),
        condition_field: "streamNameCondition",
        name_rule: &v::STREAM_NAME,
        list_key: "StreamInfoList",
    };
    list_page::<StreamRecord>(state, query, stream_info).await
}

/// Applies a change that requires the caller's `CurrentVersion`, then bumps the version and
/// marks the stream UPDATING.
async fn versioned_update(
    state: &AppState,
    target: &Target,
    version: Option<String>,
    change: impl FnOnce(&mut StreamRecord) -> Result<(), ApiError> + Send + 'static,
) -> Reply {
    let delay = state.config.limits.lifecycle_delay_ms;
    lookup::update(state, target, Need::Active, move |s: &mut StreamRecord| {
        if version.as_deref() != Some(s.version.as_str()) {
            return Err(version_mismatch());
        }
        change(s)?;
        s.version = ids::version();
        s.lifecycle = Lifecycle::new(Status::Updating, now_ms(), delay);
        Ok(())
    })
    .await?;
    Ok(None)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteStream {
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    current_version: Option<String>,
}

pub async fn delete(state: &AppState, req: DeleteStream) -> Reply {
    let mut checks = Checks::new();
    checks
        .required("streamARN", req.stream_arn.as_ref())
        .string("streamARN", req.stream_arn.as_deref(), &v::RESOURCE_ARN)
        .string(
            "currentVersion",
            req.current_version.as_deref(),
            &v::VERSION,
        )
        .finish()?;
    let target = lookup::target::<StreamRecord>(
        state,
        None,
        req.stream_arn.as_deref(),
        ErrorKind::InvalidArgument,
    )?;
    let delay = state.config.limits.lifecycle_delay_ms;
    let version = req.current_version;
    let s: StreamRecord =
        lookup::update(state, &target, Need::Live, move |s: &mut StreamRecord| {
            if version.as_ref().is_some_and(|v| *v != s.version) {
                return Err(version_mismatch());
            }
            s.lifecycle = Lifecycle::new(Status::Deleting, now_ms(), delay);
            Ok(())
        })
        .await?;
    super::storage::unmap_stream(state, &s.arn).await?;
    if let Err(e) = state
        .store
        .remove_stream(&crate::resource::media_key(&s))
        .await
    {
        tracing::warn!(arn = %s.arn, error = %e, "could not delete the stream's media");
    }
    if delay <= 0 {
        state
            .catalog
            .streams()
            .remove(&s.name)
            .await
            .map_err(lookup::storage_error::<StreamRecord>)?;
    }
    tracing::info!(arn = %s.arn, "stream deleted");
    Ok(None)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateStream {
    #[serde(flatten)]
    stream: StreamRef,
    current_version: Option<String>,
    device_name: Option<String>,
    media_type: Option<String>,
}

pub async fn update(state: &AppState, req: UpdateStream) -> Reply {
    let mut checks = Checks::new();
    checks
        .required("currentVersion", req.current_version.as_ref())
        .string(
            "currentVersion",
            req.current_version.as_deref(),
            &v::VERSION,
        )
        .string("deviceName", req.device_name.as_deref(), &v::DEVICE_NAME)
        .string("mediaType", req.media_type.as_deref(), &v::MEDIA_TYPE);
    let target = req.stream.resolve(state, &mut checks)?;
    let (device, media) = (req.device_name, req.media_type);
    versioned_update(state, &target, req.current_version, move |s| {
        if device.is_some() {
            s.device_name = device;
        }
        if media.is_some() {
            s.media_type = media;
        }
        Ok(())
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateDataRetention {
    #[serde(flatten)]
    stream: StreamRef,
    current_version: Option<String>,
    data_retention_change_in_hours: Option<i64>,
    operation: Option<String>,
}

pub async fn update_retention(state: &AppState, req: UpdateDataRetention) -> Reply {
    let mut checks = Checks::new();
    checks
        .required("currentVersion", req.current_version.as_ref())
        .string(
            "currentVersion",
            req.current_version.as_deref(),
            &v::VERSION,
        )
        .required(
            "dataRetentionChangeInHours",
            req.data_retention_change_in_hours.as_ref(),
        )
        .range(
            "dataRetentionChangeInHours",
            req.data_retention_change_in_hours,
            1,
            i64::from(i32::MAX),
        )
        .required("operation", req.operation.as_ref())
        .one_of(
            "operation",
            req.operation.as_deref(),
            &["INCREASE_DATA_RETENTION", "DECREASE_DATA_RETENTION"],
        );
    let target = req.stream.resolve(state, &mut checks)?;
    let change = req.data_retention_change_in_hours.unwrap_or(0);
    let delta = if req.operation.as_deref() == Some("DECREASE_DATA_RETENTION") {
        -change
    } else {
        change
    };
    versioned_update(state, &target, req.current_version, move |s| {
        let new = s.retention_hours + delta;
        if !(0..=MAX_RETENTION_HOURS).contains(&new) {
            return Err(ApiError::invalid_argument(format!(
                "The resulting data retention ({new} hours) must be between 0 and {MAX_RETENTION_HOURS} hours."
            )));
        }
        s.retention_hours = new;
        Ok(())
    })
    .await
}

pub async fn describe_storage(state: &AppState, req: StreamRef) -> Reply {
    let target = req.resolve(state, &mut Checks::new())?;
    let s: StreamRecord = lookup::get(state, &target, Need::Live).await?;
    Ok(Some(json!({
        "StreamName": s.name,
        "StreamARN": s.arn,
        "StreamStorageConfiguration": { "DefaultStorageTier": s.storage_tier },
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateStreamStorage {
    #[serde(flatten)]
    stream: StreamRef,
    current_version: Option<String>,
    stream_storage_configuration: Option<StorageConfig>,
}

pub async fn update_storage(state: &AppState, req: UpdateStreamStorage) -> Reply {
    let mut checks = Checks::new();
    checks
        .required("currentVersion", req.current_version.as_ref())
        .string(
            "currentVersion",
            req.current_version.as_deref(),
            &v::VERSION,
        )
        .required(
            "streamStorageConfiguration",
            req.stream_storage_configuration.as_ref(),
        );
    if let Some(c) = &req.stream_storage_configuration {
        check_storage(&mut checks, "streamStorageConfiguration", c);
    }
    let target = req.stream.resolve(state, &mut checks)?;
    let tier = req
        .stream_storage_configuration
        .and_then(|c| c.default_storage_tier)
        .unwrap_or_default();
    versioned_update(state, &target, req.current_version, move |s| {
        s.storage_tier = tier;
        Ok(())
    })
    .await
}

//! Edge configurations: the cloud side of the KVS Edge Agent. The agent's sync protocol is
//! undocumented, so Oxbow runs the documented state machine with a simulated agent: SYNCING
//! settles to IN_SYNC (and DELETING to gone) after `edge_sync_delay_ms`.

use oxbow_catalog::{EdgeRecord, StreamRecord};
use oxbow_core::time::{ms_to_json_seconds, now_ms};
use oxbow_core::validate::{self as v, Checks};
use oxbow_core::{ApiError, ErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::features::no_retention;
use super::Reply;
use crate::input::{next_token, token_key};
use crate::resource::lookup::{self, Need};
use crate::resource::StreamRef;
use crate::state::AppState;

/// Stream configurations one hub device may carry (a hard KVS limit).
const MAX_STREAMS_PER_DEVICE: usize = 16;

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ScheduleConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule_expression: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_in_seconds: Option<i64>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
struct MediaSourceConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    media_uri_secret_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    media_uri_type: Option<String>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
struct RecorderConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    media_source_config: Option<MediaSourceConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule_config: Option<ScheduleConfig>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
struct UploaderConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule_config: Option<ScheduleConfig>,
}

#[derive(Deserialize, Serialize)]
struct LocalSizeConfig {
    #[serde(
        rename = "MaxLocalMediaSizeInMB",
        skip_serializing_if = "Option::is_none"
    )]
    max_local_media_size_in_mb: Option<i64>,
    #[serde(rename = "StrategyOnFullSize", skip_serializing_if = "Option::is_none")]
    strategy_on_full_size: Option<String>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
struct DeletionConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    edge_retention_in_hours: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    local_size_config: Option<LocalSizeConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delete_after_upload: Option<bool>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EdgeConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    hub_device_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recorder_config: Option<RecorderConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uploader_config: Option<UploaderConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deletion_config: Option<DeletionConfig>,
}

fn check_schedule(checks: &mut Checks, field: &str, s: &ScheduleConfig) {
    let expr = format!("{field}.scheduleExpression");
    let dur = format!("{field}.durationInSeconds");
    checks
        .required(&expr, s.schedule_expression.as_ref())
        .string(
            &expr,
            s.schedule_expression.as_deref(),
            &v::SCHEDULE_EXPRESSION,
        )
        .required(&dur, s.duration_in_seconds.as_ref())
        .range(&dur, s.duration_in_seconds, 60, 3600);
}

fn check_edge_config(c: &EdgeConfig) -> Result<(), ApiError> {
    let mut checks = Checks::new();
    let f = |m: &str| format!("edgeConfig.{m}");
    checks
        .required(&f("hubDeviceArn"), c.hub_device_arn.as_ref())
        .string(
            &f("hubDeviceArn"),
            c.hub_device_arn.as_deref(),
            &v::HUB_DEVICE_ARN,
        )
        .required(&f("recorderConfig"), c.recorder_config.as_ref());
    if let Some(r) = &c.recorder_config {
        let src = r.media_source_config.as_ref();
        let arn = src.and_then(|m| m.media_uri_secret_arn.as_deref());
        let kind = src.and_then(|m| m.media_uri_type.as_deref());
        checks
            .required(&f("recorderConfig.mediaSourceConfig"), src)
            .required(
                &f("recorderConfig.mediaSourceConfig.mediaUriSecretArn"),
                src.and(arn),
            )
            .string(
                &f("recorderConfig.mediaSourceConfig.mediaUriSecretArn"),
                arn,
                &v::MEDIA_URI_SECRET_ARN,
            )
            .required(
                &f("recorderConfig.mediaSourceConfig.mediaUriType"),
                src.and(kind),
            )
            .one_of(
                &f("recorderConfig.mediaSourceConfig.mediaUriType"),
                kind,
                &["RTSP_URI", "FILE_URI"],
            );
        if let Some(s) = &r.schedule_config {
            check_schedule(&mut checks, &f("recorderConfig.scheduleConfig"), s);
        }
    }
    if let Some(u) = &c.uploader_config {
        checks.required(
            &f("uploaderConfig.scheduleConfig"),
            u.schedule_config.as_ref(),
        );
        if let Some(s) = &u.schedule_config {
            check_schedule(&mut checks, &f("uploaderConfig.scheduleConfig"), s);
        }
    }
    if let Some(d) = &c.deletion_config {
        checks.range(
            &f("deletionConfig.edgeRetentionInHours"),
            d.edge_retention_in_hours,
            1,
            720,
        );
        if let Some(l) = &d.local_size_config {
            checks
                .range(
                    &f("deletionConfig.localSizeConfig.maxLocalMediaSizeInMB"),
                    l.max_local_media_size_in_mb,
                    64,
                    2_000_000,
                )
                .one_of(
                    &f("deletionConfig.localSizeConfig.strategyOnFullSize"),
                    l.strategy_on_full_size.as_deref(),
                    &["DELETE_OLDEST_MEDIA", "DENY_NEW_MEDIA"],
                );
        }
    }
    checks.finish()
}

/// The sync status as of `now` and when it last changed; `None` once a deletion completed.
fn settled(e: &EdgeRecord, now: i64) -> Option<(&'static str, i64)> {
    let due = now >= e.settles_at_ms;
    match e.sync_status.as_str() {
        "SYNCING" if due => Some(("IN_SYNC", e.settles_at_ms)),
        "DELETING" if due => None,
        "SYNCING" => Some(("SYNCING", e.last_updated_ms)),
        "DELETING" => Some(("DELETING", e.last_updated_ms)),
        "IN_SYNC" => Some(("IN_SYNC", e.last_updated_ms)),
        _ => Some(("SYNC_FAILED", e.last_updated_ms)),
    }
}

fn live_edge(s: &StreamRecord, now: i64) -> Option<(&EdgeRecord, &'static str, i64)> {
    let e = s.edge.as_ref()?;
    settled(e, now).map(|(status, updated)| (e, status, updated))
}

fn not_found() -> ApiError {
    ApiError::new(
        ErrorKind::StreamEdgeConfigurationNotFound,
        "The stream's edge configuration was not found.",
    )
}

/// The fields StartEdgeConfigurationUpdate, DescribeEdgeConfiguration and
/// ListEdgeAgentConfigurations share.
fn edge_view(s: &StreamRecord, now: i64) -> Option<Value> {
    let (e, status, updated) = live_edge(s, now)?;
    let mut out = Map::new();
    out.insert("CreationTime".into(), ms_to_json_seconds(e.creation_ms));
    out.insert("EdgeConfig".into(), e.config.clone());
    if let Some(d) = &e.failed_status_details {
        out.insert("FailedStatusDetails".into(), d.clone().into());
    }
    out.insert("LastUpdatedTime".into(), ms_to_json_seconds(updated));
    out.insert("StreamARN".into(), s.arn.clone().into());
    out.insert("StreamName".into(), s.name.clone().into());
    out.insert("SyncStatus".into(), status.into());
    Some(Value::Object(out))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartEdge {
    #[serde(flatten)]
    stream: StreamRef,
    edge_config: Option<EdgeConfig>,
}

pub async fn start(state: &AppState, req: StartEdge) -> Reply {
    let mut checks = Checks::new();
    checks.required("edgeConfig", req.edge_config.as_ref());
    let target = req.stream.resolve(state, &mut checks)?;
    let config = req
        .edge_config
        .ok_or_else(|| ApiError::invalid_argument("EdgeConfig is required."))?;
    check_edge_config(&config)?;
    let hub = config.hub_device_arn.clone().unwrap_or_default();
    let now = now_ms();
    let on_device = lookup::all::<StreamRecord>(state)
        .await?
        .iter()
        .filter(|s| s.name != target.name)
        .filter(|s| live_edge(s, now).is_some_and(|(e, _, _)| e.hub_device_arn == hub))
        .count();
    if on_device >= MAX_STREAMS_PER_DEVICE {
        return Err(ApiError::invalid_argument(format!(
            "The hub device {hub} already has {MAX_STREAMS_PER_DEVICE} stream configurations."
        )));
    }
    let config = serde_json::to_value(&config)
        .map_err(|e| ApiError::server("encode the edge configuration", e))?;
    let delay = state.config.limits.edge_sync_delay_ms;
    let s: StreamRecord =
        lookup::update(state, &target, Need::Active, move |s: &mut StreamRecord| {
            if s.retention_hours == 0 {
                return Err(no_retention());
            }
            let previous = live_edge(s, now).map(|(e, status, _)| (e.creation_ms, status));
            if let Some((_, status @ ("SYNCING" | "DELETING"))) = previous {
                return Err(ApiError::new(
                    ErrorKind::ResourceInUse,
                    format!("The stream's edge configuration is {status}; wait for it to settle."),
                ));
            }
            s.edge = Some(EdgeRecord {
                config,
                hub_device_arn: hub,
                creation_ms: previous.map_or(now, |(c, _)| c),
                last_updated_ms: now,
                sync_status: "SYNCING".into(),
                settles_at_ms: now + delay,
                failed_status_details: None,
            });
            Ok(())
        })
        .await?;
    let mut view = edge_view(&s, now).ok_or_else(not_found)?;
    view["SyncStatus"] = "SYNCING".into();
    Ok(Some(view))
}

pub async fn describe(state: &AppState, req: StreamRef) -> Reply {
    let target = req.resolve(state, &mut Checks::new())?;
    let s: StreamRecord = lookup::get(state, &target, Need::Live).await?;
    edge_view(&s, now_ms()).map(Some).ok_or_else(not_found)
}

pub async fn delete(state: &AppState, req: StreamRef) -> Reply {
    let target = req.resolve(state, &mut Checks::new())?;
    let delay = state.config.limits.edge_sync_delay_ms;
    lookup::update(state, &target, Need::Live, move |s: &mut StreamRecord| {
        let now = now_ms();
        if live_edge(s, now).is_none() {
            return Err(not_found());
        }
        if delay <= 0 {
            s.edge = None;
        } else if let Some(e) = s.edge.as_mut() {
            e.sync_status = "DELETING".into();
            e.last_updated_ms = now;
            e.settles_at_ms = now + delay;
        }
        Ok(())
    })
    .await?;
    Ok(None)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListEdge {
    hub_device_arn: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

pub async fn list(state: &AppState, req: ListEdge) -> Reply {
    Checks::new()
        .required("hubDeviceArn", req.hub_device_arn.as_ref())
        .string(
            "hubDeviceArn",
            req.hub_device_arn.as_deref(),
            &v::HUB_DEVICE_ARN,
        )
        .range("maxResults", req.max_results, 1, 10)
        .string("nextToken", req.next_token.as_deref(), &v::NEXT_TOKEN)
        .finish()?;
    let hub = req.hub_device_arn.unwrap_or_default();
    let after = token_key(req.next_token.as_deref())?.unwrap_or_default();
    let max = req.max_results.unwrap_or(5) as usize;
    let now = now_ms();
    let matching: Vec<StreamRecord> = lookup::all::<StreamRecord>(state)
        .await?
        .into_iter()
        .filter(|s| s.name > after)
        .filter(|s| live_edge(s, now).is_some_and(|(e, _, _)| e.hub_device_arn == hub))
        .take(max + 1)
        .collect();
    let views: Vec<Value> = matching
        .iter()
        .take(max)
        .filter_map(|s| edge_view(s, now))
        .collect();
    let mut out = json!({ "EdgeConfigs": views });
    if matching.len() > max {
        out["NextToken"] = next_token(&matching[max - 1].name).into();
    }
    Ok(Some(out))
}

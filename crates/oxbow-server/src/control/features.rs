//! Per-stream feature configurations: image generation (thumbnails to a destination) and
//! notifications. Oxbow stores and returns them as given; the media pipeline reads them.

use std::collections::BTreeMap;

use oxbow_catalog::StreamRecord;
use oxbow_core::validate::{self as v, Checks};
use oxbow_core::{ApiError, ErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::Reply;
use crate::resource::lookup::{self, Need};
use crate::resource::StreamRef;
use crate::state::AppState;

pub fn no_retention() -> ApiError {
    ApiError::new(
        ErrorKind::NoDataRetention,
        "The Stream data retention in hours is equal to zero.",
    )
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageDestination {
    #[serde(skip_serializing_if = "Option::is_none")]
    uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination_region: Option<String>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageGenerationConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_selector_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination_config: Option<ImageDestination>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sampling_interval: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format_config: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    width_pixels: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height_pixels: Option<i64>,
}

fn check_image(c: &ImageGenerationConfiguration, region: &str) -> Result<(), ApiError> {
    let f = "imageGenerationConfiguration";
    let mut checks = Checks::new();
    let field = |m: &str| format!("{f}.{m}");
    checks
        .required(&field("status"), c.status.as_ref())
        .one_of(
            &field("status"),
            c.status.as_deref(),
            &["ENABLED", "DISABLED"],
        )
        .required(&field("imageSelectorType"), c.image_selector_type.as_ref())
        .one_of(
            &field("imageSelectorType"),
            c.image_selector_type.as_deref(),
            &["SERVER_TIMESTAMP", "PRODUCER_TIMESTAMP"],
        )
        .required(&field("destinationConfig"), c.destination_config.as_ref())
        .required(&field("samplingInterval"), c.sampling_interval.as_ref())
        .range(&field("samplingInterval"), c.sampling_interval, 200, 20_000)
        .required(&field("format"), c.format.as_ref())
        .one_of(&field("format"), c.format.as_deref(), &["JPEG", "PNG"])
        .range(&field("widthPixels"), c.width_pixels, 1, 3840)
        .range(&field("heightPixels"), c.height_pixels, 1, 2160);
    if let Some(d) = &c.destination_config {
        let uri = field("destinationConfig.uri");
        let reg = field("destinationConfig.destinationRegion");
        checks
            .required(&uri, d.uri.as_ref())
            .string(&uri, d.uri.as_deref(), &v::DESTINATION_URI)
            .required(&reg, d.destination_region.as_ref())
            .string(
                &reg,
                d.destination_region.as_deref(),
                &v::DESTINATION_REGION,
            );
    }
    if let Some(fc) = &c.format_config {
        checks.count(&field("formatConfig"), Some(fc.len()), 0, 1);
        for (k, val) in fc {
            checks
                .one_of(&field("formatConfig.key"), Some(k), &["JPEGQuality"])
                .string(
                    &field("formatConfig.value"),
                    Some(val),
                    &v::FORMAT_CONFIG_VALUE,
                );
            if !val.parse::<i64>().is_ok_and(|q| (1..=100).contains(&q)) {
                checks.custom(format!(
                    "JPEGQuality must be an integer from 1 to 100, got '{val}'"
                ));
            }
        }
    }
    checks.finish()?;
    let dest_region = c
        .destination_config
        .as_ref()
        .and_then(|d| d.destination_region.as_deref());
    if dest_region.is_some_and(|r| r != region) {
        return Err(ApiError::invalid_argument(format!(
            "DestinationRegion must be the stream's region, {region}."
        )));
    }
    Ok(())
}

pub async fn describe_image(state: &AppState, req: StreamRef) -> Reply {
    let target = req.resolve(state, &mut Checks::new())?;
    let s: StreamRecord = lookup::get(state, &target, Need::Live).await?;
    Ok(Some(match s.image_generation {
        Some(c) => json!({ "ImageGenerationConfiguration": c }),
        None => json!({}),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateImage {
    #[serde(flatten)]
    stream: StreamRef,
    image_generation_configuration: Option<ImageGenerationConfiguration>,
}

/// Stores (or, given `None`, deletes) a feature configuration of an ACTIVE stream; storing one
/// needs data retention, as on KVS.
async fn set_feature(
    state: &AppState,
    stream: &StreamRef,
    config: Option<Value>,
    slot: fn(&mut StreamRecord) -> &mut Option<Value>,
) -> Reply {
    let target = stream.resolve(state, &mut Checks::new())?;
    lookup::update(state, &target, Need::Active, move |s: &mut StreamRecord| {
        if config.is_some() && s.retention_hours == 0 {
            return Err(no_retention());
        }
        *slot(s) = config;
        Ok(())
    })
    .await?;
    Ok(None)
}

pub async fn update_image(state: &AppState, req: UpdateImage) -> Reply {
    let config = match &req.image_generation_configuration {
        Some(c) => {
            check_image(c, &state.config.region)?;
            Some(
                serde_json::to_value(c)
                    .map_err(|e| ApiError::server("encode the configuration", e))?,
            )
        }
        None => None,
    };
    set_feature(state, &req.stream, config, |s| &mut s.image_generation).await
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NotificationDestination {
    #[serde(skip_serializing_if = "Option::is_none")]
    uri: Option<String>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NotificationConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination_config: Option<NotificationDestination>,
}

fn check_notification(c: &NotificationConfiguration) -> Result<(), ApiError> {
    let uri = c.destination_config.as_ref().and_then(|d| d.uri.as_deref());
    Checks::new()
        .required("notificationConfiguration.status", c.status.as_ref())
        .one_of(
            "notificationConfiguration.status",
            c.status.as_deref(),
            &["ENABLED", "DISABLED"],
        )
        .required(
            "notificationConfiguration.destinationConfig",
            c.destination_config.as_ref(),
        )
        .required(
            "notificationConfiguration.destinationConfig.uri",
            c.destination_config.as_ref().and(uri),
        )
        .string(
            "notificationConfiguration.destinationConfig.uri",
            uri,
            &v::DESTINATION_URI,
        )
        .finish()
}

pub async fn describe_notification(state: &AppState, req: StreamRef) -> Reply {
    let target = req.resolve(state, &mut Checks::new())?;
    let s: StreamRecord = lookup::get(state, &target, Need::Live).await?;
    Ok(Some(match s.notification {
        Some(c) => json!({ "NotificationConfiguration": c }),
        None => json!({}),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateNotification {
    #[serde(flatten)]
    stream: StreamRef,
    notification_configuration: Option<NotificationConfiguration>,
}

pub async fn update_notification(state: &AppState, req: UpdateNotification) -> Reply {
    let config = match &req.notification_configuration {
        Some(c) => {
            check_notification(c)?;
            Some(
                serde_json::to_value(c)
                    .map_err(|e| ApiError::server("encode the configuration", e))?,
            )
        }
        None => None,
    };
    set_feature(state, &req.stream, config, |s| &mut s.notification).await
}

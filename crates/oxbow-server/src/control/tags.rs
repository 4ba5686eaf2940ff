//! Tags: the stream operations (a map in, a map out) and the generic resource operations
//! (a list of `{Key, Value}` in, a map out), which accept channel and stream ARNs alike.

use std::collections::BTreeMap;

use oxbow_catalog::{ChannelRecord, StreamRecord};
use oxbow_core::validate::{self as v, Checks};
use oxbow_core::{ApiError, ErrorKind, ResourceArn, ResourceType};
use serde::Deserialize;
use serde_json::json;

use super::Reply;
use crate::resource::lookup::{self, Managed, Need, Target};
use crate::resource::StreamRef;
use crate::state::AppState;

pub const MAX_TAGS: usize = 50;

fn too_many() -> ApiError {
    ApiError::new(
        ErrorKind::TagsPerResourceExceededLimit,
        format!("The request would exceed the maximum of {MAX_TAGS} tags per resource."),
    )
}

/// Validates a tag map; more than 50 entries is its own error, as the API declares.
pub fn check_tag_map(
    checks: &mut Checks,
    field: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(too_many());
    }
    for (k, val) in tags {
        checks
            .string(&format!("{field}.key"), Some(k), &v::TAG_KEY)
            .string(&format!("{field}.{k}"), Some(val), &v::TAG_VALUE);
    }
    Ok(())
}

fn check_keys(checks: &mut Checks, keys: Option<&Vec<String>>) {
    checks
        .required("tagKeyList", keys)
        .count("tagKeyList", keys.map(Vec::len), 1, MAX_TAGS);
    for k in keys.into_iter().flatten() {
        checks.string("tagKeyList.member", Some(k), &v::TAG_KEY);
    }
}

/// Merges `tags` into the resource's tags, refusing to go past the limit.
async fn add<T: Managed>(
    state: &AppState,
    target: &Target,
    tags: BTreeMap<String, String>,
) -> Result<(), ApiError> {
    lookup::update(state, target, Need::Live, move |r: &mut T| {
        let current = r.tags_mut();
        let new_keys = tags.keys().filter(|k| !current.contains_key(*k)).count();
        if current.len() + new_keys > MAX_TAGS {
            return Err(too_many());
        }
        current.extend(tags);
        Ok(())
    })
    .await?;
    Ok(())
}

async fn remove<T: Managed>(state: &AppState, target: &Target, keys: Vec<String>) -> Reply {
    lookup::update(state, target, Need::Live, move |r: &mut T| {
        let tags = r.tags_mut();
        for k in &keys {
            tags.remove(k);
        }
        Ok(())
    })
    .await?;
    Ok(None)
}

async fn list<T: Managed>(state: &AppState, target: &Target) -> Reply {
    let r: T = lookup::get(state, target, Need::Live).await?;
    Ok(Some(json!({ "Tags": r.tags() })))
}

/// For the stream tag operations a malformed ARN is InvalidResourceFormatException.
fn stream_target(state: &AppState, s: &StreamRef, checks: &mut Checks) -> Result<Target, ApiError> {
    checks
        .string("streamName", s.name.as_deref(), &v::STREAM_NAME)
        .finish()?;
    lookup::target::<StreamRecord>(
        state,
        s.name.as_deref(),
        s.arn.as_deref(),
        ErrorKind::InvalidResourceFormat,
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagStream {
    #[serde(flatten)]
    stream: StreamRef,
    tags: Option<BTreeMap<String, String>>,
}

pub async fn tag_stream(state: &AppState, req: TagStream) -> Reply {
    let mut checks = Checks::new();
    checks.required("tags", req.tags.as_ref()).count(
        "tags",
        req.tags.as_ref().map(BTreeMap::len),
        1,
        usize::MAX,
    );
    let tags = req.tags.unwrap_or_default();
    check_tag_map(&mut checks, "tags", &tags)?;
    let target = stream_target(state, &req.stream, &mut checks)?;
    add::<StreamRecord>(state, &target, tags).await?;
    Ok(None)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagStream {
    #[serde(flatten)]
    stream: StreamRef,
    tag_key_list: Option<Vec<String>>,
}

pub async fn untag_stream(state: &AppState, req: UntagStream) -> Reply {
    let mut checks = Checks::new();
    check_keys(&mut checks, req.tag_key_list.as_ref());
    let target = stream_target(state, &req.stream, &mut checks)?;
    remove::<StreamRecord>(state, &target, req.tag_key_list.unwrap_or_default()).await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForStream {
    #[serde(flatten)]
    stream: StreamRef,
    next_token: Option<String>,
}

pub async fn list_stream(state: &AppState, req: ListTagsForStream) -> Reply {
    let mut checks = Checks::new();
    checks.string("nextToken", req.next_token.as_deref(), &v::NEXT_TOKEN);
    let target = stream_target(state, &req.stream, &mut checks)?;
    // At most 50 tags: always one page, so no NextToken is ever handed out.
    list::<StreamRecord>(state, &target).await
}

/// A resource ARN, resolved to whichever kind of resource it names.
enum AnyTarget {
    Stream(Target),
    Channel(Target),
}

fn resource_target(
    state: &AppState,
    arn: Option<&str>,
    checks: &mut Checks,
) -> Result<AnyTarget, ApiError> {
    checks
        .required("resourceARN", arn)
        .string("resourceARN", arn, &v::RESOURCE_ARN)
        .finish()?;
    let parsed: ResourceArn = arn
        .unwrap_or_default()
        .parse()
        .map_err(|_| ApiError::invalid_argument("The format of the ResourceARN is invalid."))?;
    let kind = ErrorKind::InvalidArgument;
    Ok(match parsed.resource_type {
        ResourceType::Stream => {
            AnyTarget::Stream(lookup::target::<StreamRecord>(state, None, arn, kind)?)
        }
        ResourceType::Channel => {
            AnyTarget::Channel(lookup::target::<ChannelRecord>(state, None, arn, kind)?)
        }
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: Option<String>,
    pub value: Option<String>,
}

/// Validates a `{Key, Value}` list and turns it into a map (a repeated key keeps its last value).
pub fn tag_list(
    checks: &mut Checks,
    field: &str,
    tags: &[Tag],
) -> Result<BTreeMap<String, String>, ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(too_many());
    }
    for t in tags {
        checks
            .required(&format!("{field}.member.key"), t.key.as_ref())
            .required(&format!("{field}.member.value"), t.value.as_ref())
            .string(
                &format!("{field}.member.key"),
                t.key.as_deref(),
                &v::TAG_KEY,
            )
            .string(
                &format!("{field}.member.value"),
                t.value.as_deref(),
                &v::TAG_VALUE,
            );
    }
    Ok(tags
        .iter()
        .filter_map(|t| Some((t.key.clone()?, t.value.clone()?)))
        .collect())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResource {
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
    tags: Option<Vec<Tag>>,
}

pub async fn tag_resource(state: &AppState, req: TagResource) -> Reply {
    let mut checks = Checks::new();
    checks.required("tags", req.tags.as_ref()).count(
        "tags",
        req.tags.as_ref().map(Vec::len),
        1,
        usize::MAX,
    );
    let tags = tag_list(&mut checks, "tags", req.tags.as_deref().unwrap_or_default())?;
    match resource_target(state, req.resource_arn.as_deref(), &mut checks)? {
        AnyTarget::Stream(t) => add::<StreamRecord>(state, &t, tags).await?,
        AnyTarget::Channel(t) => add::<ChannelRecord>(state, &t, tags).await?,
    }
    Ok(None)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagResource {
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
    tag_key_list: Option<Vec<String>>,
}

pub async fn untag_resource(state: &AppState, req: UntagResource) -> Reply {
    let mut checks = Checks::new();
    check_keys(&mut checks, req.tag_key_list.as_ref());
    let keys = req.tag_key_list.unwrap_or_default();
    match resource_target(state, req.resource_arn.as_deref(), &mut checks)? {
        AnyTarget::Stream(t) => remove::<StreamRecord>(state, &t, keys).await,
        AnyTarget::Channel(t) => remove::<ChannelRecord>(state, &t, keys).await,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForResource {
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
    next_token: Option<String>,
}

pub async fn list_resource(state: &AppState, req: ListTagsForResource) -> Reply {
    let mut checks = Checks::new();
    checks.string("nextToken", req.next_token.as_deref(), &v::NEXT_TOKEN);
    match resource_target(state, req.resource_arn.as_deref(), &mut checks)? {
        AnyTarget::Stream(t) => list::<StreamRecord>(state, &t).await,
        AnyTarget::Channel(t) => list::<ChannelRecord>(state, &t).await,
    }
}

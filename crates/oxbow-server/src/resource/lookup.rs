//! Finding the stream or channel a request names ("specify either the name or the ARN"),
//! and changing it atomically. An ARN must match the record's ARN exactly: its suffix is the
//! creation time, so an ARN of a deleted stream never reaches a newer stream of the same name.

use std::collections::BTreeMap;

use oxbow_catalog::{
    CatalogError, ChannelRecord, Lifecycle, Resource, Status, StreamRecord, Table,
};
use oxbow_core::time::now_ms;
use oxbow_core::{ApiError, ErrorKind, ResourceArn, ResourceType};

use crate::state::AppState;

/// A stream or a channel.
pub trait Managed: Resource + Clone {
    const TYPE: ResourceType;
    fn arn(&self) -> &str;
    fn lifecycle(&self) -> Lifecycle;
    fn not_found() -> ApiError;
    fn table(state: &AppState) -> &dyn Table<Self>;
    fn tags(&self) -> &BTreeMap<String, String>;
    fn tags_mut(&mut self) -> &mut BTreeMap<String, String>;
}

impl Managed for StreamRecord {
    const TYPE: ResourceType = ResourceType::Stream;
    fn arn(&self) -> &str {
        &self.arn
    }
    fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }
    fn not_found() -> ApiError {
        ApiError::stream_not_found()
    }
    fn table(state: &AppState) -> &dyn Table<Self> {
        state.catalog.streams()
    }
    fn tags(&self) -> &BTreeMap<String, String> {
        &self.tags
    }
    fn tags_mut(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.tags
    }
}

impl Managed for ChannelRecord {
    const TYPE: ResourceType = ResourceType::Channel;
    fn arn(&self) -> &str {
        &self.arn
    }
    fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }
    fn not_found() -> ApiError {
        ApiError::channel_not_found()
    }
    fn table(state: &AppState) -> &dyn Table<Self> {
        state.catalog.channels()
    }
    fn tags(&self) -> &BTreeMap<String, String> {
        &self.tags
    }
    fn tags_mut(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.tags
    }
}

/// What state the resource must be in for the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Any state, including DELETING (Describe, List).
    Exists,
    /// Not being deleted (reads that hand out endpoints or configuration).
    Live,
    /// ACTIVE (every change).
    Active,
}

/// The resource a request names, resolved to a catalog key.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub arn: Option<String>,
}

/// Resolves name and/or ARN. `arn_error` is the error for an ARN of the wrong resource type
/// (InvalidResourceFormatException for the stream tag operations, else InvalidArgument).
pub fn target<T: Managed>(
    state: &AppState,
    name: Option<&str>,
    arn: Option<&str>,
    arn_error: ErrorKind,
) -> Result<Target, ApiError> {
    let kind = match T::TYPE {
        ResourceType::Stream => "Stream",
        ResourceType::Channel => "Channel",
    };
    let Some(arn) = arn else {
        return name
            .map(|n| Target {
                name: n.to_string(),
                arn: None,
            })
            .ok_or_else(|| {
                ApiError::invalid_argument(format!(
                    "Either {kind}Name or {kind}ARN must be specified."
                ))
            });
    };
    let parsed: ResourceArn = arn.parse().map_err(|_| {
        ApiError::new(
            arn_error,
            format!("The format of the {kind}ARN is invalid."),
        )
    })?;
    if parsed.resource_type != T::TYPE {
        return Err(ApiError::new(
            arn_error,
            format!("The {kind}ARN does not name a {}.", T::TYPE.as_str()),
        ));
    }
    if let Some(n) = name {
        if n != parsed.name {
            return Err(ApiError::invalid_argument(format!(
                "{kind}Name and {kind}ARN name different resources."
            )));
        }
    }
    let config = &state.config;
    if parsed.partition != config.partition
        || parsed.region != config.region
        || parsed.account != config.account_id
    {
        return Err(T::not_found());
    }
    Ok(Target {
        name: parsed.name,
        arn: Some(arn.to_string()),
    })
}

fn catalog_error<T: Managed>(e: CatalogError) -> ApiError {
    match e {
        CatalogError::NotFound => T::not_found(),
        other => super::catalog_failure(&format!("use the {} table", T::TYPE.as_str()), other),
    }
}

/// Checks that `record` is the one `target` names and is in the state `need` asks for;
/// returns its current status.
pub fn check<T: Managed>(record: &T, target: &Target, need: Need) -> Result<Status, ApiError> {
    if target.arn.as_deref().is_some_and(|a| a != record.arn()) {
        return Err(T::not_found());
    }
    let status = record.lifecycle().at(now_ms()).ok_or_else(T::not_found)?;
    match (need, status) {
        (Need::Exists, _) => Ok(status),
        (_, Status::Deleting) => Err(T::not_found()),
        (Need::Active, s) if s != Status::Active => Err(ApiError::new(
            ErrorKind::ResourceInUse,
            format!(
                "The {} is not in ACTIVE status (it is {}).",
                T::TYPE.as_str(),
                s.as_str()
            ),
        )),
        _ => Ok(status),
    }
}

/// Reads the named resource, requiring `need`.
pub async fn get<T: Managed>(state: &AppState, target: &Target, need: Need) -> Result<T, ApiError> {
    let record = T::table(state)
        .get(&target.name)
        .await
        .map_err(catalog_error::<T>)?
        .ok_or_else(T::not_found)?;
    check(&record, target, need)?;
    Ok(record)
}

/// Applies `change` to the named resource atomically, after checking it is in state `need`.
pub async fn update<T: Managed>(
    state: &AppState,
    target: &Target,
    need: Need,
    change: impl FnOnce(&mut T) -> Result<(), ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let target_c = target.clone();
    state.authz.forget_arn(T::TYPE, &target.name);
    T::table(state)
        .update(
            &target.name,
            Box::new(move |record: &mut T| {
                check(record, &target_c, need)?;
                change(record).map_err(Into::into)
            }),
        )
        .await
        .map_err(catalog_error::<T>)
}

/// Inserts a new resource; a name held by a record whose deletion completed is reclaimed.
pub async fn insert<T: Managed>(
    state: &AppState,
    record: T,
    limit: u64,
    limit_error: ApiError,
) -> Result<(), ApiError> {
    let table = T::table(state);
    state.authz.forget_arn(T::TYPE, record.key());
    for _ in 0..2 {
        match table.insert(record.clone(), limit).await {
            Ok(()) => return Ok(()),
            Err(CatalogError::Exists) => {
                let existing = table.get(record.key()).await.map_err(catalog_error::<T>)?;
                match existing {
                    Some(e) if e.lifecycle().at(now_ms()).is_none() => {
                        table
                            .remove(record.key())
                            .await
                            .map_err(catalog_error::<T>)?;
                    }
                    _ => {
                        return Err(ApiError::new(
                            ErrorKind::ResourceInUse,
                            format!("The {} {} already exists.", T::TYPE.as_str(), record.key()),
                        ))
                    }
                }
            }
            Err(CatalogError::LimitExceeded) => return Err(limit_error),
            Err(e) => return Err(catalog_error::<T>(e)),
        }
    }
    Err(ApiError::internal(
        "could not reclaim a deleted resource name",
    ))
}

/// Every record of the kind that has not finished deleting, in name order.
pub async fn all<T: Managed>(state: &AppState) -> Result<Vec<T>, ApiError> {
    let now = now_ms();
    Ok(T::table(state)
        .list(None, None, usize::MAX)
        .await
        .map_err(catalog_error::<T>)?
        .into_iter()
        .filter(|r| r.lifecycle().at(now).is_some())
        .collect())
}

/// Maps catalog failures for callers outside this module.
pub fn storage_error<T: Managed>(e: CatalogError) -> ApiError {
    catalog_error::<T>(e)
}

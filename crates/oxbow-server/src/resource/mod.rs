//! The resources requests name: streams and channels, found by name or ARN (`lookup`), the
//! request members that name them (`StreamRef`, `ChannelRef`), and the store key of a
//! stream's media. Every API family resolves resources through here, so none imports
//! another family for it.

mod fragment_number;
pub use fragment_number::FragmentNumber;
pub mod lookup;

use oxbow_catalog::{CatalogError, ChannelRecord, StreamRecord};
use oxbow_core::validate::{self as v, Checks};
use oxbow_core::{ApiError, ErrorKind};
use serde::Deserialize;

pub use lookup::{Managed, Need, Target};

use crate::state::AppState;

/// The `StreamName`/`StreamARN` pair most stream operations take.
#[derive(Deserialize, Default)]
pub struct StreamRef {
    #[serde(rename = "StreamName")]
    pub name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub arn: Option<String>,
}

impl StreamRef {
    /// Validates both members and resolves them to a target.
    pub fn resolve(&self, state: &AppState, checks: &mut Checks) -> Result<Target, ApiError> {
        checks
            .string("streamName", self.name.as_deref(), &v::STREAM_NAME)
            .string("streamARN", self.arn.as_deref(), &v::RESOURCE_ARN)
            .finish()?;
        lookup::target::<StreamRecord>(
            state,
            self.name.as_deref(),
            self.arn.as_deref(),
            ErrorKind::InvalidArgument,
        )
    }
}

/// The `ChannelName`/`ChannelARN` pair of the channel operations.
#[derive(Deserialize, Default)]
pub struct ChannelRef {
    #[serde(rename = "ChannelName")]
    pub name: Option<String>,
    #[serde(rename = "ChannelARN")]
    pub arn: Option<String>,
}

impl ChannelRef {
    pub fn resolve(&self, state: &AppState, checks: &mut Checks) -> Result<Target, ApiError> {
        checks
            .string("channelName", self.name.as_deref(), &v::CHANNEL_NAME)
            .string("channelARN", self.arn.as_deref(), &v::RESOURCE_ARN)
            .finish()?;
        lookup::target::<ChannelRecord>(
            state,
            self.name.as_deref(),
            self.arn.as_deref(),
            ErrorKind::InvalidArgument,
        )
    }
}

/// Resolves a required `ChannelARN`.
pub fn channel_arn_target(
    state: &AppState,
    arn: Option<&str>,
    checks: &mut Checks,
) -> Result<Target, ApiError> {
    checks.required("channelARN", arn);
    ChannelRef {
        name: None,
        arn: arn.map(str::to_string),
    }
    .resolve(state, checks)
}

/// A catalog failure as the client's answer: a refusal from one of our own update closures
/// comes back as the error it was; anything else is the catalog failing while Oxbow tried to
/// do `doing`.
pub fn catalog_failure(doing: &str, e: CatalogError) -> ApiError {
    match e {
        CatalogError::Rejected(refusal) => match refusal.downcast::<ApiError>() {
            Ok(api) => *api,
            Err(other) => ApiError::server(doing.to_string(), other),
        },
        other => ApiError::dependency(doing.to_string(), other),
    }
}

/// A signaling client id as the handshake and camera URLs take it: 1-256 characters, not
/// starting with `AWS_` in any case.
pub fn check_client_id(id: &str) -> Result<&str, ApiError> {
    if id.is_empty() || id.len() > 256 || id.to_ascii_uppercase().starts_with("AWS_") {
        return Err(ApiError::invalid_argument(
            "clientId must be 1-256 characters and not start with AWS_.",
        ));
    }
    Ok(id)
}

/// The store key of a stream incarnation: its name and creation time, so a recreated stream
/// of the same name never sees the old one's media.
pub fn media_key(s: &StreamRecord) -> String {
    format!("{}-{}", s.name, s.creation_ms)
}

//! The records the catalog stores. Feature configurations (image generation, notification,
//! edge) are kept in their validated wire JSON so they are returned exactly as they were given.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Resource;

/// `Status` of a stream or `ChannelStatus` of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Creating,
    Active,
    Updating,
    Deleting,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "CREATING",
            Status::Active => "ACTIVE",
            Status::Updating => "UPDATING",
            Status::Deleting => "DELETING",
        }
    }
}

/// A status and, for the transitional ones, when the transition completes. KVS changes are
/// asynchronous; Oxbow models them as time-stamped states so reads see the same sequence a KVS
/// client sees (CREATING then ACTIVE, DELETING then gone) without background jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    pub status: Status,
    /// When a transitional status ends: CREATING/UPDATING become ACTIVE, DELETING becomes gone.
    pub until_ms: i64,
}

impl Lifecycle {
    pub fn new(status: Status, now_ms: i64, delay_ms: i64) -> Self {
        Self {
            status,
            until_ms: now_ms + delay_ms,
        }
    }

    /// The status as of `now_ms`; `None` once a deletion has completed.
    pub fn at(&self, now_ms: i64) -> Option<Status> {
        match self.status {
            Status::Active => Some(Status::Active),
            s if now_ms < self.until_ms => Some(s),
            Status::Deleting => None,
            _ => Some(Status::Active),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamRecord {
    pub name: String,
    pub arn: String,
    pub creation_ms: i64,
    pub version: String,
    pub lifecycle: Lifecycle,
    pub retention_hours: i64,
    pub device_name: Option<String>,
    pub media_type: Option<String>,
    pub kms_key_id: String,
    /// `DefaultStorageTier` of the stream storage configuration: `HOT` or `WARM`.
    #[serde(default = "hot")]
    pub storage_tier: String,
    pub tags: BTreeMap<String, String>,
    pub image_generation: Option<serde_json::Value>,
    pub notification: Option<serde_json::Value>,
    pub edge: Option<EdgeRecord>,
}

fn hot() -> String {
    "HOT".into()
}

impl Resource for StreamRecord {
    const TABLE: &'static str = "streams";
    fn key(&self) -> &str {
        &self.name
    }
}

/// A stream's edge configuration and its simulated sync state machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EdgeRecord {
    pub config: serde_json::Value,
    pub hub_device_arn: String,
    pub creation_ms: i64,
    pub last_updated_ms: i64,
    /// `SYNCING`, `IN_SYNC`, `SYNC_FAILED`, `DELETING`, ...
    pub sync_status: String,
    /// When the current transitional sync status settles.
    pub settles_at_ms: i64,
    pub failed_status_details: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelRecord {
    pub name: String,
    pub arn: String,
    pub creation_ms: i64,
    pub version: String,
    pub lifecycle: Lifecycle,
    pub channel_type: String,
    pub message_ttl_seconds: i64,
    pub tags: BTreeMap<String, String>,
    /// `{"Status": "ENABLED"|"DISABLED", "StreamARN": ...}` as last set.
    pub media_storage: Option<serde_json::Value>,
}

impl Resource for ChannelRecord {
    const TABLE: &'static str = "channels";
    fn key(&self) -> &str {
        &self.name
    }
}

/// An access key and what it stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Who signs with it: `root` (may do everything), `user/<name>`, `role/<name>` (an
    /// assumed role's session) or `session` (rights from `session_policy` alone).
    pub principal: String,
    /// Temporary credentials carry a session token and an expiry.
    pub session_token: Option<String>,
    pub expires_ms: Option<i64>,
    pub created_ms: i64,
    pub active: bool,
    /// Policy variables the session carries, e.g. `credentials-iot:ThingName`.
    #[serde(default)]
    pub context: BTreeMap<String, String>,
    /// A policy that further limits a temporary key: a request needs both the principal's
    /// policies and this one to allow it.
    #[serde(default)]
    pub session_policy: Option<String>,
}

impl AccessKey {
    /// A long-term key for `principal`, active from `now_ms`.
    pub fn long_term(id: &str, secret: &str, principal: &str, now_ms: i64) -> Self {
        Self {
            access_key_id: id.to_string(),
            secret_access_key: secret.to_string(),
            principal: principal.to_string(),
            session_token: None,
            expires_ms: None,
            created_ms: now_ms,
            active: true,
            context: BTreeMap::new(),
            session_policy: None,
        }
    }
}

impl Resource for AccessKey {
    const TABLE: &'static str = "access_keys";
    fn key(&self) -> &str {
        &self.access_key_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_settles() {
        let creating = Lifecycle::new(Status::Creating, 1000, 500);
        assert_eq!(creating.at(1200), Some(Status::Creating));
        assert_eq!(creating.at(1500), Some(Status::Active));
        let deleting = Lifecycle::new(Status::Deleting, 1000, 0);
        assert_eq!(deleting.at(1000), None);
    }
}

//! The identity records: users, roles and the policies attached to them, plus the IoT side
//! (role aliases, things, device certificates) and camera ownership. Policies are stored as
//! their JSON documents and attached by name, as IAM managed policies are, so changing a
//! policy changes every principal it is attached to.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Resource;

/// A person or program with long-term access keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    pub arn: String,
    pub created_ms: i64,
    /// Names of the attached policies.
    #[serde(default)]
    pub policies: Vec<String>,
    /// IAM's unique id (`AIDA…`); empty for users stored before it existed: see
    /// [`UserRecord::unique_id`].
    #[serde(default)]
    pub user_id: String,
}

impl UserRecord {
    /// The user's unique id; for a user stored before ids were kept, one derived from its
    /// creation time.
    pub fn unique_id(&self) -> String {
        if self.user_id.is_empty() {
            format!("AIDA{:016X}", self.created_ms)
        } else {
            self.user_id.clone()
        }
    }
}

impl Resource for UserRecord {
    const TABLE: &'static str = "users";
    fn key(&self) -> &str {
        &self.name
    }
}

/// An identity assumed for a while: through STS AssumeRole or the IoT credentials provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoleRecord {
    pub name: String,
    pub arn: String,
    pub created_ms: i64,
    #[serde(default)]
    pub policies: Vec<String>,
    /// The longest session AssumeRole may grant (IAM's `MaxSessionDuration`, 1–12 h).
    pub max_session_seconds: i64,
    /// IAM's unique id (`AROA…`), new for every role created, even under an old name. Empty
    /// for roles stored before it existed: see [`RoleRecord::unique_id`].
    #[serde(default)]
    pub role_id: String,
    /// The trust policy (`AssumeRolePolicyDocument`): who may assume the role. None for roles
    /// made without one, which trust the account, as every role did before trust policies.
    #[serde(default)]
    pub trust_policy: Option<String>,
}

/// The session context member that binds a role session to the role incarnation it was
/// issued for: a role deleted and created again under the same name is another role, and
/// the old sessions get nothing from it.
pub const SESSION_ROLE_ID: &str = "oxbow:RoleId";

impl RoleRecord {
    /// The role's unique id; for a role stored before ids were kept, one derived from its
    /// creation time, so it is stable and differs from any later role of the same name.
    pub fn unique_id(&self) -> String {
        if self.role_id.is_empty() {
            format!("AROA{:016X}", self.created_ms)
        } else {
            self.role_id.clone()
        }
    }
}

impl Resource for RoleRecord {
    const TABLE: &'static str = "roles";
    fn key(&self) -> &str {
        &self.name
    }
}

/// A named policy document in the IAM grammar.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub name: String,
    pub arn: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub document: String,
}

impl Resource for PolicyRecord {
    const TABLE: &'static str = "policies";
    fn key(&self) -> &str {
        &self.name
    }
}

/// What a device names to get credentials: an alias for a role and how long its
/// credentials last (`aws iot create-role-alias`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoleAliasRecord {
    pub alias: String,
    pub arn: String,
    pub role: String,
    pub credential_duration_seconds: i64,
    pub created_ms: i64,
    /// When it was last changed (`UpdateRoleAlias`); 0 for never.
    #[serde(default)]
    pub updated_ms: i64,
}

impl Resource for RoleAliasRecord {
    const TABLE: &'static str = "role_aliases";
    fn key(&self) -> &str {
        &self.alias
    }
}

/// A device as IoT knows it; its name is what `${credentials-iot:ThingName}` becomes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThingRecord {
    pub name: String,
    pub arn: String,
    pub created_ms: i64,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// The thing type it belongs to, if any (`--thing-type-name`).
    #[serde(default)]
    pub thing_type: Option<String>,
    /// IoT's unique id (a UUID); empty for things stored before it existed, see
    /// [`ThingRecord::unique_id`].
    #[serde(default)]
    pub thing_id: String,
    /// Counts updates, for IoT's `expectedVersion` checks; things stored before it existed
    /// are at version 1.
    #[serde(default = "first_version")]
    pub version: i64,
}

fn first_version() -> i64 {
    1
}

impl ThingRecord {
    /// The thing's unique id; for a thing stored before ids were kept, one derived from its
    /// name's creation time, stable across restarts.
    pub fn unique_id(&self) -> String {
        if self.thing_id.is_empty() {
            format!("00000000-0000-0000-0000-{:012x}", self.created_ms)
        } else {
            self.thing_id.clone()
        }
    }
}

/// A kind of device (`aws iot create-thing-type`): a name things share, with a description.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThingTypeRecord {
    pub name: String,
    pub arn: String,
    pub id: String,
    pub created_ms: i64,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub searchable_attributes: Vec<String>,
}

impl Resource for ThingTypeRecord {
    const TABLE: &'static str = "thing_types";
    fn key(&self) -> &str {
        &self.name
    }
}

/// An AWS IoT policy (`aws iot create-policy`): the IAM grammar, attached to certificates,
/// judging `iot:AssumeRoleWithCertificate`. IoT keeps its policies apart from IAM's, so the
/// same name may be an IAM policy and an IoT policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IotPolicyRecord {
    pub name: String,
    pub arn: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub document: String,
}

impl Resource for IotPolicyRecord {
    const TABLE: &'static str = "iot_policies";
    fn key(&self) -> &str {
        &self.name
    }
}

impl Resource for ThingRecord {
    const TABLE: &'static str = "things";
    fn key(&self) -> &str {
        &self.name
    }
}

/// `ACTIVE`, `INACTIVE` or `REVOKED`; only active certificates obtain credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertificateStatus {
    Active,
    Inactive,
    Revoked,
}

impl CertificateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
            Self::Revoked => "REVOKED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ACTIVE" => Some(Self::Active),
            "INACTIVE" => Some(Self::Inactive),
            "REVOKED" => Some(Self::Revoked),
            _ => None,
        }
    }
}

/// A device certificate, keyed like AWS IoT by the SHA-256 of its DER encoding (hex).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertificateRecord {
    pub id: String,
    pub arn: String,
    pub pem: String,
    pub status: CertificateStatus,
    pub created_ms: i64,
    /// Things attached to the certificate (`attach-thing-principal`).
    #[serde(default)]
    pub things: Vec<String>,
    /// Policies attached to the certificate (`attach-policy`); they decide
    /// `iot:AssumeRoleWithCertificate` on a role alias.
    #[serde(default)]
    pub policies: Vec<String>,
}

impl Resource for CertificateRecord {
    const TABLE: &'static str = "certificates";
    fn key(&self) -> &str {
        &self.id
    }
}

/// Temporary credentials issued before `before_ms` to a principal are refused: revocation
/// without a record per session. `key` is the principal as access keys name it (`role/NAME`,
/// `user/NAME`), or `*` for every session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevocationRecord {
    pub key: String,
    pub before_ms: i64,
    pub created_ms: i64,
}

impl Resource for RevocationRecord {
    const TABLE: &'static str = "revocations";
    fn key(&self) -> &str {
        &self.key
    }
}

/// A key every node of a cluster must hold alike (the seal of temporary credentials, of
/// playback session URLs, of webhook signatures), kept in the shared catalog: hex-encoded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretRecord {
    pub name: String,
    pub hex: String,
    pub created_ms: i64,
}

impl Resource for SecretRecord {
    const TABLE: &'static str = "server_secrets";
    fn key(&self) -> &str {
        &self.name
    }
}

/// Which node of a cluster owns a stream or signaling channel for now: the one that ingests
/// it and that GetDataEndpoint hands out. `epoch` grows with every change of owner, so a
/// node can tell that the lease it held was taken. Keyed `stream/<name>` or `channel/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub key: String,
    pub owner: String,
    /// The owner's public URL, handed to clients.
    pub url: String,
    pub epoch: u64,
    pub expires_ms: i64,
}

impl Resource for LeaseRecord {
    const TABLE: &'static str = "leases";
    fn key(&self) -> &str {
        &self.key
    }
}

/// The session context member naming the principal a chain of sessions started from (the
/// user or role that called AssumeRole first), so revoking a user's sessions reaches the
/// role sessions it obtained.
pub const SESSION_ISSUED_TO: &str = "oxbow:IssuedTo";

/// That `owner` (a user) owns the camera behind signaling channel `channel`, and which
/// signaling roles it may take on it. Keyed `owner/channel` so one user's cameras list by prefix.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CameraOwnerRecord {
    pub key: String,
    pub owner: String,
    pub channel: String,
    /// `VIEWER` and/or `MASTER`.
    pub roles: Vec<String>,
    pub created_ms: i64,
}

impl CameraOwnerRecord {
    pub fn key_for(owner: &str, channel: &str) -> String {
        format!("{owner}/{channel}")
    }
}

impl Resource for CameraOwnerRecord {
    const TABLE: &'static str = "camera_owners";
    fn key(&self) -> &str {
        &self.key
    }
}

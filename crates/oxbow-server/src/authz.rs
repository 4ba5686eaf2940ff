//! Authorization: may the principal behind this access key perform this action on this
//! resource? Root may do everything. Users and assumed roles are judged by the policies
//! attached to them; a temporary key may also carry a session policy that narrows what its
//! principal may do (a request needs both to allow it). Default deny, explicit deny wins.
//!
//! Compiled policy sets and decisions are cached per access key, so a principal with hundreds
//! of statements pays for their evaluation once per (action, resource), not on every request.
//! Every identity or policy change goes through this node's admin API, which clears the
//! caches, so they need no short expiry; [`CACHE_TTL`] only bounds memory and staleness should
//! the catalog ever be changed from outside. (A 2 s expiry was measured to cost 10–30 % of the
//! server's CPU with 64 connections of one 1,000-statement principal: every expiry made each
//! connection recompile and re-evaluate the whole set at once.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use oxbow_auth::policy::{evaluate, Decision, Policy, Request, Vars};
use oxbow_catalog::{AccessKey, SESSION_ROLE_ID};
use oxbow_core::{ApiError, ErrorKind, ResourceType};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use oxbow_catalog::Catalog;

/// The principal of the key `oxbow serve` creates; it is never judged by policies.
pub const ROOT: &str = "root";

/// Whether `key` belongs to the root principal: the one place that decides it.
pub fn is_root(key: &AccessKey) -> bool {
    key.principal == ROOT
}

/// How long a compiled policy set, a decision or a resource ARN is reused at most.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
const MAX_ENTRIES: usize = 100_000;

/// Whom an access key stands for, from its `principal` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalRef<'a> {
    Root,
    User(&'a str),
    Role(&'a str),
    /// Rights come from the key's session policy alone (camera-owner signaling URLs).
    Session,
}

impl<'a> PrincipalRef<'a> {
    pub fn parse(principal: &'a str) -> Option<Self> {
        match principal.split_once('/') {
            None if principal == ROOT => Some(Self::Root),
            None if principal == "session" => Some(Self::Session),
            Some(("user", name)) => Some(Self::User(name)),
            Some(("role", name)) => Some(Self::Role(name)),
            _ => None,
        }
    }
}

/// One authorization question about a request.
#[derive(Debug, Clone)]
pub struct Access {
    /// `kinesisvideo:DescribeStream`, `sts:AssumeRole`, ...
    pub action: &'static str,
    /// The resource's ARN, or `*`. Shared, so a cached ARN costs no copy per request.
    pub resource: Arc<str>,
    /// The error this API answers a denial with (NotAuthorized or AccessDenied, per the spec).
    pub denied: ErrorKind,
}

/// Facts about the request that conditions may test.
#[derive(Debug, Clone, Copy)]
pub struct RequestEnv {
    pub source_ip: IpAddr,
    pub secure_transport: bool,
}

/// The policies that judge one access key.
struct PolicySet {
    identity: Vec<Policy>,
    session: Option<Policy>,
    /// True if some policy's answer depends on the request itself: decisions are not cached.
    conditional: bool,
}

/// A cache read on every request by every worker thread: a read-write lock, so readers never
/// queue behind each other.
type Entries<K, T> = RwLock<HashMap<K, (T, Instant)>>;

/// Decisions of one access key: action → resource → decision. Nested so that a lookup
/// borrows the request's strings instead of building a key (the hit path allocates nothing).
type KeyDecisions = HashMap<&'static str, HashMap<Arc<str>, (Decision, Instant)>>;

/// The account principals belong to, as ARNs name it.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub partition: String,
}

pub struct Authorizer {
    catalog: Arc<dyn Catalog>,
    account: Account,
    sets: Entries<String, Arc<PolicySet>>,
    decisions: RwLock<HashMap<String, KeyDecisions>>,
    /// Name → ARN of live streams and of live channels.
    stream_arns: Entries<String, Arc<str>>,
    channel_arns: Entries<String, Arc<str>>,
    /// Held while a policy set is compiled, so many connections of one principal arriving
    /// at once compile it once instead of each on its own.
    compiling: tokio::sync::Mutex<()>,
}

fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|p| p.into_inner())
}

fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|p| p.into_inner())
}

fn fresh(at: Instant) -> bool {
    at.elapsed() < CACHE_TTL
}

fn cached<T: Clone>(m: &Entries<String, T>, key: &str) -> Option<T> {
    let (value, at) = read(m).get(key).cloned()?;
    fresh(at).then_some(value)
}

fn remember<T>(m: &Entries<String, T>, key: &str, value: T) {
    let mut entries = write(m);
    if entries.len() >= MAX_ENTRIES {
        entries.retain(|_, (_, at)| fresh(*at));
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
    }
    entries.insert(key.to_string(), (value, Instant::now()));
}

impl Authorizer {
    pub fn new(catalog: Arc<dyn Catalog>, account: Account) -> Self {
        Self {
            catalog,
            account,
            sets: Entries::default(),
            decisions: RwLock::default(),
            stream_arns: Entries::default(),
            channel_arns: Entries::default(),
            compiling: tokio::sync::Mutex::new(()),
        }
    }

    /// Forgets every cached policy set and decision, after an identity or policy changed.
    pub fn clear(&self) {
        write(&self.sets).clear();
        write(&self.decisions).clear();
    }

    fn arns(&self, kind: ResourceType) -> &Entries<String, Arc<str>> {
        match kind {
            ResourceType::Stream => &self.stream_arns,
            ResourceType::Channel => &self.channel_arns,
        }
    }

    /// The cached ARN of a live stream or channel.
    pub fn known_arn(&self, kind: ResourceType, name: &str) -> Option<Arc<str>> {
        cached(self.arns(kind), name)
    }

    pub fn remember_arn(&self, kind: ResourceType, name: &str, arn: Arc<str>) {
        remember(self.arns(kind), name, arn);
    }

    /// Forgets every cached ARN.
    pub fn forget_all_arns(&self) {
        write(&self.stream_arns).clear();
        write(&self.channel_arns).clear();
    }

    /// Forgets a resource's ARN after it was created, changed or deleted on this node.
    pub fn forget_arn(&self, kind: ResourceType, name: &str) {
        write(self.arns(kind)).remove(name);
    }

    fn known_decision(&self, key_id: &str, access: &Access) -> Option<Decision> {
        let decisions = read(&self.decisions);
        let (d, at) = decisions
            .get(key_id)?
            .get(access.action)?
            .get(access.resource.as_ref())?;
        fresh(*at).then_some(*d)
    }

    fn remember_decision(&self, key_id: &str, access: &Access, d: Decision) {
        let mut decisions = write(&self.decisions);
        if decisions.len() >= MAX_ENTRIES {
            decisions.clear();
        }
        let per_key = decisions.entry(key_id.to_string()).or_default();
        let per_action = per_key.entry(access.action).or_default();
        if per_action.len() >= MAX_ENTRIES {
            per_action.clear();
        }
        per_action.insert(Arc::clone(&access.resource), (d, Instant::now()));
    }

    /// Ok if `key`'s principal may perform `access`; otherwise the API's denial error.
    pub async fn authorize(
        &self,
        key: &AccessKey,
        access: &Access,
        env: RequestEnv,
    ) -> Result<(), ApiError> {
        if is_root(key) {
            return Ok(());
        }
        let principal = PrincipalRef::parse(&key.principal);
        let decision = match self.known_decision(&key.access_key_id, access) {
            Some(d) => d,
            None => {
                let set = self.policy_set(key, principal).await?;
                let vars = request_vars(&self.account, key, principal, env);
                let d = decide(&set, access, &vars);
                tracing::debug!(principal = %key.principal, action = %access.action,
                    resource = %access.resource, decision = ?d, "policies evaluated");
                if !set.conditional {
                    self.remember_decision(&key.access_key_id, access, d);
                }
                d
            }
        };
        match decision {
            Decision::Allow => Ok(()),
            d => Err(denial(&self.account, key, access, d)),
        }
    }

    async fn policy_set(
        &self,
        key: &AccessKey,
        principal: Option<PrincipalRef<'_>>,
    ) -> Result<Arc<PolicySet>, ApiError> {
        if let Some(set) = cached(&self.sets, &key.access_key_id) {
            return Ok(set);
        }
        let _compiling = self.compiling.lock().await;
        if let Some(set) = cached(&self.sets, &key.access_key_id) {
            return Ok(set);
        }
        let names = match principal {
            Some(PrincipalRef::User(name)) => self
                .catalog
                .users()
                .get(name)
                .await
                .map_err(internal)?
                .map(|u| u.policies)
                .unwrap_or_default(),
            // A session holds the rights of the role incarnation it was issued for only: a
            // role deleted and created again under its name is not that role.
            Some(PrincipalRef::Role(name)) => self
                .catalog
                .roles()
                .get(name)
                .await
                .map_err(internal)?
                .filter(|r| {
                    key.context
                        .get(SESSION_ROLE_ID)
                        .is_none_or(|id| *id == r.unique_id())
                })
                .map(|r| r.policies)
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let identity = self.load_policies(&names).await?;
        let session = key
            .session_policy
            .as_deref()
            .map(Policy::parse)
            .transpose()
            .map_err(|e| ApiError::server("parse the key's stored session policy", e))?;
        let conditional = identity
            .iter()
            .chain(&session)
            .any(Policy::depends_on_request);
        let set = Arc::new(PolicySet {
            identity,
            session,
            conditional,
        });
        tracing::debug!(principal = %key.principal, policies = set.identity.len(),
            conditional, "policy set compiled");
        remember(&self.sets, &key.access_key_id, Arc::clone(&set));
        Ok(set)
    }

    /// Compiles the named policies; a name whose policy was deleted grants nothing.
    pub async fn load_policies(&self, names: &[String]) -> Result<Vec<Policy>, ApiError> {
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if let Some(record) = self.catalog.policies().get(name).await.map_err(internal)? {
                out.extend(compile(name, &record.document));
            }
        }
        Ok(out)
    }

    /// Compiles a certificate's policies: IoT policies, and for a name with none, the IAM
    /// policy of that name (certificates took IAM policies before IoT policies had a table).
    pub async fn load_certificate_policies(
        &self,
        names: &[String],
    ) -> Result<Vec<Policy>, ApiError> {
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let iot = self
                .catalog
                .iot_policies()
                .get(name)
                .await
                .map_err(internal)?;
            let document = match iot {
                Some(p) => p.document,
                None => match self.catalog.policies().get(name).await.map_err(internal)? {
                    Some(p) => p.document,
                    None => continue,
                },
            };
            out.extend(compile(name, &document));
        }
        Ok(out)
    }

    /// The ARN AWS would name the principal by in a denial.
    pub fn principal_arn(&self, key: &AccessKey) -> String {
        principal_arn(&self.account, key)
    }

    /// The ARN a trust policy names the caller by: a user's or the root's own ARN, and for a
    /// role session the role's ARN (as IAM matches assumed-role sessions).
    pub fn trust_arn(&self, key: &AccessKey) -> String {
        let (partition, account) = (&self.account.partition, &self.account.id);
        match PrincipalRef::parse(&key.principal) {
            Some(PrincipalRef::Role(name)) => format!("arn:{partition}:iam::{account}:role/{name}"),
            _ => principal_arn(&self.account, key),
        }
    }

    pub fn account_id(&self) -> &str {
        &self.account.id
    }
}

fn internal(e: oxbow_catalog::CatalogError) -> ApiError {
    ApiError::dependency("read policies", e)
}

/// Identity policies decide; a session policy, if any, must allow as well.
fn decide(set: &PolicySet, access: &Access, vars: &Vars) -> Decision {
    let req = Request {
        action: access.action,
        resource: &access.resource,
        context: vars,
    };
    let session = set.session.as_ref().map(|p| evaluate([p], &req));
    if session == Some(Decision::ExplicitDeny) {
        return Decision::ExplicitDeny;
    }
    let identity = if set.identity.is_empty() {
        // A session-only principal: its session policy is all it has.
        session.unwrap_or(Decision::ImplicitDeny)
    } else {
        evaluate(&set.identity, &req)
    };
    match (identity, session) {
        (Decision::Allow, None | Some(Decision::Allow)) => Decision::Allow,
        (Decision::ExplicitDeny, _) => Decision::ExplicitDeny,
        _ => Decision::ImplicitDeny,
    }
}

/// A stored policy compiled; one that no longer parses grants nothing, and the log says so.
fn compile(name: &str, document: &str) -> Option<Policy> {
    Policy::parse(document)
        .map_err(|e| tracing::warn!(policy = %name, error = %e, "stored policy does not parse"))
        .ok()
}

fn principal_arn(account: &Account, key: &AccessKey) -> String {
    let (partition, account) = (&account.partition, &account.id);
    match PrincipalRef::parse(&key.principal) {
        Some(PrincipalRef::User(name)) => format!("arn:{partition}:iam::{account}:user/{name}"),
        Some(PrincipalRef::Role(name)) => {
            let session = key
                .context
                .get("aws:RoleSessionName")
                .map(String::as_str)
                .unwrap_or("session");
            format!("arn:{partition}:sts::{account}:assumed-role/{name}/{session}")
        }
        Some(PrincipalRef::Root) => format!("arn:{partition}:iam::{account}:root"),
        _ => format!(
            "arn:{partition}:sts::{account}:federated-user/{}",
            key.access_key_id
        ),
    }
}

fn request_vars(
    account: &Account,
    key: &AccessKey,
    principal: Option<PrincipalRef<'_>>,
    env: RequestEnv,
) -> Vars {
    let now = OffsetDateTime::now_utc();
    let mut vars: Vars = key
        .context
        .iter()
        .map(|(k, v)| (k.clone(), vec![v.clone()]))
        .collect();
    let mut set = |k: &str, v: String| {
        vars.insert(k.to_string(), vec![v]);
    };
    set("aws:SourceIp", env.source_ip.to_string());
    set("aws:SecureTransport", env.secure_transport.to_string());
    set("aws:EpochTime", now.unix_timestamp().to_string());
    if let Ok(t) = now.replace_nanosecond(0).unwrap_or(now).format(&Rfc3339) {
        set("aws:CurrentTime", t);
    }
    set("aws:PrincipalArn", principal_arn(account, key));
    set("aws:PrincipalAccount", account.id.clone());
    if let Some(PrincipalRef::User(name)) = principal {
        set("aws:username", name.to_string());
        set("aws:userid", name.to_string());
    }
    // A date, as AWS gives it: the console's "revoke active sessions" policy compares it
    // with DateLessThan against an ISO 8601 time.
    if key.session_token.is_some() {
        let issued = OffsetDateTime::from_unix_timestamp_nanos(key.created_ms as i128 * 1_000_000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok());
        if let Some(t) = issued {
            set("aws:TokenIssueTime", t);
        }
    }
    vars
}

fn denial(account: &Account, key: &AccessKey, access: &Access, decision: Decision) -> ApiError {
    let why = match decision {
        Decision::ExplicitDeny => "with an explicit deny in a policy",
        _ => "because no policy allows the action",
    };
    ApiError::new(
        access.denied,
        format!(
            "User: {} is not authorized to perform: {} on resource: {} {why}",
            principal_arn(account, key),
            access.action,
            access.resource
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_parse() {
        assert_eq!(PrincipalRef::parse("root"), Some(PrincipalRef::Root));
        assert_eq!(
            PrincipalRef::parse("user/alice"),
            Some(PrincipalRef::User("alice"))
        );
        assert_eq!(
            PrincipalRef::parse("role/cam"),
            Some(PrincipalRef::Role("cam"))
        );
        assert_eq!(PrincipalRef::parse("session"), Some(PrincipalRef::Session));
        assert_eq!(PrincipalRef::parse("group/x"), None);
    }

    fn set(identity: &[&str], session: Option<&str>) -> PolicySet {
        PolicySet {
            identity: identity.iter().map(|d| Policy::parse(d).unwrap()).collect(),
            session: session.map(|d| Policy::parse(d).unwrap()),
            conditional: false,
        }
    }

    const ALL: &str =
        r#"{"Statement":{"Effect":"Allow","Action":"kinesisvideo:*","Resource":"*"}}"#;
    const VIEW_A: &str = r#"{"Statement":{"Effect":"Allow","Action":"kinesisvideo:ConnectAsViewer","Resource":"arn:aws:kinesisvideo:us-east-1:1:channel/a/*"}}"#;

    fn access(action: &'static str, resource: &str) -> Access {
        Access {
            action,
            resource: resource.into(),
            denied: ErrorKind::AccessDenied,
        }
    }

    #[test]
    fn session_policy_narrows_identity() {
        let vars = Vars::new();
        let a = access(
            "kinesisvideo:ConnectAsViewer",
            "arn:aws:kinesisvideo:us-east-1:1:channel/a/5",
        );
        let b = access(
            "kinesisvideo:ConnectAsViewer",
            "arn:aws:kinesisvideo:us-east-1:1:channel/b/5",
        );
        let m = access(
            "kinesisvideo:ConnectAsMaster",
            "arn:aws:kinesisvideo:us-east-1:1:channel/a/5",
        );
        let narrowed = set(&[ALL], Some(VIEW_A));
        assert_eq!(decide(&narrowed, &a, &vars), Decision::Allow);
        assert_eq!(decide(&narrowed, &b, &vars), Decision::ImplicitDeny);
        assert_eq!(decide(&narrowed, &m, &vars), Decision::ImplicitDeny);
        let session_only = set(&[], Some(VIEW_A));
        assert_eq!(decide(&session_only, &a, &vars), Decision::Allow);
        assert_eq!(decide(&session_only, &b, &vars), Decision::ImplicitDeny);
        let nothing = set(&[], None);
        assert_eq!(decide(&nothing, &a, &vars), Decision::ImplicitDeny);
    }
}

//! A slice of AWS STS, enough for `aws sts assume-role --endpoint-url` and the SDKs'
//! AssumeRole credential providers: `AssumeRole` and `GetCallerIdentity`, in STS's query
//! protocol (form-encoded `POST /`, XML answers, signed for service `sts`).
//!
//! The caller needs `sts:AssumeRole` on the role's ARN (root always has it); an unknown role
//! is refused the same way, so callers cannot probe which roles exist. A `Policy` parameter
//! becomes the session policy, which can only narrow the role's rights.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use http::StatusCode;
use oxbow_auth::policy::Policy;
use oxbow_auth::policy::{Assumer, TrustPolicy, Vars};
use oxbow_catalog::{AccessKey, SESSION_ISSUED_TO, SESSION_ROLE_ID};
use oxbow_core::validate::{self as v, Checks};
use oxbow_core::{ApiError, ErrorKind};

use crate::api::{Auth, Call, Handled, Operation, Payload};
use crate::auth::STS_SERVICE;
use crate::authz::{Access, PrincipalRef, RequestEnv};
use crate::http::Reply;
use crate::query::{self, escape, xml};
use crate::sessions::{self, SessionSpec};
use crate::state::AppState;

const NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// Routes `POST /` with a form body (how the SDKs call STS).
pub fn route(parts: &http::request::Parts) -> Option<Box<dyn Operation>> {
    query::is_call_for(parts, STS_SERVICE).then(|| Box::new(Sts) as Box<dyn Operation>)
}

/// The STS actions. AssumeRole judges the caller itself, on the role its body names.
struct Sts;

impl Operation for Sts {
    fn auth(&self) -> Auth {
        Auth::SigV4 {
            service: STS_SERVICE,
            payload: Payload::Body,
        }
    }

    fn handle<'a>(&'a self, state: &'a Arc<AppState>, call: Call) -> Handled<'a> {
        Box::pin(async move {
            let key = call.key()?;
            Ok(handle(state, key, call.bytes(), call.env(), &call.request_id).await)
        })
    }

    /// STS answers every outcome, errors included, in its own XML shape.
    fn error(&self, e: &ApiError, request_id: &str) -> Reply {
        error(e, request_id)
    }
}

/// Runs the STS action in `body` for the caller holding `key`.
async fn handle(
    state: &AppState,
    key: &AccessKey,
    body: &[u8],
    env: RequestEnv,
    request_id: &str,
) -> Reply {
    let params: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let result = match params.get("Action").map(String::as_str) {
        Some("AssumeRole") => assume_role(state, key, &params, env).await,
        Some("GetCallerIdentity") => caller_identity(state, key).await,
        other => Err(ApiError::new(
            ErrorKind::InvalidArgument,
            format!("Unsupported STS action {}", other.unwrap_or("(none)")),
        )),
    };
    match result {
        Ok((action, inner)) => xml(
            StatusCode::OK,
            format!(
                "<{action}Response xmlns=\"{NS}\"><{action}Result>{inner}</{action}Result>\
                 <ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>\
                 </{action}Response>"
            ),
        ),
        Err(e) => error(&e, request_id),
    }
}

/// An error in STS's XML shape, with the code and status STS uses for it.
fn error(e: &ApiError, request_id: &str) -> Reply {
    let (code, status) = query::common_code(e.kind).unwrap_or(match e.kind {
        ErrorKind::InvalidArgument | ErrorKind::Serialization => ("ValidationError", 400),
        _ => ("InternalFailure", 500),
    });
    query::error(NS, code, status, e, request_id)
}

/// The caller as STS names it: its ARN, and the unique id AWS returns as `UserId` — the
/// account id for root, the user's `AIDA…` id, `AROA…:session` for a role session.
async fn caller_identity(
    state: &AppState,
    key: &AccessKey,
) -> Result<(&'static str, String), ApiError> {
    let user_id = match PrincipalRef::parse(&key.principal) {
        Some(PrincipalRef::Root) => state.config.account_id.clone(),
        Some(PrincipalRef::User(name)) => state
            .catalog
            .users()
            .get(name)
            .await
            .map_err(|e| ApiError::dependency("read the user", e))?
            .map_or_else(|| key.access_key_id.clone(), |u| u.unique_id()),
        Some(PrincipalRef::Role(_)) => match (
            key.context.get(SESSION_ROLE_ID),
            key.context.get("aws:RoleSessionName"),
        ) {
            (Some(id), Some(session)) => format!("{id}:{session}"),
            _ => key.access_key_id.clone(),
        },
        Some(PrincipalRef::Session) | None => key.access_key_id.clone(),
    };
    Ok((
        "GetCallerIdentity",
        format!(
            "<Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account>",
            escape(&state.authz.principal_arn(key)),
            escape(&user_id),
            state.config.account_id
        ),
    ))
}

/// The context member (and condition key) holding a session's source identity.
const SOURCE_IDENTITY: &str = "aws:SourceIdentity";
/// IAM's session tag limits.
const MAX_TAGS: usize = 50;

/// `Tags.member.N.Key` / `.Value` of an AssumeRole form, in order, within IAM's limits.
fn session_tags(p: &HashMap<String, String>) -> Result<Vec<(String, String)>, ApiError> {
    let mut tags = Vec::new();
    for n in 1.. {
        let Some(k) = p.get(&format!("Tags.member.{n}.Key")) else {
            break;
        };
        let v = p
            .get(&format!("Tags.member.{n}.Value"))
            .cloned()
            .unwrap_or_default();
        if k.is_empty() || k.len() > 128 || v.len() > 256 {
            return Err(ApiError::invalid_argument(
                "A session tag key must be 1-128 characters and its value at most 256.",
            ));
        }
        if tags
            .iter()
            .any(|(seen, _): &(String, String)| seen.eq_ignore_ascii_case(k))
        {
            return Err(ApiError::invalid_argument(format!(
                "Duplicate session tag key {k} (keys are case-insensitive)."
            )));
        }
        tags.push((k.clone(), v));
        if tags.len() > MAX_TAGS {
            return Err(ApiError::invalid_argument(format!(
                "At most {MAX_TAGS} session tags may be passed."
            )));
        }
    }
    Ok(tags)
}

/// Session tags, keys as given (case-insensitively unique).
type SessionTags = Vec<(String, String)>;

/// The session context member listing the session's transitive tag keys (comma-separated):
/// tags a chained session inherits.
const TRANSITIVE_TAG_KEYS: &str = "oxbow:TransitiveTagKeys";

/// The transitive tags of a chained session: those the caller's session marked transitive
/// (kept whatever the new call asks), and the keys `TransitiveTagKeys.member.N` marks among
/// the new tags. Returns all tags of the new session and its transitive keys.
fn chain_tags(
    caller: &AccessKey,
    p: &HashMap<String, String>,
    mut tags: SessionTags,
) -> Result<(SessionTags, Vec<String>), ApiError> {
    let mut transitive: Vec<String> = Vec::new();
    for n in 1.. {
        let Some(k) = p.get(&format!("TransitiveTagKeys.member.{n}")) else {
            break;
        };
        if !tags.iter().any(|(t, _)| t.eq_ignore_ascii_case(k)) {
            return Err(ApiError::invalid_argument(format!(
                "The transitive tag key {k} is not one of the session tags passed."
            )));
        }
        transitive.push(k.clone());
    }
    let inherited = caller
        .context
        .get(TRANSITIVE_TAG_KEYS)
        .map(|keys| {
            keys.split(',')
                .filter(|k| !k.is_empty())
                .map(str::to_string)
        })
        .into_iter()
        .flatten();
    for k in inherited {
        if tags.iter().any(|(t, _)| t.eq_ignore_ascii_case(&k)) {
            return Err(ApiError::invalid_argument(format!(
                "The session tag {k} is transitive in the calling session and cannot be set again."
            )));
        }
        let value = caller
            .context
            .get(&format!("aws:PrincipalTag/{k}"))
            .cloned()
            .unwrap_or_default();
        tags.push((k.clone(), value));
        transitive.push(k);
    }
    if tags.len() > MAX_TAGS {
        return Err(ApiError::invalid_argument(format!(
            "A session may have at most {MAX_TAGS} tags, inherited ones included."
        )));
    }
    Ok((tags, transitive))
}

/// AssumeRole calls per second per caller at most.
const ASSUME_ROLE_PER_SECOND: u32 = 20;

/// The longest session a role session may get by assuming a role (AWS's role chaining limit).
const CHAINED_MAX_SECONDS: i64 = 3600;

fn role_name(arn: &str) -> Option<&str> {
    let (prefix, name) = arn.rsplit_once(":role/")?;
    let name = name.rsplit('/').next()?;
    (prefix.starts_with("arn:") && prefix.contains(":iam::")).then_some(name)
}

async fn assume_role(
    state: &AppState,
    key: &AccessKey,
    p: &HashMap<String, String>,
    env: RequestEnv,
) -> Result<(&'static str, String), ApiError> {
    let arn = p.get("RoleArn").map(String::as_str);
    let session = p.get("RoleSessionName").map(String::as_str);
    Checks::new()
        .required("roleArn", arn)
        .required("roleSessionName", session)
        .string("roleSessionName", session, &v::ROLE_SESSION_NAME)
        .finish()?;
    let source_identity = p.get("SourceIdentity").map(String::as_str);
    Checks::new()
        .string("sourceIdentity", source_identity, &v::ROLE_SESSION_NAME)
        .finish()?;
    let tags = session_tags(p)?;
    let (arn, session) = (arn.unwrap_or_default(), session.unwrap_or_default());
    // Sessions are issued at a bounded rate per caller (STS's Throttling past it).
    state.limit_rate(
        &state.authz.principal_arn(key),
        "AssumeRole",
        ASSUME_ROLE_PER_SECOND,
        "caller",
    )?;
    let access = Access {
        action: "sts:AssumeRole",
        resource: arn.into(),
        denied: ErrorKind::AccessDenied,
    };
    state.authz.authorize(key, &access, env).await?;
    // Tagging the session and setting its source identity are permissions of their own.
    let mut extra_actions = Vec::new();
    if !tags.is_empty() {
        extra_actions.push("sts:TagSession");
    }
    // Inherited transitive tags need no permission of the caller: they were granted before.
    let (tags, transitive) = chain_tags(key, p, tags)?;
    // A chained session keeps the source identity it has; setting one is asked only anew.
    let inherited = key.context.get(SOURCE_IDENTITY).cloned();
    if let (Some(asked), Some(had)) = (source_identity, &inherited) {
        if asked != had {
            return Err(ApiError::invalid_argument(
                "The source identity of a role session cannot be changed by assuming another role.",
            ));
        }
    }
    if source_identity.is_some() && inherited.is_none() {
        extra_actions.push("sts:SetSourceIdentity");
    }
    for action in &extra_actions {
        let access = Access {
            action,
            resource: arn.into(),
            denied: ErrorKind::AccessDenied,
        };
        state.authz.authorize(key, &access, env).await?;
    }
    let denied = || {
        ApiError::new(
            ErrorKind::AccessDenied,
            format!(
                "User: {} is not authorized to perform: sts:AssumeRole on resource: {arn}",
                state.authz.principal_arn(key)
            ),
        )
    };
    let role = match role_name(arn) {
        Some(name) => state
            .catalog
            .roles()
            .get(name)
            .await
            .map_err(|e| ApiError::dependency("read the role", e))?,
        None => None,
    }
    .filter(|r| r.arn == arn)
    .ok_or_else(denied)?;
    // The role's trust policy must name the caller too (a role without one trusts the
    // account, as roles did before trust policies).
    if let Some(doc) = &role.trust_policy {
        let trust = TrustPolicy::parse(doc)
            .map_err(|e| ApiError::server("parse the role's stored trust policy", e))?;
        let trust_arn = state.authz.trust_arn(key);
        let who = Assumer::Aws {
            arn: &trust_arn,
            account: state.authz.account_id(),
        };
        let mut vars = Vars::new();
        if let Some(id) = p.get("ExternalId") {
            vars.insert("sts:ExternalId".into(), vec![id.clone()]);
        }
        vars.insert("aws:PrincipalArn".into(), vec![trust_arn.clone()]);
        let trusted = ["sts:AssumeRole"]
            .iter()
            .chain(&extra_actions)
            .all(|action| trust.allows(who, action, &vars));
        if !trusted {
            return Err(denied());
        }
    }
    let min = state.config.min_session_seconds;
    // A role session assuming a role again (role chaining) gets at most an hour, as in AWS:
    // a short session cannot be stretched into a long one that outlives a revoked key.
    let chained = key.principal.starts_with("role/");
    let max = if chained {
        role.max_session_seconds.min(CHAINED_MAX_SECONDS)
    } else {
        role.max_session_seconds
    };
    let duration = match p.get("DurationSeconds") {
        None => 3600.min(max),
        Some(d) => match d.parse::<i64>().ok() {
            Some(d) if (min..=max).contains(&d) => d,
            Some(d) if chained && d > max && d <= role.max_session_seconds => {
                return Err(ApiError::invalid_argument(format!(
                    "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining ({d} > {CHAINED_MAX_SECONDS})."
                )))
            }
            _ => {
                return Err(ApiError::invalid_argument(format!(
                    "The requested DurationSeconds exceeds the MaxSessionDuration set for this role ({}) or is below {min}.",
                    role.max_session_seconds
                )))
            }
        },
    };
    let session_policy = p.get("Policy").cloned();
    if let Some(doc) = &session_policy {
        Policy::parse(doc).map_err(|e| ApiError::invalid_argument(e.to_string()))?;
    }
    let mut context = BTreeMap::new();
    context.insert("aws:RoleSessionName".to_string(), session.to_string());
    context.insert(SESSION_ROLE_ID.to_string(), role.unique_id());
    // Who the chain of sessions started from, for revoking a user's sessions.
    let issued_to = key.context.get(SESSION_ISSUED_TO).unwrap_or(&key.principal);
    context.insert(SESSION_ISSUED_TO.to_string(), issued_to.clone());
    // Session tags are the session's principal tags (`${aws:PrincipalTag/key}` in policies).
    for (k, v) in &tags {
        context.insert(format!("aws:PrincipalTag/{k}"), v.clone());
    }
    if !transitive.is_empty() {
        context.insert(TRANSITIVE_TAG_KEYS.to_string(), transitive.join(","));
    }
    let source_identity = source_identity.map(str::to_string).or(inherited);
    if let Some(s) = &source_identity {
        context.insert(SOURCE_IDENTITY.to_string(), s.clone());
    }
    let creds = sessions::mint(
        state,
        SessionSpec {
            principal: format!("role/{}", role.name),
            duration_secs: duration,
            context,
            session_policy,
        },
    )
    .await?;
    Ok((
        "AssumeRole",
        format!(
            "<Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey>\
             <SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials>\
             <AssumedRoleUser><AssumedRoleId>{}:{}</AssumedRoleId><Arn>{}</Arn></AssumedRoleUser>\
             {}",
            creds.access_key_id,
            creds.secret_access_key,
            creds.session_token.as_deref().unwrap_or_default(),
            sessions::expiration(&creds),
            escape(&role.unique_id()),
            escape(session),
            escape(&state.authz.principal_arn(&creds)),
            source_identity
                .map(|s| format!("<SourceIdentity>{}</SourceIdentity>", escape(&s)))
                .unwrap_or_default(),
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn text(r: Reply) -> (u16, String) {
        let status = r.status().as_u16();
        let body = r.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn errors_say_whose_fault_they_are_and_keep_causes_out() {
        let (status, body) = text(error(
            &ApiError::new(ErrorKind::InvalidArgument, "RoleArn is required"),
            "r-1",
        ))
        .await;
        assert_eq!(status, 400);
        assert!(
            body.contains("<Type>Sender</Type><Code>ValidationError</Code>"),
            "{body}"
        );

        let (status, body) = text(error(
            &ApiError::new(ErrorKind::ClientLimitExceeded, "slow down"),
            "r-3",
        ))
        .await;
        assert_eq!(status, 400);
        assert!(body.contains("<Code>Throttling</Code>"), "{body}");

        let failure = ApiError::dependency("read the role", std::io::Error::other("disk gone"));
        let (status, body) = text(error(&failure, "r-2")).await;
        assert_eq!(status, 500);
        assert!(
            body.contains("<Type>Receiver</Type><Code>InternalFailure</Code>"),
            "{body}"
        );
        assert!(body.contains("Request ID: r-2"), "{body}");
        assert!(
            !body.contains("disk gone"),
            "the cause stays in the log: {body}"
        );
    }
}

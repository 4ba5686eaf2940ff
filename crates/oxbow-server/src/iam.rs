//! The IAM query API (`POST /`, form body, signed for service `iam`), so `aws iam …` and the
//! SDKs' IAM clients manage users, keys, roles and policies with only `--endpoint-url` added.
//! It is a door onto the same model as the admin API: each action runs the admin actions of
//! the same meaning and answers in IAM's XML and error shapes. Callers are judged as on AWS:
//! root passes, others need `iam:<Action>` on the user, role or policy the call names.

use std::collections::HashMap;
use std::sync::Arc;

use http::StatusCode;
use oxbow_core::{ApiError, ErrorKind};
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::api::{Auth, Call, Handled, Judged, Operation, Payload};
use crate::auth::IAM_SERVICE;
use crate::authz::Access;
use crate::http::Reply;
use crate::query::{self, escape, xml};
use crate::state::AppState;

const NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// Routes `POST /` form requests signed for `iam`.
pub fn route(parts: &http::request::Parts) -> Option<Box<dyn Operation>> {
    query::is_call_for(parts, IAM_SERVICE).then(|| Box::new(Iam) as Box<dyn Operation>)
}

struct Iam;

impl Operation for Iam {
    fn auth(&self) -> Auth {
        Auth::SigV4 {
            service: IAM_SERVICE,
            payload: Payload::Body,
        }
    }

    /// `iam:<Action>` on the user, role or policy the call names (root passes, as always).
    fn access<'a>(&'a self, state: &'a AppState, call: &'a Call) -> Judged<'a> {
        Box::pin(async move {
            let params: HashMap<String, String> =
                form_urlencoded::parse(call.bytes()).into_owned().collect();
            let action = params.get("Action")?;
            let action = ACTIONS.iter().find(|a| a[4..] == **action)?;
            let resource = if let Some(role) = params.get("RoleName") {
                state.iam_arn("role", role)
            } else if let Some(user) = params.get("UserName") {
                state.iam_arn("user", user)
            } else if let Some(arn) = params.get("PolicyArn") {
                arn.clone()
            } else if let Some(name) = params.get("PolicyName") {
                state.iam_arn("policy", name)
            } else {
                "*".into()
            };
            Some(Access {
                action,
                resource: Arc::from(resource),
                denied: ErrorKind::AccessDenied,
            })
        })
    }

    fn handle<'a>(&'a self, state: &'a Arc<AppState>, call: Call) -> Handled<'a> {
        Box::pin(async move {
            let params: HashMap<String, String> =
                form_urlencoded::parse(call.bytes()).into_owned().collect();
            let action = params.get("Action").cloned().unwrap_or_default();
            // The caller was judged on the action before this runs (`access`).
            let inner = run(state, &action, &params).await?;
            Ok(xml(
                StatusCode::OK,
                format!(
                    "<{action}Response xmlns=\"{NS}\"><{action}Result>{inner}</{action}Result>\
                     <ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
                    call.request_id
                ),
            ))
        })
    }

    fn error(&self, e: &ApiError, request_id: &str) -> Reply {
        error(e, request_id)
    }
}

/// Whose inline policies an action is about: the member naming them, the admin action that
/// reads them, and the record it answers with.
#[derive(Clone, Copy)]
struct Holder {
    member: &'static str,
    get: &'static str,
    record: &'static str,
    /// What sets its inline policies' stored names apart.
    infix: &'static str,
}

const ROLE: Holder = Holder {
    member: "RoleName",
    get: "GetRole",
    record: "Role",
    infix: "@inline@",
};
const USER: Holder = Holder {
    member: "UserName",
    get: "GetUser",
    record: "User",
    infix: "@user-inline@",
};

fn holder(action: &str, p: &HashMap<String, String>) -> (Holder, String) {
    let kind = if action.contains("User") { USER } else { ROLE };
    (kind, p.get(kind.member).cloned().unwrap_or_default())
}

/// The inline policy `policy` of a role or user, kept as a managed policy attached to it
/// under a name of its own (`role@inline@policy`, `user@user-inline@policy`; IAM's name rules
/// allow these, so a managed policy of that exact name would collide, and long names can
/// exceed the 128 characters a policy name may have).
fn inline_name(kind: Holder, who: &str, policy: &str) -> String {
    format!("{who}{}{policy}", kind.infix)
}

fn is_inline(stored: &str) -> bool {
    stored.contains(ROLE.infix) || stored.contains(USER.infix)
}

fn names(v: &Value) -> impl Iterator<Item = &str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str)
}

/// The managed policy a `PolicyArn` names (Oxbow's policies have the root path).
fn managed_name(p: &HashMap<String, String>) -> Result<String, ApiError> {
    let arn = p.get("PolicyArn").map_or("", String::as_str);
    match arn.split_once(":policy/") {
        Some((_, name)) if !name.is_empty() && !is_inline(name) => {
            Ok(name.rsplit('/').next().unwrap_or(name).to_string())
        }
        _ => Err(ApiError::invalid_argument(format!(
            "{arn} is not a valid policy ARN."
        ))),
    }
}

/// How many users and roles each managed policy is attached to, from one listing of each
/// (a ListPolicies answer needs every policy's count).
async fn attachments<F, Fut>(admin: &F) -> Result<HashMap<String, usize>, ApiError>
where
    F: Fn(&'static str, Value) -> Fut,
    Fut: std::future::Future<Output = Result<Value, ApiError>>,
{
    let mut counts = HashMap::new();
    for (list, member) in [("ListUsers", "Users"), ("ListRoles", "Roles")] {
        let v = admin(list, json!({})).await?;
        for holder in v[member].as_array().into_iter().flatten() {
            for name in names(&holder["AttachedPolicies"]) {
                *counts.entry(name.to_string()).or_default() += 1;
            }
        }
    }
    Ok(counts)
}

/// The number of users and roles `name` is attached to.
async fn attachments_of<F, Fut>(admin: &F, name: &str) -> Result<usize, ApiError>
where
    F: Fn(&'static str, Value) -> Fut,
    Fut: std::future::Future<Output = Result<Value, ApiError>>,
{
    Ok(attachments(admin).await?.get(name).copied().unwrap_or(0))
}

fn policy_fields(pol: &Value, attachments: usize) -> String {
    format!(
        "<PolicyName>{}</PolicyName><PolicyId>ANPA{}</PolicyId><Arn>{}</Arn><Path>/</Path>\
         <DefaultVersionId>v1</DefaultVersionId><AttachmentCount>{attachments}</AttachmentCount>\
         <IsAttachable>true</IsAttachable><CreateDate>{}</CreateDate><UpdateDate>{}</UpdateDate>",
        escape(pol["PolicyName"].as_str().unwrap_or_default()),
        policy_id(pol["PolicyName"].as_str().unwrap_or_default()),
        escape(pol["Arn"].as_str().unwrap_or_default()),
        iso(&pol["CreateDate"]),
        iso(&pol["UpdateDate"])
    )
}

/// A stable id in IAM's shape (`ANPA` and 17 characters) derived from the policy's name.
fn policy_id(name: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(name.as_bytes());
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    digest
        .iter()
        .take(17)
        .map(|b| CHARS[(*b as usize) % CHARS.len()] as char)
        .collect()
}

fn arg(p: &HashMap<String, String>, name: &str) -> Value {
    p.get(name)
        .map_or(Value::Null, |v| Value::String(v.clone()))
}

/// The IAM actions served, as policies name them; anything else is refused.
const ACTIONS: &[&str] = &[
    "iam:CreateRole",
    "iam:GetRole",
    "iam:ListRoles",
    "iam:DeleteRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:CreatePolicy",
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
    "iam:ListPolicies",
    "iam:DeletePolicy",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:PutRolePolicy",
    "iam:GetRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:ListRolePolicies",
    "iam:CreateUser",
    "iam:GetUser",
    "iam:ListUsers",
    "iam:DeleteUser",
    "iam:CreateAccessKey",
    "iam:ListAccessKeys",
    "iam:UpdateAccessKey",
    "iam:DeleteAccessKey",
    "iam:AttachUserPolicy",
    "iam:DetachUserPolicy",
    "iam:ListAttachedUserPolicies",
    "iam:PutUserPolicy",
    "iam:GetUserPolicy",
    "iam:DeleteUserPolicy",
    "iam:ListUserPolicies",
];

/// One IAM action: the admin actions it stands for, and its XML result.
async fn run(
    state: &AppState,
    action: &str,
    p: &HashMap<String, String>,
) -> Result<String, ApiError> {
    let admin = |name: &'static str, body: Value| async move {
        crate::admin::run(state, true, name, body).await
    };
    let role_name = arg(p, "RoleName");
    Ok(match action {
        "CreateRole" => {
            let mut body = Map::new();
            for k in ["RoleName", "AssumeRolePolicyDocument", "MaxSessionDuration"] {
                body.insert(k.into(), arg(p, k));
            }
            let v = admin("CreateRole", Value::Object(body)).await?;
            role_xml(&v["Role"])
        }
        "GetRole" => role_xml(&admin("GetRole", json!({"RoleName": role_name})).await?["Role"]),
        "ListRoles" => {
            let v = admin("ListRoles", json!({})).await?;
            let roles: String = v["Roles"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| format!("<member>{}</member>", role_fields(r)))
                .collect();
            format!("<IsTruncated>false</IsTruncated><Roles>{roles}</Roles>")
        }
        "DeleteRole" => {
            let role = admin("GetRole", json!({"RoleName": role_name})).await?;
            if role["Role"]["AttachedPolicies"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
            {
                return Err(ApiError::new(
                    ErrorKind::DeleteConflict,
                    "Cannot delete entity, must detach all policies first.",
                ));
            }
            admin("DeleteRole", json!({"RoleName": role_name})).await?;
            String::new()
        }
        "UpdateAssumeRolePolicy" => {
            admin(
                "UpdateAssumeRolePolicy",
                json!({"RoleName": role_name, "PolicyDocument": arg(p, "PolicyDocument")}),
            )
            .await?;
            String::new()
        }
        "CreatePolicy" => {
            let v = admin(
                "CreatePolicy",
                json!({"PolicyName": arg(p, "PolicyName"), "PolicyDocument": arg(p, "PolicyDocument")}),
            )
            .await?;
            format!("<Policy>{}</Policy>", policy_fields(&v["Policy"], 0))
        }
        "AttachRolePolicy" | "DetachRolePolicy" => {
            let arn = p.get("PolicyArn").cloned().unwrap_or_default();
            let name = arn.rsplit('/').next().unwrap_or_default().to_string();
            let which = if action == "AttachRolePolicy" {
                "AttachPolicy"
            } else {
                "DetachPolicy"
            };
            admin(which, json!({"PolicyName": name, "RoleName": role_name})).await?;
            String::new()
        }
        "PutRolePolicy" | "PutUserPolicy" => {
            let (kind, who) = holder(action, p);
            admin(kind.get, json!({kind.member: who})).await?;
            let name = inline_name(kind, &who, p.get("PolicyName").map_or("", String::as_str));
            let doc = arg(p, "PolicyDocument");
            let exists = admin("GetPolicy", json!({"PolicyName": name}))
                .await
                .is_ok();
            let which = if exists {
                "UpdatePolicy"
            } else {
                "CreatePolicy"
            };
            admin(which, json!({"PolicyName": name, "PolicyDocument": doc})).await?;
            admin(
                "AttachPolicy",
                json!({"PolicyName": name, kind.member: who}),
            )
            .await?;
            String::new()
        }
        "GetRolePolicy" | "GetUserPolicy" => {
            let (kind, who) = holder(action, p);
            let policy = p.get("PolicyName").cloned().unwrap_or_default();
            let v = admin(
                "GetPolicy",
                json!({"PolicyName": inline_name(kind, &who, &policy)}),
            )
            .await?;
            format!(
                "<{m}>{}</{m}><PolicyName>{}</PolicyName><PolicyDocument>{}</PolicyDocument>",
                escape(&who),
                escape(&policy),
                encode(v["Policy"]["PolicyDocument"].as_str().unwrap_or_default()),
                m = kind.member
            )
        }
        "DeleteRolePolicy" | "DeleteUserPolicy" => {
            let (kind, who) = holder(action, p);
            let name = inline_name(kind, &who, p.get("PolicyName").map_or("", String::as_str));
            admin(
                "DetachPolicy",
                json!({"PolicyName": name, kind.member: who}),
            )
            .await?;
            admin("DeletePolicy", json!({"PolicyName": name})).await?;
            String::new()
        }
        "ListRolePolicies" | "ListUserPolicies" => {
            let (kind, who) = holder(action, p);
            let v = admin(kind.get, json!({kind.member: who})).await?;
            let prefix = inline_name(kind, &who, "");
            let names: String = names(&v[kind.record]["AttachedPolicies"])
                .filter_map(|n| n.strip_prefix(&prefix))
                .map(|n| format!("<member>{}</member>", escape(n)))
                .collect();
            format!("<PolicyNames>{names}</PolicyNames><IsTruncated>false</IsTruncated>")
        }
        "ListAttachedRolePolicies" | "ListAttachedUserPolicies" => {
            let (kind, who) = holder(action, p);
            let v = admin(kind.get, json!({kind.member: who})).await?;
            let members: String = names(&v[kind.record]["AttachedPolicies"])
                .filter(|n| !is_inline(n))
                .map(|n| {
                    format!(
                        "<member><PolicyName>{}</PolicyName><PolicyArn>{}</PolicyArn></member>",
                        escape(n),
                        escape(&state.iam_arn("policy", n))
                    )
                })
                .collect();
            format!(
                "<AttachedPolicies>{members}</AttachedPolicies><IsTruncated>false</IsTruncated>"
            )
        }
        "GetPolicy" => {
            let name = managed_name(p)?;
            let v = admin("GetPolicy", json!({"PolicyName": name})).await?;
            let count = attachments_of(&admin, &name).await?;
            format!("<Policy>{}</Policy>", policy_fields(&v["Policy"], count))
        }
        "GetPolicyVersion" => {
            let name = managed_name(p)?;
            let v = admin("GetPolicy", json!({"PolicyName": name})).await?;
            if p.get("VersionId").map(String::as_str) != Some("v1") {
                return Err(ApiError::new(
                    ErrorKind::ResourceNotFound,
                    format!("Policy {name} has no such version; Oxbow keeps one (v1)."),
                ));
            }
            format!(
                "<PolicyVersion><Document>{}</Document><VersionId>v1</VersionId>\
                 <IsDefaultVersion>true</IsDefaultVersion><CreateDate>{}</CreateDate></PolicyVersion>",
                encode(v["Policy"]["PolicyDocument"].as_str().unwrap_or_default()),
                iso(&v["Policy"]["UpdateDate"])
            )
        }
        "ListPolicies" => {
            // Oxbow has no AWS-managed policies: Scope=AWS lists none.
            let aws_only = p.get("Scope").is_some_and(|s| s == "AWS");
            let only_attached = p.get("OnlyAttached").is_some_and(|s| s == "true");
            let v = admin("ListPolicies", json!({})).await?;
            let counts = attachments(&admin).await?;
            let mut members = String::new();
            for pol in v["Policies"].as_array().into_iter().flatten() {
                let name = pol["PolicyName"].as_str().unwrap_or_default();
                if aws_only || is_inline(name) {
                    continue;
                }
                let count = counts.get(name).copied().unwrap_or(0);
                if !only_attached || count > 0 {
                    members.push_str(&format!("<member>{}</member>", policy_fields(pol, count)));
                }
            }
            format!("<IsTruncated>false</IsTruncated><Policies>{members}</Policies>")
        }
        "DeletePolicy" => {
            let name = managed_name(p)?;
            admin("GetPolicy", json!({"PolicyName": name})).await?;
            if attachments_of(&admin, &name).await? > 0 {
                return Err(ApiError::new(
                    ErrorKind::DeleteConflict,
                    "Cannot delete a policy attached to entities.",
                ));
            }
            admin("DeletePolicy", json!({"PolicyName": name})).await?;
            String::new()
        }
        "CreateUser" => {
            user_xml(&admin("CreateUser", json!({"UserName": arg(p, "UserName")})).await?["User"])
        }
        "GetUser" => {
            user_xml(&admin("GetUser", json!({"UserName": arg(p, "UserName")})).await?["User"])
        }
        "ListUsers" => {
            let v = admin("ListUsers", json!({})).await?;
            let users: String = v["Users"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|u| format!("<member>{}</member>", user_fields(u)))
                .collect();
            format!("<IsTruncated>false</IsTruncated><Users>{users}</Users>")
        }
        "DeleteUser" => {
            let user = admin("GetUser", json!({"UserName": arg(p, "UserName")})).await?;
            let keys = admin("ListAccessKeys", json!({"UserName": arg(p, "UserName")})).await?;
            let attached = user["User"]["AttachedPolicies"]
                .as_array()
                .is_some_and(|a| !a.is_empty());
            let has_keys = keys["AccessKeyMetadata"]
                .as_array()
                .is_some_and(|a| !a.is_empty());
            if attached || has_keys {
                return Err(ApiError::new(
                    ErrorKind::DeleteConflict,
                    "Cannot delete entity, must detach all policies and delete all access keys first.",
                ));
            }
            admin("DeleteUser", json!({"UserName": arg(p, "UserName")})).await?;
            String::new()
        }
        "CreateAccessKey" => {
            let v = admin("CreateAccessKey", json!({"UserName": arg(p, "UserName")})).await?;
            let k = &v["AccessKey"];
            format!(
                "<AccessKey>{}<SecretAccessKey>{}</SecretAccessKey></AccessKey>",
                key_fields(k),
                escape(k["SecretAccessKey"].as_str().unwrap_or_default())
            )
        }
        "ListAccessKeys" => {
            let v = admin("ListAccessKeys", json!({"UserName": arg(p, "UserName")})).await?;
            let keys: String = v["AccessKeyMetadata"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|k| format!("<member>{}</member>", key_fields(k)))
                .collect();
            format!(
                "<UserName>{}</UserName><IsTruncated>false</IsTruncated><AccessKeyMetadata>{keys}</AccessKeyMetadata>",
                escape(p.get("UserName").map_or("", String::as_str))
            )
        }
        "UpdateAccessKey" => {
            admin(
                "UpdateAccessKey",
                json!({"AccessKeyId": arg(p, "AccessKeyId"), "Status": arg(p, "Status")}),
            )
            .await?;
            String::new()
        }
        "DeleteAccessKey" => {
            admin(
                "DeleteAccessKey",
                json!({"AccessKeyId": arg(p, "AccessKeyId")}),
            )
            .await?;
            String::new()
        }
        "AttachUserPolicy" | "DetachUserPolicy" => {
            let arn = p.get("PolicyArn").cloned().unwrap_or_default();
            let name = arn.rsplit('/').next().unwrap_or_default().to_string();
            let which = if action == "AttachUserPolicy" {
                "AttachPolicy"
            } else {
                "DetachPolicy"
            };
            admin(
                which,
                json!({"PolicyName": name, "UserName": arg(p, "UserName")}),
            )
            .await?;
            String::new()
        }
        other => {
            return Err(ApiError::new(
                ErrorKind::InvalidArgument,
                format!("Unsupported IAM action {other}."),
            ))
        }
    })
}

/// Policy documents travel URL-encoded inside IAM's XML (the SDKs decode them).
fn encode(doc: &str) -> String {
    escape(
        &form_urlencoded::byte_serialize(doc.as_bytes())
            .collect::<String>()
            .replace('+', "%20"),
    )
}

fn iso(seconds: &Value) -> String {
    let secs = seconds.as_f64().unwrap_or_default() as i64;
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn role_fields(r: &Value) -> String {
    let s = |k: &str| escape(r[k].as_str().unwrap_or_default());
    let trust = r["AssumeRolePolicyDocument"]
        .as_str()
        .map(|d| {
            format!(
                "<AssumeRolePolicyDocument>{}</AssumeRolePolicyDocument>",
                encode(d)
            )
        })
        .unwrap_or_default();
    format!(
        "<Path>/</Path><RoleName>{}</RoleName><RoleId>{}</RoleId><Arn>{}</Arn>\
         <CreateDate>{}</CreateDate>{trust}<MaxSessionDuration>{}</MaxSessionDuration>",
        s("RoleName"),
        s("RoleId"),
        s("Arn"),
        iso(&r["CreateDate"]),
        r["MaxSessionDuration"].as_i64().unwrap_or(3600)
    )
}

fn user_fields(u: &Value) -> String {
    let s = |k: &str| escape(u[k].as_str().unwrap_or_default());
    format!(
        "<Path>/</Path><UserName>{}</UserName><UserId>{}</UserId><Arn>{}</Arn><CreateDate>{}</CreateDate>",
        s("UserName"),
        s("UserId"),
        s("Arn"),
        iso(&u["CreateDate"])
    )
}

fn user_xml(u: &Value) -> String {
    format!("<User>{}</User>", user_fields(u))
}

fn key_fields(k: &Value) -> String {
    let s = |f: &str| escape(k[f].as_str().unwrap_or_default());
    format!(
        "<UserName>{}</UserName><AccessKeyId>{}</AccessKeyId><Status>{}</Status><CreateDate>{}</CreateDate>",
        s("UserName"),
        s("AccessKeyId"),
        s("Status"),
        iso(&k["CreateDate"])
    )
}

fn role_xml(r: &Value) -> String {
    format!("<Role>{}</Role>", role_fields(r))
}

/// IAM's error codes.
fn error(e: &ApiError, request_id: &str) -> Reply {
    use ErrorKind::*;
    let (code, status) = match e.kind {
        ResourceNotFound => ("NoSuchEntity", 404),
        DeleteConflict => ("DeleteConflict", 409),
        ResourceInUse => ("EntityAlreadyExists", 409),
        InvalidArgument if e.message.contains("malformed policy") => {
            ("MalformedPolicyDocument", 400)
        }
        InvalidArgument | Serialization => ("ValidationError", 400),
        kind => query::common_code(kind).unwrap_or(("ServiceFailure", 500)),
    };
    query::error(NS, code, status, e, request_id)
}

//! The IAM query API (`POST /`, form body, signed for service `iam`), so `aws iam …` and the
//! SDKs' IAM clients manage roles and their policies with only `--endpoint-url` added. It is a
//! door onto the same model as the admin API: each action runs the admin action of the same
//! meaning and answers in IAM's XML and error shapes. This version serves users and their
//! access keys, roles (create, get, list, delete, trust policy), managed policies attached to
//! users and roles, and inline role policies; it takes the root principal, as the admin API
//! does.

use std::collections::HashMap;
use std::sync::Arc;

use http::StatusCode;
use oxbow_core::{ApiError, ErrorKind};
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::api::{Auth, Call, Handled, Operation, Payload};
use crate::auth::IAM_SERVICE;
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

    fn handle<'a>(&'a self, state: &'a Arc<AppState>, call: Call) -> Handled<'a> {
        Box::pin(async move {
            let params: HashMap<String, String> =
                form_urlencoded::parse(call.bytes()).into_owned().collect();
            let action = params.get("Action").cloned().unwrap_or_default();
            let inner = run(state, call.is_root(), &action, &params).await?;
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

/// The inline policy `policy` of role `role`, kept as a managed policy attached to the role,
/// under a name of its own (`role@inline@policy`; IAM's name rules allow it, so a managed
/// policy of that exact name would collide, and a long role and policy name can exceed the
/// 128 characters a policy name may have).
fn inline_name(role: &str, policy: &str) -> String {
    format!("{role}@inline@{policy}")
}

fn arg(p: &HashMap<String, String>, name: &str) -> Value {
    p.get(name)
        .map_or(Value::Null, |v| Value::String(v.clone()))
}

/// One IAM action: the admin actions it stands for, and its XML result.
async fn run(
    state: &AppState,
    root: bool,
    action: &str,
    p: &HashMap<String, String>,
) -> Result<String, ApiError> {
    let admin = |name: &'static str, body: Value| async move {
        crate::admin::run(state, root, name, body).await
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
                    ErrorKind::ResourceInUse,
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
            let pol = &v["Policy"];
            format!(
                "<Policy><PolicyName>{}</PolicyName><Arn>{}</Arn><Path>/</Path>\
                 <DefaultVersionId>v1</DefaultVersionId><AttachmentCount>0</AttachmentCount>\
                 <IsAttachable>true</IsAttachable></Policy>",
                escape(pol["PolicyName"].as_str().unwrap_or_default()),
                escape(pol["Arn"].as_str().unwrap_or_default())
            )
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
        "PutRolePolicy" => {
            let role = role_name.as_str().unwrap_or_default().to_string();
            admin("GetRole", json!({"RoleName": role})).await?;
            let name = inline_name(&role, p.get("PolicyName").map_or("", String::as_str));
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
                json!({"PolicyName": name, "RoleName": role}),
            )
            .await?;
            String::new()
        }
        "GetRolePolicy" => {
            let role = role_name.as_str().unwrap_or_default().to_string();
            let policy = p.get("PolicyName").cloned().unwrap_or_default();
            let v = admin(
                "GetPolicy",
                json!({"PolicyName": inline_name(&role, &policy)}),
            )
            .await?;
            format!(
                "<RoleName>{}</RoleName><PolicyName>{}</PolicyName><PolicyDocument>{}</PolicyDocument>",
                escape(&role),
                escape(&policy),
                encode(v["Policy"]["PolicyDocument"].as_str().unwrap_or_default())
            )
        }
        "DeleteRolePolicy" => {
            let role = role_name.as_str().unwrap_or_default().to_string();
            let name = inline_name(&role, p.get("PolicyName").map_or("", String::as_str));
            admin(
                "DetachPolicy",
                json!({"PolicyName": name, "RoleName": role}),
            )
            .await?;
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
                    ErrorKind::ResourceInUse,
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
        ResourceInUse if e.message.contains("must detach") => ("DeleteConflict", 409),
        ResourceInUse => ("EntityAlreadyExists", 409),
        InvalidArgument if e.message.contains("malformed policy") => {
            ("MalformedPolicyDocument", 400)
        }
        InvalidArgument | Serialization => ("ValidationError", 400),
        kind => query::common_code(kind).unwrap_or(("ServiceFailure", 500)),
    };
    query::error(NS, code, status, e, request_id)
}

//! The admin API: `POST /admin/<Action>` with a JSON body, signed like any KVS call, for the
//! root principal only. It manages who may do what: users and their access keys, policies,
//! roles, IoT role aliases, things and device certificates, and camera ownership. Member names
//! follow IAM and IoT (`UserName`, `PolicyDocument`, `RoleAlias`, ...). `oxbow admin` drives it.
//!
//! Every change clears the authorization caches, so it applies to the next request.

mod args;
mod identities;
mod iot;
mod owners;
mod revocations;
mod things;

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use oxbow_core::{ApiError, ErrorKind};
use serde_json::Value;

use crate::api::{Call, Handled, Operation};
use crate::http::json;
use crate::state::AppState;
use args::Args;

/// The path prefix of admin actions.
pub const PREFIX: &str = "/admin/";

/// Routes `POST /admin/<Action>`.
pub fn route(parts: &http::request::Parts) -> Option<Box<dyn Operation>> {
    if parts.method != http::Method::POST {
        return None;
    }
    let action = parts.uri.path().strip_prefix(PREFIX)?;
    Some(Box::new(Admin(action.to_string())))
}

/// One admin action, signed like any KVS call; it takes the root principal only, so no
/// policy judges it.
struct Admin(String);

impl Operation for Admin {
    fn handle<'a>(&'a self, state: &'a Arc<AppState>, call: Call) -> Handled<'a> {
        Box::pin(async move {
            let v = handle(state, call.is_root(), &self.0, call.bytes()).await?;
            Ok(json(StatusCode::OK, Bytes::from(v.to_string())))
        })
    }
}

/// Runs admin `action` with a JSON body: the model the other doors (the IAM query API) use.
pub(crate) async fn run(
    state: &AppState,
    root: bool,
    action: &str,
    body: Value,
) -> Result<Value, ApiError> {
    handle(state, root, action, body.to_string().as_bytes()).await
}

/// Runs admin `action` for a caller (`root` or not).
async fn handle(
    state: &AppState,
    root: bool,
    action: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    if !root {
        return Err(ApiError::new(
            ErrorKind::AccessDenied,
            "Only the root principal may use the admin API.",
        ));
    }
    let args = Args::parse(body)?;
    let result = dispatch(state, action, &args).await;
    if result.is_ok() && !action.starts_with("List") && !action.starts_with("Get") {
        state.authz.clear();
    }
    result
}

/// The admin actions: one table gives both the dispatch and the list of names.
macro_rules! actions {
    ($($name:literal => $handler:expr,)*) => {
        async fn dispatch(state: &AppState, action: &str, a: &Args) -> Result<Value, ApiError> {
            use identities as id;
            match action {
                $($name => $handler(state, a).await,)*
                _ => Err(ApiError::new(
                    ErrorKind::UnknownOperation,
                    format!("No admin action {action}"),
                )),
            }
        }

        /// Every admin action, for `oxbow admin` and the routing test.
        pub const ACTIONS: &[&str] = &[$($name,)*];
    };
}

actions! {
    "CreateUser" => id::create_user,
    "GetUser" => id::get_user,
    "ListUsers" => |s, _| id::list_users(s),
    "DeleteUser" => id::delete_user,
    "CreateAccessKey" => id::create_access_key,
    "ListAccessKeys" => id::list_access_keys,
    "UpdateAccessKey" => id::update_access_key,
    "DeleteAccessKey" => id::delete_access_key,
    "CreatePolicy" => |s, a| id::put_policy(s, a, true),
    "UpdatePolicy" => |s, a| id::put_policy(s, a, false),
    "GetPolicy" => id::get_policy,
    "ListPolicies" => |s, _| id::list_policies(s),
    "DeletePolicy" => id::delete_policy,
    "AttachPolicy" => |s, a| id::attach_policy(s, a, true),
    "DetachPolicy" => |s, a| id::attach_policy(s, a, false),
    "CreateRole" => id::create_role,
    "GetRole" => id::get_role,
    "ListRoles" => |s, _| id::list_roles(s),
    "DeleteRole" => id::delete_role,
    "UpdateAssumeRolePolicy" => id::update_assume_role_policy,
    "CreateRoleAlias" => iot::create_role_alias,
    "GetRoleAlias" => iot::get_role_alias,
    "UpdateRoleAlias" => iot::update_role_alias,
    "ListRoleAliases" => |s, _| iot::list_role_aliases(s),
    "DeleteRoleAlias" => iot::delete_role_alias,
    "CreateThingType" => things::create_thing_type,
    "GetThingType" => things::get_thing_type,
    "ListThingTypes" => |s, _| things::list_thing_types(s),
    "DeleteThingType" => things::delete_thing_type,
    "CreateThing" => things::create_thing,
    "GetThing" => things::get_thing,
    "UpdateThing" => things::update_thing,
    "ListThings" => things::list_things,
    "DeleteThing" => things::delete_thing,
    "CreateIotPolicy" => iot::create_iot_policy,
    "GetIotPolicy" => iot::get_iot_policy,
    "ListIotPolicies" => |s, _| iot::list_iot_policies(s),
    "DeleteIotPolicy" => iot::delete_iot_policy,
    "CreateKeysAndCertificate" => iot::create_keys_and_certificate,
    "RegisterCertificate" => iot::register_certificate,
    "GetCertificate" => iot::get_certificate,
    "ListCertificates" => |s, _| iot::list_certificates(s),
    "UpdateCertificate" => iot::update_certificate,
    "DeleteCertificate" => iot::delete_certificate,
    "AttachThingPrincipal" => |s, a| iot::attach_thing(s, a, true),
    "DetachThingPrincipal" => |s, a| iot::attach_thing(s, a, false),
    "RevokeSessions" => revocations::revoke_sessions,
    "RotateSessionKey" => |s, _| revocations::rotate_session_key(s),
    "ListRevocations" => |s, _| revocations::list_revocations(s),
    "AddCameraOwner" => owners::add,
    "ListCameraOwners" => owners::list,
    "RemoveCameraOwner" => owners::remove,
    "ListDeadLetters" => |s: &AppState, _| {
        let letters = s.fragment_events.dead_letters();
        async move { Ok(serde_json::json!({ "DeadLetters": letters })) }
    },
}

fn storage(e: oxbow_catalog::CatalogError) -> ApiError {
    match e {
        oxbow_catalog::CatalogError::NotFound => {
            ApiError::new(ErrorKind::ResourceNotFound, "No such resource.")
        }
        oxbow_catalog::CatalogError::Exists => {
            ApiError::new(ErrorKind::ResourceInUse, "The resource already exists.")
        }
        other => crate::resource::catalog_failure("change identities in the catalog", other),
    }
}

/// `PolicyDocument`: at most `max_chars` characters other than white space (as IAM and IoT
/// count a policy's size), else `too_big`'s error; and it must parse in the IAM grammar.
fn policy_document(
    a: &Args,
    max_chars: usize,
    too_big: impl FnOnce() -> ApiError,
) -> Result<String, ApiError> {
    let document = a.text("PolicyDocument")?;
    if document.chars().filter(|c| !c.is_whitespace()).count() > max_chars {
        return Err(too_big());
    }
    oxbow_auth::policy::Policy::parse(&document)
        .map_err(|e| ApiError::new(ErrorKind::MalformedPolicyDocument, e.to_string()))?;
    Ok(document)
}

/// Every record of a table, in key order.
async fn all<T: oxbow_catalog::Resource>(
    table: &dyn oxbow_catalog::Table<T>,
) -> Result<Vec<T>, ApiError> {
    table.list(None, None, usize::MAX).await.map_err(storage)
}

/// The record under `key`, or ResourceNotFound naming it as a `what`.
async fn find<T: oxbow_catalog::Resource>(
    table: &dyn oxbow_catalog::Table<T>,
    key: &str,
    what: &str,
) -> Result<T, ApiError> {
    table
        .get(key)
        .await
        .map_err(storage)?
        .ok_or_else(|| not_found(what, key))
}

fn not_found(what: &str, name: &str) -> ApiError {
    ApiError::new(
        ErrorKind::ResourceNotFound,
        format!("The {what} {name} does not exist."),
    )
}

fn exists(what: &str, name: &str) -> ApiError {
    ApiError::new(
        ErrorKind::ResourceInUse,
        format!("The {what} {name} already exists."),
    )
}

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

use oxbow_catalog::AccessKey;
use oxbow_core::{ApiError, ErrorKind};
use serde_json::Value;

use crate::authz::ROOT;
use crate::state::AppState;
use args::Args;

/// The path prefix of admin actions.
pub const PREFIX: &str = "/admin/";

/// Runs admin `action` for the caller holding `key`.
pub async fn handle(
    state: &AppState,
    key: &AccessKey,
    action: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    if key.principal != ROOT {
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

async fn dispatch(state: &AppState, action: &str, a: &Args) -> Result<Value, ApiError> {
    use identities as id;
    match action {
        "CreateUser" => id::create_user(state, a).await,
        "GetUser" => id::get_user(state, a).await,
        "ListUsers" => id::list_users(state).await,
        "DeleteUser" => id::delete_user(state, a).await,
        "CreateAccessKey" => id::create_access_key(state, a).await,
        "ListAccessKeys" => id::list_access_keys(state, a).await,
        "UpdateAccessKey" => id::update_access_key(state, a).await,
        "DeleteAccessKey" => id::delete_access_key(state, a).await,
        "CreatePolicy" => id::put_policy(state, a, true).await,
        "UpdatePolicy" => id::put_policy(state, a, false).await,
        "GetPolicy" => id::get_policy(state, a).await,
        "ListPolicies" => id::list_policies(state).await,
        "DeletePolicy" => id::delete_policy(state, a).await,
        "AttachPolicy" => id::attach_policy(state, a, true).await,
        "DetachPolicy" => id::attach_policy(state, a, false).await,
        "CreateRole" => id::create_role(state, a).await,
        "GetRole" => id::get_role(state, a).await,
        "ListRoles" => id::list_roles(state).await,
        "DeleteRole" => id::delete_role(state, a).await,
        "CreateRoleAlias" => iot::create_role_alias(state, a).await,
        "ListRoleAliases" => iot::list_role_aliases(state).await,
        "DeleteRoleAlias" => iot::delete_role_alias(state, a).await,
        "CreateThing" => iot::create_thing(state, a).await,
        "ListThings" => iot::list_things(state).await,
        "DeleteThing" => iot::delete_thing(state, a).await,
        "CreateKeysAndCertificate" => iot::create_keys_and_certificate(state, a).await,
        "RegisterCertificate" => iot::register_certificate(state, a).await,
        "GetCertificate" => iot::get_certificate(state, a).await,
        "ListCertificates" => iot::list_certificates(state).await,
        "UpdateCertificate" => iot::update_certificate(state, a).await,
        "DeleteCertificate" => iot::delete_certificate(state, a).await,
        "AttachThingPrincipal" => iot::attach_thing(state, a, true).await,
        "DetachThingPrincipal" => iot::attach_thing(state, a, false).await,
        "AddCameraOwner" => owners::add(state, a).await,
        "ListCameraOwners" => owners::list(state, a).await,
        "RemoveCameraOwner" => owners::remove(state, a).await,
        _ => Err(ApiError::new(
            ErrorKind::UnknownOperation,
            format!("No admin action {action}"),
        )),
    }
}

/// Every admin action, for `oxbow admin --help` and the routing test.
pub const ACTIONS: &[&str] = &[
    "CreateUser",
    "GetUser",
    "ListUsers",
    "DeleteUser",
    "CreateAccessKey",
    "ListAccessKeys",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "CreatePolicy",
    "UpdatePolicy",
    "GetPolicy",
    "ListPolicies",
    "DeletePolicy",
    "AttachPolicy",
    "DetachPolicy",
    "CreateRole",
    "GetRole",
    "ListRoles",
    "DeleteRole",
    "CreateRoleAlias",
    "ListRoleAliases",
    "DeleteRoleAlias",
    "CreateThing",
    "ListThings",
    "DeleteThing",
    "CreateKeysAndCertificate",
    "RegisterCertificate",
    "GetCertificate",
    "ListCertificates",
    "UpdateCertificate",
    "DeleteCertificate",
    "AttachThingPrincipal",
    "DetachThingPrincipal",
    "AddCameraOwner",
    "ListCameraOwners",
    "RemoveCameraOwner",
];

fn storage(e: oxbow_catalog::CatalogError) -> ApiError {
    match e {
        oxbow_catalog::CatalogError::Rejected(api) => api,
        oxbow_catalog::CatalogError::NotFound => {
            ApiError::new(ErrorKind::ResourceNotFound, "No such resource.")
        }
        oxbow_catalog::CatalogError::Exists => {
            ApiError::new(ErrorKind::ResourceInUse, "The resource already exists.")
        }
        other => ApiError::internal(other.to_string()),
    }
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

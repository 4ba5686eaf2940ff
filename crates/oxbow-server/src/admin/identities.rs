//! Users, access keys, policies, roles and policy attachments.

use oxbow_catalog::{AccessKey, CameraOwnerRecord, PolicyRecord, RoleRecord, UserRecord};
use oxbow_core::time::{ms_to_json_seconds, now_ms};
use oxbow_core::validate as v;
use oxbow_core::{ids, ApiError, ErrorKind};
use serde_json::{json, Value};

use super::{all, exists, find, not_found, storage, Args};
use crate::authz::{PrincipalRef, ROOT};
use crate::state::AppState;

fn user_json(u: &UserRecord) -> Value {
    json!({"UserName": u.name, "UserId": u.unique_id(), "Arn": u.arn, "CreateDate": ms_to_json_seconds(u.created_ms),
           "AttachedPolicies": u.policies})
}

fn role_json(r: &RoleRecord) -> Value {
    json!({"RoleName": r.name, "RoleId": r.unique_id(), "Arn": r.arn, "CreateDate": ms_to_json_seconds(r.created_ms),
           "AssumeRolePolicyDocument": r.trust_policy,
           "MaxSessionDuration": r.max_session_seconds, "AttachedPolicies": r.policies})
}

fn policy_json(p: &PolicyRecord) -> Value {
    json!({"PolicyName": p.name, "Arn": p.arn, "CreateDate": ms_to_json_seconds(p.created_ms),
           "UpdateDate": ms_to_json_seconds(p.updated_ms), "PolicyDocument": p.document})
}

fn key_json(k: &AccessKey) -> Value {
    let user = match PrincipalRef::parse(&k.principal) {
        Some(PrincipalRef::User(name)) => name.to_string(),
        _ => k.principal.clone(),
    };
    json!({"UserName": user, "AccessKeyId": k.access_key_id,
           "Status": if k.active { "Active" } else { "Inactive" },
           "CreateDate": ms_to_json_seconds(k.created_ms)})
}

pub async fn create_user(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let name = a.req("UserName", &v::IAM_NAME)?;
    let user = UserRecord {
        arn: state.iam_arn("user", &name),
        name: name.clone(),
        created_ms: now_ms(),
        policies: Vec::new(),
        user_id: oxbow_core::ids::access_key_id("AIDA"),
    };
    state
        .catalog
        .users()
        .insert(user.clone(), u64::MAX)
        .await
        .map_err(|e| match e {
            oxbow_catalog::CatalogError::Exists => exists("user", &name),
            e => storage(e),
        })?;
    Ok(json!({ "User": user_json(&user) }))
}

async fn user(state: &AppState, name: &str) -> Result<UserRecord, ApiError> {
    state
        .catalog
        .users()
        .get(name)
        .await
        .map_err(storage)?
        .ok_or_else(|| not_found("user", name))
}

pub async fn get_user(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let u = user(state, &a.req("UserName", &v::IAM_NAME)?).await?;
    Ok(json!({ "User": user_json(&u) }))
}

pub async fn list_users(state: &AppState) -> Result<Value, ApiError> {
    let users = all(state.catalog.users()).await?;
    Ok(json!({ "Users": users.iter().map(user_json).collect::<Vec<_>>() }))
}

/// Deleting a user also deletes its access keys and camera ownerships.
pub async fn delete_user(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let name = a.req("UserName", &v::IAM_NAME)?;
    user(state, &name).await?;
    for k in keys_of(state, &format!("user/{name}")).await? {
        remove_key(state, &k.access_key_id).await?;
    }
    let owners = state.catalog.camera_owners();
    let prefix = CameraOwnerRecord::key_for(&name, "");
    for o in owners
        .list(Some(&prefix), None, usize::MAX)
        .await
        .map_err(storage)?
    {
        owners.remove(&o.key).await.map_err(storage)?;
    }
    state.catalog.users().remove(&name).await.map_err(storage)?;
    Ok(json!({}))
}

async fn keys_of(state: &AppState, principal: &str) -> Result<Vec<AccessKey>, ApiError> {
    Ok(all(state.catalog.access_keys())
        .await?
        .into_iter()
        .filter(|k| k.principal == principal && k.session_token.is_none())
        .collect())
}

async fn remove_key(state: &AppState, id: &str) -> Result<(), ApiError> {
    state
        .catalog
        .access_keys()
        .remove(id)
        .await
        .map_err(storage)?;
    state.keys.invalidate(id);
    Ok(())
}

pub async fn create_access_key(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let name = a.req("UserName", &v::IAM_NAME)?;
    user(state, &name).await?;
    let key = AccessKey::long_term(
        &ids::access_key_id("AKIA"),
        &ids::secret_access_key(),
        &format!("user/{name}"),
        now_ms(),
    );
    state
        .catalog
        .access_keys()
        .insert(key.clone(), u64::MAX)
        .await
        .map_err(storage)?;
    let mut out = key_json(&key);
    out["SecretAccessKey"] = key.secret_access_key.into();
    Ok(json!({ "AccessKey": out }))
}

pub async fn list_access_keys(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let principal = match a.opt("UserName", &v::IAM_NAME)? {
        Some(name) => format!("user/{name}"),
        None => ROOT.to_string(),
    };
    let keys = keys_of(state, &principal).await?;
    Ok(json!({ "AccessKeyMetadata": keys.iter().map(key_json).collect::<Vec<_>>() }))
}

fn key_id(a: &Args) -> Result<String, ApiError> {
    let id = a.text("AccessKeyId")?;
    if id.len() < 16 || id.len() > 128 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ApiError::invalid_argument("AccessKeyId is not valid."));
    }
    Ok(id)
}

async fn user_key(state: &AppState, id: &str) -> Result<AccessKey, ApiError> {
    let key = find(state.catalog.access_keys(), id, "access key").await?;
    if key.principal == ROOT {
        return Err(ApiError::invalid_argument(
            "The root key is managed by `oxbow serve` (OXBOW_ROOT_ACCESS_KEY_ID).",
        ));
    }
    Ok(key)
}

/// `Status`: `Active` or `Inactive`. An inactive key is refused at once (revocation).
pub async fn update_access_key(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let id = key_id(a)?;
    let active = match a.text("Status")?.as_str() {
        "Active" => true,
        "Inactive" => false,
        _ => {
            return Err(ApiError::invalid_argument(
                "Status must be Active or Inactive.",
            ))
        }
    };
    user_key(state, &id).await?;
    state
        .catalog
        .access_keys()
        .update(
            &id,
            Box::new(move |k: &mut AccessKey| {
                k.active = active;
                Ok(())
            }),
        )
        .await
        .map_err(storage)?;
    state.keys.invalidate(&id);
    Ok(json!({}))
}

pub async fn delete_access_key(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let id = key_id(a)?;
    user_key(state, &id).await?;
    remove_key(state, &id).await?;
    Ok(json!({}))
}

/// IAM's limit on a managed policy document, in characters other than white space.
const MAX_POLICY_CHARS: usize = 6_144;

/// CreatePolicy (`create`) or UpdatePolicy: the document must parse in the IAM grammar.
pub async fn put_policy(state: &AppState, a: &Args, create: bool) -> Result<Value, ApiError> {
    let name = a.req("PolicyName", &v::POLICY_NAME)?;
    let document = super::policy_document(a, MAX_POLICY_CHARS, || {
        ApiError::new(
            ErrorKind::LimitExceeded,
            format!("Cannot exceed quota for PolicySize: {MAX_POLICY_CHARS}"),
        )
    })?;
    let now = now_ms();
    let table = state.catalog.policies();
    let record = if create {
        let record = PolicyRecord {
            arn: state.iam_arn("policy", &name),
            name: name.clone(),
            created_ms: now,
            updated_ms: now,
            document,
        };
        table
            .insert(record.clone(), u64::MAX)
            .await
            .map_err(|e| match e {
                oxbow_catalog::CatalogError::Exists => exists("policy", &name),
                e => storage(e),
            })?;
        record
    } else {
        table
            .update(
                &name,
                Box::new(move |p: &mut PolicyRecord| {
                    p.document = document;
                    p.updated_ms = now;
                    Ok(())
                }),
            )
            .await
            .map_err(|e| match e {
                oxbow_catalog::CatalogError::NotFound => not_found("policy", &name),
                e => storage(e),
            })?
    };
    Ok(json!({ "Policy": policy_json(&record) }))
}

pub async fn get_policy(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let name = a.req("PolicyName", &v::POLICY_NAME)?;
    let p = find(state.catalog.policies(), &name, "policy").await?;
    Ok(json!({ "Policy": policy_json(&p) }))
}

pub async fn list_policies(state: &AppState) -> Result<Value, ApiError> {
    let all = all(state.catalog.policies()).await?;
    Ok(json!({ "Policies": all.iter().map(policy_json).collect::<Vec<_>>() }))
}

/// Deleting a policy detaches it from every user, role and certificate.
pub async fn delete_policy(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let name = a.req("PolicyName", &v::POLICY_NAME)?;
    let c = &state.catalog;
    c.policies()
        .get(&name)
        .await
        .map_err(storage)?
        .ok_or_else(|| not_found("policy", &name))?;
    for u in all(c.users()).await? {
        if u.policies.contains(&name) {
            attach(state, Holder::User(u.name), &name, false).await?;
        }
    }
    for r in all(c.roles()).await? {
        if r.policies.contains(&name) {
            attach(state, Holder::Role(r.name), &name, false).await?;
        }
    }
    for cert in all(c.certificates()).await? {
        if cert.policies.contains(&name) {
            attach(state, Holder::Certificate(cert.id), &name, false).await?;
        }
    }
    c.policies().remove(&name).await.map_err(storage)?;
    Ok(json!({}))
}

/// What a policy can be attached to.
enum Holder {
    User(String),
    Role(String),
    Certificate(String),
}

fn set_attached(list: &mut Vec<String>, policy: &str, attached: bool) {
    list.retain(|p| p != policy);
    if attached {
        list.push(policy.to_string());
    }
}

async fn attach(
    state: &AppState,
    holder: Holder,
    policy: &str,
    attached: bool,
) -> Result<(), ApiError> {
    let c = &state.catalog;
    let p = policy.to_string();
    let result = match &holder {
        Holder::User(name) => c
            .users()
            .update(
                name,
                Box::new(move |u: &mut UserRecord| {
                    set_attached(&mut u.policies, &p, attached);
                    Ok(())
                }),
            )
            .await
            .map(drop),
        Holder::Role(name) => c
            .roles()
            .update(
                name,
                Box::new(move |r: &mut RoleRecord| {
                    set_attached(&mut r.policies, &p, attached);
                    Ok(())
                }),
            )
            .await
            .map(drop),
        Holder::Certificate(id) => c
            .certificates()
            .update(
                id,
                Box::new(move |cert: &mut oxbow_catalog::CertificateRecord| {
                    set_attached(&mut cert.policies, &p, attached);
                    Ok(())
                }),
            )
            .await
            .map(drop),
    };
    result.map_err(|e| match (e, &holder) {
        (oxbow_catalog::CatalogError::NotFound, Holder::User(n)) => not_found("user", n),
        (oxbow_catalog::CatalogError::NotFound, Holder::Role(n)) => not_found("role", n),
        (oxbow_catalog::CatalogError::NotFound, Holder::Certificate(n)) => {
            not_found("certificate", n)
        }
        (e, _) => storage(e),
    })
}

/// AttachPolicy / DetachPolicy: `PolicyName` and one of `UserName`, `RoleName`,
/// `CertificateId`.
pub async fn attach_policy(state: &AppState, a: &Args, attached: bool) -> Result<Value, ApiError> {
    let policy = a.req("PolicyName", &v::POLICY_NAME)?;
    let holder = match (
        a.opt("UserName", &v::IAM_NAME)?,
        a.opt("RoleName", &v::IAM_NAME)?,
        a.opt("CertificateId", &v::CERTIFICATE_ID)?,
    ) {
        (Some(u), None, None) => Holder::User(u),
        (None, Some(r), None) => Holder::Role(r),
        (None, None, Some(c)) => Holder::Certificate(c.to_ascii_lowercase()),
        _ => {
            return Err(ApiError::invalid_argument(
                "Name exactly one of UserName, RoleName or CertificateId.",
            ))
        }
    };
    // A certificate takes IoT policies, and (as before IoT policies had their own table)
    // IAM policies of the name.
    let c = &state.catalog;
    let known = match &holder {
        Holder::Certificate(_) => {
            c.iot_policies()
                .get(&policy)
                .await
                .map_err(storage)?
                .is_some()
                || c.policies().get(&policy).await.map_err(storage)?.is_some()
        }
        _ => c.policies().get(&policy).await.map_err(storage)?.is_some(),
    };
    if attached && !known {
        return Err(not_found("policy", &policy));
    }
    attach(state, holder, &policy, attached).await?;
    Ok(json!({}))
}

pub async fn create_role(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let name = a.req("RoleName", &v::IAM_NAME)?;
    let role = RoleRecord {
        arn: state.iam_arn("role", &name),
        name: name.clone(),
        created_ms: now_ms(),
        policies: Vec::new(),
        max_session_seconds: a.int("MaxSessionDuration", 3600, 3600, 43_200)?,
        role_id: oxbow_core::ids::access_key_id("AROA"),
        trust_policy: trust_document(a, "AssumeRolePolicyDocument")?,
    };
    state
        .catalog
        .roles()
        .insert(role.clone(), u64::MAX)
        .await
        .map_err(|e| match e {
            oxbow_catalog::CatalogError::Exists => exists("role", &name),
            e => storage(e),
        })?;
    Ok(json!({ "Role": role_json(&role) }))
}

/// An optional trust policy document from `member`, refused unless it parses.
fn trust_document(a: &Args, member: &str) -> Result<Option<String>, ApiError> {
    let Ok(doc) = a.text(member) else {
        return Ok(None);
    };
    oxbow_auth::policy::TrustPolicy::parse(&doc)
        .map_err(|e| ApiError::invalid_argument(format!("{member}: {e}")))?;
    Ok(Some(doc))
}

/// UpdateAssumeRolePolicy: replaces a role's trust policy.
pub async fn update_assume_role_policy(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let name = a.req("RoleName", &v::IAM_NAME)?;
    let Some(doc) = trust_document(a, "PolicyDocument")? else {
        return Err(ApiError::invalid_argument("PolicyDocument is required."));
    };
    find(state.catalog.roles(), &name, "role").await?;
    let role = state
        .catalog
        .roles()
        .update(
            &name,
            Box::new(move |r: &mut RoleRecord| {
                r.trust_policy = Some(doc);
                Ok(())
            }),
        )
        .await
        .map_err(storage)?;
    Ok(json!({ "Role": role_json(&role) }))
}

pub async fn get_role(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let name = a.req("RoleName", &v::IAM_NAME)?;
    let r = find(state.catalog.roles(), &name, "role").await?;
    Ok(json!({ "Role": role_json(&r) }))
}

pub async fn list_roles(state: &AppState) -> Result<Value, ApiError> {
    let all = all(state.catalog.roles()).await?;
    Ok(json!({ "Roles": all.iter().map(role_json).collect::<Vec<_>>() }))
}

/// Deleting a role ends its sessions' rights at once: they find no policies.
pub async fn delete_role(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let name = a.req("RoleName", &v::IAM_NAME)?;
    get_role(state, a).await?;
    state.catalog.roles().remove(&name).await.map_err(storage)?;
    Ok(json!({}))
}

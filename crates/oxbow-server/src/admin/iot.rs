//! The IoT side: role aliases, things and device certificates, named as in the AWS IoT API
//! so the seed's `aws iot ...` steps map one to one.

use oxbow_catalog::{
    CatalogError, CertificateRecord, CertificateStatus, IotPolicyRecord, RoleAliasRecord,
};
use oxbow_core::time::{ms_to_json_seconds, now_ms};
use oxbow_core::validate as v;
use oxbow_core::{ApiError, ErrorKind};
use serde_json::{json, Value};

use super::{all, exists, find, not_found, storage, Args};
use crate::device_ca::{certificate_id, pem_to_der};
use crate::state::AppState;

fn alias_json(state: &AppState, a: &RoleAliasRecord) -> Value {
    let updated = if a.updated_ms == 0 {
        a.created_ms
    } else {
        a.updated_ms
    };
    json!({"RoleAlias": a.alias, "RoleAliasArn": a.arn, "RoleName": a.role,
           "RoleArn": state.iam_arn("role", &a.role), "Owner": state.config.account_id,
           "CredentialDurationSeconds": a.credential_duration_seconds,
           "CreationDate": ms_to_json_seconds(a.created_ms),
           "LastModifiedDate": ms_to_json_seconds(updated)})
}

fn cert_json(c: &CertificateRecord) -> Value {
    json!({"CertificateId": c.id, "CertificateArn": c.arn, "Status": c.status.as_str(),
           "CreationDate": ms_to_json_seconds(c.created_ms), "Things": c.things,
           "AttachedPolicies": c.policies})
}

fn conflict(what: &'static str, name: String) -> impl FnOnce(CatalogError) -> ApiError {
    move |e| match e {
        CatalogError::Exists => exists(what, &name),
        e => storage(e),
    }
}

/// `RoleAlias`, `RoleName` (or `RoleArn`), `CredentialDurationSeconds` (900–43200, 3600).
pub async fn create_role_alias(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let alias = a.req("RoleAlias", &v::ROLE_ALIAS)?;
    let role = match role_named(state, a).await? {
        Some(role) => role,
        None => return Err(ApiError::invalid_argument("RoleName is required.")),
    };
    let record = RoleAliasRecord {
        arn: state.iot_arn("rolealias", &alias),
        alias: alias.clone(),
        role,
        credential_duration_seconds: a.int("CredentialDurationSeconds", 3600, 900, 43_200)?,
        created_ms: now_ms(),
        updated_ms: 0,
    };
    state
        .catalog
        .role_aliases()
        .insert(record.clone(), u64::MAX)
        .await
        .map_err(conflict("role alias", alias))?;
    Ok(alias_json(state, &record))
}

/// The existing role named by `RoleName`, or by `RoleArn` (as the IoT API takes it).
async fn role_named(state: &AppState, a: &Args) -> Result<Option<String>, ApiError> {
    let role = match (a.opt("RoleName", &v::IAM_NAME)?, a.text("RoleArn").ok()) {
        (Some(name), _) => name,
        (None, Some(arn)) => arn
            .rsplit_once(":role/")
            .map(|(_, n)| n.rsplit('/').next().unwrap_or(n).to_string())
            .ok_or_else(|| ApiError::invalid_argument("RoleArn is not a role ARN."))?,
        (None, None) => return Ok(None),
    };
    find(state.catalog.roles(), &role, "role").await?;
    Ok(Some(role))
}

pub async fn get_role_alias(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let alias = a.req("RoleAlias", &v::ROLE_ALIAS)?;
    let record = find(state.catalog.role_aliases(), &alias, "role alias").await?;
    Ok(json!({ "RoleAlias": alias_json(state, &record) }))
}

/// A new role (`RoleName`/`RoleArn`) and/or `CredentialDurationSeconds`.
pub async fn update_role_alias(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let alias = a.req("RoleAlias", &v::ROLE_ALIAS)?;
    let role = role_named(state, a).await?;
    let duration = Some(a.int("CredentialDurationSeconds", 0, 900, 43_200)?).filter(|d| *d != 0);
    let record = state
        .catalog
        .role_aliases()
        .update(
            &alias,
            Box::new(move |r: &mut RoleAliasRecord| {
                if let Some(role) = role {
                    r.role = role;
                }
                if let Some(d) = duration {
                    r.credential_duration_seconds = d;
                }
                r.updated_ms = now_ms();
                Ok(())
            }),
        )
        .await
        .map_err(|e| match e {
            CatalogError::NotFound => not_found("role alias", &alias),
            e => storage(e),
        })?;
    Ok(json!({ "RoleAlias": alias_json(state, &record) }))
}

pub async fn list_role_aliases(state: &AppState) -> Result<Value, ApiError> {
    let all = all(state.catalog.role_aliases()).await?;
    Ok(json!({ "RoleAliases": all.iter().map(|a| alias_json(state, a)).collect::<Vec<_>>() }))
}

pub async fn delete_role_alias(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let alias = a.req("RoleAlias", &v::ROLE_ALIAS)?;
    let table = state.catalog.role_aliases();
    if table.get(&alias).await.map_err(storage)?.is_none() {
        return Err(not_found("role alias", &alias));
    }
    table.remove(&alias).await.map_err(storage)?;
    Ok(json!({}))
}

fn status_of(a: &Args) -> CertificateStatus {
    if a.flag("SetAsActive") {
        CertificateStatus::Active
    } else {
        CertificateStatus::Inactive
    }
}

async fn store_certificate(
    state: &AppState,
    pem: String,
    der: &[u8],
    status: CertificateStatus,
) -> Result<CertificateRecord, ApiError> {
    let id = certificate_id(der);
    let record = CertificateRecord {
        arn: state.iot_arn("cert", &id),
        id: id.clone(),
        pem,
        status,
        created_ms: now_ms(),
        things: Vec::new(),
        policies: Vec::new(),
    };
    state
        .catalog
        .certificates()
        .insert(record.clone(), u64::MAX)
        .await
        .map_err(conflict("certificate", id))?;
    Ok(record)
}

/// A key pair and a certificate from Oxbow's device CA (`SetAsActive` as on AWS IoT).
pub async fn create_keys_and_certificate(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    // Key generation and signing take milliseconds of CPU: not on the async executor.
    let ca = std::sync::Arc::clone(&state.iot_ca);
    let issued = tokio::task::spawn_blocking(move || ca.issue())
        .await
        .map_err(|e| ApiError::server("issue a device certificate", e))?
        .map_err(|e| ApiError::server("issue a device certificate", e))?;
    let record = store_certificate(
        state,
        issued.certificate_pem.clone(),
        &issued.der,
        status_of(a),
    )
    .await?;
    Ok(json!({
        "CertificateArn": record.arn,
        "CertificateId": record.id,
        "CertificatePem": issued.certificate_pem,
        "KeyPair": {"PublicKey": issued.public_key_pem, "PrivateKey": issued.private_key_pem},
    }))
}

/// A certificate from an external CA; the CA must be trusted with `oxbow serve --iot-ca`.
pub async fn register_certificate(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let pem = a.text("CertificatePem")?;
    let der = pem_to_der(&pem)
        .filter(|der| crate::device_ca::is_certificate(der))
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::CertificateValidation,
                "CertificatePem is not a valid X.509 certificate in PEM format.",
            )
        })?;
    let record = store_certificate(state, pem, &der, status_of(a)).await?;
    Ok(json!({"CertificateArn": record.arn, "CertificateId": record.id}))
}

fn cert_id(a: &Args) -> Result<String, ApiError> {
    Ok(a.req("CertificateId", &v::CERTIFICATE_ID)?
        .trim_start_matches("0x")
        .to_ascii_lowercase())
}

pub async fn get_certificate(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let id = cert_id(a)?;
    let c = find(state.catalog.certificates(), &id, "certificate").await?;
    let mut out = cert_json(&c);
    out["CertificatePem"] = c.pem.into();
    Ok(json!({ "CertificateDescription": out }))
}

pub async fn list_certificates(state: &AppState) -> Result<Value, ApiError> {
    let all = all(state.catalog.certificates()).await?;
    Ok(json!({ "Certificates": all.iter().map(cert_json).collect::<Vec<_>>() }))
}

/// `NewStatus`: ACTIVE, INACTIVE or REVOKED; a REVOKED certificate stays revoked, as on AWS.
/// Credentials already issued stay valid until they expire, as on AWS.
pub async fn update_certificate(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let id = cert_id(a)?;
    let status = CertificateStatus::parse(&a.text("NewStatus")?).ok_or_else(|| {
        ApiError::invalid_argument("NewStatus must be ACTIVE, INACTIVE or REVOKED.")
    })?;
    state
        .catalog
        .certificates()
        .update(
            &id,
            Box::new(move |c: &mut CertificateRecord| {
                if c.status == CertificateStatus::Revoked && status != CertificateStatus::Revoked {
                    return Err("a revoked certificate cannot change status".into());
                }
                c.status = status;
                Ok(())
            }),
        )
        .await
        .map_err(|e| match e {
            CatalogError::NotFound => not_found("certificate", &id),
            CatalogError::Rejected(_) => ApiError::new(
                ErrorKind::CertificateState,
                format!("Certificate {id} is revoked; its status cannot change."),
            ),
            e => storage(e),
        })?;
    Ok(json!({}))
}

/// Refused while the certificate is ACTIVE or attached to a thing, and while policies are
/// attached unless `ForceDelete` (which detaches them), as IoT refuses it.
pub async fn delete_certificate(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let id = cert_id(a)?;
    let table = state.catalog.certificates();
    let cert = table
        .get(&id)
        .await
        .map_err(storage)?
        .ok_or_else(|| not_found("certificate", &id))?;
    if cert.status == CertificateStatus::Active {
        return Err(ApiError::new(
            ErrorKind::CertificateState,
            "Certificate must be deactivated (not ACTIVE) before deletion.",
        ));
    }
    if !cert.things.is_empty() {
        return Err(ApiError::new(
            ErrorKind::DeleteConflict,
            format!(
                "Things must be detached before deletion (arn: {}).",
                state.iot_arn("thing", &cert.things[0])
            ),
        ));
    }
    if !cert.policies.is_empty() && !a.flag("ForceDelete") {
        return Err(ApiError::new(
            ErrorKind::DeleteConflict,
            format!(
                "Certificate policies must be detached before deletion (policy: {}).",
                cert.policies[0]
            ),
        ));
    }
    table.remove(&id).await.map_err(storage)?;
    Ok(json!({}))
}

fn iot_policy_json(p: &IotPolicyRecord) -> Value {
    json!({"PolicyName": p.name, "PolicyArn": p.arn, "PolicyDocument": p.document,
           "DefaultVersionId": "1", "CreationDate": ms_to_json_seconds(p.created_ms),
           "LastModifiedDate": ms_to_json_seconds(p.updated_ms)})
}

/// IoT's limit on a policy document, in characters other than white space.
const MAX_IOT_POLICY_CHARS: usize = 2_048;

/// An IoT policy (`PolicyName`, `PolicyDocument` in the IAM grammar), kept apart from IAM's.
pub async fn create_iot_policy(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let name = a.req("PolicyName", &v::POLICY_NAME)?;
    let document = super::policy_document(a, MAX_IOT_POLICY_CHARS, || {
        ApiError::new(
            ErrorKind::MalformedPolicyDocument,
            format!("The policy document exceeds {MAX_IOT_POLICY_CHARS} characters."),
        )
    })?;
    let now = now_ms();
    let record = IotPolicyRecord {
        arn: state.iot_arn("policy", &name),
        name: name.clone(),
        created_ms: now,
        updated_ms: now,
        document,
    };
    state
        .catalog
        .iot_policies()
        .insert(record.clone(), u64::MAX)
        .await
        .map_err(conflict("policy", name))?;
    Ok(json!({ "Policy": iot_policy_json(&record) }))
}

pub async fn get_iot_policy(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let name = a.req("PolicyName", &v::POLICY_NAME)?;
    let p = find(state.catalog.iot_policies(), &name, "policy").await?;
    Ok(json!({ "Policy": iot_policy_json(&p) }))
}

pub async fn list_iot_policies(state: &AppState) -> Result<Value, ApiError> {
    let all = all(state.catalog.iot_policies()).await?;
    Ok(json!({ "Policies": all.iter().map(iot_policy_json).collect::<Vec<_>>() }))
}

/// Refused while the policy is attached to a certificate, as IoT refuses it.
pub async fn delete_iot_policy(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let name = a.req("PolicyName", &v::POLICY_NAME)?;
    find(state.catalog.iot_policies(), &name, "policy").await?;
    if all(state.catalog.certificates())
        .await?
        .iter()
        .any(|c| c.policies.contains(&name))
    {
        return Err(ApiError::new(
            ErrorKind::DeleteConflict,
            format!("The policy {name} is attached to one or more principals; detach it first."),
        ));
    }
    state
        .catalog
        .iot_policies()
        .remove(&name)
        .await
        .map_err(storage)?;
    Ok(json!({}))
}

pub(super) async fn set_thing(
    state: &AppState,
    id: &str,
    thing: &str,
    on: bool,
) -> Result<(), ApiError> {
    let t = thing.to_string();
    state
        .catalog
        .certificates()
        .update(
            id,
            Box::new(move |c: &mut CertificateRecord| {
                c.things.retain(|x| x != &t);
                if on {
                    c.things.push(t);
                }
                Ok(())
            }),
        )
        .await
        .map(drop)
        .map_err(|e| match e {
            CatalogError::NotFound => not_found("certificate", id),
            e => storage(e),
        })
}

/// AttachThingPrincipal / DetachThingPrincipal: `ThingName` and `CertificateId` (or
/// `Principal`, the certificate ARN, as the IoT API takes it).
pub async fn attach_thing(state: &AppState, a: &Args, on: bool) -> Result<Value, ApiError> {
    let thing = a.req("ThingName", &v::THING_NAME)?;
    let id = match a.text("Principal").ok() {
        Some(arn) => arn
            .rsplit_once(":cert/")
            .map(|(_, id)| id.to_ascii_lowercase())
            .ok_or_else(|| ApiError::invalid_argument("Principal is not a certificate ARN."))?,
        None => cert_id(a)?,
    };
    if on
        && state
            .catalog
            .things()
            .get(&thing)
            .await
            .map_err(storage)?
            .is_none()
    {
        return Err(not_found("thing", &thing));
    }
    set_thing(state, &id, &thing, on).await?;
    Ok(json!({}))
}

//! The AWS IoT control-plane API (REST-JSON, signed for service `iot`), so `aws iot …` and the
//! SDKs' IoT clients manage things, certificates, IoT policies and role aliases with only
//! `--endpoint-url` added: seed 003's camera set-up runs as written. It is a door onto the same
//! model as the admin API (each operation runs the admin action of the same meaning) and
//! answers in IoT's camelCase shapes and errors. Callers are judged like any AWS caller: root
//! passes, others need `iot:<Operation>` on the resource in their policies.
//!
//! Listings answer in one page (no `nextToken`/`nextMarker`): the registry of one Oxbow
//! holds what one site has, not millions of devices.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use oxbow_core::{ApiError, ErrorKind};
use percent_encoding::percent_decode_str;
use serde_json::{json, Map, Value};

use crate::api::{Auth, Call, Handled, Judged, Operation, Payload};
use crate::auth::IOT_SERVICE;
use crate::authz::Access;
use crate::http::{json as json_reply, Reply};
use crate::state::AppState;

/// The operations served, each with its method, path template (`{}` is a path member) and
/// the IAM action it is judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    CreateThingType,
    DescribeThingType,
    ListThingTypes,
    DeleteThingType,
    CreateThing,
    DescribeThing,
    UpdateThing,
    ListThings,
    DeleteThing,
    CreateKeysAndCertificate,
    RegisterCertificate,
    RegisterCertificateWithoutCA,
    DescribeCertificate,
    ListCertificates,
    UpdateCertificate,
    DeleteCertificate,
    CreatePolicy,
    GetPolicy,
    GetPolicyVersion,
    ListPolicies,
    DeletePolicy,
    AttachPolicy,
    DetachPolicy,
    ListAttachedPolicies,
    ListTargetsForPolicy,
    AttachThingPrincipal,
    DetachThingPrincipal,
    ListThingPrincipals,
    ListPrincipalThings,
    CreateRoleAlias,
    DescribeRoleAlias,
    ListRoleAliases,
    UpdateRoleAlias,
    DeleteRoleAlias,
    DescribeEndpoint,
}

use Op::*;

const ROUTES: &[(Method, &str, Op, &str)] = &[
    (
        Method::POST,
        "/thing-types/{}",
        CreateThingType,
        "iot:CreateThingType",
    ),
    (
        Method::GET,
        "/thing-types/{}",
        DescribeThingType,
        "iot:DescribeThingType",
    ),
    (
        Method::GET,
        "/thing-types",
        ListThingTypes,
        "iot:ListThingTypes",
    ),
    (
        Method::DELETE,
        "/thing-types/{}",
        DeleteThingType,
        "iot:DeleteThingType",
    ),
    (Method::POST, "/things/{}", CreateThing, "iot:CreateThing"),
    (
        Method::GET,
        "/things/{}",
        DescribeThing,
        "iot:DescribeThing",
    ),
    (Method::PATCH, "/things/{}", UpdateThing, "iot:UpdateThing"),
    (Method::GET, "/things", ListThings, "iot:ListThings"),
    (Method::DELETE, "/things/{}", DeleteThing, "iot:DeleteThing"),
    (
        Method::POST,
        "/keys-and-certificate",
        CreateKeysAndCertificate,
        "iot:CreateKeysAndCertificate",
    ),
    (
        Method::POST,
        "/certificate/register",
        RegisterCertificate,
        "iot:RegisterCertificate",
    ),
    (
        Method::POST,
        "/certificate/register-no-ca",
        RegisterCertificateWithoutCA,
        "iot:RegisterCertificateWithoutCA",
    ),
    (
        Method::GET,
        "/certificates/{}",
        DescribeCertificate,
        "iot:DescribeCertificate",
    ),
    (
        Method::GET,
        "/certificates",
        ListCertificates,
        "iot:ListCertificates",
    ),
    (
        Method::PUT,
        "/certificates/{}",
        UpdateCertificate,
        "iot:UpdateCertificate",
    ),
    (
        Method::DELETE,
        "/certificates/{}",
        DeleteCertificate,
        "iot:DeleteCertificate",
    ),
    (
        Method::POST,
        "/policies/{}",
        CreatePolicy,
        "iot:CreatePolicy",
    ),
    (Method::GET, "/policies/{}", GetPolicy, "iot:GetPolicy"),
    (
        Method::GET,
        "/policies/{}/version/{}",
        GetPolicyVersion,
        "iot:GetPolicyVersion",
    ),
    (Method::GET, "/policies", ListPolicies, "iot:ListPolicies"),
    (
        Method::DELETE,
        "/policies/{}",
        DeletePolicy,
        "iot:DeletePolicy",
    ),
    (
        Method::PUT,
        "/target-policies/{}",
        AttachPolicy,
        "iot:AttachPolicy",
    ),
    (
        Method::POST,
        "/target-policies/{}",
        DetachPolicy,
        "iot:DetachPolicy",
    ),
    (
        Method::POST,
        "/attached-policies/{}",
        ListAttachedPolicies,
        "iot:ListAttachedPolicies",
    ),
    (
        Method::POST,
        "/policy-targets/{}",
        ListTargetsForPolicy,
        "iot:ListTargetsForPolicy",
    ),
    (
        Method::PUT,
        "/things/{}/principals",
        AttachThingPrincipal,
        "iot:AttachThingPrincipal",
    ),
    (
        Method::DELETE,
        "/things/{}/principals",
        DetachThingPrincipal,
        "iot:DetachThingPrincipal",
    ),
    (
        Method::GET,
        "/things/{}/principals",
        ListThingPrincipals,
        "iot:ListThingPrincipals",
    ),
    (
        Method::GET,
        "/principals/things",
        ListPrincipalThings,
        "iot:ListPrincipalThings",
    ),
    (
        Method::POST,
        "/role-aliases/{}",
        CreateRoleAlias,
        "iot:CreateRoleAlias",
    ),
    (
        Method::GET,
        "/role-aliases/{}",
        DescribeRoleAlias,
        "iot:DescribeRoleAlias",
    ),
    (
        Method::GET,
        "/role-aliases",
        ListRoleAliases,
        "iot:ListRoleAliases",
    ),
    (
        Method::PUT,
        "/role-aliases/{}",
        UpdateRoleAlias,
        "iot:UpdateRoleAlias",
    ),
    (
        Method::DELETE,
        "/role-aliases/{}",
        DeleteRoleAlias,
        "iot:DeleteRoleAlias",
    ),
    (
        Method::GET,
        "/endpoint",
        DescribeEndpoint,
        "iot:DescribeEndpoint",
    ),
];

/// The path members of `path` if it fits `template`.
fn fit(template: &str, path: &str) -> Option<Vec<String>> {
    let mut t = template.split('/');
    let mut p = path.split('/');
    let mut members = Vec::new();
    loop {
        match (t.next(), p.next()) {
            (None, None) => return Some(members),
            (Some("{}"), Some(seg)) if !seg.is_empty() => {
                members.push(percent_decode_str(seg).decode_utf8().ok()?.into_owned())
            }
            (Some(a), Some(b)) if a == b => {}
            _ => return None,
        }
    }
}

/// Routes requests signed for `iot`; one that fits no operation is still IoT's to refuse.
pub fn route(parts: &http::request::Parts) -> Option<Box<dyn Operation>> {
    if crate::auth::signed_service(parts).as_deref() != Some(IOT_SERVICE) {
        return None;
    }
    let path = parts.uri.path();
    let found = ROUTES.iter().find_map(|(method, template, op, action)| {
        (parts.method == method)
            .then(|| fit(template, path))
            .flatten()
            .map(|members| (*op, *action, members))
    });
    Some(Box::new(match found {
        Some((op, action, members)) => IotOperation {
            op: Some(op),
            action,
            members,
        },
        None => IotOperation {
            op: None,
            action: "iot:Unknown",
            members: Vec::new(),
        },
    }))
}

struct IotOperation {
    op: Option<Op>,
    action: &'static str,
    members: Vec<String>,
}

impl IotOperation {
    fn member(&self, i: usize) -> &str {
        self.members.get(i).map(String::as_str).unwrap_or_default()
    }

    /// The ARN the caller is judged on: the resource the path (or body) names, else `*`.
    fn resource(&self, state: &AppState, call: &Call) -> String {
        let m = self.member(0);
        match self.op {
            Some(CreateThingType | DescribeThingType | DeleteThingType) => {
                state.iot_arn("thingtype", m)
            }
            Some(
                CreateThing | DescribeThing | UpdateThing | DeleteThing | AttachThingPrincipal
                | DetachThingPrincipal | ListThingPrincipals,
            ) => state.iot_arn("thing", m),
            Some(DescribeCertificate | UpdateCertificate | DeleteCertificate) => {
                state.iot_arn("cert", m)
            }
            Some(
                CreatePolicy | GetPolicy | GetPolicyVersion | DeletePolicy | ListTargetsForPolicy,
            ) => state.iot_arn("policy", m),
            Some(AttachPolicy | DetachPolicy) => body(call)
                .ok()
                .and_then(|b| b.get("target").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| "*".into()),
            Some(ListAttachedPolicies) => m.to_string(),
            Some(CreateRoleAlias | DescribeRoleAlias | UpdateRoleAlias | DeleteRoleAlias) => {
                state.iot_arn("rolealias", m)
            }
            _ => "*".into(),
        }
    }
}

impl Operation for IotOperation {
    fn auth(&self) -> Auth {
        Auth::SigV4 {
            service: IOT_SERVICE,
            payload: Payload::Body,
        }
    }

    fn access<'a>(&'a self, state: &'a AppState, call: &'a Call) -> Judged<'a> {
        Box::pin(async move {
            self.op?;
            Some(Access {
                action: self.action,
                resource: Arc::from(self.resource(state, call)),
                denied: ErrorKind::AccessDenied,
            })
        })
    }

    fn handle<'a>(&'a self, state: &'a Arc<AppState>, call: Call) -> Handled<'a> {
        Box::pin(async move {
            let Some(op) = self.op else {
                return Err(ApiError::new(
                    ErrorKind::UnknownOperation,
                    format!(
                        "No IoT operation {} {} in Oxbow.",
                        call.parts.method,
                        call.parts.uri.path()
                    ),
                ));
            };
            let out = run(state, op, self, &call).await?;
            Ok(json_reply(StatusCode::OK, Bytes::from(out.to_string())))
        })
    }

    fn error(&self, e: &ApiError, request_id: &str) -> Reply {
        error(e, request_id)
    }
}

/// The JSON body (an empty body is an empty object).
fn body(call: &Call) -> Result<Map<String, Value>, ApiError> {
    if call.bytes().is_empty() {
        return Ok(Map::new());
    }
    match crate::input::parse::<Value>(call.bytes())? {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::invalid_argument(
            "The body must be a JSON object.",
        )),
    }
}

fn query(call: &Call) -> HashMap<String, String> {
    form_urlencoded::parse(call.parts.uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// The `x-amzn-principal` header: the certificate ARN thing-principal calls name.
fn principal_header(call: &Call) -> Result<String, ApiError> {
    call.parts
        .headers
        .get("x-amzn-principal")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| ApiError::invalid_argument("The principal (x-amzn-principal) is required."))
}

/// The certificate id in a certificate ARN (`arn:…:iot:…:cert/<id>`).
fn certificate_of(arn: &str) -> Result<String, ApiError> {
    arn.rsplit_once(":cert/")
        .map(|(_, id)| id.to_ascii_lowercase())
        .filter(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| {
            ApiError::invalid_argument(format!(
                "{arn} is not a certificate ARN; Oxbow attaches policies to certificates only."
            ))
        })
}

/// One IoT operation: the admin actions it stands for, and its answer in IoT's shape.
async fn run(state: &AppState, op: Op, req: &IotOperation, call: &Call) -> Result<Value, ApiError> {
    let admin = |name: &'static str, args: Value| async move {
        crate::admin::run(state, true, name, args).await
    };
    let b = body(call)?;
    let q = query(call);
    let m = req.member(0).to_string();
    let field = |k: &str| b.get(k).cloned().unwrap_or(Value::Null);
    Ok(match op {
        CreateThingType => {
            let props = field("thingTypeProperties");
            let t = admin(
                "CreateThingType",
                json!({"ThingTypeName": m,
                       "ThingTypeDescription": props.get("thingTypeDescription"),
                       "SearchableAttributes": props.get("searchableAttributes")}),
            )
            .await?;
            let t = &t["ThingType"];
            json!({"thingTypeName": t["ThingTypeName"], "thingTypeArn": t["ThingTypeArn"],
                   "thingTypeId": t["ThingTypeId"]})
        }
        DescribeThingType => {
            let t = admin("GetThingType", json!({"ThingTypeName": m})).await?;
            let mut out = thing_type_json(&t["ThingType"]);
            out["thingTypeId"] = t["ThingType"]["ThingTypeId"].clone();
            out
        }
        ListThingTypes => {
            let all = admin("ListThingTypes", json!({})).await?;
            let wanted = q.get("thingTypeName");
            let types: Vec<Value> = list(&all["ThingTypes"])
                .filter(|t| wanted.is_none_or(|w| t["ThingTypeName"] == w.as_str()))
                .map(thing_type_json)
                .collect();
            json!({ "thingTypes": types })
        }
        DeleteThingType => {
            admin("DeleteThingType", json!({"ThingTypeName": m})).await?;
            json!({})
        }
        CreateThing => {
            let attrs = field("attributePayload");
            let t = admin(
                "CreateThing",
                json!({"ThingName": m, "ThingTypeName": field("thingTypeName"),
                       "Attributes": attrs.get("attributes")}),
            )
            .await?;
            let t = &t["Thing"];
            json!({"thingName": t["ThingName"], "thingArn": t["ThingArn"], "thingId": t["ThingId"]})
        }
        DescribeThing => {
            let t = admin("GetThing", json!({"ThingName": m})).await?;
            let t = &t["Thing"];
            json!({"defaultClientId": t["ThingName"], "thingName": t["ThingName"],
                   "thingId": t["ThingId"], "thingArn": t["ThingArn"],
                   "thingTypeName": t["ThingTypeName"], "attributes": t["Attributes"],
                   "version": t["Version"]})
        }
        UpdateThing => {
            let attrs = field("attributePayload");
            admin(
                "UpdateThing",
                json!({"ThingName": m, "ThingTypeName": field("thingTypeName"),
                       "RemoveThingType": field("removeThingType"),
                       "Attributes": attrs.get("attributes"),
                       "Merge": attrs.get("merge"),
                       "ExpectedVersion": field("expectedVersion")}),
            )
            .await?;
            json!({})
        }
        ListThings => {
            let all = admin(
                "ListThings",
                json!({"ThingTypeName": q.get("thingTypeName"),
                       "AttributeName": q.get("attributeName"),
                       "AttributeValue": q.get("attributeValue")}),
            )
            .await?;
            let things: Vec<Value> = list(&all["Things"])
                .map(|t| {
                    json!({"thingName": t["ThingName"], "thingTypeName": t["ThingTypeName"],
                           "thingArn": t["ThingArn"], "attributes": t["Attributes"],
                           "version": t["Version"]})
                })
                .collect();
            json!({ "things": things })
        }
        DeleteThing => {
            admin(
                "DeleteThing",
                json!({"ThingName": m, "ExpectedVersion": q.get("expectedVersion")}),
            )
            .await?;
            json!({})
        }
        CreateKeysAndCertificate => {
            let c = admin(
                "CreateKeysAndCertificate",
                json!({"SetAsActive": q.get("setAsActive").is_some_and(|v| v == "true")}),
            )
            .await?;
            json!({"certificateArn": c["CertificateArn"], "certificateId": c["CertificateId"],
                   "certificatePem": c["CertificatePem"], "keyPair": c["KeyPair"]})
        }
        RegisterCertificate | RegisterCertificateWithoutCA => {
            let active = match field("status").as_str() {
                Some("ACTIVE") => true,
                Some("INACTIVE") | None => {
                    q.get("setAsActive").is_some_and(|v| v == "true")
                        || field("setAsActive") == Value::Bool(true)
                }
                Some(other) => {
                    return Err(ApiError::invalid_argument(format!(
                        "Oxbow registers certificates as ACTIVE or INACTIVE, not {other}."
                    )))
                }
            };
            let c = admin(
                "RegisterCertificate",
                json!({"CertificatePem": field("certificatePem"), "SetAsActive": active}),
            )
            .await?;
            json!({"certificateArn": c["CertificateArn"], "certificateId": c["CertificateId"]})
        }
        DescribeCertificate => {
            let c = admin("GetCertificate", json!({"CertificateId": m})).await?;
            let c = &c["CertificateDescription"];
            json!({"certificateDescription": {
                "certificateArn": c["CertificateArn"], "certificateId": c["CertificateId"],
                "status": c["Status"], "certificatePem": c["CertificatePem"],
                "ownedBy": state.config.account_id, "creationDate": c["CreationDate"],
                "lastModifiedDate": c["CreationDate"], "customerVersion": 1,
                "certificateMode": "DEFAULT"}})
        }
        ListCertificates => {
            let all = admin("ListCertificates", json!({})).await?;
            let certs: Vec<Value> = list(&all["Certificates"])
                .map(|c| {
                    json!({"certificateArn": c["CertificateArn"],
                           "certificateId": c["CertificateId"], "status": c["Status"],
                           "certificateMode": "DEFAULT", "creationDate": c["CreationDate"]})
                })
                .collect();
            json!({ "certificates": certs })
        }
        UpdateCertificate => {
            admin(
                "UpdateCertificate",
                json!({"CertificateId": m, "NewStatus": q.get("newStatus")}),
            )
            .await?;
            json!({})
        }
        DeleteCertificate => {
            admin(
                "DeleteCertificate",
                json!({"CertificateId": m,
                       "ForceDelete": q.get("forceDelete").is_some_and(|v| v == "true")}),
            )
            .await?;
            json!({})
        }
        CreatePolicy => {
            let p = admin(
                "CreateIotPolicy",
                json!({"PolicyName": m, "PolicyDocument": field("policyDocument")}),
            )
            .await?;
            let p = &p["Policy"];
            json!({"policyName": p["PolicyName"], "policyArn": p["PolicyArn"],
                   "policyDocument": p["PolicyDocument"], "policyVersionId": "1"})
        }
        GetPolicy => {
            let p = admin("GetIotPolicy", json!({"PolicyName": m})).await?;
            let p = &p["Policy"];
            json!({"policyName": p["PolicyName"], "policyArn": p["PolicyArn"],
                   "policyDocument": p["PolicyDocument"], "defaultVersionId": "1",
                   "creationDate": p["CreationDate"], "lastModifiedDate": p["LastModifiedDate"],
                   "generationId": "1"})
        }
        GetPolicyVersion => {
            let p = admin("GetIotPolicy", json!({"PolicyName": m})).await?;
            if req.member(1) != "1" {
                return Err(ApiError::new(
                    ErrorKind::ResourceNotFound,
                    format!("Policy {m} has no version {}.", req.member(1)),
                ));
            }
            let p = &p["Policy"];
            json!({"policyName": p["PolicyName"], "policyArn": p["PolicyArn"],
                   "policyDocument": p["PolicyDocument"], "policyVersionId": "1",
                   "isDefaultVersion": true, "creationDate": p["CreationDate"],
                   "lastModifiedDate": p["LastModifiedDate"], "generationId": "1"})
        }
        ListPolicies => {
            let all = admin("ListIotPolicies", json!({})).await?;
            json!({ "policies": list(&all["Policies"]).map(policy_ref).collect::<Vec<_>>() })
        }
        DeletePolicy => {
            admin("DeleteIotPolicy", json!({"PolicyName": m})).await?;
            json!({})
        }
        AttachPolicy | DetachPolicy => {
            let target = field("target");
            let id = certificate_of(target.as_str().unwrap_or_default())?;
            if op == AttachPolicy {
                // IoT attaches IoT policies; the admin model also takes IAM ones by name.
                admin("GetIotPolicy", json!({"PolicyName": m})).await?;
            }
            let action = if op == AttachPolicy {
                "AttachPolicy"
            } else {
                "DetachPolicy"
            };
            admin(action, json!({"PolicyName": m, "CertificateId": id})).await?;
            json!({})
        }
        ListAttachedPolicies => {
            let id = certificate_of(&m)?;
            let c = admin("GetCertificate", json!({"CertificateId": id})).await?;
            let policies: Vec<Value> = list(&c["CertificateDescription"]["AttachedPolicies"])
                .filter_map(Value::as_str)
                .map(|name| json!({"policyName": name, "policyArn": state.iot_arn("policy", name)}))
                .collect();
            json!({ "policies": policies })
        }
        ListTargetsForPolicy => {
            admin("GetIotPolicy", json!({"PolicyName": m})).await?;
            let all = admin("ListCertificates", json!({})).await?;
            let targets: Vec<Value> = list(&all["Certificates"])
                .filter(|c| list(&c["AttachedPolicies"]).any(|p| p == m.as_str()))
                .map(|c| c["CertificateArn"].clone())
                .collect();
            json!({ "targets": targets })
        }
        AttachThingPrincipal | DetachThingPrincipal => {
            let principal = principal_header(call)?;
            certificate_of(&principal)?;
            admin("GetThing", json!({"ThingName": m})).await?;
            let action = if op == AttachThingPrincipal {
                "AttachThingPrincipal"
            } else {
                "DetachThingPrincipal"
            };
            admin(action, json!({"ThingName": m, "Principal": principal})).await?;
            json!({})
        }
        ListThingPrincipals => {
            admin("GetThing", json!({"ThingName": m})).await?;
            let all = admin("ListCertificates", json!({})).await?;
            let principals: Vec<Value> = list(&all["Certificates"])
                .filter(|c| list(&c["Things"]).any(|t| t == m.as_str()))
                .map(|c| c["CertificateArn"].clone())
                .collect();
            json!({ "principals": principals })
        }
        ListPrincipalThings => {
            let id = certificate_of(&principal_header(call)?)?;
            let c = admin("GetCertificate", json!({"CertificateId": id})).await?;
            json!({ "things": c["CertificateDescription"]["Things"] })
        }
        CreateRoleAlias => {
            let a = admin(
                "CreateRoleAlias",
                json!({"RoleAlias": m, "RoleArn": field("roleArn"),
                       "CredentialDurationSeconds": field("credentialDurationSeconds")}),
            )
            .await?;
            json!({"roleAlias": a["RoleAlias"], "roleAliasArn": a["RoleAliasArn"]})
        }
        DescribeRoleAlias => {
            let a = admin("GetRoleAlias", json!({"RoleAlias": m})).await?;
            let a = &a["RoleAlias"];
            json!({"roleAliasDescription": {
                "roleAlias": a["RoleAlias"], "roleAliasArn": a["RoleAliasArn"],
                "roleArn": a["RoleArn"], "owner": a["Owner"],
                "credentialDurationSeconds": a["CredentialDurationSeconds"],
                "creationDate": a["CreationDate"], "lastModifiedDate": a["LastModifiedDate"]}})
        }
        ListRoleAliases => {
            let all = admin("ListRoleAliases", json!({})).await?;
            let names: Vec<Value> = list(&all["RoleAliases"])
                .map(|a| a["RoleAlias"].clone())
                .collect();
            json!({ "roleAliases": names })
        }
        UpdateRoleAlias => {
            let a = admin(
                "UpdateRoleAlias",
                json!({"RoleAlias": m, "RoleArn": field("roleArn"),
                       "CredentialDurationSeconds": field("credentialDurationSeconds")}),
            )
            .await?;
            let a = &a["RoleAlias"];
            json!({"roleAlias": a["RoleAlias"], "roleAliasArn": a["RoleAliasArn"]})
        }
        DeleteRoleAlias => {
            admin("DeleteRoleAlias", json!({"RoleAlias": m})).await?;
            json!({})
        }
        DescribeEndpoint => describe_endpoint(state, q.get("endpointType").map(String::as_str))?,
    })
}

/// `iot:CredentialProvider` is the IoT listener's `host:port`, with no scheme, as IoT answers
/// (the seed builds `https://${ENDPOINT}/role-aliases/…` from it). Oxbow runs no MQTT broker,
/// so the data and jobs endpoints do not exist.
fn describe_endpoint(state: &AppState, kind: Option<&str>) -> Result<Value, ApiError> {
    match kind {
        Some("iot:CredentialProvider") => match &state.iot_endpoint {
            Some(host) => Ok(json!({ "endpointAddress": host })),
            None => Err(ApiError::invalid_argument(
                "The IoT credentials provider is not running: start Oxbow with --iot-listen.",
            )),
        },
        other => Err(ApiError::invalid_argument(format!(
            "Oxbow serves only the iot:CredentialProvider endpoint (asked for {}); it runs no \
             MQTT broker.",
            other.unwrap_or("iot:Data")
        ))),
    }
}

fn list(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

fn policy_ref(p: &Value) -> Value {
    json!({"policyName": p["PolicyName"], "policyArn": p["PolicyArn"]})
}

fn thing_type_json(t: &Value) -> Value {
    json!({"thingTypeName": t["ThingTypeName"], "thingTypeArn": t["ThingTypeArn"],
           "thingTypeProperties": {"thingTypeDescription": t["ThingTypeDescription"],
                                   "searchableAttributes": t["SearchableAttributes"]},
           "thingTypeMetadata": {"deprecated": false, "creationDate": t["CreationDate"]}})
}

/// IoT's error names and statuses; the body carries the message as IoT's does.
fn error(e: &ApiError, request_id: &str) -> Reply {
    use ErrorKind::*;
    let (code, status) = match e.kind {
        ResourceNotFound | UnknownOperation => ("ResourceNotFoundException", 404),
        ResourceInUse => ("ResourceAlreadyExistsException", 409),
        InvalidArgument | Serialization | InvalidResourceFormat => ("InvalidRequestException", 400),
        MalformedPolicyDocument => ("MalformedPolicyException", 400),
        CertificateValidation => ("CertificateValidationException", 400),
        CertificateState => ("CertificateStateException", 406),
        DeleteConflict => ("DeleteConflictException", 409),
        VersionMismatch => ("VersionConflictException", 409),
        LimitExceeded => ("LimitExceededException", 410),
        ClientLimitExceeded => ("ThrottlingException", 429),
        AccessDenied | NotAuthorized => ("AccessDeniedException", 403),
        ServiceUnavailable => ("ServiceUnavailableException", 503),
        kind if kind.status() == 403 => (kind.name(), 403),
        RequestEntityTooLarge => ("InvalidRequestException", 413),
        _ => ("InternalFailureException", 500),
    };
    let mut r = json_reply(
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        Bytes::from(json!({ "message": e.client_message(request_id) }).to_string()),
    );
    r.headers_mut()
        .insert("x-amzn-ErrorType", HeaderValue::from_static(code));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_take_path_members_decoded() {
        assert_eq!(
            fit("/things/{}", "/things/cam-1"),
            Some(vec!["cam-1".into()])
        );
        assert_eq!(fit("/things/{}", "/things/cam-1/principals"), None);
        assert_eq!(fit("/things/{}", "/things/"), None);
        assert_eq!(
            fit(
                "/attached-policies/{}",
                "/attached-policies/arn%3Aaws%3Aiot%3Ax%3Acert%2Fab"
            ),
            Some(vec!["arn:aws:iot:x:cert/ab".into()])
        );
        assert_eq!(
            fit("/policies/{}/version/{}", "/policies/p/version/1"),
            Some(vec!["p".into(), "1".into()])
        );
        assert_eq!(fit("/endpoint", "/endpoint"), Some(vec![]));
    }

    #[test]
    fn every_operation_has_one_route_and_its_own_action() {
        for (i, (m, t, op, action)) in ROUTES.iter().enumerate() {
            assert!(action.ends_with(&format!("{op:?}")), "{action} for {op:?}");
            assert!(
                !ROUTES[i + 1..]
                    .iter()
                    .any(|(m2, t2, ..)| m2 == m && t2 == t),
                "{m} {t} routed twice"
            );
        }
    }

    #[test]
    fn certificate_arns_name_their_id() {
        let id = "a".repeat(64);
        assert_eq!(
            certificate_of(&format!(
                "arn:aws:iot:us-east-1:1:cert/{}",
                id.to_uppercase()
            )),
            Ok(id)
        );
        assert!(certificate_of("arn:aws:iot:us-east-1:1:thinggroup/x").is_err());
    }
}

//! The IoT credentials provider (seed 003): a device presents its X.509 certificate in a
//! mutual-TLS handshake on a listener of its own and asks
//! `GET /role-aliases/<alias>/credentials` with `x-amzn-iot-thingname`; it gets temporary
//! credentials for the role behind the alias, carrying `credentials-iot:ThingName` and
//! `credentials-iot:AwsCertificateId` for the role's policies to use.
//!
//! The certificate must be registered and ACTIVE, the thing (when named) attached to it, and a
//! policy attached to the certificate must allow `iot:AssumeRoleWithCertificate` on the role
//! alias ARN, as on AWS IoT. Errors are `{"message": ...}` bodies, which the SDKs print.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Response, StatusCode};
use oxbow_auth::policy::{evaluate, Decision, Request as PolicyRequest, Vars};
use oxbow_auth::policy::{Assumer, TrustPolicy};
use oxbow_catalog::{CertificateStatus, SESSION_ROLE_ID};

/// The service principal a role trusts to let the IoT credentials provider assume it.
const IOT_CREDENTIALS_SERVICE: &str = "credentials.iot.amazonaws.com";
use oxbow_core::ApiError;
use serde_json::json;

use crate::api::{Auth, Call, Caller, Handled, Operation};
use crate::device_ca as ca;
use crate::http::{full, Reply};
use crate::sessions::{self, SessionSpec};
use crate::state::AppState;

pub const THING_HEADER: &str = "x-amzn-iot-thingname";

/// Routes every request: the credentials path, or a 404 in this listener's own shape.
pub fn route(parts: &http::request::Parts) -> Option<Box<dyn Operation>> {
    let alias = parts
        .uri
        .path()
        .strip_prefix("/role-aliases/")
        .and_then(|rest| rest.strip_suffix("/credentials"))
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .filter(|_| parts.method == Method::GET)
        .map(str::to_string);
    Some(Box::new(Credentials { alias }))
}

/// `GET /role-aliases/<alias>/credentials` from the holder of a client certificate; the
/// certificate's policies judge `iot:AssumeRoleWithCertificate` on the alias (see `issue`).
struct Credentials {
    alias: Option<String>,
}

impl Operation for Credentials {
    fn auth(&self) -> Auth {
        Auth::ClientCertificate
    }

    fn handle<'a>(&'a self, state: &'a Arc<AppState>, call: Call) -> Handled<'a> {
        Box::pin(async move {
            let (Some(alias), Caller::Certificate(der)) = (&self.alias, &call.caller) else {
                return Ok(refuse(StatusCode::NOT_FOUND, "Not Found"));
            };
            let thing = call
                .parts
                .headers
                .get(THING_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            Ok(match issue(state, der, alias, thing).await {
                Ok(body) => reply(StatusCode::OK, body),
                Err((status, message)) => {
                    tracing::info!(alias, %status, message, "IoT credentials refused");
                    refuse(status, message)
                }
            })
        })
    }

    /// The provider's `{"message": ...}` shape, which the SDKs print.
    fn error(&self, e: &ApiError, request_id: &str) -> Reply {
        let status = StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::BAD_REQUEST);
        refuse(status, &e.client_message(request_id))
    }
}

fn reply(status: StatusCode, body: serde_json::Value) -> Reply {
    let mut r = Response::new(full(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn refuse(status: StatusCode, message: &str) -> Reply {
    reply(status, json!({ "message": message }))
}

type Refusal = (StatusCode, &'static str);

fn failed(e: impl std::fmt::Display) -> Refusal {
    tracing::error!(error = %e, "IoT credentials provider failed");
    (StatusCode::INTERNAL_SERVER_ERROR, "Internal Failure")
}

const ACCESS_DENIED: Refusal = (StatusCode::FORBIDDEN, "Access Denied");

/// Credentials issued per second per certificate at most.
const ISSUES_PER_SECOND: u32 = 10;

async fn issue(
    state: &AppState,
    der: &[u8],
    alias: &str,
    thing: Option<String>,
) -> Result<serde_json::Value, Refusal> {
    let cert_id = ca::certificate_id(der);
    // Each certificate's issuance is rate-limited: a device in a loop cannot flood the
    // catalog with sessions or starve the others.
    if state
        .limit_rate(&cert_id, "GetCredentials", ISSUES_PER_SECOND, "certificate")
        .is_err()
    {
        return Err((StatusCode::TOO_MANY_REQUESTS, "Rate exceeded"));
    }
    let catalog = &state.catalog;
    let cert = catalog
        .certificates()
        .get(&cert_id)
        .await
        .map_err(failed)?
        .filter(|c| c.status == CertificateStatus::Active)
        .ok_or(ACCESS_DENIED)?;
    if let Some(t) = &thing {
        if !cert.things.contains(t) {
            return Err((StatusCode::FORBIDDEN, "Invalid thing name passed"));
        }
    }
    let alias = catalog
        .role_aliases()
        .get(alias)
        .await
        .map_err(failed)?
        .ok_or((StatusCode::NOT_FOUND, "Role alias does not exist"))?;
    let mut vars = Vars::new();
    vars.insert("iot:Certificate.Id".into(), vec![cert_id.clone()]);
    if let Some(t) = &thing {
        vars.insert("iot:Connection.Thing.ThingName".into(), vec![t.clone()]);
        vars.insert("credentials-iot:ThingName".into(), vec![t.clone()]);
    }
    let policies = state
        .authz
        .load_certificate_policies(&cert.policies)
        .await
        .map_err(|e| failed(e.message))?;
    let question = PolicyRequest {
        action: "iot:AssumeRoleWithCertificate",
        resource: &alias.arn,
        context: &vars,
    };
    if evaluate(&policies, &question) != Decision::Allow {
        return Err(ACCESS_DENIED);
    }
    let Some(role) = catalog.roles().get(&alias.role).await.map_err(failed)? else {
        return Err(ACCESS_DENIED);
    };
    // The role must trust the credentials provider (when it has a trust policy at all).
    let trusted = match &role.trust_policy {
        None => true,
        Some(doc) => TrustPolicy::parse(doc).is_ok_and(|t| {
            t.allows(
                Assumer::Service(IOT_CREDENTIALS_SERVICE),
                "sts:AssumeRole",
                &Default::default(),
            )
        }),
    };
    if !trusted {
        return Err(ACCESS_DENIED);
    }
    let mut context = BTreeMap::new();
    context.insert(SESSION_ROLE_ID.into(), role.unique_id());
    context.insert("credentials-iot:AwsCertificateId".into(), cert_id.clone());
    context.insert("aws:RoleSessionName".into(), cert_id);
    if let Some(t) = thing {
        context.insert("credentials-iot:ThingName".into(), t);
    }
    let key = sessions::mint(
        state,
        SessionSpec {
            principal: format!("role/{}", alias.role),
            duration_secs: alias.credential_duration_seconds,
            context,
            session_policy: None,
        },
    )
    .await
    .map_err(|e| failed(e.message))?;
    Ok(json!({ "credentials": {
        "accessKeyId": key.access_key_id,
        "secretAccessKey": key.secret_access_key,
        "sessionToken": key.session_token,
        "expiration": sessions::expiration(&key),
    }}))
}

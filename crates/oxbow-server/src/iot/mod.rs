//! The IoT credentials provider (seed 003): a device presents its X.509 certificate in a
//! mutual-TLS handshake on a listener of its own and asks
//! `GET /role-aliases/<alias>/credentials` with `x-amzn-iot-thingname`; it gets temporary
//! credentials for the role behind the alias, carrying `credentials-iot:ThingName` and
//! `credentials-iot:AwsCertificateId` for the role's policies to use.
//!
//! The certificate must be registered and ACTIVE, the thing (when named) attached to it, and a
//! policy attached to the certificate must allow `iot:AssumeRoleWithCertificate` on the role
//! alias ARN, as on AWS IoT. Errors are `{"message": ...}` bodies, which the SDKs print.

pub mod ca;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use oxbow_auth::policy::{evaluate, Decision, Request as PolicyRequest, Vars};
use oxbow_catalog::CertificateStatus;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::authz::load_policies;
use crate::front::{full, Reply};
use crate::sessions::{self, SessionSpec};
use crate::state::AppState;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A device that connects and then sends nothing is dropped after this long.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
pub const THING_HEADER: &str = "x-amzn-iot-thingname";

/// Accepts mutual-TLS connections until `stop` fires.
pub async fn run(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<AppState>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "IoT accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let acceptor = acceptor.clone();
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::info!(%peer, error = %e, "IoT TLS handshake refused");
                    return;
                }
                Err(_) => return,
            };
            let Some(der) = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.to_vec())
            else {
                return;
            };
            let der: Arc<[u8]> = der.into();
            let service = hyper::service::service_fn(move |req| {
                let state = Arc::clone(&state);
                let der = Arc::clone(&der);
                async move { Ok::<_, std::convert::Infallible>(credentials(&state, &der, req).await) }
            });
            let mut builder = http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            if let Err(e) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "IoT connection ended with an error");
            }
        });
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

/// Answers one credentials request from the holder of certificate `der`.
async fn credentials(state: &AppState, der: &[u8], req: Request<Incoming>) -> Reply {
    let alias = req
        .uri()
        .path()
        .strip_prefix("/role-aliases/")
        .and_then(|rest| rest.strip_suffix("/credentials"))
        .filter(|a| !a.is_empty() && !a.contains('/'));
    let (Some(alias), &Method::GET) = (alias, req.method()) else {
        return refuse(StatusCode::NOT_FOUND, "Not Found");
    };
    let thing = req
        .headers()
        .get(THING_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match issue(state, der, alias, thing).await {
        Ok(body) => reply(StatusCode::OK, body),
        Err((status, message)) => {
            tracing::info!(alias, %status, message, "IoT credentials refused");
            refuse(status, message)
        }
    }
}

type Refusal = (StatusCode, &'static str);

fn failed(e: impl std::fmt::Display) -> Refusal {
    tracing::error!(error = %e, "IoT credentials provider failed");
    (StatusCode::INTERNAL_SERVER_ERROR, "Internal Failure")
}

const ACCESS_DENIED: Refusal = (StatusCode::FORBIDDEN, "Access Denied");

async fn issue(
    state: &AppState,
    der: &[u8],
    alias: &str,
    thing: Option<String>,
) -> Result<serde_json::Value, Refusal> {
    let cert_id = ca::certificate_id(der);
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
    let policies = load_policies(state, &cert.policies)
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
    if catalog
        .roles()
        .get(&alias.role)
        .await
        .map_err(failed)?
        .is_none()
    {
        return Err(ACCESS_DENIED);
    }
    let mut context = BTreeMap::new();
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

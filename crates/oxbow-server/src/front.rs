//! The front door: every request on every listener passes here and takes the same path.
//! CORS preflights and `/health` are answered at once; otherwise the listener's families
//! route the request to an [`Operation`], whose body is read whole (or left streaming), whose
//! caller is authenticated the way the operation says (a SigV4 signature over the body
//! received, or a client certificate), judged on the operation's action and resource (the
//! root principal is not judged), and handled. Errors take the operation's protocol shape,
//! and every answer carries a request id.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use oxbow_auth::{EMPTY_SHA256, UNSIGNED_PAYLOAD};
use oxbow_core::{ids, ApiError, ErrorKind};
use sha2::{Digest, Sha256};

use crate::api::{
    unknown_operation, Auth, Call, CallBody, Caller, Conn, Operation, Payload, RouteFn,
};
use crate::http::{error_response, finish, json, preflight, read_body, Reply};
use crate::state::AppState;

/// Answers one request with the operations `routes` lead to.
pub async fn handle(
    state: Arc<AppState>,
    routes: &'static [RouteFn],
    req: Request<Incoming>,
    conn: Conn,
) -> Reply {
    let peer = conn.peer;
    let started = Instant::now();
    let request_id = ids::request_id();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut response = match (&method, path.as_str()) {
        (&Method::OPTIONS, _) => preflight(&req),
        (&Method::GET, "/health") => {
            json(StatusCode::OK, Bytes::from_static(b"{\"status\":\"ok\"}"))
        }
        _ => {
            let (parts, body) = req.into_parts();
            match routes.iter().find_map(|route| route(&parts)) {
                None => error_response(&unknown_operation(&parts), &request_id),
                Some(op) => {
                    let call = admit(&state, op.as_ref(), parts, body, conn, &request_id).await;
                    match call {
                        Ok(call) => op.handle(&state, call).await,
                        Err(e) => Err(e),
                    }
                    .unwrap_or_else(|e| {
                        log_cause(&e, &request_id);
                        op.error(&e, &request_id)
                    })
                }
            }
        }
    };
    finish(&mut response, &request_id);
    let status = response.status();
    let elapsed_us = started.elapsed().as_micros() as u64;
    if status.is_server_error() {
        tracing::error!(%peer, %method, %path, %status, %request_id, elapsed_us, "request failed");
    } else {
        tracing::debug!(%peer, %method, %path, %status, %request_id, elapsed_us, "request");
    }
    response
}

/// Oxbow's own failures go to the log with their whole cause chain and the request id the
/// client was given; the client's mistakes are not worth more than the request line.
fn log_cause(e: &ApiError, request_id: &str) {
    if let Some(cause) = &e.cause {
        tracing::error!(%request_id, fault = ?cause.fault, retryable = cause.retryable,
            cause = %e.cause_chain(), "request failed inside the server");
    }
}

/// The body, the caller and the verdict: everything before the handler.
async fn admit(
    state: &AppState,
    op: &dyn Operation,
    parts: http::request::Parts,
    body: Incoming,
    conn: Conn,
    request_id: &str,
) -> Result<Call, ApiError> {
    let auth = op.auth();
    let body = match auth {
        Auth::SigV4 {
            payload: Payload::Streamed,
            ..
        } => CallBody::Streamed(body),
        _ => {
            let limits = &state.config.limits;
            CallBody::Whole(
                read_body(
                    &parts.headers,
                    body,
                    limits.max_request_bytes,
                    Duration::from_millis(limits.request_body_timeout_ms),
                )
                .await?,
            )
        }
    };
    let caller = match auth {
        Auth::SigV4 { service, .. } => {
            // The hashes a signature may claim: exactly the received body's; for a body
            // that is empty or streams unread, the empty hash or UNSIGNED-PAYLOAD.
            let body_hash = match &body {
                CallBody::Whole(b) if !b.is_empty() => Some(hex::encode(Sha256::digest(b))),
                _ => None,
            };
            let one;
            let hashes: &[&str] = match &body_hash {
                Some(h) => {
                    one = [h.as_str()];
                    &one
                }
                None => &[EMPTY_SHA256, UNSIGNED_PAYLOAD],
            };
            Caller::Key(authenticate(state, &parts, hashes, service).await?)
        }
        Auth::ClientCertificate => Caller::Certificate(
            conn.client_certificate
                .clone()
                .ok_or_else(|| ApiError::new(ErrorKind::AccessDenied, "Access Denied"))?,
        ),
        Auth::SessionToken => Caller::SessionHolder,
    };
    let call = Call {
        parts,
        body,
        conn,
        request_id: request_id.to_string(),
        caller,
    };
    if let (Caller::Key(key), false) = (&call.caller, call.is_root()) {
        if let Some(access) = op.access(state, &call).await {
            state.authz.authorize(key, &access, call.env()).await?;
        }
    }
    Ok(call)
}

async fn authenticate(
    state: &AppState,
    parts: &http::request::Parts,
    hashes: &[&str],
    service: &str,
) -> Result<Arc<oxbow_catalog::AccessKey>, ApiError> {
    let signed = oxbow_auth::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        payload_hashes: hashes,
    };
    let key = state.keys.authenticate(&signed, service).await?;
    tracing::trace!(principal = %key.principal, key = %key.access_key_id, path = parts.uri.path(), "authenticated");
    Ok(key)
}

//! The front door: every request passes here. It answers CORS preflights and health checks,
//! reads the body (bounded), authenticates, routes by exact path to an operation, and turns
//! the outcome into the AWS response shape with a request id.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use oxbow_auth::EMPTY_SHA256;
use oxbow_core::{ids, ApiError, ErrorKind};
use sha2::{Digest, Sha256};

use crate::control::{self, Op};
use crate::state::AppState;

pub type Body = Full<Bytes>;

const EXPOSED: &str = "x-amzn-RequestId,x-amzn-ErrorType,x-amzn-ErrorMessage,Date";

pub async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let started = Instant::now();
    let request_id = ids::request_id();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut response = match (&method, path.as_str()) {
        (&Method::OPTIONS, _) => preflight(&req),
        (&Method::GET, "/health") => {
            json(StatusCode::OK, Bytes::from_static(b"{\"status\":\"ok\"}"))
        }
        _ => match api(&state, req).await {
            Ok(reply) => reply,
            Err(e) => error_response(&e),
        },
    };
    let status = response.status();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert("x-amzn-RequestId", v);
    }
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED),
    );
    let elapsed_us = started.elapsed().as_micros() as u64;
    if status.is_server_error() {
        tracing::error!(%peer, %method, %path, %status, %request_id, elapsed_us, "request failed");
    } else {
        tracing::debug!(%peer, %method, %path, %status, %request_id, elapsed_us, "request");
    }
    response
}

async fn api(state: &AppState, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let (parts, body) = req.into_parts();
    let op = Op::from_path(parts.uri.path())
        .filter(|_| parts.method == Method::POST)
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::UnknownOperation,
                format!("No operation at {} {}", parts.method, parts.uri.path()),
            )
        })?;
    let body = read_body(body, state.config.limits.max_request_bytes).await?;
    let body_hash = hex::encode(Sha256::digest(&body));
    let hashes = [body_hash.as_str(), EMPTY_SHA256];
    let signed = oxbow_auth::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        payload_hashes: if body.is_empty() {
            &hashes[1..]
        } else {
            &hashes[..1]
        },
    };
    let principal = crate::auth::authenticate(state, &signed).await?;
    tracing::trace!(principal = %principal.name, key = %principal.access_key_id, op = op.name(), "authenticated");
    let reply = control::dispatch(op, &body, state).await?;
    Ok(match reply {
        Some(v) => json(StatusCode::OK, Bytes::from(v.to_string())),
        None => json(StatusCode::OK, Bytes::new()),
    })
}

async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::new(
            ErrorKind::RequestEntityTooLarge,
            format!("Request body is larger than {limit} bytes."),
        )),
        Err(e) => Err(ApiError::new(
            ErrorKind::Serialization,
            format!("Could not read the request body: {e}"),
        )),
    }
}

fn json(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

pub fn error_response(e: &ApiError) -> Response<Body> {
    let status = StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = json(status, Bytes::from(e.body()));
    r.headers_mut()
        .insert("x-amzn-ErrorType", HeaderValue::from_static(e.kind.name()));
    r
}

/// Answers a browser's CORS preflight: any origin, the methods we serve, whatever headers the
/// page wants to send (SigV4 adds several).
fn preflight(req: &Request<Incoming>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, PUT, DELETE, OPTIONS"),
    );
    let requested = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested);
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    r
}

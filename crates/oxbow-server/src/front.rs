//! The front door: every request passes here. It answers CORS preflights and health checks,
//! routes by exact path, authenticates (reading the body first where the signature covers it;
//! PutMedia streams, so its body is signed as empty), and turns the outcome into the AWS
//! response shape with a request id.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use oxbow_auth::{EMPTY_SHA256, UNSIGNED_PAYLOAD};
use oxbow_core::{ids, ApiError, ErrorKind};
use sha2::{Digest, Sha256};

use crate::control::{self, Op};
use crate::media::{self, MediaOp};
use crate::state::AppState;

pub type Body = UnsyncBoxBody<Bytes, Infallible>;
pub type Reply = Response<Body>;

const EXPOSED: &str = "x-amzn-RequestId,x-amzn-ErrorType,x-amzn-ErrorMessage,Date";

pub fn boxed<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes, Error = Infallible> + Send + 'static,
{
    UnsyncBoxBody::new(body)
}

pub fn full(data: impl Into<Bytes>) -> Body {
    boxed(Full::new(data.into()))
}

/// Where a request goes.
enum Route {
    Control(Op),
    PutMedia,
    Media(MediaOp),
}

fn route(method: &Method, path: &str) -> Option<Route> {
    if method != Method::POST {
        return None;
    }
    if path == "/putMedia" {
        return Some(Route::PutMedia);
    }
    Op::from_path(path)
        .map(Route::Control)
        .or_else(|| MediaOp::from_path(path).map(Route::Media))
}

pub async fn handle(state: Arc<AppState>, req: Request<Incoming>, peer: SocketAddr) -> Reply {
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

async fn api(state: &Arc<AppState>, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let (parts, body) = req.into_parts();
    let route = route(&parts.method, parts.uri.path()).ok_or_else(|| {
        ApiError::new(
            ErrorKind::UnknownOperation,
            format!("No operation at {} {}", parts.method, parts.uri.path()),
        )
    })?;
    if let Route::PutMedia = route {
        // The producer SDK signs the streaming body as if it were empty.
        authenticate(state, &parts, &[EMPTY_SHA256, UNSIGNED_PAYLOAD]).await?;
        return media::put_media(Arc::clone(state), &parts.headers, body).await;
    }
    let body = read_body(body, state.config.limits.max_request_bytes).await?;
    let body_hash = hex::encode(Sha256::digest(&body));
    let hashes = [body_hash.as_str(), EMPTY_SHA256];
    authenticate(
        state,
        &parts,
        if body.is_empty() {
            &hashes[1..]
        } else {
            &hashes[..1]
        },
    )
    .await?;
    match route {
        Route::Control(op) => Ok(match control::dispatch(op, &body, state).await? {
            Some(v) => json(StatusCode::OK, Bytes::from(v.to_string())),
            None => json(StatusCode::OK, Bytes::new()),
        }),
        Route::Media(op) => media::dispatch(op, &body, state).await,
        Route::PutMedia => unreachable!("handled above"),
    }
}

async fn authenticate(
    state: &AppState,
    parts: &http::request::Parts,
    hashes: &[&str],
) -> Result<(), ApiError> {
    let signed = oxbow_auth::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        payload_hashes: hashes,
    };
    let principal = crate::auth::authenticate(state, &signed).await?;
    tracing::trace!(principal = %principal.name, key = %principal.access_key_id, path = parts.uri.path(), "authenticated");
    Ok(())
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

fn json(status: StatusCode, body: Bytes) -> Reply {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

pub fn error_response(e: &ApiError) -> Reply {
    let status = StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = json(status, Bytes::from(e.body()));
    r.headers_mut()
        .insert("x-amzn-ErrorType", HeaderValue::from_static(e.kind.name()));
    r
}

/// Answers a browser's CORS preflight: any origin, the methods we serve, whatever headers the
/// page wants to send (SigV4 adds several).
fn preflight(req: &Request<Incoming>) -> Reply {
    let mut r = Response::new(full(Bytes::new()));
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

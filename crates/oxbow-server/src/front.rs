//! The front door: every request passes here. It answers CORS preflights and health checks,
//! routes by exact path, authenticates (reading the body first where the signature covers it;
//! PutMedia streams, so its body is signed as empty), and turns the outcome into the AWS
//! response shape with a request id.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use oxbow_auth::{EMPTY_SHA256, UNSIGNED_PAYLOAD};
use oxbow_core::{ids, ApiError, ErrorKind};
use sha2::{Digest, Sha256};

use crate::auth::{SERVICE, STS_SERVICE};
use crate::authz::{self, Access, RequestEnv};
use crate::control::{self, Op};
use crate::media::{self, MediaOp};
use crate::state::AppState;
use crate::{access, admin, camera, sts};
use oxbow_catalog::AccessKey;

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

/// The connection a request arrived on.
#[derive(Debug, Clone, Copy)]
pub struct Conn {
    pub peer: SocketAddr,
    /// Whether it is TLS (`aws:SecureTransport`).
    pub secure: bool,
    /// Whether it came in on the plain-HTTP listener beside a TLS one (`--http-listen`).
    pub plain_beside_tls: bool,
}

/// Where a request goes.
enum Route {
    Control(Op),
    PutMedia,
    Media(MediaOp),
    /// STS (AssumeRole): `POST /` with a form body, answered in XML.
    Sts,
    /// `POST /admin/<Action>`.
    Admin(String),
    /// `GET /camera-url`: a presigned signaling URL for a camera the caller owns.
    CameraUrl,
    /// `GET /?X-Amz-ChannelARN=...`: a signaling WebSocket handshake.
    Handshake,
    /// A KVS operation that exists on AWS but not in this version yet (its name).
    NotBuilt(&'static str),
}

/// KVS operations not served yet, by path: answered with an error that says so, rather than
/// one that reads like a wrong endpoint.
const NOT_BUILT: [(&str, &str); 8] = [
    ("/getHLSStreamingSessionURL", "GetHLSStreamingSessionURL"),
    ("/getDASHStreamingSessionURL", "GetDASHStreamingSessionURL"),
    ("/getClip", "GetClip"),
    ("/getImages", "GetImages"),
    ("/v1/get-ice-server-config", "GetIceServerConfig"),
    ("/v1/send-alexa-offer-to-master", "SendAlexaOfferToMaster"),
    ("/joinStorageSession", "JoinStorageSession"),
    ("/joinStorageSessionAsViewer", "JoinStorageSessionAsViewer"),
];

fn route(parts: &http::request::Parts) -> Option<Route> {
    let path = parts.uri.path();
    if parts.method == Method::GET {
        return match path {
            "/camera-url" => Some(Route::CameraUrl),
            "/" if camera::is_handshake(parts.uri.query()) => Some(Route::Handshake),
            _ => None,
        };
    }
    if parts.method != Method::POST {
        return None;
    }
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    match path {
        "/putMedia" => Some(Route::PutMedia),
        "/" if sts::is_sts(content_type) => Some(Route::Sts),
        _ => match path.strip_prefix(admin::PREFIX) {
            Some(action) => Some(Route::Admin(action.to_string())),
            None => Op::from_path(path)
                .map(Route::Control)
                .or_else(|| MediaOp::from_path(path).map(Route::Media))
                .or_else(|| {
                    NOT_BUILT
                        .iter()
                        .find(|(p, _)| *p == path)
                        .map(|(_, name)| Route::NotBuilt(name))
                }),
        },
    }
}

pub async fn handle(state: Arc<AppState>, req: Request<Incoming>, conn: Conn) -> Reply {
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
        _ => match api(&state, req, conn, &request_id).await {
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

async fn api(
    state: &Arc<AppState>,
    req: Request<Incoming>,
    conn: Conn,
    request_id: &str,
) -> Result<Reply, ApiError> {
    let (parts, body) = req.into_parts();
    let route = route(&parts).ok_or_else(|| {
        ApiError::new(
            ErrorKind::UnknownOperation,
            format!("No operation at {} {}", parts.method, parts.uri.path()),
        )
    })?;
    if let Route::PutMedia = route {
        // The producer SDK signs the streaming body as if it were empty.
        let key = authenticate(state, &parts, &[EMPTY_SHA256, UNSIGNED_PAYLOAD], SERVICE).await?;
        if !is_root(&key) {
            let access = access::put_media(state, &parts.headers).await;
            authorize(state, &key, &access, conn).await?;
        }
        return media::put_media(Arc::clone(state), &parts.headers, body).await;
    }
    let limits = &state.config.limits;
    let body = read_body(
        &parts.headers,
        body,
        limits.max_request_bytes,
        Duration::from_millis(limits.request_body_timeout_ms),
    )
    .await?;
    let body_hash = hex::encode(Sha256::digest(&body));
    let hashes = [body_hash.as_str(), EMPTY_SHA256, UNSIGNED_PAYLOAD];
    let hashes = if body.is_empty() {
        &hashes[1..]
    } else {
        &hashes[..1]
    };
    match route {
        Route::Sts => Ok(sts_call(state, &parts, hashes, &body, conn, request_id).await),
        Route::Handshake => Ok(handshake(state, &parts, hashes, conn).await),
        route => {
            let key = authenticate(state, &parts, hashes, SERVICE).await?;
            signed_api(state, route, &key, &parts, &body, conn).await
        }
    }
}

/// The JSON APIs, once the caller is known.
async fn signed_api(
    state: &Arc<AppState>,
    route: Route,
    key: &AccessKey,
    parts: &http::request::Parts,
    body: &[u8],
    conn: Conn,
) -> Result<Reply, ApiError> {
    let ok = |v: serde_json::Value| json(StatusCode::OK, Bytes::from(v.to_string()));
    match route {
        Route::Control(op) => {
            if !is_root(key) {
                authorize(state, key, &access::control(state, op, body).await, conn).await?;
            }
            let plain = plain_url(parts, conn);
            let data_endpoint = plain.as_deref().unwrap_or(&state.public_url);
            Ok(match control::dispatch(op, body, state, data_endpoint).await? {
                Some(v) => ok(v),
                None => json(StatusCode::OK, Bytes::new()),
            })
        }
        Route::Media(op) => {
            if !is_root(key) {
                authorize(state, key, &access::media(state, op, body).await, conn).await?;
            }
            media::dispatch(op, body, state).await
        }
        Route::Admin(action) => Ok(ok(admin::handle(state, key, &action, body).await?)),
        Route::CameraUrl => match camera::camera_url(state, key, parts.uri.query()).await {
            Ok(v) => Ok(ok(v)),
            Err(e) => Ok(forbidden_on_denial(&e)),
        },
        Route::NotBuilt(name) => Err(ApiError::new(
            ErrorKind::NotImplemented,
            format!(
                "{name} is a Kinesis Video Streams operation that this version of Oxbow does not implement yet."
            ),
        )),
        Route::PutMedia | Route::Sts | Route::Handshake => {
            unreachable!("routed before authentication")
        }
    }
}

/// For a caller that came in over plain HTTP beside TLS (`--http-listen`): the plain URL it
/// reached, so the data endpoint it is handed can be used the same way.
fn plain_url(parts: &http::request::Parts, conn: Conn) -> Option<String> {
    let host = parts.headers.get(header::HOST)?.to_str().ok()?;
    conn.plain_beside_tls.then(|| format!("http://{host}"))
}

/// STS answers every outcome, errors included, in its own XML shape.
async fn sts_call(
    state: &AppState,
    parts: &http::request::Parts,
    hashes: &[&str],
    body: &[u8],
    conn: Conn,
    request_id: &str,
) -> Reply {
    match authenticate(state, parts, hashes, STS_SERVICE).await {
        Ok(key) => sts::handle(state, &key, body, env(conn), request_id).await,
        Err(e) => sts::error(&e, request_id),
    }
}

/// A signaling handshake: denials are 403 here, as the WebRTC guide lists them.
async fn handshake(
    state: &AppState,
    parts: &http::request::Parts,
    hashes: &[&str],
    conn: Conn,
) -> Reply {
    let result = match authenticate(state, parts, hashes, SERVICE).await {
        Ok(key) => camera::authorize_handshake(state, &key, parts.uri.query(), env(conn)).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            let e = ApiError::new(
                ErrorKind::ServiceUnavailable,
                "The connection is authorized, but WebSocket signaling is not served by this version of Oxbow yet.",
            );
            let mut r = error_response(&e);
            *r.status_mut() = StatusCode::NOT_IMPLEMENTED;
            r
        }
        Err(e) => forbidden_on_denial(&e),
    }
}

/// The error reply, with denials as 403 Forbidden: the WebRTC guide's handshake errors and
/// seed 001's URL vending answer a refusal that way (the KVS JSON APIs use 401).
fn forbidden_on_denial(e: &ApiError) -> Reply {
    let mut r = error_response(e);
    if matches!(e.kind, ErrorKind::AccessDenied | ErrorKind::NotAuthorized) {
        *r.status_mut() = StatusCode::FORBIDDEN;
    }
    r
}

fn env(conn: Conn) -> RequestEnv {
    RequestEnv {
        source_ip: conn.peer.ip(),
        secure_transport: conn.secure,
    }
}

fn is_root(key: &AccessKey) -> bool {
    key.principal == authz::ROOT
}

async fn authorize(
    state: &AppState,
    key: &AccessKey,
    access: &Access,
    conn: Conn,
) -> Result<(), ApiError> {
    state.authz.authorize(state, key, access, env(conn)).await
}

async fn authenticate(
    state: &AppState,
    parts: &http::request::Parts,
    hashes: &[&str],
    service: &str,
) -> Result<Arc<AccessKey>, ApiError> {
    let signed = oxbow_auth::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        payload_hashes: hashes,
    };
    let key = crate::auth::authenticate(state, &signed, service).await?;
    tracing::trace!(principal = %key.principal, key = %key.access_key_id, path = parts.uri.path(), "authenticated");
    Ok(key)
}

/// How long, and how much of, a refused request body is still read after the answer.
pub const REFUSED_BODY_LINGER: Duration = Duration::from_secs(2);
const REFUSED_BODY_MAX_BYTES: u64 = 16 << 20;

/// Reads and drops what is left of a refused body, for up to `linger` and `max_bytes`.
/// Closing a connection whose request is still arriving resets it, and a reset can destroy
/// the answer (an error, an error ack) on its way to the client; reading on while the
/// answer goes out avoids that.
pub async fn discard_rest<B>(body: &mut B, linger: Duration, max_bytes: u64)
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    let _ = tokio::time::timeout(linger, async {
        let mut read = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            read += frame.data_ref().map_or(0, |d| d.len() as u64);
            if read > max_bytes {
                return;
            }
        }
    })
    .await;
}

/// Reads a whole request body: refused at once when it declares more than `limit` bytes,
/// and when it does not arrive within `timeout` (the connection then closes, since the rest
/// of the body is never read).
async fn read_body(
    headers: &http::HeaderMap,
    body: Incoming,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorKind::RequestEntityTooLarge,
            format!("Request body is larger than {limit} bytes."),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        // Answered at once; the body is still read (and dropped) for a moment in the
        // background so that closing does not reset the connection under the answer.
        let mut body = body;
        tokio::spawn(async move {
            discard_rest(&mut body, REFUSED_BODY_LINGER, REFUSED_BODY_MAX_BYTES).await;
        });
        return Err(too_large());
    }
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Err(_) => Err(ApiError::new(
            ErrorKind::RequestTimeout,
            format!(
                "The request body did not arrive within {} seconds.",
                timeout.as_secs_f64()
            ),
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(ApiError::new(
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

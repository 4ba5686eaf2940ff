//! The bottom layer every handler shares: response bodies, JSON and error replies in the
//! KVS shape, and reading (or refusing) request bodies. It imports nothing from the API
//! families, so any of them can use it.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use oxbow_core::{ApiError, ErrorKind};

pub type Body = UnsyncBoxBody<Bytes, Infallible>;
pub type Reply = Response<Body>;

/// Response headers a browser page may read (the KVS JS SDK reads the request id and error).
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

pub fn json(status: StatusCode, body: Bytes) -> Reply {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// An error in the KVS JSON shape (`__type`, `Message`, `x-amzn-ErrorType`).
pub fn error_response(e: &ApiError, request_id: &str) -> Reply {
    let status = StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = json(status, Bytes::from(e.body(request_id)));
    r.headers_mut()
        .insert("x-amzn-ErrorType", HeaderValue::from_static(e.kind.name()));
    r
}

/// The error reply, with denials as 403 Forbidden: the WebRTC guide's handshake errors and
/// seed 001's URL vending answer a refusal that way (the KVS JSON APIs use 401).
pub fn forbidden_on_denial(e: &ApiError, request_id: &str) -> Reply {
    let mut r = error_response(e, request_id);
    if matches!(e.kind, ErrorKind::AccessDenied | ErrorKind::NotAuthorized) {
        *r.status_mut() = StatusCode::FORBIDDEN;
    }
    r
}

/// Adds what every answer carries: the request id and the CORS headers browsers need.
pub fn finish(response: &mut Reply, request_id: &str) {
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(request_id) {
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
}

/// Answers a browser's CORS preflight: any origin, the methods we serve, whatever headers the
/// page wants to send (SigV4 adds several).
pub fn preflight(req: &Request<Incoming>) -> Reply {
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
pub async fn read_body(
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

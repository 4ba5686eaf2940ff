//! The AWS query protocol's answers, shared by STS and IAM: a form body in, XML out, and one
//! error envelope (`<ErrorResponse><Error><Type>Sender|Receiver</Type><Code>…`) whose codes
//! for signature and throttling failures are the same in both services.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use oxbow_core::{ApiError, ErrorKind};

use crate::http::{full, Reply};

/// Whether a request is a query-protocol call (`POST /` with a form body) signed for
/// `service`: how STS and IAM, which share the path, tell their calls apart.
pub fn is_call_for(parts: &http::request::Parts, service: &str) -> bool {
    let form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let signed_for = crate::auth::signed_service(parts);
    // Unsigned or unreadable calls go to STS, which answers them in its shape.
    let matches = match signed_for.as_deref() {
        Some(s) if s == crate::auth::IAM_SERVICE => service == crate::auth::IAM_SERVICE,
        _ => service != crate::auth::IAM_SERVICE,
    };
    parts.method == http::Method::POST && parts.uri.path() == "/" && form && matches
}

pub fn xml(status: StatusCode, body: String) -> Reply {
    let mut r = Response::new(full(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    r
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The code and status both services give the failures every request can meet (signature,
/// token, throttling, size); `None` for the rest, which each service names itself.
pub fn common_code(kind: ErrorKind) -> Option<(&'static str, u16)> {
    use ErrorKind::*;
    Some(match kind {
        AccessDenied | NotAuthorized => ("AccessDenied", 403),
        UnrecognizedClient => ("InvalidClientTokenId", 403),
        InvalidSignature => ("SignatureDoesNotMatch", 403),
        IncompleteSignature => ("IncompleteSignature", 400),
        MissingAuthenticationToken => ("MissingAuthenticationToken", 403),
        ExpiredToken => ("ExpiredToken", 400),
        RequestEntityTooLarge => ("ValidationError", 413),
        ClientLimitExceeded => ("Throttling", 400),
        _ => return None,
    })
}

/// The error envelope of namespace `ns`: whose fault it is (the caller's, Sender, or the
/// service's, Receiver), the code, and a message that keeps causes in the log.
pub fn error(ns: &str, code: &str, status: u16, e: &ApiError, request_id: &str) -> Reply {
    let side = match e.fault() {
        oxbow_core::Fault::Client => "Sender",
        _ => "Receiver",
    };
    xml(
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        format!(
            "<ErrorResponse xmlns=\"{ns}\"><Error><Type>{side}</Type><Code>{code}</Code>\
             <Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
            escape(&e.client_message(request_id))
        ),
    )
}

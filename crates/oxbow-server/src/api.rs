//! The one shape every API family takes behind the front door. A family routes a request
//! head to an [`Operation`]; the operation says how its caller authenticates ([`Auth`]) and
//! what it is judged on ([`Operation::access`]), handles the call, and renders its errors in
//! its protocol's shape. The front door (`front.rs`) runs the same sequence for all of them:
//! route, read the body (or leave it streaming), authenticate, authorize, handle, answer.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use oxbow_catalog::AccessKey;
use oxbow_core::{ApiError, ErrorKind};

use crate::authz::{self, Access, RequestEnv};
use crate::http::{error_response, Reply};
use crate::state::AppState;

/// The connection a request arrived on.
#[derive(Debug, Clone)]
pub struct Conn {
    pub peer: SocketAddr,
    /// Whether it is TLS (`aws:SecureTransport`).
    pub secure: bool,
    /// Whether it came in on the plain-HTTP listener beside a TLS one (`--http-listen`).
    pub plain_beside_tls: bool,
    /// The certificate the client presented in a mutual-TLS handshake (DER).
    pub client_certificate: Option<Arc<[u8]>>,
}

/// How a caller proves who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// A SigV4 signature, in the `Authorization` header or presigned in the query, for
    /// `service`.
    SigV4 {
        service: &'static str,
        payload: Payload,
    },
    /// The certificate of a mutual-TLS handshake (the IoT credentials provider).
    ClientCertificate,
    /// A streaming session token in the URL (HLS and DASH resources): the operation opens
    /// it; the call that issued it was signed and judged.
    SessionToken,
}

/// A KVS request signed over its body: most operations.
pub const KVS_SIGNED: Auth = Auth::SigV4 {
    service: crate::auth::SERVICE,
    payload: Payload::Body,
};

/// What a signature's payload hash covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// The whole body, read before the signature is checked (at most `max_request_bytes`).
    Body,
    /// Nothing: the body streams to the handler unread, and is signed as empty or
    /// `UNSIGNED-PAYLOAD` (PutMedia, as the producer SDK signs it).
    Streamed,
}

/// Who is calling, once authenticated.
#[derive(Clone)]
pub enum Caller {
    Key(Arc<AccessKey>),
    Certificate(Arc<[u8]>),
    /// Someone holding a session URL (see [`Auth::SessionToken`]).
    SessionHolder,
}

/// A request's body, as its operation asked for it.
pub enum CallBody {
    Whole(Bytes),
    Streamed(Incoming),
}

/// One authenticated request on its way to its handler.
pub struct Call {
    pub parts: http::request::Parts,
    pub body: CallBody,
    pub conn: Conn,
    pub request_id: String,
    pub caller: Caller,
}

impl Call {
    /// The body read whole (empty for a streamed one).
    pub fn bytes(&self) -> &[u8] {
        match &self.body {
            CallBody::Whole(b) => b,
            CallBody::Streamed(_) => &[],
        }
    }

    /// The access key that signed the request (operations with [`Auth::SigV4`]).
    pub fn key(&self) -> Result<&AccessKey, ApiError> {
        match &self.caller {
            Caller::Key(k) => Ok(k),
            Caller::Certificate(_) | Caller::SessionHolder => Err(ApiError::internal(
                "an operation that needs a signature was reached without one",
            )),
        }
    }

    /// What policy conditions may test about the request.
    pub fn env(&self) -> RequestEnv {
        RequestEnv {
            source_ip: self.conn.peer.ip(),
            secure_transport: self.conn.secure,
        }
    }

    /// For a caller that came in over plain HTTP beside TLS (`--http-listen`): the plain URL
    /// it reached, so a data endpoint it is handed can be used the same way.
    pub fn plain_url(&self) -> Option<String> {
        let host = self.parts.headers.get(http::header::HOST)?.to_str().ok()?;
        self.conn.plain_beside_tls.then(|| format!("http://{host}"))
    }

    /// Whether the caller is the root principal, which no policy judges.
    pub fn is_root(&self) -> bool {
        matches!(&self.caller, Caller::Key(k) if authz::is_root(k))
    }
}

pub type Handled<'a> = Pin<Box<dyn Future<Output = Result<Reply, ApiError>> + Send + 'a>>;
pub type Judged<'a> = Pin<Box<dyn Future<Output = Option<Access>> + Send + 'a>>;

/// One operation of an API family.
pub trait Operation: Send + Sync {
    /// How the caller authenticates: by default a KVS signature over the body.
    fn auth(&self) -> Auth {
        KVS_SIGNED
    }

    /// The action and resource the caller is judged on before the handler runs; `None` for
    /// operations that judge the caller themselves (STS judges `sts:AssumeRole` on the role
    /// it reads from the body, admin takes root only, IoT evaluates certificate policies).
    fn access<'a>(&'a self, _state: &'a AppState, _call: &'a Call) -> Judged<'a> {
        Box::pin(async { None })
    }

    fn handle<'a>(&'a self, state: &'a Arc<AppState>, call: Call) -> Handled<'a>;

    /// The error in this protocol's shape (the KVS JSON envelope unless overridden).
    fn error(&self, e: &ApiError, request_id: &str) -> Reply {
        error_response(e, request_id)
    }
}

/// Routes a request head to an operation of one family, if it names one.
pub type RouteFn = fn(&http::request::Parts) -> Option<Box<dyn Operation>>;

/// The error for a request no family routes.
pub fn unknown_operation(parts: &http::request::Parts) -> ApiError {
    ApiError::new(
        ErrorKind::UnknownOperation,
        format!("No operation at {} {}", parts.method, parts.uri.path()),
    )
}

//! The catalogue of errors Oxbow answers with. Each kind carries the exact AWS error name (sent in
//! `x-amzn-ErrorType` and the body's `__type`) and the HTTP status the KVS API reference and the
//! AWS service models give it: SDKs map errors by these two values, so they must not drift.

use std::fmt;

/// Every error name Oxbow can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    AccessDenied,
    AccountChannelLimitExceeded,
    AccountStreamLimitExceeded,
    ClientLimitExceeded,
    DeviceStreamLimitExceeded,
    InvalidArgument,
    InvalidDevice,
    InvalidResourceFormat,
    NoDataRetention,
    NotAuthorized,
    ResourceInUse,
    ResourceNotFound,
    StreamEdgeConfigurationNotFound,
    TagsPerResourceExceededLimit,
    VersionMismatch,
    /// Too many concurrent GetMedia/PutMedia connections on a stream.
    ConnectionLimitExceeded,
    /// The request body is not JSON, or a member has the wrong JSON type.
    Serialization,
    /// No route for this method and path.
    UnknownOperation,
    /// No `Authorization` header and no presigned query.
    MissingAuthenticationToken,
    /// Malformed `Authorization` header or presigned query.
    IncompleteSignature,
    /// The signature does not match, or it is too old or too far in the future.
    InvalidSignature,
    /// The access key id is not known.
    UnrecognizedClient,
    /// The session token does not belong to the access key, or has expired.
    ExpiredToken,
    /// The request body is larger than the operation accepts.
    RequestEntityTooLarge,
    /// The request body did not arrive in time.
    RequestTimeout,
    /// An HTTP request the HTTP layer cannot parse (request line, headers, body length).
    BadRequest,
    /// The request URI is too long.
    UriTooLong,
    /// The request's headers are too large, or too many.
    HeadersTooLarge,
    /// IAM: a policy document that does not parse, or names an impossible value.
    MalformedPolicyDocument,
    /// IAM: a quota such as the policy size.
    LimitExceeded,
    /// IoT: a certificate that is not a well-formed X.509 certificate in PEM.
    CertificateValidation,
    /// IoT: the certificate's status forbids the change (deleting an ACTIVE one, reviving a
    /// REVOKED one).
    CertificateState,
    /// IAM and IoT: the entity is still attached to others (policies, keys, things).
    DeleteConflict,
    /// Playback: a track has no CodecPrivate.
    MissingCodecPrivateData,
    /// Playback: a CodecPrivate that cannot be read as its codec's configuration.
    InvalidCodecPrivateData,
    /// Playback: codecs or track layout the playback APIs do not take.
    UnsupportedStreamMediaType,
    /// GetClip: a stored frame that cannot be read.
    InvalidMediaFrame,
    /// A KVS operation this version of Oxbow does not serve yet.
    NotImplemented,
    InternalFailure,
    ServiceUnavailable,
}

impl ErrorKind {
    /// The AWS error type name, exactly as the SDKs match it.
    pub fn name(self) -> &'static str {
        use ErrorKind::*;
        match self {
            AccessDenied => "AccessDeniedException",
            AccountChannelLimitExceeded => "AccountChannelLimitExceededException",
            AccountStreamLimitExceeded => "AccountStreamLimitExceededException",
            ClientLimitExceeded => "ClientLimitExceededException",
            DeviceStreamLimitExceeded => "DeviceStreamLimitExceededException",
            InvalidArgument => "InvalidArgumentException",
            InvalidDevice => "InvalidDeviceException",
            InvalidResourceFormat => "InvalidResourceFormatException",
            NoDataRetention => "NoDataRetentionException",
            NotAuthorized => "NotAuthorizedException",
            ResourceInUse => "ResourceInUseException",
            ResourceNotFound => "ResourceNotFoundException",
            StreamEdgeConfigurationNotFound => "StreamEdgeConfigurationNotFoundException",
            TagsPerResourceExceededLimit => "TagsPerResourceExceededLimitException",
            VersionMismatch => "VersionMismatchException",
            ConnectionLimitExceeded => "ConnectionLimitExceededException",
            Serialization => "SerializationException",
            UnknownOperation => "UnknownOperationException",
            MissingAuthenticationToken => "MissingAuthenticationTokenException",
            IncompleteSignature => "IncompleteSignatureException",
            InvalidSignature => "InvalidSignatureException",
            UnrecognizedClient => "UnrecognizedClientException",
            ExpiredToken => "ExpiredTokenException",
            RequestEntityTooLarge => "RequestEntityTooLargeException",
            MissingCodecPrivateData => "MissingCodecPrivateDataException",
            InvalidCodecPrivateData => "InvalidCodecPrivateDataException",
            UnsupportedStreamMediaType => "UnsupportedStreamMediaTypeException",
            InvalidMediaFrame => "InvalidMediaFrameException",
            NotImplemented => "NotImplementedException",
            RequestTimeout => "RequestTimeoutException",
            BadRequest => "BadRequestException",
            UriTooLong => "RequestURITooLongException",
            HeadersTooLarge => "RequestHeaderFieldsTooLargeException",
            MalformedPolicyDocument => "MalformedPolicyDocumentException",
            LimitExceeded => "LimitExceededException",
            CertificateValidation => "CertificateValidationException",
            CertificateState => "CertificateStateException",
            DeleteConflict => "DeleteConflictException",
            InternalFailure => "InternalFailure",
            ServiceUnavailable => "ServiceUnavailableException",
        }
    }

    /// The HTTP status the service model declares for this error.
    pub fn status(self) -> u16 {
        use ErrorKind::*;
        match self {
            AccessDenied | NotAuthorized => 401,
            MissingAuthenticationToken
            | IncompleteSignature
            | InvalidSignature
            | UnrecognizedClient
            | ExpiredToken => 403,
            ResourceNotFound | StreamEdgeConfigurationNotFound | UnknownOperation => 404,
            RequestTimeout => 408,
            LimitExceeded | DeleteConflict => 409,
            CertificateState => 406,
            RequestEntityTooLarge => 413,
            UriTooLong => 414,
            HeadersTooLarge => 431,
            InternalFailure => 500,
            NotImplemented => 501,
            ServiceUnavailable => 503,
            _ => 400,
        }
    }
}

/// Whose fault a failure is, which decides who must act: the client (fix the request), the
/// server (a bug or a broken invariant), or something it depends on (the catalog, the disk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Client,
    Server,
    Dependency,
}

/// Why a request failed inside Oxbow. It goes to the log with the request id; the client
/// gets the documented error and that id, never this.
#[derive(Debug)]
pub struct Cause {
    /// What Oxbow was doing ("read the stream's record").
    pub doing: String,
    pub fault: Fault,
    /// Whether the same request may succeed if retried (a busy or briefly failing dependency).
    pub retryable: bool,
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// An error as the client will see it (a kind and a message), with the cause behind it when
/// Oxbow itself failed.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    pub cause: Option<std::sync::Arc<Cause>>,
}

/// Two errors are the same answer if the client sees the same thing.
impl PartialEq for ApiError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.message == other.message
    }
}

impl Eq for ApiError {}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.message)?;
        if let Some(c) = &self.cause {
            write!(f, " (while trying to {})", c.doing)?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let source = self.cause.as_ref()?.source.as_ref()?;
        Some(source.as_ref())
    }
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            cause: None,
        }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    pub fn stream_not_found() -> Self {
        Self::new(
            ErrorKind::ResourceNotFound,
            "The requested stream is not found or not active.",
        )
    }

    pub fn channel_not_found() -> Self {
        Self::new(
            ErrorKind::ResourceNotFound,
            "The requested channel is not found or not active.",
        )
    }

    /// Oxbow broke one of its own rules while trying to do `doing`: a bug.
    pub fn internal(doing: impl Into<String>) -> Self {
        Self::failed(doing, Fault::Server, None)
    }

    /// Something Oxbow depends on (the catalog, the media store) failed while it tried to
    /// do `doing`; a retry may succeed.
    pub fn dependency(
        doing: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::failed(doing, Fault::Dependency, Some(source.into()))
    }

    /// Oxbow failed with `source` while trying to do `doing`.
    pub fn server(
        doing: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::failed(doing, Fault::Server, Some(source.into()))
    }

    fn failed(
        doing: impl Into<String>,
        fault: Fault,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        let retryable = fault == Fault::Dependency;
        Self {
            kind: ErrorKind::InternalFailure,
            message: if retryable {
                "The service failed to complete the request; try again.".into()
            } else {
                "The service failed to complete the request.".into()
            },
            cause: Some(std::sync::Arc::new(Cause {
                doing: doing.into(),
                fault,
                retryable,
                source,
            })),
        }
    }

    /// Whose fault the error is: the cause's, else the client's for a 4xx answer.
    pub fn fault(&self) -> Fault {
        match &self.cause {
            Some(c) => c.fault,
            None if self.kind.status() < 500 => Fault::Client,
            None => Fault::Server,
        }
    }

    /// Whether retrying the same request may help.
    pub fn retryable(&self) -> bool {
        match &self.cause {
            Some(c) => c.retryable,
            None => matches!(
                self.kind,
                ErrorKind::ClientLimitExceeded
                    | ErrorKind::ConnectionLimitExceeded
                    | ErrorKind::ServiceUnavailable
                    | ErrorKind::RequestTimeout
            ),
        }
    }

    /// The cause and each error under it, outermost first, for the log.
    pub fn cause_chain(&self) -> String {
        let mut out = String::new();
        if let Some(c) = &self.cause {
            out.push_str(&c.doing);
        }
        let mut next = std::error::Error::source(self);
        while let Some(e) = next {
            out.push_str(": ");
            out.push_str(&e.to_string());
            next = e.source();
        }
        out
    }

    /// The message the client reads, naming the request id when Oxbow itself failed so the
    /// operator can find the cause in the log.
    pub fn client_message(&self, request_id: &str) -> String {
        match &self.cause {
            Some(_) => format!("{} Request ID: {request_id}", self.message),
            None => self.message.clone(),
        }
    }

    /// The JSON body AWS rest-json services send with an error.
    pub fn body(&self, request_id: &str) -> String {
        serde_json::json!({ "__type": self.kind.name(), "Message": self.client_message(request_id) })
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_service_model() {
        assert_eq!(ErrorKind::NotAuthorized.status(), 401);
        assert_eq!(ErrorKind::AccessDenied.status(), 401);
        assert_eq!(ErrorKind::ResourceNotFound.status(), 404);
        assert_eq!(ErrorKind::StreamEdgeConfigurationNotFound.status(), 404);
        assert_eq!(ErrorKind::VersionMismatch.status(), 400);
        assert_eq!(ErrorKind::InvalidSignature.status(), 403);
    }

    #[test]
    fn body_carries_type_and_message() {
        let e = ApiError::stream_not_found();
        let v: serde_json::Value = serde_json::from_str(&e.body("r1")).unwrap();
        assert_eq!(v["__type"], "ResourceNotFoundException");
        assert_eq!(
            v["Message"],
            "The requested stream is not found or not active."
        );
        assert_eq!(e.fault(), Fault::Client);
    }

    #[test]
    fn a_failure_keeps_its_cause_for_the_log_and_names_the_request_to_the_client() {
        let io = std::io::Error::other("disk on fire");
        let e = ApiError::dependency("read the stream's record", io);
        assert_eq!(e.kind, ErrorKind::InternalFailure);
        assert_eq!(e.fault(), Fault::Dependency);
        assert!(e.retryable());
        assert_eq!(e.cause_chain(), "read the stream's record: disk on fire");
        let v: serde_json::Value = serde_json::from_str(&e.body("req-9")).unwrap();
        assert_eq!(
            v["Message"],
            "The service failed to complete the request; try again. Request ID: req-9"
        );
        assert!(
            !v.to_string().contains("fire"),
            "the cause stays in the log"
        );
    }
}

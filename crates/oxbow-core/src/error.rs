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
            NotImplemented => "NotImplementedException",
            RequestTimeout => "RequestTimeoutException",
            BadRequest => "BadRequestException",
            UriTooLong => "RequestURITooLongException",
            HeadersTooLarge => "RequestHeaderFieldsTooLargeException",
            MalformedPolicyDocument => "MalformedPolicyDocumentException",
            LimitExceeded => "LimitExceededException",
            CertificateValidation => "CertificateValidationException",
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
            LimitExceeded => 409,
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

/// An error as the client will see it: a kind and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.message)
    }
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
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

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InternalFailure, message)
    }

    /// The JSON body AWS rest-json services send with an error.
    pub fn body(&self) -> String {
        serde_json::json!({ "__type": self.kind.name(), "Message": self.message }).to_string()
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
        let v: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(v["__type"], "ResourceNotFoundException");
        assert!(v["Message"].as_str().unwrap().contains("not found"));
    }
}

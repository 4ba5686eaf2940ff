//! Who may call: AWS Signature Version 4 verification (and signing), and IAM-style policies
//! ([`policy`]). SigV4 verification, as the KVS clients sign: the `Authorization` header form
//! (AWS SDKs, CLI, KVS producer SDK) and the presigned query form (WebSocket signaling URLs).
//!
//! Verification happens in two steps so the caller can look up the secret in between:
//! [`parse`] reads the claimed credential from the request, then [`verify`] recomputes the
//! signature with the secret and checks the clock.

#![forbid(unsafe_code)]

mod canonical;
pub mod policy;
mod sigv4;

pub use sigv4::{
    parse, presign, sign, verify, ParsedAuth, Request, SigningParams, EMPTY_SHA256,
    UNSIGNED_PAYLOAD,
};

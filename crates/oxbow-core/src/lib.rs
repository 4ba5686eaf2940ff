//! Shared vocabulary of Oxbow: the KVS error catalogue, the validation rules of the API
//! reference, resource ARNs, identifiers and time. No I/O lives here, so every other crate can
//! depend on it without pulling in a runtime.

#![forbid(unsafe_code)]

pub mod arn;
pub mod error;
pub mod ids;
pub mod time;
pub mod validate;

pub use arn::{ResourceArn, ResourceType};
pub use error::{ApiError, Cause, ErrorKind, Fault};

//! A Rust client for the KVS media APIs that no AWS SDK has: PutMedia as the KVS producer SDK
//! speaks it (chunked MKV up, JSON acks down, on one full-duplex request) and GetMedia. Also
//! the few control-plane calls a producer needs.

#![forbid(unsafe_code)]

mod get;
mod http;
mod put;
mod signing;

pub use get::{ChunkReader, SegmentMerger};
pub use http::{Client, ClientError, Trust};
pub use put::{Ack, AckEvent, Producer, PutOptions, PutSummary};
pub use signing::Credentials;

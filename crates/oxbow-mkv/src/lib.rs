//! Streaming Matroska for Kinesis Video Streams.
//!
//! [`MkvParser`] is a push parser: feed it body chunks as they arrive and pull [`Event`]s.
//! It understands the shape KVS producers send — one Segment of unknown size, Info and Tracks
//! once, then Clusters (often of unknown size, ended by the next level-1 element) holding
//! SimpleBlocks, with level-1 Tags between them — and hands out frames and header parts as
//! `Bytes` slices of the input, without copying media.
//!
//! [`write`] builds the elements Oxbow emits (GetMedia chunks, tags).

#![forbid(unsafe_code)]

pub mod ids;
mod parser;
pub mod vint;
pub mod write;

pub use parser::{block_data, BlockData, Event, Frame, Header, MkvError, MkvParser, TrackInfo};

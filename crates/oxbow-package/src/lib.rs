//! Packaging: stored KVS fragments (Matroska clusters) remuxed into what players fetch.
//!
//! - [`track`]: a stored track described for packaging, the KVS codec rules and the codec
//!   strings players are told (RFC 6381).
//! - [`demux`]: one fragment's cluster into timed samples per track.
//! - [`fmp4`]: init and media segments (ISO BMFF fragments, CMAF-shaped).
//! - [`parts`]: partial segments for low-latency HLS.
//! - [`hls`]: master and media playlists.
//! - [`dash`]: MPEG-DASH manifests.
//! - [`mp4`]: whole MP4 files (clips).
//! - [`ts`]: MPEG-2 transport stream segments.
//! - [`annexb`], [`sps`]: H.264 between Annex B and length-prefixed framing, and the picture
//!   size a parameter set declares (for recorders of bare H.264, such as WebRTC).
//!
//! Everything is a pure function of its input: the server reads fragments and serves bytes.

#![forbid(unsafe_code)]

pub mod annexb;
mod boxes;
pub mod dash;
pub mod demux;
pub mod fmp4;
pub mod hls;
pub mod mp4;
pub mod parts;
pub mod sps;
pub mod track;
pub mod ts;

pub use demux::{demux, Demuxed, Sample};
pub use track::{playable_tracks, Codec, PackageError, Track};

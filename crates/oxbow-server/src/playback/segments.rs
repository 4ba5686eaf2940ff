//! The bytes players fetch, built from stored fragments: a track's init segment for a stream
//! header, a fragment's media segment for a track. Built on request (a remux, never a
//! transcode) and kept in a small cache, so a live segment fetched by many players is built
//! once.

use std::sync::Arc;

use bytes::Bytes;
use oxbow_core::{ApiError, ErrorKind};
use oxbow_package::{demux, fmp4, ts, PackageError, Track};
use oxbow_store::{StreamHeader, StreamLog};

use crate::byte_cache::ByteCache;

/// The documented error for a stream that cannot be packaged.
pub fn package_error(e: PackageError) -> ApiError {
    let kind = match &e {
        PackageError::MissingCodecPrivateData(_) => ErrorKind::MissingCodecPrivateData,
        PackageError::InvalidCodecPrivateData(_) => ErrorKind::InvalidCodecPrivateData,
        PackageError::UnsupportedStreamMediaType(_) => ErrorKind::UnsupportedStreamMediaType,
        PackageError::InvalidMediaFrame(_) => ErrorKind::InvalidMediaFrame,
    };
    ApiError::new(kind, e.to_string())
}

/// The playable tracks a stream header declares (MPEG-TS takes no H.265).
pub fn tracks_of(header: &StreamHeader, allow_h265: bool) -> Result<Vec<Track>, ApiError> {
    let infos = demux::demux(&header.ebml, &header.segment_head, &[], 0, 0)
        .map_err(package_error)?
        .tracks;
    oxbow_package::playable_tracks(&infos, allow_h265).map_err(package_error)
}

/// The stream header a fragment was stored under.
pub fn header(log: &StreamLog, header_id: u32) -> Result<StreamHeader, ApiError> {
    log.header(header_id).ok_or_else(|| {
        ApiError::new(
            ErrorKind::ResourceNotFound,
            "The requested media is no longer available.",
        )
    })
}

/// One track of `tracks` by its number.
pub fn track(tracks: &[Track], number: u64) -> Result<&Track, ApiError> {
    tracks.iter().find(|t| t.number == number).ok_or_else(|| {
        ApiError::invalid_argument(format!("The stream has no track number {number}."))
    })
}

/// A track's init segment for one stream header.
pub fn init_segment(
    cache: &ByteCache,
    stream_key: &str,
    log: &StreamLog,
    header_id: u32,
    track_number: u64,
) -> Result<Bytes, ApiError> {
    let key = format!("{stream_key}/init/{header_id}/{track_number}");
    if let Some(b) = cache.get(&key) {
        return Ok(b);
    }
    let tracks = tracks_of(&header(log, header_id)?, true)?;
    let bytes = Bytes::from(fmp4::init_segment(&[track(&tracks, track_number)?]));
    cache.put(key, bytes.clone());
    Ok(bytes)
}

/// What a media segment holds: one track as fMP4, or every track as MPEG-TS.
#[derive(Debug, Clone, Copy)]
pub enum Packaging {
    Fmp4 { track: u64 },
    Ts,
}

/// One fragment as a media segment.
pub async fn media_segment(
    cache: &ByteCache,
    stream_key: &str,
    log: &Arc<StreamLog>,
    seq: u64,
    packaging: Packaging,
) -> Result<Bytes, ApiError> {
    let key = match packaging {
        Packaging::Fmp4 { track } => format!("{stream_key}/mp4/{seq}/{track}"),
        Packaging::Ts => format!("{stream_key}/ts/{seq}"),
    };
    if let Some(b) = cache.get(&key) {
        return Ok(b);
    }
    let allow_h265 = matches!(packaging, Packaging::Fmp4 { .. });
    let fragment = read_demuxed(log, seq, allow_h265).await?;
    // Writing copies the fragment once; off the async threads.
    let built = tokio::task::spawn_blocking(move || -> Result<Bytes, ApiError> {
        let Demuxed {
            tracks,
            demuxed,
            seq,
            ..
        } = &fragment;
        match packaging {
            Packaging::Fmp4 { track: number } => {
                let track = track(tracks, number)?;
                let samples = demux::samples(demuxed, track);
                let sequence = u32::try_from(seq % u64::from(u32::MAX)).unwrap_or(0) + 1;
                Ok(Bytes::from(fmp4::media_segment(
                    sequence,
                    &[(track, &samples)],
                )))
            }
            Packaging::Ts => {
                let samples: Vec<_> = tracks.iter().map(|t| demux::samples(demuxed, t)).collect();
                let parts: Vec<_> = tracks
                    .iter()
                    .zip(&samples)
                    .map(|(t, s)| (t, &s[..]))
                    .collect();
                Ok(Bytes::from(ts::segment(&parts)))
            }
        }
    })
    .await
    .map_err(|e| ApiError::server("package a media segment", e))??;
    cache.put(key, built.clone());
    Ok(built)
}

/// A stored fragment, demuxed, with the playable tracks of its stream header.
pub struct Demuxed {
    pub seq: u64,
    pub header_id: u32,
    pub producer_ts_ms: i64,
    pub tracks: Vec<Track>,
    pub demuxed: demux::Demuxed,
}

/// Reads fragment `seq` and demuxes it off the async threads.
pub async fn read_demuxed(
    log: &Arc<StreamLog>,
    seq: u64,
    allow_h265: bool,
) -> Result<Demuxed, ApiError> {
    let fragment = log.read(seq).await.map_err(|_| {
        ApiError::new(
            ErrorKind::ResourceNotFound,
            "The requested fragment is no longer available.",
        )
    })?;
    let head = header(log, fragment.header_id)?;
    tokio::task::spawn_blocking(move || {
        let tracks = tracks_of(&head, allow_h265)?;
        let demuxed = demux::demux(
            &head.ebml,
            &head.segment_head,
            &fragment.cluster,
            fragment.producer_ts_ms,
            fragment.duration_ms,
        )
        .map_err(package_error)?;
        Ok(Demuxed {
            seq: fragment.seq,
            header_id: fragment.header_id,
            producer_ts_ms: fragment.producer_ts_ms,
            tracks,
            demuxed,
        })
    })
    .await
    .map_err(|e| ApiError::server("demux a fragment", e))?
}

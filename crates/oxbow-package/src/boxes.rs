//! ISO BMFF box writing shared by fragmented (fMP4) and whole (MP4 clip) files: the box
//! primitives, the movie header and a track's boxes around its sample table.

use crate::track::{Codec, Track};

/// Writes a box: size, type, then whatever `body` writes.
pub(crate) fn boxed(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(kind);
    body(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// Writes a full box: a box whose body starts with a version and 24 bits of flags.
pub(crate) fn full(
    out: &mut Vec<u8>,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    boxed(out, kind, |out| {
        out.push(version);
        out.extend_from_slice(&flags.to_be_bytes()[1..]);
        body(out);
    });
}

pub(crate) fn u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// The MP4 track id of a track: its Matroska number (never 0 in a valid stream).
pub(crate) fn track_id(t: &Track) -> u32 {
    t.number.clamp(1, u64::from(u32::MAX)) as u32
}

/// `ftyp` with the brands both file kinds declare.
pub(crate) fn ftyp(out: &mut Vec<u8>, major: &[u8; 4], brands: &[&[u8; 4]]) {
    boxed(out, b"ftyp", |o| {
        o.extend_from_slice(major);
        u32(o, 0);
        for brand in brands {
            o.extend_from_slice(*brand);
        }
    });
}

/// `mvhd` (movie timescale: milliseconds).
pub(crate) fn mvhd(o: &mut Vec<u8>, tracks: &[&Track], duration_ms: u64) {
    full(o, b"mvhd", 0, 0, |o| {
        u32(o, 0); // creation
        u32(o, 0); // modification
        u32(o, 1000); // timescale
        u32(o, duration_ms.min(u64::from(u32::MAX)) as u32);
        u32(o, 0x0001_0000); // rate 1.0
        u16(o, 0x0100); // volume 1.0
        o.extend_from_slice(&[0; 10]);
        MATRIX.iter().for_each(|m| u32(o, *m));
        o.extend_from_slice(&[0; 24]);
        let next = tracks.iter().map(|t| track_id(t)).max().unwrap_or(0) + 1;
        u32(o, next);
    });
}

/// A track's timing in a whole file (all zero in a fragmented one).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TrackTimes {
    /// Movie timescale (ms).
    pub duration_ms: u64,
    /// The track's timescale.
    pub media_duration: u64,
    /// How long after the movie's start the track starts (an empty edit), ms.
    pub delay_ms: u64,
}

/// A `trak`: header, media header, handler, and `stbl` written by `stbl`.
pub(crate) fn trak(o: &mut Vec<u8>, t: &Track, times: TrackTimes, stbl: impl FnOnce(&mut Vec<u8>)) {
    boxed(o, b"trak", |o| {
        full(o, b"tkhd", 0, 0x3, |o| {
            u32(o, 0);
            u32(o, 0);
            u32(o, track_id(t));
            u32(o, 0);
            u32(
                o,
                (times.duration_ms + times.delay_ms).min(u64::from(u32::MAX)) as u32,
            );
            o.extend_from_slice(&[0; 8]);
            u16(o, 0); // layer
            u16(o, 0); // alternate group
            u16(o, if t.is_video() { 0 } else { 0x0100 });
            u16(o, 0);
            MATRIX.iter().for_each(|m| u32(o, *m));
            u32(o, t.width << 16);
            u32(o, t.height << 16);
        });
        if times.delay_ms > 0 {
            // An empty edit, then the whole media from its start.
            boxed(o, b"edts", |o| {
                full(o, b"elst", 0, 0, |o| {
                    u32(o, 2);
                    u32(o, times.delay_ms.min(u64::from(u32::MAX)) as u32);
                    u32(o, u32::MAX); // media time -1: empty
                    u32(o, 0x0001_0000);
                    u32(o, times.duration_ms.min(u64::from(u32::MAX)) as u32);
                    u32(o, 0);
                    u32(o, 0x0001_0000);
                });
            });
        }
        boxed(o, b"mdia", |o| {
            full(o, b"mdhd", 0, 0, |o| {
                u32(o, 0);
                u32(o, 0);
                u32(o, t.timescale);
                u32(o, times.media_duration.min(u64::from(u32::MAX)) as u32);
                u16(o, 0x55C4); // "und"
                u16(o, 0);
            });
            full(o, b"hdlr", 0, 0, |o| {
                u32(o, 0);
                o.extend_from_slice(if t.is_video() { b"vide" } else { b"soun" });
                o.extend_from_slice(&[0; 12]);
                o.extend_from_slice(if t.is_video() {
                    b"VideoHandler\0".as_slice()
                } else {
                    b"SoundHandler\0".as_slice()
                });
            });
            boxed(o, b"minf", |o| {
                if t.is_video() {
                    full(o, b"vmhd", 0, 1, |o| o.extend_from_slice(&[0; 8]));
                } else {
                    full(o, b"smhd", 0, 0, |o| o.extend_from_slice(&[0; 4]));
                }
                boxed(o, b"dinf", |o| {
                    full(o, b"dref", 0, 0, |o| {
                        u32(o, 1);
                        full(o, b"url ", 0, 1, |_| {});
                    });
                });
                boxed(o, b"stbl", |o| {
                    full(o, b"stsd", 0, 0, |o| {
                        u32(o, 1);
                        sample_entry(o, t);
                    });
                    stbl(o);
                });
            });
        });
    });
}

fn sample_entry(o: &mut Vec<u8>, t: &Track) {
    match t.codec {
        Codec::H264 | Codec::H265 => {
            let (kind, config) = match t.codec {
                Codec::H264 => (b"avc1", b"avcC"),
                _ => (b"hvc1", b"hvcC"),
            };
            boxed(o, kind, |o| {
                o.extend_from_slice(&[0; 6]);
                u16(o, 1); // data reference index
                o.extend_from_slice(&[0; 16]);
                u16(o, t.width.min(0xFFFF) as u16);
                u16(o, t.height.min(0xFFFF) as u16);
                u32(o, 0x0048_0000); // 72 dpi
                u32(o, 0x0048_0000);
                u32(o, 0);
                u16(o, 1); // frame count
                o.extend_from_slice(&[0; 32]); // compressor name
                u16(o, 0x0018); // depth
                u16(o, 0xFFFF); // pre-defined -1
                boxed(o, config, |o| o.extend_from_slice(&t.config));
            });
        }
        Codec::Aac => {
            boxed(o, b"mp4a", |o| {
                o.extend_from_slice(&[0; 6]);
                u16(o, 1);
                o.extend_from_slice(&[0; 8]);
                u16(o, t.channels);
                u16(o, 16); // sample size
                u32(o, 0);
                u32(o, (t.sample_rate.min(0xFFFF)) << 16);
                full(o, b"esds", 0, 0, |o| esds(o, &t.config));
            });
        }
    }
}

/// An MPEG-4 descriptor: tag, length (7 bits per byte), body.
fn descriptor(o: &mut Vec<u8>, tag: u8, body: &[u8]) {
    o.push(tag);
    let len = body.len() as u32;
    for shift in [21, 14, 7] {
        if len >> shift != 0 {
            o.push(0x80 | ((len >> shift) & 0x7F) as u8);
        }
    }
    o.push((len & 0x7F) as u8);
    o.extend_from_slice(body);
}

/// The ES descriptor of an AAC track around its AudioSpecificConfig.
fn esds(o: &mut Vec<u8>, asc: &[u8]) {
    let mut config = vec![0x40, 0x15, 0, 0, 0]; // MPEG-4 audio, audio stream, buffer size
    config.extend_from_slice(&[0; 8]); // max and average bit rate: unknown
    descriptor(&mut config, 0x05, asc);
    let mut es = vec![0, 0, 0]; // ES id, flags
    es.extend_from_slice(&{
        let mut d = Vec::new();
        descriptor(&mut d, 0x04, &config);
        d
    });
    descriptor(&mut es, 0x06, &[0x02]); // SL config: MP4
    descriptor(o, 0x03, &es);
}

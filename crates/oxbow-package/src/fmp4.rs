//! ISO BMFF fragments: an init segment (`ftyp` + `moov` with the decoder configuration and no
//! samples) and media segments (`moof` + `mdat`), the shape CMAF, HLS and DASH players take.
//! The decoder configuration is the stored CodecPrivate, copied: Matroska and MP4 carry the
//! same avcC/hvcC records and AudioSpecificConfig, and the same length-prefixed NAL units.

use crate::demux::Sample;
use crate::track::{Codec, Track};

/// Writes a box: size, type, then whatever `body` writes.
fn boxed(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(kind);
    body(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// Writes a full box: a box whose body starts with a version and 24 bits of flags.
fn full(
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

fn u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// The MP4 track id of a track: its Matroska number (never 0 in a valid stream).
fn track_id(t: &Track) -> u32 {
    t.number.clamp(1, u64::from(u32::MAX)) as u32
}

/// `ftyp` + `moov` for `tracks`, with no samples (they come in media segments).
pub fn init_segment(tracks: &[&Track]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    boxed(&mut out, b"ftyp", |o| {
        o.extend_from_slice(b"iso6");
        u32(o, 0);
        for brand in [b"iso6", b"cmfc", b"mp41"] {
            o.extend_from_slice(brand);
        }
    });
    boxed(&mut out, b"moov", |o| {
        full(o, b"mvhd", 0, 0, |o| {
            u32(o, 0); // creation
            u32(o, 0); // modification
            u32(o, 1000); // timescale
            u32(o, 0); // duration: unknown, fragmented
            u32(o, 0x0001_0000); // rate 1.0
            u16(o, 0x0100); // volume 1.0
            o.extend_from_slice(&[0; 10]);
            MATRIX.iter().for_each(|m| u32(o, *m));
            o.extend_from_slice(&[0; 24]);
            let next = tracks.iter().map(|t| track_id(t)).max().unwrap_or(0) + 1;
            u32(o, next);
        });
        for t in tracks {
            trak(o, t);
        }
        boxed(o, b"mvex", |o| {
            for t in tracks {
                full(o, b"trex", 0, 0, |o| {
                    u32(o, track_id(t));
                    u32(o, 1); // sample description index
                    u32(o, 0);
                    u32(o, 0);
                    u32(o, 0);
                });
            }
        });
    });
    out
}

fn trak(o: &mut Vec<u8>, t: &Track) {
    boxed(o, b"trak", |o| {
        full(o, b"tkhd", 0, 0x3, |o| {
            u32(o, 0);
            u32(o, 0);
            u32(o, track_id(t));
            u32(o, 0);
            u32(o, 0); // duration
            o.extend_from_slice(&[0; 8]);
            u16(o, 0); // layer
            u16(o, 0); // alternate group
            u16(o, if t.is_video() { 0 } else { 0x0100 });
            u16(o, 0);
            MATRIX.iter().for_each(|m| u32(o, *m));
            u32(o, t.width << 16);
            u32(o, t.height << 16);
        });
        boxed(o, b"mdia", |o| {
            full(o, b"mdhd", 0, 0, |o| {
                u32(o, 0);
                u32(o, 0);
                u32(o, t.timescale);
                u32(o, 0);
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
                    full(o, b"stts", 0, 0, |o| u32(o, 0));
                    full(o, b"stsc", 0, 0, |o| u32(o, 0));
                    full(o, b"stsz", 0, 0, |o| {
                        u32(o, 0);
                        u32(o, 0);
                    });
                    full(o, b"stco", 0, 0, |o| u32(o, 0));
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

/// Sample flags: a sync sample depends on nothing; any other is a non-sync sample that
/// depends on others.
fn sample_flags(keyframe: bool) -> u32 {
    if keyframe {
        0x0200_0000
    } else {
        0x0101_0000
    }
}

/// A media segment: one `moof` with a `traf` per track, then one `mdat` with their samples
/// in the same order. `sequence` numbers the segment within its presentation (1-based).
pub fn media_segment(sequence: u32, parts: &[(&Track, &[Sample])]) -> Vec<u8> {
    let payload: usize = parts
        .iter()
        .flat_map(|(_, s)| s.iter())
        .map(|s| s.data.len())
        .sum();
    let mut out =
        Vec::with_capacity(payload + 256 + 16 * parts.iter().map(|p| p.1.len()).sum::<usize>());
    let mut offsets = Vec::with_capacity(parts.len());
    boxed(&mut out, b"moof", |o| {
        full(o, b"mfhd", 0, 0, |o| u32(o, sequence));
        for (track, samples) in parts {
            boxed(o, b"traf", |o| {
                // default-base-is-moof: data offsets count from the moof's first byte.
                full(o, b"tfhd", 0, 0x02_0000, |o| u32(o, track_id(track)));
                full(o, b"tfdt", 1, 0, |o| {
                    u64(o, samples.first().map(|s| s.dts).unwrap_or(0));
                });
                // data offset, and per sample: duration, size, flags, composition offset.
                full(o, b"trun", 1, 0x00_0F01, |o| {
                    u32(o, samples.len() as u32);
                    offsets.push(o.len());
                    u32(o, 0);
                    for s in samples.iter() {
                        u32(o, s.duration);
                        u32(o, s.data.len() as u32);
                        u32(o, sample_flags(s.keyframe));
                        o.extend_from_slice(&s.cts.to_be_bytes());
                    }
                });
            });
        }
    });
    // Each run's data starts after the moof, the mdat header and the runs before it.
    let mut data_at = out.len() + 8;
    for ((_, samples), at) in parts.iter().zip(offsets) {
        out[at..at + 4].copy_from_slice(&(data_at as u32).to_be_bytes());
        data_at += samples.iter().map(|s| s.data.len()).sum::<usize>();
    }
    let mdat_len = 8 + payload;
    out.extend_from_slice(&(mdat_len as u32).to_be_bytes());
    out.extend_from_slice(b"mdat");
    for (_, samples) in parts {
        for s in samples.iter() {
            out.extend_from_slice(&s.data);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn video() -> Track {
        Track {
            number: 1,
            codec: Codec::H264,
            config: Bytes::from_static(&[1, 0x64, 0, 0x1f, 0xff, 0xe1, 0]),
            width: 640,
            height: 360,
            sample_rate: 0,
            channels: 1,
            timescale: 90_000,
        }
    }

    /// The boxes at one level: (type, body).
    fn boxes(mut b: &[u8]) -> Vec<([u8; 4], &[u8])> {
        let mut out = Vec::new();
        while b.len() >= 8 {
            let size = u32::from_be_bytes(b[..4].try_into().unwrap()) as usize;
            out.push((b[4..8].try_into().unwrap(), &b[8..size]));
            b = &b[size..];
        }
        assert!(b.is_empty(), "trailing bytes");
        out
    }

    #[test]
    fn init_segment_nests_the_decoder_configuration() {
        let t = video();
        let init = init_segment(&[&t]);
        let top = boxes(&init);
        assert_eq!(
            top.iter().map(|b| &b.0).collect::<Vec<_>>(),
            [b"ftyp", b"moov"]
        );
        let moov = boxes(top[1].1);
        assert_eq!(
            moov.iter().map(|b| &b.0).collect::<Vec<_>>(),
            [b"mvhd", b"trak", b"mvex"]
        );
        // The avcC body is the CodecPrivate, byte for byte.
        let at = init.windows(4).position(|w| w == b"avcC").unwrap();
        assert_eq!(&init[at + 4..at + 4 + t.config.len()], &t.config[..]);
    }

    #[test]
    fn media_segment_points_each_run_at_its_data() {
        let t = video();
        let samples = [
            Sample {
                dts: 900,
                cts: 0,
                duration: 3000,
                keyframe: true,
                data: Bytes::from_static(b"abc"),
            },
            Sample {
                dts: 3900,
                cts: 3000,
                duration: 3000,
                keyframe: false,
                data: Bytes::from_static(b"de"),
            },
        ];
        let seg = media_segment(7, &[(&t, &samples)]);
        let top = boxes(&seg);
        assert_eq!(
            top.iter().map(|b| &b.0).collect::<Vec<_>>(),
            [b"moof", b"mdat"]
        );
        assert_eq!(top[1].1, b"abcde");
        let moof_len = top[0].1.len() + 8;
        let trun = seg.windows(4).position(|w| w == b"trun").unwrap();
        // version/flags, count, then the data offset: just past the mdat header.
        let count = u32::from_be_bytes(seg[trun + 8..trun + 12].try_into().unwrap());
        let offset = u32::from_be_bytes(seg[trun + 12..trun + 16].try_into().unwrap());
        assert_eq!((count, offset as usize), (2, moof_len + 8));
        let tfdt = seg.windows(4).position(|w| w == b"tfdt").unwrap();
        assert_eq!(
            u64::from_be_bytes(seg[tfdt + 8..tfdt + 16].try_into().unwrap()),
            900
        );
    }
}

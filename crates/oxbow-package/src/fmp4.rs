//! ISO BMFF fragments: an init segment (`ftyp` + `moov` with the decoder configuration and no
//! samples) and media segments (`moof` + `mdat`), the shape CMAF, HLS and DASH players take.
//! The decoder configuration is the stored CodecPrivate, copied: Matroska and MP4 carry the
//! same avcC/hvcC records and AudioSpecificConfig, and the same length-prefixed NAL units.

use crate::boxes::{boxed, ftyp, full, mvhd, track_id, trak, u32, u64, TrackTimes};
use crate::demux::Sample;
use crate::track::Track;

/// `ftyp` + `moov` for `tracks`, with no samples (they come in media segments).
pub fn init_segment(tracks: &[&Track]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    ftyp(&mut out, b"iso6", &[b"iso6", b"cmfc", b"mp41"]);
    boxed(&mut out, b"moov", |o| {
        mvhd(o, tracks, 0);
        for t in tracks {
            // Samples come in fragments: every table is empty.
            trak(o, t, TrackTimes::default(), |o| {
                full(o, b"stts", 0, 0, |o| u32(o, 0));
                full(o, b"stsc", 0, 0, |o| u32(o, 0));
                full(o, b"stsz", 0, 0, |o| {
                    u32(o, 0);
                    u32(o, 0);
                });
                full(o, b"stco", 0, 0, |o| u32(o, 0));
            });
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
        crate::track::test_video()
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

//! A whole (non-fragmented) MP4 file, as GetClip returns: `ftyp`, `moov` with complete sample
//! tables, then one `mdat`. Each stored fragment becomes one chunk per track, so the tables
//! stay small however many frames the clip holds.

use crate::boxes::{boxed, ftyp, full, mvhd, trak, u32, u64, TrackTimes};
use crate::demux::Sample;
use crate::track::Track;

/// One track's samples, fragment by fragment (a chunk each).
pub struct ClipTrack<'a> {
    pub track: &'a Track,
    pub chunks: Vec<Vec<Sample>>,
}

/// Run-length pairs of a sequence: (count, value).
fn runs<T: PartialEq + Copy>(values: impl Iterator<Item = T>) -> Vec<(u32, T)> {
    let mut out: Vec<(u32, T)> = Vec::new();
    for v in values {
        match out.last_mut() {
            Some((n, last)) if *last == v => *n += 1,
            _ => out.push((1, v)),
        }
    }
    out
}

/// Makes each chunk's last sample last until the next chunk starts, so the decode times the
/// tables imply match the stored ones across fragments (a gap of more than 10 s is left as
/// the sample's own duration: a jump, not a frozen frame).
fn close_gaps(chunks: &mut [Vec<Sample>], timescale: u32) {
    for i in 1..chunks.len() {
        let Some(next) = chunks[i].first().map(|s| s.dts) else {
            continue;
        };
        if let Some(last) = chunks[i - 1].last_mut() {
            let gap = next.saturating_sub(last.dts);
            if gap > 0 && gap <= u64::from(timescale) * 10 {
                last.duration = gap.min(u64::from(u32::MAX)) as u32;
            }
        }
    }
}

/// The clip: tracks in order, chunks interleaved fragment by fragment.
pub fn clip(mut tracks: Vec<ClipTrack<'_>>) -> Vec<u8> {
    for t in &mut tracks {
        close_gaps(&mut t.chunks, t.track.timescale);
    }
    let start = |t: &ClipTrack| {
        t.chunks
            .iter()
            .flatten()
            .next()
            .map(|s| s.dts as f64 / f64::from(t.track.timescale))
    };
    let first = tracks
        .iter()
        .filter_map(start)
        .fold(f64::INFINITY, f64::min);
    let media_duration = |t: &ClipTrack| -> u64 {
        t.chunks
            .iter()
            .flatten()
            .map(|s| u64::from(s.duration))
            .sum()
    };
    let to_ms = |ticks: u64, t: &ClipTrack| ticks * 1000 / u64::from(t.track.timescale.max(1));
    let times: Vec<TrackTimes> = tracks
        .iter()
        .map(|t| TrackTimes {
            duration_ms: to_ms(media_duration(t), t),
            media_duration: media_duration(t),
            delay_ms: start(t)
                .map(|s| ((s - first) * 1000.0).round() as u64)
                .unwrap_or(0),
        })
        .collect();
    let movie_ms = times
        .iter()
        .map(|t| t.duration_ms + t.delay_ms)
        .max()
        .unwrap_or(0);
    let refs: Vec<&Track> = tracks.iter().map(|t| t.track).collect();
    // Chunk order in the mdat: fragment by fragment, track by track.
    let rounds = tracks.iter().map(|t| t.chunks.len()).max().unwrap_or(0);
    let chunk_len = |t: &ClipTrack, i: usize| -> u64 {
        t.chunks
            .get(i)
            .map(|c| c.iter().map(|s| s.data.len() as u64).sum())
            .unwrap_or(0)
    };
    let write_moov = |offsets: &[Vec<u64>]| {
        let mut out = Vec::new();
        ftyp(&mut out, b"isom", &[b"isom", b"iso2", b"avc1", b"mp41"]);
        boxed(&mut out, b"moov", |o| {
            mvhd(o, &refs, movie_ms);
            for (i, t) in tracks.iter().enumerate() {
                trak(o, t.track, times[i], |o| sample_tables(o, t, &offsets[i]));
            }
        });
        out
    };
    // The tables hold absolute offsets, which depend on the moov's own size: write it once
    // with placeholders (co64 entries have a fixed size), then with the real offsets.
    let placeholder: Vec<Vec<u64>> = tracks.iter().map(|t| vec![0; t.chunks.len()]).collect();
    let head_len = write_moov(&placeholder).len() as u64;
    let payload: u64 = tracks
        .iter()
        .map(|t| (0..t.chunks.len()).map(|i| chunk_len(t, i)).sum::<u64>())
        .sum();
    let large = payload + 8 > u64::from(u32::MAX);
    let mut at = head_len + if large { 16 } else { 8 };
    let mut offsets: Vec<Vec<u64>> = tracks.iter().map(|_| Vec::new()).collect();
    for i in 0..rounds {
        for (k, t) in tracks.iter().enumerate() {
            if i < t.chunks.len() {
                offsets[k].push(at);
                at += chunk_len(t, i);
            }
        }
    }
    let mut out = write_moov(&offsets);
    out.reserve(payload as usize + 16);
    if large {
        u32(&mut out, 1);
        out.extend_from_slice(b"mdat");
        u64(&mut out, payload + 16);
    } else {
        u32(&mut out, (payload + 8) as u32);
        out.extend_from_slice(b"mdat");
    }
    for i in 0..rounds {
        for t in &tracks {
            for s in t.chunks.get(i).into_iter().flatten() {
                out.extend_from_slice(&s.data);
            }
        }
    }
    out
}

/// stts, ctts (when any sample has a composition offset), stss (video), stsz, stsc, co64.
fn sample_tables(o: &mut Vec<u8>, t: &ClipTrack, offsets: &[u64]) {
    let samples = || t.chunks.iter().flatten();
    let durations = runs(samples().map(|s| s.duration));
    full(o, b"stts", 0, 0, |o| {
        u32(o, durations.len() as u32);
        for (n, d) in &durations {
            u32(o, *n);
            u32(o, *d);
        }
    });
    if samples().any(|s| s.cts != 0) {
        let offsets = runs(samples().map(|s| s.cts));
        full(o, b"ctts", 1, 0, |o| {
            u32(o, offsets.len() as u32);
            for (n, c) in &offsets {
                u32(o, *n);
                o.extend_from_slice(&c.to_be_bytes());
            }
        });
    }
    if t.track.is_video() {
        let sync: Vec<u32> = samples()
            .enumerate()
            .filter(|(_, s)| s.keyframe)
            .map(|(i, _)| i as u32 + 1)
            .collect();
        full(o, b"stss", 0, 0, |o| {
            u32(o, sync.len() as u32);
            sync.iter().for_each(|n| u32(o, *n));
        });
    }
    full(o, b"stsz", 0, 0, |o| {
        u32(o, 0);
        u32(o, samples().count() as u32);
        samples().for_each(|s| u32(o, s.data.len() as u32));
    });
    // Chunks numbered from 1; a new entry wherever the samples per chunk change.
    let per_chunk = runs(t.chunks.iter().map(|c| c.len() as u32));
    full(o, b"stsc", 0, 0, |o| {
        u32(o, per_chunk.len() as u32);
        let mut first = 1;
        for (n, count) in &per_chunk {
            u32(o, first);
            u32(o, *count);
            u32(o, 1);
            first += n;
        }
    });
    full(o, b"co64", 0, 0, |o| {
        u32(o, offsets.len() as u32);
        offsets.iter().for_each(|at| u64(o, *at));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    use bytes::Bytes;

    #[test]
    fn runs_compress_repeats() {
        assert_eq!(
            runs([3, 3, 3, 5, 3].into_iter()),
            vec![(3, 3), (1, 5), (1, 3)]
        );
    }

    #[test]
    fn chunk_offsets_point_at_each_fragments_bytes() {
        let t = crate::track::test_video();
        let s = |dts, data: &'static [u8]| Sample {
            dts,
            cts: 0,
            duration: 3600,
            keyframe: true,
            data: Bytes::from_static(data),
        };
        let file = clip(vec![ClipTrack {
            track: &t,
            chunks: vec![vec![s(0, b"AAAA"), s(3600, b"BB")], vec![s(9000, b"CCC")]],
        }]);
        let co64 = file.windows(4).position(|w| w == b"co64").unwrap();
        let entry = |i: usize| {
            let at = co64 + 12 + 8 * i;
            u64::from_be_bytes(file[at..at + 8].try_into().unwrap()) as usize
        };
        assert_eq!(&file[entry(0)..entry(0) + 6], b"AAAABB");
        assert_eq!(&file[entry(1)..entry(1) + 3], b"CCC");
        // The first fragment's last sample lasts until the second starts.
        let stts = file.windows(4).position(|w| w == b"stts").unwrap();
        let word = |i: usize| {
            let at = stts + 8 + 4 * i;
            u32::from_be_bytes(file[at..at + 4].try_into().unwrap())
        };
        let table: Vec<u32> = (0..7).map(word).collect();
        assert_eq!(table, [3, 1, 3600, 1, 5400, 1, 3600]);
    }
}

//! Partial segments (LL-HLS): a fragment's samples cut into parts by time, so a player can
//! fetch the first fifth of a second of a fragment while the camera is still sending the rest.
//!
//! Part `k` of a fragment holds the samples whose decode time falls in
//! `[start + k·target, start + (k+1)·target)`. The rule needs nothing but the samples and the
//! fragment's start, so the parts listed while a fragment arrives are the same parts served
//! from it once it is stored.

use std::ops::Range;

use crate::demux::Sample;

/// One part of a fragment's track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub index: u32,
    /// Which samples.
    pub samples: Range<usize>,
    /// In the track's timescale.
    pub duration: u64,
    /// Starts with a sync sample (a key frame; every audio sample is one).
    pub independent: bool,
}

/// The parts of `samples` (one track of one fragment, in decode order) that are complete:
/// every part when the fragment is, else those a later sample has closed or whose last
/// sample ends the window.
pub fn parts(samples: &[Sample], start: u64, target: u64, fragment_complete: bool) -> Vec<Part> {
    let target = target.max(1);
    let index = |s: &Sample| (s.dts.saturating_sub(start) / target).min(u64::from(u32::MAX)) as u32;
    let mut out: Vec<Part> = Vec::new();
    let mut at = 0;
    while at < samples.len() {
        let k = index(&samples[at]);
        let end = samples[at..]
            .iter()
            .position(|s| index(s) != k)
            .map(|n| at + n)
            .unwrap_or(samples.len());
        // The last run of an arriving fragment is complete once its last sample reaches the
        // window's end (its duration is the one before it, until the next sample says).
        let last = &samples[end - 1];
        let window_end = start + (u64::from(k) + 1) * target;
        if end == samples.len()
            && !fragment_complete
            && last.dts + u64::from(last.duration) < window_end
        {
            break;
        }
        out.push(Part {
            index: k,
            samples: at..end,
            duration: samples[at..end].iter().map(|s| u64::from(s.duration)).sum(),
            independent: samples[at].keyframe,
        });
        at = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn at(dts: u64, keyframe: bool) -> Sample {
        Sample {
            dts,
            cts: 0,
            duration: 40,
            keyframe,
            data: Bytes::new(),
        }
    }

    #[test]
    fn samples_fall_into_parts_by_time_and_open_parts_wait() {
        // 25 fps in ms, parts of 200 ms, from t = 1000.
        let samples: Vec<Sample> = (0..12).map(|i| at(1000 + 40 * i, i == 0)).collect();
        let done = parts(&samples, 1000, 200, true);
        assert_eq!(
            done.iter()
                .map(|p| (p.index, p.samples.clone(), p.duration, p.independent))
                .collect::<Vec<_>>(),
            [
                (0, 0..5, 200, true),
                (1, 5..10, 200, false),
                (2, 10..12, 80, false)
            ]
        );
        // While the fragment arrives, a part is complete once its window is filled: the fifth
        // frame ends the first window; two frames of the third leave it open.
        assert_eq!(parts(&samples, 1000, 200, false).len(), 2);
        assert_eq!(parts(&samples[..4], 1000, 200, false), vec![]);
        assert_eq!(parts(&samples[..5], 1000, 200, false).len(), 1);
    }
}

//! H.264 between its two framings: MP4 and Matroska store access units as length-prefixed NAL
//! units with the parameter sets in the avcC record; MPEG-TS and decoders take Annex B (start
//! codes, parameter sets in band).

/// SPS and PPS of an avcC record, each with a start code.
pub fn parameter_sets(avcc: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 5;
    let Some(&n) = avcc.get(at) else {
        return out;
    };
    at += 1;
    let take = |count: usize, at: &mut usize, out: &mut Vec<u8>| {
        for _ in 0..count {
            let Some(len) = avcc.get(*at..*at + 2) else {
                return;
            };
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            let Some(nal) = avcc.get(*at + 2..*at + 2 + len) else {
                return;
            };
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(nal);
            *at += 2 + len;
        }
    };
    take(usize::from(n & 0x1F), &mut at, &mut out);
    if let Some(&pps) = avcc.get(at) {
        at += 1;
        take(usize::from(pps), &mut at, &mut out);
    }
    out
}

/// A length-prefixed H.264 access unit as Annex B, with an access unit delimiter and, for a
/// key frame, the parameter sets.
pub fn annex_b(
    sample: &[u8],
    length_size: usize,
    parameter_sets: &[u8],
    keyframe: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(sample.len() + 64);
    out.extend_from_slice(&[0, 0, 0, 1, 0x09, 0xF0]);
    if keyframe {
        out.extend_from_slice(parameter_sets);
    }
    let mut at = 0;
    while at + length_size <= sample.len() {
        let len = sample[at..at + length_size]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        at += length_size;
        let end = (at + len).min(sample.len());
        let nal = &sample[at..end];
        // The stream's own delimiters and parameter sets are replaced by ours.
        if !matches!(nal.first().map(|b| b & 0x1F), Some(9)) {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(nal);
        }
        at = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_units_become_annex_b_with_parameter_sets_on_key_frames() {
        // avcC with one SPS (67 01) and one PPS (68 02).
        let avcc = [
            1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 2, 0x67, 1, 1, 0, 2, 0x68, 2,
        ];
        let sets = parameter_sets(&avcc);
        assert_eq!(sets, [0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2]);
        let au = [0, 0, 0, 2, 0x65, 9];
        let key = annex_b(&au, 4, &sets, true);
        assert_eq!(&key[..6], &[0, 0, 0, 1, 9, 0xF0]);
        assert_eq!(&key[6..18], &sets[..]);
        assert_eq!(&key[18..], &[0, 0, 0, 1, 0x65, 9]);
        assert_eq!(annex_b(&au, 4, &sets, false).len(), 6 + 6);
    }
}

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

/// The NAL units of an Annex B byte stream (3- or 4-byte start codes), without start codes.
pub fn nal_units(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i] == 0 && stream[i + 1] == 0 && stream[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (n, &start) in starts.iter().enumerate() {
        let mut end = starts.get(n + 1).map_or(stream.len(), |next| next - 3);
        // A 4-byte start code's leading zero (and any trailing zeros) belong to no unit.
        while end > start && stream[end - 1] == 0 {
            end -= 1;
        }
        if end > start {
            out.push(&stream[start..end]);
        }
    }
    out
}

/// NAL units as one access unit with 4-byte big-endian lengths (Matroska's and MP4's form).
pub fn length_prefixed<'a>(nals: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for nal in nals {
        out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        out.extend_from_slice(nal);
    }
    out
}

/// The avcC record (AVCDecoderConfigurationRecord) for one SPS and one PPS, with 4-byte
/// NAL lengths; `None` if the SPS is too short to carry a profile and level.
pub fn avc_config(sps: &[u8], pps: &[u8]) -> Option<Vec<u8>> {
    let profile = sps.get(1..4)?;
    let mut out = vec![1, profile[0], profile[1], profile[2], 0xFF, 0xE1];
    out.extend_from_slice(&u16::try_from(sps.len()).ok()?.to_be_bytes());
    out.extend_from_slice(sps);
    out.push(1);
    out.extend_from_slice(&u16::try_from(pps.len()).ok()?.to_be_bytes());
    out.extend_from_slice(pps);
    Some(out)
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

    #[test]
    fn annex_b_back_to_length_prefixed_units_and_avcc() {
        let stream = [
            0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x1E, 0, 0, 1, 0x68, 0xCE, 0, 0, 0, 1, 0x65, 0, 0, 3, 1,
        ];
        let nals = nal_units(&stream);
        assert_eq!(
            nals,
            vec![
                &[0x67, 0x42, 0xC0, 0x1E][..],
                &[0x68, 0xCE],
                &[0x65, 0, 0, 3, 1]
            ]
        );
        assert_eq!(
            length_prefixed(nals.iter().copied().skip(2)),
            [0, 0, 0, 5, 0x65, 0, 0, 3, 1]
        );
        let avcc = avc_config(nals[0], nals[1]).unwrap();
        assert_eq!(
            avcc,
            [1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 4, 0x67, 0x42, 0xC0, 0x1E, 1, 0, 2, 0x68, 0xCE]
        );
        // And back: the parameter sets of the record are the ones it was made of.
        assert_eq!(
            parameter_sets(&avcc),
            [0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x1E, 0, 0, 0, 1, 0x68, 0xCE]
        );
        assert!(nal_units(&[0, 0, 0]).is_empty());
        assert_eq!(avc_config(&[0x67], &[0x68]), None);
    }
}

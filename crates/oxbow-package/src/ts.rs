//! MPEG-2 transport stream segments (HLS's MPEG_TS container): PAT and PMT, then one PES per
//! frame, H.264 as Annex B (an access unit delimiter, SPS and PPS before each key frame) and
//! AAC with ADTS headers, interleaved by decode time, the program clock on the video PID.

use crate::annexb::{annex_b, parameter_sets};
use crate::demux::Sample;
use crate::track::{aac_object_type, Codec, Track};

const PACKET: usize = 188;
const PMT_PID: u16 = 0x1000;
const VIDEO_PID: u16 = 0x100;
const AUDIO_PID: u16 = 0x101;
/// 33-bit timestamps in 90 kHz.
const TS_MASK: u64 = (1 << 33) - 1;

/// MPEG-2's CRC-32 (polynomial 0x04C11DB7, not reflected, no final xor).
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for b in data {
        crc ^= u32::from(*b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Packets of one PID, with its continuity counter. Each segment starts its counters at 0
/// and says so: its first packet per PID carries the discontinuity indicator, so a player
/// that reads segments back to back expects the jump.
struct Pid {
    pid: u16,
    counter: u8,
    started: bool,
}

impl Pid {
    fn new(pid: u16) -> Self {
        Self {
            pid,
            counter: 0,
            started: false,
        }
    }

    /// Splits `payload` into packets; the first says a unit starts, and carries `pcr` and the
    /// random-access flag when given. The last is padded with adaptation-field stuffing.
    fn write(&mut self, out: &mut Vec<u8>, payload: &[u8], pcr: Option<u64>, random_access: bool) {
        let mut rest = payload;
        let mut first = true;
        while first || !rest.is_empty() {
            let mut adaptation: Vec<u8> = Vec::new();
            let discontinuity = !self.started;
            self.started = true;
            if discontinuity || (first && (pcr.is_some() || random_access)) {
                let mut flags = if discontinuity { 0x80u8 } else { 0 };
                if first && random_access {
                    flags |= 0x40;
                }
                adaptation.push(0); // length, set below
                if let Some(pcr) = pcr.filter(|_| first) {
                    flags |= 0x10;
                    adaptation.push(flags);
                    let base = pcr & TS_MASK;
                    adaptation.extend_from_slice(&[
                        (base >> 25) as u8,
                        (base >> 17) as u8,
                        (base >> 9) as u8,
                        (base >> 1) as u8,
                        ((base & 1) << 7) as u8 | 0x7E,
                        0,
                    ]);
                } else {
                    adaptation.push(flags);
                }
            }
            let room = PACKET - 4 - adaptation.len();
            let take = rest.len().min(room);
            if take < room {
                // Stuffing: grow (or create) the adaptation field to fill the packet.
                let missing = room - take;
                if adaptation.is_empty() {
                    if missing == 1 {
                        adaptation.push(0);
                    } else {
                        adaptation.push(0);
                        adaptation.push(0);
                        adaptation.extend(std::iter::repeat_n(0xFF, missing - 2));
                    }
                } else {
                    adaptation.extend(std::iter::repeat_n(0xFF, missing));
                }
            }
            if !adaptation.is_empty() {
                adaptation[0] = (adaptation.len() - 1) as u8;
            }
            let control = if adaptation.is_empty() { 0x10 } else { 0x30 };
            out.push(0x47);
            out.push(((first as u8) << 6) | ((self.pid >> 8) as u8 & 0x1F));
            out.push(self.pid as u8);
            out.push(control | (self.counter & 0x0F));
            self.counter = self.counter.wrapping_add(1);
            out.extend_from_slice(&adaptation);
            out.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            first = false;
        }
    }
}

/// A PSI section (PAT or PMT) with its pointer field and CRC.
fn section(table_id: u8, id: u16, body: &[u8]) -> Vec<u8> {
    let mut s = vec![table_id];
    let len = 5 + body.len() + 4;
    s.push(0xB0 | ((len >> 8) as u8 & 0x0F));
    s.push(len as u8);
    s.extend_from_slice(&id.to_be_bytes());
    s.extend_from_slice(&[0xC1, 0, 0]); // version 0, current; section 0 of 0
    s.extend_from_slice(body);
    let crc = crc32(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    let mut out = vec![0]; // pointer field
    out.extend(s);
    out
}

/// A PES timestamp field: 4-bit prefix, 33 bits with marker bits.
fn timestamp(prefix: u8, t: u64) -> [u8; 5] {
    let t = t & TS_MASK;
    [
        (prefix << 4) | (((t >> 30) as u8 & 0x07) << 1) | 1,
        (t >> 22) as u8,
        (((t >> 15) as u8 & 0x7F) << 1) | 1,
        (t >> 7) as u8,
        (((t as u8) & 0x7F) << 1) | 1,
    ]
}

fn pes(stream_id: u8, pts: u64, dts: Option<u64>, data: &[u8], bounded: bool) -> Vec<u8> {
    let header_len = if dts.is_some() { 10 } else { 5 };
    let mut out = vec![0, 0, 1, stream_id];
    let len = 3 + header_len + data.len();
    let field = if bounded && len <= 0xFFFF {
        len as u16
    } else {
        0
    };
    out.extend_from_slice(&field.to_be_bytes());
    out.push(0x80); // marker bits '10'
    out.push(if dts.is_some() { 0xC0 } else { 0x80 });
    out.push(header_len as u8);
    match dts {
        Some(d) => {
            out.extend_from_slice(&timestamp(0x3, pts));
            out.extend_from_slice(&timestamp(0x1, d));
        }
        None => out.extend_from_slice(&timestamp(0x2, pts)),
    }
    out.extend_from_slice(data);
    out
}

/// An ADTS header for one AAC frame of `len` bytes.
fn adts(asc: &[u8], len: usize) -> [u8; 7] {
    let profile = aac_object_type(asc).unwrap_or(2).clamp(1, 4) - 1;
    let freq =
        ((asc.first().copied().unwrap_or(0) & 0x07) << 1) | (asc.get(1).copied().unwrap_or(0) >> 7);
    let channels = (asc.get(1).copied().unwrap_or(0) >> 3) & 0x0F;
    let full = len + 7;
    [
        0xFF,
        0xF1,
        (profile << 6) | (freq << 2) | (channels >> 2),
        ((channels & 3) << 6) | ((full >> 11) as u8 & 0x03),
        (full >> 3) as u8,
        ((full as u8 & 0x07) << 5) | 0x1F,
        0xFC,
    ]
}

/// One segment holding every track of a fragment. `parts` are (track, samples) as for fMP4;
/// H.265 is not carried (KVS's MPEG_TS takes H.264 and AAC).
pub fn segment(parts: &[(&Track, &[Sample])]) -> Vec<u8> {
    let video = parts.iter().find(|(t, _)| t.codec == Codec::H264);
    let audio = parts.iter().find(|(t, _)| t.codec == Codec::Aac);
    let mut out = Vec::new();
    let mut pat = Pid::new(0);
    let mut pmt = Pid::new(PMT_PID);
    pat.write(
        &mut out,
        &section(0x00, 1, &[0, 1, 0xE0 | (PMT_PID >> 8) as u8, PMT_PID as u8]),
        None,
        false,
    );
    let pcr_pid = if video.is_some() {
        VIDEO_PID
    } else {
        AUDIO_PID
    };
    let mut body = vec![0xE0 | (pcr_pid >> 8) as u8, pcr_pid as u8, 0xF0, 0];
    // Elementary streams: type, PID, no descriptors.
    let streams = [
        (video.is_some(), 0x1B, VIDEO_PID),
        (audio.is_some(), 0x0F, AUDIO_PID),
    ];
    for (_, stream_type, pid) in streams.into_iter().filter(|s| s.0) {
        body.extend_from_slice(&[stream_type, 0xE0 | (pid >> 8) as u8, pid as u8, 0xF0, 0]);
    }
    pmt.write(&mut out, &section(0x02, 1, &body), None, false);
    // Every frame with its decode time in 90 kHz, interleaved by it.
    let to_90k = |t: &Track, ticks: i128| (ticks * 90_000 / i128::from(t.timescale.max(1))) as i64;
    let mut frames: Vec<(i64, bool, usize, usize)> = Vec::new();
    for (k, (t, samples)) in parts.iter().enumerate() {
        if t.codec == Codec::H265 {
            continue;
        }
        for (i, s) in samples.iter().enumerate() {
            frames.push((to_90k(t, i128::from(s.dts)), t.is_video(), k, i));
        }
    }
    frames.sort_by_key(|(dts, video, _, _)| (*dts, !*video));
    let mut v = Pid::new(VIDEO_PID);
    let mut a = Pid::new(AUDIO_PID);
    let sets = video
        .map(|(t, _)| parameter_sets(&t.config))
        .unwrap_or_default();
    let length_size = video
        .and_then(|(t, _)| t.config.get(4))
        .map(|b| usize::from(b & 0x03) + 1)
        .unwrap_or(4);
    for (dts, is_video, k, i) in frames {
        let (track, samples) = parts[k];
        let s = &samples[i];
        let dts = dts as u64;
        let pts = (dts as i64 + to_90k(track, i128::from(s.cts))) as u64;
        if is_video {
            let data = annex_b(&s.data, length_size, &sets, s.keyframe);
            // The clock runs a little ahead of the decoder: 100 ms.
            let pcr = dts.saturating_sub(9000);
            v.write(
                &mut out,
                &pes(0xE0, pts, Some(dts), &data, false),
                Some(pcr),
                s.keyframe,
            );
        } else {
            let mut data = adts(&track.config, s.data.len()).to_vec();
            data.extend_from_slice(&s.data);
            let pcr = (pcr_pid == AUDIO_PID).then(|| dts.saturating_sub(9000));
            a.write(&mut out, &pes(0xC0, pts, None, &data, true), pcr, true);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_is_mpeg2s() {
        // The PAT of a single program 1 on PID 0x1000, as muxers write it.
        let pat = section(0x00, 1, &[0, 1, 0xF0, 0x00]);
        assert_eq!(
            &pat[pat.len() - 4..],
            &crc32(&pat[1..pat.len() - 4]).to_be_bytes()
        );
        assert_eq!(crc32(b"123456789"), 0x0376_E6E7);
    }

    #[test]
    fn every_packet_is_188_bytes_and_counters_run() {
        let mut out = Vec::new();
        let mut pid = Pid::new(0x100);
        for len in [0usize, 1, 170, 183, 184, 185, 1000] {
            pid.write(&mut out, &vec![7u8; len], Some(90_000), true);
            pid.write(&mut out, &vec![7u8; len], None, false);
        }
        assert_eq!(out.len() % PACKET, 0);
        let counters: Vec<u8> = out.chunks(PACKET).map(|p| p[3] & 0x0F).collect();
        for (i, c) in counters.iter().enumerate() {
            assert_eq!(*c as usize, i % 16);
        }
        assert!(out.chunks(PACKET).all(|p| p[0] == 0x47));
    }
}

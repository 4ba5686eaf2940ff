//! A camera's WebRTC media as the Matroska stream a PutMedia producer would send: frames go
//! in (H.264 access units in Annex B, Opus packets, each with its RTP time and the wall-clock
//! instant it arrived), MKV bytes come out, ready for the same ingest rules and store path as
//! PutMedia. Pure: no clock, socket or store inside, so every rule is unit-tested.
//!
//! - A fragment (Cluster) starts at each H.264 key frame. Browsers send key frames only when
//!   asked, so [`Recorder::wants_keyframe`] says when to ask (a PLI) to keep fragments short.
//! - The SPS and PPS of a key frame become the codec private data (avcC) of a new Segment
//!   whenever they change, as the producer SDK starts a new Segment on a new CPD.
//! - Loss (a frame that is not contiguous with the one before) drops video until the next key
//!   frame: the gap becomes a fragment discontinuity, never frames that decode corrupt.
//! - Audio (Opus, track 2) is recorded once it flows; a Segment declares it only when it has
//!   arrived in the last second, so a camera without audio records video alone.
//! - Timecodes are absolute milliseconds: each track's RTP clock is anchored to the wall
//!   clock at its first frame, and a Cluster never starts before the previous one.

use bytes::Bytes;
use oxbow_mkv::ids::*;
use oxbow_mkv::write;
use oxbow_package::{annexb, sps};

pub const VIDEO_TRACK: u64 = 1;
pub const AUDIO_TRACK: u64 = 2;
/// Audio that arrived this recently makes the next Segment declare an audio track.
const AUDIO_FRESH_MS: i64 = 1_000;
/// A key frame is asked for again if none came this long after the last request.
const KEYFRAME_RETRY_MS: i64 = 500;

#[derive(Debug, Clone, Copy)]
pub struct RecorderLimits {
    /// How long a fragment runs before a key frame is asked for.
    pub keyframe_interval_ms: i64,
    /// Frames later than this after their Cluster's start are dropped (until the next key
    /// frame): a fragment never outgrows the PutMedia limit.
    pub max_fragment_ms: i64,
}

impl Default for RecorderLimits {
    fn default() -> Self {
        Self {
            keyframe_interval_ms: 2_000,
            max_fragment_ms: 9_000,
        }
    }
}

/// One RTP clock tied to the wall clock at its first frame.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    ticks: u64,
    wall_ms: i64,
    rate: u64,
}

impl Anchor {
    fn ms(&self, ticks: u64) -> i64 {
        let delta = ticks as i128 - self.ticks as i128;
        self.wall_ms + (delta * 1000 / i128::from(self.rate.max(1))) as i64
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SegmentHead {
    avcc: Vec<u8>,
    size: Option<(u32, u32)>,
    audio: bool,
}

/// What was recorded, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub fragments: u64,
    pub video_frames: u64,
    pub audio_frames: u64,
    pub dropped_video: u64,
    pub segments: u64,
}

pub struct Recorder {
    limits: RecorderLimits,
    video: Option<Anchor>,
    audio: Option<Anchor>,
    head: Option<SegmentHead>,
    /// The open Cluster's timecode (ms).
    cluster: Option<i64>,
    last_cluster: Option<i64>,
    /// Video is dropped until a key frame.
    waiting_key: bool,
    last_key_wall_ms: Option<i64>,
    last_request_ms: Option<i64>,
    audio_seen_ms: Option<i64>,
    /// Bytes since the last [`Recorder::take`]: (starts a Segment, bytes).
    out: Vec<(bool, Vec<u8>)>,
    counts: Counts,
}

/// Recorded bytes. A chunk that starts a Segment begins a new MKV document: it needs an
/// ingest of its own (PutMedia takes one Segment per body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub new_segment: bool,
    pub bytes: Bytes,
}

impl Recorder {
    pub fn new(limits: RecorderLimits) -> Self {
        Self {
            limits,
            video: None,
            audio: None,
            head: None,
            cluster: None,
            last_cluster: None,
            waiting_key: true,
            last_key_wall_ms: None,
            last_request_ms: None,
            audio_seen_ms: None,
            out: Vec::new(),
            counts: Counts::default(),
        }
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The bytes so far went nowhere (a new ingest takes over): start again with a Segment
    /// head at the next key frame.
    pub fn restart(&mut self) {
        self.gap();
        self.head = None;
    }

    /// Media was lost outside the recorder (a full queue): wait for a key frame.
    pub fn gap(&mut self) {
        self.waiting_key = true;
        self.cluster = None;
    }

    /// Whether to ask the camera for a key frame now; the caller asks, then calls
    /// [`Recorder::keyframe_requested`].
    pub fn wants_keyframe(&self, now_ms: i64) -> bool {
        let recently_asked = self
            .last_request_ms
            .is_some_and(|t| now_ms - t < KEYFRAME_RETRY_MS);
        if recently_asked {
            return false;
        }
        self.waiting_key
            || self
                .last_key_wall_ms
                .is_none_or(|t| now_ms - t >= self.limits.keyframe_interval_ms)
    }

    pub fn keyframe_requested(&mut self, now_ms: i64) {
        self.last_request_ms = Some(now_ms);
    }

    /// One H.264 access unit (Annex B) with its RTP time (`ticks` at `rate` Hz).
    pub fn video(
        &mut self,
        arrival_ms: i64,
        ticks: u64,
        rate: u32,
        annex_b: &[u8],
        contiguous: bool,
    ) {
        let anchor = *self.video.get_or_insert(Anchor {
            ticks,
            wall_ms: arrival_ms,
            rate: u64::from(rate),
        });
        if !contiguous {
            self.gap();
        }
        let nals = annexb::nal_units(annex_b);
        let key = nals.iter().any(|n| n[0] & 0x1F == 5);
        let mut ts = anchor.ms(ticks);
        if let Some(last) = self.last_cluster.filter(|last| key && ts <= *last) {
            // The sender's RTP clock went back (it restarted its timestamps): a fragment
            // that starts there would start before the last one, so the clock is anchored
            // again at this key frame, after what is recorded.
            let wall_ms = arrival_ms.max(last + 1);
            self.video = Some(Anchor {
                ticks,
                wall_ms,
                ..anchor
            });
            ts = wall_ms;
        }
        if key {
            self.start_fragment(arrival_ms, ts, &nals);
        }
        let Some(cluster) = self.cluster.filter(|_| !self.waiting_key) else {
            self.counts.dropped_video += 1;
            return;
        };
        let relative = ts - cluster;
        if !(0..=self.limits.max_fragment_ms).contains(&relative) {
            self.counts.dropped_video += 1;
            self.gap();
            return;
        }
        let payload = annexb::length_prefixed(
            nals.iter()
                .copied()
                .filter(|n| !matches!(n[0] & 0x1F, 7..=9)),
        );
        if payload.is_empty() {
            return;
        }
        self.write(write::simple_block(
            VIDEO_TRACK,
            relative as i16,
            key,
            &payload,
        ));
        self.counts.video_frames += 1;
    }

    /// One Opus packet with its RTP time.
    pub fn audio(&mut self, arrival_ms: i64, ticks: u64, rate: u32, opus: &[u8]) {
        let anchor = *self.audio.get_or_insert(Anchor {
            ticks,
            wall_ms: arrival_ms,
            rate: u64::from(rate),
        });
        self.audio_seen_ms = Some(arrival_ms);
        let declared = self.head.as_ref().is_some_and(|h| h.audio);
        let Some(cluster) = self.cluster.filter(|_| declared && !self.waiting_key) else {
            return;
        };
        let relative = anchor.ms(ticks) - cluster;
        if !(0..=self.limits.max_fragment_ms).contains(&relative) || opus.is_empty() {
            return;
        }
        self.write(write::simple_block(
            AUDIO_TRACK,
            relative as i16,
            true,
            opus,
        ));
        self.counts.audio_frames += 1;
    }

    /// The MKV bytes produced since the last call.
    pub fn take(&mut self) -> Vec<Chunk> {
        self.out
            .drain(..)
            .map(|(new_segment, bytes)| Chunk {
                new_segment,
                bytes: Bytes::from(bytes),
            })
            .collect()
    }

    fn write(&mut self, bytes: Vec<u8>) {
        match self.out.last_mut() {
            Some((_, last)) => last.extend(bytes),
            None => self.out.push((false, bytes)),
        }
    }

    fn start_fragment(&mut self, arrival_ms: i64, ts: i64, nals: &[&[u8]]) {
        let sps = nals.iter().find(|n| n[0] & 0x1F == 7);
        let pps = nals.iter().find(|n| n[0] & 0x1F == 8);
        let audio = self
            .audio_seen_ms
            .is_some_and(|t| arrival_ms - t <= AUDIO_FRESH_MS);
        let head = match (sps, pps) {
            (Some(sps), Some(pps)) => annexb::avc_config(sps, pps).map(|avcc| SegmentHead {
                avcc,
                size: sps::dimensions(sps),
                audio,
            }),
            // A key frame without parameter sets continues the current ones.
            _ => self.head.clone().map(|h| SegmentHead { audio, ..h }),
        };
        let Some(head) = head else {
            // Nothing to decode it with yet: ask again.
            self.waiting_key = true;
            self.cluster = None;
            return;
        };
        // Cluster timecodes never go back, even across a reconnect with a skewed clock.
        let ts = match self.last_cluster {
            Some(last) if ts <= last => last + 1,
            _ => ts,
        };
        if self.head.as_ref() != Some(&head) {
            self.out.push((true, segment_head(&head)));
            self.head = Some(head);
            self.counts.segments += 1;
        }
        let mut cluster = write::unknown_size(CLUSTER);
        cluster.extend(write::uint(TIMECODE, ts as u64));
        self.write(cluster);
        self.cluster = Some(ts);
        self.last_cluster = Some(ts);
        self.waiting_key = false;
        self.last_key_wall_ms = Some(arrival_ms);
        self.counts.fragments += 1;
    }
}

/// EBML header, Segment of unknown size, Info (1 ms ticks) and Tracks.
fn segment_head(head: &SegmentHead) -> Vec<u8> {
    let mut out = write::ebml_header();
    out.extend(write::unknown_size(SEGMENT));
    out.extend(write::info(1_000_000, "WebRTC storage session"));
    let mut video = write::uint(TRACK_NUMBER, VIDEO_TRACK);
    video.extend(write::uint(0x73C5, VIDEO_TRACK)); // TrackUID
    video.extend(write::uint(TRACK_TYPE, 1));
    video.extend(write::string(CODEC_ID, "V_MPEG4/ISO/AVC"));
    video.extend(write::element(CODEC_PRIVATE, &head.avcc));
    if let Some((w, h)) = head.size {
        let mut v = write::uint(PIXEL_WIDTH, u64::from(w));
        v.extend(write::uint(PIXEL_HEIGHT, u64::from(h)));
        video.extend(write::element(VIDEO, &v));
    }
    let mut tracks = write::element(TRACK_ENTRY, &video);
    if head.audio {
        let mut audio = write::uint(TRACK_NUMBER, AUDIO_TRACK);
        audio.extend(write::uint(0x73C5, AUDIO_TRACK));
        audio.extend(write::uint(TRACK_TYPE, 2));
        audio.extend(write::string(CODEC_ID, "A_OPUS"));
        audio.extend(write::element(CODEC_PRIVATE, &opus_head()));
        let mut a = write::element(SAMPLING_FREQUENCY, &48_000f64.to_be_bytes());
        a.extend(write::uint(CHANNELS, 2));
        audio.extend(write::element(AUDIO, &a));
        tracks.extend(write::element(TRACK_ENTRY, &audio));
    }
    out.extend(write::element(TRACKS, &tracks));
    out
}

/// The Opus identification header Matroska keeps as CodecPrivate (RFC 7845 §5.1): WebRTC
/// Opus is 48 kHz stereo, mapping family 0; 312 samples of pre-skip is libopus's encoder delay.
fn opus_head() -> Vec<u8> {
    let mut h = b"OpusHead".to_vec();
    h.push(1); // version
    h.push(2); // channels
    h.extend_from_slice(&312u16.to_le_bytes());
    h.extend_from_slice(&48_000u32.to_le_bytes());
    h.extend_from_slice(&0i16.to_le_bytes()); // output gain
    h.push(0); // channel mapping family
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxbow_mkv::{block_data, Event, MkvParser};

    const SPS: [u8; 25] = [
        0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
        0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0x99, 0x60,
    ];
    const PPS: [u8; 4] = [0x68, 0xeb, 0xe3, 0xcb];

    fn key_frame() -> Vec<u8> {
        let mut au = vec![0, 0, 0, 1];
        au.extend_from_slice(&SPS);
        au.extend_from_slice(&[0, 0, 0, 1]);
        au.extend_from_slice(&PPS);
        au.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x88, 0x84]);
        au
    }

    const DELTA: [u8; 7] = [0, 0, 0, 1, 0x41, 0x9a, 0x02];

    /// What the recorder wrote, as the PutMedia parser reads it: (tracks per header,
    /// cluster timecodes, (track, relative, payload length) per frame).
    /// (tracks per Segment head, Cluster timecodes, (track, relative timecode, bytes) per frame)
    type Parsed = (Vec<Vec<(u64, String)>>, Vec<u64>, Vec<(u64, i16, usize)>);

    /// Each Segment is read by a parser of its own, as each goes to an ingest of its own.
    fn parse(chunks: Vec<Chunk>) -> Parsed {
        let mut segments: Vec<Vec<u8>> = Vec::new();
        for c in chunks {
            match segments.last_mut() {
                Some(last) if !c.new_segment => last.extend_from_slice(&c.bytes),
                _ => segments.push(c.bytes.to_vec()),
            }
        }
        let (mut heads, mut clusters, mut frames) = (Vec::new(), Vec::new(), Vec::new());
        for bytes in segments {
            parse_one(&bytes, &mut heads, &mut clusters, &mut frames);
        }
        (heads, clusters, frames)
    }

    fn parse_one(
        bytes: &[u8],
        heads: &mut Vec<Vec<(u64, String)>>,
        clusters: &mut Vec<u64>,
        frames: &mut Vec<(u64, i16, usize)>,
    ) {
        let mut p = MkvParser::new();
        p.push(bytes);
        while let Some(e) = p.next_event().expect("valid MKV") {
            match e {
                Event::Header(h) => heads.push(
                    h.track_list
                        .iter()
                        .map(|t| (t.number, t.codec_id.clone()))
                        .collect(),
                ),
                Event::ClusterStart { timecode } => clusters.push(timecode),
                Event::Frame(f) => {
                    let b = block_data(&f.element).unwrap();
                    frames.push((b.track, b.relative_timecode, b.payload.len()));
                }
                _ => {}
            }
        }
    }

    #[test]
    fn key_frames_start_fragments_with_the_parameter_sets_as_codec_private() {
        let mut r = Recorder::new(RecorderLimits::default());
        // Video before any key frame is dropped (nothing could decode it).
        r.video(1_000, 90_000, 90_000, &DELTA, true);
        r.video(1_040, 93_600, 90_000, &key_frame(), true);
        r.video(1_080, 97_200, 90_000, &DELTA, true);
        r.video(3_040, 273_600, 90_000, &key_frame(), true);
        let chunks = r.take();
        assert!(chunks[0].new_segment);
        assert!(chunks[1..].iter().all(|c| !c.new_segment));
        let (heads, clusters, frames) = parse(chunks);
        assert_eq!(heads, vec![vec![(1, "V_MPEG4/ISO/AVC".to_string())]]);
        // Anchored at the first frame: 1000 ms at tick 90000, so tick 93600 is 1040 ms.
        assert_eq!(clusters, vec![1_040, 3_040]);
        // Key frames are stored without SPS/PPS (4-byte length + 3 bytes), deltas likewise.
        assert_eq!(frames, vec![(1, 0, 7), (1, 40, 7), (1, 0, 7)]);
        let c = r.counts();
        assert_eq!(
            (c.fragments, c.video_frames, c.dropped_video, c.segments),
            (2, 3, 1, 1)
        );
    }

    #[test]
    fn the_segment_head_is_what_players_need() {
        let mut r = Recorder::new(RecorderLimits::default());
        r.audio(990, 48_000, 48_000, &[0xFC, 1, 2]);
        r.video(1_000, 0, 90_000, &key_frame(), true);
        r.audio(1_010, 48_960, 48_000, &[0xFC, 3, 4]);
        let mut p = MkvParser::new();
        p.push(&r.take()[0].bytes);
        let Some(Event::Header(h)) = p.next_event().unwrap() else {
            panic!("a header first");
        };
        let video = &h.track_list[0];
        assert_eq!(video.pixels, Some((320, 240)));
        assert_eq!(
            video.codec_private.as_deref(),
            annexb::avc_config(&SPS, &PPS).as_deref()
        );
        let audio = &h.track_list[1];
        assert_eq!(audio.codec_id, "A_OPUS");
        assert_eq!(audio.audio, Some((48_000, 2)));
        assert_eq!(&audio.codec_private.as_deref().unwrap()[..8], b"OpusHead");
    }

    #[test]
    fn audio_joins_at_the_next_key_frame_and_leaves_when_it_stops() {
        let mut r = Recorder::new(RecorderLimits::default());
        r.video(1_000, 0, 90_000, &key_frame(), true);
        // Audio starts mid-fragment: not declared yet, so not recorded yet.
        r.audio(1_100, 0, 48_000, &[1]);
        r.audio(2_990, 90_720, 48_000, &[1]);
        r.video(3_000, 180_000, 90_000, &key_frame(), true);
        r.audio(3_020, 96_960, 48_000, &[2]);
        // No audio for more than a second before this key frame: video alone again.
        r.video(5_000, 360_000, 90_000, &key_frame(), true);
        r.audio(5_000, 0, 48_000, &[3]);
        let (heads, clusters, frames) = parse(r.take());
        assert_eq!(heads.len(), 3);
        assert_eq!(heads[1].len(), 2);
        assert_eq!(heads[2].len(), 1);
        assert_eq!(clusters, vec![1_000, 3_000, 5_000]);
        // The audio anchor is 1100 ms at tick 0: tick 96960 is 3120 ms, 120 into its cluster.
        assert_eq!(frames[2], (2, 120, 1));
        assert_eq!(frames.iter().filter(|f| f.0 == 2).count(), 1);
    }

    #[test]
    fn loss_drops_video_until_the_next_key_frame_and_asks_for_one() {
        let mut r = Recorder::new(RecorderLimits::default());
        assert!(r.wants_keyframe(0));
        r.keyframe_requested(0);
        assert!(!r.wants_keyframe(100));
        r.video(1_000, 0, 90_000, &key_frame(), true);
        assert!(!r.wants_keyframe(1_000));
        r.video(1_040, 3_600, 90_000, &DELTA, false);
        assert!(r.wants_keyframe(1_040));
        r.video(1_080, 7_200, 90_000, &DELTA, true);
        r.video(1_500, 45_000, 90_000, &key_frame(), true);
        let (_, clusters, frames) = parse(r.take());
        assert_eq!(clusters, vec![1_000, 1_500]);
        assert_eq!(frames.len(), 2);
        assert_eq!(r.counts().dropped_video, 2);
        // Fragments are kept short: a key frame is due again after the interval.
        assert!(!r.wants_keyframe(3_000));
        assert!(r.wants_keyframe(3_500));
    }

    #[test]
    fn a_restart_writes_the_segment_head_again_and_never_goes_back_in_time() {
        let mut r = Recorder::new(RecorderLimits::default());
        r.video(10_000, 900_000, 90_000, &key_frame(), true);
        r.video(10_040, 903_600, 90_000, &key_frame(), true);
        let (heads, _, _) = parse(r.take());
        assert_eq!(heads.len(), 1, "same parameter sets: same Segment");
        r.restart();
        // A new ingest must see a header first; and an RTP clock that went back (a sender
        // restarting its timestamps) never makes a Cluster start before the previous one.
        // The clock is anchored again at the key frame, which is recorded with what follows.
        r.video(10_080, 0, 90_000, &key_frame(), true);
        r.video(10_120, 3_600, 90_000, &DELTA, true);
        let (heads, clusters, frames) = parse(r.take());
        assert_eq!(heads.len(), 1);
        assert_eq!(clusters, vec![10_080]);
        let times: Vec<_> = frames.iter().map(|f| (f.0, f.1)).collect();
        assert_eq!(times, vec![(VIDEO_TRACK, 0), (VIDEO_TRACK, 40)]);
        assert_eq!(r.counts().dropped_video, 0);
    }

    #[test]
    fn frames_too_far_from_their_key_frame_end_the_fragment() {
        let limits = RecorderLimits {
            keyframe_interval_ms: 2_000,
            max_fragment_ms: 1_000,
        };
        let mut r = Recorder::new(limits);
        r.video(0, 0, 90_000, &key_frame(), true);
        r.video(2_000, 180_000, 90_000, &DELTA, true);
        r.video(2_040, 183_600, 90_000, &DELTA, true);
        let (_, _, frames) = parse(r.take());
        assert_eq!(frames.len(), 1);
        assert!(r.wants_keyframe(2_040));
    }
}

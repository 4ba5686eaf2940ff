//! MPEG-DASH manifests as text: one Period, an AdaptationSet per track, a SegmentTemplate
//! with an explicit SegmentTimeline (every fragment's start and duration, so gaps and
//! overlaps stay where they are).
//!
//! Live manifests put the availability start at the epoch and segment times on the producer's
//! clock: a segment's time *is* its wall-clock time, so a player knows when it exists and how
//! far behind live it plays without any other hint.

use std::fmt::Write;

use crate::hls::iso8601_ms;
use crate::track::Track;

/// One segment of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Start, epoch milliseconds on the producer's clock (media time, as in the segments).
    pub start_ms: i64,
    pub duration_ms: i64,
    /// Written as `kvs:fn` when set.
    pub fragment_number: Option<String>,
    /// Written as `kvs:ts` (epoch ms) when set.
    pub timestamp_ms: Option<i64>,
}

/// A manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest<'a> {
    /// Dynamic (LIVE, LIVE_REPLAY): re-fetched as it grows; else static (ON_DEMAND).
    pub dynamic: bool,
    pub tracks: Vec<&'a Track>,
    pub segments: Vec<Segment>,
    /// The session number of the first segment (`startNumber`).
    pub start_number: u64,
    /// Query strings the segment and init URLs end with: everything but the track and number.
    pub query: String,
    /// The stream header the init segments are built from.
    pub init_sequence: u32,
    pub now_ms: i64,
    /// Peak bits per second, as a hint.
    pub bandwidth: u64,
}

/// A time in the track's timescale.
fn ticks(ms: i64, track: &Track) -> i64 {
    ms.saturating_mul(i64::from(track.timescale)) / 1000
}

fn duration(ms: i64) -> String {
    format!("PT{}.{:03}S", ms / 1000, ms.rem_euclid(1000))
}

impl Manifest<'_> {
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(1024 + self.segments.len() * 80 * self.tracks.len());
        let total_ms: i64 = self.segments.iter().map(|s| s.duration_ms).sum();
        let longest = self
            .segments
            .iter()
            .map(|s| s.duration_ms)
            .max()
            .unwrap_or(1000);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = write!(
            out,
            "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" xmlns:kvs=\"urn:oxbow:kinesisvideo:dash\" \
             profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" minBufferTime=\"{}\"",
            duration(longest.max(1000))
        );
        if self.dynamic {
            let _ = write!(
                out,
                " type=\"dynamic\" availabilityStartTime=\"1970-01-01T00:00:00Z\" publishTime=\"{}\" \
                 minimumUpdatePeriod=\"PT1S\" timeShiftBufferDepth=\"{}\" suggestedPresentationDelay=\"{}\"",
                iso8601_ms(self.now_ms),
                duration(total_ms.max(longest * 3)),
                duration(longest * 2)
            );
        } else {
            let _ = write!(
                out,
                " type=\"static\" mediaPresentationDuration=\"{}\"",
                duration(total_ms)
            );
        }
        out.push_str(">\n  <Period id=\"0\" start=\"PT0S\">\n");
        for track in &self.tracks {
            let (kind, mime) = if track.is_video() {
                ("video", "video/mp4")
            } else {
                ("audio", "audio/mp4")
            };
            let _ = writeln!(
                out,
                "    <AdaptationSet contentType=\"{kind}\" mimeType=\"{mime}\" segmentAlignment=\"true\" startWithSAP=\"1\">"
            );
            let _ = write!(
                out,
                "      <Representation id=\"{}\" codecs=\"{}\" bandwidth=\"{}\"",
                track.number,
                track.codec_string(),
                self.bandwidth.max(1)
            );
            if track.is_video() && track.width > 0 {
                let _ = write!(
                    out,
                    " width=\"{}\" height=\"{}\"",
                    track.width, track.height
                );
            } else if !track.is_video() {
                let _ = write!(out, " audioSamplingRate=\"{}\"", track.sample_rate);
            }
            out.push_str(">\n");
            if !track.is_video() {
                let _ = writeln!(
                    out,
                    "        <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"{}\"/>",
                    track.channels
                );
            }
            // Static manifests start the presentation at the first segment.
            let offset = match (self.dynamic, self.segments.first()) {
                (false, Some(first)) => ticks(first.start_ms, track),
                _ => 0,
            };
            let _ = writeln!(
                out,
                "        <SegmentTemplate timescale=\"{}\" presentationTimeOffset=\"{offset}\" startNumber=\"{}\" \
                 initialization=\"getMP4InitFragment.mp4?TrackNumber={}&amp;SequenceNumber={}&amp;{}\" \
                 media=\"getMP4MediaFragment.mp4?TrackNumber={}&amp;SequenceNumber=$Number$&amp;{}\">",
                track.timescale,
                self.start_number,
                track.number,
                self.init_sequence,
                self.query,
                track.number,
                self.query
            );
            out.push_str("          <SegmentTimeline>\n");
            for s in &self.segments {
                let _ = write!(
                    out,
                    "            <S t=\"{}\" d=\"{}\"",
                    ticks(s.start_ms, track),
                    ticks(s.start_ms + s.duration_ms, track) - ticks(s.start_ms, track)
                );
                if let Some(n) = &s.fragment_number {
                    let _ = write!(out, " kvs:fn=\"{n}\"");
                }
                if let Some(ts) = s.timestamp_ms {
                    let _ = write!(out, " kvs:ts=\"{ts}\"");
                }
                out.push_str("/>\n");
            }
            out.push_str("          </SegmentTimeline>\n        </SegmentTemplate>\n      </Representation>\n    </AdaptationSet>\n");
        }
        out.push_str("  </Period>\n</MPD>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_static_manifest_times_segments_from_the_first() {
        let video = crate::track::test_video();
        let seg = |start_ms, n: &str| Segment {
            start_ms,
            duration_ms: 2000,
            fragment_number: Some(n.into()),
            timestamp_ms: None,
        };
        let m = Manifest {
            dynamic: false,
            tracks: vec![&video],
            segments: vec![seg(10_000, "91"), seg(12_000, "92")],
            start_number: 0,
            query: "SessionToken=T".into(),
            init_sequence: 1,
            now_ms: 0,
            bandwidth: 500_000,
        };
        let xml = m.render();
        assert!(
            xml.contains("type=\"static\" mediaPresentationDuration=\"PT4.000S\""),
            "{xml}"
        );
        assert!(xml.contains("presentationTimeOffset=\"900000\""), "{xml}");
        assert!(
            xml.contains("<S t=\"900000\" d=\"180000\" kvs:fn=\"91\"/>"),
            "{xml}"
        );
        assert!(
            xml.contains("<S t=\"1080000\" d=\"180000\" kvs:fn=\"92\"/>"),
            "{xml}"
        );
        assert!(xml.contains("media=\"getMP4MediaFragment.mp4?TrackNumber=1&amp;SequenceNumber=$Number$&amp;SessionToken=T\""), "{xml}");
    }
}

//! HLS playlists as text: the master playlist (a variant per video track, an audio rendition)
//! and media playlists (segments with their init segment, discontinuities, dates).

use std::fmt::Write;

/// One segment of a media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub uri: String,
    pub duration_s: f64,
    /// The init segment this one is decoded with (fMP4); a change writes a new EXT-X-MAP.
    pub map_uri: Option<String>,
    /// An EXT-X-DISCONTINUITY comes before it.
    pub discontinuity: bool,
    /// Written as EXT-X-PROGRAM-DATE-TIME (epoch ms) when set.
    pub date_ms: Option<i64>,
    /// Its partial segments (low latency), listed before it.
    pub parts: Vec<PartEntry>,
}

/// A partial segment (EXT-X-PART).
#[derive(Debug, Clone, PartialEq)]
pub struct PartEntry {
    pub uri: String,
    pub duration_s: f64,
    pub independent: bool,
}

/// What makes a live playlist low-latency (LL-HLS): blocking reloads, part durations, the
/// parts of the segment in progress and a hint for the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct LowLatency {
    pub part_target_s: f64,
    /// The segment in progress: its init segment, and its parts so far.
    pub pending_map_uri: Option<String>,
    pub pending: Vec<PartEntry>,
    /// The part a player may ask for before it exists (the server holds the request).
    pub preload_hint: Option<String>,
}

/// A media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist {
    /// The number of the first segment.
    pub media_sequence: u64,
    /// Discontinuities that came before the first segment (and left the playlist).
    pub discontinuity_sequence: u64,
    pub segments: Vec<Segment>,
    /// Complete: no segment will be added (ON_DEMAND, or a LIVE_REPLAY range that ended).
    pub ended: bool,
    /// A VOD playlist (ON_DEMAND).
    pub vod: bool,
    pub low_latency: Option<LowLatency>,
}

fn part_line(out: &mut String, p: &PartEntry) {
    let _ = write!(
        out,
        "#EXT-X-PART:DURATION={:.3},URI=\"{}\"",
        p.duration_s, p.uri
    );
    if p.independent {
        out.push_str(",INDEPENDENT=YES");
    }
    out.push('\n');
}

impl MediaPlaylist {
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(256 + self.segments.len() * 200);
        let target = self
            .segments
            .iter()
            .map(|s| s.duration_s.round() as u64)
            .max()
            .unwrap_or(1)
            .max(1);
        let _ = writeln!(out, "#EXTM3U\n#EXT-X-VERSION:7");
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
        if let Some(ll) = &self.low_latency {
            let _ = writeln!(
                out,
                "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3}",
                ll.part_target_s * 3.0
            );
            let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={:.3}", ll.part_target_s);
        }
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence);
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(
                out,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                self.discontinuity_sequence
            );
        }
        if self.vod {
            out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n");
        }
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
        let mut map: Option<&str> = None;
        for s in &self.segments {
            if s.discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if let Some(m) = s.map_uri.as_deref() {
                if map != Some(m) {
                    let _ = writeln!(out, "#EXT-X-MAP:URI=\"{m}\"");
                    map = Some(m);
                }
            }
            if let Some(ms) = s.date_ms {
                let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", iso8601_ms(ms));
            }
            for p in &s.parts {
                part_line(&mut out, p);
            }
            let _ = writeln!(out, "#EXTINF:{:.3},\n{}", s.duration_s, s.uri);
        }
        if let Some(ll) = &self.low_latency {
            if let Some(m) = ll.pending_map_uri.as_deref() {
                if map != Some(m) && !ll.pending.is_empty() {
                    out.push_str("#EXT-X-DISCONTINUITY\n");
                    let _ = writeln!(out, "#EXT-X-MAP:URI=\"{m}\"");
                }
            }
            for p in &ll.pending {
                part_line(&mut out, p);
            }
            if let Some(hint) = &ll.preload_hint {
                let _ = writeln!(out, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{hint}\"");
            }
        }
        if self.ended {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        out
    }
}

/// A variant stream of the master playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub uri: String,
    /// Peak bits per second.
    pub bandwidth: u64,
    /// RFC 6381 codec strings of every track it plays (the audio rendition's included).
    pub codecs: Vec<String>,
    pub resolution: Option<(u32, u32)>,
    pub frame_rate: Option<f64>,
    /// The audio rendition that goes with it (its group's playlist).
    pub audio_uri: Option<String>,
}

impl Variant {
    pub fn render_master(&self) -> String {
        let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
        if let Some(audio) = &self.audio_uri {
            let _ = writeln!(
                out,
                "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",DEFAULT=YES,AUTOSELECT=YES,URI=\"{audio}\""
            );
        }
        let _ = write!(
            out,
            "#EXT-X-STREAM-INF:BANDWIDTH={},CODECS=\"{}\"",
            self.bandwidth.max(1),
            self.codecs.join(",")
        );
        if let Some((w, h)) = self.resolution.filter(|(w, h)| *w > 0 && *h > 0) {
            let _ = write!(out, ",RESOLUTION={w}x{h}");
        }
        if let Some(fps) = self.frame_rate.filter(|f| f.is_finite() && *f > 0.0) {
            let _ = write!(out, ",FRAME-RATE={fps:.3}");
        }
        if self.audio_uri.is_some() {
            out.push_str(",AUDIO=\"audio\"");
        }
        let _ = writeln!(out, "\n{}", self.uri);
        out
    }
}

/// `2023-05-17T13:48:35.994Z` for epoch milliseconds.
pub fn iso8601_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_iso_8601_utc_with_milliseconds() {
        assert_eq!(iso8601_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_ms(1_684_331_315_994), "2023-05-17T13:48:35.994Z");
        assert_eq!(iso8601_ms(951_782_400_001), "2000-02-29T00:00:00.001Z");
    }

    #[test]
    fn media_playlist_writes_maps_discontinuities_and_the_end() {
        let seg = |n: u32, map: &str, disc: bool| Segment {
            uri: format!("f{n}.mp4"),
            duration_s: 2.0,
            map_uri: Some(map.into()),
            discontinuity: disc,
            date_ms: None,
            parts: Vec::new(),
        };
        let p = MediaPlaylist {
            media_sequence: 4,
            discontinuity_sequence: 0,
            segments: vec![seg(1, "i1", false), seg(2, "i1", false), seg(3, "i2", true)],
            ended: true,
            vod: true,
            low_latency: None,
        };
        assert_eq!(
            p.render(),
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:4\n\
             #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-MAP:URI=\"i1\"\n#EXTINF:2.000,\nf1.mp4\n#EXTINF:2.000,\nf2.mp4\n\
             #EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"i2\"\n#EXTINF:2.000,\nf3.mp4\n#EXT-X-ENDLIST\n"
        );
    }

    #[test]
    fn low_latency_playlists_list_parts_and_hint_the_next() {
        let part = |uri: &str, independent| PartEntry {
            uri: uri.into(),
            duration_s: 0.2,
            independent,
        };
        let p = MediaPlaylist {
            media_sequence: 7,
            discontinuity_sequence: 0,
            segments: vec![Segment {
                uri: "s7".into(),
                duration_s: 0.4,
                map_uri: Some("i".into()),
                discontinuity: false,
                date_ms: None,
                parts: vec![part("s7p0", true), part("s7p1", false)],
            }],
            ended: false,
            vod: false,
            low_latency: Some(LowLatency {
                part_target_s: 0.2,
                pending_map_uri: Some("i".into()),
                pending: vec![part("s8p0", true)],
                preload_hint: Some("s8p1".into()),
            }),
        };
        assert_eq!(
            p.render(),
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.600\n\
             #EXT-X-PART-INF:PART-TARGET=0.200\n#EXT-X-MEDIA-SEQUENCE:7\n\
             #EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"i\"\n\
             #EXT-X-PART:DURATION=0.200,URI=\"s7p0\",INDEPENDENT=YES\n\
             #EXT-X-PART:DURATION=0.200,URI=\"s7p1\"\n#EXTINF:0.400,\ns7\n\
             #EXT-X-PART:DURATION=0.200,URI=\"s8p0\",INDEPENDENT=YES\n\
             #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"s8p1\"\n"
        );
    }

    #[test]
    fn master_playlist_names_the_audio_rendition() {
        let v = Variant {
            uri: "v.m3u8".into(),
            bandwidth: 1_000_000,
            codecs: vec!["avc1.64001f".into(), "mp4a.40.2".into()],
            resolution: Some((640, 360)),
            frame_rate: Some(25.0),
            audio_uri: Some("a.m3u8".into()),
        };
        assert_eq!(
            v.render_master(),
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",DEFAULT=YES,AUTOSELECT=YES,URI=\"a.m3u8\"\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1000000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=25.000,AUDIO=\"audio\"\nv.m3u8\n"
        );
    }
}

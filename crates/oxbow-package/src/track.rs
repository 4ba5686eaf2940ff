//! A stored track, described for packaging: which codec, its decoder configuration, its
//! timescale. KVS's playback APIs accept H.264, H.265 and AAC; anything else, or a track
//! without a usable CodecPrivate, is one of the documented errors.

use bytes::Bytes;
use oxbow_mkv::TrackInfo;

/// Why a stream cannot be packaged, named as KVS names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
    /// `MissingCodecPrivateData`: a track has no CodecPrivate.
    #[error("No codec private data was found in track {0} of the media.")]
    MissingCodecPrivateData(u64),
    /// `InvalidCodecPrivateData`: the CodecPrivate cannot be read as its codec's
    /// configuration.
    #[error("The codec private data in track {0} of the media is not valid.")]
    InvalidCodecPrivateData(u64),
    /// `UnsupportedStreamMediaType`: codecs the playback APIs do not take.
    #[error("{0}")]
    UnsupportedStreamMediaType(String),
    /// `InvalidMediaFrame` (GetClip's name): a stored frame could not be read.
    #[error("A media frame could not be read: {0}")]
    InvalidMediaFrame(String),
}

/// The codecs packaging supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
    Aac,
}

impl Codec {
    /// The Matroska codec ids KVS documents (and the `V_MPEG/ISO/AVC` spelling its reference
    /// uses in one place).
    pub fn from_codec_id(id: &str) -> Option<Self> {
        match id {
            "V_MPEG4/ISO/AVC" | "V_MPEG/ISO/AVC" => Some(Self::H264),
            "V_MPEGH/ISO/HEVC" | "V_MPEG/ISO/HEVC" => Some(Self::H265),
            "A_AAC" => Some(Self::Aac),
            _ if id.starts_with("A_AAC/") => Some(Self::Aac),
            _ => None,
        }
    }

    pub fn is_video(self) -> bool {
        matches!(self, Self::H264 | Self::H265)
    }
}

/// A track ready to be packaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// The Matroska track number (KVS's TrackNumber in playback URLs).
    pub number: u64,
    pub codec: Codec,
    /// avcC / hvcC record, or the AAC AudioSpecificConfig.
    pub config: Bytes,
    /// Video: width and height in pixels (0 when the producer did not say).
    pub width: u32,
    pub height: u32,
    /// Audio: sample rate (Hz) and channels.
    pub sample_rate: u32,
    pub channels: u16,
    /// Ticks per second of the track's media timeline.
    pub timescale: u32,
}

/// The video timescale: the MPEG one, exact for every common frame rate in milliseconds.
pub const VIDEO_TIMESCALE: u32 = 90_000;

impl Track {
    /// Describes a stored track, or says which documented error it is.
    pub fn from_mkv(info: &TrackInfo) -> Result<Self, PackageError> {
        let codec = Codec::from_codec_id(&info.codec_id).ok_or_else(|| {
            PackageError::UnsupportedStreamMediaType(format!(
                "The codec ID {} of track {} is not supported: use V_MPEG4/ISO/AVC, V_MPEGH/ISO/HEVC or A_AAC.",
                info.codec_id, info.number
            ))
        })?;
        let config = info
            .codec_private
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or(PackageError::MissingCodecPrivateData(info.number))?;
        let valid = match codec {
            // configurationVersion 1, profile, compatibility, level, length size.
            Codec::H264 => config.len() >= 7 && config[0] == 1,
            Codec::H265 => config.len() >= 23 && config[0] == 1,
            Codec::Aac => config.len() >= 2 && aac_object_type(&config).is_some_and(|t| t > 0),
        };
        if !valid {
            return Err(PackageError::InvalidCodecPrivateData(info.number));
        }
        let (width, height) = info.pixels.unwrap_or((0, 0));
        let (sample_rate, channels) = info.audio.unwrap_or((0, 0));
        let sample_rate = match codec {
            Codec::Aac => aac_sample_rate(&config).unwrap_or(sample_rate),
            _ => sample_rate,
        };
        Ok(Self {
            number: info.number,
            codec,
            config,
            width: width.min(u64::from(u32::MAX)) as u32,
            height: height.min(u64::from(u32::MAX)) as u32,
            sample_rate,
            channels: channels.clamp(1, 8) as u16,
            timescale: if codec.is_video() {
                VIDEO_TIMESCALE
            } else {
                sample_rate.max(1)
            },
        })
    }

    pub fn is_video(&self) -> bool {
        self.codec.is_video()
    }

    /// The codec string players are told (RFC 6381), e.g. `avc1.64001f`, `mp4a.40.2`.
    pub fn codec_string(&self) -> String {
        let c = &self.config;
        match self.codec {
            Codec::H264 => format!("avc1.{:02x}{:02x}{:02x}", c[1], c[2], c[3]),
            Codec::H265 => hevc_codec_string(c),
            Codec::Aac => format!("mp4a.40.{}", aac_object_type(c).unwrap_or(2)),
        }
    }
}

/// The tracks of a stream that the playback APIs accept: track 1 H.264 or H.265 video and
/// optionally AAC audio, or AAC alone. `allow_h265` is false for MPEG-TS.
pub fn playable_tracks(infos: &[TrackInfo], allow_h265: bool) -> Result<Vec<Track>, PackageError> {
    let unsupported = || {
        PackageError::UnsupportedStreamMediaType(
            "The codec ID for track 1 should be V_MPEG4/ISO/AVC or V_MPEGH/ISO/HEVC (or A_AAC for audio only) and, optionally, the codec ID for track 2 should be A_AAC.".into(),
        )
    };
    if infos.is_empty() || infos.len() > 2 {
        return Err(unsupported());
    }
    // Oxbow's WebRTC storage sessions record Opus audio (KVS transcodes it to AAC, which Oxbow
    // cannot): such a stream plays as its video alone rather than not at all.
    let infos = match infos {
        [video, opus] if opus.codec_id == "A_OPUS" && video.track_type == 1 => {
            std::slice::from_ref(video)
        }
        _ => infos,
    };
    let tracks = infos
        .iter()
        .map(Track::from_mkv)
        .collect::<Result<Vec<_>, _>>()?;
    let shape_ok = match tracks.as_slice() {
        [only] => only.codec != Codec::H265 || allow_h265,
        [video, audio] => {
            video.is_video()
                && (video.codec != Codec::H265 || allow_h265)
                && audio.codec == Codec::Aac
        }
        _ => false,
    };
    if !shape_ok {
        return Err(unsupported());
    }
    Ok(tracks)
}

/// The audio object type of an AudioSpecificConfig (5 bits, 31 escapes to 6 more).
pub fn aac_object_type(asc: &[u8]) -> Option<u8> {
    let first = *asc.first()? >> 3;
    if first == 31 {
        let next = (asc.get(1)? & 0x07) << 3 | asc.get(2)? >> 5;
        return Some(32 + next);
    }
    Some(first)
}

/// The sample rate an AudioSpecificConfig declares (the common, non-escaped layout).
fn aac_sample_rate(asc: &[u8]) -> Option<u32> {
    const RATES: [u32; 13] = [
        96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
    ];
    if asc.first()? >> 3 == 31 {
        return None;
    }
    let index = (asc.first()? & 0x07) << 1 | asc.get(1)? >> 7;
    RATES.get(usize::from(index)).copied()
}

/// `hvc1.<space><profile>.<compatibility>.<tier><level>.<constraints>` (ISO/IEC 14496-15
/// annex E), from an hvcC record.
fn hevc_codec_string(c: &[u8]) -> String {
    let space = ["", "A", "B", "C"][usize::from(c[1] >> 6)];
    let tier = if c[1] & 0x20 != 0 { 'H' } else { 'L' };
    let profile = c[1] & 0x1F;
    let compat = u32::from_be_bytes([c[2], c[3], c[4], c[5]]).reverse_bits();
    let mut constraints: Vec<u8> = c[6..12].to_vec();
    while constraints.last() == Some(&0) {
        constraints.pop();
    }
    let mut s = format!("hvc1.{space}{profile}.{compat:X}.{tier}{}", c[12]);
    for b in constraints {
        s.push_str(&format!(".{b:X}"));
    }
    s
}

/// A 320x240 H.264 track for tests.
#[cfg(test)]
pub(crate) fn test_video() -> Track {
    Track {
        number: 1,
        codec: Codec::H264,
        config: Bytes::from_static(&[1, 0x64, 0, 0x1f, 0xff, 0xe1, 0]),
        width: 320,
        height: 240,
        sample_rate: 0,
        channels: 1,
        timescale: VIDEO_TIMESCALE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(number: u64, codec_id: &str, private: Option<&[u8]>) -> TrackInfo {
        TrackInfo {
            number,
            track_type: if codec_id.starts_with('V') { 1 } else { 2 },
            codec_id: codec_id.into(),
            codec_private: private.map(Bytes::copy_from_slice),
            pixels: Some((640, 360)),
            audio: Some((48000, 2)),
            default_duration_ns: None,
        }
    }

    const AVCC: &[u8] = &[1, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00];

    #[test]
    fn codec_strings_follow_rfc_6381() {
        let v = Track::from_mkv(&info(1, "V_MPEG4/ISO/AVC", Some(AVCC))).unwrap();
        assert_eq!(v.codec_string(), "avc1.64001f");
        assert_eq!(v.timescale, 90_000);
        // AAC-LC, 44.1 kHz, stereo: 0x12 0x10.
        let a = Track::from_mkv(&info(2, "A_AAC", Some(&[0x12, 0x10]))).unwrap();
        assert_eq!(a.codec_string(), "mp4a.40.2");
        assert_eq!((a.sample_rate, a.timescale), (44100, 44100));
        // HEVC Main, level 3.1 (93), general compatibility flags 0x60000000 → 6.
        let mut hvcc = vec![1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93];
        hvcc.resize(23, 0);
        let h = Track::from_mkv(&info(1, "V_MPEGH/ISO/HEVC", Some(&hvcc))).unwrap();
        assert_eq!(h.codec_string(), "hvc1.1.6.L93.90");
    }

    #[test]
    fn codec_private_errors_are_the_documented_ones() {
        assert_eq!(
            Track::from_mkv(&info(1, "V_MPEG4/ISO/AVC", None)),
            Err(PackageError::MissingCodecPrivateData(1))
        );
        assert_eq!(
            Track::from_mkv(&info(1, "V_MPEG4/ISO/AVC", Some(&[0, 1, 2]))),
            Err(PackageError::InvalidCodecPrivateData(1))
        );
        assert!(matches!(
            Track::from_mkv(&info(1, "V_VP8", Some(&[1]))),
            Err(PackageError::UnsupportedStreamMediaType(_))
        ));
    }

    #[test]
    fn only_the_documented_track_shapes_play() {
        let video = info(1, "V_MPEG4/ISO/AVC", Some(AVCC));
        let aac = info(2, "A_AAC", Some(&[0x12, 0x10]));
        assert_eq!(
            playable_tracks(&[video.clone(), aac.clone()], true)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            playable_tracks(std::slice::from_ref(&aac), true)
                .unwrap()
                .len(),
            1
        );
        // Audio first, or two videos, is not a shape KVS plays.
        assert!(playable_tracks(&[aac.clone(), video.clone()], true).is_err());
        assert!(playable_tracks(&[video.clone(), video], true).is_err());
        let mut hvcc = vec![1u8; 23];
        hvcc[0] = 1;
        let hevc = info(1, "V_MPEGH/ISO/HEVC", Some(&hvcc));
        assert!(playable_tracks(std::slice::from_ref(&hevc), true).is_ok());
        // MPEG-TS carries no H.265 in KVS.
        assert!(playable_tracks(&[hevc], false).is_err());
        // A recorded WebRTC stream (H.264 and Opus) plays as its video; Opus alone does not.
        let opus = info(2, "A_OPUS", Some(b"OpusHead"));
        let avc = info(1, "V_MPEG4/ISO/AVC", Some(AVCC));
        let played = playable_tracks(&[avc, opus.clone()], true).unwrap();
        assert_eq!((played.len(), played[0].codec), (1, Codec::H264));
        assert!(playable_tracks(&[opus], true).is_err());
    }
}

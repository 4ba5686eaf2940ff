//! Still images from stored video (GetImages, image generation): the frames of one
//! fragment's video track decoded from its first key frame up to each requested time, then
//! scaled and encoded.
//!
//! Decoding is OpenH264's (the `openh264` crate, built from its bundled source, so no system
//! codec library is needed); scaling and JPEG/PNG encoding are the `image` crate's. H.265 has
//! no maintained decoder that builds here without a system library: its images are
//! [`ImageError::Unsupported`] (GetImages' `MEDIA_ERROR`).

#![forbid(unsafe_code)]

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::imageops::FilterType;
use image::{ImageEncoder, RgbImage};
use openh264::decoder::Decoder;
use openh264::formats::YUVSource;
use oxbow_package::annexb::{annex_b, parameter_sets};
use oxbow_package::demux::Sample;
use oxbow_package::{Codec, Track};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The track's codec cannot be decoded here (H.265, audio).
    #[error("the {0:?} track cannot be decoded to images")]
    Unsupported(Codec),
    /// The stored frames did not decode.
    #[error("the frames did not decode: {0}")]
    Decode(String),
    #[error("the image could not be encoded: {0}")]
    Encode(String),
}

/// How images are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Quality 1–100.
    Jpeg(u8),
    Png,
}

/// The size of the images: as decoded, a given size, or a given height (or width) with the
/// other side keeping the frame's aspect ratio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    Original,
    Exact(u32, u32),
    Height(u32),
    Width(u32),
}

impl Size {
    fn of(self, width: u32, height: u32) -> (u32, u32) {
        match self {
            Size::Original => (width, height),
            Size::Exact(w, h) => (w, h),
            Size::Width(w) => {
                let h = (u64::from(height) * u64::from(w) + u64::from(width) / 2)
                    / u64::from(width.max(1));
                (w, h.max(1) as u32)
            }
            Size::Height(h) => {
                let w = (u64::from(width) * u64::from(h) + u64::from(height) / 2)
                    / u64::from(height.max(1));
                (w.max(1) as u32, h)
            }
        }
    }
}

/// Decodes the frames of one fragment's video `track` nearest each of `times` (ticks of the
/// track's timescale): decoding runs from the fragment's first key frame to the latest frame
/// any time needs. `None` where the fragment has no frame, or one did not decode.
pub fn frames_at(
    track: &Track,
    samples: &[Sample],
    times: &[u64],
) -> Result<Vec<Option<RgbImage>>, ImageError> {
    if track.codec != Codec::H264 {
        return Err(ImageError::Unsupported(track.codec));
    }
    let sets = parameter_sets(&track.config);
    let length_size = track
        .config
        .get(4)
        .map(|b| usize::from(b & 0x03) + 1)
        .unwrap_or(4);
    let pts = |s: &Sample| (s.dts as i64 + i64::from(s.cts)).max(0) as u64;
    // Which sample each time shows: the one presented nearest to it.
    let targets: Vec<Option<usize>> = times
        .iter()
        .map(|t| {
            samples
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| pts(s).abs_diff(*t))
                .map(|(i, _)| i)
        })
        .collect();
    let Some(last) = targets.iter().flatten().max().copied() else {
        return Ok(times.iter().map(|_| None).collect());
    };
    let mut decoder = Decoder::new().map_err(|e| ImageError::Decode(e.to_string()))?;
    let mut pictures: Vec<Option<RgbImage>> = vec![None; samples.len()];
    // The decoder may hand a picture back a call or more after its access unit (and the
    // rest when flushed): pictures come out in the order their units went in.
    let mut waiting = std::collections::VecDeque::new();
    let mut keep = |i: Option<usize>, yuv: &openh264::decoder::DecodedYUV<'_>| {
        if let Some(i) = i.filter(|i| targets.contains(&Some(*i))) {
            let (w, h) = yuv.dimensions();
            let mut rgb = vec![0u8; w * h * 3];
            yuv.write_rgb8(&mut rgb);
            pictures[i] = RgbImage::from_raw(w as u32, h as u32, rgb);
        }
    };
    for (i, sample) in samples.iter().enumerate().take(last + 1) {
        let au = annex_b(&sample.data, length_size, &sets, sample.keyframe || i == 0);
        waiting.push_back(i);
        let decoded = decoder
            .decode(&au)
            .map_err(|e| ImageError::Decode(e.to_string()))?;
        if let Some(yuv) = decoded {
            keep(waiting.pop_front(), &yuv);
        }
    }
    for yuv in decoder
        .flush_remaining()
        .map_err(|e| ImageError::Decode(e.to_string()))?
    {
        keep(waiting.pop_front(), &yuv);
    }
    Ok(targets
        .iter()
        .map(|t| t.and_then(|i| pictures[i].clone()))
        .collect())
}

/// Scales `frame` to `size` and encodes it.
pub fn encode(frame: &RgbImage, size: Size, format: Format) -> Result<Vec<u8>, ImageError> {
    let (w, h) = size.of(frame.width(), frame.height());
    let scaled;
    let frame = if (w, h) == frame.dimensions() {
        frame
    } else {
        scaled = image::imageops::resize(frame, w, h, FilterType::Triangle);
        &scaled
    };
    let mut out = Vec::new();
    let encoded = match format {
        Format::Jpeg(quality) => JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
            .write_image(frame.as_raw(), w, h, image::ExtendedColorType::Rgb8),
        Format::Png => PngEncoder::new(&mut out).write_image(
            frame.as_raw(),
            w,
            h,
            image::ExtendedColorType::Rgb8,
        ),
    };
    encoded.map_err(|e| ImageError::Encode(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heights_keep_the_aspect_ratio() {
        assert_eq!(Size::Height(180).of(640, 360), (320, 180));
        assert_eq!(Size::Height(100).of(320, 240), (133, 100));
        assert_eq!(Size::Exact(10, 20).of(640, 360), (10, 20));
        assert_eq!(Size::Original.of(640, 360), (640, 360));
    }

    #[test]
    fn images_encode_as_asked() {
        let frame = RgbImage::from_pixel(64, 48, image::Rgb([200, 30, 30]));
        let jpeg = encode(&frame, Size::Height(24), Format::Jpeg(80)).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
        let back = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((back.width(), back.height()), (32, 24));
        let png = encode(&frame, Size::Exact(10, 10), Format::Png).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let back = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(back.get_pixel(5, 5), &image::Rgb([200, 30, 30]));
    }
}

//! GetImages through the official SDK on real H.264 from ffmpeg: the count follows the
//! sampling interval, images are the frames shown at their times (compared with ffmpeg's own
//! decode of the file), sizes and formats as asked, NO_MEDIA where there is no media, and the
//! request errors.

mod common;

use std::process::Command;

use aws_sdk_kinesisvideoarchivedmedia::primitives::DateTime;
use aws_sdk_kinesisvideoarchivedmedia::types::{
    Format, FormatConfigKey, ImageError, ImageSelectorType,
};
use base64::Engine;
use common::*;

/// Raw RGB of an image file (any format ffmpeg reads), at its own size: (width, height, rgb).
fn rgb_of(path: &std::path::Path) -> (u32, u32, Vec<u8>) {
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&probe.stdout);
    let (w, h) = text
        .trim()
        .split_once(',')
        .unwrap_or_else(|| panic!("{text:?}"));
    let raw = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap()
        .stdout;
    (w.parse().unwrap(), h.parse().unwrap(), raw)
}

/// The frame of `video` ffmpeg shows at `seconds`, as RGB.
fn ffmpeg_frame(video: &std::path::Path, seconds: f64, dir: &std::path::Path) -> Vec<u8> {
    let out = dir.join(format!("ffmpeg-{seconds}.png"));
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(video)
        .args(["-ss", &format!("{seconds:.3}"), "-frames:v", "1"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    rgb_of(&out).2
}

fn mean_difference(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (i32::from(*x) - i32::from(*y)).abs() as f64)
        .sum::<f64>()
        / a.len() as f64
}

/// Just after the start of stream "cam"'s first fragment, on the producer's clock, from
/// ListFragments (its seconds-with-fraction may round a millisecond down).
async fn first_producer_ms(server: &TestServer) -> i64 {
    list_all(server, "cam", true)
        .await
        .fragments()
        .iter()
        .map(|f| f.producer_timestamp().unwrap().to_millis().unwrap())
        .min()
        .unwrap()
        + 1
}

#[tokio::test]
async fn get_images_returns_the_frames_shown_at_each_time() {
    let server = TestServer::start();
    create_stream_with(&server, "cam", 24).await;
    let fixture = fixture(4);
    put_file(&server, "cam", &fixture, false).await;
    let first = first_producer_ms(&server).await;
    let sdk = archive_sdk(&server);
    // Every 500 ms over 4 s of media and 2 s past its end: 13 times, PNG at the frame's size.
    let out = sdk
        .get_images()
        .stream_name("cam")
        .image_selector_type(ImageSelectorType::ProducerTimestamp)
        .start_timestamp(DateTime::from_millis(first))
        .end_timestamp(DateTime::from_millis(first + 6000))
        .sampling_interval(500)
        .format(Format::Png)
        .max_results(100)
        .send()
        .await
        .unwrap();
    let images = out.images();
    assert_eq!(images.len(), 13);
    assert!(out.next_token().is_none());
    let dir = temp_dir("images");
    for (k, image) in images.iter().enumerate() {
        let at = first + 500 * k as i64;
        // Epoch seconds as a JSON number: within a millisecond.
        let stamp = image.time_stamp().unwrap().to_millis().unwrap();
        assert!((stamp - at).abs() <= 1, "image {k}: {stamp} for {at}");
        if k >= 9 {
            // Past the last fragment (4 s of media, its last fragment ending just after 4 s).
            assert_eq!(image.error(), Some(&ImageError::NoMedia), "image {k}");
            continue;
        }
        if k == 8 {
            continue;
        }
        assert_eq!(image.error(), None, "image {k}");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(image.image_content().unwrap())
            .unwrap();
        let path = dir.join(format!("oxbow-{k}.png"));
        std::fs::write(&path, bytes).unwrap();
        let (w, h, ours) = rgb_of(&path);
        assert_eq!((w, h), (320, 240));
        // The same frame as ffmpeg shows at that time (within a frame: the stream's producer
        // time starts with its first audio sample, a little before the first video frame);
        // clearly not the one a second away.
        let seconds = 0.5 * k as f64;
        let same = [-0.04, 0.0, 0.04]
            .iter()
            .map(|d| mean_difference(&ours, &ffmpeg_frame(&fixture, (seconds + d).max(0.0), &dir)))
            .fold(f64::INFINITY, f64::min);
        let elsewhere = if seconds >= 1.0 {
            seconds - 1.0
        } else {
            seconds + 1.0
        };
        let other = mean_difference(&ours, &ffmpeg_frame(&fixture, elsewhere, &dir));
        assert!(
            same < 3.0,
            "image {k}: differs from ffmpeg's frame by {same}"
        );
        assert!(
            other > 2.0 * same + 5.0,
            "image {k}: {same} vs {other} a second later"
        );
    }
}

#[tokio::test]
async fn get_images_pages_scales_and_refuses_bad_requests() {
    let server = TestServer::start();
    create_stream_with(&server, "cam", 24).await;
    put_file(&server, "cam", &fixture(4), false).await;
    let first = first_producer_ms(&server).await;
    let request = || {
        archive_sdk(&server)
            .get_images()
            .stream_name("cam")
            .image_selector_type(ImageSelectorType::ProducerTimestamp)
            .start_timestamp(DateTime::from_millis(first))
            .end_timestamp(DateTime::from_millis(first + 3000))
            .sampling_interval(200)
            .format(Format::Jpeg)
    };
    // 16 times in pages of 10; JPEG at 120 pixels high keeps 4:3.
    let page = request()
        .height_pixels(120)
        .format_config(FormatConfigKey::JpegQuality, "50")
        .max_results(10)
        .send()
        .await
        .unwrap();
    assert_eq!(page.images().len(), 10);
    let token = page.next_token().unwrap().to_string();
    let rest = request()
        .max_results(10)
        .next_token(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(rest.images().len(), 6);
    assert!(rest.next_token().is_none());
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(page.images()[3].image_content().unwrap())
        .unwrap();
    let path = temp_dir("jpeg").join("i.jpg");
    std::fs::write(&path, &jpeg).unwrap();
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    let (w, h, _) = rgb_of(&path);
    assert_eq!((w, h), (160, 120));
    // Errors: width alone, a range over 300 s, an interval under 200 ms, no such stream.
    let code = |e: aws_sdk_kinesisvideoarchivedmedia::error::SdkError<_, _>| {
        aws_sdk_kinesisvideoarchivedmedia::error::ProvideErrorMetadata::code(
            &e.into_service_error(),
        )
        .unwrap_or("")
        .to_string()
    };
    let e = request().width_pixels(100).send().await.unwrap_err();
    assert_eq!(code(e), "InvalidArgumentException");
    let e = request()
        .end_timestamp(DateTime::from_millis(first + 301_000))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "InvalidArgumentException");
    let e = request().sampling_interval(100).send().await.unwrap_err();
    assert_eq!(code(e), "InvalidArgumentException");
    let e = request().stream_name("nope").send().await.unwrap_err();
    assert_eq!(code(e), "ResourceNotFoundException");
}

#[tokio::test]
async fn h265_images_are_media_errors() {
    // No maintained H.265 decoder builds here without a system library: each image says so.
    let server = TestServer::start();
    create_stream_with(&server, "cam", 24).await;
    put_file(&server, "cam", &hevc_fixture(), false).await;
    let first = first_producer_ms(&server).await;
    let out = archive_sdk(&server)
        .get_images()
        .stream_name("cam")
        .image_selector_type(ImageSelectorType::ProducerTimestamp)
        .start_timestamp(DateTime::from_millis(first))
        .end_timestamp(DateTime::from_millis(first + 2000))
        .sampling_interval(1000)
        .format(Format::Jpeg)
        .send()
        .await
        .unwrap();
    let errors: Vec<_> = out.images().iter().map(|i| i.error().cloned()).collect();
    assert_eq!(errors, vec![Some(ImageError::MediaError); 3]);
}

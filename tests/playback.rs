//! Playback through the URLs the official SDK returns: HLS played by independent readers
//! (ffprobe/ffmpeg decode every frame), the session rules, and the documented errors.

mod common;

use std::process::Command;
use std::time::Duration;

use aws_sdk_kinesisvideoarchivedmedia::primitives::DateTime;
use aws_sdk_kinesisvideoarchivedmedia::types::{
    ClipFragmentSelector, ClipFragmentSelectorType, ClipTimestampRange, ContainerFormat,
    DashFragmentSelector, DashFragmentSelectorType, DashPlaybackMode, DashTimestampRange,
    HlsDiscontinuityMode, HlsFragmentSelector, HlsFragmentSelectorType, HlsPlaybackMode,
    HlsTimestampRange,
};
use common::*;

/// Frames of each stream (video, audio) that ffprobe decodes from `input`.
fn decoded_frames(input: &str) -> (u64, u64) {
    (
        decoded_frames_of(input, "v:0"),
        decoded_frames_of(input, "a:0"),
    )
}

/// Frames of one stream (`v:0`, `a:0`) that ffprobe decodes from `input`.
fn decoded_frames_of(input: &str, stream: &str) -> u64 {
    {
        let out = Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-select_streams", stream])
            .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
            .arg(input)
            .output()
            .expect("ffprobe (installed by .ci/run)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "ffprobe {input}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // One line per stream, and again per program when the input has programs.
        text.lines()
            .find(|l| !l.trim().is_empty())
            .and_then(|l| l.trim().trim_end_matches(',').parse().ok())
            .unwrap_or_else(|| panic!("{input}: {text:?}"))
    }
}

/// Video frames GStreamer's `playbin` (hlsdemux/dashdemux, the libav decoder) decodes from
/// `url`: raw 320x240 I420 frames written to a file, counted by size.
fn gstreamer_frames(url: &str) -> u64 {
    let out = temp_dir("gst").join("video.yuv");
    let status = Command::new("gst-launch-1.0")
        .arg("-q")
        .arg("playbin")
        .arg(format!("uri={url}"))
        .arg(format!(
            "video-sink=videoconvert ! video/x-raw,format=I420 ! filesink location={} sync=false",
            out.display()
        ))
        .arg("audio-sink=fakesink sync=false")
        .status()
        .expect("gst-launch-1.0 (installed by .ci/run)");
    assert!(status.success(), "GStreamer could not play {url}");
    std::fs::metadata(&out).unwrap().len() / (320 * 240 * 3 / 2)
}

fn on_demand(start: DateTime, end: DateTime) -> HlsFragmentSelector {
    HlsFragmentSelector::builder()
        .fragment_selector_type(HlsFragmentSelectorType::ServerTimestamp)
        .timestamp_range(
            HlsTimestampRange::builder()
                .start_timestamp(start)
                .end_timestamp(end)
                .build(),
        )
        .build()
}

/// Puts `seconds` of real media into a new stream and waits until its server timestamps are
/// in the past; returns the file and the time just before it was put.
async fn stored(server: &TestServer, stream: &str, seconds: u32) -> (std::path::PathBuf, u64) {
    create_stream_with(server, stream, 24).await;
    let fixture = fixture(seconds);
    let before = now_ms();
    put_file(server, stream, &fixture, false).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    (fixture, before)
}

/// An HLS session URL for stream "cam": `mode`, `container`, and for ON_DEMAND and
/// LIVE_REPLAY the server-time range from a second before `from` (epoch ms) to now.
async fn hls_session(
    server: &TestServer,
    mode: HlsPlaybackMode,
    container: ContainerFormat,
    from: Option<u64>,
) -> String {
    archive_sdk(server)
        .get_hls_streaming_session_url()
        .stream_name("cam")
        .playback_mode(mode)
        .container_format(container)
        .discontinuity_mode(HlsDiscontinuityMode::Never)
        .set_hls_fragment_selector(from.map(|f| on_demand(secs(f - 1000), secs(now_ms()))))
        .send()
        .await
        .unwrap()
        .hls_streaming_session_url
        .unwrap()
}

/// A LIVE fMP4 HLS session URL for stream "cam".
async fn live_hls(server: &TestServer) -> String {
    hls_session(
        server,
        HlsPlaybackMode::Live,
        ContainerFormat::FragmentedMp4,
        None,
    )
    .await
}

/// An ON_DEMAND HLS session URL for stream "cam" from a second before `start` to now.
async fn on_demand_hls(server: &TestServer, start: u64, container: ContainerFormat) -> String {
    hls_session(server, HlsPlaybackMode::OnDemand, container, Some(start)).await
}

/// A GetClip selector of server timestamps from `start` to `end` (epoch ms).
fn clip_range(start: u64, end: u64) -> ClipFragmentSelector {
    ClipFragmentSelector::builder()
        .fragment_selector_type(ClipFragmentSelectorType::ServerTimestamp)
        .timestamp_range(
            ClipTimestampRange::builder()
                .start_timestamp(secs(start))
                .end_timestamp(secs(end))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

fn secs(ms: u64) -> DateTime {
    DateTime::from_millis(ms as i64)
}

#[tokio::test]
async fn on_demand_hls_ts_and_dash_play_every_stored_frame_in_ffmpeg_and_gstreamer() {
    let server = TestServer::start();
    let (fixture, before) = stored(&server, "cam", 6).await;
    let url = on_demand_hls(&server, before, ContainerFormat::FragmentedMp4).await;
    let hls_fmp4 = url.clone();
    assert!(
        url.starts_with(&format!(
            "{}/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken=",
            server.url
        )),
        "{url}"
    );
    // The same frames as the file that was put, read by ffprobe on both sides.
    let expected = decoded_frames(fixture.to_str().unwrap());
    assert_eq!(expected.0, 150);
    assert_eq!(decoded_frames(&url), expected);
    // MPEG-TS, the same range: the same frames.
    let url = on_demand_hls(&server, before, ContainerFormat::MpegTs).await;
    assert_eq!(decoded_frames(&url), expected);
    let hls_ts = url.clone();
    // DASH, the same range: the same frames.
    let url = archive_sdk(&server)
        .get_dash_streaming_session_url()
        .stream_name("cam")
        .playback_mode(DashPlaybackMode::OnDemand)
        .dash_fragment_selector(
            DashFragmentSelector::builder()
                .fragment_selector_type(DashFragmentSelectorType::ServerTimestamp)
                .timestamp_range(
                    DashTimestampRange::builder()
                        .start_timestamp(secs(before - 1000))
                        .end_timestamp(secs(now_ms()))
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap()
        .dash_streaming_session_url
        .unwrap();
    assert!(
        url.starts_with(&format!(
            "{}/dash/v1/getDASHManifest.mpd?SessionToken=",
            server.url
        )),
        "{url}"
    );
    assert_eq!(decoded_frames(&url), expected);
    // GStreamer plays all three to the last frame.
    for url in [hls_fmp4, hls_ts, url] {
        assert_eq!(gstreamer_frames(&url), expected.0, "{url}");
    }
}

#[tokio::test]
async fn get_clip_returns_one_mp4_of_the_range() {
    let server = TestServer::start();
    let (fixture, before) = stored(&server, "cam", 6).await;
    let selector = clip_range;
    let out = archive_sdk(&server)
        .get_clip()
        .stream_name("cam")
        .clip_fragment_selector(selector(before - 1000, now_ms()))
        .send()
        .await
        .unwrap();
    assert_eq!(out.content_type(), Some("video/mp4"));
    let bytes = out.payload.collect().await.unwrap().into_bytes();
    let path = temp_dir("clip").join("clip.mp4");
    std::fs::write(&path, &bytes).unwrap();
    // A whole MP4 (moov before mdat, no fragments) with every frame that was put.
    assert_eq!(&bytes[4..8], b"ftyp");
    assert!(!bytes.windows(4).any(|w| w == b"moof"));
    assert_eq!(
        decoded_frames(path.to_str().unwrap()),
        decoded_frames(fixture.to_str().unwrap())
    );
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=format_name,duration",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&probe.stdout);
    let (format, duration) = text.trim().rsplit_once(',').unwrap();
    assert!(format.contains("mp4"), "{text}");
    let duration: f64 = duration.parse().unwrap();
    assert!((duration - 6.0).abs() < 0.2, "{text}");
    // Nothing in the range: ResourceNotFound.
    let err = archive_sdk(&server)
        .get_clip()
        .stream_name("cam")
        .clip_fragment_selector(selector(before - 60_000, before - 30_000))
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_resource_not_found_exception());
}

/// The session URL's base (where relative names resolve) and its first media playlist's
/// name (the video track's).
fn base_and_video(url: &str) -> (String, String) {
    let base = url
        .split("getHLSMasterPlaylist")
        .next()
        .unwrap()
        .to_string();
    let video = fetch(url).body.lines().last().unwrap().to_string();
    (base, video)
}

/// GETs a session URL; the body as bytes.
fn fetch_bytes(url: &str) -> Vec<u8> {
    let rest = url.strip_prefix("http://").unwrap();
    let (addr, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    use std::io::{Read, Write};
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(
        buf.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..head_end])
    );
    buf.split_off(head_end)
}

/// GETs a session URL as a player would (no signature); the body as text.
fn fetch(url: &str) -> Raw {
    let rest = url.strip_prefix("http://").unwrap();
    let (addr, path) = rest.split_at(rest.find('/').unwrap());
    send_raw(
        addr,
        &format!("GET {path} HTTP/1.1\nHost: {addr}\nConnection: close"),
        b"",
    )
}

async fn hls_error(
    server: &TestServer,
    build: impl FnOnce(
        aws_sdk_kinesisvideoarchivedmedia::operation::get_hls_streaming_session_url::builders::GetHLSStreamingSessionURLFluentBuilder,
    ) -> aws_sdk_kinesisvideoarchivedmedia::operation::get_hls_streaming_session_url::builders::GetHLSStreamingSessionURLFluentBuilder,
) -> String {
    let err = build(archive_sdk(server).get_hls_streaming_session_url())
        .send()
        .await
        .unwrap_err();
    let service = err.into_service_error();
    aws_sdk_kinesisvideoarchivedmedia::error::ProvideErrorMetadata::code(&service)
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn session_urls_are_refused_with_the_documented_errors() {
    let server = TestServer::start();
    create_stream_with(&server, "kept", 24).await;
    create_stream_with(&server, "unkept", 0).await;
    let code = hls_error(&server, |b| b.stream_name("nope")).await;
    assert_eq!(code, "ResourceNotFoundException");
    let code = hls_error(&server, |b| b.stream_name("unkept")).await;
    assert_eq!(code, "NoDataRetentionException");
    // LIVE with nothing ingested in the last 30 s.
    let code = hls_error(&server, |b| b.stream_name("kept")).await;
    assert_eq!(code, "ResourceNotFoundException");
    let now = now_ms();
    let range = on_demand(secs(now - 60_000), secs(now - 1_000));
    // LIVE takes no range; ON_DEMAND needs one; Expires is 300 to 43200.
    let code = hls_error(&server, |b| {
        b.stream_name("kept").hls_fragment_selector(range.clone())
    })
    .await;
    assert_eq!(code, "InvalidArgumentException");
    let code = hls_error(&server, |b| {
        b.stream_name("kept")
            .playback_mode(HlsPlaybackMode::OnDemand)
    })
    .await;
    assert_eq!(code, "InvalidArgumentException");
    let code = hls_error(&server, |b| b.stream_name("kept").expires(299)).await;
    assert_eq!(code, "InvalidArgumentException");
    // A range with no fragments in it.
    let code = hls_error(&server, |b| {
        b.stream_name("kept")
            .playback_mode(HlsPlaybackMode::OnDemand)
            .hls_fragment_selector(range.clone())
    })
    .await;
    assert_eq!(code, "ResourceNotFoundException");
}

#[tokio::test]
async fn session_tokens_open_only_their_own_session() {
    let server = TestServer::start();
    for name in ["a", "b"] {
        create_stream_with(&server, name, 24).await;
        put_file(&server, name, &fixture(2), false).await;
    }
    let url = |name: &'static str| {
        let sdk = archive_sdk(&server);
        async move {
            sdk.get_hls_streaming_session_url()
                .stream_name(name)
                .send()
                .await
                .unwrap()
                .hls_streaming_session_url
                .unwrap()
        }
    };
    let (a, b) = (url("a").await, url("b").await);
    let master = fetch(&a);
    assert_eq!(master.status, 200, "{}", master.body);
    assert_eq!(
        master.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    // Any page may play it.
    assert_eq!(master.header("access-control-allow-origin"), Some("*"));
    // A media playlist of b names b's fragments; a's token does not open them.
    let base = b.split("getHLSMasterPlaylist").next().unwrap();
    let b_media = fetch(&format!("{base}{}", fetch(&b).body.lines().last().unwrap()));
    let b_fragment = b_media
        .body
        .lines()
        .find(|l| l.starts_with("getMP4MediaFragment"))
        .unwrap()
        .to_string();
    assert_eq!(fetch(&format!("{base}{b_fragment}")).status, 200);
    let a_token = a.split("SessionToken=").nth(1).unwrap();
    let b_token = b_fragment
        .split("SessionToken=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let foreign = fetch(&format!("{base}{}", b_fragment.replace(b_token, a_token)));
    assert_eq!(foreign.status, 404, "{}", foreign.body);
    assert_eq!(foreign.error_type(), "ResourceNotFoundException");
    // A token changed by one character, or none at all, opens nothing.
    let mut forged = a.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let refused = fetch(&forged);
    assert_eq!(
        (refused.status, refused.error_type()),
        (401, "NotAuthorizedException")
    );
    let bare = fetch(a.split('?').next().unwrap());
    assert_eq!(bare.error_type(), "InvalidArgumentException");
}

#[tokio::test]
async fn live_playlists_are_low_latency_unless_turned_off() {
    for (flags, low_latency) in [(&[][..], true), (&["--no-low-latency-hls"][..], false)] {
        let server = TestServer::start_with(flags);
        stored(&server, "cam", 4).await;
        let url = live_hls(&server).await;
        let (base, video) = base_and_video(&url);
        let playlist = fetch(&format!("{base}{video}")).body;
        // LL-HLS: blocking reloads, part durations, the newest segment's parts (five of
        // 200 ms in a one-second fragment, the first independent).
        assert_eq!(
            playlist.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.600"),
            low_latency,
            "{playlist}"
        );
        assert_eq!(
            playlist.contains("#EXT-X-PART-INF:PART-TARGET=0.200"),
            low_latency
        );
        let parts: Vec<&str> = playlist
            .lines()
            .filter(|l| l.starts_with("#EXT-X-PART:"))
            .collect();
        assert_eq!(parts.len(), if low_latency { 5 } else { 0 }, "{playlist}");
        if low_latency {
            assert!(parts[0].contains(",INDEPENDENT=YES"), "{playlist}");
            assert!(
                parts[0].starts_with("#EXT-X-PART:DURATION=0.200,"),
                "{playlist}"
            );
            // A part is a fragment of its own: the first, after the init segment, is the
            // first five frames.
            let init = playlist
                .lines()
                .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
                .unwrap()
                .trim_end_matches('"');
            let part = parts[0]
                .split("URI=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let dir = temp_dir("part");
            let file = dir.join("part.mp4");
            let mut bytes = fetch_bytes(&format!("{base}{init}"));
            bytes.extend(fetch_bytes(&format!("{base}{part}")));
            std::fs::write(&file, bytes).unwrap();
            assert_eq!(decoded_frames_of(file.to_str().unwrap(), "v:0"), 5);
            // A reload more than one segment ahead of the playlist is refused at once.
            let ahead = fetch(&format!("{base}{video}&_HLS_msn=99&_HLS_part=0"));
            assert_eq!(
                (ahead.status, ahead.error_type()),
                (400, "InvalidArgumentException")
            );
        }
    }
}

/// Tracks as `mkv_start` takes them: number, type, codec id, CodecPrivate.
type TrackList = &'static [(u64, u64, &'static str, &'static [u8])];

#[tokio::test]
async fn streams_that_cannot_be_packaged_get_the_documented_errors() {
    let server = TestServer::start();
    let cases: [(&str, TrackList, &str); 3] = [
        // An avcC record one byte long.
        ("short-cpd", AV, "InvalidCodecPrivateDataException"),
        (
            "no-cpd",
            &[(1, 1, "V_MPEG4/ISO/AVC", &[])],
            "MissingCodecPrivateDataException",
        ),
        (
            "vp8",
            &[(1, 1, "V_VP8", &[1, 2, 3])],
            "UnsupportedStreamMediaTypeException",
        ),
    ];
    for (name, tracks, expected) in cases {
        create_stream_with(&server, name, 24).await;
        let mut body = mkv_start(tracks);
        let now = now_ms();
        for start in [now, now + 500] {
            // Frames for every declared track.
            let mut c = oxbow_mkv::write::unknown_size(oxbow_mkv::ids::CLUSTER);
            c.extend(oxbow_mkv::write::uint(oxbow_mkv::ids::TIMECODE, start));
            for i in 0..5u8 {
                for (track, ..) in tracks {
                    let block = oxbow_mkv::write::simple_block(
                        *track,
                        i16::from(i) * 100,
                        i == 0,
                        &[7; 50],
                    );
                    c.extend(block);
                }
            }
            body.extend(c);
        }
        put_raw(&server, name, vec![(0, body)]).await;
        let code = hls_error(&server, |b| b.stream_name(name)).await;
        assert_eq!(code, expected, "{name}");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let err = archive_sdk(&server)
            .get_clip()
            .stream_name(name)
            .clip_fragment_selector(clip_range(now - 60_000, now_ms()))
            .send()
            .await
            .unwrap_err();
        let service = err.into_service_error();
        assert_eq!(
            aws_sdk_kinesisvideoarchivedmedia::error::ProvideErrorMetadata::code(&service),
            Some(expected),
            "{name}"
        );
    }
}

#[tokio::test]
async fn h265_plays_in_fmp4_and_is_refused_in_mpeg_ts() {
    let server = TestServer::start();
    create_stream_with(&server, "cam", 24).await;
    let fixture = hevc_fixture();
    let before = now_ms();
    put_file(&server, "cam", &fixture, false).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let url = on_demand_hls(&server, before, ContainerFormat::FragmentedMp4).await;
    let master = fetch(&url).body;
    assert!(master.contains("CODECS=\"hvc1.1.6.L"), "{master}");
    assert_eq!(decoded_frames_of(&url, "v:0"), 75);
    let code = hls_error(&server, |b| {
        b.stream_name("cam")
            .playback_mode(HlsPlaybackMode::OnDemand)
            .container_format(ContainerFormat::MpegTs)
            .hls_fragment_selector(on_demand(secs(before - 1000), secs(now_ms())))
    })
    .await;
    assert_eq!(code, "UnsupportedStreamMediaTypeException");
}

#[tokio::test]
async fn live_replay_adds_fragments_as_they_would_have_played_and_ends() {
    let server = TestServer::start();
    let (fixture, before) = stored(&server, "cam", 4).await;
    let url = hls_session(
        &server,
        HlsPlaybackMode::LiveReplay,
        ContainerFormat::FragmentedMp4,
        Some(before),
    )
    .await;
    // At first only the first fragment has "played": one segment, no end.
    let (base, video) = base_and_video(&url);
    let first = fetch(&format!("{base}{video}")).body;
    assert_eq!(
        first
            .lines()
            .filter(|l| l.starts_with("getMP4MediaFragment"))
            .count(),
        1,
        "{first}"
    );
    assert!(!first.contains("#EXT-X-ENDLIST"), "{first}");
    // ffmpeg follows the growing playlist to its end and decodes every frame.
    assert_eq!(
        decoded_frames(&url),
        decoded_frames(fixture.to_str().unwrap())
    );
}

#[tokio::test]
async fn boto3_gets_session_urls_and_clips_that_play() {
    let server = TestServer::start();
    let (fixture, _) = stored(&server, "py", 3).await;
    let dir = temp_dir("boto3-playback");
    run_boto3(
        "boto3_playback.py",
        &[
            server.url.as_ref(),
            ACCESS_KEY.as_ref(),
            SECRET_KEY.as_ref(),
            "py".as_ref(),
            dir.as_os_str(),
        ],
    );
    let expected = decoded_frames(fixture.to_str().unwrap());
    for file in ["hls.url", "dash.url"] {
        let url = std::fs::read_to_string(dir.join(file)).unwrap();
        assert_eq!(decoded_frames(&url), expected, "{file}: {url}");
    }
    // DisplayFragmentNumber: every segment names its KVS fragment number.
    let dash = std::fs::read_to_string(dir.join("dash.url")).unwrap();
    let mpd = fetch(&dash).body;
    assert_eq!(
        mpd.matches(" kvs:fn=\"913438523331").count(),
        2 * 3,
        "{mpd}"
    );
    let clip = dir.join("clip.mp4");
    assert_eq!(decoded_frames(clip.to_str().unwrap()), expected);
    // GetImages: three JPEGs at 160x120, decodable by ffprobe.
    for i in 0..3 {
        let image = dir.join(format!("image-{i}.jpg"));
        assert_eq!(probe_image(&image), "mjpeg,160,120", "{i}");
    }
    assert!(!dir.join("image-3.jpg").exists());
}

#[tokio::test]
async fn ffmpeg_and_gstreamer_play_a_live_low_latency_stream() {
    let server = TestServer::start();
    let (ffmpeg, gstreamer) = while_producing(&server, "cam", async {
        let url = live_hls(&server).await;
        tokio::task::spawn_blocking(move || {
            // Three seconds of the live stream, decoded.
            let out = Command::new("ffmpeg")
                .args(["-v", "error", "-i", &url, "-t", "3", "-map", "0:v:0"])
                .args(["-f", "framecrc", "-"])
                .output()
                .unwrap();
            let ffmpeg = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.starts_with('#'))
                .count();
            // GStreamer plays a live stream until stopped: twelve seconds of it, as fast as
            // the frames come, each frame reaching the sink announced on stdout.
            let out = Command::new("timeout")
                .args(["12", "stdbuf", "-oL", "gst-launch-1.0", "-v", "playbin"])
                .arg(format!("uri={url}"))
                .arg("video-sink=fakesink name=v silent=false sync=false")
                .arg("audio-sink=fakesink sync=false")
                .output()
                .unwrap();
            let gstreamer = String::from_utf8_lossy(&out.stdout)
                .matches("(v:sink) (")
                .count();
            (ffmpeg, gstreamer)
        })
        .await
        .unwrap()
    })
    .await;
    // Three seconds at 25 fps (the last frame may fall on the cut).
    assert!(
        (74..=75).contains(&ffmpeg),
        "ffmpeg decoded {ffmpeg} frames of three live seconds"
    );
    // GStreamer buffers a live stream for seconds before it plays, and its sink's reports
    // coalesce: a decoded frame reaching the sink shows it plays (none does when it cannot).
    assert!(gstreamer >= 1, "GStreamer rendered {gstreamer} frames");
}

#[tokio::test]
async fn hls_starts_a_new_init_segment_after_a_change_of_codec_private_data() {
    // Two producers one after the other, 320x240 then 640x360: the stream's header changes,
    // and the playlist starts a new init segment after a discontinuity (KVS supports this for
    // HLS).
    let server = TestServer::start();
    let (small, before) = stored(&server, "cam", 2).await;
    let large = fixture_sized(2, "640x360");
    put_file(&server, "cam", &large, false).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let url = hls_session(
        &server,
        HlsPlaybackMode::OnDemand,
        ContainerFormat::FragmentedMp4,
        Some(before),
    )
    .await;
    let (base, video) = base_and_video(&url);
    let playlist = fetch(&format!("{base}{video}")).body;
    let maps: Vec<&str> = playlist
        .lines()
        .filter(|l| l.starts_with("#EXT-X-MAP"))
        .collect();
    assert_eq!(maps.len(), 2, "{playlist}");
    assert_ne!(maps[0], maps[1]);
    assert_eq!(
        playlist.matches("#EXT-X-DISCONTINUITY\n").count(),
        1,
        "{playlist}"
    );
    // ffmpeg plays on into the second file. (It decodes 86 of the 100 frames: it keeps the
    // first init segment's decoder across the switch and drops frames until it recovers; see
    // docs/compatibility.md.)
    let first = decoded_frames_of(small.to_str().unwrap(), "v:0");
    let both = first + decoded_frames_of(large.to_str().unwrap(), "v:0");
    let decoded = decoded_frames_of(&url, "v:0");
    assert!(
        decoded > first + 25 && decoded <= both,
        "{decoded} of {both}"
    );
}

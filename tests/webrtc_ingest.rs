//! WebRTC ingestion: a channel linked to a stream (UpdateMediaStorageConfiguration) is recorded
//! by Oxbow's storage session. Headless Chromium pages are the camera and a viewer, with the
//! official KVS WebRTC JS SDK's SignalingClient, the browser's own RTCPeerConnection
//! (relay-only, through Oxbow's TURN) and the AWS SDK for JavaScript's JoinStorageSession and
//! JoinStorageSessionAsViewer, as the JS SDK's example uses them; a reconnect joins with the
//! official Rust SDK. What was recorded is read back with GetMedia, HLS and GetClip and judged
//! by ffprobe. Also: the joins' errors, the viewer seats and seed 004's authorization. The
//! browser test needs Debian's `chromium`, `node` and `tests/browser/setup.sh` (`.ci/run` does
//! all three).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{admin, attach_new_policy, client_for, storage_client_for, TestServer};
use serde_json::{json, Value};

/// A stream with retention and a channel whose media is stored in it; returns their ARNs.
async fn linked(kv: &aws_sdk_kinesisvideo::Client, name: &str) -> (String, String) {
    let stream = kv
        .create_stream()
        .stream_name(name)
        .data_retention_in_hours(1)
        .send()
        .await
        .unwrap()
        .stream_arn
        .unwrap();
    let channel = kv
        .create_signaling_channel()
        .channel_name(name)
        .send()
        .await
        .unwrap()
        .channel_arn
        .unwrap();
    kv.update_media_storage_configuration()
        .channel_arn(&channel)
        .media_storage_configuration(
            aws_sdk_kinesisvideo::types::MediaStorageConfiguration::builder()
                .status(aws_sdk_kinesisvideo::types::MediaStorageConfigurationStatus::Enabled)
                .stream_arn(&stream)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    (stream, channel)
}

/// Fragments ListFragments reports for `stream`, through `url`.
async fn fragment_count(url: &str, stream: &str) -> usize {
    common::list_all_at(url, stream, false)
        .await
        .fragments()
        .len()
}

/// ffprobe's view of a file: its streams and format.
fn probe(path: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-show_format",
        ])
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn a_browser_camera_records_into_a_stream_through_the_storage_session() {
    let dir = common::browser_dir();
    assert!(
        dir.join("node_modules/playwright-core").exists()
            && dir.join("kvs-storage.min.js").exists(),
        "run tests/browser/setup.sh first"
    );
    let server = TestServer::start_with(&["--tls-self-signed", "--http-listen", "127.0.0.1:0"]);
    let plain = server.banner_value("plain HTTP also on ");
    let kv = client_for(&plain, common::ACCESS_KEY, common::SECRET_KEY);
    let (_, channel) = linked(&kv, "webrtc-cam").await;
    let endpoints = kv
        .get_signaling_channel_endpoint()
        .channel_arn(&channel)
        .single_master_channel_endpoint_configuration(
            aws_sdk_kinesisvideo::types::SingleMasterChannelEndpointConfiguration::builder()
                .protocols(aws_sdk_kinesisvideo::types::ChannelProtocol::Wss)
                .protocols(aws_sdk_kinesisvideo::types::ChannelProtocol::Webrtc)
                .role(aws_sdk_kinesisvideo::types::ChannelRole::Master)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let endpoint = |p: &str| {
        endpoints
            .resource_endpoint_list()
            .iter()
            .find(|e| e.protocol().map(|x| x.as_str()) == Some(p))
            .and_then(|e| e.resource_endpoint())
            .unwrap()
            .to_string()
    };
    let (wss, webrtc) = (endpoint("WSS"), endpoint("WEBRTC"));
    assert!(webrtc.starts_with("https://"), "{webrtc}");
    // The first time, camera and viewer join from their pages, after their signaling
    // connections open, with the AWS SDK for JavaScript (as the KVS JS SDK's example does):
    // signed in the browser, across origins (CORS), on the WEBRTC endpoint.
    let record_ms = 6_000;
    let cfg = json!({
        "wss": wss,
        "region": "us-east-1",
        "channelArn": channel,
        "accessKeyId": common::ACCESS_KEY,
        "secretAccessKey": common::SECRET_KEY,
        "iceMaster": common::ice_servers(&plain, &channel, None).await,
        "iceViewer": common::ice_servers(&plain, &channel, None).await,
        "viewer": "viewer-1",
        "webrtc": webrtc,
        "joinFromPage": true,
        "relayOnly": true,
        "recordMs": record_ms,
    });
    let result = record(&cfg).await;
    assert_eq!(result["session"], "AWS_STORAGE_SESSION", "{result}");
    // The camera reached the session through Oxbow's TURN server only.
    assert_eq!(result["local"], "relay", "{result}");
    // The viewer decoded the camera's video, forwarded by the session, as it played.
    let watched = &result["viewer"];
    assert_eq!(watched["from"], "AWS_STORAGE_SESSION", "{result}");
    assert_eq!(
        (
            watched["videoWidth"].as_u64(),
            watched["videoHeight"].as_u64()
        ),
        (Some(640), Some(480)),
        "{result}"
    );
    let (before, after) = (
        watched["framesBefore"].as_u64().unwrap(),
        watched["framesAfter"].as_u64().unwrap(),
    );
    assert!(after > before + 10, "viewer frames {before} -> {after}");
    // And the viewer's microphone reached the camera through the session (50 packets a
    // second while the viewer watched, about three seconds).
    let talked_back = result["audioReceived"].as_u64().unwrap();
    assert!(
        talked_back > 50,
        "the camera received {talked_back} audio packets"
    );
    let recorded_ms = result["recordedMs"].as_f64().unwrap();

    // The camera hung up: the session completes the last fragment.
    let first_fragments = settled_fragments(&plain, "webrtc-cam").await;
    assert!(first_fragments >= 3, "{first_fragments} fragments");

    let mkv = recorded(&plain, "webrtc-cam").await;
    let path = common::temp_dir("webrtc-ingest").join("recorded.mkv");
    std::fs::write(&path, &mkv).unwrap();
    // GetMedia sends one MKV document per fragment; ffmpeg reads them in a row, and notes
    // each new Segment (not an error of the media).
    let p = probe(&path);
    let streams = p["streams"].as_array().unwrap();
    let video = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
    assert_eq!(video["codec_name"], "h264", "{p}");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(640), Some(480))
    );
    let audio = streams.iter().find(|s| s["codec_type"] == "audio").unwrap();
    assert_eq!(audio["codec_name"], "opus", "{p}");
    let audio_frames: u64 = audio["nb_read_frames"].as_str().unwrap().parse().unwrap();
    // The video the camera sent is stored, frame for frame (it sent `framesSent` when it
    // read its statistics, a few more before hanging up), and spans the time it recorded.
    let pts = video_pts(&path);
    let sent = result["framesSent"].as_u64().unwrap();
    assert!(
        pts.len() as u64 >= sent.saturating_sub(2) && pts.len() as u64 <= sent + 10,
        "{} frames stored, {sent} sent",
        pts.len()
    );
    let span_ms = (pts[pts.len() - 1] - pts[0]) * 1000.0;
    assert!(
        (span_ms - recorded_ms).abs() < 1_000.0,
        "recorded {recorded_ms} ms, stored {span_ms} ms of video"
    );
    // Opus at 20 ms a packet over the same time.
    assert!(
        (audio_frames as f64 - span_ms / 20.0).abs() < 75.0,
        "{audio_frames} audio packets in {span_ms} ms"
    );
    // Frame times are the camera's own, strictly increasing but not evenly spaced (a browser
    // encoder sends some frames a few milliseconds apart).
    assert!(
        pts.windows(2).all(|w| w[0] < w[1]),
        "stored frame times not strictly increasing: {pts:?}"
    );
    // Decoded in the file's own millisecond time base: ffmpeg's default rounds each frame to
    // a slot of its guessed frame rate, and calls two frames in one slot an error.
    let decode = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&path)
        .args(["-enc_time_base:v", "-1", "-f", "null", "-"])
        .output()
        .unwrap();
    let errors: Vec<_> = String::from_utf8_lossy(&decode.stderr)
        .lines()
        .filter(|l| !l.contains("unknown-length element with ID 0x18538067"))
        .map(str::to_string)
        .collect();
    assert!(
        decode.status.success() && errors.is_empty(),
        "decoding errors: {errors:?}"
    );

    // Players read the recording too: HLS (fMP4 and MPEG-TS) and GetClip give the video
    // (the Opus track is left out: KVS's playback takes AAC only), every stored frame.
    for container in ["FRAGMENTED_MP4", "MPEG_TS"] {
        let url = hls_url(&plain, "webrtc-cam", container).await;
        let frames = played_video_frames(&url);
        assert_eq!(frames, pts.len(), "HLS {container}: {url}");
    }
    let clip = get_clip(&plain, "webrtc-cam").await;
    let clip_path = path.with_file_name("clip.mp4");
    std::fs::write(&clip_path, &clip).unwrap();
    assert_eq!(
        played_video_frames(clip_path.to_str().unwrap()),
        pts.len(),
        "GetClip"
    );

    // The camera comes back (a reconnect): it joins again — this time through the Rust SDK,
    // before its signaling connection opens (the offer waits in the channel's message TTL) —
    // and recording resumes in the same stream, after what it recorded before.
    storage_client_for(&plain, common::ACCESS_KEY, common::SECRET_KEY)
        .join_storage_session()
        .channel_arn(&channel)
        .send()
        .await
        .expect("JoinStorageSession again");
    let mut cfg = cfg;
    cfg["recordMs"] = json!(3_000);
    cfg["viewer"] = Value::Null;
    cfg["joinFromPage"] = json!(false);
    let again = record(&cfg).await;
    assert_eq!(
        again["audioReceived"], 0,
        "no viewer, nothing to hear: {again}"
    );
    assert!(settled_fragments(&plain, "webrtc-cam").await > first_fragments);
    let mkv = recorded(&plain, "webrtc-cam").await;
    std::fs::write(&path, &mkv).unwrap();
    let all = video_pts(&path);
    let sent_again = again["framesSent"].as_u64().unwrap() as usize;
    assert!(
        all.len() + 2 >= pts.len() + sent_again,
        "{} frames after the reconnect, {} before plus {sent_again} sent",
        all.len(),
        pts.len()
    );
    assert!(
        all.windows(2).all(|w| w[1] > w[0]),
        "timestamps go forward across the reconnect"
    );
}

/// Everything GetMedia gives from the stream's start; it ends once it has sent what was
/// recorded (no producer is live).
async fn recorded(url: &str, stream: &str) -> Vec<u8> {
    let earliest = common::selector(aws_sdk_kinesisvideomedia::types::StartSelectorType::Earliest);
    tokio::time::timeout(
        Duration::from_secs(30),
        common::get_media_at(url, stream, earliest),
    )
    .await
    .expect("GetMedia ends once it has sent what was recorded")
}

/// Runs the camera page (and the viewer's, if `cfg` names one) with `cfg`; its result.
async fn record(cfg: &Value) -> Value {
    common::run_browser_script("ingest.mjs", "OXBOW_INGEST", cfg, Duration::from_secs(120)).await
}

/// The fragment count once it has stopped growing for 5 s (the session has completed the
/// last fragment of a camera that hung up).
async fn settled_fragments(url: &str, stream: &str) -> usize {
    let mut last = usize::MAX;
    let mut since = std::time::Instant::now();
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let n = fragment_count(url, stream).await;
        if n != last {
            (last, since) = (n, std::time::Instant::now());
        } else if since.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    last
}

/// An ON_DEMAND HLS session over the last ten minutes of `stream`.
async fn hls_url(url: &str, stream: &str, container: &str) -> String {
    use aws_sdk_kinesisvideoarchivedmedia::primitives::DateTime;
    use aws_sdk_kinesisvideoarchivedmedia::types::*;
    let now = common::now_ms() as i64;
    common::archive_sdk_for(url)
        .get_hls_streaming_session_url()
        .stream_name(stream)
        .playback_mode(HlsPlaybackMode::OnDemand)
        .container_format(ContainerFormat::from(container))
        .hls_fragment_selector(
            HlsFragmentSelector::builder()
                .fragment_selector_type(HlsFragmentSelectorType::ServerTimestamp)
                .timestamp_range(
                    HlsTimestampRange::builder()
                        .start_timestamp(DateTime::from_millis(now - 600_000))
                        .end_timestamp(DateTime::from_millis(now))
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap()
        .hls_streaming_session_url
        .unwrap()
}

/// GetClip over the last ten minutes of `stream`.
async fn get_clip(url: &str, stream: &str) -> Vec<u8> {
    use aws_sdk_kinesisvideoarchivedmedia::primitives::DateTime;
    use aws_sdk_kinesisvideoarchivedmedia::types::*;
    let now = common::now_ms() as i64;
    let out = common::archive_sdk_for(url)
        .get_clip()
        .stream_name(stream)
        .clip_fragment_selector(
            ClipFragmentSelector::builder()
                .fragment_selector_type(ClipFragmentSelectorType::ServerTimestamp)
                .timestamp_range(
                    ClipTimestampRange::builder()
                        .start_timestamp(DateTime::from_millis(now - 600_000))
                        .end_timestamp(DateTime::from_millis(now))
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    out.payload.collect().await.unwrap().into_bytes().to_vec()
}

/// Video frames ffprobe decodes from a file or URL (self-signed TLS is not verified).
fn played_video_frames(input: &str) -> usize {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-count_frames"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(input)
        .output()
        .expect("ffprobe");
    // (a master playlist may list the stream once per variant: the first is read)
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().trim_end_matches(','))
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .parse()
        .unwrap_or_else(|_| {
            panic!(
                "{input}: [{}] {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// The presentation times (s) of the video packets of a file, in order.
fn video_pts(path: &Path) -> Vec<f64> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v",
            "-show_entries",
            "packet=pts_time",
        ])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect()
}

/// Seed 004's policy for a master participant with ingestion, with or without PutMedia on
/// the stream.
fn seed_004_policy(channel: &str, stream: &str, put_media: bool) -> Value {
    let mut stream_actions = vec![
        "kinesisvideo:GetDataEndpoint",
        "kinesisvideo:DescribeStream",
    ];
    if put_media {
        stream_actions.push("kinesisvideo:PutMedia");
    }
    json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": [
            "kinesisvideo:DescribeSignalingChannel", "kinesisvideo:DescribeMediaStorageConfiguration",
            "kinesisvideo:GetSignalingChannelEndpoint", "kinesisvideo:GetIceServerConfig",
            "kinesisvideo:ConnectAsMaster", "kinesisvideo:JoinStorageSession"],
         "Resource": channel},
        {"Effect": "Allow", "Action": stream_actions, "Resource": stream}]})
}

async fn user_with(server: &TestServer, name: &str, policy: &Value) -> (String, String) {
    admin(server, "CreateUser", json!({ "UserName": name })).await;
    attach_new_policy(server, name, policy, "UserName", name).await;
    let k = admin(server, "CreateAccessKey", json!({ "UserName": name })).await;
    (
        k["AccessKey"]["AccessKeyId"].as_str().unwrap().into(),
        k["AccessKey"]["SecretAccessKey"].as_str().unwrap().into(),
    )
}

/// The error code and HTTP status of a failed JoinStorageSession.
async fn join_error(url: &str, key: &str, secret: &str, channel: &str) -> (String, u16) {
    let e = storage_client_for(url, key, secret)
        .join_storage_session()
        .channel_arn(channel)
        .send()
        .await
        .expect_err("JoinStorageSession should fail");
    let status = e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    let code = aws_sdk_kinesisvideowebrtcstorage::error::ProvideErrorMetadata::code(&e)
        .unwrap_or_default()
        .to_string();
    (code, status)
}

#[tokio::test]
async fn join_storage_session_errors_and_seed_004_authorization() {
    let server = TestServer::start();
    let kv = server.client();
    let (stream, channel) = linked(&kv, "seed4-cam").await;
    let root = (common::ACCESS_KEY, common::SECRET_KEY);

    // A channel that does not exist, a malformed ARN, a channel without storage.
    let missing = channel.replace("seed4-cam", "no-such-channel");
    assert_eq!(
        join_error(&server.url, root.0, root.1, &missing).await,
        ("ResourceNotFoundException".into(), 404)
    );
    assert_eq!(
        join_error(&server.url, root.0, root.1, "arn:aws:nope").await,
        ("InvalidArgumentException".into(), 400)
    );
    let plain_channel = kv
        .create_signaling_channel()
        .channel_name("not-stored")
        .send()
        .await
        .unwrap()
        .channel_arn
        .unwrap();
    assert_eq!(
        join_error(&server.url, root.0, root.1, &plain_channel).await,
        ("InvalidArgumentException".into(), 400)
    );

    // Seed 004's policy as written: the join is allowed.
    let (key, secret) =
        user_with(&server, "cam-ok", &seed_004_policy(&channel, &stream, true)).await;
    storage_client_for(&server.url, &key, &secret)
        .join_storage_session()
        .channel_arn(&channel)
        .send()
        .await
        .expect("seed 004's policy allows the join");
    // Without PutMedia on the stream the recording could not be written on its behalf: 403.
    let (key, secret) = user_with(
        &server,
        "cam-no-put",
        &seed_004_policy(&channel, &stream, false),
    )
    .await;
    assert_eq!(
        join_error(&server.url, &key, &secret, &channel).await,
        ("AccessDeniedException".into(), 403)
    );
    // Without JoinStorageSession on the channel: 403 before anything is looked up.
    let only_stream = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "kinesisvideo:*", "Resource": stream}]});
    let (key, secret) = user_with(&server, "cam-no-join", &only_stream).await;
    assert_eq!(
        join_error(&server.url, &key, &secret, &channel).await,
        ("AccessDeniedException".into(), 403)
    );

    // Viewers through the session: three seats; a fourth is refused with the message the JS
    // SDK's example looks for; the same client id joining again keeps its seat.
    let viewer = |id: &'static str| {
        let (url, channel) = (server.url.clone(), channel.clone());
        async move {
            storage_client_for(&url, root.0, root.1)
                .join_storage_session_as_viewer()
                .channel_arn(&channel)
                .client_id(id)
                .send()
                .await
        }
    };
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    for id in ["v1", "v2", "v3", "v2"] {
        viewer(id).await.unwrap_or_else(|e| panic!("{id}: {e:?}"));
    }
    let refused = viewer("v4").await.expect_err("a fourth viewer");
    assert_eq!(
        aws_sdk_kinesisvideowebrtcstorage::error::ProvideErrorMetadata::code(&refused),
        Some("ClientLimitExceededException")
    );
    assert!(
        aws_sdk_kinesisvideowebrtcstorage::error::ProvideErrorMetadata::message(&refused)
            .unwrap()
            .contains("maximum number of viewers connected to the session"),
        "{refused:?}"
    );
    // The C SDK's form of a viewer's join (JoinStorageSession with a clientId) is a viewer's
    // join too: the seats are still full. (Joins are limited to 5 a second per channel.)
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let r = common::post_ok(
        &server,
        "/joinStorageSession",
        &json!({"channelArn": channel, "clientId": "v5"}).to_string(),
    );
    assert_eq!(
        (r.status, r.error_type()),
        (400, "ClientLimitExceededException")
    );
    // A client id must be given to JoinStorageSessionAsViewer, and not be one of Oxbow's.
    let r = common::post_ok(
        &server,
        "/joinStorageSessionAsViewer",
        &json!({"channelArn": channel}).to_string(),
    );
    assert_eq!(
        (r.status, r.error_type()),
        (400, "InvalidArgumentException")
    );
    let r = common::post_ok(
        &server,
        "/joinStorageSessionAsViewer",
        &json!({"channelArn": channel, "clientId": "AWS_STORAGE_SESSION"}).to_string(),
    );
    assert_eq!(
        (r.status, r.error_type()),
        (400, "InvalidArgumentException")
    );

    // Disabling storage ends the session; a join then says the channel does not store.
    kv.update_media_storage_configuration()
        .channel_arn(&channel)
        .media_storage_configuration(
            aws_sdk_kinesisvideo::types::MediaStorageConfiguration::builder()
                .status(aws_sdk_kinesisvideo::types::MediaStorageConfigurationStatus::Disabled)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        join_error(&server.url, root.0, root.1, &channel).await,
        ("InvalidArgumentException".into(), 400)
    );
}

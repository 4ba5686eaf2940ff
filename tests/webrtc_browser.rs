//! The official KVS WebRTC JavaScript SDK (its browser bundle) in two headless Chromium pages,
//! master and viewer, connecting through Oxbow: signaling over `wss://` with the self-signed
//! certificate, ICE forced to relay so the media crosses Oxbow's TURN server. The viewer must
//! decode video (its width set and its frame count rising) and a data channel message must go
//! both ways. Needs Debian's `chromium`, `node` and `tests/browser/setup.sh` (`.ci/run` does
//! all three).

mod common;

use std::path::Path;
use std::time::Duration;

use common::{client_for, TestServer};
use serde_json::json;

#[tokio::test]
async fn the_kvs_js_sdk_streams_video_between_two_browsers_through_oxbow() {
    let dir = common::browser_dir();
    assert!(
        dir.join("node_modules/playwright-core").exists() && dir.join("kvs-webrtc.min.js").exists(),
        "run tests/browser/setup.sh first (it installs playwright-core and the KVS JS SDK bundle)"
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "install Debian's chromium"
    );
    let server = TestServer::start_with(&["--tls-self-signed", "--http-listen", "127.0.0.1:0"]);
    let plain = server.banner_value("plain HTTP also on ");
    let kv = client_for(&plain, common::ACCESS_KEY, common::SECRET_KEY);
    let arn = kv
        .create_signaling_channel()
        .channel_name("browser-door")
        .send()
        .await
        .unwrap()
        .channel_arn
        .unwrap();
    // Where the SDKs are told to connect: the WSS endpoint of GetSignalingChannelEndpoint.
    let endpoints = kv
        .get_signaling_channel_endpoint()
        .channel_arn(&arn)
        .single_master_channel_endpoint_configuration(
            aws_sdk_kinesisvideo::types::SingleMasterChannelEndpointConfiguration::builder()
                .protocols(aws_sdk_kinesisvideo::types::ChannelProtocol::Wss)
                .role(aws_sdk_kinesisvideo::types::ChannelRole::Viewer)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let wss = endpoints.resource_endpoint_list()[0]
        .resource_endpoint()
        .unwrap()
        .to_string();
    assert!(wss.starts_with("wss://"), "{wss}");
    let cfg = json!({
        "wss": wss,
        "region": "us-east-1",
        "channelArn": arn,
        "accessKeyId": common::ACCESS_KEY,
        "secretAccessKey": common::SECRET_KEY,
        "iceMaster": common::ice_servers(&plain, &arn, Some("master")).await,
        "iceViewer": common::ice_servers(&plain, &arn, Some("viewer-1")).await,
    });
    let result =
        common::run_browser_script("webrtc.mjs", "OXBOW_WEBRTC", &cfg, Duration::from_secs(120))
            .await;
    assert_eq!(result["videoWidth"], 320, "{result}");
    let (before, after) = (
        result["framesBefore"].as_u64().unwrap(),
        result["framesAfter"].as_u64().unwrap(),
    );
    assert!(
        before > 0 && after > before + 10,
        "frames {before} -> {after}: {result}"
    );
    assert_eq!(result["fromMaster"], "hello from master", "{result}");
    assert_eq!(
        result["masterReceived"],
        json!(["hello from viewer"]),
        "{result}"
    );
    // Both ends of the path in use are relay candidates: the media crossed Oxbow's TURN server.
    assert_eq!(
        (result["local"].clone(), result["remote"].clone()),
        (json!("relay"), json!("relay")),
        "{result}"
    );
}

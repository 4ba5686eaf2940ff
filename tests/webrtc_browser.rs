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
use serde_json::{json, Value};

fn browser_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser")
}

/// The IceServer list GetIceServerConfig gives one peer, as RTCPeerConnection takes it.
async fn ice_servers(plain: &str, arn: &str, client: &str) -> Value {
    let out = common::signaling_client_for(plain)
        .get_ice_server_config()
        .channel_arn(arn)
        .client_id(client)
        .send()
        .await
        .unwrap();
    Value::Array(
        out.ice_server_list()
            .iter()
            .map(
                |s| json!({"urls": s.uris(), "username": s.username(), "credential": s.password()}),
            )
            .collect(),
    )
}

#[tokio::test]
async fn the_kvs_js_sdk_streams_video_between_two_browsers_through_oxbow() {
    let dir = browser_dir();
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
        "iceMaster": ice_servers(&plain, &arn, "master").await,
        "iceViewer": ice_servers(&plain, &arn, "viewer-1").await,
    });
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(dir.join("webrtc.mjs"))
            .env("OXBOW_WEBRTC", cfg.to_string())
            .output()
            .expect("node")
    });
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the browsers finish in time")
        .unwrap();
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let result: Value = log
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .map(|r| serde_json::from_str(r).unwrap())
        .unwrap_or_else(|| panic!("{log}"));
    println!("{result}");
    assert_eq!(result["videoWidth"], 320, "{log}");
    let (before, after) = (
        result["framesBefore"].as_u64().unwrap(),
        result["framesAfter"].as_u64().unwrap(),
    );
    assert!(
        before > 0 && after > before + 10,
        "frames {before} -> {after}: {log}"
    );
    assert_eq!(result["fromMaster"], "hello from master", "{log}");
    assert_eq!(
        result["masterReceived"],
        json!(["hello from viewer"]),
        "{log}"
    );
    // Both ends of the path in use are relay candidates: the media crossed Oxbow's TURN server.
    assert_eq!(
        (result["local"].clone(), result["remote"].clone()),
        (json!("relay"), json!("relay")),
        "{log}"
    );
}

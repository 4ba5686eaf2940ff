//! The official KVS WebRTC JavaScript SDK (its browser bundle) in two headless Chromium pages,
//! master and viewer, connecting through Oxbow: signaling over `wss://` with the self-signed
//! certificate, ICE forced to relay so the media crosses Oxbow's TURN server. The viewer must
//! decode video (its width set and its frame count rising) and a data channel message must go
//! both ways. Needs Debian's `chromium`, `node` and `tests/browser/setup.sh` (`.ci/run` does
//! all three).

mod common;
#[path = "support/postgres.rs"]
mod pg;

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
    let wss = common::wss_endpoint(&kv, &arn, "VIEWER").await;
    assert!(wss.starts_with("wss://"), "{wss}");
    two_browsers(&wss, &plain, &arn).await;
}

/// Master and viewer pages with the KVS JS SDK on signaling endpoint `wss`, ICE servers from
/// `plain` (the same node's plain-HTTP listener): video and data-channel messages must flow
/// through Oxbow's TURN server.
async fn two_browsers(wss: &str, plain: &str, arn: &str) {
    let cfg = json!({
        "wss": wss,
        "region": "us-east-1",
        "channelArn": arn,
        "accessKeyId": common::ACCESS_KEY,
        "secretAccessKey": common::SECRET_KEY,
        "iceMaster": common::ice_servers(plain, arn, Some("master")).await,
        "iceViewer": common::ice_servers(plain, arn, Some("viewer-1")).await,
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

/// The same pair on a three-node cluster (one PostgreSQL catalog): the master's endpoint comes
/// from one node, the viewer's from another, and both name the node that relays the channel,
/// where the SDKs meet.
#[tokio::test]
async fn the_kvs_js_sdk_meets_through_a_cluster() {
    let dir = common::browser_dir();
    assert!(
        dir.join("kvs-webrtc.min.js").exists(),
        "run tests/browser/setup.sh first"
    );
    let pg = pg::PgServer::start();
    let catalog = pg.database("oxbow");
    let args = [
        "--tls-self-signed",
        "--http-listen",
        "127.0.0.1:0",
        "--catalog",
        catalog.as_str(),
    ];
    let nodes: Vec<TestServer> = ["js-a", "js-b", "js-c"]
        .into_iter()
        .map(|n| TestServer::start_in(&common::temp_dir(n), &args, true))
        .collect();
    let plain: Vec<String> = nodes
        .iter()
        .map(|n| n.banner_value("plain HTTP also on "))
        .collect();
    let client = |i: usize| client_for(&plain[i], common::ACCESS_KEY, common::SECRET_KEY);
    let arn = client(0)
        .create_signaling_channel()
        .channel_name("cluster-door")
        .send()
        .await
        .unwrap()
        .channel_arn
        .unwrap();
    // The master asks node B first, so B relays the channel; the viewer asks node C.
    let for_master = common::wss_endpoint(&client(1), &arn, "MASTER").await;
    let for_viewer = common::wss_endpoint(&client(2), &arn, "VIEWER").await;
    assert!(for_master.starts_with("wss://"), "{for_master}");
    assert_eq!(for_viewer, for_master, "both are sent to the relaying node");
    assert_eq!(
        for_master.trim_start_matches("wss://"),
        nodes[1].url.trim_start_matches("https://"),
        "node B relays the channel"
    );
    two_browsers(&for_master, &plain[1], &arn).await;
}

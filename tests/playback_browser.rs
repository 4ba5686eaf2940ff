//! hls.js and dash.js (from npm) in headless Chromium play a live stream through the session
//! URLs the official SDK returns, from a page on another origin. The test checks that video
//! decodes (its width set, frames decoded, the playhead advancing) and records how far behind
//! the producer the player runs. Needs Debian's `chromium`, `node` and `tests/browser/setup.sh`
//! (`.ci/run` does all three).

mod common;

use std::time::Duration;

use aws_sdk_kinesisvideoarchivedmedia::types::{
    DashDisplayFragmentTimestamp, DashFragmentSelector, DashFragmentSelectorType,
    HlsDisplayFragmentTimestamp, HlsFragmentSelector, HlsFragmentSelectorType,
};
use common::*;
use serde_json::{json, Value};

/// Runs the page's player on `url`; returns its report.
async fn play(kind: &str, url: &str, seconds: u32, low_latency: bool) -> Value {
    let dir = browser_dir();
    assert!(
        dir.join("node_modules/playwright-core").exists() && dir.join("hls.min.js").exists(),
        "run tests/browser/setup.sh first (it installs playwright-core, hls.js and dash.js)"
    );
    let cfg = json!({"kind": kind, "url": url, "seconds": seconds, "lowLatency": low_latency});
    run_browser_script("players.mjs", "OXBOW_PLAYER", &cfg, Duration::from_secs(90)).await
}

fn check_played(kind: &str, r: &Value) {
    println!("{kind}: {r}");
    assert_eq!(
        (r["videoWidth"].as_u64(), r["videoHeight"].as_u64()),
        (Some(320), Some(240)),
        "{r}"
    );
    let advanced = r["endTime"].as_f64().unwrap() - r["startTime"].as_f64().unwrap();
    assert!(
        advanced > 3.0,
        "{kind}: the playhead moved {advanced} s in 5 s: {r}"
    );
    assert!(r["framesDecoded"].as_u64().unwrap() > 60, "{r}");
    assert_eq!(r["errors"], json!([]), "{r}");
}

#[tokio::test]
async fn hls_js_plays_a_live_stream() {
    let server = TestServer::start();
    let r = while_producing(&server, "live-hls", async {
        let url = archive_sdk(&server)
            .get_hls_streaming_session_url()
            .stream_name("live-hls")
            .hls_fragment_selector(
                HlsFragmentSelector::builder()
                    .fragment_selector_type(HlsFragmentSelectorType::ProducerTimestamp)
                    .build(),
            )
            .display_fragment_timestamp(HlsDisplayFragmentTimestamp::Always)
            .send()
            .await
            .unwrap()
            .hls_streaming_session_url
            .unwrap();
        play("hls", &url, 5, true).await
    })
    .await;
    check_played("hls.js", &r);
    // The producer stamps frames with the wall clock as it sends them: the program dates
    // tell how far behind it the player is.
    let latency = r["latencyMedianMs"]
        .as_i64()
        .expect("hls.js knows the playhead's date");
    assert!((0..10_000).contains(&latency), "{r}");
}

#[tokio::test]
async fn dash_js_plays_a_live_stream() {
    let server = TestServer::start();
    let r = while_producing(&server, "live-dash", async {
        let url = archive_sdk(&server)
            .get_dash_streaming_session_url()
            .stream_name("live-dash")
            .dash_fragment_selector(
                DashFragmentSelector::builder()
                    .fragment_selector_type(DashFragmentSelectorType::ProducerTimestamp)
                    .build(),
            )
            .display_fragment_timestamp(DashDisplayFragmentTimestamp::Always)
            .send()
            .await
            .unwrap()
            .dash_streaming_session_url
            .unwrap();
        play("dash", &url, 5, false).await
    })
    .await;
    check_played("dash.js", &r);
    // Segment times are the producer's clock: dash.js's playhead in UTC is its latency.
    let latency = r["latencyMedianMs"]
        .as_f64()
        .expect("dash.js knows the playhead's time");
    assert!((0.0..10_000.0).contains(&latency), "{r}");
}

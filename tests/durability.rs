//! Nothing acknowledged as PERSISTED is lost when the server is killed with SIGKILL in the
//! middle of ingest; the producer reconnects to the restarted server and resumes without
//! losing buffered frames.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use oxbow_client::{Ack, AckEvent};

/// The frame elements of each Cluster of an MKV file, by Cluster timecode.
fn clusters(mkv: &[u8]) -> HashMap<u64, Vec<Bytes>> {
    let mut out: HashMap<u64, Vec<Bytes>> = HashMap::new();
    let mut current = 0;
    for e in events(mkv) {
        match e {
            oxbow_mkv::Event::ClusterStart { timecode } => current = timecode,
            oxbow_mkv::Event::Frame(f) => out.entry(current).or_default().push(f.element),
            _ => {}
        }
    }
    out
}

#[tokio::test]
async fn kill_9_mid_ingest_loses_no_persisted_fragment() {
    let dir = temp_dir("kill9");
    let listen = format!("127.0.0.1:{}", free_port());
    let args = ["--listen", listen.as_str()];
    let server = TestServer::start_in(&dir, &args, true);
    server
        .client()
        .create_stream()
        .stream_name("cam")
        .data_retention_in_hours(2)
        .send()
        .await
        .unwrap();
    let fixture = fixture(10);
    let original = clusters(&std::fs::read(&fixture).unwrap());

    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let producer = {
        let client = media_client(&server);
        let acks = Arc::clone(&acks);
        let fixture = fixture.clone();
        tokio::spawn(async move {
            let mut options = oxbow_client::PutOptions::new("cam");
            options.realtime = true;
            let file = tokio::fs::File::open(fixture).await.unwrap();
            oxbow_client::Producer::new(client, options)
                .run(file, move |a| acks.lock().unwrap().push(a.clone()))
                .await
        })
    };
    // Let a few fragments persist, then kill the server without warning.
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let persisted = acks
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.event == AckEvent::Persisted)
            .count();
        if persisted >= 3 {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(400)).await; // mid-fragment
    server.kill9();
    let persisted_before: Vec<(String, u64)> = acks
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.event == AckEvent::Persisted)
        .map(|a| {
            (
                a.fragment_number.clone().unwrap(),
                a.fragment_timecode.unwrap(),
            )
        })
        .collect();
    assert!(persisted_before.len() >= 3);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let server = TestServer::start_in(&dir, &args, true);
    let summary = producer
        .await
        .unwrap()
        .expect("the producer resumes after the restart");
    assert!(summary.reconnects >= 1, "{summary:?}");
    assert_eq!(summary.unacknowledged, 0, "{summary:?}");

    // Every fragment acknowledged as persisted before the kill is there, byte for byte.
    let numbers: Vec<String> = persisted_before.iter().map(|(n, _)| n.clone()).collect();
    let out = archive_sdk(&server)
        .get_media_for_fragment_list()
        .stream_name("cam")
        .set_fragments(Some(numbers))
        .send()
        .await
        .unwrap();
    let body = out.payload.collect().await.unwrap().into_bytes();
    let tagged = tagged_frames(&body);
    for (number, timecode) in &persisted_before {
        let got: Vec<Bytes> = tagged
            .iter()
            .filter(|(n, _)| n == number)
            .map(|(_, f)| f.clone())
            .collect();
        assert_eq!(
            &got, &original[timecode],
            "fragment {number} (timecode {timecode})"
        );
    }
    // And after the resume, the stream holds every frame of the input.
    let all = media_sdk(&server)
        .get_media()
        .stream_name("cam")
        .start_selector(
            aws_sdk_kinesisvideomedia::types::StartSelector::builder()
                .start_selector_type(aws_sdk_kinesisvideomedia::types::StartSelectorType::Earliest)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let stored = frames(&all.payload.collect().await.unwrap().into_bytes());
    for (tc, fr) in &original {
        for f in fr {
            assert!(stored.contains(f), "a frame of cluster {tc} is missing");
        }
    }
}

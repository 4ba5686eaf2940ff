//! PutMedia bodies that are not valid MKV get the documented error ack and store nothing;
//! a body that goes on with Clusters under the stream's known header (what the KVS producer
//! SDK sends after reconnecting) is accepted; a session that ends (idle, shutdown) ends its
//! connection too, so the producer reconnects at once.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;
use oxbow_client::AckEvent;
use oxbow_mkv::{ids, write};

fn error_ids(acks: &[oxbow_client::Ack]) -> Vec<u64> {
    acks.iter()
        .filter(|a| a.event == AckEvent::Error)
        .filter_map(|a| a.error_id)
        .collect()
}

fn count(acks: &[oxbow_client::Ack], event: AckEvent) -> usize {
    acks.iter().filter(|a| a.event == event).count()
}

async fn create(server: &TestServer, name: &str) {
    create_stream_with(server, name, 1).await;
}

/// Each malformed body: exactly one error ack with the documented id, and nothing stored.
#[tokio::test]
async fn malformed_bodies_get_error_acks_and_store_nothing() {
    let server = TestServer::start_with(&[
        "--media-tps-per-stream",
        "0",
        "--put-max-fragment-bytes",
        "1000000",
        "--put-max-bytes-per-sec",
        "0",
    ]);
    let t = now_ms();
    let header = mkv_start(AV);
    let with = |tail: Vec<u8>| {
        let mut b = header.clone();
        b.extend(tail);
        b
    };
    let mut huge_scale = write::ebml_header();
    huge_scale.extend(write::unknown_size(ids::SEGMENT));
    huge_scale.extend(write::info(u64::MAX, "test"));
    huge_scale.extend(write::tracks(AV));
    huge_scale.extend(cluster(1, 2, 10));
    let frame = |bytes: usize| {
        let mut c = write::unknown_size(ids::CLUSTER);
        c.extend(write::uint(ids::TIMECODE, t));
        c.extend(write::simple_block(1, 0, true, &vec![1u8; bytes]));
        c
    };
    let cases: Vec<(&str, Vec<u8>, u64)> = vec![
        ("truncated EBML header", header[..10].to_vec(), 4006),
        ("not MKV at all", b"GET / HTTP/1.1\r\n\r\n".repeat(8), 4006),
        (
            "bytes after a valid header",
            with((0..200u32).map(|i| (i * 37 % 251) as u8).collect()),
            4006,
        ),
        (
            "zero-size cluster",
            with(vec![0x1F, 0x43, 0xB6, 0x75, 0x80]),
            4006,
        ),
        ("TimecodeScale 2^64-1", huge_scale, 4006),
        (
            "Cluster Timecode 2^64-1",
            with(cluster(u64::MAX, 2, 10)),
            4007,
        ),
        (
            "a frame over the fragment limit",
            with(frame(1_500_000)),
            4001,
        ),
        (
            "a frame far over the fragment and parser limits",
            with(frame(70 << 20)),
            4001,
        ),
    ];
    for (i, (what, body, id)) in cases.into_iter().enumerate() {
        let name = format!("bad-{i}");
        create(&server, &name).await;
        let acks = put_raw(&server, &name, vec![(0, body)]).await;
        assert_eq!(error_ids(&acks), [id], "{what}: {acks:?}");
        assert_eq!(count(&acks, AckEvent::Persisted), 0, "{what}");
        let listed = list_all(&server, &name, false).await;
        assert!(listed.fragments().is_empty(), "{what}: stored {listed:?}");
    }
}

/// After a session that sent the header, a new session may go on with Clusters (or Tags
/// then Clusters) and no EBML header: they are stored under the stream's header. Without any
/// earlier header, such a body is invalid.
#[tokio::test]
async fn a_reconnecting_producer_may_omit_the_header() {
    let server = TestServer::start_with(&["--media-tps-per-stream", "0"]);
    create(&server, "resume").await;
    let t = now_ms();
    let mut first = mkv_start(AV);
    first.extend(cluster(t, 3, 100));
    first.extend(cluster(t + 1000, 3, 100));
    let acks = put_raw(&server, "resume", vec![(0, first)]).await;
    assert_eq!(count(&acks, AckEvent::Persisted), 2, "{acks:?}");

    let mut bare = cluster(t + 2000, 3, 100);
    bare.extend(cluster(t + 3000, 3, 100));
    let acks = put_raw(&server, "resume", vec![(0, bare)]).await;
    assert_eq!(count(&acks, AckEvent::Persisted), 2, "{acks:?}");
    assert!(error_ids(&acks).is_empty());

    let mut tagged = write::tags(&[("camera", "porch")]);
    tagged.extend(cluster(t + 4000, 3, 100));
    let acks = put_raw(&server, "resume", vec![(0, tagged)]).await;
    assert_eq!(count(&acks, AckEvent::Persisted), 1, "{acks:?}");

    // GetMedia reads all five back, each chunk with the stream's header.
    let earliest = selector(aws_sdk_kinesisvideomedia::types::StartSelectorType::Earliest);
    let media = get_media(&server, "resume", earliest).await;
    assert_eq!(frames(&media).len(), 5 * 6);
    let tracks_seen = events(&media)
        .iter()
        .filter(|e| matches!(e, oxbow_mkv::Event::Header(_)))
        .count();
    assert_eq!(tracks_seen, 5, "every chunk carries the header");
    assert!(all_tags(&media).contains(&("camera".to_string(), "porch".to_string())));

    create(&server, "fresh").await;
    let acks = put_raw(&server, "fresh", vec![(0, cluster(t, 3, 100))]).await;
    assert_eq!(error_ids(&acks), [4006], "{acks:?}");
}

/// A signed PutMedia over a raw socket whose chunked body sends `first` and then pauses, as
/// the producer SDK pauses its upload; returns the socket.
fn paused_put(server: &TestServer, stream: &str, first: &[u8]) -> std::net::TcpStream {
    let addr = server.addr();
    let start = format!("{:.3}", now_ms() as f64 / 1000.0);
    let extra = [
        ("x-amzn-stream-name", stream),
        ("x-amzn-fragment-timecode-type", "ABSOLUTE"),
        ("x-amzn-producer-start-timestamp", start.as_str()),
    ];
    // As curl (and so the KVS C producer SDK) sends an upload of unknown length.
    let head = signed_head(
        "POST",
        &addr,
        "/putMedia",
        &extra,
        b"",
        &Signing::default(),
        "transfer-encoding: chunked\nexpect: 100-continue",
    );
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(wire(&head).as_bytes()).unwrap();
    s.write_all(format!("{:x}\r\n", first.len()).as_bytes())
        .unwrap();
    s.write_all(first).unwrap();
    s.write_all(b"\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    s
}

/// Reads until the server closes; panics if it does not within the read timeout.
fn read_until_closed(mut s: std::net::TcpStream) -> String {
    let mut got = Vec::new();
    s.read_to_end(&mut got)
        .expect("the server closes the connection");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn an_idle_session_ends_its_connection() {
    let server =
        TestServer::start_with(&["--put-idle-close-ms", "1000", "--put-idle-ack-ms", "300"]);
    create(&server, "idle").await;
    let mut first = mkv_start(AV);
    first.extend(cluster(now_ms(), 3, 100));
    let s = paused_put(&server, "idle", &first);
    let started = Instant::now();
    let text = read_until_closed(s);
    let waited = started.elapsed();
    assert!(text.contains("\"IDLE\""), "{text}");
    assert!(text.contains("0\r\n\r\n"), "the ack stream ends: {text}");
    assert!(waited < Duration::from_secs(4), "{waited:?}");
}

#[tokio::test]
async fn shutdown_ends_open_sessions_at_once() {
    let server = TestServer::start();
    create(&server, "drain").await;
    let mut first = mkv_start(AV);
    first.extend(cluster(now_ms(), 3, 100));
    let s = paused_put(&server, "drain", &first);
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let reader = std::thread::spawn(move || read_until_closed(s));
    assert!(server.stop().success());
    let text = reader.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(text.contains("BUFFERING"), "{text}");
}

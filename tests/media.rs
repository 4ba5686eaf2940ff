//! Media ingest and reads with real H.264/AAC: PutMedia through `oxbow-client` (as the KVS
//! producer SDK speaks it), reads through the official `aws-sdk-kinesisvideomedia` and
//! `aws-sdk-kinesisvideoarchivedmedia` crates, every ack error class, and MKV that ffprobe and
//! mkvinfo accept.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_kinesisvideoarchivedmedia::primitives::DateTime;
use aws_sdk_kinesisvideoarchivedmedia::types::{
    FragmentSelector, FragmentSelectorType, TimestampRange,
};
use aws_sdk_kinesisvideomedia::types::{StartSelector, StartSelectorType};
use bytes::Bytes;
use common::*;
use oxbow_client::{Ack, AckEvent};
use oxbow_mkv::{ids, write};
use tokio::sync::mpsc;

async fn create(server: &TestServer, name: &str, retention: i32) {
    create_stream_with(server, name, retention).await;
}

/// BUFFERING, RECEIVED, PERSISTED for every fragment, in that order, numbers increasing.
fn check_ack_sequence(acks: &[Ack]) -> Vec<String> {
    let mut numbers: Vec<String> = Vec::new();
    for a in acks.iter().filter(|a| a.event == AckEvent::Buffering) {
        numbers.push(a.fragment_number.clone().unwrap());
    }
    for n in &numbers {
        let kinds: Vec<AckEvent> = acks
            .iter()
            .filter(|a| a.fragment_number.as_deref() == Some(n))
            .map(|a| a.event)
            .collect();
        assert_eq!(
            kinds,
            [AckEvent::Buffering, AckEvent::Received, AckEvent::Persisted],
            "{n}"
        );
    }
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "fragment numbers increase"
    );
    assert!(numbers
        .iter()
        .all(|n| n.len() == 47 && n.bytes().all(|b| b.is_ascii_digit())));
    numbers
}

#[tokio::test]
async fn put_then_read_back_byte_identical() {
    let server = TestServer::start();
    create(&server, "cam", 24).await;
    let fixture = fixture(6);
    let (acks, summary) = put_file(&server, "cam", &fixture, false).await;
    assert_eq!(
        (summary.fragments, summary.persisted, summary.errors),
        (6, 6, 0),
        "{summary:?}"
    );
    let numbers = check_ack_sequence(&acks);
    assert_eq!(numbers.len(), 6);
    let original = frames(&std::fs::read(&fixture).unwrap());
    assert!(original.len() > 400);

    // GetMedia from the start: every frame, byte for byte, with the KVS tags on every chunk.
    let media = get_media(&server, "cam", selector(StartSelectorType::Earliest)).await;
    assert_eq!(frames(&media), original);
    let tags = all_tags(&media);
    for name in [
        "AWS_KINESISVIDEO_FRAGMENT_NUMBER",
        "AWS_KINESISVIDEO_SERVER_TIMESTAMP",
        "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP",
        "AWS_KINESISVIDEO_MILLIS_BEHIND_NOW",
        "AWS_KINESISVIDEO_CONTINUATION_TOKEN",
    ] {
        assert_eq!(tags.iter().filter(|(k, _)| k == name).count(), 6, "{name}");
    }
    let listed: Vec<String> = tags
        .iter()
        .filter(|(k, _)| k == "AWS_KINESISVIDEO_FRAGMENT_NUMBER")
        .map(|(_, v)| v.clone())
        .collect();
    assert_eq!(listed, numbers);

    // ListFragments and GetMediaForFragmentList through the archived-media SDK.
    let archive = archive_sdk(&server);
    let range = TimestampRange::builder()
        .start_timestamp(DateTime::from_secs(0))
        .end_timestamp(DateTime::from_secs(4_000_000_000))
        .build()
        .unwrap();
    let mut listed = Vec::new();
    let mut token = None;
    loop {
        let mut req = archive.list_fragments().stream_name("cam").max_results(4);
        req = match &token {
            Some(t) => req.next_token(t),
            None => req.fragment_selector(
                FragmentSelector::builder()
                    .fragment_selector_type(FragmentSelectorType::ServerTimestamp)
                    .timestamp_range(range.clone())
                    .build()
                    .unwrap(),
            ),
        };
        let page = req.send().await.unwrap();
        for f in page.fragments() {
            assert!(f.fragment_size_in_bytes() > 10_000);
            assert!(f.fragment_length_in_milliseconds() >= 900, "{f:?}");
            listed.push(f.fragment_number().unwrap().to_string());
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(listed, numbers);
    let reversed: Vec<String> = numbers.iter().rev().cloned().collect();
    let body = media_for_fragments(&server, "cam", reversed.clone()).await;
    let tagged = tagged_frames(&body);
    let order: Vec<&String> = tagged.iter().map(|(n, _)| n).fold(Vec::new(), |mut v, n| {
        if v.last() != Some(&n) {
            v.push(n);
        }
        v
    });
    assert_eq!(
        order,
        reversed.iter().collect::<Vec<_>>(),
        "chunks come in the requested order"
    );
    let mut by_fragment: Vec<Bytes> = Vec::new();
    for n in &numbers {
        by_fragment.extend(
            tagged
                .iter()
                .filter(|(m, _)| m == n)
                .map(|(_, f)| f.clone()),
        );
    }
    assert_eq!(by_fragment, original);
}

/// boto3 reads the same media back, byte for byte.
#[tokio::test]
async fn boto3_reads_media_back_byte_identical() {
    let server = TestServer::start();
    create(&server, "py", 1).await;
    let fixture = fixture(6);
    put_file(&server, "py", &fixture, false).await;
    let dir = temp_dir("boto3-media");
    common::run_boto3(
        "boto3_media.py",
        &[
            server.url.as_ref(),
            ACCESS_KEY.as_ref(),
            SECRET_KEY.as_ref(),
            "py".as_ref(),
            dir.as_os_str(),
        ],
    );
    let original = frames(&std::fs::read(&fixture).unwrap());
    for file in ["get_media.mkv", "for_list.mkv"] {
        let got = frames(&std::fs::read(dir.join(file)).unwrap());
        assert_eq!(got, original, "{file}");
    }
}

#[tokio::test]
async fn emitted_mkv_is_accepted_by_ffprobe_and_mkvinfo() {
    let server = TestServer::start();
    create(&server, "probe", 1).await;
    let fixture = fixture(6);
    put_file(&server, "probe", &fixture, false).await;
    let dir = temp_dir("probe");
    // Each GetMedia chunk is a complete MKV document.
    let media = get_media(&server, "probe", selector(StartSelectorType::Earliest)).await;
    let starts: Vec<usize> = media
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == [0x1A, 0x45, 0xDF, 0xA3])
        .map(|(i, _)| i)
        .collect();
    assert_eq!(starts.len(), 6);
    for (i, start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(media.len());
        let path = dir.join(format!("chunk{i}.mkv"));
        std::fs::write(&path, &media[*start..end]).unwrap();
        let info = std::process::Command::new("mkvinfo")
            .arg("-v")
            .arg(&path)
            .output()
            .expect("mkvinfo (mkvtoolnix)");
        let text = String::from_utf8_lossy(&info.stdout);
        assert!(info.status.success(), "mkvinfo rejected chunk {i}: {text}");
        assert!(
            text.contains("AWS_KINESISVIDEO_FRAGMENT_NUMBER"),
            "chunk {i}"
        );
        let probe = std::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-count_frames",
                "-show_entries",
                "stream=nb_read_frames",
                "-of",
                "csv=p=0",
            ])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            probe.status.success() && probe.stderr.is_empty(),
            "ffprobe: {}",
            String::from_utf8_lossy(&probe.stderr)
        );
    }
    // `oxbow get` merges them into one Segment that players read whole.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_oxbow"))
        .args([
            "get",
            "probe",
            "--start",
            "earliest",
            "--endpoint",
            &server.url,
        ])
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged = dir.join("merged.mkv");
    std::fs::write(&merged, &out.stdout).unwrap();
    let count = |p: &std::path::Path| {
        let o = std::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-count_frames",
                "-show_entries",
                "stream=codec_name,nb_read_frames",
                "-of",
                "csv=p=0",
            ])
            .arg(p)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    assert_eq!(count(&merged), count(&fixture));
}

#[tokio::test]
async fn start_selectors_and_the_live_edge() {
    let server = TestServer::start();
    create(&server, "sel", 1).await;
    let (acks, _) = put_file(&server, "sel", &fixture(6), false).await;
    let numbers = check_ack_sequence(&acks);
    let first_number = |media: &[u8]| {
        all_tags(media)
            .into_iter()
            .find(|(k, _)| k == "AWS_KINESISVIDEO_FRAGMENT_NUMBER")
            .map(|(_, v)| v)
    };
    let from_third = get_media(
        &server,
        "sel",
        StartSelector::builder()
            .start_selector_type(StartSelectorType::FragmentNumber)
            .after_fragment_number(&numbers[2])
            .build()
            .unwrap(),
    )
    .await;
    assert_eq!(
        first_number(&from_third).as_deref(),
        Some(numbers[2].as_str())
    );
    let tokens: Vec<String> = all_tags(&from_third)
        .into_iter()
        .filter(|(k, _)| k == "AWS_KINESISVIDEO_CONTINUATION_TOKEN")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(tokens.len(), 4);
    let resumed = get_media(
        &server,
        "sel",
        StartSelector::builder()
            .start_selector_type(StartSelectorType::ContinuationToken)
            .continuation_token(&tokens[0])
            .build()
            .unwrap(),
    )
    .await;
    assert_eq!(first_number(&resumed).as_deref(), Some(numbers[3].as_str()));

    // Timestamps: the fragment whose span holds the instant.
    let list = list_all(&server, "sel", true).await;
    let fourth = list
        .fragments()
        .iter()
        .find(|f| f.fragment_number() == Some(&numbers[3]))
        .unwrap();
    let t = fourth.producer_timestamp().unwrap().as_secs_f64() + 0.5;
    let by_time = get_media(
        &server,
        "sel",
        StartSelector::builder()
            .start_selector_type(StartSelectorType::ProducerTimestamp)
            .start_timestamp(aws_sdk_kinesisvideomedia::primitives::DateTime::from_secs_f64(t))
            .build()
            .unwrap(),
    )
    .await;
    assert_eq!(first_number(&by_time).as_deref(), Some(numbers[3].as_str()));

    // NOW with nothing arriving: the response ends after about 3 s, empty.
    let started = Instant::now();
    let now = get_media(&server, "sel", selector(StartSelectorType::Now)).await;
    let waited = started.elapsed();
    assert!(now.is_empty());
    assert!(
        waited >= Duration::from_millis(2900) && waited < Duration::from_secs(6),
        "{waited:?}"
    );

    assert_eq!(
        get_media_error(&server, "absent", selector(StartSelectorType::Now)).await,
        "ResourceNotFoundException"
    );
}

/// A live reader gets each frame as it arrives, not when its fragment completes.
#[tokio::test]
async fn live_frames_are_forwarded_as_they_arrive() {
    let server = TestServer::start();
    create(&server, "live", 0).await;
    let reader = {
        let client = media_client(&server);
        tokio::spawn(async move {
            let mut body = client
                .get_media("live", serde_json::json!({"StartSelectorType": "NOW"}))
                .await
                .unwrap();
            let mut r = oxbow_client::ChunkReader::default();
            let mut timeline = Vec::new();
            use http_body_util::BodyExt;
            while let Some(Ok(frame)) = body.frame().await {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                r.push(&data);
                while let Some(e) = r.next_event().unwrap() {
                    let what = match e {
                        oxbow_mkv::Event::Frame(_) => "frame",
                        oxbow_mkv::Event::Tags(t)
                            if t.iter()
                                .any(|(k, _)| k == "AWS_KINESISVIDEO_CONTINUATION_TOKEN") =>
                        {
                            "end"
                        }
                        _ => continue,
                    };
                    timeline.push((Instant::now(), what));
                }
            }
            timeline
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, summary) = put_file(&server, "live", &fixture(4), true).await;
    assert_eq!(summary.fragments, 4);
    let timeline = reader.await.unwrap();
    let ends: Vec<Instant> = timeline
        .iter()
        .filter(|(_, w)| *w == "end")
        .map(|(t, _)| *t)
        .collect();
    assert!(ends.len() >= 3, "{} fragments seen", ends.len());
    // The first frame of the second fragment reached the reader about a second before the
    // fragment ended: frames were not held back until the fragment completed.
    let second_start = timeline
        .iter()
        .skip_while(|(t, _)| *t <= ends[0])
        .find(|(_, w)| *w == "frame")
        .unwrap()
        .0;
    let lead = ends[1] - second_start;
    assert!(
        lead > Duration::from_millis(700),
        "frames arrived only {lead:?} before their fragment ended"
    );
}

// ---- acknowledgement errors ----

fn error_ids(acks: &[Ack]) -> Vec<u64> {
    acks.iter()
        .filter(|a| a.event == AckEvent::Error)
        .filter_map(|a| a.error_id)
        .collect()
}

#[tokio::test]
async fn ack_error_classes() {
    // Eleven PutMedia calls in quick succession: lift the per-stream call rate.
    let server = TestServer::start_with(&[
        "--media-tps-per-stream",
        "0",
        "--put-max-fragment-bytes",
        "100000",
        "--put-max-fragment-duration-ms",
        "3000",
    ]);
    create(&server, "e", 1).await;
    let t = now_ms();
    let cases: Vec<(u64, Body)> = vec![
        // 4004: a fragment earlier than the one before.
        (
            4004,
            vec![
                (0, mkv_start(AV)),
                (0, cluster(t, 5, 10)),
                (0, cluster(t - 5000, 5, 10)),
            ],
        ),
        // 4006: not MKV at all.
        (4006, vec![(0, b"definitely not matroska".to_vec())]),
        // 4010: a frame on a track the header does not declare.
        (
            4010,
            vec![
                (0, mkv_start(AV)),
                (0, {
                    let mut c = cluster(t, 2, 10);
                    c.extend(write::simple_block(3, 300, false, &[1]));
                    c
                }),
            ],
        ),
        // 4011: a fragment without audio frames.
        (
            4011,
            vec![
                (0, mkv_start(AV)),
                (0, {
                    let mut c = write::unknown_size(ids::CLUSTER);
                    c.extend(write::uint(ids::TIMECODE, t));
                    c.extend(write::simple_block(1, 0, true, &[1; 10]));
                    c
                }),
            ],
        ),
        // 4012: more than three tracks (the producer SDK's MORE_THAN_ALLOWED_TRACKS_FOUND).
        (
            4012,
            vec![
                (
                    0,
                    mkv_start(&[
                        (1, 1, "V", &[]),
                        (2, 2, "A", &[]),
                        (3, 2, "A", &[]),
                        (4, 2, "A", &[]),
                    ]),
                ),
                (0, cluster(t, 1, 1)),
            ],
        ),
        // 4001: a fragment over the size limit.
        (4001, vec![(0, mkv_start(AV)), (0, cluster(t, 20, 10_000))]),
        // 4002: a fragment over the duration limit.
        (4002, vec![(0, mkv_start(AV)), (0, cluster(t, 40, 10))]),
        // 4007: a producer timestamp far in the future.
        (
            4007,
            vec![(0, mkv_start(AV)), (0, cluster(t + 3_600_000, 2, 10))],
        ),
        // 4009: more than ten metadata tags on a fragment.
        (
            4009,
            vec![
                (0, mkv_start(AV)),
                (0, {
                    let mut m = Vec::new();
                    for i in 0..11 {
                        m.extend(write::tags(&[(&format!("key{i}"), "v")]));
                    }
                    m.extend(cluster(t, 2, 10));
                    m
                }),
            ],
        ),
        // 4009 as well: a metadata name in the reserved AWS namespace.
        (
            4009,
            vec![
                (0, mkv_start(AV)),
                (0, {
                    let mut m = write::tags(&[("AWS_MINE", "x")]);
                    m.extend(cluster(t, 2, 10));
                    m
                }),
            ],
        ),
    ];
    for (expected, pieces) in cases {
        let acks = put_raw(&server, "e", pieces).await;
        assert!(
            error_ids(&acks).contains(&expected),
            "expected {expected}, got {acks:?}"
        );
        let err = acks.iter().find(|a| a.error_id == Some(expected)).unwrap();
        assert!(err.error_code.as_deref().is_some_and(|c| !c.is_empty()));
    }
    // A good fragment after a rejected one still goes through.
    let acks = put_raw(
        &server,
        "e",
        vec![
            (0, mkv_start(AV)),
            (0, cluster(now_ms(), 40, 10)),
            (0, cluster(now_ms() + 4000, 5, 10)),
        ],
    )
    .await;
    assert_eq!(error_ids(&acks), [4002]);
    assert!(acks.iter().any(|a| a.event == AckEvent::Persisted));
}

#[tokio::test]
async fn deleted_stream_idle_connection_and_newest_connection() {
    let server = TestServer::start_with(&[
        "--put-idle-ack-ms",
        "200",
        "--put-idle-close-ms",
        "1000",
        "--put-max-connection-ms",
        "20000",
    ]);
    create(&server, "d", 1).await;
    let kv = server.client();
    // 4008: the stream is deleted while a producer is connected.
    let arn = stream_arn(&kv, "d").await;
    let deleter = {
        let kv = kv.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            kv.delete_stream().stream_arn(arn).send().await.unwrap();
        })
    };
    let t = now_ms();
    let acks = put_raw(
        &server,
        "d",
        vec![
            (0, mkv_start(AV)),
            (0, cluster(t, 2, 10)),
            (600, cluster(t + 1000, 2, 10)),
        ],
    )
    .await;
    deleter.await.unwrap();
    assert!(error_ids(&acks).contains(&4008), "{acks:?}");

    // IDLE while nothing arrives, then the connection is closed.
    create(&server, "idle", 1).await;
    let (tx, rx) = mpsc::channel(4);
    tx.send(Bytes::from(mkv_start(AV))).await.unwrap();
    let started = Instant::now();
    let acks = media_client(&server)
        .put_media_raw("idle", "ABSOLUTE", rx)
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        acks.iter().filter(|a| a.event == AckEvent::Idle).count() >= 2,
        "{acks:?}"
    );
    drop(tx);

    // A second PutMedia on the same stream takes over; the first one ends.
    let (tx1, rx1) = mpsc::channel(4);
    tx1.send(Bytes::from(mkv_start(AV))).await.unwrap();
    tx1.send(Bytes::from(cluster(now_ms(), 2, 10)))
        .await
        .unwrap();
    let first = tokio::spawn({
        let client = media_client(&server);
        async move { client.put_media_raw("idle", "ABSOLUTE", rx1).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = put_raw(
        &server,
        "idle",
        vec![(0, mkv_start(AV)), (0, cluster(now_ms(), 2, 10))],
    )
    .await;
    tx1.send(Bytes::from(cluster(now_ms() + 1000, 2, 10)))
        .await
        .ok();
    let first = tokio::time::timeout(Duration::from_secs(5), first)
        .await
        .expect("first connection ended")
        .unwrap();
    assert!(second.iter().any(|a| a.event == AckEvent::Received));
    assert_eq!(
        first
            .iter()
            .filter(|a| a.event == AckEvent::Received)
            .count(),
        0,
        "{first:?}"
    );
}

/// Streams without retention: RECEIVED but never PERSISTED, readable from memory, nothing on
/// disk. Deleting a stream frees its disk. GetMedia readers per stream are limited.
#[tokio::test]
async fn retention_deletion_and_reader_limit() {
    let server = TestServer::start_with(&["--get-media-max-connections", "2"]);
    create(&server, "mem", 0).await;
    let t = now_ms();
    let acks = put_raw(
        &server,
        "mem",
        vec![
            (0, mkv_start(AV)),
            (0, cluster(t, 3, 100)),
            (0, cluster(t + 1000, 3, 100)),
        ],
    )
    .await;
    let received = acks
        .iter()
        .filter(|a| a.event == AckEvent::Received)
        .count();
    assert_eq!(received, 2, "{acks:?}");
    assert!(
        acks.iter().all(|a| a.event != AckEvent::Persisted),
        "no PERSISTED without retention"
    );
    let media = get_media(&server, "mem", selector(StartSelectorType::Earliest)).await;
    assert_eq!(frames(&media).len(), 12);
    let media_dir = server.data_dir.join("media");
    let has_segments = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries.flatten().any(|e| {
                    // Segment files hold media; a stream directory also keeps its
                    // fragment-number lease.
                    std::fs::read_dir(e.path())
                        .map(|mut d| {
                            d.any(|f| {
                                f.is_ok_and(|f| f.path().extension().is_some_and(|x| x == "seg"))
                            })
                        })
                        .unwrap_or(false)
                })
            })
            .unwrap_or(false)
    };
    assert!(
        !has_segments(&media_dir),
        "memory-only streams write no media"
    );

    create(&server, "disk", 1).await;
    put_raw(
        &server,
        "disk",
        vec![(0, mkv_start(AV)), (0, cluster(t, 3, 100))],
    )
    .await;
    assert!(has_segments(&media_dir));
    let kv = server.client();
    let arn = stream_arn(&kv, "disk").await;
    kv.delete_stream().stream_arn(arn).send().await.unwrap();
    assert!(
        !has_segments(&media_dir),
        "deleting the stream deleted its media"
    );

    // Two readers at the live edge are allowed here; a third is refused.
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let client = media_client(&server);
            tokio::spawn(async move {
                let body = client
                    .get_media("mem", serde_json::json!({"StartSelectorType": "NOW"}))
                    .await
                    .unwrap();
                use http_body_util::BodyExt;
                let _ = body.collect().await;
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        get_media_error(&server, "mem", selector(StartSelectorType::Now)).await,
        "ConnectionLimitExceededException"
    );
    // A reader that leaves frees its slot at once, not when its live-edge wait would end.
    let mut readers = readers.into_iter();
    let leaving = readers.next().unwrap();
    leaving.abort();
    let _ = leaving.await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let again = media_sdk(&server)
        .get_media()
        .stream_name("mem")
        .start_selector(selector(StartSelectorType::Now))
        .send()
        .await;
    assert!(again.is_ok(), "slot freed: {:?}", again.err());
    assert!(started.elapsed() < Duration::from_secs(1));
    drop(again);
    for r in readers {
        r.await.unwrap();
    }

    // Without retention there is no archive: ListFragments lists nothing and
    // GetMediaForFragmentList finds nothing, though GetMedia still reads the live buffer.
    let number = acks.iter().find_map(|a| a.fragment_number.clone()).unwrap();
    let listed = list_all(&server, "mem", false).await;
    assert!(listed.fragments().is_empty(), "{listed:?}");
    let media = media_for_fragments(&server, "mem", vec![number.clone()]).await;
    let tags = all_tags(&media);
    assert!(frames(&media).is_empty());
    assert!(
        tags.contains(&(
            "AWS_KINESISVIDEO_EXCEPTION_ERROR_CODE".to_string(),
            "4000".to_string()
        )),
        "{tags:?}"
    );
}

/// PutMedia requests that fail before any media: the usual HTTP errors, not acks.
#[tokio::test]
async fn put_media_request_errors() {
    let server = TestServer::start();
    create(&server, "p", 1).await;
    let client = media_client(&server);
    let (_tx, rx) = mpsc::channel(1);
    let err = client
        .put_media_raw("missing", "ABSOLUTE", rx)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), Some("ResourceNotFoundException"));
    let (_tx, rx) = mpsc::channel(1);
    let err = client.put_media_raw("p", "SIDEWAYS", rx).await.unwrap_err();
    assert_eq!(err.error_type(), Some("InvalidArgumentException"));
    let wrong = oxbow_client::Client::new(
        &server.url,
        REGION,
        oxbow_client::Credentials {
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: "wrong".into(),
            session_token: None,
        },
    )
    .unwrap();
    let (_tx, rx) = mpsc::channel(1);
    let err = wrong.put_media_raw("p", "ABSOLUTE", rx).await.unwrap_err();
    assert_eq!(err.error_type(), Some("InvalidSignatureException"));
}

/// 4003: a PutMedia connection older than the limit gets MAX_CONNECTION_DURATION_REACHED.
#[tokio::test]
async fn connection_duration_limit() {
    let server =
        TestServer::start_with(&["--put-max-connection-ms", "800", "--put-idle-ack-ms", "200"]);
    create(&server, "long", 1).await;
    let t = now_ms();
    let mut pieces: Body = vec![(0, mkv_start(AV))];
    for i in 0..10 {
        pieces.push((200, cluster(t + i * 1000, 2, 10)));
    }
    let started = Instant::now();
    let acks = put_raw(&server, "long", pieces).await;
    assert!(error_ids(&acks).contains(&4003), "{acks:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        acks.iter().any(|a| a.event == AckEvent::Persisted),
        "fragments before the limit were kept"
    );
}

/// More than the allowed PutMedia/GetMedia calls per second on a stream:
/// ClientLimitExceededException.
#[tokio::test]
async fn media_call_rate_limit() {
    let server = TestServer::start_with(&[
        "--media-tps-per-stream",
        "2",
        "--get-media-max-connections",
        "10",
    ]);
    create(&server, "rate", 0).await;
    let mut codes = Vec::new();
    for _ in 0..3 {
        let r = media_sdk(&server)
            .get_media()
            .stream_name("rate")
            .start_selector(selector(StartSelectorType::Earliest))
            .send()
            .await;
        codes.push(r.err().and_then(|e| {
            aws_sdk_kinesisvideomedia::error::ProvideErrorMetadata::code(&e).map(str::to_string)
        }));
    }
    assert_eq!(
        codes,
        [None, None, Some("ClientLimitExceededException".to_string())]
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_tx, rx) = mpsc::channel(1);
    drop(_tx);
    assert!(
        media_client(&server)
            .put_media_raw("rate", "ABSOLUTE", rx)
            .await
            .is_ok(),
        "a new second, a new allowance"
    );
}

/// Timestamp selectors start at the fragment that starts at the instant (a fragment covers
/// [start, start + duration)), on either clock, even when fragments arrived faster than real
/// time; a fragment number the stream never had and timestamps that cannot be a time are
/// refused.
#[tokio::test]
async fn start_selectors_at_exact_fragment_starts() {
    let server =
        TestServer::start_with(&["--media-tps-per-stream", "0", "--get-media-idle-ms", "300"]);
    create(&server, "ts", 1).await;
    let t = now_ms();
    let mut pieces: Body = vec![(0, mkv_start(AV))];
    for i in 0..4 {
        pieces.push((30, cluster(t + i * 1000, 10, 100)));
    }
    let acks = put_raw(&server, "ts", pieces).await;
    let numbers: Vec<String> = acks
        .iter()
        .filter(|a| a.event == AckEvent::Persisted)
        .filter_map(|a| a.fragment_number.clone())
        .collect();
    assert_eq!(numbers.len(), 4, "{acks:?}");
    let first_number = |media: &[u8]| {
        all_tags(media)
            .into_iter()
            .find(|(k, _)| k == "AWS_KINESISVIDEO_FRAGMENT_NUMBER")
            .map(|(_, v)| v)
    };
    let listed = list_all(&server, "ts", false).await;
    assert_eq!(listed.fragments().len(), 4);
    for f in listed.fragments() {
        let n = f.fragment_number().unwrap();
        assert_eq!(f.fragment_length_in_milliseconds(), 1000, "{n}");
        for (kind, at) in [
            (
                StartSelectorType::ServerTimestamp,
                f.server_timestamp().unwrap(),
            ),
            (
                StartSelectorType::ProducerTimestamp,
                f.producer_timestamp().unwrap(),
            ),
        ] {
            let media = get_media(
                &server,
                "ts",
                StartSelector::builder()
                    .start_selector_type(kind.clone())
                    .start_timestamp(
                        aws_sdk_kinesisvideomedia::primitives::DateTime::from_secs_f64(
                            at.as_secs_f64(),
                        ),
                    )
                    .build()
                    .unwrap(),
            )
            .await;
            assert_eq!(first_number(&media).as_deref(), Some(n), "{kind:?} at {at}");
        }
    }
    // Half-way into the second fragment on the producer clock: the second fragment.
    let media = get_media(
        &server,
        "ts",
        StartSelector::builder()
            .start_selector_type(StartSelectorType::ProducerTimestamp)
            .start_timestamp(
                aws_sdk_kinesisvideomedia::primitives::DateTime::from_millis((t + 1500) as i64),
            )
            .build()
            .unwrap(),
    )
    .await;
    assert_eq!(first_number(&media).as_deref(), Some(numbers[1].as_str()));

    // A number of this stream that no fragment ever had: error 4000, no media.
    let never = format!("{}{:020}", &numbers[0][..27], 999);
    let media = get_media(
        &server,
        "ts",
        StartSelector::builder()
            .start_selector_type(StartSelectorType::FragmentNumber)
            .after_fragment_number(&never)
            .build()
            .unwrap(),
    )
    .await;
    assert!(frames(&media).is_empty());
    assert!(
        all_tags(&media).contains(&("AWS_KINESISVIDEO_ERROR_ID".to_string(), "4000".to_string()))
    );

    for bad in ["-1", "1e20", "1e308"] {
        let body = format!(
            r#"{{"StreamName":"ts","StartSelector":{{"StartSelectorType":"SERVER_TIMESTAMP","StartTimestamp":{bad}}}}}"#
        );
        let r = post_ok(&server, "/getMedia", &body);
        assert_eq!(
            (r.status, r.error_type()),
            (400, "InvalidArgumentException"),
            "{bad}: {}",
            r.body
        );
        let body = format!(
            r#"{{"StreamName":"ts","FragmentSelector":{{"FragmentSelectorType":"SERVER_TIMESTAMP","TimestampRange":{{"StartTimestamp":{bad},"EndTimestamp":1}}}}}}"#
        );
        let r = post_ok(&server, "/listFragments", &body);
        assert_eq!(
            (r.status, r.error_type()),
            (400, "InvalidArgumentException"),
            "{bad}: {}",
            r.body
        );
    }
}

/// A GetMedia reader that stops reading holds a bounded window, is closed once it has taken
/// no bytes for the write timeout, and its connection slot comes back.
#[tokio::test]
async fn a_reader_that_stops_reading_is_closed() {
    use std::io::Read;
    let server = TestServer::start_with(&[
        "--write-stall-timeout-ms",
        "1000",
        "--get-media-max-connections",
        "1",
        "--get-media-idle-ms",
        "300",
        "--put-max-bytes-per-sec",
        "0",
    ]);
    create(&server, "big", 1).await;
    let t = now_ms();
    // 16 fragments of ~2 MB: far more than socket buffers and the reader's window.
    let mut pieces: Body = vec![(0, mkv_start(AV))];
    for i in 0..16 {
        pieces.push((0, cluster(t + i * 1000, 10, 200_000)));
    }
    let acks = put_raw(&server, "big", pieces).await;
    assert_eq!(
        acks.iter()
            .filter(|a| a.event == AckEvent::Persisted)
            .count(),
        16
    );
    let addr = server.addr();
    let body = br#"{"StreamName":"big","StartSelector":{"StartSelectorType":"EARLIEST"}}"#;
    let head = signed_head(
        "POST",
        &addr,
        "/getMedia",
        &[("content-type", "application/json")],
        body,
        &Signing::default(),
        &format!("content-length: {}", body.len()),
    );
    let mut stalled = std::net::TcpStream::connect(&addr).unwrap();
    // Never read until the end.
    std::io::Write::write_all(&mut stalled, wire(&head).as_bytes()).unwrap();
    std::io::Write::write_all(&mut stalled, body).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The slot is taken while the stalled reader is open.
    assert_eq!(
        get_media_error(&server, "big", selector(StartSelectorType::Now)).await,
        "ConnectionLimitExceededException"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Closed by the server: reading now reaches the end well before 16 fragments' worth.
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = Vec::new();
    let end = stalled.read_to_end(&mut got);
    assert!(
        end.is_ok() || got.len() < 16 * 2_000_000,
        "{end:?} after {} bytes",
        got.len()
    );
    assert!(got.len() < 16 * 2_000_000, "{} bytes", got.len());
    // And the slot is free again.
    let again = media_sdk(&server)
        .get_media()
        .stream_name("big")
        .start_selector(selector(StartSelectorType::Now))
        .send()
        .await;
    assert!(again.is_ok(), "{:?}", again.err());
}

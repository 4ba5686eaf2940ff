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
    let body = media_for_fragments(&server, "cam", numbers).await;
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
    let earliest = selector(aws_sdk_kinesisvideomedia::types::StartSelectorType::Earliest);
    let stored = frames(&get_media(&server, "cam", earliest).await);
    for (tc, fr) in &original {
        for f in fr {
            assert!(stored.contains(f), "a frame of cluster {tc} is missing");
        }
    }
}

/// Unmounts the test's tmpfs, whatever the outcome.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Mounts a tmpfs of `mib` MiB; `None` where this process may not mount (not root).
fn small_filesystem(mib: u32) -> Option<Mounted> {
    let dir = temp_dir("fulldisk");
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
        .arg(&dir)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(Mounted(dir))
}

fn persisted_numbers(acks: &[Ack]) -> Vec<String> {
    acks.iter()
        .filter(|a| a.event == AckEvent::Persisted)
        .filter_map(|a| a.fragment_number.clone())
        .collect()
}

async fn listed_numbers(server: &TestServer, stream: &str) -> Vec<String> {
    let mut v: Vec<String> = list_all(server, stream, false)
        .await
        .fragments()
        .iter()
        .filter_map(|f| f.fragment_number().map(str::to_string))
        .collect();
    v.sort();
    v
}

/// Media fills a small filesystem: producers get 5001, the catalog still writes (CreateStream,
/// DeleteStream), every fragment acknowledged PERSISTED is readable after a restart, and
/// deleting a stream gives the space back to ingest. Mounting needs root (CI runs as root);
/// elsewhere the test says it cannot run and passes.
#[tokio::test]
async fn a_full_disk_loses_nothing_and_deletion_frees_it() {
    let Some(fs) = small_filesystem(48) else {
        eprintln!("SKIPPED: mounting a tmpfs needs root");
        return;
    };
    let dir = fs.0.join("data");
    let listen = format!("127.0.0.1:{}", free_port());
    let args = [
        "--listen",
        listen.as_str(),
        "--store-reserve-mb",
        "8",
        "--put-max-bytes-per-sec",
        "0",
        "--media-tps-per-stream",
        "0",
    ];
    let server = TestServer::start_in(&dir, &args, true);
    let kv = server.client();
    for name in ["big", "other"] {
        kv.create_stream()
            .stream_name(name)
            .data_retention_in_hours(1)
            .send()
            .await
            .unwrap();
    }
    // 30 fragments of ~2 MB into ~40 MB of usable space.
    let t = now_ms();
    let mut pieces: Body = vec![(0, mkv_start(AV))];
    for i in 0..30 {
        pieces.push((0, cluster(t + i * 1000, 10, 200_000)));
    }
    let acks = put_raw(&server, "big", pieces).await;
    let persisted = persisted_numbers(&acks);
    let errors: Vec<u64> = acks.iter().filter_map(|a| a.error_id).collect();
    assert!(persisted.len() >= 5, "{acks:?}");
    assert!(persisted.len() < 30);
    assert!(errors.contains(&5001), "{errors:?}");
    let segments = std::fs::read_dir(dir.join("media"))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
        .count();
    assert_eq!(segments, 1, "no segment file per failed fragment");

    // The catalog still writes while media is full.
    kv.create_stream()
        .stream_name("after")
        .data_retention_in_hours(1)
        .send()
        .await
        .expect("CreateStream on a full disk");
    let other = stream_arn(&kv, "other").await;
    kv.delete_stream()
        .stream_arn(other)
        .send()
        .await
        .expect("DeleteStream on a full disk");

    // After a restart every PERSISTED fragment is listed and readable.
    server.stop();
    let server = TestServer::start_in(&dir, &args, true);
    let mut expected = persisted.clone();
    expected.sort();
    assert_eq!(listed_numbers(&server, "big").await, expected);
    let body = media_for_fragments(&server, "big", persisted.clone()).await;
    assert_eq!(frames(&body).len(), persisted.len() * 20);

    // Deleting the big stream gives its space back: ingest resumes.
    let kv = server.client();
    let big = stream_arn(&kv, "big").await;
    kv.delete_stream().stream_arn(big).send().await.unwrap();
    let t = now_ms();
    let mut pieces: Body = vec![(0, mkv_start(AV))];
    for i in 0..5 {
        pieces.push((0, cluster(t + i * 1000, 10, 200_000)));
    }
    let acks = put_raw(&server, "after", pieces).await;
    assert_eq!(persisted_numbers(&acks).len(), 5, "{acks:?}");
    drop(server);
    drop(fs);
}

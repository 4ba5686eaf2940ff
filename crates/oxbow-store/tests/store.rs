//! The store on real files: durability across reopen, torn-tail recovery, retention, the live
//! buffer, and live events.

use bytes::Bytes;
mod util;

use oxbow_store::{LiveEvent, Store, StoreConfig, StoredFragment};
use util::{dir, header, segments};

fn fragment(seq: u64, ts: i64, size: usize) -> StoredFragment {
    StoredFragment {
        seq,
        producer_ts_ms: ts,
        server_ts_ms: ts + 5,
        duration_ms: 2000,
        header_id: 1,
        tags: vec![("k".into(), format!("v{seq}"))],
        cluster: Bytes::from(vec![(seq % 251) as u8; size]),
    }
}

async fn ingest(store: &Store, key: &str, n: u64, size: usize) -> Vec<u64> {
    let log = store.stream(key).unwrap();
    let h = log.set_header(header());
    let mut seqs = Vec::new();
    for i in 0..n {
        let ts = 1_700_000_000_000 + i as i64 * 2000;
        let seq = log.begin(h, ts, ts + 5, ts as u64).unwrap();
        let mut f = fragment(seq, ts, size);
        f.header_id = h;
        log.complete(f, true).await.unwrap().unwrap();
        seqs.push(seq);
    }
    seqs
}

#[tokio::test]
async fn persisted_fragments_survive_reopen() {
    let d = dir("reopen");
    let seqs = {
        let store = Store::open(
            &d,
            StoreConfig {
                segment_bytes: 10_000,
                ..Default::default()
            },
        )
        .unwrap();
        let seqs = ingest(&store, "s-1", 20, 3000).await;
        let log = store.stream("s-1").unwrap();
        assert!(log.fragments().iter().all(|m| m.persisted));
        seqs
    };
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
    let segments = segments(&d.join("s-1")).len();
    assert!(segments > 3, "segments rotate: {segments}");
    let store = Store::open(&d, StoreConfig::default()).unwrap();
    let log = store.stream("s-1").unwrap();
    let metas = log.fragments();
    assert_eq!(metas.iter().map(|m| m.seq).collect::<Vec<_>>(), seqs);
    for m in &metas {
        let f = log.read(m.seq).await.unwrap();
        assert_eq!(f.cluster, fragment(m.seq, 0, 3000).cluster);
        assert_eq!(f.tags, vec![("k".to_string(), format!("v{}", m.seq))]);
        assert_eq!(log.header(f.header_id), Some(header()));
    }
    // Numbers handed out before the restart (leased in blocks of 1024) are never reused.
    assert_eq!(log.next_seq(), 1025);
}

#[tokio::test]
async fn torn_tail_is_cut() {
    let d = dir("torn");
    {
        let store = Store::open(&d, StoreConfig::default()).unwrap();
        ingest(&store, "s", 5, 1000).await;
    }
    let seg = segments(&d.join("s")).remove(0);
    let len = std::fs::metadata(&seg).unwrap().len();
    // Simulate a crash mid-write: the last record is only half there, plus garbage.
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 300).unwrap();
    drop(f);
    let store = Store::open(&d, StoreConfig::default()).unwrap();
    let log = store.stream("s").unwrap();
    assert_eq!(
        log.fragments().iter().map(|m| m.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    // New fragments append cleanly after the cut.
    let h = log.set_header(header());
    let seq = log.begin(h, 1, 1, 1).unwrap();
    assert_eq!(seq, 1025, "past every number leased before the crash");
    let mut fr = fragment(seq, 1_800_000_000_000, 100);
    fr.header_id = h;
    log.complete(fr, true).await.unwrap().unwrap();
    drop(store);
    let store = Store::open(&d, StoreConfig::default()).unwrap();
    let log = store.stream("s").unwrap();
    assert_eq!(log.fragments().len(), 5);
    assert_eq!(log.read(1025).await.unwrap().cluster.len(), 100);
}

#[tokio::test]
async fn retention_drops_old_fragments_and_segments() {
    let d = dir("retention");
    let store = Store::open(
        &d,
        StoreConfig {
            segment_bytes: 5_000,
            ..Default::default()
        },
    )
    .unwrap();
    ingest(&store, "s", 10, 3000).await;
    let log = store.stream("s").unwrap();
    let newest = log.fragments().last().unwrap().server_ts_ms;
    let before = std::fs::read_dir(d.join("s")).unwrap().count();
    // Keep only the last ~5 seconds of fragments.
    log.enforce_retention(newest + 1, Some(5_000));
    let left: Vec<u64> = log.fragments().iter().map(|m| m.seq).collect();
    assert_eq!(left, [8, 9, 10]);
    let after = std::fs::read_dir(d.join("s")).unwrap().count();
    assert!(
        after < before,
        "expired segments are deleted ({before} -> {after})"
    );
    store.delete_stream("s").unwrap();
    assert!(!d.join("s").exists());
}

#[tokio::test]
async fn memory_only_streams_keep_the_live_window() {
    let d = dir("live");
    let store = Store::open(
        &d,
        StoreConfig {
            live_window_ms: 10_000,
            ..Default::default()
        },
    )
    .unwrap();
    let log = store.stream("s").unwrap();
    let h = log.set_header(header());
    for i in 0..5 {
        let ts = 1_000_000 + i * 4000;
        let seq = log.begin(h, ts, ts, 0).unwrap();
        log.complete(fragment(seq, ts, 500), false)
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(log.memory_bytes(), 2500);
    log.enforce_retention(1_000_000 + 16_000 + 1, None);
    assert_eq!(
        log.fragments().iter().map(|m| m.seq).collect::<Vec<_>>(),
        [3, 4, 5]
    );
    assert!(
        segments(&d.join("s")).is_empty(),
        "no media written to disk"
    );
}

#[tokio::test]
async fn live_events_arrive_in_order() {
    let d = dir("events");
    let store = Store::open(&d, StoreConfig::default()).unwrap();
    let log = store.stream("s").unwrap();
    let (mut rx, partial) = log.subscribe();
    assert!(partial.is_none());
    let h = log.set_header(header());
    let seq = log.begin(h, 10, 11, 10).unwrap();
    log.frame(seq, Bytes::from_static(b"f1"));
    log.frame(seq, Bytes::from_static(b"f2"));
    let (_, partial) = log.subscribe();
    assert_eq!(partial.map(|p| (p.seq, p.frames.len())), Some((1, 2)));
    log.complete(fragment(seq, 10, 4), true)
        .await
        .unwrap()
        .unwrap();
    let seq2 = log.begin(h, 20, 21, 20).unwrap();
    log.abandon(seq2);
    let mut seen = Vec::new();
    while let Some(e) = rx.try_recv() {
        seen.push(match e {
            LiveEvent::Start { seq, .. } => format!("start {seq}"),
            LiveEvent::Frame { seq, element } => {
                format!("frame {seq} {}", String::from_utf8_lossy(&element))
            }
            LiveEvent::End { seq, ok, .. } => format!("end {seq} {ok}"),
        });
    }
    assert_eq!(
        seen,
        [
            "start 1",
            "frame 1 f1",
            "frame 1 f2",
            "end 1 true",
            "start 2",
            "end 2 false"
        ]
    );
}

//! `oxbow bench media`. Producers send a synthetic H.264-shaped stream (one video track, a key
//! frame opening each fragment) at a fixed bitrate in real time; every frame carries the
//! instant it was handed to the connection, so consumers can measure live latency exactly
//! (same process, same clock). Server CPU and memory come from /proc of `--server-pid`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use clap::Args;
use http_body_util::BodyExt;
use oxbow_client::{AckEvent, ChunkReader, Client};
use oxbow_mkv::{ids, write, Event};
use tokio::sync::mpsc;

use super::percentile;

#[derive(Args)]
pub struct MediaArgs {
    #[command(flatten)]
    target: super::Target,
    /// Concurrent producers, one stream each.
    #[arg(long, default_value_t = 10)]
    streams: usize,
    /// Live GetMedia consumers, spread over the streams.
    #[arg(long, default_value_t = 10)]
    consumers: usize,
    /// Bitrate of each producer.
    #[arg(long, default_value_t = 2000)]
    bitrate_kbps: u64,
    #[arg(long, default_value_t = 25)]
    fps: u64,
    /// Fragment (GOP) length.
    #[arg(long, default_value_t = 2000)]
    fragment_ms: u64,
    /// How long producers send.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Retention of the streams (0: memory only, no PERSISTED acks).
    #[arg(long, default_value_t = 1)]
    retention_hours: i64,
    /// Producers connect and send only the stream header (measures idle streams' memory).
    #[arg(long)]
    idle: bool,
    /// The server's process id, for CPU and RSS.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Measure raw sequential write speed (dd with fsync) in this directory as the baseline.
    #[arg(long)]
    disk_baseline_dir: Option<PathBuf>,
    /// Send this MKV file's frames (real H.264, fragment by fragment, looping) instead of
    /// synthetic ones; live latency is then not measured.
    #[arg(long)]
    media: Option<PathBuf>,
    /// Tag every Nth fragment AWS_KINESISVIDEO_IMAGE_GENERATION (0: none).
    #[arg(long, default_value_t = 0)]
    tag_images_every: u64,
    /// Enable image generation on the streams (JPEG every second, to the server's image
    /// destination `s3://bench/images`).
    #[arg(long)]
    image_generation: bool,
}

/// A file's stream header and its fragments' frames (relative timecode, element).
struct FileMedia {
    header: Bytes,
    fragments: Vec<Vec<(i16, Bytes)>>,
}

impl FileMedia {
    fn read(path: &std::path::Path) -> Result<Self, Box<dyn std::error::Error>> {
        let mut reader = ChunkReader::default();
        reader.push(&std::fs::read(path)?);
        let (mut header, mut fragments) = (Vec::new(), Vec::new());
        for event in reader.finish()? {
            match event {
                Event::Header(h) => {
                    header.extend_from_slice(&h.ebml);
                    header.extend(write::unknown_size(ids::SEGMENT));
                    header.extend_from_slice(&h.info);
                    header.extend_from_slice(&h.tracks);
                }
                Event::ClusterStart { .. } => fragments.push(Vec::new()),
                Event::Frame(f) => {
                    if let Some(last) = fragments.last_mut() {
                        last.push((f.relative_timecode, f.element));
                    }
                }
                _ => {}
            }
        }
        Ok(Self {
            header: Bytes::from(header),
            fragments,
        })
    }
}

#[derive(Default)]
struct Stats {
    persisted_ms: Vec<u64>,
    live_us: Vec<u64>,
    received_bytes: u64,
    fragments_persisted: u64,
    errors: u64,
}

type Shared = Arc<Mutex<Stats>>;

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// MB/s of `dd` writing 512 MiB with a final fsync.
fn disk_baseline(dir: &std::path::Path) -> Option<f64> {
    let file = dir.join("oxbow-bench-dd.tmp");
    let started = Instant::now();
    let ok = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", "count=512", "conv=fsync"])
        .arg(format!("of={}", file.display()))
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?
        .success();
    let secs = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&file);
    ok.then(|| 512.0 * 1.048_576 / secs)
}

pub async fn media(args: MediaArgs) -> Result<(), Box<dyn std::error::Error>> {
    let client = args.target.client()?;
    let run = std::process::id();
    let names: Vec<String> = (0..args.streams)
        .map(|i| format!("bench-{run}-{i}"))
        .collect();
    for n in &names {
        client
            .call_json(
                "/createStream",
                &serde_json::json!({"StreamName": n, "DataRetentionInHours": args.retention_hours}),
            )
            .await?;
        if args.image_generation {
            client
                .call_json(
                    "/updateImageGenerationConfiguration",
                    &serde_json::json!({"StreamName": n, "ImageGenerationConfiguration": {
                        "Status": "ENABLED", "ImageSelectorType": "SERVER_TIMESTAMP",
                        "DestinationConfig": {"Uri": "s3://bench/images", "DestinationRegion": args.target.region},
                        "SamplingInterval": 1000, "Format": "JPEG"}}),
                )
                .await?;
        }
    }
    let file = args
        .media
        .as_deref()
        .map(FileMedia::read)
        .transpose()?
        .map(Arc::new);
    let disk = args.disk_baseline_dir.as_deref().and_then(disk_baseline);
    let before = args.server_pid.and_then(super::proc_sample);
    let stats: Shared = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut consumers = Vec::new();
    if !args.idle {
        for c in 0..args.consumers {
            let name = names[c % names.len()].clone();
            consumers.push(tokio::spawn(consume(
                client.clone(),
                name,
                deadline,
                Arc::clone(&stats),
            )));
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut producers = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let mut p = Producer::new(&args, i);
        p.file = file.clone();
        producers.push(tokio::spawn(p.run(
            client.clone(),
            n.clone(),
            deadline,
            args.idle,
            Arc::clone(&stats),
        )));
        // Stagger starts so fragments of different streams do not all close together.
        tokio::time::sleep(Duration::from_millis(
            args.fragment_ms / names.len().max(1) as u64 + 1,
        ))
        .await;
    }
    let mut during = None;
    if args.idle {
        tokio::time::sleep_until(deadline.into()).await;
        during = args.server_pid.and_then(super::proc_sample);
    }
    for p in producers {
        p.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = args.server_pid.and_then(super::proc_sample);
    for c in consumers {
        let _ = c.await;
    }
    report(&args, &stats, elapsed, disk, before, during.or(after));
    Ok(())
}

fn report(
    args: &MediaArgs,
    stats: &Shared,
    elapsed: f64,
    disk: Option<f64>,
    before: Option<(f64, u64)>,
    after: Option<(f64, u64)>,
) {
    let mut s = stats.lock().unwrap_or_else(|p| p.into_inner());
    s.persisted_ms.sort_unstable();
    s.live_us.sort_unstable();
    let mbps = s.received_bytes as f64 / elapsed / 1e6;
    println!(
        "streams={} consumers={} bitrate={}kbps fps={} fragment={}ms seconds={} retention={}h idle={}",
        args.streams, args.consumers, args.bitrate_kbps, args.fps, args.fragment_ms, args.seconds, args.retention_hours, args.idle
    );
    println!(
        "ingest: {mbps:.2} MB/s acknowledged RECEIVED ({} errors)",
        s.errors
    );
    if let Some(d) = disk {
        println!(
            "disk baseline (dd 512 MiB, fsync): {d:.1} MB/s; ingest/disk = {:.3}",
            mbps / d
        );
    }
    println!(
        "PERSISTED ack latency: p50 {:.1} ms, p99 {:.1} ms ({} fragments)",
        percentile(&s.persisted_ms, 0.5),
        percentile(&s.persisted_ms, 0.99),
        s.fragments_persisted
    );
    println!(
        "live latency (frame handed to PutMedia -> GetMedia consumer): p50 {:.2} ms, p99 {:.2} ms ({} frames)",
        percentile(&s.live_us, 0.5) / 1000.0,
        percentile(&s.live_us, 0.99) / 1000.0,
        s.live_us.len()
    );
    if let (Some((cpu0, rss0)), Some((cpu1, rss1))) = (before, after) {
        let n = args.streams.max(1) as f64;
        println!(
            "server: {:.1}% of one core ({:.3}% per stream), RSS {:.1} MB -> {:.1} MB ({:.1} KB per stream)",
            (cpu1 - cpu0) / elapsed * 100.0,
            (cpu1 - cpu0) / elapsed * 100.0 / n,
            rss0 as f64 / 1e6,
            rss1 as f64 / 1e6,
            (rss1 as f64 - rss0 as f64) / n / 1024.0
        );
    }
}

/// One synthetic producer.
struct Producer {
    frame_bytes: usize,
    frame_interval: Duration,
    frames_per_fragment: u64,
    header: Bytes,
    seed: u8,
    /// Real frames to send instead of synthetic ones.
    file: Option<Arc<FileMedia>>,
    tag_images_every: u64,
}

impl Producer {
    fn new(args: &MediaArgs, i: usize) -> Self {
        let fps = args.fps.max(1);
        let mut header = write::ebml_header();
        header.extend(write::unknown_size(ids::SEGMENT));
        header.extend(write::info(1_000_000, "oxbow bench"));
        header.extend(write::tracks(&[(
            1,
            1,
            "V_MPEG4/ISO/AVC",
            &[1, 0x64, 0, 0x1f],
        )]));
        Self {
            frame_bytes: ((args.bitrate_kbps * 1000 / 8) / fps).max(16) as usize,
            frame_interval: Duration::from_micros(1_000_000 / fps),
            frames_per_fragment: (args.fragment_ms * fps / 1000).max(1),
            header: Bytes::from(header),
            seed: i as u8,
            file: None,
            tag_images_every: args.tag_images_every,
        }
    }

    /// A frame: a SimpleBlock whose payload starts with the send time in microseconds.
    fn frame(&self, relative: i16, key: bool) -> Bytes {
        let mut payload = BytesMut::with_capacity(self.frame_bytes);
        payload.put_u64(now_us());
        payload.resize(self.frame_bytes, self.seed);
        Bytes::from(write::simple_block(1, relative, key, &payload))
    }

    async fn run(
        self,
        client: Client,
        stream: String,
        deadline: Instant,
        idle: bool,
        stats: Shared,
    ) -> Result<(), String> {
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        let mut acks = client
            .put_media_stream(&stream, "ABSOLUTE", rx)
            .await
            .map_err(|e| e.to_string())?;
        let sent_at: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
        let ack_task = {
            let sent_at = Arc::clone(&sent_at);
            let stats = Arc::clone(&stats);
            let frag_bytes = match &self.file {
                Some(f) => {
                    let total: usize = f.fragments.iter().flatten().map(|(_, e)| e.len()).sum();
                    (total / f.fragments.len().max(1)) as u64
                }
                None => (self.frame_bytes as u64 + 8) * self.frames_per_fragment,
            };
            tokio::spawn(async move {
                while let Some(a) = acks.recv().await {
                    let mut s = stats.lock().unwrap_or_else(|p| p.into_inner());
                    match a.event {
                        AckEvent::Received => s.received_bytes += frag_bytes,
                        AckEvent::Persisted => {
                            s.fragments_persisted += 1;
                            let sent = a
                                .fragment_timecode
                                .and_then(|t| sent_at.lock().ok()?.remove(&t));
                            if let Some(t) = sent {
                                s.persisted_ms.push(t.elapsed().as_millis() as u64);
                            }
                        }
                        AckEvent::Error => s.errors += 1,
                        _ => {}
                    }
                }
            })
        };
        let header = match &self.file {
            Some(f) => f.header.clone(),
            None => self.header.clone(),
        };
        tx.send(header).await.map_err(|e| e.to_string())?;
        if idle {
            tokio::time::sleep_until(deadline.into()).await;
        } else {
            self.send_fragments(&tx, deadline, &sent_at).await;
        }
        drop(tx);
        let _ = tokio::time::timeout(Duration::from_secs(5), ack_task).await;
        Ok(())
    }

    async fn send_fragments(
        &self,
        tx: &mpsc::Sender<Bytes>,
        deadline: Instant,
        sent_at: &Mutex<HashMap<u64, Instant>>,
    ) {
        if let Some(file) = &self.file {
            return self.send_file(file, tx, deadline, sent_at).await;
        }
        let mut tick = tokio::time::interval(self.frame_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while Instant::now() < deadline {
            let timecode = now_us() / 1000;
            let mut cluster = write::unknown_size(ids::CLUSTER);
            cluster.extend(write::uint(ids::TIMECODE, timecode));
            if tx.send(Bytes::from(cluster)).await.is_err() {
                return;
            }
            for i in 0..self.frames_per_fragment {
                tick.tick().await;
                let relative =
                    ((now_us() / 1000).saturating_sub(timecode)).min(i16::MAX as u64) as i16;
                if tx.send(self.frame(relative, i == 0)).await.is_err() {
                    return;
                }
            }
            let end = Bytes::from(write::tags(&[("AWS_KINESISVIDEO_END_OF_FRAGMENT", "")]));
            if tx.send(end).await.is_err() {
                return;
            }
            if let Ok(mut m) = sent_at.lock() {
                m.insert(timecode, Instant::now());
            }
        }
    }
}

impl Producer {
    /// The file's fragments in turn, each frame at its own time, every Nth fragment tagged
    /// for image generation.
    async fn send_file(
        &self,
        file: &FileMedia,
        tx: &mpsc::Sender<Bytes>,
        deadline: Instant,
        sent_at: &Mutex<HashMap<u64, Instant>>,
    ) {
        for (n, frames) in file.fragments.iter().cycle().enumerate() {
            if Instant::now() >= deadline || frames.is_empty() {
                return;
            }
            let timecode = now_us() / 1000;
            let started = Instant::now();
            let mut cluster = Vec::new();
            if self.tag_images_every > 0 && (n as u64).is_multiple_of(self.tag_images_every) {
                cluster.extend(write::tags(&[("AWS_KINESISVIDEO_IMAGE_GENERATION", "")]));
            }
            cluster.extend(write::unknown_size(ids::CLUSTER));
            cluster.extend(write::uint(ids::TIMECODE, timecode));
            if tx.send(Bytes::from(cluster)).await.is_err() {
                return;
            }
            for (relative, element) in frames {
                let due = started + Duration::from_millis((*relative).max(0) as u64);
                tokio::time::sleep_until(due.into()).await;
                if tx.send(element.clone()).await.is_err() {
                    return;
                }
            }
            // The file's fragments last about the same: the next starts a frame later.
            let last = frames.last().map(|f| f.0.max(0) as u64).unwrap_or(0);
            tokio::time::sleep_until((started + Duration::from_millis(last + 40)).into()).await;
            let end = Bytes::from(write::tags(&[("AWS_KINESISVIDEO_END_OF_FRAGMENT", "")]));
            if tx.send(end).await.is_err() {
                return;
            }
            if let Ok(mut m) = sent_at.lock() {
                m.insert(timecode, Instant::now());
            }
        }
    }
}

/// A live consumer: GetMedia NOW, again and again until the deadline, timing every frame.
async fn consume(client: Client, stream: String, deadline: Instant, stats: Shared) {
    while Instant::now() < deadline {
        let Ok(mut body) = client
            .get_media(&stream, serde_json::json!({"StartSelectorType": "NOW"}))
            .await
        else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let mut reader = ChunkReader::default();
        let mut samples = Vec::new();
        while let Some(Ok(frame)) = body.frame().await {
            let Ok(data) = frame.into_data() else {
                continue;
            };
            reader.push(&data);
            let now = now_us();
            while let Ok(Some(e)) = reader.next_event() {
                if let Event::Frame(f) = e {
                    if let Some(sent) = sent_time(&f.element) {
                        samples.push(now.saturating_sub(sent));
                    }
                }
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .live_us
            .extend(samples);
    }
}

/// The send time a bench frame carries: the first 8 bytes after the SimpleBlock header.
fn sent_time(element: &[u8]) -> Option<u64> {
    // ID (1) + size (vint) + track (1) + timecode (2) + flags (1)
    let size_len = element.get(1)?.leading_zeros() as usize + 1;
    let start = 1 + size_len + 4;
    let b = element.get(start..start + 8)?;
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

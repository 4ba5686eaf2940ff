//! `oxbow bench ingest`: many WebRTC cameras recorded at once by storage sessions. Each camera
//! is a str0m peer of its own (its own UDP socket, its own signaling WebSocket as master), joins
//! with JoinStorageSession, answers the session's offer and sends real H.264 (an Annex B file
//! looped at its frame rate) and Opus-sized audio packets every 20 ms. Each video frame carries
//! its send time in an SEI NAL unit, so live GetMedia readers measure the latency from a frame
//! leaving the camera to its arrival at a reader on one clock. After the run every stream is
//! read back from its start: frames stored against frames sent. The server's CPU per session
//! is read from /proc.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use oxbow_client::{ChunkReader, Client};
use oxbow_mkv::{block_data, Event};
use serde_json::{json, Value};
use str0m::change::SdpOffer;
use str0m::media::{MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event as RtcEvent, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message;

use super::{cpu_since, percentile, proc_sample, Target};

#[derive(Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub target: Target,
    /// Cameras recording at once.
    #[arg(long, default_value_t = 100)]
    pub sessions: usize,
    /// How long each camera sends, seconds.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// The camera's video: an H.264 Annex B file (key frame first), looped.
    #[arg(long)]
    pub video: std::path::PathBuf,
    /// Its frame rate.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Cameras watched live by a GetMedia reader for the latency figures.
    #[arg(long, default_value_t = 10)]
    pub readers: usize,
    /// The server's pid, for its CPU.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

/// Microseconds since the Unix epoch: the one clock of cameras and readers.
fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The SEI "user data unregistered" NAL unit a bench frame carries: a fixed UUID and the send
/// time as 16 hex digits (no zero bytes, so no start code can appear in it).
const SEI_UUID: &[u8; 16] = b"oxbow-bench-sent";

fn sei(sent_us: u64) -> Vec<u8> {
    let mut nal = vec![0x06, 0x05, 32];
    nal.extend_from_slice(SEI_UUID);
    nal.extend_from_slice(format!("{sent_us:016x}").as_bytes());
    nal.push(0x80);
    nal
}

/// The send time in a stored video frame (length-prefixed NAL units), if it carries one.
fn sent_time(payload: &[u8]) -> Option<u64> {
    let mut at = 0;
    while at + 4 <= payload.len() {
        let len = u32::from_be_bytes(payload[at..at + 4].try_into().ok()?) as usize;
        let nal = payload.get(at + 4..at + 4 + len)?;
        if nal.first() == Some(&0x06) && nal.get(3..19) == Some(&SEI_UUID[..]) {
            let hex = std::str::from_utf8(nal.get(19..35)?).ok()?;
            return u64::from_str_radix(hex, 16).ok();
        }
        at += 4 + len;
    }
    None
}

/// The access units of an Annex B file, split at each access unit delimiter or first slice.
fn access_units(data: &[u8]) -> Vec<Vec<u8>> {
    let nals = oxbow_package::annexb::nal_units(data);
    let mut units: Vec<Vec<u8>> = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let mut has_slice = false;
    for nal in nals {
        let kind = nal[0] & 0x1F;
        // A new picture starts at a parameter set, a delimiter, or a slice whose
        // first_mb_in_slice is 0 (its first bit after the header is 1), after a slice.
        let starts = has_slice
            && (matches!(kind, 6..=9)
                || (matches!(kind, 1 | 5) && nal.get(1).is_some_and(|b| b & 0x80 != 0)));
        if starts {
            units.push(std::mem::take(&mut current));
            has_slice = false;
        }
        if kind == 9 {
            continue;
        }
        current.extend_from_slice(&[0, 0, 0, 1]);
        current.extend_from_slice(nal);
        has_slice |= matches!(kind, 1 | 5);
    }
    if has_slice {
        units.push(current);
    }
    units
}

#[derive(Default)]
struct Stats {
    connected: usize,
    video_sent: Vec<u64>,
    audio_sent: Vec<u64>,
    latency_us: Vec<u64>,
    errors: Vec<String>,
}

type Shared = Arc<Mutex<Stats>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Stats> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

pub async fn ingest(args: IngestArgs) -> Result<(), Box<dyn std::error::Error>> {
    let t = &args.target;
    let client = t.client()?;
    let units = Arc::new(access_units(&std::fs::read(&args.video)?));
    if units.is_empty() {
        return Err("the video file holds no H.264 access units".into());
    }
    let bytes: usize = units.iter().map(Vec::len).sum();
    let kbps = bytes as f64 * 8.0 / (units.len() as f64 / f64::from(args.fps)) / 1000.0;
    println!(
        "# {} sessions x {} s; camera: {} frames looped at {} fps, {:.0} kbit/s video + Opus-sized audio",
        args.sessions,
        args.seconds,
        units.len(),
        args.fps,
        kbps
    );
    let run = std::process::id();
    let mut names = Vec::new();
    for i in 0..args.sessions {
        let name = format!("webrtc-bench-{run}-{i}");
        let stream = client
            .call_json(
                "/createStream",
                &json!({"StreamName": name, "DataRetentionInHours": 1}),
            )
            .await?["StreamARN"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let channel = client
            .call_json("/createSignalingChannel", &json!({"ChannelName": name}))
            .await?["ChannelARN"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        client
            .call_json(
                "/updateMediaStorageConfiguration",
                &json!({"ChannelARN": channel, "MediaStorageConfiguration": {"Status": "ENABLED", "StreamARN": stream}}),
            )
            .await?;
        names.push((name, channel));
    }
    let stats: Shared = Arc::default();
    let cpu_before = args.server_pid.and_then(proc_sample).map(|s| s.0);
    // The cameras' own CPU, the same media the other way through str0m (packetize, encrypt,
    // send): the peer the server's cost is compared with.
    let me = std::process::id();
    let own_before = proc_sample(me).map(|s| s.0);
    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds) + Duration::from_secs(5);
    let mut tasks = Vec::new();
    for (i, (name, channel)) in names.iter().enumerate() {
        if i < args.readers {
            tasks.push(tokio::spawn(read_live(
                client.clone(),
                name.clone(),
                until,
                Arc::clone(&stats),
            )));
        }
        let cam = Camera {
            target: t.clone_target(),
            client: client.clone(),
            channel: channel.clone(),
            units: Arc::clone(&units),
            fps: args.fps,
            seconds: args.seconds,
            stats: Arc::clone(&stats),
        };
        let errors = Arc::clone(&stats);
        tasks.push(tokio::spawn(async move {
            if let Err(e) = cam.run().await {
                lock(&errors).errors.push(e);
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_since(args.server_pid, cpu_before);
    let own = cpu_since(Some(me), own_before);
    // The sessions complete their last fragments once the cameras are silent.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let counts: Vec<_> = names
        .iter()
        .map(|(name, _)| {
            let (client, name) = (client.clone(), name.clone());
            tokio::spawn(async move { count_stored(&client, &name).await })
        })
        .collect();
    let mut stored = Vec::new();
    for c in counts {
        stored.push(c.await.unwrap_or(0));
    }
    let s = lock(&stats);
    let sent: u64 = s.video_sent.iter().sum();
    let kept: u64 = stored.iter().sum();
    let mut lat = s.latency_us.clone();
    lat.sort_unstable();
    println!("cameras connected: {} of {}", s.connected, args.sessions);
    println!(
        "video frames: sent {sent}, stored {kept} ({} dropped, {:.3}%)",
        sent.saturating_sub(kept),
        (sent.saturating_sub(kept)) as f64 * 100.0 / sent.max(1) as f64
    );
    println!("audio packets sent: {}", s.audio_sent.iter().sum::<u64>());
    println!(
        "live latency camera -> GetMedia reader ({} frames, {} readers): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lat.len(),
        args.readers.min(args.sessions),
        percentile(&lat, 0.5) / 1000.0,
        percentile(&lat, 0.99) / 1000.0,
        lat.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    let per = |cpu: f64| cpu * 1000.0 / (args.sessions as f64 * args.seconds as f64);
    if let (Some(cpu), Some(own)) = (cpu, own) {
        println!(
            "server CPU: {:.2} cores over {:.0} s, {:.1} ms per session-second; cameras (str0m senders, with {} readers): {:.1} ms per session-second; server / cameras = {:.2}",
            cpu / elapsed,
            elapsed,
            per(cpu),
            args.readers,
            per(own),
            cpu / own.max(1e-9)
        );
    }
    for e in s.errors.iter().take(5) {
        println!("error: {e}");
    }
    Ok(())
}

/// Video frames stored in a stream: everything GetMedia returns from its start.
async fn count_stored(client: &Client, stream: &str) -> u64 {
    let Ok(mut body) = client
        .get_media(stream, json!({"StartSelectorType": "EARLIEST"}))
        .await
    else {
        return 0;
    };
    let mut reader = ChunkReader::default();
    let mut frames = 0;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(2), body.frame()).await;
        let Ok(Some(Ok(frame))) = next else { break };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        reader.push(&data);
        while let Ok(Some(e)) = reader.next_event() {
            if matches!(&e, Event::Frame(f) if f.track == 1) {
                frames += 1;
            }
        }
    }
    frames
}

/// A live GetMedia reader: the latency of every video frame that carries its send time.
async fn read_live(client: Client, stream: String, until: Instant, stats: Shared) {
    // A reader that reconnects (its GetMedia ended with the camera's ingest) is sent the
    // newest fragment again: each frame counts once, at its first arrival.
    let mut seen = std::collections::HashSet::new();
    while Instant::now() < until {
        let Ok(mut body) = client
            .get_media(&stream, json!({"StartSelectorType": "NOW"}))
            .await
        else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let mut reader = ChunkReader::default();
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let Ok(Some(Ok(frame))) = tokio::time::timeout(left, body.frame()).await else {
                break;
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            reader.push(&data);
            let now = now_us();
            while let Ok(Some(e)) = reader.next_event() {
                let Event::Frame(f) = e else { continue };
                let sent = block_data(&f.element)
                    .ok()
                    .and_then(|b| sent_time(&b.payload));
                if let Some(sent) = sent.filter(|s| seen.insert(*s)) {
                    lock(&stats).latency_us.push(now.saturating_sub(sent));
                }
            }
        }
    }
}

struct Camera {
    target: Target,
    client: Client,
    channel: String,
    units: Arc<Vec<Vec<u8>>>,
    fps: u32,
    seconds: u64,
    stats: Shared,
}

impl Camera {
    async fn run(&self) -> Result<(), String> {
        let addr = self
            .target
            .endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let mut ws = super::signaling::open(addr, &self.target, &self.channel, None).await?;
        self.client
            .call_json("/joinStorageSession", &json!({"channelArn": self.channel}))
            .await
            .map_err(|e| e.to_string())?;
        let b64 = base64::engine::general_purpose::STANDARD;
        // The session's offer (its candidates are in it).
        let (offer, session) = loop {
            let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
                .await
                .map_err(|_| "no offer within 30 s".to_string())?
                .ok_or("signaling closed")?
                .map_err(|e| e.to_string())?;
            let Message::Text(text) = msg else { continue };
            let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            if v["messageType"] == "SDP_OFFER" {
                let raw = b64
                    .decode(v["messagePayload"].as_str().unwrap_or_default())
                    .map_err(|e| e.to_string())?;
                let desc: Value = serde_json::from_slice(&raw).map_err(|e| e.to_string())?;
                let sender = v["senderClientId"].as_str().unwrap_or_default().to_string();
                break (desc["sdp"].as_str().unwrap_or_default().to_string(), sender);
            }
        };
        let socket = UdpSocket::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let local = socket.local_addr().map_err(|e| e.to_string())?;
        let mut rtc = RtcConfig::new()
            .clear_codecs()
            .enable_h264(true)
            .enable_opus(true, false)
            .build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp").map_err(|e| e.to_string())?);
        let offer = SdpOffer::from_sdp_string(&offer).map_err(|e| e.to_string())?;
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| e.to_string())?;
        let payload =
            b64.encode(json!({"type": "answer", "sdp": answer.to_sdp_string()}).to_string());
        let msg = json!({"action": "SDP_ANSWER", "recipientClientId": session, "messagePayload": payload});
        ws.send(Message::Text(msg.to_string().into()))
            .await
            .map_err(|e| e.to_string())?;
        // Keep the signaling connection read (pings) while media flows.
        tokio::spawn(async move { while let Some(Ok(_)) = ws.next().await {} });
        self.stream(rtc, socket, local).await
    }

    async fn stream(
        &self,
        mut rtc: Rtc,
        socket: UdpSocket,
        local: SocketAddr,
    ) -> Result<(), String> {
        let (mut video, mut audio): (Option<Mid>, Option<Mid>) = (None, None);
        let mut connected_at: Option<Instant> = None;
        let frame_interval = Duration::from_secs(1) / self.fps;
        let (mut next_video, mut next_audio) = (Instant::now(), Instant::now());
        let (mut video_n, mut audio_n) = (0u64, 0u64);
        // Exactly the run's seconds of media: the last frame is not a lone key frame
        // starting a fragment the camera then abandons.
        let video_total = self.seconds * u64::from(self.fps);
        let audio_total = self.seconds * 50;
        let mut buf = vec![0u8; 2048];
        let deadline = Instant::now() + Duration::from_secs(self.seconds + 30);
        loop {
            let timeout = loop {
                match rtc.poll_output().map_err(|e| e.to_string())? {
                    Output::Timeout(t) => break t,
                    Output::Transmit(t) => {
                        let _ = socket.send_to(&t.contents, t.destination).await;
                    }
                    Output::Event(RtcEvent::Connected) => {
                        connected_at = Some(Instant::now());
                        lock(&self.stats).connected += 1;
                        (next_video, next_audio) = (Instant::now(), Instant::now());
                    }
                    Output::Event(RtcEvent::MediaAdded(m)) => match m.kind {
                        MediaKind::Video => video = Some(m.mid),
                        MediaKind::Audio => audio = Some(m.mid),
                    },
                    Output::Event(_) => {}
                }
            };
            let now = Instant::now();
            // Sending stops after the run's seconds; the peer runs half a second more so what
            // was written leaves str0m's pacer.
            let sending = connected_at
                .is_some_and(|at| now.duration_since(at) < Duration::from_secs(self.seconds));
            if let Some(at) = connected_at {
                if now.duration_since(at) >= Duration::from_millis(self.seconds * 1000 + 500) {
                    break;
                }
            } else if now >= deadline {
                return Err("never connected".into());
            }
            let media_due = (sending && (video_n < video_total || audio_n < audio_total))
                .then(|| next_video.min(next_audio));
            let wake = media_due.map_or(timeout, |m| m.min(timeout));
            tokio::select! {
                r = socket.recv_from(&mut buf) => {
                    if let Ok((n, from)) = r {
                        if let Ok(contents) = buf[..n].try_into() {
                            let input = Input::Receive(Instant::now(), Receive { proto: Protocol::Udp, source: from, destination: local, contents });
                            rtc.handle_input(input).map_err(|e| e.to_string())?;
                        }
                    }
                    continue;
                }
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
            let now = Instant::now();
            if sending && video_n < video_total && now >= next_video {
                if let Some(mid) = video {
                    let unit = &self.units[(video_n as usize) % self.units.len()];
                    let mut frame = vec![0, 0, 0, 1];
                    frame.extend(sei(now_us()));
                    frame.extend_from_slice(unit);
                    if let Some(w) = rtc.writer(mid) {
                        let pt = w.payload_params().next().map(|p| p.pt());
                        if let Some(pt) = pt {
                            let time =
                                MediaTime::from_90khz(video_n * 90_000 / u64::from(self.fps));
                            if w.write(pt, now, time, frame).is_ok() {
                                video_n += 1;
                            }
                        }
                    }
                }
                next_video += frame_interval;
                continue;
            }
            if sending && audio_n < audio_total && now >= next_audio {
                if let Some(mid) = audio {
                    if let Some(w) = rtc.writer(mid) {
                        let pt = w.payload_params().next().map(|p| p.pt());
                        if let Some(pt) = pt {
                            let time = MediaTime::new(
                                audio_n * 960,
                                str0m::media::Frequency::FORTY_EIGHT_KHZ,
                            );
                            if w.write(pt, now, time, vec![0xFCu8; 80]).is_ok() {
                                audio_n += 1;
                            }
                        }
                    }
                }
                next_audio += Duration::from_millis(20);
                continue;
            }
            rtc.handle_input(Input::Timeout(now))
                .map_err(|e| e.to_string())?;
        }
        let mut s = lock(&self.stats);
        s.video_sent.push(video_n);
        s.audio_sent.push(audio_n);
        Ok(())
    }
}

//! `oxbow bench playback`: one stored stream watched by many concurrent HLS players (each on
//! its own keep-alive connection, fetching the media playlist and then every segment, over
//! and over), against the same bytes served as static files by another server (nginx) in
//! the same run; the time a new player takes to its first media; GetClip's throughput.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use http_body_util::BodyExt;

use super::control::BenchError;
use super::{cpu_since, median, proc_sample, Target};

#[derive(Args)]
pub struct PlaybackArgs {
    #[command(flatten)]
    pub target: Target,
    /// An MKV file (H.264) to store and play; at least 200 one-second fragments makes GetClip
    /// hit its 200-fragment limit.
    #[arg(long)]
    pub media: PathBuf,
    /// Concurrent players.
    #[arg(long, default_value_t = 100)]
    pub players: usize,
    /// Seconds each load run lasts.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Segments of the playlist each player cycles through (the newest, as a live player
    /// would).
    #[arg(long, default_value_t = 5)]
    pub segments: usize,
    /// Runs per target, alternating.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Where to write the playlist and segments for the static server.
    #[arg(long)]
    pub static_dir: Option<PathBuf>,
    /// The static server's base URL (serving --static-dir), e.g. http://127.0.0.1:7898.
    #[arg(long)]
    pub static_url: Option<String>,
    /// The server's pid, for its CPU.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

fn err(e: impl std::fmt::Display) -> BenchError {
    BenchError::Http(e.to_string())
}

/// `host:port` and path-with-query of an http:// URL.
fn split(url: &str) -> Result<(String, String), BenchError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| BenchError::Endpoint(url.to_string()))?;
    let at = rest.find('/').unwrap_or(rest.len());
    Ok((rest[..at].to_string(), rest[at..].to_string()))
}

/// A keep-alive HTTP/1.1 connection that GETs and reads `Content-Length` bodies: all a
/// player's requests need, with nothing between the load and the socket.
struct Conn {
    stream: tokio::io::BufReader<tokio::net::TcpStream>,
    addr: String,
}

impl Conn {
    async fn open(addr: &str) -> Result<Self, BenchError> {
        let tcp = tokio::net::TcpStream::connect(addr).await.map_err(err)?;
        let _ = tcp.set_nodelay(true);
        Ok(Self {
            stream: tokio::io::BufReader::with_capacity(256 << 10, tcp),
            addr: addr.to_string(),
        })
    }

    async fn get(&mut self, path: &str) -> Result<Bytes, BenchError> {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.addr);
        self.stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .map_err(err)?;
        let mut status = String::new();
        self.stream.read_line(&mut status).await.map_err(err)?;
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if self.stream.read_line(&mut line).await.map_err(err)? == 0 {
                return Err(BenchError::Http(format!("GET {path}: connection closed")));
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().map_err(err)?;
                }
            }
        }
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body).await.map_err(err)?;
        if !status.starts_with("HTTP/1.1 200") {
            return Err(BenchError::Http(format!(
                "GET {path}: {}",
                status.trim_end()
            )));
        }
        Ok(Bytes::from(body))
    }
}

/// One player's cycle: the playlist, then each segment; (requests, bytes) in `seconds`.
async fn load(
    addr: String,
    paths: Arc<Vec<String>>,
    seconds: u64,
    players: usize,
) -> Result<(u64, u64), BenchError> {
    let requests = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for i in 0..players {
        let (addr, paths, requests, bytes) = (
            addr.clone(),
            Arc::clone(&paths),
            Arc::clone(&requests),
            Arc::clone(&bytes),
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&addr).await?;
            // Players start at different places in the cycle.
            let mut k = i % paths.len();
            while Instant::now() < end {
                let body = conn.get(&paths[k]).await?;
                requests.fetch_add(1, Ordering::Relaxed);
                bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                k = (k + 1) % paths.len();
            }
            Ok::<_, BenchError>(())
        }));
    }
    for t in tasks {
        t.await.map_err(err)??;
    }
    Ok((
        requests.load(Ordering::Relaxed),
        bytes.load(Ordering::Relaxed),
    ))
}

/// Requests per second and MB per second of a run.
fn rates(requests: u64, bytes: u64, seconds: u64) -> (f64, f64) {
    let s = seconds.max(1) as f64;
    (requests as f64 / s, bytes as f64 / s / 1e6)
}

pub async fn playback(args: PlaybackArgs) -> Result<(), Box<dyn std::error::Error>> {
    let client = args.target.client()?;
    let stream = "bench-playback";
    client.ensure_stream(stream, 24).await?;
    let started = Instant::now();
    let mut options = oxbow_client::PutOptions::new(stream);
    options.realtime = false;
    let producer = oxbow_client::Producer::new(client.clone(), options);
    let summary = producer
        .run(tokio::fs::File::open(&args.media).await?, |_| {})
        .await?;
    println!(
        "stored {} fragments ({:.1} MB) in {:.1} s",
        summary.fragments,
        summary.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let range = serde_json::json!({
        "FragmentSelectorType": "SERVER_TIMESTAMP",
        "TimestampRange": {"StartTimestamp": now - 3600, "EndTimestamp": now},
    });
    // Time to first media: the session URL, master playlist, media playlist, init segment and
    // first segment, as a new player fetches them, on a fresh connection each time.
    let mut first = Vec::new();
    let mut last = None;
    for _ in 0..20 {
        let t0 = Instant::now();
        let v = client
            .call_json(
                "/getHLSStreamingSessionURL",
                &serde_json::json!({"StreamName": stream, "PlaybackMode": "ON_DEMAND", "HLSFragmentSelector": range, "MaxMediaPlaylistFragmentResults": 5000}),
            )
            .await?;
        let url = v["HLSStreamingSessionURL"]
            .as_str()
            .ok_or("no session URL")?
            .to_string();
        let (addr, master) = split(&url)?;
        let base = master[..master.find("getHLSMasterPlaylist").ok_or("bad URL")?].to_string();
        let mut conn = Conn::open(&addr).await?;
        let m = conn.get(&master).await?;
        let media = String::from_utf8_lossy(&m)
            .lines()
            .last()
            .unwrap_or("")
            .to_string();
        let media_path = format!("{base}{media}");
        let playlist = String::from_utf8_lossy(&conn.get(&media_path).await?).to_string();
        let init = playlist
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
            .ok_or("no init segment")?
            .trim_end_matches('"')
            .to_string();
        let segments: Vec<String> = playlist
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| format!("{base}{l}"))
            .collect();
        conn.get(&format!("{base}{init}")).await?;
        conn.get(segments.first().ok_or("no segments")?).await?;
        first.push(t0.elapsed().as_secs_f64() * 1000.0);
        last = Some((media_path, addr, base, init, segments));
    }
    let (media_path, addr, base, init, segments) = last.ok_or("no session")?;
    println!(
        "time to first media (session URL + master + playlist + init + first segment): median {:.1} ms of {}",
        median(&mut first),
        first.len()
    );
    // The newest segments, as live players cycle through them.
    let newest: Vec<String> = segments[segments.len().saturating_sub(args.segments)..].to_vec();
    let mut oxbow_paths = vec![media_path.clone()];
    oxbow_paths.extend(newest.iter().cloned());
    // The same bytes as static files.
    let mut static_paths = vec!["/playlist.m3u8".to_string()];
    if let Some(dir) = &args.static_dir {
        std::fs::create_dir_all(dir)?;
        let mut conn = Conn::open(&addr).await?;
        std::fs::write(dir.join("playlist.m3u8"), conn.get(&media_path).await?)?;
        std::fs::write(
            dir.join("init.mp4"),
            conn.get(&format!("{base}{init}")).await?,
        )?;
        for (i, s) in newest.iter().enumerate() {
            std::fs::write(dir.join(format!("seg-{i}.mp4")), conn.get(s).await?)?;
            static_paths.push(format!("/seg-{i}.mp4"));
        }
    }
    let static_addr = args
        .static_url
        .as_deref()
        .map(split)
        .transpose()?
        .map(|(a, _)| a);
    println!(
        "load: {} players, each cycling the media playlist and the newest {} segments, {} s per run",
        args.players,
        newest.len(),
        args.seconds
    );
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for run in 0..args.runs {
        let cpu0 = args.server_pid.and_then(proc_sample).map(|s| s.0);
        let (r, b) = load(
            addr.clone(),
            Arc::new(oxbow_paths.clone()),
            args.seconds,
            args.players,
        )
        .await?;
        let cpu = cpu_since(args.server_pid, cpu0);
        let (rps, mbps) = rates(r, b, args.seconds);
        println!(
            "run {}: oxbow  {:>8.0} req/s {:>8.1} MB/s{}",
            run + 1,
            rps,
            mbps,
            cpu.map(|c| format!(
                ", server CPU {:.0} % of a core",
                c * 100.0 / args.seconds as f64
            ))
            .unwrap_or_default()
        );
        ours.push((rps, mbps));
        if let Some(sa) = &static_addr {
            let (r, b) = load(
                sa.clone(),
                Arc::new(static_paths.clone()),
                args.seconds,
                args.players,
            )
            .await?;
            let (rps, mbps) = rates(r, b, args.seconds);
            println!(
                "run {}: static {:>8.0} req/s {:>8.1} MB/s",
                run + 1,
                rps,
                mbps
            );
            theirs.push((rps, mbps));
        }
    }
    let mut ratios: Vec<f64> = ours.iter().zip(&theirs).map(|(o, t)| o.1 / t.1).collect();
    if !ratios.is_empty() {
        println!(
            "oxbow ÷ static MB/s, median of {}: {:.2}",
            ratios.len(),
            median(&mut ratios)
        );
    }
    // GetClip of the stored hour: the first 200 fragments or 100 MB.
    let mut rates = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let resp = client
            .call(
                "/getClip",
                &serde_json::json!({"StreamName": stream, "ClipFragmentSelector": range}),
            )
            .await?;
        let body = resp.into_body().collect().await.map_err(err)?.to_bytes();
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "GetClip: {:.1} MB in {:.2} s = {:.1} MB/s",
            body.len() as f64 / 1e6,
            secs,
            body.len() as f64 / 1e6 / secs
        );
        rates.push(body.len() as f64 / 1e6 / secs);
    }
    println!("GetClip MB/s, median of 3: {:.1}", median(&mut rates));
    Ok(())
}
